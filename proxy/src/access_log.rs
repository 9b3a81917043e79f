//! The access log: one JSON line per finished request, written off the request path.
//!
//! A request hands its entry to a bounded channel with `try_send` and moves on; one writer
//! task formats entries and writes them in batches to stdout or a file. When the writer is
//! behind and the channel is full, the entry is dropped and counted in
//! `weir_access_log_dropped_total`: logging never slows or blocks a request.
//!
//! Fields (nginx variable in brackets): `time` (RFC 3339, UTC, ms) [time_iso8601],
//! `remote_addr`, `host`, `method`, `uri` [request_uri], `status`, `bytes_sent`,
//! `request_time` (s) , `upstream_addr`, `upstream_status`, `upstream_response_time` (s;
//! header time when the body never ended) — these three `null` when no upstream answered —
//! `canary` (the canary's, or an additional destination's, `<namespace>-<service>-<port>`
//! when it served, else ""),
//! `request_id`, the main rule's `namespace`, `ingress`, `service` (`-` when no rule), and
//! `fault`: who failed the request (`client`, `backend`, `weir`, or "" when no one did), as
//! the metrics' `fault` label has it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method};
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use weir_config::{Route, Side};

use crate::fault::Fault;
use crate::metrics::histogram::Counter;
use crate::record::Record;

/// Entries that may wait for the writer before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 16 * 1024;
/// The writer flushes after at most this many bytes of lines.
const BATCH_BYTES: usize = 64 * 1024;

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Stdout,
    /// Appended to (created if missing).
    File(PathBuf),
}

/// What one request leaves for the log writer: owned, so the request can end at once.
pub struct Entry {
    time: SystemTime,
    client: SocketAddr,
    host: String,
    method: Method,
    uri: String,
    status: u16,
    bytes_sent: u64,
    request_time: Duration,
    /// (address, status, response time).
    upstream: Option<(SocketAddr, u16, Duration)>,
    request_id: Option<HeaderValue>,
    route: Option<Arc<Route>>,
    side: Option<Side>,
    fault: Fault,
}

impl Entry {
    /// Take what the log needs from a finished request.
    pub fn new(mut rec: Box<Record>, bytes_sent: u64, request_time: Duration) -> Self {
        let route = rec.route.and_then(|i| rec.snapshot.table.routes().get(i)).cloned();
        Entry {
            time: SystemTime::now(),
            client: rec.client,
            host: std::mem::take(&mut rec.host),
            method: rec.method.clone(),
            uri: rec.uri.as_str().to_owned(),
            status: rec.status,
            bytes_sent,
            request_time,
            upstream: rec.upstream.as_ref().map(|u| (u.addr, u.status, u.response.unwrap_or(u.header))),
            request_id: rec.request_id.take(),
            route,
            side: rec.side,
            fault: rec.fault,
        }
    }

