//! Wire → model for access control, with field errors; called from `validate`.
//!
//! Strict where the annotations are lenient: a CIDR with host bits set, an auth URL with a
//! variable or a quote, a hash in an unknown format are each a field error, and any field
//! error rejects the whole document.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};

use super::doc::{AccessDoc, AuthCacheDoc, BasicAuthDoc, ClientAddressDoc, DenyDoc, ExternalAuthDoc};
use super::external::{Template, Vars, DEFAULT_AUTH_TIMEOUT, DEFAULT_CACHE_DURATION};
use super::{Access, AuthCache, BasicAuth, CidrSet, ClientAddress, Deny, ExternalAuth, IpRules};
use crate::field::FieldError;

struct Errs<'a>(&'a mut Vec<FieldError>);

impl Errs<'_> {
    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), reason: reason.into() });
    }
}

/// A rule's `deny` and `access`.
pub(crate) fn rule(
    errs: &mut Vec<FieldError>,
    at: &str,
    deny: Option<&DenyDoc>,
    access: Option<&AccessDoc>,
) -> (Option<Deny>, Option<Box<Access>>) {
    let mut errs = Errs(errs);
    let deny = deny.map(|d| deny_rule(&mut errs, &format!("{at}.deny"), d));
    let access = access.and_then(|a| access_rules(&mut errs, &format!("{at}.access"), a)).map(Box::new);
    (deny, access)
}

/// While the proxy does not enforce them ([`super::ENFORCED`]), a rule with `deny` or
/// `access` forwards nothing: its main backend loses its endpoints and its canary goes.
pub(crate) fn close_unenforced(route: &mut crate::model::Route, table: &mut crate::model::RouteTable) {
    if super::ENFORCED || (route.deny.is_none() && route.access.is_none()) {
        return;
    }
    let closed = std::sync::Arc::new(crate::model::Backend {
        index: route.stable.index,
        id: route.stable.id.clone(),
        endpoints: Vec::new(),
    });
    if let Some(slot) = table.backends.get_mut(closed.index) {
        *slot = closed.clone();
    }
    route.stable = closed;
    route.canary = None;
}

/// The table's `clientAddress`; the TCP peer when absent.
pub(crate) fn client_address(errs: &mut Vec<FieldError>, doc: Option<&ClientAddressDoc>) -> ClientAddress {
    let mut errs = Errs(errs);
    let Some(doc) = doc else { return ClientAddress::Peer };
    let trusted = cidrs(&mut errs, "clientAddress.trustedProxies", &doc.trusted_proxies);
    match doc.from.as_deref() {
        None | Some("peer") => {
            if !doc.trusted_proxies.is_empty() {
                errs.push(
                    "clientAddress.trustedProxies",
                    "is used only with `from: forwardedFor` or `from: proxyProtocol`",
                );
            }
            ClientAddress::Peer
        }
        Some("forwardedFor") => {
            if doc.trusted_proxies.is_empty() {
                errs.push(
                    "clientAddress.trustedProxies",
                    "is required with `from: forwardedFor`: believing every peer's X-Forwarded-For lets \
                     any client pick its address (list 0.0.0.0/0 and ::/0 if that is really meant)",
                );
            }
            ClientAddress::ForwardedFor { trusted }
        }
        Some("proxyProtocol") => {
            ClientAddress::ProxyProtocol { trusted: (!trusted.is_empty()).then_some(trusted) }
        }
        Some(other) => {
            errs.push(
                "clientAddress.from",
                format!("{other:?} is not one of peer, forwardedFor, proxyProtocol"),
            );
            ClientAddress::Peer
        }
    }
}

fn deny_rule(errs: &mut Errs<'_>, at: &str, doc: &DenyDoc) -> Deny {
    let status = match doc.status {
        None => StatusCode::SERVICE_UNAVAILABLE,
        Some(s) => match StatusCode::from_u16(s) {
            Ok(code) if (400..=599).contains(&s) => code,
            _ => {
                errs.push(format!("{at}.status"), format!("{s} is not a 4xx or 5xx status"));
                StatusCode::SERVICE_UNAVAILABLE
            }
        },
    };
    if doc.reason.trim().is_empty() {
        errs.push(format!("{at}.reason"), "is required: say why the rule denies");
    } else if doc.reason.len() > 1024 || doc.reason.chars().any(char::is_control) {
        errs.push(format!("{at}.reason"), "must be one line of at most 1024 bytes");
    }
    Deny { status, reason: doc.reason.clone() }
}

