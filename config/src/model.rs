//! The validated route model: what the proxy serves from and what matching walks.
//!
//! Everything here is immutable once built and holds only valid state: header names are
//! parsed, patterns compiled, hosts lower-cased, prefixes sorted. Build it with
//! [`RouteTable::from_doc`] (or `parse`); never by hand outside this crate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use regex::Regex;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Default upstream connect timeout (ingress-nginx `proxy-connect-timeout` is 5 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default wait for upstream response headers (ingress-nginx `proxy-read-timeout` is 60 s).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default canary weight denominator (`canary-weight-total`).
pub const DEFAULT_WEIGHT_TOTAL: u32 = 100;
/// Default request body limit (ingress-nginx `proxy-body-size` is 1m).
pub const DEFAULT_MAX_BODY_SIZE: u64 = 1 << 20;

/// One whole, validated route table. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct RouteTable {
    pub(crate) version: String,
    /// Exact host names, lower-cased.
    pub(crate) exact: HashMap<Box<str>, VirtualHost>,
    /// Wildcard hosts keyed by what follows `*.` (lower-cased): `*.example.com` → `example.com`.
    pub(crate) wildcard: HashMap<Box<str>, VirtualHost>,
    /// The server for requests whose host no other entry names.
    pub(crate) default_server: Option<VirtualHost>,
    /// Every route of the table, indexed by [`Route::index`].
    pub(crate) routes: Vec<Arc<Route>>,
    /// Every distinct backend, indexed by [`Backend::index`].
    pub(crate) backends: Vec<Arc<Backend>>,
    /// Certificates of the hosts that terminate TLS.
    pub(crate) certificates: Vec<Certificate>,
    /// The certificate for an SNI that names no host with one.
    pub(crate) default_certificate: Option<Certificate>,
    /// Where the client address that IP rules judge comes from.
    pub(crate) client_address: crate::access::ClientAddress,
}

impl RouteTable {
    /// The table's version label: the document's `version`, or a hash of its content.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// All routes, in a stable order; `routes()[r.index()]` is `r`.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// All backends (stable and canary), `backends()[b.index()]` is `b`.
    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// Certificates by host name (`app.example.com` or `*.example.com`), for SNI.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certificates
    }

    pub fn default_certificate(&self) -> Option<&Certificate> {
        self.default_certificate.as_ref()
    }

    /// Where the client address comes from (the TCP peer unless configured).
    pub fn client_address(&self) -> &crate::access::ClientAddress {
        &self.client_address
    }

    /// An empty table: every request gets 404.
    pub fn empty() -> Self {
        RouteTable {
            version: "empty".into(),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default_server: None,
            routes: Vec::new(),
            backends: Vec::new(),
            certificates: Vec::new(),
            default_certificate: None,
            client_address: crate::access::ClientAddress::Peer,
        }
    }
}

/// A virtual host and its path rules.
#[derive(Debug)]
pub struct VirtualHost {
    /// Exact-path rules: path → index into `routes`.
    pub(crate) exact_paths: HashMap<Box<str>, usize>,
    /// Prefix rules as (normalized prefix without trailing `/`, route index), longest first.
    /// The root prefix `/` is stored as the empty string.
    pub(crate) prefixes: Vec<(Box<str>, usize)>,
    /// A regex host (`regexPaths`): every rule's path is a pattern, and only this matches.
    pub(crate) regex: Option<crate::rewrite::RegexPaths>,
}

/// How a rule's path is compared with the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathType {
    Exact,
    Prefix,
    /// Accepted for Kubernetes compatibility; matches like `Prefix`.
    ImplementationSpecific,
}

impl PathType {
    pub fn as_str(self) -> &'static str {
        match self {
            PathType::Exact => "Exact",
            PathType::Prefix => "Prefix",
            PathType::ImplementationSpecific => "ImplementationSpecific",
        }
    }
}

