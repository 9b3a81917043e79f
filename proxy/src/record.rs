//! What weir remembers about one request: plain data, filled in along the request path.
//!
//! A [`Record`] is finished exactly once, when the response body is dropped (`body.rs`
//! hands it to `telemetry.rs`), so the timing and byte counts cover what the client
//! actually received, on success and error alike.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method};
use weir_config::Side;

use crate::snapshot::Snapshot;

/// The upstream exchange of a request that reached one.
#[derive(Debug, Clone)]
pub struct UpstreamExchange {
    pub addr: SocketAddr,
    pub status: u16,
    /// TCP connect time; zero for a reused connection.
    pub connect: Duration,
    /// From sending the request to receiving the response headers.
    pub header: Duration,
    /// From sending the request to the last response byte; `None` if the body never ended.
    pub response: Option<Duration>,
    /// Connection attempts made (1 when the first endpoint answered).
    pub attempts: u32,
    pub sent_at: Instant,
}

impl UpstreamExchange {
    /// The upstream's response headers (`status`) just arrived for a request sent at `sent_at`, on
    /// the `attempt`-th connection attempt (0-based).
    pub fn headers_received(
        addr: SocketAddr,
        status: u16,
        connect: Duration,
        attempt: usize,
        sent_at: Instant,
    ) -> Self {
        UpstreamExchange {
            addr,
            status,
            connect,
            header: sent_at.elapsed(),
            response: None,
            attempts: attempt as u32 + 1,
            sent_at,
        }
    }
}

/// Who failed a request, recorded beside the status the client got (which stays what it
/// was: a client's malformed body is its 400, an aborted one its 499). Metrics carry it as
/// the `fault` label so success rates can leave the client's faults out: a client cannot
/// make a backend, or a canary, look unhealthy by sending broken requests through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// No one: the upstream's answer was relayed (any status below 500), or weir answered
    /// as asked (a redirect).
    #[default]
    None,
    /// The client: a malformed request or body, one over a limit, or a client that went
    /// away mid-request. Always a 4xx (or 499).
    Client,
    /// The backend: an upstream 5xx relayed, or weir's 502/503/504 for an upstream that
    /// could not be reached, timed out or broke the exchange.
    Backend,
    /// weir itself, or the external auth service a rule makes it ask (500).
    Proxy,
}

impl Fault {
    /// The value of the `fault` label (and the access log's field).
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::None => "",
            Fault::Client => "client",
            Fault::Backend => "backend",
            Fault::Proxy => "weir",
        }
    }

    /// The fault of a relayed upstream answer with `status`.
    pub fn of_relayed(status: u16) -> Fault {
        if status >= 500 {
            Fault::Backend
        } else {
            Fault::None
        }
    }
}

/// One request, as it is recorded in metrics and the access log.
pub struct Record {
    pub started: Instant,
    /// The table the request was served from (keeps its route handles alive).
    pub snapshot: Arc<Snapshot>,
    /// Index of the matched route in `snapshot.table.routes()`.
    pub route: Option<usize>,
    pub side: Option<Side>,
    /// A weighted choice that went to the other side because its own had no endpoint (D3).
    pub fell_back: bool,
    pub client: SocketAddr,
    /// Lower-case host without port, `-` when absent.
    pub host: String,
    pub method: Method,
    /// Path and query as received (shares the request's bytes: no copy on the hot path).
    pub uri: http::uri::PathAndQuery,
    pub request_id: Option<HeaderValue>,
    pub status: u16,
    /// Who failed the request, if anyone.
    pub fault: Fault,
    /// Request line + headers, plus the body length when declared.
    pub request_size: u64,
    /// Body bytes counted in flight when the length was not declared.
    pub request_body_counted: Option<Arc<AtomicU64>>,
    /// Estimated size of the response head sent to the client.
    pub response_head_size: u64,
    pub upstream: Option<UpstreamExchange>,
}

impl Record {
    /// The upstream response body was read to its end.
    pub fn upstream_done(&mut self, at: Instant) {
        if let Some(up) = self.upstream.as_mut() {
            up.response = Some(at.duration_since(up.sent_at));
        }
    }

    /// Total request size including a counted body.
    pub fn request_size(&self) -> u64 {
        self.request_size + self.request_body_counted.as_ref().map_or(0, |c| c.load(Ordering::Relaxed))
    }
}
