//! Request and response header rewriting, as ingress-nginx does it.
//!
//! Upstream requests keep the client's Host and get X-Forwarded-For (appended),
//! X-Forwarded-Proto/Host/Port, X-Real-IP and X-Request-ID (passed through or generated).
//! Hop-by-hop headers (Connection and every header it names, Keep-Alive, Proxy-Connection,
//! TE, Trailer, Transfer-Encoding, Upgrade) are removed in both directions; for an upgrade
//! request, Connection: upgrade and Upgrade are put back.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Remove hop-by-hop headers, including those named by Connection.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names finds which hop-by-hop headers are present (standard names
    // compare by tag); only those are removed. Most messages carry none, or only
    // `Connection: keep-alive`.
    let mut present = 0u8;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| *h == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & 1 != 0 {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            // The common tokens name no other header (keep-alive is removed below anyway).
            .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("close"))
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(*name);
        }
    }
}

/// The hop-by-hop headers; Connection first (its value names more).
static HOP_BY_HOP: [&HeaderName; 7] = [
    &header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::TE,
    &header::TRAILER,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
];

/// True when the request asks to switch protocols (HTTP/1.1 `Connection: upgrade` + `Upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// What the proxy knows about the client side of a connection, rendered once per
/// connection (not per request): formatting an address is a measurable share of a request.
#[derive(Clone)]
pub struct ClientInfo {
    /// The client's IP, as X-Real-IP and X-Forwarded-For carry it.
    pub ip: HeaderValue,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The port the client connected to, for X-Forwarded-Port.
    pub server_port: HeaderValue,
}

impl ClientInfo {
    pub fn new(ip: IpAddr, scheme: &'static str, server_port: u16) -> Self {
        ClientInfo {
            ip: HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static("-")),
            scheme,
            server_port: HeaderValue::from(server_port),
        }
    }
}

/// How many headers [`add_forwarding`] may add (and Host, for HTTP/2 clients).
pub const ADDED_PER_REQUEST: usize = 7;

/// Set the X-Forwarded-* family and X-Real-IP, and make sure X-Request-ID exists.
/// `host` is the request's host as sent (port included if it had one) and `host_value` the
/// same as a header value, reused as X-Forwarded-Host when it has no port (no copy).
/// Returns the request id in force.
pub fn add_forwarding(
    headers: &mut HeaderMap,
    client: &ClientInfo,
    host: &str,
    host_value: HeaderValue,
) -> HeaderValue {
    let xff = match headers.get(&X_FORWARDED_FOR).map(|v| v.as_bytes()) {
        Some(prev) if !prev.is_empty() => {
            let ip = client.ip.as_bytes();
            let mut v = Vec::with_capacity(prev.len() + 2 + ip.len());
            v.extend_from_slice(prev);
            v.extend_from_slice(b", ");
            v.extend_from_slice(ip);
            HeaderValue::from_bytes(&v).ok()
        }
        _ => None,
    };
    // Multiple X-Forwarded-For lines are folded into the one we write.
    headers.insert(&X_FORWARDED_FOR, xff.unwrap_or_else(|| client.ip.clone()));
    headers.insert(&X_REAL_IP, client.ip.clone());
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(client.scheme));
    let bare = weir_config::matching::host_without_port(host);
    let forwarded_host = match host_value.as_bytes() == bare.as_bytes() {
        true => Some(host_value),
        false => HeaderValue::from_str(bare).ok(),
    };
    if let Some(h) = forwarded_host {
        headers.insert(&X_FORWARDED_HOST, h);
    }
    headers.insert(&X_FORWARDED_PORT, client.server_port.clone());
    match headers.get(&X_REQUEST_ID) {
        Some(id) if !id.is_empty() => id.clone(),
        _ => {
            let id = new_request_id();
            headers.insert(&X_REQUEST_ID, id.clone());
            id
        }
    }
}

/// 16 random bytes as 32 hex digits, like nginx's `$request_id`.
pub fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    let (a, b) = (fastrand::u64(..), fastrand::u64(..));
    for (i, byte) in a.to_be_bytes().iter().chain(b.to_be_bytes().iter()).enumerate() {
        out[2 * i] = HEX[(byte >> 4) as usize];
        out[2 * i + 1] = HEX[(byte & 0xf) as usize];
    }
    // Always valid: ASCII hex digits.
    HeaderValue::from_bytes(&out).unwrap_or(HeaderValue::from_static("-"))
}
