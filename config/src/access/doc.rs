//! The wire form of access control: `deny` and `access` on a rule, `clientAddress` on the
//! table. Accepts anything that parses; `build` checks it. Password hashes never
//! print: `Debug` and [`AccessDoc::redacted`] (what `GET /config` shows) hide them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::redact::REDACTED;

/// A rule that answers by itself instead of forwarding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DenyDoc {
    /// The status to answer, 400-599; default 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why the rule denies; shown by `GET /config` and in the access log, never to clients.
    pub reason: String,
}

/// Checks a request must pass before it is forwarded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessDoc {
    /// Client networks (CIDR or address, IPv4/IPv6) allowed; when non-empty, every other
    /// address gets 403 (allowlist-source-range).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Client networks refused with 403, checked before `allow` (denylist-source-range).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuthDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_auth: Option<ExternalAuthDoc>,
}

impl AccessDoc {
    /// A copy safe to show: every password hash replaced by [`REDACTED`].
    pub fn redacted(&self) -> AccessDoc {
        let mut doc = self.clone();
        if let Some(basic) = doc.basic_auth.as_mut() {
            for line in &mut basic.users {
                let user = line.split_once(':').map_or("", |(u, _)| u);
                *line = format!("{user}:{REDACTED}");
            }
        }
        doc
    }
}

/// HTTP basic authentication (auth-type basic).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuthDoc {
    /// The realm in `WWW-Authenticate: Basic realm="…"` (auth-realm); default empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// htpasswd lines `user:hash`, hash bcrypt (`$2a$`, `$2b$`, `$2y$`), apr1 (`$apr1$`)
    /// or SHA-1 (`{SHA}`). Never logged nor shown by `GET /config`.
    #[serde(default)]
    pub users: Vec<String>,
    /// Where the entries came from (`namespace/name` of a Secret), for messages only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl std::fmt::Debug for BasicAuthDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuthDoc")
            .field("realm", &self.realm)
            .field("users", &format!("<{} entries>", self.users.len()))
            .field("source", &self.source)
            .finish()
    }
}

/// External authentication (auth-url): a subrequest decides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalAuthDoc {
    /// The auth service: an absolute `http://` or `https://` URL, no variables.
    pub url: String,
    /// Method of the subrequest; default `GET` (auth-method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Where a 401 sends the client (302), e.g. `https://$host/oauth2/start`; may use
    /// `$host`, `$scheme`, `$request_uri`, `$escaped_request_uri` (auth-signin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signin: Option<String>,
    /// The query parameter carrying the original URL on the signin redirect, added when the
    /// signin URL has none; default `rd` (auth-signin-redirect-param).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signin_redirect_param: Option<String>,
    /// Headers copied from a 2xx auth response onto the forwarded request; always removed
    /// from the client's request first (auth-response-headers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<String>,
    /// Extra headers set on the subrequest (auth-proxy-set-headers), literal values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_set_headers: BTreeMap<String, String>,
    /// Caching of auth responses (auth-cache-key, auth-cache-duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<AuthCacheDoc>,
    /// Time allowed for the whole subrequest; default 5s. Past it the client gets 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Which auth answers are remembered, and for how long.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthCacheDoc {
    /// The cache key, e.g. `$remote_addr$http_authorization`: literal text and `$remote_addr`,
    /// `$host`, `$uri`, `$request_uri`, `$http_<header>`, `$cookie_<name>`.
    pub key: String,
    /// Per status list, how long its answers are kept; default `[200, 202, 401] for 5m`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub durations: Vec<CacheDurationDoc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheDurationDoc {
    pub statuses: Vec<u16>,
    /// e.g. `5m`.
    pub duration: String,
}

/// Where the client address that IP rules judge comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientAddressDoc {
    /// `peer` (the TCP peer, default), `forwardedFor` (X-Forwarded-For from
    /// `trustedProxies`) or `proxyProtocol` (a PROXY v1/v2 header on every connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// CIDRs of the proxies in front of weir: required for `forwardedFor`; for
    /// `proxyProtocol`, when given, only these peers may connect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
}
