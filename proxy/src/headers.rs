//! Request and response header rewriting, as ingress-nginx does it.
//!
//! Upstream requests keep the client's Host and get X-Forwarded-For (appended),
//! X-Forwarded-Proto/Host/Port, X-Real-IP and X-Request-ID (passed through or generated).
//! Hop-by-hop headers (Connection and every header it names, Keep-Alive, Proxy-Connection,
//! TE, Trailer, Transfer-Encoding, Upgrade) are removed in both directions; for an upgrade
//! request, Connection: upgrade and Upgrade are put back. Several Cookie fields (an HTTP/2
//! client's) become one line for an HTTP/1.1 upstream.

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

/// The headers a Connection header names (hop-by-hop too). The common tokens, keep-alive
/// and close, name no other header, so the usual message allocates nothing here.
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
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

/// Fold several Cookie fields into one, `; `-separated, as RFC 9113 §8.2.3 requires before an
/// HTTP/2 request goes on over HTTP/1.1 (HTTP/2 clients may send one field per cookie;
/// HTTP/1.1 servers expect one line).
pub fn join_cookies(headers: &mut HeaderMap) {
    if let Some(joined) = joined_cookies(headers) {
        headers.insert(header::COOKIE, joined);
    }
}

/// The Cookie fields of `headers` as one value, when there are several.
fn joined_cookies(headers: &HeaderMap) -> Option<HeaderValue> {
    let cookies = headers.get_all(header::COOKIE);
    cookies.iter().nth(1)?;
    HeaderValue::from_bytes(&joined(cookies.iter(), b"; ")).ok()
}

/// Header values one after the other, `separator` between them.
fn joined<'a>(values: impl Iterator<Item = &'a HeaderValue>, separator: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        if !out.is_empty() {
            out.extend_from_slice(separator);
        }
        out.extend_from_slice(value.as_bytes());
    }
    out
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

/// How many headers [`Forwarding::insert_into`] may add (and Host, for HTTP/2 clients).
pub const ADDED_PER_REQUEST: usize = 7;

/// The forwarding headers of one request, decided once: X-Forwarded-For (the client's
/// list with the client appended), X-Real-IP, X-Forwarded-Proto/Host/Port, and X-Request-ID
/// (the client's, or a new one). Applied to a header map for hyper's client
/// ([`Forwarding::insert_into`]) or written straight into a request head for weir's own
/// exchange ([`write_request_head`]); both give the upstream the same headers. Values the
/// head writer can take as bytes (a new request id, the host without its port) are only
/// made into header values when a header map or the access log needs them.
#[derive(Clone)]
pub struct Forwarding {
    xff: HeaderValue,
    real_ip: HeaderValue,
    proto: HeaderValue,
    host: ForwardedHost,
    port: HeaderValue,
    request_id: RequestId,
}

#[derive(Clone)]
enum ForwardedHost {
    /// The Host value as sent (it has no port).
    Whole(HeaderValue),
    /// The first `usize` bytes of the Host value (the rest was `:port`).
    Bare(HeaderValue, usize),
}

#[derive(Clone)]
enum RequestId {
    /// The client's X-Request-ID, passed through.
    Client(HeaderValue),
    /// One weir made (32 hex digits), to be added.
    New([u8; 32]),
}

impl Forwarding {
    /// `host_value` is the request's host as sent (port included if it had one), and
    /// `bare_len` the length of its host part (`matching::host_without_port`).
    pub fn new(headers: &HeaderMap, client: &ClientInfo, bare_len: usize, host_value: HeaderValue) -> Self {
        // X-Forwarded-For and the first X-Request-ID, found in one pass over the (few)
        // headers: cheaper than two lookups, which hash each custom name.
        let (mut has_xff, mut client_id) = (false, None);
        for (name, value) in headers {
            if *name == X_FORWARDED_FOR {
                has_xff = true;
            } else if *name == X_REQUEST_ID {
                client_id.get_or_insert(value);
            }
        }
        // The client's list, all its lines in order (RFC 9110 §5.3: one list), then the
        // client: weir sends one line.
        let xff = has_xff
            .then(|| joined(headers.get_all(&X_FORWARDED_FOR).iter().filter(|l| !l.is_empty()), b", "));
        let xff = match xff {
            Some(mut list) if !list.is_empty() => {
                list.extend_from_slice(b", ");
                list.extend_from_slice(client.ip.as_bytes());
                HeaderValue::from_bytes(&list).ok()
            }
            _ => None,
        };
        let host = match bare_len == host_value.len() {
            true => ForwardedHost::Whole(host_value),
            false => ForwardedHost::Bare(host_value, bare_len),
        };
        let request_id = match client_id {
            Some(id) if !id.is_empty() => RequestId::Client(id.clone()),
            _ => RequestId::New(new_request_id_bytes()),
        };
        Forwarding {
            xff: xff.unwrap_or_else(|| client.ip.clone()),
            real_ip: client.ip.clone(),
            proto: HeaderValue::from_static(client.scheme),
            host,
            port: client.server_port.clone(),
            request_id,
        }
    }

