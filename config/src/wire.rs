//! The wire format: what a config file and the admin API carry, before validation.
//!
//! These types mirror the YAML/JSON document one to one and accept anything that parses;
//! `validate` turns them into the model or lists every problem. Keeping them apart
//! from the model means the model can hold only valid, pre-compiled state.

use serde::{Deserialize, Serialize};

pub use crate::access::doc::{
    AccessDoc, AuthCacheDoc, BasicAuthDoc, CacheDurationDoc, ClientAddressDoc, DenyDoc, ExternalAuthDoc,
};
pub use crate::redact::REDACTED;

/// The only schema this version of weir reads.
pub const SCHEMA_V1: &str = "weir/v1";

/// A whole route table as written in a file or pushed to `PUT /config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableDoc {
    /// Must be `weir/v1`.
    pub schema: String,
    /// A free-form label for this table (the controller sends a content hash). When absent,
    /// the proxy derives one from the document's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Table-wide defaults that a rule may override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<DefaultsDoc>,
    /// Table-wide TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TableTlsDoc>,
    /// Where the client address that IP rules judge comes from; default the TCP peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<ClientAddressDoc>,
    /// Virtual hosts. At most one may omit `host`: that one is the default server.
    #[serde(default)]
    pub hosts: Vec<HostDoc>,
}

/// Table-wide TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableTlsDoc {
    /// Served when the client's SNI names no host with a certificate (or sends no SNI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_certificate: Option<TlsDoc>,
}

/// A certificate chain and its private key, inline PEM or (in a config file only) paths.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsDoc {
    /// PEM certificate chain, leaf first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1). Never logged nor shown by `GET /config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Path of a PEM chain; accepted in a config file, read when the file is (re)loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<String>,
    /// Path of a PEM key; accepted in a config file only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Where the pair came from (`namespace/name` of a Secret), for messages only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Redacts the key: a `TlsDoc` may end up in a log line through `{:?}`.
impl std::fmt::Debug for TlsDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDoc")
            .field("certificate", &self.certificate.as_ref().map(|c| format!("<{} bytes of PEM>", c.len())))
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("certificate_file", &self.certificate_file)
            .field("key_file", &self.key_file)
            .field("source", &self.source)
            .finish()
    }
}

impl TlsDoc {
    /// What `GET /config` shows: the key replaced by a marker.
    pub fn redacted(&self) -> TlsDoc {
        TlsDoc { key: self.key.as_ref().map(|_| REDACTED.to_string()), ..self.clone() }
    }
}

impl TableDoc {
    /// A copy safe to show: every private key replaced by [`REDACTED`].
    pub fn redacted(&self) -> TableDoc {
        let mut doc = self.clone();
        if let Some(tls) = doc.tls.as_mut() {
            tls.default_certificate = tls.default_certificate.as_ref().map(TlsDoc::redacted);
        }
        for host in &mut doc.hosts {
            host.tls = host.tls.as_ref().map(TlsDoc::redacted);
            for rule in &mut host.rules {
                rule.access = rule.access.as_ref().map(AccessDoc::redacted);
            }
        }
        doc
    }
}

/// Defaults for every rule of the table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultsDoc {
    /// Upstream TCP connect timeout, e.g. `5s` (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<String>,
    /// Time allowed for the upstream's response headers, e.g. `60s` (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_timeout: Option<String>,
    /// Default `maxBodySize` of every rule (default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<String>,
}

/// One virtual host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostDoc {
    /// `app.example.com`, `*.example.com` (one label), or absent for the default server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Terminate TLS for this host with this certificate (SNI picks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsDoc>,
    /// With `tls`, plain-HTTP requests get a 308 to https (ingress-nginx's `ssl-redirect`,
    /// default true). Without `tls` it has no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_redirect: Option<bool>,
    /// Every rule's path is a regular expression, matched as ingress-nginx matches a host
    /// where an Ingress has `use-regex` or `rewrite-target`: case-insensitive, anchored at
    /// the start only, longest path first; `pathType` is then not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_paths: Option<bool>,
    #[serde(default)]
    pub rules: Vec<RuleDoc>,
}

