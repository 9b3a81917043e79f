//! Catalog entries: canary, backend (timeouts, body size, buffering, load balancing) and TLS.
//!
//! The value checks of the keys weir honours are here too: ingress-nginx's validator for the
//! key first (a value it rejects is one ingress-nginx drops), then weir's own limits.

use super::entry::{Checked, Entry, Group, Unless};
use crate::annotations::rule::{body_size, MAX_TIMEOUT_SECS};
use crate::annotations::validate::{self, CharSet};

const C: Group = Group::Canary;
const B: Group = Group::Backend;
const T: Group = Group::Tls;

const BUFFERS: &str = "nginx buffer tuning; weir streams bodies";

pub(super) const ENTRIES: &[Entry] = &[
    Entry::honoured("canary", C, "a Go boolean", go_bool, "false", "marks the Ingress as a canary of a main Ingress")
        .on_canary(),
    Entry::honoured(
        "canary-by-cookie",
        C,
        "a cookie name of letters, digits and - . _ ~ / :",
        basic_chars,
        "no cookie routing",
        "cookie `always`/`never` routing",
    )
    .on_canary(),
    Entry::honoured(
        "canary-by-header",
        C,
        "a header name of letters, digits and - . _ ~ / :",
        basic_chars,
        "no header routing",
        "header routing (`always`/`never`, or the value or pattern below)",
    )
    .on_canary(),
    Entry::honoured(
        "canary-by-header-pattern",
        C,
        "a regex of letters, digits, - . _ ~ / : and ^ $ [ ] ( ) { } * + ? | & = \\",
        regex_chars,
        "the header's always/never rules",
        "header value regex (ignored when canary-by-header-value is set)",
    )
    .on_canary(),
    Entry::honoured(
        "canary-by-header-value",
        C,
        "letters, digits and - . _ ~ / : (spaces ignored)",
        basic_chars,
        "the header's pattern or always/never rules",
        "exact header value that selects the canary",
    )
    .on_canary(),
    Entry::honoured("canary-weight", C, "a Go integer", go_int, "0", "share of requests for the canary").on_canary(),
    Entry::honoured("canary-weight-total", C, "a Go integer", go_int, "100", "denominator of canary-weight")
        .on_canary(),
    Entry::honoured(
        "backend-protocol",
        B,
        "HTTP, HTTPS, GRPC or GRPCS (any case; FCGI refused)",
        backend_protocol,
        "HTTP",
        "protocol towards the upstream",
    ),
    Entry::ignored("client-body-buffer-size", B, BUFFERS),
    Entry::ignored("connection-proxy-header", B, "weir manages upstream connection reuse itself"),
    Entry::ignored("fastcgi-index", B, "used only with backend-protocol FCGI, which is refused"),
    Entry::ignored("fastcgi-params-configmap", B, "used only with backend-protocol FCGI, which is refused"),
    Entry::ignored("load-balance", B, "weir balances over ready endpoints itself; the algorithm is tuning")
        .on_canary(),
    Entry::honoured(
        "proxy-body-size",
        B,
        "digits with an optional k, m or g (0 = no limit)",
        proxy_body_size,
        "1m",
        "request body limit (413 above it)",
    ),
    Entry::ignored("proxy-buffer-size", B, BUFFERS),
    Entry::ignored("proxy-buffering", B, BUFFERS),
    Entry::ignored("proxy-buffers-number", B, BUFFERS),
    Entry::ignored("proxy-busy-buffers-size", B, BUFFERS),
    Entry::honoured("proxy-connect-timeout", B, "whole seconds, 1 s to a year", seconds, "5s", "upstream connect timeout"),
    Entry::refused(
        "proxy-cookie-domain",
        B,
        "Set-Cookie rewriting is not implemented; cookies would keep the upstream's domain",
    )
    .unless(Unless::OneOf(&["off"])),
    Entry::refused(
        "proxy-cookie-path",
        B,
        "Set-Cookie rewriting is not implemented; cookies would keep the upstream's path (often /, the whole host)",
    )
    .unless(Unless::OneOf(&["off"])),
    Entry::ignored(
        "proxy-http-version",
        B,
        "weir picks the upstream HTTP version itself (HTTP/1.1, HTTP/2 for gRPC)",
    ),
    Entry::ignored("proxy-max-temp-file-size", B, BUFFERS),
    Entry::honoured(
        "proxy-next-upstream",
        B,
        "nginx's conditions, space-separated: error timeout invalid_header http_500 http_502 http_503 http_504 http_403 http_404 http_429 non_idempotent off",
        next_upstream,
        "error timeout",
        "which failed attempts go to the next endpoint (a streamed request body is never sent twice; nothing after a response byte reached the client)",
    ),
    Entry::honoured(
        "proxy-next-upstream-timeout",
        B,
        "whole seconds, 0 for no limit",
        non_negative,
        "0",
        "no new attempt starts after this long since the first",
    ),
    Entry::honoured(
        "proxy-next-upstream-tries",
        B,
        "a whole number, 0 for as many as allowed (16)",
        non_negative,
        "3",
        "endpoints tried at most, the first included",
    ),
    Entry::honoured(
        "proxy-read-timeout",
        B,
        "whole seconds, 1 s to a year",
        seconds,
        "60s",
        "wait for the upstream's response headers (504 after)",
    ),
    Entry::refused(
        "proxy-redirect-from",
        B,
        "Location rewriting is not implemented; redirects would carry the upstream's own URL",
    )
    .unless(Unless::OneOf(&["off", "default"])),
    Entry::refused(
        "proxy-redirect-to",
        B,
        "Location rewriting is not implemented; redirects would carry the upstream's own URL",
    )
    .unless(Unless::OneOf(&["off"]))
    .needs(&["proxy-redirect-from"]),
    Entry::ignored("proxy-request-buffering", B, "weir streams request bodies (proxy-body-size still limits them)"),
    Entry::honoured(
        "proxy-send-timeout",
        B,
        "whole seconds, 1 s to a year",
        seconds,
        "60s",
        "longest wait for the upstream to take more of a streamed request body (504 after)",
    ),
    Entry::honoured(
        "service-upstream",
        B,
        "a Go boolean",
        go_bool,
        "false",
        "the rule's one endpoint is the Service's ClusterIP and port, not its pods; a Service without a ClusterIP (headless) keeps its endpoints",
    )
    .on_canary(),
    Entry::refused(
        "upstream-hash-by",
        B,
        "consistent hashing is not implemented; requests with one key would stop reaching one pod",
    )
    .on_canary(),
    Entry::ignored("upstream-hash-by-subset", B, "a setting of upstream-hash-by")
        .on_canary()
        .needs(&["upstream-hash-by"]),
    Entry::ignored("upstream-hash-by-subset-size", B, "a setting of upstream-hash-by")
        .on_canary()
        .needs(&["upstream-hash-by"]),
    Entry::honoured(
        "force-ssl-redirect",
        T,
        "a Go boolean",
        go_bool,
        "false",
        "redirect plain HTTP to HTTPS even without TLS on the Ingress",
    ),
    Entry::ignored("preserve-trailing-slash", T, "shapes only the trailing slash of the HTTPS redirect's Location"),
    Entry::refused(
        "proxy-ssl-ciphers",
        T,
        "a setting of proxy-ssl-secret (client certificates towards the upstream)",
    )
    .on_canary()
    .needs(&["proxy-ssl-secret"]),
    Entry::refused("proxy-ssl-name", T, "the name sent to and checked on the upstream would change")
        .on_canary()
        .needs(&["proxy-ssl-secret"]),
    Entry::refused("proxy-ssl-protocols", T, "a setting of proxy-ssl-secret (client certificates towards the upstream)")
        .on_canary()
        .needs(&["proxy-ssl-secret"]),
    Entry::refused(
        "proxy-ssl-secret",
        T,
        "client certificates and CA checks towards the upstream are not implemented",
    )
    .on_canary(),
    Entry::refused("proxy-ssl-server-name", T, "a setting of proxy-ssl-secret (SNI towards the upstream)")
        .unless(Unless::OneOf(&["off"]))
        .on_canary()
        .needs(&["proxy-ssl-secret"]),
    Entry::refused("proxy-ssl-verify", T, "weir does not verify upstream certificates; any certificate would be accepted")
        .unless(Unless::OneOf(&["off"]))
        .on_canary()
        .needs(&["proxy-ssl-secret"]),
    Entry::refused("proxy-ssl-verify-depth", T, "a setting of proxy-ssl-verify")
        .on_canary()
        .needs(&["proxy-ssl-secret"]),
    Entry::ignored("ssl-ciphers", T, "weir serves rustls's TLS 1.2/1.3 suites, none of them weak"),
    Entry::refused(
        "ssl-passthrough",
        T,
        "TLS passthrough is not implemented; weir would terminate TLS and route by HTTP",
    )
    .unless(Unless::False),
    Entry::ignored("ssl-prefer-server-ciphers", T, "weir serves rustls's TLS 1.2/1.3 suites, none of them weak"),
    Entry::honoured(
        "ssl-redirect",
        T,
        "a Go boolean",
        go_bool,
        "true",
        "redirect plain HTTP to HTTPS on hosts with TLS",
    ),
];

