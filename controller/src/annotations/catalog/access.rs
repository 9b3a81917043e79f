//! Catalog entries: authentication (external, basic, client certificates), IP access, rate
//! limits, raw nginx and the WAF: the keys whose silent loss opens a path.

use std::sync::LazyLock;

use super::access_checks::*;
use super::entry::{Entry, Group, Policy, Unless};

/// Whether weir's proxy enforces the access rules the controller translates (IP lists,
/// basic auth, external auth). Until it does, those keys stay refused (their Ingresses
/// answer 503), whatever the controller can translate: an unenforced allowlist would serve
/// the path to everyone. It follows `weir_config::access::ENFORCED`, the one switch (flip it
/// when the proxy enforces access rules, then bless the README table).
pub const ACCESS_ENFORCED: bool = weir_config::access::ENFORCED;

const PENDING: &str = "translated by the controller, but weir's proxy does not enforce access rules yet; the path would be served unprotected";

/// The entries as in force: honoured access keys are refused while the proxy cannot enforce them.
pub(super) static ENTRIES: LazyLock<Vec<Entry>> =
    LazyLock::new(|| ALL_ENTRIES.iter().map(|e| gate(*e)).collect());

fn gate(e: Entry) -> Entry {
    match e.policy {
        Policy::Honoured { .. } if !ACCESS_ENFORCED => {
            Entry { policy: Policy::Refused(Unless::Never), reason: PENDING, ..e }
        }
        _ => e,
    }
}

const A: Group = Group::Auth;
const I: Group = Group::Access;
const N: Group = Group::Nginx;

const EXT: &str = "a setting of external auth (auth-url) weir does not implement";
const MTLS: &str = "a setting of client certificate auth (auth-tls-secret), not implemented";
const SNIPPET: &str =
    "raw nginx configuration cannot be honoured (it may deny, rewrite or add headers); ingress-nginx's defaults reject it too";
const AUTH_URL: &[&str] = &["auth-url"];
const AUTH_TYPE: &[&str] = &["auth-type"];
const AUTH_TLS: &[&str] = &["auth-tls-secret"];
const RATE: &[&str] = &["limit-connections", "limit-rpm", "limit-rps"];