/// One path rule of a host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleDoc {
    /// Request path to match; empty means `/`.
    #[serde(default)]
    pub path: String,
    /// `Exact`, `Prefix` or `ImplementationSpecific` (treated as Prefix). Default `Prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_type: Option<String>,
    /// The stable (main) backend. May be left out on a `deny` rule.
    #[serde(default)]
    pub backend: BackendDoc,
    /// The canary backend and how requests are split onto it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_timeout: Option<String>,
    /// Largest request body, nginx-style size (`1m`, `512k`, `0` = no limit); default `1m`
    /// as ingress-nginx's `proxy-body-size`. Larger requests get 413.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<String>,
    /// How to talk to both backends of the rule: `HTTP` (HTTP/1.1, default), `GRPC`
    /// (HTTP/2 cleartext), `HTTPS` (HTTP/1.1 over TLS) or `GRPCS` (HTTP/2 over TLS), as
    /// ingress-nginx's `backend-protocol`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Answer this status instead of forwarding (the controller's rule for a refused Ingress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<DenyDoc>,
    /// IP allow/deny lists, basic auth, external auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessDoc>,
    /// Answer every request of the rule with a redirect instead of forwarding it
    /// (ingress-nginx's `permanent-redirect` / `temporal-redirect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectDoc>,
    /// A request for exactly `/` is redirected (302) to this path on the same host and
    /// scheme (ingress-nginx's `app-root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_root: Option<String>,
    /// The path the upstream gets instead of the request's (ingress-nginx's `rewrite-target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<RewriteDoc>,
    /// The Host header the upstream gets instead of the request's, `name` or `name:port`
    /// (ingress-nginx's `upstream-vhost`); X-Forwarded-Host keeps the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_host: Option<String>,
    /// Cross-origin requests answered as ingress-nginx's `enable-cors` answers them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsDoc>,
    /// Per-client rate and concurrency limits (ingress-nginx's `limit-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitDoc>,
    /// Longest wait for the upstream to take the next part of the request (between two
    /// successive writes), e.g. `60s` (default, ingress-nginx's `proxy-send-timeout`); 504 after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_timeout: Option<String>,
    /// Which failed attempts are tried again on another endpoint (`proxy-next-upstream`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryDoc>,
    /// Session affinity: a cookie keeps a client on one endpoint (ingress-nginx's
    /// `affinity: cookie`, `session-cookie-*`, `affinity-mode`, `affinity-canary-behavior`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<AffinityDoc>,
}

/// A rule's session affinity (`affinity.rs`); every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AffinityDoc {
    /// Cookie name (default `INGRESSCOOKIE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// `balanced` (default) or `persistent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `sticky` (default: a client stays on the canary or stable side its cookie names) or
    /// `legacy` (only stable is sticky).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_behavior: Option<String>,
    /// Cookie Path (default: the rule's path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Max-Age in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// Expires, in seconds from the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// `None`, `Lax` or `Strict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<String>,
    /// Leave `SameSite=None` out for browsers known to reject it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional_same_site_none: Option<bool>,
    /// Secure attribute; default: on HTTPS answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    /// When the cookie's endpoint failed and another answered, the cookie changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_on_failure: Option<bool>,
}

/// A canary's sticky assignment (weir's own): a client's point, kept in a cookie, decides
/// its side as the weight grows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StickyAssignmentDoc {
    /// Cookie name (default `weir-canary-point`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// Max-Age in seconds (default: a session cookie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
}

/// A rule's retries (`retry.rs`); every part left out keeps ingress-nginx's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryDoc {
    /// nginx's conditions: `error`, `timeout`, `invalid_header`, `non_idempotent`,
    /// `http_500`, `http_502`, `http_503`, `http_504`, `http_403`, `http_404`, `http_429`, or
    /// `off` alone. Default `[error, timeout]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Vec<String>>,
    /// Endpoints tried at most, the first included (default 3; 0: up to 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tries: Option<i64>,
    /// No new attempt after this long since the first (default `0`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A rule's rate limits, per client address (`ratelimit.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitDoc {
    /// Rules naming one zone count together; default: the rule's host and path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Requests per second per client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<i64>,
    /// Requests per minute per client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<i64>,
    /// The burst allowed above a rate, as a multiple of it; default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_multiplier: Option<i64>,
    /// Requests in progress at once per client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<i64>,
    /// Client addresses or CIDRs never limited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowlist: Vec<String>,
    /// The status of a limited request, 400..599; default 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
}

/// A rule's CORS (ingress-nginx's `enable-cors` and `cors-*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsDoc {
    /// Origins like `https://app.example.com`, `https://*.example.com:8443`, `null`; or
    /// `["*"]`, the default: every origin (`Access-Control-Allow-Origin: *`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    /// Default `GET, PUT, POST, DELETE, PATCH, OPTIONS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<String>,
    /// Default ingress-nginx's list (`DNT,Keep-Alive,User-Agent,…,Authorization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<String>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    /// Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<String>,
    /// Seconds; default 1728000 (20 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

/// A rule's path rewrite: nginx's `rewrite "(?i)<path>" <target> break`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RewriteDoc {
    /// Replaces the whole path; `$1`…`$9` are the rule path's capture groups (a regex host's
    /// pattern; elsewhere the path is literal and has none). The query is carried as received.
    pub target: String,
    /// Sent as `X-Forwarded-Prefix` (ingress-nginx's `x-forwarded-prefix`); may use `$1`…`$9`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_prefix: Option<String>,
}

