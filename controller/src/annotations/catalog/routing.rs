//! Catalog entries: routing, redirects and headers (what a request reaches), then CORS,
//! session affinity, tracing and logs.

use super::entry::{Entry, Group, Unless};

const R: Group = Group::Routing;
const O: Group = Group::Other;

const AFFINITY: &str = "a setting of affinity (sticky sessions), not implemented";
const CORS: &str = "a setting of enable-cors, not implemented";
const STICKY: &[&str] = &["affinity"];
const TRACING: &str = "tracing is not implemented; requests are served the same";

pub(super) const ENTRIES: &[Entry] = &[
    Entry::refused("app-root", R, "the redirect from / to the application root would not happen"),
    Entry::refused(
        "custom-headers",
        R,
        "the response headers it adds (often security headers) would be missing",
    ),
    Entry::refused(
        "custom-http-errors",
        R,
        "these errors would come from the upstream instead of the default backend",
    ),
    Entry::refused(
        "default-backend",
        R,
        "requests this Service should answer (no endpoints, intercepted errors) would not reach it",
    ),
    Entry::ignored("disable-proxy-intercept-errors", R, "a setting of custom-http-errors")
        .needs(&["custom-http-errors"]),
    Entry::refused("from-to-www-redirect", R, "the redirect between www. and the bare host would not happen")
        .unless(Unless::False),
    Entry::refused("mirror-host", R, "a setting of mirror-target, not implemented").needs(&["mirror-target"]),
    Entry::refused("mirror-request-body", R, "a setting of mirror-target, not implemented")
        .needs(&["mirror-target"]),
    Entry::refused(
        "mirror-target",
        R,
        "request mirroring is not implemented; the mirror would receive nothing",
    ),
    Entry::refused(
        "permanent-redirect",
        R,
        "the request would reach the upstream instead of being redirected",
    ),
    Entry::refused("permanent-redirect-code", R, "a setting of permanent-redirect, not implemented")
        .needs(&["permanent-redirect"]),
    Entry::ignored("relative-redirects", R, "shapes only nginx's own redirects' Location"),
    Entry::refused(
        "rewrite-target",
        R,
        "path rewriting is not implemented yet; the upstream would get the original path",
    ),
    Entry::refused(
        "server-alias",
        R,
        "requests for the extra host names would reach another rule or the default server",
    ),
    Entry::refused(
        "temporal-redirect",
        R,
        "the request would reach the upstream instead of being redirected",
    ),
    Entry::refused("temporal-redirect-code", R, "a setting of temporal-redirect, not implemented")
        .needs(&["temporal-redirect"]),
    Entry::refused(
        "upstream-vhost",
        R,
        "the upstream would get the client's Host, and may serve another site",
    ),
    Entry::ignored("use-port-in-redirects", R, "shapes only nginx's own redirects' Location"),
    Entry::refused(
        "use-regex",
        R,
        "regex paths are not implemented yet; paths would match as plain prefixes",
    )
    .unless(Unless::False),
    Entry::refused(
        "x-forwarded-prefix",
        R,
        "the upstream would not get X-Forwarded-Prefix and would build links for the wrong path",
    ),
    Entry::refused(
        "affinity",
        O,
        "sticky sessions are not implemented; a client's requests would spread over the pods",
    )
    .on_canary(),
    Entry::refused("affinity-canary-behavior", O, AFFINITY).on_canary().needs(STICKY),
    Entry::refused("affinity-mode", O, AFFINITY).on_canary().needs(STICKY),
    Entry::refused("cors-allow-credentials", O, CORS).needs(&["enable-cors"]),
    Entry::refused("cors-allow-headers", O, CORS).needs(&["enable-cors"]),
    Entry::refused("cors-allow-methods", O, CORS).needs(&["enable-cors"]),
    Entry::refused("cors-allow-origin", O, CORS).needs(&["enable-cors"]),
    Entry::refused("cors-expose-headers", O, CORS).needs(&["enable-cors"]),
    Entry::refused("cors-max-age", O, CORS).needs(&["enable-cors"]),
    Entry::ignored("enable-access-log", O, "weir's access log applies to every request"),
    Entry::refused(
        "enable-cors",
        O,
        "CORS is not implemented; preflights would reach the upstream and browsers would block calls",
    )
    .unless(Unless::False),
    Entry::ignored("enable-opentelemetry", O, TRACING),
    Entry::ignored("enable-rewrite-log", O, "nginx's rewrite debugging log"),
    Entry::ignored("http2-push-preload", O, "HTTP/2 server push, which browsers no longer use"),
    Entry::ignored("opentelemetry-operation-name", O, TRACING),
    Entry::ignored("opentelemetry-trust-incoming-span", O, TRACING),
    Entry::refused("session-cookie-change-on-failure", O, AFFINITY).on_canary().needs(STICKY),
    Entry::refused("session-cookie-conditional-samesite-none", O, AFFINITY).on_canary().needs(STICKY),
    Entry::refused("session-cookie-domain", O, AFFINITY).on_canary().needs(STICKY),
    Entry::refused("session-cookie-expires", O, AFFINITY).on_canary().needs(STICKY),
    Entry::refused("session-cookie-max-age", O, AFFINITY).on_canary().needs(STICKY),
    Entry::refused("session-cookie-name", O, AFFINITY).on_canary().needs(STICKY),
    Entry::refused("session-cookie-path", O, AFFINITY).on_canary().needs(STICKY),
    Entry::refused("session-cookie-samesite", O, AFFINITY).on_canary().needs(STICKY),
    Entry::refused("session-cookie-secure", O, AFFINITY).on_canary().needs(STICKY),
];
