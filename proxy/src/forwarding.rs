//! The rewrite_request step's header rules, as ingress-nginx applies them: upstream
//! requests carry the request's one host (check_request's) as Host, and get X-Forwarded-For
//! (appended), X-Forwarded-Proto, -Host and -Port, X-Real-IP and X-Request-ID (passed
//! through, or generated like nginx's `$request_id`); hop-by-hop headers and Expect stay
//! behind.
//!
//! [`RequestHeaders`] decides once per request, with one rule for which client headers go
//! on ([`RequestHeaders::passes`]), and has the two outputs the two clients need: a request
//! head written straight from the client's headers for weir's own exchange
//! ([`RequestHeaders::write_head`]), or the client's header map edited in place for hyper's
//! client ([`RequestHeaders::apply_http1`], [`RequestHeaders::apply_http2`]).

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::headers::{connection_named, is_hop_by_hop, joined, joined_cookies};

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the proxy knows about the client side of a connection, rendered once per
/// connection (not per request): formatting an address is a measurable share of a request.
#[derive(Clone)]
pub struct ClientInfo {
    /// The connection's client IP (the TCP peer, or the PROXY protocol's source), as
    /// X-Forwarded-For appends it.
    pub ip: HeaderValue,
    /// The client address X-Real-IP carries: `ip`, unless the table believes trusted
    /// proxies' X-Forwarded-For (then the client found there, per request).
    pub real_ip: HeaderValue,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The port the client connected to, for X-Forwarded-Port.
    pub server_port: HeaderValue,
}

impl ClientInfo {
    pub fn new(ip: IpAddr, scheme: &'static str, server_port: u16) -> Self {
        let ip = header_value(ip.to_string().as_bytes());
        ClientInfo { real_ip: ip.clone(), ip, scheme, server_port: HeaderValue::from(server_port) }
    }

    /// This request's client as X-Real-IP carries it (`real_ip` for an address weir found).
    pub fn with_real_ip(&self, real_ip: IpAddr) -> ClientInfo {
        ClientInfo { real_ip: header_value(real_ip.to_string().as_bytes()), ..self.clone() }
    }
}

/// How many headers the rules may add to a header map (and Host, for HTTP/2 clients).
const ADDED_PER_REQUEST: usize = 7;
/// Room reserved per header line when a request head is written.
const HEAD_BYTES_PER_LINE: usize = 64;

/// The forwarding headers of one request, decided once: X-Forwarded-For (the client's
/// list with the client appended), X-Real-IP, X-Forwarded-Proto/Host/Port, and X-Request-ID
/// (the client's first, or a new one; one line either way, the id weir records). Values the head writer can take as bytes (a new request
/// id, the host without its port) are only made into header values when a header map or
/// the access log needs them.
#[derive(Clone)]
struct Forwarding {
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
    fn new(headers: &HeaderMap, client: &ClientInfo, bare_len: usize, host_value: HeaderValue) -> Self {
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
            real_ip: client.real_ip.clone(),
            proto: HeaderValue::from_static(client.scheme),
            host,
            port: client.server_port.clone(),
            request_id,
        }
    }

    /// The request id in force, as a header value.
    fn request_id(&self) -> HeaderValue {
        match &self.request_id {
            RequestId::Client(id) => id.clone(),
            RequestId::New(id) => header_value(id),
        }
    }

    /// The request's one host as sent (port included): the upstream's Host.
    fn host(&self) -> &HeaderValue {
        match &self.host {
            ForwardedHost::Whole(h) | ForwardedHost::Bare(h, _) => h,
        }
    }

    /// Set the headers in `headers`, replacing the client's values of the same names.
    fn insert_into(self, headers: &mut HeaderMap) {
        let id = match self.request_id {
            RequestId::New(id) => header_value(&id),
            RequestId::Client(id) => id,
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
        headers.insert(&X_REQUEST_ID, id);
    }

    /// Whether the client's header `name` is replaced by one of these.
    fn replaces(&self, name: &HeaderName) -> bool {
        // All custom names: compared by length first, so most names cost one comparison.
        *name == X_FORWARDED_FOR
            || *name == X_REAL_IP
            || *name == X_FORWARDED_PROTO
            || *name == X_FORWARDED_PORT
            || *name == X_FORWARDED_HOST
            || *name == X_REQUEST_ID
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
        match &self.request_id {
            RequestId::New(id) => f(&X_REQUEST_ID, id),
            RequestId::Client(id) => f(&X_REQUEST_ID, id.as_bytes()),
        }
    }
}