pub(super) fn go_bool(v: &str) -> Checked {
    match validate::go_bool(v) {
        Ok(_) => Checked::Valid(v.to_string()),
        Err(e) => Checked::Invalid(e),
    }
}

fn go_int(v: &str) -> Checked {
    match validate::go_int(v) {
        Ok(_) => Checked::Valid(v.to_string()),
        Err(e) => Checked::Invalid(e),
    }
}

/// `ValidateRegex(BasicCharsRegex, true)`; the value is used trimmed, as ingress-nginx does.
fn basic_chars(v: &str) -> Checked {
    match validate::chars(v, CharSet::Basic, true) {
        Ok(()) => Checked::Valid(v.trim().to_string()),
        Err(e) => Checked::Invalid(e),
    }
}

/// `ValidateRegex(IsValidRegex, false)`. Whether the `regex` crate compiles it is checked
/// where the canary is built (D5), since that failure has its own outcome.
fn regex_chars(v: &str) -> Checked {
    match validate::chars(v, CharSet::Regex, false) {
        Ok(()) => Checked::Valid(v.trim().to_string()),
        Err(e) => Checked::Invalid(e),
    }
}

fn proxy_body_size(v: &str) -> Checked {
    if let Err(e) = validate::nginx_size(v) {
        return Checked::Invalid(e);
    }
    match body_size(v) {
        Some(size) => Checked::Valid(size),
        None => Checked::Invalid("is not a size weir reads (digits with an optional k, m or g)".into()),
    }
}

