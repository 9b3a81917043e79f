//! The metrics listener's requests: `GET /metrics` (the exposition of the snapshot in
//! force), `GET /healthz`, and `GET /readyz` (the kubelet's readiness probe).

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::Full;

use super::encode::CONTENT_TYPE;
use super::Metrics;
use crate::routes::Routes;

/// Serve one request on the metrics listener: `GET /metrics` and `GET /healthz`.
pub async fn handle(
    metrics: Arc<Metrics>,
    routes: Arc<Routes>,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            (StatusCode::OK, CONTENT_TYPE, Bytes::from(metrics.encode(&routes.load())))
        }
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n")),
        // The kubelet's readiness probe: ready once a route table is loaded (the admin API,
        // which also has /readyz, stays on loopback).
        (&Method::GET, "/readyz") => match routes.load().is_loaded() {
            true => (StatusCode::OK, "text/plain", Bytes::from_static(b"ready\n")),
            false => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                Bytes::from_static(b"no route table loaded yet\n"),
            ),
        },
        (_, "/metrics" | "/healthz" | "/readyz") => {
            (StatusCode::METHOD_NOT_ALLOWED, "text/plain", Bytes::from_static(b"method not allowed\n"))
        }
        _ => (StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"not found\n")),
    };
    let mut resp = http::Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