    /// The request id in force, as a header value.
    pub fn request_id(&self) -> HeaderValue {
        match &self.request_id {
            RequestId::Client(id) => id.clone(),
            RequestId::New(id) => header_value(id),
        }
    }

    fn id_is_new(&self) -> bool {
        matches!(self.request_id, RequestId::New(_))
    }

    /// Set the headers in `headers`, replacing the client's values of the same names.
    pub fn insert_into(self, headers: &mut HeaderMap) {
        let id = match self.request_id {
            RequestId::New(id) => Some(header_value(&id)),
            RequestId::Client(_) => None,
        };
        headers.insert(&X_FORWARDED_FOR, self.xff);
        headers.insert(&X_REAL_IP, self.real_ip);
        headers.insert(&X_FORWARDED_PROTO, self.proto);
        let host = match self.host {
            ForwardedHost::Whole(h) => h,
            ForwardedHost::Bare(h, len) => header_value(&h.as_bytes()[..len]),
        };
        headers.insert(&X_FORWARDED_HOST, host);
        headers.insert(&X_FORWARDED_PORT, self.port);
        if let Some(id) = id {
            headers.insert(&X_REQUEST_ID, id);
        }
    }

    /// Whether the client's header `name` is replaced by one of these.
    fn replaces(&self, name: &HeaderName) -> bool {
        // All custom names: compared by length first, so most names cost one comparison.
        *name == X_FORWARDED_FOR
            || *name == X_REAL_IP
            || *name == X_FORWARDED_PROTO
            || *name == X_FORWARDED_PORT
            || *name == X_FORWARDED_HOST
            || (self.id_is_new() && *name == X_REQUEST_ID)
    }

    fn each(&self, mut f: impl FnMut(&HeaderName, &[u8])) {
        f(&X_FORWARDED_FOR, self.xff.as_bytes());
        f(&X_REAL_IP, self.real_ip.as_bytes());
        f(&X_FORWARDED_PROTO, self.proto.as_bytes());
        match &self.host {
            ForwardedHost::Whole(h) => f(&X_FORWARDED_HOST, h.as_bytes()),
            ForwardedHost::Bare(h, len) => f(&X_FORWARDED_HOST, &h.as_bytes()[..*len]),
        }
        f(&X_FORWARDED_PORT, self.port.as_bytes());
        if let RequestId::New(id) = &self.request_id {
            f(&X_REQUEST_ID, id);
        }
    }
}

/// Bytes taken from a valid header value (or weir's own hex digits) as a header value.
fn header_value(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).unwrap_or(HeaderValue::from_static("-"))
}

/// Set the forwarding headers (see [`Forwarding`]) and return the request id in force.
pub fn add_forwarding(
    headers: &mut HeaderMap,
    client: &ClientInfo,
    bare_len: usize,
    host_value: HeaderValue,
) -> HeaderValue {
    let forwarding = Forwarding::new(headers, client, bare_len, host_value);
    let id = forwarding.request_id();
    forwarding.insert_into(headers);
    id
}

