//! A rule's CORS (ingress-nginx's `enable-cors` and `cors-*`): which origins it answers, and
//! the headers it adds, built once per table.
//!
//! As ingress-nginx: with `*` every request is a CORS request (`Access-Control-Allow-Origin:
//! *`); otherwise a request whose `Origin` is one of the listed origins (a `*.` label matches
//! one DNS label; compared case-insensitively) is. A CORS request gets the headers on its
//! answer, whatever answers it; a CORS `OPTIONS` request is answered by weir with 204 (a
//! preflight), before any access check, as nginx's rewrite phase does. Other requests pass
//! untouched.

use http::{HeaderName, HeaderValue};
use regex::Regex;

use crate::field::FieldError;
use crate::wire::CorsDoc;

pub const DEFAULT_METHODS: &str = "GET, PUT, POST, DELETE, PATCH, OPTIONS";
pub const DEFAULT_HEADERS: &str =
    "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization";
pub const DEFAULT_MAX_AGE: u64 = 1_728_000;

/// Which origins a rule's CORS answers.
#[derive(Debug)]
enum Origins {
    Any,
    /// `(?i)^(o1|o2|…)$`, each origin literal but a `*.` label.
    Listed(Regex),
}

/// A rule's CORS policy.
#[derive(Debug)]
pub struct Cors {
    origins: Origins,
    /// Every header but Allow-Origin, in ingress-nginx's order.
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Cors {
    /// The Access-Control-Allow-Origin value for a request with this `Origin` header (absent:
    /// `None`), or `None` when the request is not a CORS request of this rule.
    pub fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match &self.origins {
            Origins::Any => Some(HeaderValue::from_static("*")),
            Origins::Listed(re) => {
                let o = origin?;
                o.to_str().ok().filter(|s| re.is_match(s)).map(|_| o.clone())
            }
        }
    }

    /// Allow-Credentials, -Methods, -Headers, Expose-Headers, Max-Age.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }
}

/// Build a rule's CORS from its document; a mistake is a field error under `at`.
pub(crate) fn build(errs: &mut Vec<FieldError>, at: &str, doc: &CorsDoc) -> Option<Cors> {
    let before = errs.len();
    let mut err =
        |field: &str, reason: String| errs.push(FieldError { field: format!("{at}.{field}"), reason });
    let origins = match doc.allow_origins.as_deref() {
        None => Origins::Any,
        Some(list) if list.iter().any(|o| o == "*") => {
            if list.len() > 1 {
                err("allowOrigins", "\"*\" allows every origin; list it alone".into());
            }
            Origins::Any
        }
        Some([]) => {
            err("allowOrigins", "is empty: list origins, or \"*\" for any".into());
            Origins::Any
        }
        Some(list) => {
            let mut alts = Vec::new();
            for (i, o) in list.iter().enumerate() {
                match origin_pattern(o) {
                    Some(p) => alts.push(p),
                    None => err(
                        &format!("allowOrigins[{i}]"),
                        format!("{o:?} is not an origin like https://app.example.com, https://*.example.com:8443 or null"),
                    ),
                }
            }
            match Regex::new(&format!("(?i)^(?:{})$", alts.join("|"))) {
                Ok(re) => Origins::Listed(re),
                Err(e) => {
                    err("allowOrigins", e.to_string());
                    Origins::Any
                }
            }
        }
    };
    let token_list = |s: &str, star: bool| {
        !s.trim().is_empty()
            && s.split(',').all(|t| {
                let t = t.trim();
                (star && t == "*")
                    || (!t.is_empty()
                        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            })
    };
    let mut headers = Vec::new();
    if doc.allow_credentials.unwrap_or(true) {
        headers.push((http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true")));
    }
    let mut list = |field: &str,
                    name: HeaderName,
                    value: Option<&str>,
                    default: Option<&str>,
                    star: bool,
                    what: &str| {
        let Some(v) = value.or(default) else { return };
        if !token_list(v, star) {
            err(field, format!("{v:?} is not a comma-separated list of {what}"));
            return;
        }
        match HeaderValue::from_str(v.trim()) {
            Ok(h) => headers.push((name, h)),
            Err(_) => err(field, format!("{v:?} is not a header value")),
        }
    };
    list(
        "allowMethods",
        http::header::ACCESS_CONTROL_ALLOW_METHODS,
        doc.allow_methods.as_deref(),
        Some(DEFAULT_METHODS),
        false,
        "methods",
    );
    list(
        "allowHeaders",
        http::header::ACCESS_CONTROL_ALLOW_HEADERS,
        doc.allow_headers.as_deref(),
        Some(DEFAULT_HEADERS),
        false,
        "header names",
    );
    list(
        "exposeHeaders",
        http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        doc.expose_headers.as_deref(),
        None,
        true,
        "header names or *",
    );
    let max_age = doc.max_age.unwrap_or(DEFAULT_MAX_AGE);
    headers.push((http::header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age)));
    (errs.len() == before).then_some(Cors { origins, headers })
}

/// A comma-separated list of tokens (letters, digits, `-`, `_`; `*` with `star`), as the
/// methods and header lists must be.
pub fn token_list(s: &str, star: bool) -> bool {
    !s.trim().is_empty()
        && s.split(',').all(|t| {
            let t = t.trim();
            (star && t == "*")
                || (!t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        })
}

/// Whether an origin is one a rule may list (see [`origin_pattern`]).
pub fn valid_origin(o: &str) -> bool {
    o.trim() == "*" || origin_pattern(o).is_some()
}

/// An origin as ingress-nginx's `corsOriginRegex` accepts it (`scheme://[*.]host[:port]`,
/// or `null`), as a regex alternative: literal, but a leading `*.` matching one DNS label.
fn origin_pattern(o: &str) -> Option<String> {
    let o = o.trim();
    if o == "null" {
        return Some("null".into());
    }
    let (scheme, rest) = o.split_once("://")?;
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let (wild, rest) = match rest.strip_prefix("*.") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        Some(_) => return None,
        None => (rest, None),
    };
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        return None;
    }
    let mut p = regex::escape(&format!("{scheme}://"));
    if wild {
        p.push_str("[A-Za-z0-9-]+\\.");
    }
    p.push_str(&regex::escape(host));
    if let Some(port) = port {
        p.push(':');
        p.push_str(port);
    }
    Some(p)
}
