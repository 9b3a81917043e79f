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
    // Most messages carry none: one pass over the names (standard names compare by tag)
    // is cheaper than hashing seven absent names for removal.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
        headers.remove(header::CONNECTION);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

static HOP_BY_HOP: [&HeaderName; 6] = [
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::TE,
    &header::TRAILER,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION || HOP_BY_HOP.contains(&name)
}

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

/// What the proxy knows about the client side of a request.
pub struct ClientInfo<'a> {
    pub ip: IpAddr,
    pub scheme: &'static str,
    /// The host as the client sent it (port included if it sent one).
    pub host: &'a str,
    pub server_port: u16,
}

/// Set the X-Forwarded-* family and X-Real-IP, and make sure X-Request-ID exists.
/// Returns the request id in force.
pub fn add_forwarding(headers: &mut HeaderMap, client: &ClientInfo<'_>) -> HeaderValue {
    let ip = client.ip.to_string();
    let xff = match headers.get(&X_FORWARDED_FOR).map(|v| v.as_bytes()) {
        Some(prev) if !prev.is_empty() => {
            let mut v = Vec::with_capacity(prev.len() + 2 + ip.len());
            v.extend_from_slice(prev);
            v.extend_from_slice(b", ");
            v.extend_from_slice(ip.as_bytes());
            HeaderValue::from_bytes(&v).ok()
        }
        _ => None,
    };
    let ip_value = HeaderValue::from_str(&ip).unwrap_or(HeaderValue::from_static("-"));
    // Multiple X-Forwarded-For lines are folded into the one we write.
    headers.insert(&X_FORWARDED_FOR, xff.unwrap_or_else(|| ip_value.clone()));
    headers.insert(&X_REAL_IP, ip_value);
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(client.scheme));
    let host = weir_config::matching::host_without_port(client.host);
    if let Ok(h) = HeaderValue::from_str(host) {
        headers.insert(&X_FORWARDED_HOST, h);
    }
    headers.insert(&X_FORWARDED_PORT, HeaderValue::from(client.server_port));
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
