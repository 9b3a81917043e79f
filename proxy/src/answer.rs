//! weir's own answers: the responses a request gets when a step answers it locally instead
//! of relaying an upstream (a redirect, or an error classified in `error.rs`), and the
//! response head sizes the record estimates.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::body::ResponseBody;
use crate::error::ProxyError;
use crate::request::header_bytes;
use crate::telemetry::Recording;

/// Bytes of a status line (`HTTP/1.1 200 OK\r\n`), for the record's head size estimate.
const STATUS_LINE: usize = 17;
/// Estimated bytes of the headers hyper adds to a redirect (date, content-length).
const REDIRECT_HEADERS: usize = 64;
/// Estimated bytes of the headers of a gRPC error answer.
const GRPC_ERROR_HEADERS: usize = 80;
/// Estimated bytes of the headers of a plain-text error answer.
const ERROR_HEADERS: usize = 60;

/// How a step answers a request itself: the request goes no further along the path. Later
/// steps add their own kinds here (deny rules, CORS preflights, rate limits).
#[derive(Debug)]
pub enum Local {
    /// A redirect: ssl-redirect's 308, a rule's `redirect` or `appRoot`, to this location.
    Redirect(StatusCode, HeaderValue),
    /// A CORS preflight: 204, empty (serve adds the rule's CORS headers to every answer).
    Preflight,
    /// The request failed; [`ProxyError::status`] says who failed.
    Failed(ProxyError),
    /// An access check refused the request (`access.rs`): a deny rule's status, 403 for an
    /// IP rule, 401 or 403 from basic or external auth, 302 to a signin page; with the
    /// headers the answer carries (`WWW-Authenticate`, `Location`).
    Refused(StatusCode, Vec<(header::HeaderName, HeaderValue)>),
}

impl From<ProxyError> for Local {
    fn from(e: ProxyError) -> Self {
        Local::Failed(e)
    }
}

/// What the client can understand of an error answer.
#[derive(Clone, Copy)]
pub struct Asked {
    pub grpc: bool,
    pub http1: bool,
}

/// weir's answer for `local`, recorded by `recording` when its body ends.
pub fn answer(local: Local, recording: Recording, asked: Asked) -> Response<ResponseBody> {
    match local {
        Local::Redirect(status, location) => redirect(status, location, recording),
        Local::Preflight => preflight(recording),
        Local::Failed(e) => error_response(e, recording, asked),
        Local::Refused(status, headers) => refused(status, headers, recording, asked),
    }
}

/// An access check's answer: the status, its headers, a short text body. Never blamed on
/// a backend: the record has no upstream exchange.
fn refused(
    status: StatusCode,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    mut recording: Recording,
    asked: Asked,
) -> Response<ResponseBody> {
    let record = &mut recording.record;
    tracing::debug!(status = status.as_u16(), host = %record.host, uri = %record.uri, "access refused");
    record.status = status.as_u16();
    let extra: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    record.response_head_size = (STATUS_LINE + ERROR_HEADERS + extra) as u64;
    let body = match status.is_redirection() {
        true => String::new(),
        false => format!("{} {}\n", status.as_u16(), status.canonical_reason().unwrap_or("")),
    };
    let mut resp = Response::new(ResponseBody::local(body, Some(recording)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if !status.is_redirection() {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    for (name, value) in headers {
        h.append(name, value);
    }
    if asked.http1 && status == StatusCode::BAD_REQUEST {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// ingress-nginx's preflight answer: 204 with `Content-Type: text/plain charset=UTF-8` and
/// `Content-Length: 0`.
fn preflight(mut recording: Recording) -> Response<ResponseBody> {
    recording.record.status = StatusCode::NO_CONTENT.as_u16();
    recording.record.response_head_size = (STATUS_LINE + REDIRECT_HEADERS) as u64;
    let mut resp = Response::new(ResponseBody::local(Bytes::new(), Some(recording)));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain charset=UTF-8"));
    resp
}

fn redirect(status: StatusCode, location: HeaderValue, mut recording: Recording) -> Response<ResponseBody> {
    recording.record.status = status.as_u16();
    recording.record.response_head_size = (STATUS_LINE + REDIRECT_HEADERS + location.len()) as u64;
    let mut resp = Response::new(ResponseBody::local(Bytes::new(), Some(recording)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::LOCATION, location);
    resp
}

/// The answer to a request weir could not relay. A gRPC client gets a gRPC status (HTTP 200,
/// `grpc-status`, no body) so its library reports the real cause.
fn error_response(err: ProxyError, mut recording: Recording, asked: Asked) -> Response<ResponseBody> {
    let status = err.status();
    let record = &mut recording.record;
    record.fault = err.fault();
    match status.as_u16() {
        500..=599 => tracing::warn!(error = %err, host = %record.host, uri = %record.uri, "request failed"),
        _ => tracing::debug!(error = %err, host = %record.host, uri = %record.uri, "request refused"),
    }
    if asked.grpc {
        record.status = StatusCode::OK.as_u16();
        record.response_head_size = (STATUS_LINE + GRPC_ERROR_HEADERS) as u64;
        let mut resp = Response::new(ResponseBody::local(Bytes::new(), Some(recording)));
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert("grpc-status", HeaderValue::from(u16::from(err.grpc_status())));
        if let Ok(message) = HeaderValue::from_str(&err.to_string()) {
            h.insert("grpc-message", message);
        }
        return resp;
    }
    record.status = status.as_u16();
    record.response_head_size = (STATUS_LINE + ERROR_HEADERS) as u64;
    let body = format!("{} {}\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let mut resp = Response::new(ResponseBody::local(body, Some(recording)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if asked.http1 && matches!(status.as_u16(), 400 | 405 | 413 | 499) {
        // The connection may hold an unread body or ambiguous framing: do not reuse it.
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Where ssl-redirect sends a plain-HTTP request: same host and URI, on the TLS port.
pub fn https_location(host: &str, port: u16, uri: &str) -> Result<HeaderValue, ProxyError> {
    let location = match port {
        443 => format!("https://{host}{uri}"),
        p => format!("https://{host}:{p}{uri}"),
    };
    HeaderValue::from_str(&location)
        .map_err(|_| ProxyError::BadRequest("the request host cannot be redirected"))
}

/// The size of a relayed response head: status line, headers, final CRLF.
pub fn response_head_size(headers: &http::HeaderMap) -> u64 {
    (STATUS_LINE + header_bytes(headers) + 2) as u64
}
