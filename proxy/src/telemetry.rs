//! The record step: a finished request's [`Record`] goes to the sinks, metrics and the
//! access log, each optional.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::access_log::{AccessLog, Entry};
use crate::metrics::Metrics;
use crate::record::Record;

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
