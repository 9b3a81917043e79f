//! Catalog entries: authentication (external, basic, client certificates), IP access, rate
//! limits, raw nginx and the WAF: the keys whose silent loss opens a path.

use super::{Entry, Group, Unless};

const A: Group = Group::Auth;
const I: Group = Group::Access;
const N: Group = Group::Nginx;

const EXT: &str = "a setting of external auth (auth-url), not implemented yet";
const BASIC: &str = "a setting of basic auth (auth-type), not implemented yet";
const MTLS: &str = "a setting of client certificate auth (auth-tls-secret), not implemented";
const LIMITS: &str = "a setting of the rate limits, not implemented";
const SNIPPET: &str =
    "raw nginx configuration cannot be honoured (it may deny, rewrite or add headers); ingress-nginx's defaults reject it too";
const AUTH_URL: &[&str] = &["auth-url"];
const AUTH_TYPE: &[&str] = &["auth-type"];
const AUTH_TLS: &[&str] = &["auth-tls-secret"];
const RATE: &[&str] = &["limit-connections", "limit-rpm", "limit-rps"];

pub(super) const ENTRIES: &[Entry] = &[
    Entry::refused("auth-always-set-cookie", A, EXT).needs(AUTH_URL),
    Entry::refused("auth-cache-duration", A, EXT).needs(AUTH_URL),
    Entry::refused("auth-cache-key", A, EXT).needs(AUTH_URL),
    Entry::ignored("auth-keepalive", A, "connection tuning of the auth-url subrequest").needs(AUTH_URL),
    Entry::ignored("auth-keepalive-requests", A, "connection tuning of the auth-url subrequest").needs(AUTH_URL),
    Entry::ignored("auth-keepalive-share-vars", A, "connection tuning of the auth-url subrequest").needs(AUTH_URL),
    Entry::ignored("auth-keepalive-timeout", A, "connection tuning of the auth-url subrequest").needs(AUTH_URL),
    Entry::refused("auth-method", A, EXT).needs(AUTH_URL),
    Entry::refused("auth-proxy-set-headers", A, EXT).needs(AUTH_URL),
    Entry::refused("auth-realm", A, BASIC).needs(AUTH_TYPE),
    Entry::refused("auth-request-redirect", A, EXT).needs(AUTH_URL),
    Entry::refused(
        "auth-response-headers",
        A,
        "identity headers from auth-url (not implemented yet); a client could forge them",
    )
    .needs(AUTH_URL),
    Entry::refused("auth-secret", A, BASIC).needs(AUTH_TYPE),
    Entry::refused("auth-secret-type", A, BASIC).needs(AUTH_TYPE),
    Entry::refused("auth-signin", A, EXT).needs(AUTH_URL),
    Entry::refused("auth-signin-redirect-param", A, EXT).needs(AUTH_URL),
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
    Entry::refused(
        "auth-type",
        A,
        "basic and digest authentication are not implemented yet; the path would be served without a password",
    ),
    Entry::refused(
        "auth-url",
        A,
        "external authentication is not implemented yet; the path would be served unauthenticated",
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
    Entry::refused(
        "allowlist-source-range",
        I,
        "IP allowlists are not implemented yet; every client address would be let in",
    ),
    Entry::refused(
        "denylist-source-range",
        I,
        "IP denylists are not implemented yet; the denied addresses would be let in",
    ),
    Entry::refused("limit-allowlist", I, LIMITS).needs(RATE),
    Entry::refused("limit-burst-multiplier", I, LIMITS).needs(RATE),
    Entry::refused(
        "limit-connections",
        I,
        "rate limiting is not implemented; a client could connect without limit",
    ),
    Entry::ignored("limit-rate", I, "bandwidth shaping of responses; tuning"),
    Entry::ignored("limit-rate-after", I, "a setting of limit-rate").needs(&["limit-rate"]),
    Entry::refused("limit-rpm", I, "rate limiting is not implemented; a client could send without limit"),
    Entry::refused("limit-rps", I, "rate limiting is not implemented; a client could send without limit"),
    Entry::refused("limit-whitelist", I, LIMITS).needs(RATE),
    Entry::refused(
        "whitelist-source-range",
        I,
        "IP allowlists are not implemented yet; every client address would be let in",
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