/// `proxy-next-upstream`: `validUpstreamAnnotation` (a value that fails takes the default);
/// `off` anywhere wins, as in nginx. Returned space-separated, as given.
fn next_upstream(v: &str) -> Checked {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let known = |p: &&str| weir_config::retry::RetryOn::named(p).is_some();
    if parts.is_empty() || !parts.iter().all(known) {
        return Checked::Invalid(
            "is not a list of error, timeout, invalid_header, http_500, http_502, http_503, http_504, http_403, http_404, http_429, non_idempotent, off".into(),
        );
    }
    if parts.contains(&"off") {
        return Checked::Valid("off".into());
    }
    Checked::Valid(parts.join(" "))
}

/// `ValidateInt`, not negative (nginx would refuse the directive).
fn non_negative(v: &str) -> Checked {
    match validate::go_int(v) {
        Ok(n) if n >= 0 => Checked::Valid(n.to_string()),
        Ok(n) => Checked::Invalid(format!("{n} is negative")),
        Err(e) => Checked::Invalid(e),
    }
}

fn seconds(v: &str) -> Checked {
    match validate::go_int(v) {
        Ok(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => Checked::Valid(format!("{n}s")),
        Ok(_) => Checked::Invalid(format!("must be between 1 and {MAX_TIMEOUT_SECS} seconds")),
        Err(_) => Checked::Invalid("is not a whole number of seconds".into()),
    }
}

/// ingress-nginx v1.15.1 accepts auto_http, http, https, grpc, grpcs and fcgi (any case).
fn backend_protocol(v: &str) -> Checked {
    const VALID: [&str; 6] = ["auto_http", "http", "https", "grpc", "grpcs", "fcgi"];
    match validate::one_of(v, &VALID, false, true) {
        Ok("fcgi") => Checked::Unsupported("FCGI: weir does not speak FastCGI to upstreams".into()),
        Ok("auto_http") => Checked::Invalid(
            "AUTO_HTTP (the client's scheme towards the upstream) is not supported by weir".into(),
        ),
        Ok(p) => Checked::Valid(p.to_ascii_uppercase()),
        Err(e) => Checked::Invalid(e),
    }
}
