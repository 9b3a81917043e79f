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

pub use crate::fault::Fault;
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
    /// A CORS request of its rule: the Access-Control-Allow-Origin its answer carries (with
    /// the rule's other CORS headers), whoever answers.
    pub cors: Option<http::HeaderValue>,
    /// A request in progress under `limit-connections`, released with the record.
    pub limit_slot: Option<crate::ratelimit::Slot>,
    /// A sticky rule's decisions, for the answer's `Set-Cookie`s (`sticky.rs`).
    pub sticky: Option<Box<crate::sticky::Sticky>>,
    /// The endpoint (an index into the chosen backend's) to try first: the one a session
    /// affinity cookie names.
    pub preferred_endpoint: Option<usize>,
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