    /// Append this entry as one JSON line.
    pub fn write_json(&self, buf: &mut Vec<u8>) {
        let id = self.route.as_ref().map(|r| &r.stable.id);
        let canary = match (self.route.as_ref().and_then(|r| r.canary.as_ref()), self.side) {
            (Some(c), Some(Side::Canary)) => c.backend.id.upstream_name(),
            (Some(c), Some(Side::Destination(i))) => {
                c.destinations.get(usize::from(i)).map(|d| d.backend.id.upstream_name()).unwrap_or_default()
            }
            _ => String::new(),
        };
        let line = Line {
            time: humantime::format_rfc3339_millis(self.time).to_string(),
            remote_addr: self.client.ip().to_string(),
            host: if self.host.is_empty() { "-" } else { &self.host },
            method: self.method.as_str(),
            uri: &self.uri,
            status: self.status,
            bytes_sent: self.bytes_sent,
            request_time: seconds(self.request_time),
            upstream_addr: self.upstream.map(|u| u.0.to_string()),
            upstream_status: self.upstream.map(|u| u.1),
            upstream_response_time: self.upstream.map(|u| seconds(u.2)),
            canary,
            request_id: self.request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
            namespace: id.map_or("-", |i| &i.namespace),
            ingress: id.map_or("-", |i| &i.ingress),
            service: id.map_or("-", |i| &i.service),
            fault: self.fault.as_str(),
        };
        // Serializing plain strings and numbers into a Vec cannot fail.
        if serde_json::to_writer(&mut *buf, &line).is_ok() {
            buf.push(b'\n');
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    remote_addr: String,
    host: &'a str,
    method: &'a str,
    uri: &'a str,
    status: u16,
    bytes_sent: u64,
    request_time: f64,
    upstream_addr: Option<String>,
    upstream_status: Option<u16>,
    upstream_response_time: Option<f64>,
    canary: String,
    request_id: &'a str,
    namespace: &'a str,
    ingress: &'a str,
    service: &'a str,
    fault: &'static str,
}

/// Seconds with millisecond resolution, as nginx logs times.
fn seconds(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// The request side of the access log: a bounded queue to the writer task.
pub struct AccessLog {
    tx: mpsc::Sender<Entry>,
    dropped: Arc<Counter>,
}

impl AccessLog {
    /// Open `target` and start its writer task (on the current runtime). Entries dropped
    /// because the writer was behind are counted in `dropped`.
    pub fn spawn(target: &AccessLogTarget, dropped: Arc<Counter>) -> std::io::Result<Self> {
        let out: Box<dyn AsyncWrite + Send + Unpin> = match target {
            AccessLogTarget::Stdout => Box::new(tokio::io::stdout()),
            AccessLogTarget::File(path) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                Box::new(tokio::fs::File::from_std(file))
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_lines(rx, out));
        Ok(AccessLog { tx, dropped })
    }

    /// Queue a finished request's line; never waits. A full queue drops it (counted).
    pub fn log(&self, entry: Entry) {
        if self.tx.try_send(entry).is_err() {
            self.dropped.inc();
        }
    }
}

/// The writer task: drain what is queued into one buffer, write it, repeat. Ends when every
/// sender is gone.
async fn write_lines(mut rx: mpsc::Receiver<Entry>, mut out: Box<dyn AsyncWrite + Send + Unpin>) {
    let mut buf = Vec::with_capacity(BATCH_BYTES);
    while let Some(first) = rx.recv().await {
        first.write_json(&mut buf);
        while buf.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(entry) => entry.write_json(&mut buf),
                Err(_) => break,
            }
        }
        let written = async {
            out.write_all(&buf).await?;
            out.flush().await
        };
        if let Err(e) = written.await {
            tracing::warn!(error = %e, "cannot write the access log; lines lost");
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            time: SystemTime::UNIX_EPOCH,
            client: SocketAddr::from(([10, 0, 0, 7], 5000)),
            host: "a\"b".into(),
            method: Method::GET,
            uri: "/x".into(),
            status: 404,
            bytes_sent: 77,
            request_time: Duration::from_millis(1500),
            upstream: None,
            request_id: None,
            route: None,
            side: None,
            fault: Fault::Client,
        }
    }

    #[test]
    fn a_full_queue_drops_the_line_and_counts_it_without_waiting() {
        let (tx, _rx) = mpsc::channel(1);
        let log = AccessLog { tx, dropped: Arc::default() };
        for _ in 0..3 {
            log.log(entry());
        }
        assert_eq!(log.dropped.get(), 2);
    }

    #[test]
    fn a_line_is_one_json_object_with_dashes_for_what_is_missing() {
        let mut buf = Vec::new();
        entry().write_json(&mut buf);
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("JSON");
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["remote_addr"], "10.0.0.7");
        assert_eq!(v["host"], "a\"b");
        assert_eq!(v["request_time"], 1.5);
        assert_eq!((&v["namespace"], &v["ingress"], &v["service"]), (&"-".into(), &"-".into(), &"-".into()));
        assert_eq!((&v["canary"], &v["request_id"]), (&"".into(), &"-".into()));
        assert!(v["upstream_addr"].is_null() && v["upstream_status"].is_null());
        assert_eq!(v["fault"], "client");
    }
}
