//! The controller's own Prometheus metrics, and the loopback `/healthz` `/readyz` `/metrics`
//! listener.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use tokio::net::TcpListener;

use crate::error::Error;
use crate::translate::{Diagnostic, Reason};

/// Every metric the controller exports, registered in its own registry.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Translations run (one per debounced burst of changes).
    pub reconciles: IntCounter,
    /// Time spent in the pure translation, seconds.
    pub translate_seconds: Histogram,
    /// Table pushes by result: `ok`, `failed` (proxy unreachable or 5xx), `rejected` (400).
    pub pushes: IntCounterVec,
    /// Unix time of the last push the proxy accepted, seconds.
    pub last_push_time: Gauge,
    /// Objects in the reflector caches, by kind.
    pub watched_objects: IntGaugeVec,
    /// Diagnostics (warnings) in the current translation, by reason (the Event reason):
    /// `reason="CanaryConflict"` counts second canaries made inert (canary-semantics D4).
    pub diagnostics: IntGaugeVec,
    /// Annotations of weir's Ingresses in the current translation, by catalog state.
    pub annotations: IntGaugeVec,
    /// 1 while this replica holds the leader Lease.
    pub leader: IntGauge,
    ready: Arc<AtomicBool>,
}

impl Metrics {
    pub fn new() -> Result<Metrics, Error> {
        let registry = Registry::new();
        let reconciles = IntCounter::new("weir_controller_reconciles_total", "Translations run")?;
        let translate_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "weir_controller_translate_duration_seconds",
                "Time to translate the cluster state",
            )
            .buckets(vec![0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
        )?;
        let pushes = IntCounterVec::new(
            Opts::new("weir_controller_pushes_total", "Route table pushes to the proxy, by result"),
            &["result"],
        )?;
        let last_push_time = Gauge::new(
            "weir_controller_last_push_timestamp_seconds",
            "Unix time of the last push the proxy accepted",
        )?;
        let watched_objects = IntGaugeVec::new(
            Opts::new("weir_controller_watched_objects", "Objects in the watch caches, by kind"),
            &["kind"],
        )?;
        let diagnostics = IntGaugeVec::new(
            Opts::new("weir_controller_diagnostics", "Warnings in the current translation, by reason"),
            &["reason"],
        )?;
        let annotations = IntGaugeVec::new(
            Opts::new(
                "weir_controller_annotations",
                "ingress-nginx annotations on weir's Ingresses, by state (honoured, refused, ignored, unknown)",
            ),
            &["state"],
        )?;
        let leader = IntGauge::new("weir_controller_leader", "1 while this replica is the leader")?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(translate_seconds.clone()))?;
        registry.register(Box::new(pushes.clone()))?;
        registry.register(Box::new(last_push_time.clone()))?;
        registry.register(Box::new(watched_objects.clone()))?;
        registry.register(Box::new(diagnostics.clone()))?;
        registry.register(Box::new(annotations.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        for result in ["ok", "failed", "rejected"] {
            pushes.with_label_values(&[result]);
        }
        for reason in Reason::ALL {
            diagnostics.with_label_values(&[reason.as_str()]);
        }
        for state in crate::annotations::catalog::State::ALL {
            annotations.with_label_values(&[state.as_str()]);
        }
        Ok(Metrics {
            registry,
            reconciles,
            translate_seconds,
            pushes,
            last_push_time,
            watched_objects,
            diagnostics,
            annotations,
            leader,
            ready: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Set the annotation gauge from a translation's counts (`State::ALL` order).
    pub fn set_annotations(&self, counts: &[usize; 4]) {
        for (state, n) in crate::annotations::catalog::State::ALL.iter().zip(counts) {
            self.annotations.with_label_values(&[state.as_str()]).set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Count the current translation's diagnostics by reason.
    pub fn set_diagnostics(&self, diagnostics: &[Diagnostic]) {
        for reason in Reason::ALL {
            let n = diagnostics.iter().filter(|d| d.reason == reason).count();
            self.diagnostics.with_label_values(&[reason.as_str()]).set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Ready once every watch cache has synced and a first table was translated.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for the text format except on invalid metric
        // families, which our fixed registrations never produce.
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

/// Bind the health/metrics listener (loopback by default, `--listen`).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })
}

/// Serve `/healthz`, `/readyz` and `/metrics` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Metrics) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(answer(&req, &metrics)) }
            });
            let _ =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

fn answer(req: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, body) = match req.uri().path() {
        "/healthz" => (StatusCode::OK, Bytes::from_static(b"ok\n")),
        "/readyz" if metrics.is_ready() => (StatusCode::OK, Bytes::from_static(b"ready\n")),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"caches not synced\n")),
        "/metrics" => (StatusCode::OK, Bytes::from(metrics.render())),
        _ => (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::{IngressRef, Severity};

    fn diagnostic(name: &str, reason: Reason) -> Diagnostic {
        Diagnostic {
            ingress: IngressRef { namespace: "shop".into(), name: name.into() },
            reason,
            message: "m".into(),
            severity: Severity::Warning,
        }
    }

    #[test]
    fn annotations_are_counted_by_state_and_every_state_is_shown() {
        let metrics = Metrics::new().expect("metrics");
        let value = |state: &str| {
            let text = String::from_utf8(metrics.render()).expect("utf-8");
            let prefix = format!("weir_controller_annotations{{state=\"{state}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        };
        assert_eq!(value("refused").as_deref(), Some("0"), "shown before the first translation");
        metrics.set_annotations(&[4, 2, 1, 0]);
        let got: Vec<Option<String>> = ["honoured", "refused", "ignored", "unknown"].map(value).into();
        assert_eq!(got, [Some("4".into()), Some("2".into()), Some("1".into()), Some("0".into())]);
    }

    #[test]
    fn diagnostics_are_counted_by_reason_and_every_reason_is_shown() {
        let metrics = Metrics::new().expect("metrics");
        let line = |text: &str, reason: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("weir_controller_diagnostics{{reason=\"{reason}\"}} ")))
                .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
        };
        metrics.set_diagnostics(&[
            diagnostic("a", Reason::CanaryConflict),
            diagnostic("b", Reason::CanaryConflict),
            diagnostic("c", Reason::ServiceNotFound),
        ]);
        let text = String::from_utf8(metrics.render()).expect("utf-8");
        assert_eq!(line(&text, "CanaryConflict").as_deref(), Some("2"));
        assert_eq!(line(&text, "ServiceNotFound").as_deref(), Some("1"));
        for reason in Reason::ALL {
            assert!(line(&text, reason.as_str()).is_some(), "{} missing", reason.as_str());
        }
        // The next translation has none: the gauges go back to 0.
        metrics.set_diagnostics(&[]);
        let text = String::from_utf8(metrics.render()).expect("utf-8");
        assert_eq!(line(&text, "CanaryConflict").as_deref(), Some("0"));
    }
}