/// Bytes taken from a valid header value (or weir's own hex digits) as a header value.
fn header_value(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).unwrap_or(HeaderValue::from_static("-"))
}

/// The header rules of one request (see the module docs).
#[derive(Clone)]
pub struct RequestHeaders {
    forwarding: Forwarding,
    /// The rule's `upstreamHost` (ingress-nginx's upstream-vhost): the upstream's Host
    /// instead of the request's; X-Forwarded-Host keeps the request's.
    upstream_host: Option<HeaderValue>,
    /// The headers the client's Connection header names: hop-by-hop too. Empty (and not
    /// allocated) for the usual `keep-alive` or `close`.
    named: Vec<HeaderName>,
}

impl RequestHeaders {
    /// The rules for a request with headers `client` from `info`'s connection; `host` is the
    /// request's host as sent (port included if it had one) and `bare_len` the length of
    /// its host part (`matching::host_without_port`).
    pub fn new(client: &HeaderMap, info: &ClientInfo, bare_len: usize, host: HeaderValue) -> Self {
        let named = match client.contains_key(header::CONNECTION) {
            true => connection_named(client),
            false => Vec::new(),
        };
        RequestHeaders {
            forwarding: Forwarding::new(client, info, bare_len, host),
            upstream_host: None,
            named,
        }
    }

    /// Send `host` as the upstream's Host (`upstreamHost`).
    pub fn with_upstream_host(mut self, host: Option<&HeaderValue>) -> Self {
        self.upstream_host = host.cloned();
        self
    }

    /// The Host the upstream gets.
    fn upstream_host(&self) -> &HeaderValue {
        self.upstream_host.as_ref().unwrap_or_else(|| self.forwarding.host())
    }

    /// The one rule for the client's headers: whether header `name` goes upstream as sent.
    /// Hop-by-hop headers, Host (weir writes the request's one host, check_request's, which an
    /// absolute-form target may have given), Expect (weir answers it when it reads the body),
    /// those the Connection header names, and those the forwarding headers replace stay
    /// behind.
    pub fn passes(&self, name: &HeaderName) -> bool {
        !(is_hop_by_hop(name)
            || name == header::HOST
            || name == header::EXPECT
            || self.forwarding.replaces(name)
            || self.named.contains(name))
    }

    /// The request id in force, as a header value.
    pub fn request_id(&self) -> HeaderValue {
        self.forwarding.request_id()
    }

