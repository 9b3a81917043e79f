//! What the check_request step reads from a client's request before any routing: framing
//! that must be unambiguous, the one host the request is for, and sizes for the record.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Uri, Version};
use hyper::body::Incoming;
use weir_config::matching::RouteHost;

use crate::conn::Activity;
use crate::error::ProxyError;

/// Bytes of a request line besides its method and target: ` HTTP/1.1\r\n` and a margin.
const REQUEST_LINE_OVERHEAD: usize = 12;
/// Bytes a header line adds besides its name and value: `: ` and CRLF.
const HEADER_LINE_OVERHEAD: usize = 4;

/// The host a request is for, validated once: routing, the upstream's Host, the forwarding
/// headers and the record all take it from here.
pub struct Target {
    /// The host as sent (port included if it had one): shared bytes, not a copy.
    pub value: HeaderValue,
    /// Lower-case, without its port: what rules match.
    pub host: String,
    /// The length of the host part of `value` (X-Forwarded-Host carries it without port).
    pub bare_len: usize,
}

impl Target {
    /// The host of `req`: the URI authority (HTTP/2, absolute-form) or the Host header.
    pub fn of(req: &Request<Incoming>) -> Result<Target, ProxyError> {
        let value = request_host(req)?;
        let host =
            value.to_str().map_err(|_| ProxyError::BadRequest("the Host header is not visible ASCII"))?;
        let route_host = RouteHost::new(host);
        let bare_len = route_host.as_str().len();
        let host = route_host.as_str().to_owned();
        Ok(Target { value, host, bare_len })
    }
}

/// Request smuggling guards hyper does not already apply: HTTP/1 framing must be
/// unambiguous, and CONNECT (forward-proxy tunnelling) is not served.
pub fn refuse_unsafe_framing(req: &Request<Incoming>, activity: &Activity) -> Result<(), ProxyError> {
    if req.method() == Method::CONNECT {
        return Err(ProxyError::MethodNotAllowed(Method::CONNECT));
    }
    let h = req.headers();
    // hyper removes a Content-Length sent beside Transfer-Encoding before weir sees the
    // request; the connection's copy of the raw head shows it.
    if h.contains_key(header::TRANSFER_ENCODING)
        && (h.contains_key(header::CONTENT_LENGTH) || activity.head_had_content_length())
    {
        return Err(ProxyError::BadRequest("both Transfer-Encoding and Content-Length are present"));
    }
    let mut lengths = h.get_all(header::CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        if lengths.any(|v| v != first) || first.as_bytes().contains(&b',') {
            return Err(ProxyError::BadRequest("several different Content-Length values"));
        }
    }
    Ok(())
}

/// The host the request is for: the URI authority (HTTP/2, absolute-form) or Host header.
/// Shared bytes, not a copy: a Host header is cloned by reference count.
fn request_host(req: &Request<Incoming>) -> Result<HeaderValue, ProxyError> {
    if let Some(auth) = req.uri().authority() {
        // Userinfo is no part of the host (RFC 9110 §4.2.4 forbids sending it): it must not
        // reach the upstream's Host nor X-Forwarded-Host.
        let host = auth.as_str().rsplit_once('@').map_or(auth.as_str(), |(_, host)| host);
        return HeaderValue::from_str(host).map_err(|_| ProxyError::MissingHost);
    }
    match req.headers().get(header::HOST) {
        Some(v) => Ok(v.clone()),
        None if req.version() == Version::HTTP_10 => Ok(HeaderValue::from_static("")),
        None => Err(ProxyError::MissingHost),
    }
}

/// The body length the client declared, if any.
pub fn declared_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

/// Whether the client accepts trailers (`TE: trailers`), which gRPC servers want to see.
pub fn accepts_trailers(h: &HeaderMap) -> bool {
    h.get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim() == "trailers"))
}

pub fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// `scheme://host/path?query`, for HTTP/2 upstreams (:scheme, :authority, :path).
pub fn absolute_form(scheme: &str, host: &str, uri: &Uri) -> Result<Uri, ProxyError> {
    let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
    Uri::builder().scheme(scheme).authority(host).path_and_query(pq).build().map_err(ProxyError::Internal)
}

/// The URI as sent upstream: path and query only.
pub fn origin_form(uri: &Uri) -> Result<Uri, ProxyError> {
    match uri.path_and_query() {
        Some(pq) if uri.authority().is_none() && uri.scheme().is_none() => Ok(Uri::from(pq.clone())),
        Some(pq) => Uri::builder().path_and_query(pq.clone()).build().map_err(ProxyError::Internal),
        None => Ok(Uri::from_static("/")),
    }
}

/// Request line + headers, in bytes, plus a declared body length.
pub fn head_size<B>(req: &Request<B>) -> u64 {
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |pq| pq.as_str().len())
        + REQUEST_LINE_OVERHEAD;
    let body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    (line + header_bytes(req.headers())) as u64 + body
}

/// The bytes `headers` take on the wire.
pub fn header_bytes(headers: &HeaderMap) -> usize {
    headers.iter().map(|(k, v)| k.as_str().len() + v.len() + HEADER_LINE_OVERHEAD).sum()
}