fn access_rules(errs: &mut Errs<'_>, at: &str, doc: &AccessDoc) -> Option<Access> {
    let allow = cidrs(errs, &format!("{at}.allow"), &doc.allow);
    let deny = cidrs(errs, &format!("{at}.deny"), &doc.deny);
    let ip = (!allow.is_empty() || !deny.is_empty()).then_some(IpRules { allow, deny });
    let basic = doc.basic_auth.as_ref().and_then(|b| basic_auth(errs, &format!("{at}.basicAuth"), b));
    let external =
        doc.external_auth.as_ref().and_then(|e| external_auth(errs, &format!("{at}.externalAuth"), e));
    (ip.is_some() || basic.is_some() || external.is_some()).then_some(Access { ip, basic, external })
}

/// CIDRs or bare addresses ([`super::parse_cidrs`]).
fn cidrs(errs: &mut Errs<'_>, at: &str, list: &[String]) -> CidrSet {
    super::parse_cidrs(errs.0, at, list)
}

fn basic_auth(errs: &mut Errs<'_>, at: &str, doc: &BasicAuthDoc) -> Option<BasicAuth> {
    let realm = doc.realm.clone().unwrap_or_default();
    if realm.len() > 256 || !realm.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        errs.push(
            format!("{at}.realm"),
            "must be at most 256 printable ASCII characters without '\"' or '\\'",
        );
    }
    match BasicAuth::new(realm, &doc.users) {
        Ok(auth) => Some(auth),
        Err(problems) => {
            let from = doc.source.as_deref().map_or(String::new(), |s| format!(" (from {s})"));
            for (i, reason) in problems {
                errs.push(format!("{at}.users[{i}]"), format!("{reason}{from}"));
            }
            None
        }
    }
}

/// Characters never accepted in an auth or signin URL: whitespace, controls, quotes and
/// the characters nginx or a shell would give a meaning to.
fn unsafe_url_char(c: char) -> bool {
    c.is_whitespace() || c.is_control() || "\"'`\\{}<>|^;".contains(c)
}

