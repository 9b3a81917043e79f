//! The record step: a finished request's [`Record`] goes to the sinks, metrics and the
//! access log, each optional.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::access_log::{AccessLog, Entry};
use crate::metrics::Metrics;
use crate::record::{Fault, Record};
use weir_config::Side;

/// Sinks for finished requests: metrics and the access log, each optional.
#[derive(Default)]
pub struct Telemetry {
    pub metrics: Option<Arc<Metrics>>,
    pub access_log: Option<AccessLog>,
}

impl Telemetry {
    /// Record a finished request that sent `bytes_sent` bytes (head and body) to the client
    /// and took `elapsed`.
    pub fn record(&self, rec: Box<Record>, bytes_sent: u64, elapsed: Duration) {
        judge_canary(&rec);
        if let Some(metrics) = &self.metrics {
            metrics.record(&rec, bytes_sent, elapsed);
        }
        tracing::trace!(
            host = %rec.host,
            method = %rec.method,
            uri = %rec.uri,
            status = rec.status,
            bytes_sent,
            elapsed_us = elapsed.as_micros() as u64,
            "request finished"
        );
        if let Some(log) = &self.access_log {
            log.log(Entry::new(rec, bytes_sent, elapsed));
        }
    }
}

/// A canary's answer, for its rule's guard (`guard.rs`): a backend fault counts against it,
/// any other answer for it; a client's fault or weir's own is not the canary's answer.
fn judge_canary(rec: &Record) {
    if rec.side != Some(Side::Canary) {
        return;
    }
    let Some(guard) = rec.route.and_then(|r| rec.snapshot.guards.get(r)).and_then(Option::as_ref) else {
        return;
    };
    match rec.fault {
        Fault::Backend => guard.observe(true),
        Fault::None => guard.observe(false),
        Fault::Client | Fault::Proxy => {}
    }
}

/// A request's record with the sinks it goes to: carried by the response body, finished
/// once when the response ends.
pub struct Recording {
    pub record: Box<Record>,
    telemetry: Arc<Telemetry>,
}

impl Recording {
    pub fn new(record: Box<Record>, telemetry: Arc<Telemetry>) -> Self {
        Recording { record, telemetry }
    }

    /// The request ended `at`: `body_sent` body bytes reached the client.
    pub fn finish(self, body_sent: u64, at: Instant) {
        let bytes_sent = self.record.response_head_size + body_sent;
        let elapsed = at.saturating_duration_since(self.record.started);
        self.telemetry.record(self.record, bytes_sent, elapsed);
    }
}
