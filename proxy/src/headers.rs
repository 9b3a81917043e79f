//! The header rules both directions share: hop-by-hop headers (Connection and every header
//! it names, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
//! HTTP2-Settings) never cross weir; several Cookie fields (an HTTP/2 client's) become one
//! line for an HTTP/1.1 upstream; which upgrade requests are tunnelled (WebSocket only). The request's own rules, with the
//! forwarding headers weir adds, are in `forwarding.rs`.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

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
        for name in connection_named(headers) {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(*name);
        }
    }
}

/// Give every value its own allocation, for a message going out over HTTP/2. A value
/// parsed from a message is a slice of the read block of the connection it came on (16 KiB
/// for weir's own upstream exchange, 8 KiB for hyper's), and h2's HPACK encoder keeps the
/// values it indexes in its dynamic table for the outgoing connection's life: a few bytes
/// of `server` or `content-type` kept a whole upstream block alive for every HTTP/2 client
/// connection (valgrind's live blocks, 300 idle h2c clients: 300 × 16 KiB from the
/// exchange), and the upstream connection had to allocate a new block for its next read.
/// The other way, a pooled HTTP/2 upstream connection would keep client connections' read
/// buffers.
pub(crate) fn own_values(headers: &mut HeaderMap) {
    for value in headers.values_mut() {
        let sensitive = value.is_sensitive();
        // A valid value copied is valid: the error arm is never taken (the value is kept).
        if let Ok(mut own) = HeaderValue::from_bytes(value.as_bytes()) {
            own.set_sensitive(sensitive);
            *value = own;
        }
    }
}

/// The headers a Connection header names (hop-by-hop too). The common tokens, keep-alive
/// and close, name no other header, so the usual message allocates nothing here.
pub(crate) fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers.get_all(header::CONNECTION).iter().flat_map(|v| named_by_connection(v.as_bytes())).collect()
}

/// The header names one Connection value lists besides keep-alive and close.
pub fn named_by_connection(value: &[u8]) -> impl Iterator<Item = HeaderName> + '_ {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.eq_ignore_ascii_case(b"keep-alive") && !t.eq_ignore_ascii_case(b"close"))
        .filter_map(|t| HeaderName::from_bytes(t).ok())
}

/// Whether `name` is one of the fixed hop-by-hop headers (not counting those a Connection
/// header names).
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// The hop-by-hop headers; Connection first (its value names more). HTTP2-Settings belongs
/// to the h2c upgrade weir never forwards (RFC 7540 §3.2.1 makes it connection-specific).
/// At most 8: `strip_hop_by_hop` marks them in a `u8`.
static HOP_BY_HOP: [&HeaderName; 8] = [
    &header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::TE,
    &header::TRAILER,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
    &HTTP2_SETTINGS,
];

/// The Cookie fields of `headers` as one value, `; `-separated, when there are several: RFC
/// 9113 §8.2.3 requires it before an HTTP/2 request goes on over HTTP/1.1 (HTTP/2 clients
/// may send one field per cookie; HTTP/1.1 servers expect one line).
pub(crate) fn joined_cookies(headers: &HeaderMap) -> Option<HeaderValue> {
    let cookies = headers.get_all(header::COOKIE);
    cookies.iter().nth(1)?;
    HeaderValue::from_bytes(&joined(cookies.iter(), b"; ")).ok()
}

/// Header values one after the other, `separator` between them.
pub(crate) fn joined<'a>(values: impl Iterator<Item = &'a HeaderValue>, separator: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        if !out.is_empty() {
            out.extend_from_slice(separator);
        }
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// True when the request asks to switch to WebSocket (HTTP/1.1 `Connection: upgrade` +
/// `Upgrade: websocket`), the one protocol weir tunnels. Any other Upgrade (`h2c` above
/// all: an upstream's 101 would turn the connection into a raw tunnel past every rule) is
/// hop-by-hop like the rest, stripped, and the request served as plain HTTP/1.1.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let tokens = |name| {
        headers
            .get_all(name)
            .into_iter()
            .filter_map(|v: &HeaderValue| v.to_str().ok())
            .flat_map(|v| v.split(','))
    };
    tokens(header::CONNECTION).any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        && tokens(header::UPGRADE).any(is_websocket)
}

/// `websocket` (any case), with or without a version (`websocket/13`).
fn is_websocket(token: &str) -> bool {
    let name = token.trim().split('/').next().unwrap_or_default();
    name.eq_ignore_ascii_case("websocket")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_fields_are_joined_into_one_line() {
        let mut map = HeaderMap::new();
        map.append(header::COOKIE, HeaderValue::from_static("a=1"));
        map.append(header::ACCEPT, HeaderValue::from_static("*/*"));
        map.append(header::COOKIE, HeaderValue::from_static("b=2; c=3"));
        assert_eq!(joined_cookies(&map).expect("several fields"), "a=1; b=2; c=3");
        map.remove(header::COOKIE);
        map.append(header::COOKIE, HeaderValue::from_static("only=1"));
        assert!(joined_cookies(&map).is_none(), "one field stays as it is");
    }

    #[test]
    fn owned_values_share_nothing_with_the_read_block() {
        let block = bytes::Bytes::from_static(b"HTTP/1.1 200 OK\r\nserver: up\r\nx-token: s3cret\r\n\r\n");
        let within = |v: &HeaderValue| block.as_ptr_range().contains(&v.as_bytes().as_ptr());
        let mut map = HeaderMap::new();
        map.append(header::SERVER, HeaderValue::from_maybe_shared(block.slice(25..27)).expect("valid"));
        let mut token = HeaderValue::from_maybe_shared(block.slice(38..44)).expect("valid");
        token.set_sensitive(true);
        map.append("x-token", token);
        map.append("x-token", HeaderValue::from_static("second"));
        assert!(map.values().take(2).all(within), "the test's values are slices of the block");

        own_values(&mut map);
        assert!(!map.values().any(within), "a value still points into the read block");
        assert_eq!(map[header::SERVER], "up");
        let tokens: Vec<_> = map.get_all("x-token").iter().collect();
        assert_eq!(tokens, ["s3cret", "second"]);
        assert!(tokens[0].is_sensitive() && !tokens[1].is_sensitive(), "sensitivity is kept");
    }
}