/// A redirect answered instead of forwarding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectDoc {
    /// An absolute `http://`, `https://` or `$scheme://` URL, or a path (`/new`) on the
    /// request's own scheme and host. It may use `$scheme`, `$host`, `$request_uri` (path and query as
    /// received), `$uri` (the path) and `$args` (the query), as nginx expands them; any
    /// other `$` is an error.
    pub url: String,
    /// 301, 302, 303, 307 or 308; default 301.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
}

/// A backend: where to send, and who it is for metrics and logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Service port, by number or name; used in labels only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortDoc>,
    /// Ready endpoints as `ip:port`. May be empty (the backend then cannot serve).
    #[serde(default)]
    pub endpoints: Vec<String>,
}

/// A Service port: a number or a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortDoc {
    Number(i64),
    Name(String),
}

/// Canary backend and policy, with ingress-nginx's annotation meanings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryDoc {
    pub backend: BackendDoc,
    /// `canary-weight`: share of traffic, out of `weightTotal`. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    /// `canary-weight-total`: the denominator. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_total: Option<i64>,
    /// `canary-by-header`: the header that can force the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `canary-by-header-value`: exact value that sends to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_value: Option<String>,
    /// `canary-by-header-pattern`: regex searched in the header's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_pattern: Option<String>,
    /// Set by the controller when an annotation's pattern does not compile (D5): requests
    /// carrying the header go to the stable backend, as in ingress-nginx. Holds the pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_header_pattern: Option<String>,
    /// `canary-by-cookie`: the cookie that can force the decision (`always`/`never`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// Managed header routes (Argo Rollouts' `setHeaderRoute`, through a WeirRoute): in
    /// order, the first route whose matches all hold sends the request to the canary. They
    /// are evaluated before the header, cookie and weight stages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_routes: Vec<HeaderRouteDoc>,
    /// Mirror routes (Argo Rollouts' `setMirrorRoute`, through a WeirRoute): a request that
    /// goes to the stable backend and matches one of a route's matches is also copied to
    /// the canary, with probability `percentage`/100; the copy's answer is discarded. The
    /// first route one of whose matches holds decides; a request is copied at most once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirror_routes: Vec<MirrorRouteDoc>,
    /// Additional weighted backends (Argo Rollouts experiments' `additionalDestinations`,
    /// through a WeirRoute): each takes `weight` of `weightTotal` of the weighted traffic,
    /// drawn after the canary's share; stable keeps the rest. The canary's weight and
    /// theirs together must not exceed `weightTotal`. Header and cookie stages never pick
    /// them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<DestinationDoc>,
    /// The local canary guard: when too many of the canary's answers are backend faults,
    /// weir stops sending it weighted traffic (header, cookie and header-route requests
    /// still reach it). Absent: no guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardDoc>,
    /// Weighted requests keep their side while the weight grows (`affinity.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_assignment: Option<StickyAssignmentDoc>,
}

/// An additional weighted backend of a canary rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationDoc {
    pub backend: BackendDoc,
    /// Its share, out of the canary's `weightTotal`.
    pub weight: i64,
}

/// A local canary guard. It judges the canary's answers over the last `window`: once at
/// least `minRequests` arrived and more than `errorPercent` percent of them were backend
/// faults (an upstream 5xx, or no answer: 502, 503, 504), it trips, and stays tripped until
/// `revision` changes. Client faults (4xx, a client that went away) never count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardDoc {
    /// Rules whose guards have the same name (and canary namespace and revision) share one
    /// judgement: a canary served under several rules trips on all of them at once.
    /// Default: the canary backend's service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// 1 to 100.
    pub error_percent: i64,
    /// A duration from 1s to 10m (`10s`, `1m`).
    pub window: String,
    /// At least 1: fewer answers than this in the window are too few to judge.
    pub min_requests: i64,
    /// The canary's version (its pod-template hash): a guard with a new revision starts
    /// afresh, so a trip of an older canary never holds back a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// One mirror route: a name (unique within the rule), the share of matching requests
/// copied, and the matches, any one of which selects a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MirrorRouteDoc {
    pub name: String,
    /// 0 to 100.
    pub percentage: i64,
    pub matches: Vec<MirrorMatchDoc>,
}

/// A mirror match: every field that is set must hold (an empty match selects every
/// request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MirrorMatchDoc {
    /// The request method, exactly (upper case: `GET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A prefix of the request path (`/api` selects `/api`, `/api/x` and `/apix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Header tests, as header routes have them; all must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatchDoc>,
}

/// One managed header route: a name (unique within the rule) and the matches that must all
/// hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderRouteDoc {
    pub name: String,
    pub matches: Vec<HeaderMatchDoc>,
}

/// A test on one request header: exactly one of `exact`, `prefix` or `regex` (RE2 syntax of
/// the `regex` crate, matched against the whole value). Repeated headers are joined with
/// `", "` first, as nginx does. A request without the header does not match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatchDoc {
    pub header: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}
