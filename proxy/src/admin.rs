//! The admin API: loopback-only by default, never on the data port.
//!
//! - `PUT /config` (or POST): a whole table, YAML or JSON; 200 `{"version","generation"}`,
//!   or 400 `{"errors":[{"field","reason"}]}` with every problem, the old table kept.
//! - `GET /config`: `{"version","generation","table"}` of the table in force (404 before one).
//! - `GET /guards`: `{"version","guards":[…]}`: each canary guard of the table in force, its
//!   policy, window counts and state (`Armed` or `Tripped`, with `trippedAt` and `reason`).
//! - `GET /healthz`: 200 while the process serves. `GET /readyz`: 200 once a table is loaded.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::json;
use weir_config::{ConfigError, TableDoc};

use crate::routes::Routes;

/// Largest table document accepted.
pub const MAX_CONFIG_BYTES: usize = 64 << 20;

/// Handle one admin request.
pub async fn handle(routes: Arc<Routes>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => match routes.load().is_loaded() {
            true => text(StatusCode::OK, "ready\n"),
            false => text(StatusCode::SERVICE_UNAVAILABLE, "no route table loaded yet\n"),
        },
        (&Method::GET, "/config") => {
            let snap = routes.load();
            match &snap.doc {
                Some(doc) => json_response(
                    StatusCode::OK,
                    &json!({"version": snap.table.version(), "generation": snap.generation, "table": doc.redacted()}),
                ),
                None => json_response(StatusCode::NOT_FOUND, &json!({"version": null, "generation": 0})),
            }
        }
        (&Method::PUT | &Method::POST, "/config") => put_config(&routes, req).await,
        (&Method::GET, "/guards") => {
            let snap = routes.load();
            let guards: Vec<_> = crate::guard::distinct(&snap.guards).iter().map(|g| g.report()).collect();
            json_response(StatusCode::OK, &json!({"version": snap.table.version(), "guards": guards}))
        }
        (_, "/config" | "/guards" | "/healthz" | "/readyz") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn put_config(routes: &Routes, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match Limited::new(req.into_body(), MAX_CONFIG_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return errors(StatusCode::PAYLOAD_TOO_LARGE, &[("", format!("the body could not be read: {e}"))])
        }
    };
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(_) => return errors(StatusCode::BAD_REQUEST, &[("", "the body is not UTF-8".into())]),
    };
    let doc: TableDoc = match serde_yaml_ng::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            routes.count_rejected();
            return errors(StatusCode::BAD_REQUEST, &[("", format!("the document does not parse: {e}"))]);
        }
    };
    match routes.install(doc) {
        Ok(snap) => {
            tracing::info!(
                version = snap.table.version(),
                generation = snap.generation,
                "route table applied"
            );
            json_response(
                StatusCode::OK,
                &json!({"version": snap.table.version(), "generation": snap.generation}),
            )
        }
        Err(ConfigError::Invalid(errs)) => {
            tracing::warn!(errors = errs.len(), "route table rejected; the previous table stays in force");
            let list: Vec<_> = errs.iter().map(|e| (e.field.as_str(), e.reason.clone())).collect();
            errors(StatusCode::BAD_REQUEST, &list)
        }
        Err(ConfigError::Parse(e)) => errors(StatusCode::BAD_REQUEST, &[("", e.to_string())]),
    }
}

fn errors(status: StatusCode, list: &[(&str, String)]) -> Response<Full<Bytes>> {
    let errs: Vec<_> = list.iter().map(|(f, r)| json!({"field": f, "reason": r})).collect();
    json_response(status, &json!({ "errors": errs }))
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain"));
    resp
}