    /// Output for weir's own exchange: the HTTP/1.1 request head for `client`'s headers,
    /// written straight into `out` without building a header map. Several Cookie fields
    /// become one line; Host, first, is the request's one host.
    pub fn write_head(
        &self,
        out: &mut Vec<u8>,
        method: &http::Method,
        path_and_query: &str,
        client: &HeaderMap,
    ) {
        let mut cookies_written = false;
        out.reserve(
            method.as_str().len() + path_and_query.len() + 13 + HEAD_BYTES_PER_LINE * (client.len() + 8),
        );
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
        line(&header::HOST, self.upstream_host().as_bytes());
        for (name, value) in client {
            if !self.passes(name) {
                continue;
            }
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
        self.forwarding.each(&mut line);
        out.extend_from_slice(b"\r\n");
    }

    /// Output for hyper's client to an HTTP/1.1 upstream: `headers` (the client's) edited
    /// into what [`RequestHeaders::write_head`] writes. Returns the request id in force.
    pub fn apply_http1(self, headers: &mut HeaderMap) -> HeaderValue {
        if let Some(joined) = joined_cookies(headers) {
            headers.insert(header::COOKIE, joined);
        }
        self.apply(headers, false)
    }

    /// Output for hyper's client to an HTTP/2 upstream: as [`RequestHeaders::apply_http1`],
    /// except that the host travels as `:authority`, never as a Host header, and cookies may
    /// stay separate fields. Returns the request id in force.
    pub fn apply_http2(self, headers: &mut HeaderMap) -> HeaderValue {
        self.apply(headers, true)
    }

    fn apply(self, headers: &mut HeaderMap, http2: bool) -> HeaderValue {
        let left_behind: Vec<HeaderName> =
            headers.keys().filter(|name| !self.passes(name)).cloned().collect();
        for name in left_behind {
            headers.remove(name);
        }
        // Room for the forwarding headers: one growth now instead of one or two later.
        headers.reserve(ADDED_PER_REQUEST);
        if !http2 {
            headers.insert(header::HOST, self.upstream_host().clone());
        }
        let id = self.forwarding.request_id();
        self.forwarding.insert_into(headers);
        id
    }
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

/// The fuzz target's body for the forwarding headers: `client` (arbitrary header lines, the
/// valid ones kept) from `ip`, for the request host `host`. Properties: both outputs (the
/// written head and the edited map) carry the same headers; exactly one Host (the host),
/// X-Forwarded-For (the client's list, then `ip`), X-Real-IP (`ip`), X-Forwarded-Host (the
/// host without its port) and X-Request-ID; no hop-by-hop header.
#[cfg(fuzzing)]
pub(crate) fn fuzz_forwarding(client: &[(&[u8], &[u8])], host: &str, ip: IpAddr) {
    let mut map = HeaderMap::new();
    for (name, value) in client.iter().take(32) {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    let Ok(host_value) = HeaderValue::from_str(host) else { return };
    let bare = weir_config::matching::host_without_port(host);
    // `bare` is a prefix of `host` unless userinfo was cut off its front (check_request
    // refuses those); the rules take the host part by length.
    if !host.starts_with(bare) {
        return;
    }
    let info = ClientInfo::new(ip, "http", 80);
    let rules = RequestHeaders::new(&map, &info, bare.len(), host_value);
    let mut head = Vec::new();
    rules.write_head(&mut head, &http::Method::GET, "/", &map);
    let mut parsed = [httparse::EMPTY_HEADER; 96];
    let mut req = httparse::Request::new(&mut parsed);
    let parsed = req.parse(&head).expect("weir's own head parses");
    assert!(parsed.is_complete(), "the written head is complete");
    // Compared without surrounding whitespace: a parser drops it (RFC 9110 §5.5 OWS), and a
    // header value may end in a space.
    let mut written: Vec<(String, Vec<u8>)> =
        req.headers.iter().map(|h| (h.name.to_ascii_lowercase(), h.value.trim_ascii().to_vec())).collect();
    let mut edited = map.clone();
    rules.apply_http1(&mut edited);
    let mut from_map: Vec<(String, Vec<u8>)> =
        edited.iter().map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().trim_ascii().to_vec())).collect();
    written.sort();
    from_map.sort();
    assert_eq!(written, from_map, "the two outputs differ");
    let one = |name: &str| {
        let values: Vec<&[u8]> = written.iter().filter(|(n, _)| n == name).map(|(_, v)| &v[..]).collect();
        assert_eq!(values.len(), 1, "{name}: {values:?}");
        values[0]
    };
    let ip_text = ip.to_string();
    assert_eq!(one("host"), host.as_bytes().trim_ascii());
    assert_eq!(one("x-real-ip"), ip_text.as_bytes());
    assert_eq!(one("x-forwarded-host"), bare.as_bytes().trim_ascii());
    let xff = one("x-forwarded-for");
    assert!(
        xff == ip_text.as_bytes() || xff.ends_with(format!(", {ip_text}").as_bytes()),
        "X-Forwarded-For does not end with the client: {xff:?}"
    );
    one("x-request-id");
    for (name, _) in &written {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        assert!(!is_hop_by_hop(&name) && name != header::EXPECT, "{name} was forwarded");
    }
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
            let rules = RequestHeaders::new(&map, &client, bare_len, host_value.clone());

            let mut written = Vec::new();
            rules.write_head(&mut written, &http::Method::GET, "/p", &map);
            assert!(written.starts_with(b"GET /p HTTP/1.1\r\n"));

            let mut edited = map.clone();
            rules.apply_http1(&mut edited);
            let mut expected: Vec<_> =
                edited.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(lines(&written), expected, "case {case:?}");
        }
    }
}
