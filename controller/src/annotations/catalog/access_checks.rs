//! Value checks of the access keys weir honours (IP ranges, basic auth, external auth).
//!
//! ingress-nginx answers a location with 503 when most of these fail to parse (its auth and
//! allowlist parsers return `LocationDenied`), so a failure here is [`Checked::Unsupported`]:
//! the Ingress is refused. The few whose loss narrows access instead (realm, signin, cache)
//! are dropped with a warning, as ingress-nginx drops them.

use weir_config::access::{Template, Vars};

use super::entry::Checked;
use crate::annotations::validate::{self, CharSet};

/// A CIDR list, normalised to networks (`10.0.0.1/8` → `10.0.0.0/8`) as weir-config wants.
pub(super) fn source_ranges(v: &str) -> Checked {
    match validate::cidrs(v) {
        Ok(list) => {
            let nets: Vec<String> = list
                .into_iter()
                .filter_map(|(ip, bits)| ipnet::IpNet::new(ip, bits).ok())
                .map(|n| n.trunc().to_string())
                .collect();
            Checked::Valid(nets.join(","))
        }
        Err(e) => {
            Checked::Unsupported(format!("{e}: an address list weir cannot read would leave the path open"))
        }
    }
}

pub(super) fn auth_type(v: &str) -> Checked {
    match v.trim() {
        "basic" => Checked::Valid("basic".into()),
        "digest" => Checked::Unsupported("digest authentication is not implemented".into()),
        other => Checked::Unsupported(format!(
            "{other:?} is not basic or digest (ingress-nginx denies the location)"
        )),
    }
}

pub(super) fn auth_secret(v: &str) -> Checked {
    let v = v.trim();
    match validate::chars(v, CharSet::Basic, false) {
        Ok(()) if !v.is_empty() && v.split('/').count() <= 2 && !v.split('/').any(str::is_empty) => {
            Checked::Valid(v.into())
        }
        Ok(()) => Checked::Unsupported("is not name or namespace/name".into()),
        Err(e) => Checked::Unsupported(e),
    }
}

pub(super) fn auth_secret_type(v: &str) -> Checked {
    match validate::one_of(v, &["auth-file", "auth-map"], true, true) {
        Ok(t) => Checked::Valid(t.into()),
        Err(e) => Checked::Unsupported(e),
    }
}

pub(super) fn auth_realm(v: &str) -> Checked {
    match validate::chars(v, CharSet::WithSpace, false) {
        Ok(()) => Checked::Valid(v.into()),
        Err(e) => Checked::Invalid(e),
    }
}

/// Strict: ingress-nginx's URL characters and an absolute URL, and then weir's own rule of no
/// variables, no quotes, http or https only (CVE-2025-24514 came through this key).
pub(super) fn auth_url(v: &str) -> Checked {
    let v = v.trim();
    if v.contains('$') {
        return Checked::Unsupported(
            "nginx variables in auth-url are not supported; give the URL literally".into(),
        );
    }
    let checked = validate::chars(v, CharSet::Url, false).and_then(|()| validate::absolute_url(v));
    match checked {
        Err(e) => Checked::Unsupported(e),
        Ok(()) if !(v.starts_with("http://") || v.starts_with("https://")) => {
            Checked::Unsupported("is not an http:// or https:// URL".into())
        }
        Ok(()) => Checked::Valid(v.into()),
    }
}

pub(super) fn auth_method(v: &str) -> Checked {
    const METHODS: [&str; 9] =
        ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"];
    match validate::one_of(v, &METHODS, true, false) {
        Ok(m) => Checked::Valid(m.into()),
        Err(e) => Checked::Unsupported(e),
    }
}

pub(super) fn auth_signin(v: &str) -> Checked {
    let v = v.trim();
    let checked =
        validate::chars(v, CharSet::UrlWithVariables, true).and_then(|()| validate::absolute_url(v));
    match checked.and_then(|()| Template::parse(v, Vars::Url).map(|_| ())) {
        Ok(()) => Checked::Valid(v.into()),
        Err(e) => Checked::Invalid(e),
    }
}

pub(super) fn redirect_param(v: &str) -> Checked {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        Checked::Valid(v.into())
    } else {
        Checked::Invalid("is not a query parameter name".into())
    }
}

/// Header names, comma-separated. A list weir cannot read refuses: its headers could then
/// not be stripped from the client's request, and a client could forge them.
pub(super) fn header_list(v: &str) -> Checked {
    if let Err(e) = validate::chars(v, CharSet::HeaderList, false) {
        return Checked::Unsupported(e);
    }
    let names: Vec<&str> = v.split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
    match names.iter().find(|h| http::HeaderName::from_bytes(h.as_bytes()).is_err()) {
        Some(bad) => Checked::Unsupported(format!("{bad:?} is not a header name")),
        None => Checked::Valid(names.join(",")),
    }
}

pub(super) fn cache_key(v: &str) -> Checked {
    let checked = validate::chars(v, CharSet::NginxVariable, true)
        .and_then(|()| Template::parse(v, Vars::Key).map(|_| ()));
    match checked {
        Ok(()) => Checked::Valid(v.trim().into()),
        Err(e) => Checked::Invalid(e),
    }
}

/// `200 202 10m, 401 5m`: status codes then an nginx time, per comma-separated group.
pub(super) fn cache_duration(v: &str) -> Checked {
    match cache_durations(v) {
        Ok(_) => Checked::Valid(v.trim().into()),
        Err(e) => Checked::Invalid(e),
    }
}

/// Parse `auth-cache-duration` into (statuses, duration text).
pub fn cache_durations(v: &str) -> Result<Vec<(Vec<u16>, String)>, String> {
    validate::chars(v, CharSet::Extended, false)?;
    v.split(',')
        .map(|group| {
            let words: Vec<&str> = group.split_whitespace().collect();
            let (time, codes) = words.split_last().ok_or("has an empty group")?;
            let codes = if codes.is_empty() { &["200", "202", "401"][..] } else { codes };
            let statuses = codes
                .iter()
                .map(|c| {
                    c.parse::<u16>()
                        .ok()
                        .filter(|s| (100..=599).contains(s))
                        .ok_or(format!("{c:?} is not a status"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            match humantime::parse_duration(time) {
                Ok(d) if !d.is_zero() => Ok((statuses, (*time).to_string())),
                _ => Err(format!("{time:?} is not a time like 30s, 5m or 1h")),
            }
        })
        .collect()
}

/// `limit-rps`, `limit-rpm`, `limit-connections`: `ValidateInt` (not a number: ingress-nginx
/// skips the Ingress); 0 is no limit; a negative number would break nginx's configuration:
/// refused, like a value weir cannot read, since the limit asked for would not hold.
pub(super) fn limit_count(v: &str) -> Checked {
    match validate::go_int(v) {
        Ok(n) if (0..=1_000_000).contains(&n) => Checked::Valid(n.to_string()),
        Ok(n) => Checked::Unsupported(format!("{n} is not within 0..1000000")),
        Err(e) => Checked::Unsupported(format!("{e} (ingress-nginx skips the Ingress)")),
    }
}

/// `limit-burst-multiplier`: not a number takes the default 5, as in ingress-nginx.
pub(super) fn burst_multiplier(v: &str) -> Checked {
    match validate::go_int(v) {
        Ok(n) if (1..=1000).contains(&n) => Checked::Valid(n.to_string()),
        Ok(n) => Checked::Invalid(format!("{n} is not within 1..1000")),
        Err(e) => Checked::Invalid(e),
    }
}