fn http_url(s: &str) -> Result<Uri, String> {
    let uri: Uri = s.parse().map_err(|_| format!("{s:?} is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("{s:?} is not an absolute http:// or https:// URL"));
    }
    match uri.authority() {
        None => Err(format!("{s:?} has no host")),
        Some(a) if a.as_str().contains('@') => {
            Err(format!("{s:?}: credentials in the URL are not supported"))
        }
        Some(a) if a.host().is_empty() => Err(format!("{s:?} has no host")),
        Some(_) => Ok(uri),
    }
}

fn external_auth(errs: &mut Errs<'_>, at: &str, doc: &ExternalAuthDoc) -> Option<ExternalAuth> {
    let before = errs.0.len();
    let url = if doc.url.contains('$') || doc.url.chars().any(unsafe_url_char) {
        errs.push(
            format!("{at}.url"),
            "must not contain whitespace, quotes, '$', ';', '\\' or control characters",
        );
        None
    } else {
        http_url(&doc.url).map_err(|r| errs.push(format!("{at}.url"), r)).ok()
    };
    const METHODS: [&str; 9] =
        ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"];
    let method = match doc.method.as_deref() {
        None => Method::GET,
        Some(m) if METHODS.contains(&m) => Method::from_bytes(m.as_bytes()).unwrap_or(Method::GET),
        Some(m) => {
            errs.push(format!("{at}.method"), format!("{m:?} is not one of {}", METHODS.join(", ")));
            Method::GET
        }
    };
    let signin = doc.signin.as_deref().and_then(|s| {
        let checked = if s.chars().any(unsafe_url_char) {
            Err("must not contain whitespace, quotes, ';', '\\' or control characters".to_string())
        } else {
            Template::parse(s, Vars::Url).and_then(|t| {
                let sample = t.render(|_| "x.example".into());
                http_url(&sample)
                    .map(|_| t)
                    .map_err(|_| format!("{s:?} is not an absolute http:// or https:// URL"))
            })
        };
        checked.map_err(|r| errs.push(format!("{at}.signin"), r)).ok()
    });
    let param = doc.signin_redirect_param.clone().unwrap_or_else(|| "rd".into());
    if param.is_empty() || !param.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        errs.push(format!("{at}.signinRedirectParam"), format!("{param:?} is not a query parameter name"));
    }
    let mut response_headers = Vec::new();
    for (i, h) in doc.response_headers.iter().enumerate() {
        match HeaderName::from_bytes(h.trim().as_bytes()) {
            Ok(n) if is_framing(&n) => errs
                .push(format!("{at}.responseHeaders[{i}]"), format!("{h:?} cannot be copied onto a request")),
            Ok(n) => response_headers.push(n),
            Err(_) => errs.push(format!("{at}.responseHeaders[{i}]"), format!("{h:?} is not a header name")),
        }
    }
    let mut proxy_set_headers = Vec::new();
    for (name, value) in &doc.proxy_set_headers {
        let field = format!("{at}.proxySetHeaders.{name}");
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            (Ok(n), _) if is_framing(&n) => errs.push(field, "cannot be set on the subrequest"),
            (Ok(n), Ok(v)) => proxy_set_headers.push((n, v)),
            (Err(_), _) => errs.push(field, format!("{name:?} is not a header name")),
            (_, Err(_)) => errs.push(field, "the value has control characters"),
        }
    }
    let cache = doc.cache.as_ref().and_then(|c| cache(errs, &format!("{at}.cache"), c));
    let timeout =
        duration(errs, &format!("{at}.timeout"), doc.timeout.as_deref()).unwrap_or(DEFAULT_AUTH_TIMEOUT);
    let url = url?;
    (errs.0.len() == before).then_some(ExternalAuth {
        url,
        method,
        signin,
        signin_redirect_param: param,
        response_headers,
        proxy_set_headers,
        cache,
        timeout,
    })
}

/// Headers that frame or route a message: never copied in nor set by configuration.
fn is_framing(n: &HeaderName) -> bool {
    use http::header::*;
    [HOST, CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION, UPGRADE, TE, TRAILER].contains(n)
        || n.as_str() == "keep-alive"
        || n.as_str() == "proxy-connection"
}

fn cache(errs: &mut Errs<'_>, at: &str, doc: &AuthCacheDoc) -> Option<AuthCache> {
    let key = match Template::parse(&doc.key, Vars::Key) {
        _ if doc.key.trim().is_empty() => {
            errs.push(format!("{at}.key"), "is required: without a key every client would share one answer");
            None
        }
        Ok(t) => Some(t),
        Err(r) => {
            errs.push(format!("{at}.key"), r);
            None
        }
    };
    let mut durations = Vec::new();
    if doc.durations.is_empty() {
        durations.extend([200, 202, 401].map(|s| (s, DEFAULT_CACHE_DURATION)));
    }
    for (i, d) in doc.durations.iter().enumerate() {
        let Some(ttl) = duration(errs, &format!("{at}.durations[{i}].duration"), Some(&d.duration)) else {
            continue;
        };
        if d.statuses.is_empty() {
            errs.push(format!("{at}.durations[{i}].statuses"), "must list at least one status");
        }
        for (j, s) in d.statuses.iter().enumerate() {
            if !(100..=599).contains(s) {
                errs.push(format!("{at}.durations[{i}].statuses[{j}]"), format!("{s} is not an HTTP status"));
            } else if !durations.iter().any(|(have, _)| have == s) {
                durations.push((*s, ttl));
            }
        }
    }
    key.map(|key| AuthCache { key, durations })
}

fn duration(errs: &mut Errs<'_>, field: &str, v: Option<&str>) -> Option<Duration> {
    let s = v?;
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => {
            errs.push(field, format!("{s:?} must be greater than zero"));
            None
        }
        Err(e) => {
            errs.push(field, format!("{s:?} is not a duration like 500ms, 5s or 2m: {e}"));
            None
        }
    }
}
