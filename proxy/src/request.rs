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

/// The one host the request is for (RFC 9112 §3.2, RFC 9113 §8.3.1). Shared bytes, not a
/// copy: a Host header is cloned by reference count.
///
/// - HTTP/1.x: at most one Host header. An absolute-form target's authority wins and
///   replaces Host (§3.2.2), but an HTTP/1.1 request must still carry a Host, and a blank
///   one says the target has no authority: both are refused beside an absolute-form target.
///   HTTP/1.0 may omit Host (the host is then empty: the default server).
/// - HTTP/2: `:authority`, or Host when there is none; when both are sent they must name
///   the same host (case aside), as nginx requires.
/// - The host never carries userinfo (`user@`), a path, or characters a host cannot have.
fn request_host(req: &Request<Incoming>) -> Result<HeaderValue, ProxyError> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(ProxyError::BadRequest("several Host headers"));
    }
    let authority = req.uri().authority();
    if let Some(auth) = authority {
        check_host(auth.as_str().as_bytes(), "the request target's authority")?;
    }
    if let Some(host) = host {
        check_host(host.as_bytes(), "the Host header")?;
    }
    match (authority, host) {
        (Some(auth), host) if req.version() >= Version::HTTP_2 => {
            if host.is_some_and(|h| !h.as_bytes().eq_ignore_ascii_case(auth.as_str().as_bytes())) {
                return Err(ProxyError::BadRequest("the Host header differs from :authority"));
            }
            HeaderValue::from_str(auth.as_str()).map_err(|_| ProxyError::MissingHost)
        }
        (Some(auth), host) => {
            match host {
                Some(h) if h.is_empty() => {
                    return Err(ProxyError::BadRequest("a blank Host header beside an absolute-form target"))
                }
                None if req.version() == Version::HTTP_11 => return Err(ProxyError::MissingHost),
                _ => {}
            }
            HeaderValue::from_str(auth.as_str()).map_err(|_| ProxyError::MissingHost)
        }
        (None, Some(h)) => Ok(h.clone()),
        (None, None) if req.version() == Version::HTTP_10 => Ok(HeaderValue::from_static("")),
        (None, None) => Err(ProxyError::MissingHost),
    }
}

/// `host [":" port]` as RFC 3986 §3.2.2 has it: a reg-name (unreserved, sub-delims; no
/// percent-escapes) or a bracketed IP literal, then an optional all-digit port. Refuses what
/// would make the host ambiguous between weir and the upstream: userinfo (`@`), a path
/// (`/`, `?`, `#`, `\`), spaces and controls, a second `:` outside brackets.
fn check_host(value: &[u8], what: &'static str) -> Result<(), ProxyError> {
    let reason = |r: &'static str| ProxyError::BadHost { what, reason: r };
    if value.contains(&b'@') {
        return Err(reason("it carries userinfo (`user@`)"));
    }
    let (host, port) = match value.first() {
        Some(b'[') => {
            let end = value.iter().position(|&b| b == b']').ok_or(reason("an IP literal has no `]`"))?;
            let literal = std::str::from_utf8(&value[1..end]).ok();
            if literal.and_then(|l| l.parse::<std::net::Ipv6Addr>().ok()).is_none() {
                return Err(reason("the IP literal is not an IPv6 address"));
            }
            match &value[end + 1..] {
                [] => (&value[..0], None),
                [b':', port @ ..] => (&value[..0], Some(port)),
                _ => return Err(reason("characters follow the IP literal")),
            }
        }
        _ => match value.iter().position(|&b| b == b':') {
            Some(i) => (&value[..i], Some(&value[i + 1..])),
            None => (value, None),
        },
    };
    // Percent-escapes are refused too: no host a rule can name has one (Ingress hosts are
    // DNS names), and decoding them is one more way for two parsers to disagree.
    let reg_name = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b);
    if !host.iter().all(|&b| reg_name(b)) {
        return Err(reason("it carries a path or characters a host name cannot have"));
    }
    if host.is_empty() && port.is_some() && value.first() != Some(&b'[') {
        return Err(reason("it has a port but no host"));
    }
    if port.is_some_and(|p| !p.iter().all(u8::is_ascii_digit)) {
        return Err(reason("its port is not a number"));
    }
    Ok(())
}

/// The fuzz target's body for `check_host`: an accepted value holds no `@`, `/`, `?`, `#`,
/// `\\`, space or control, parses as a URI authority (when not empty), and its host part
/// is a prefix of it.
#[cfg(fuzzing)]
pub(crate) fn fuzz_host(value: &[u8]) {
    if check_host(value, "the Host header").is_err() {
        return;
    }
    assert!(!value.iter().any(|b| b"@/?#\\ ".contains(b) || b.is_ascii_control()), "accepted {value:?}");
    let text = std::str::from_utf8(value).expect("accepted hosts are ASCII");
    if !text.is_empty() {
        assert!(text.parse::<http::uri::Authority>().is_ok(), "accepted {text:?}, not an authority");
    }
    let bare = weir_config::matching::host_without_port(text);
    assert!(text.starts_with(bare), "{text:?} → {bare:?}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_a_reg_name_or_ip_literal_with_an_optional_numeric_port() {
        let ok = [
            "app.test",
            "App.Test:8080",
            "app.test.",
            "10.0.0.1:80",
            "[::1]",
            "[2001:db8::1]:443",
            "",
            "a_b-c~d",
        ];
        for host in ok {
            assert!(check_host(host.as_bytes(), "the Host header").is_ok(), "{host:?} refused");
        }
        let refused = [
            ("user@app.test", "userinfo"),
            ("app.test/x", "path"),
            ("app.test?x", "path"),
            ("app.test#x", "path"),
            ("app.test\\x", "path"),
            ("app test", "path"),
            ("app.test:80x", "port"),
            ("app.test:80:81", "port"),
            (":80", "no host"),
            ("[::1", "`]`"),
            ("[nope]", "IPv6"),
            ("[::1]x", "follow"),
            ("a%2e.test", "path or characters"),
        ];
        for (host, why) in refused {
            let err = check_host(host.as_bytes(), "the Host header").expect_err(host).to_string();
            assert!(
                err.starts_with("the Host header is not a usable host") && err.contains(why),
                "{host:?}: {err}"
            );
        }
    }
}