/// Every access key as weir will treat it once the proxy enforces access rules.
pub(super) const ALL_ENTRIES: &[Entry] = &[
    Entry::refused("auth-always-set-cookie", A, EXT).needs(AUTH_URL),
    Entry::honoured(
        "auth-cache-duration",
        A,
        "status codes and a time per comma-separated group (`200 202 10m, 401 5m`)",
        cache_duration,
        "200 202 401 5m",
        "how long auth answers are kept, per status",
    )
    .needs(&["auth-cache-key"]),
    Entry::honoured(
        "auth-cache-key",
        A,
        "literal text and $host, $scheme, $uri, $request_uri, $remote_addr, $http_<header>, $cookie_<name>",
        cache_key,
        "no caching",
        "caches auth answers under this key",
    )
    .needs(AUTH_URL),
    Entry::ignored("auth-keepalive", A, "connection tuning of the auth-url subrequest").needs(AUTH_URL),
    Entry::ignored("auth-keepalive-requests", A, "connection tuning of the auth-url subrequest").needs(AUTH_URL),
    Entry::ignored("auth-keepalive-share-vars", A, "connection tuning of the auth-url subrequest").needs(AUTH_URL),
    Entry::ignored("auth-keepalive-timeout", A, "connection tuning of the auth-url subrequest").needs(AUTH_URL),
    Entry::honoured(
        "auth-method",
        A,
        "GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS or TRACE",
        auth_method,
        "a refusal (ingress-nginx denies the location)",
        "method of the auth subrequest",
    )
    .needs(AUTH_URL),
    Entry::refused(
        "auth-proxy-set-headers",
        A,
        "names a ConfigMap of headers for the auth subrequest, and weir does not read ConfigMaps yet; the auth service would decide without them",
    )
    .needs(AUTH_URL),
    Entry::honoured(
        "auth-realm",
        A,
        "letters, digits, - . _ ~ / : and space",
        auth_realm,
        "an empty realm",
        "the basic-auth realm",
    )
    .needs(AUTH_TYPE),
    Entry::refused("auth-request-redirect", A, EXT).needs(AUTH_URL),
    Entry::honoured(
        "auth-response-headers",
        A,
        "header names, comma-separated",
        header_list,
        "a refusal (the headers could not be stripped)",
        "copied from a 2xx auth answer; always removed from the client's request first",
    )
    .needs(AUTH_URL),
    Entry::honoured(
        "auth-secret",
        A,
        "a Secret name (or namespace/name in the Ingress's namespace)",
        auth_secret,
        "a refusal",
        "the htpasswd Secret; missing or unreadable refuses the Ingress",
    )
    .needs(AUTH_TYPE),
    Entry::honoured(
        "auth-secret-type",
        A,
        "auth-file (key `auth`, htpasswd) or auth-map (user → hash)",
        auth_secret_type,
        "a refusal",
        "the Secret's layout",
    )
    .needs(AUTH_TYPE),
    Entry::honoured(
        "auth-signin",
        A,
        "an absolute URL; $host, $scheme, $request_uri, $escaped_request_uri",
        auth_signin,
        "401 answered to the client",
        "a 401 redirects here (302) with rd= the original URL",
    )
    .needs(AUTH_URL),
    Entry::honoured(
        "auth-signin-redirect-param",
        A,
        "a query parameter name",
        redirect_param,
        "rd",
        "the parameter carrying the original URL on the signin redirect",
    )
    .needs(&["auth-signin"]),
    Entry::refused("auth-tls-error-page", A, MTLS).on_canary().needs(AUTH_TLS),
    Entry::refused("auth-tls-match-cn", A, MTLS).on_canary().needs(AUTH_TLS),
    Entry::refused("auth-tls-pass-certificate-to-upstream", A, MTLS).on_canary().needs(AUTH_TLS),
    Entry::refused(
        "auth-tls-secret",
        A,
        "client certificate authentication is not implemented; any client would be let in",
    )
    .on_canary(),
    Entry::refused("auth-tls-verify-client", A, MTLS).on_canary().needs(AUTH_TLS),
    Entry::refused("auth-tls-verify-depth", A, MTLS).on_canary().needs(AUTH_TLS),
    Entry::honoured(
        "auth-type",
        A,
        "basic (digest is refused: not implemented)",
        auth_type,
        "a refusal",
        "basic authentication with htpasswd entries from auth-secret",
    ),
    Entry::honoured(
        "auth-url",
        A,
        "an absolute http(s) URL, no variables",
        auth_url,
        "a refusal",
        "external authentication: a subrequest decides (2xx passes, 401/403 answered, else 500)",
    ),
    Entry::ignored(
        "enable-global-auth",
        A,
        "switches the ConfigMap's global-auth-url off for this Ingress; weir has no global auth",
    ),
    Entry::refused(
        "satisfy",
        A,
        "weir would require every access check, denying requests that pass only one",
    )
    .unless(Unless::OneOf(&["all"])),
    Entry::honoured(
        "allowlist-source-range",
        I,
        "IPv4/IPv6 addresses and CIDRs, comma-separated",
        source_ranges,
        "a refusal",
        "only these client addresses pass (403 otherwise)",
    ),
    Entry::honoured(
        "denylist-source-range",
        I,
        "IPv4/IPv6 addresses and CIDRs, comma-separated",
        source_ranges,
        "a refusal",
        "these client addresses get 403",
    ),
    Entry::honoured(
        "limit-allowlist",
        I,
        "IPv4/IPv6 addresses and CIDRs, comma-separated",
        source_ranges,
        "a refusal",
        "clients never rate limited (wins over limit-whitelist)",
    )
    .needs(RATE),
    Entry::honoured(
        "limit-burst-multiplier",
        I,
        "a whole number from 1",
        burst_multiplier,
        "5",
        "the burst above limit-rps / limit-rpm, as a multiple of it",
    )
    .needs(RATE),
    Entry::honoured(
        "limit-connections",
        I,
        "a whole number (0: no limit)",
        limit_count,
        "a refusal",
        "requests in progress at once per client address (503 beyond)",
    ),
    Entry::ignored("limit-rate", I, "bandwidth shaping of responses; tuning"),
    Entry::ignored("limit-rate-after", I, "a setting of limit-rate").needs(&["limit-rate"]),
    Entry::honoured(
        "limit-rpm",
        I,
        "a whole number (0: no limit)",
        limit_count,
        "a refusal",
        "requests per minute per client address, with a burst of rpm × limit-burst-multiplier (503 beyond)",
    ),
    Entry::honoured(
        "limit-rps",
        I,
        "a whole number (0: no limit)",
        limit_count,
        "a refusal",
        "requests per second per client address, with a burst of rps × limit-burst-multiplier (503 beyond)",
    ),
    Entry::honoured(
        "limit-whitelist",
        I,
        "IPv4/IPv6 addresses and CIDRs, comma-separated",
        source_ranges,
        "a refusal",
        "the old name of limit-allowlist",
    )
    .needs(RATE),
    Entry::honoured(
        "whitelist-source-range",
        I,
        "IPv4/IPv6 addresses and CIDRs, comma-separated",
        source_ranges,
        "a refusal",
        "the old name of allowlist-source-range (which wins when both are set)",
    ),
    Entry::refused("auth-snippet", N, SNIPPET).needs(AUTH_URL),
    Entry::refused("configuration-snippet", N, SNIPPET),
    Entry::refused(
        "enable-modsecurity",
        N,
        "no WAF: the requests ModSecurity blocks would reach the upstream",
    )
    .unless(Unless::False),
    Entry::refused(
        "enable-owasp-core-rules",
        N,
        "no WAF: the requests the OWASP rules block would reach the upstream",
    )
    .unless(Unless::False),
    Entry::refused("modsecurity-snippet", N, SNIPPET),
    Entry::refused("modsecurity-transaction-id", N, "a setting of ModSecurity, not implemented")
        .needs(&["enable-modsecurity"]),
    Entry::refused("server-snippet", N, SNIPPET),
    Entry::refused("stream-snippet", N, SNIPPET),
];
