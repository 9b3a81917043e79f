//! Route matching: request host + path → the one rule that serves it.
//!
//! Hosts: exact name, then a one-label wildcard (`*.example.com` matches `a.example.com`,
//! not `example.com` nor `a.b.example.com`), then the default server; case-insensitive, port
//! and a trailing dot ignored. A host that matched keeps the request even when none of its
//! paths do (as an nginx `server` does): the answer is then "no route" (404).
//! Paths, as the Kubernetes Ingress spec says: an Exact rule beats any Prefix; the longest
//! Prefix wins; a Prefix matches whole path elements (`/foo` matches `/foo` and `/foo/bar`,
//! not `/foobar`). The request path is normalized first (percent-decoding, `//`, `.`, `..`)
//! so `/public/../admin` is matched as `/admin`, as nginx matches its locations.
//! Lookup cost: one hash lookup per host form, then the host's own rules.

use std::borrow::Cow;
use std::sync::Arc;

use crate::model::{Route, RouteTable, VirtualHost};

/// Why a request path cannot be matched at all (the proxy answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with '/'")]
    NotAbsolute,
    #[error("the path has a malformed percent-escape")]
    BadEscape,
    #[error("the path decodes to a NUL byte or invalid UTF-8")]
    BadDecodedByte,
    #[error("the path climbs above the root with '..'")]
    AboveRoot,
}

/// A request's host as routing compares it: the host part of a Host header or authority
/// ([`host_without_port`]), lower-cased. Made once per request, it serves routing, the
/// access log and the metrics' `host` label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHost<'a> {
    host: Cow<'a, str>,
}

impl<'a> RouteHost<'a> {
    pub fn new(authority: &'a str) -> RouteHost<'a> {
        let host = host_without_port(authority);
        let host = match host.bytes().any(|b| b.is_ascii_uppercase()) {
            true => Cow::Owned(host.to_ascii_lowercase()),
            false => Cow::Borrowed(host),
        };
        RouteHost { host }
    }

    /// A host that [`RouteHost::as_str`] gave before (lower-case, without port), taken as it
    /// is: no second scan on the request path.
    pub fn normalized(host: &'a str) -> RouteHost<'a> {
        RouteHost { host: Cow::Borrowed(host) }
    }

    pub fn as_str(&self) -> &str {
        &self.host
    }
}

impl RouteTable {
    /// The rule serving `host` (a Host header or URI authority, port allowed) and `path`
    /// (the URI path, no query). `Ok(None)` means no rule: answer 404.
    pub fn match_route(&self, host: &str, path: &str) -> Result<Option<&Arc<Route>>, PathError> {
        self.route_for(&RouteHost::new(host), path)
    }

    /// [`RouteTable::match_route`] for a host already made a [`RouteHost`].
    pub fn route_for(&self, host: &RouteHost<'_>, path: &str) -> Result<Option<&Arc<Route>>, PathError> {
        let path = normalize_request_path(path)?;
        let vh = self.named_host(host).or(self.default_server.as_ref());
        Ok(vh.and_then(|vh| self.match_path(vh, &path)))
    }

    /// True when an exact or wildcard host entry names `host` (the default server does not).
    pub fn names_host(&self, host: &str) -> bool {
        self.names(&RouteHost::new(host))
    }

    /// [`RouteTable::names_host`] for a host already made a [`RouteHost`].
    pub fn names(&self, host: &RouteHost<'_>) -> bool {
        self.named_host(host).is_some()
    }

    /// The exact or wildcard entry for `host`, not falling back to the default server.
    fn named_host(&self, host: &RouteHost<'_>) -> Option<&VirtualHost> {
        let host = host.as_str();
        if let Some(vh) = self.exact.get(host) {
            return Some(vh);
        }
        if let Some((first, rest)) = host.split_once('.') {
            if !first.is_empty() {
                return self.wildcard.get(rest);
            }
        }
        None
    }

    fn match_path(&self, vh: &VirtualHost, path: &str) -> Option<&Arc<Route>> {
        if let Some(regex) = &vh.regex {
            return regex.route_for(path).and_then(|i| self.routes.get(i));
        }
        if let Some(&i) = vh.exact_paths.get(path) {
            return self.routes.get(i);
        }
        vh.prefixes
            .iter()
            .find(|(prefix, _)| prefix_matches(prefix, path))
            .and_then(|&(_, i)| self.routes.get(i))
    }
}

/// `prefix` is normalized (no trailing `/`; root is ""): it matches whole path elements.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// A Prefix rule's path as compared: trailing slashes dropped, root as "".
pub fn normalize_prefix(path: &str) -> &str {
    path.trim_end_matches('/')
}

/// The lower-case-insensitive host part of a Host header or authority: no port, no
/// trailing dot, no userinfo; IPv6 literals keep their brackets.
pub fn host_without_port(authority: &str) -> &str {
    // Byte scans rather than `str` patterns: this runs on every request.
    let bytes = authority.as_bytes();
    let start = bytes.iter().rposition(|&b| b == b'@').map_or(0, |i| i + 1);
    let rest = &bytes[start..];
    let end = if rest.first() == Some(&b'[') {
        rest.iter().position(|&b| b == b']').map_or(rest.len(), |i| i + 1)
    } else {
        rest.iter().position(|&b| b == b':').unwrap_or(rest.len())
    };
    let host = &authority[start..start + end];
    host.strip_suffix('.').unwrap_or(host)
}

/// Decode percent-escapes, merge repeated slashes and resolve `.`/`..` segments.
/// Borrowed when the path is already normal (the common case costs one scan).
pub fn normalize_request_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        // `*` (OPTIONS *) and authority-form never reach routing; treat as not absolute.
        return Err(PathError::NotAbsolute);
    }
    // One pass: a percent-escape, an empty segment or a dot segment needs the slow path.
    let bytes = path.as_bytes();
    let needs_work = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'%' || (b == b'/' && matches!(bytes.get(i + 1), Some(b'/' | b'.'))));
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = percent_decode(path)?;
    let mut segments: Vec<&str> = Vec::new();
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

fn percent_decode(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.contains('%') {
        return Ok(Cow::Borrowed(path));
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadEscape)?;
            let hi = (hex[0] as char).to_digit(16).ok_or(PathError::BadEscape)?;
            let lo = (hex[1] as char).to_digit(16).ok_or(PathError::BadEscape)?;
            let b = (hi * 16 + lo) as u8;
            if b == 0 {
                return Err(PathError::BadDecodedByte);
            }
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| PathError::BadDecodedByte)
}