/// The HTTP/1.1 request head weir sends upstream for the client's request, written
/// straight from the client's headers: what [`strip_hop_by_hop`], removing Expect,
/// [`Forwarding::insert_into`] and adding a missing Host do to a header map, without
/// building one. `host` is written when the client sent no Host header.
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &http::Method,
    path_and_query: &str,
    client: &HeaderMap,
    forwarding: &Forwarding,
    host: &HeaderValue,
) {
    let named = match client.contains_key(header::CONNECTION) {
        true => connection_named(client),
        false => Vec::new(),
    };
    let mut has_host = false;
    let mut cookies_written = false;
    out.reserve(method.as_str().len() + path_and_query.len() + 13 + 64 * (client.len() + 8));
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut line = |name: &HeaderName, value: &[u8]| {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    for (name, value) in client {
        if is_hop_by_hop(name) || name == header::EXPECT || forwarding.replaces(name) || named.contains(name)
        {
            continue;
        }
        has_host |= name == header::HOST;
        if name == header::COOKIE {
            // One Cookie line: an HTTP/2 client may have sent one field per cookie.
            if !cookies_written {
                cookies_written = true;
                let cookies = joined_cookies(client);
                line(name, cookies.as_ref().unwrap_or(value).as_bytes());
            }
            continue;
        }
        line(name, value.as_bytes());
    }
    if !has_host {
        line(&header::HOST, host.as_bytes());
    }
    forwarding.each(&mut line);
    out.extend_from_slice(b"\r\n");
}

/// 16 random bytes as 32 hex digits, like nginx's `$request_id`.
fn new_request_id_bytes() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    let (a, b) = (fastrand::u64(..), fastrand::u64(..));
    for (i, byte) in a.to_be_bytes().iter().chain(b.to_be_bytes().iter()).enumerate() {
        out[2 * i] = HEX[(byte >> 4) as usize];
        out[2 * i + 1] = HEX[(byte & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The headers of a request head, grouped by name in a stable order.
    fn lines(head: &[u8]) -> Vec<(String, String)> {
        let mut parsed = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut parsed);
        assert!(req.parse(head).expect("the head parses").is_complete());
        let mut out: Vec<_> = req
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn cookie_fields_are_joined_into_one_line() {
        let mut map = HeaderMap::new();
        map.append(header::COOKIE, HeaderValue::from_static("a=1"));
        map.append(header::ACCEPT, HeaderValue::from_static("*/*"));
        map.append(header::COOKIE, HeaderValue::from_static("b=2; c=3"));
        join_cookies(&mut map);
        let cookies: Vec<_> = map.get_all(header::COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; b=2; c=3"]);
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn the_written_head_carries_what_the_header_map_path_sends() {
        let client = ClientInfo::new("10.1.2.3".parse().unwrap(), "http", 8080);
        let cases: &[&[(&str, &str)]] = &[
            &[("host", "app.test"), ("accept", "*/*")],
            &[("host", "app.test:8080"), ("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "2.2.2.2")],
            &[
                ("host", "app.test"),
                ("x-request-id", "abc"),
                ("x-real-ip", "spoofed"),
                ("expect", "100-continue"),
            ],
            &[
                ("host", "app.test"),
                ("x-request-id", ""),
                ("x-forwarded-host", "evil"),
                ("x-forwarded-port", "1"),
            ],
            &[
                ("connection", "keep-alive, x-secret"),
                ("x-secret", "s"),
                ("keep-alive", "5"),
                ("te", "trailers"),
            ],
            &[("accept", "a"), ("accept", "b"), ("proxy-connection", "x"), ("upgrade", "h2c")],
            &[("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2; c=3")],
            &[("cookie", "only=1")],
        ];
        for case in cases {
            let mut map = HeaderMap::new();
            for (k, v) in *case {
                map.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            }
            let host_value = map.get(header::HOST).cloned().unwrap_or(HeaderValue::from_static("app.test"));
            let host = host_value.to_str().unwrap().to_owned();
            let bare_len = weir_config::matching::host_without_port(&host).len();
            let forwarding = Forwarding::new(&map, &client, bare_len, host_value.clone());

            let mut written = Vec::new();
            write_request_head(&mut written, &http::Method::GET, "/p", &map, &forwarding, &host_value);
            assert!(written.starts_with(b"GET /p HTTP/1.1\r\n"));

            let mut edited = map.clone();
            strip_hop_by_hop(&mut edited);
            edited.remove(header::EXPECT);
            forwarding.clone().insert_into(&mut edited);
            if !edited.contains_key(header::HOST) {
                edited.insert(header::HOST, host_value.clone());
            }
            join_cookies(&mut edited);
            let mut expected: Vec<_> =
                edited.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(lines(&written), expected, "case {case:?}");
        }
    }
}