/// One host + path rule with its backends.
#[derive(Debug)]
pub struct Route {
    pub(crate) index: usize,
    /// The host as configured (lower-cased), or `_` for the default server.
    pub host: String,
    /// The rule path as configured, `/` when empty.
    pub path: String,
    pub path_type: PathType,
    /// The stable backend; its identity labels metrics even when the canary serves.
    pub stable: Arc<Backend>,
    pub canary: Option<Canary>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// Largest request body in bytes; `None` is no limit.
    pub max_body_size: Option<u64>,
    pub protocol: Protocol,
    /// Plain-HTTP requests are redirected to https (the host has TLS and did not opt out).
    pub ssl_redirect: bool,
    /// Answer this status instead of forwarding (a refused Ingress's path); beats `access`.
    pub deny: Option<crate::access::Deny>,
    /// IP rules, basic and external auth; `None` when the rule has none (the common case
    /// costs one branch).
    pub access: Option<Box<crate::access::Access>>,
    /// Redirect every request instead of forwarding (`RedirectDoc`).
    pub redirect: Option<Redirect>,
    /// Redirect a request for exactly `/` here (302).
    pub app_root: Option<String>,
    /// The path the upstream gets instead of the request's (`rewrite.rs`).
    pub rewrite: Option<Box<crate::rewrite::Rewrite>>,
    /// The Host the upstream gets instead of the request's (`upstreamHost`).
    pub upstream_host: Option<http::HeaderValue>,
    /// Cross-origin requests (`cors.rs`).
    pub cors: Option<Box<crate::cors::Cors>>,
    /// Per-client rate and concurrency limits (`ratelimit.rs`).
    pub rate_limit: Option<Box<crate::ratelimit::RateLimit>>,
    /// Longest wait for the upstream to take the next write of the request.
    pub send_timeout: Duration,
    /// Which failed attempts are tried again on another endpoint (`retry.rs`).
    pub retry: crate::retry::Retry,
    /// Session affinity (`affinity.rs`).
    pub affinity: Option<Box<crate::affinity::Affinity>>,
}

/// A redirect: its status and the Location template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub code: http::StatusCode,
    /// nginx's variables of [`crate::access::Vars::Redirect`]; a path's scheme and host
    /// are the request's (`$scheme://$host` in front).
    pub location: crate::access::Template,
}

/// What a redirect's variables stand for in one request.
pub struct RequestParts<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

impl Redirect {
    /// The Location for a request.
    pub fn location(&self, r: &RequestParts<'_>) -> String {
        use crate::access::Variable;
        self.location.render(|v| match v {
            Variable::Scheme => r.scheme.to_string(),
            Variable::Host => r.host.to_string(),
            Variable::RequestUri => match r.query {
                Some(q) => format!("{}?{q}", r.path),
                None => r.path.to_string(),
            },
            Variable::Uri => r.path.to_string(),
            Variable::Args => r.query.unwrap_or("").to_string(),
            // Not in `Vars::Redirect`: never parsed into a redirect.
            _ => String::new(),
        })
    }
}

/// How weir talks to a rule's backends (ingress-nginx `backend-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// HTTP/1.1, pooled keep-alive connections.
    Http,
    /// HTTP/1.1 over TLS.
    Https,
    /// HTTP/2 cleartext (prior knowledge), one multiplexed connection per endpoint.
    Grpc,
    /// HTTP/2 over TLS (ALPN h2).
    Grpcs,
}

impl Protocol {
    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Grpc | Protocol::Grpcs)
    }

    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Grpcs)
    }
}

/// A parsed certificate chain and private key. The key never prints.
pub struct Certificate {
    /// Lower-case host name, `*.example.com` for a wildcard; `_` for the default.
    pub name: String,
    /// Field path in the document, for errors found when the key is loaded.
    pub field: String,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("name", &self.name)
            .field("chain_len", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Route {
    /// Position in [`RouteTable::routes`]; stable for the life of the table.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// A canary backend with its policy.
#[derive(Debug)]
pub struct Canary {
    pub backend: Arc<Backend>,
    pub policy: CanaryPolicy,
    /// Managed header routes, in order; evaluated before `policy`.
    pub routes: Vec<HeaderRoute>,
    /// Mirror routes, in order: which requests sent to stable are copied here.
    pub mirrors: Vec<MirrorRoute>,
    /// The local canary guard, if the rule has one.
    pub guard: Option<Guard>,
    /// Additional weighted backends (experiments), drawn after the canary's share.
    pub destinations: Vec<Destination>,
    /// Weighted requests draw from a client's kept point instead (`affinity.rs`).
    pub sticky: Option<crate::affinity::StickyAssignment>,
}

/// An additional weighted backend: `weight` of the canary policy's `total`.
#[derive(Debug)]
pub struct Destination {
    pub backend: Arc<Backend>,
    pub weight: u32,
}

/// A local canary guard's policy and identity (`wire::GuardDoc`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Guard {
    pub key: GuardKey,
    /// Trip when more than this percent of the answers in the window were backend faults.
    pub error_percent: u32,
    pub window: std::time::Duration,
    /// Fewest answers in the window for a judgement; at least 1.
    pub min_requests: u32,
}

/// Which guard: rules with equal keys share one judgement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuardKey {
    /// The canary backend's namespace (`-` when it has none).
    pub namespace: String,
    pub name: String,
    /// The canary's revision (empty when not given).
    pub revision: String,
}

impl Guard {
    /// Whether `errors` of `total` answers trip this guard.
    pub fn trips(&self, errors: u64, total: u64) -> bool {
        total >= u64::from(self.min_requests) && errors * 100 > u64::from(self.error_percent) * total
    }
}

/// A mirror route: `percentage` % of the requests one of `matches` selects are copied.
#[derive(Debug)]
pub struct MirrorRoute {
    pub name: String,
    /// 0 to 100.
    pub percentage: u32,
    pub matches: Vec<MirrorMatch>,
}

/// What a mirror match asks of a request: each part that is set must hold.
#[derive(Debug)]
pub struct MirrorMatch {
    pub method: Option<http::Method>,
    pub path_prefix: Option<String>,
    pub headers: Vec<HeaderMatch>,
}

/// A managed header route: when every match holds, the request goes to the canary.
#[derive(Debug)]
pub struct HeaderRoute {
    pub name: String,
    pub matches: Vec<HeaderMatch>,
}

/// One header and the test its (joined) value must pass.
#[derive(Debug)]
pub struct HeaderMatch {
    pub name: HeaderName,
    pub test: ValueTest,
}

/// How a header route judges a value.
#[derive(Debug)]
pub enum ValueTest {
    /// Byte-for-byte equal.
    Exact(String),
    /// Starts with these bytes.
    Prefix(String),
    /// The whole value matches (the pattern is compiled anchored, `^(?:…)$`).
    Regex(Regex),
}

/// ingress-nginx's canary annotations, validated.
#[derive(Debug)]
pub struct CanaryPolicy {
    /// Canary share numerator; may exceed `total` (then always canary).
    pub weight: u32,
    /// Denominator, ≥ 1 (D2: honoured as given, never raised to 100).
    pub total: u32,
    pub header: Option<HeaderRule>,
    /// Cookie name, compared case-insensitively; values `always`/`never` force the side.
    pub cookie: Option<String>,
}

/// `canary-by-header` and how its value is judged.
#[derive(Debug)]
pub struct HeaderRule {
    pub name: HeaderName,
    pub matcher: HeaderMatcher,
}

/// The header stage's test, in ingress-nginx's precedence (value beats pattern).
#[derive(Debug)]
pub enum HeaderMatcher {
    /// `canary-by-header-value`: equal (case-sensitive) → canary, else fall through.
    Value(String),
    /// `canary-by-header-pattern`: unanchored search → canary, else fall through.
    Pattern(Regex),
    /// Neither set: `always` → canary, `never` → stable and stop, else fall through.
    Keywords,
    /// A pattern that did not compile, from a lenient source (D5): header present → stable
    /// and stop, as ingress-nginx does when its regex fails at request time.
    InvalidPattern(String),
}

/// Who a backend is, for metrics and logs. Missing parts are `-`, as in ingress-nginx.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendId {
    pub namespace: String,
    pub ingress: String,
    pub service: String,
    pub port: String,
}

impl BackendId {
    /// ingress-nginx's upstream name, `<namespace>-<service>-<port>`: the `canary` label.
    pub fn upstream_name(&self) -> String {
        format!("{}-{}-{}", self.namespace, self.service, self.port)
    }
}

/// A backend: its identity and its ready endpoints (possibly none).
#[derive(Debug)]
pub struct Backend {
    pub(crate) index: usize,
    pub id: BackendId,
    pub endpoints: Vec<SocketAddr>,
}

impl Backend {
    /// Position in [`RouteTable::backends`].
    pub fn index(&self) -> usize {
        self.index
    }

    /// True when at least one endpoint can take a request.
    pub fn is_ready(&self) -> bool {
        !self.endpoints.is_empty()
    }
}
