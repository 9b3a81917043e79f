//! Catalog entries: routing, redirects and headers (what a request reaches), then CORS,
//! session affinity, tracing and logs.

use super::backend::go_bool;
use super::entry::{Checked, Entry, Group};
use crate::annotations::validate::{self, CharSet};

const R: Group = Group::Routing;
const O: Group = Group::Other;

const CORS_ON: &[&str] = &["enable-cors"];
const STICKY: &[&str] = &["affinity"];
const TRACING: &str = "tracing is not implemented; requests are served the same";

pub(super) const ENTRIES: &[Entry] = &[
    Entry::honoured(
        "app-root",
        R,
        "a path like /app1 (letters, digits and - . _ ~ / :)",
        app_root,
        "no redirect",
        "a request for / that the Ingress's rules match is redirected (302) to this path on the same scheme and host",
    ),
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
    Entry::honoured(
        "default-backend",
        R,
        "a Service name in the Ingress's namespace (a DNS-1035 label)",
        service_name,
        "a refusal",
        "a rule whose Service has no ready endpoints sends to this Service's (its first port) instead; metrics keep the rule's Service",
    ),
    Entry::ignored("disable-proxy-intercept-errors", R, "a setting of custom-http-errors")
        .needs(&["custom-http-errors"]),
    Entry::honoured(
        "from-to-www-redirect",
        R,
        "a Go boolean",
        go_bool,
        "false",
        "the host's other name (www. added or taken off) answers 308 to the host, unless a rule names it",
    ),
    Entry::refused("mirror-host", R, "a setting of mirror-target, not implemented").needs(&["mirror-target"]),
    Entry::refused("mirror-request-body", R, "a setting of mirror-target, not implemented")
        .needs(&["mirror-target"]),
    Entry::refused(
        "mirror-target",
        R,
        "request mirroring is not implemented; the mirror would receive nothing",
    ),
    Entry::honoured(
        "permanent-redirect",
        R,
        "an http(s) URL with a host, or a path (letters, digits and - . _ ~ / : , ? & =)",
        redirect_url,
        "a refusal",
        "the Ingress's rules answer this redirect instead of forwarding (301, or permanent-redirect-code)",
    ),
    Entry::honoured(
        "permanent-redirect-code",
        R,
        "301, 302, 303, 307 or 308 (300 and 304..306, which nginx answers without a Location, or not a number: a refusal)",
        permanent_code,
        "301",
        "the status of permanent-redirect",
    ),
    Entry::ignored("relative-redirects", R, "shapes only nginx's own redirects' Location"),
    Entry::honoured(
        "rewrite-target",
        R,
        "a path with $1..$9 groups of the rule path (letters, digits and - . _ ~ / : $)",
        rewrite_target,
        "a refusal",
        "the upstream gets this path instead (the whole path replaced, nginx's rewrite); the host's paths become regular expressions",
    ),
    Entry::honoured(
        "server-alias",
        R,
        "host names or *.example.com wildcards, comma-separated",
        server_aliases,
        "no aliases",
        "each name answers as the Ingress's hosts (their rules and certificate), unless it is a host of a rule or another host's alias",
    ),
    Entry::honoured(
        "temporal-redirect",
        R,
        "an http(s) URL with a host, or a path (letters, digits and - . _ ~ / : , ? & =)",
        redirect_url,
        "a refusal",
        "the Ingress's rules answer this redirect instead of forwarding (302, or temporal-redirect-code); wins over permanent-redirect",
    ),
    Entry::honoured(
        "temporal-redirect-code",
        R,
        "301, 302, 303 or 307 (300 and 304..306, which nginx answers without a Location, or not a number: a refusal)",
        temporal_code,
        "302",
        "the status of temporal-redirect",
    )
    .needs(&["temporal-redirect"]),
    Entry::honoured(
        "upstream-vhost",
        R,
        "a host name or address with an optional :port (no nginx variables)",
        upstream_vhost,
        "a refusal",
        "the upstream gets this Host instead of the client's; X-Forwarded-Host keeps the client's",
    ),
    Entry::ignored("use-port-in-redirects", R, "shapes only nginx's own redirects' Location"),
    Entry::honoured(
        "use-regex",
        R,
        "a Go boolean",
        go_bool,
        "false",
        "every path of the host is a case-insensitive regular expression anchored at the start, longest first, as ingress-nginx",
    ),
    Entry::honoured(
        "x-forwarded-prefix",
        R,
        "a value with $1..$9 groups (letters, digits and - . _ ~ / : $)",
        forwarded_prefix,
        "a refusal",
        "sent as X-Forwarded-Prefix with a rewrite-target (as ingress-nginx, only then)",
    ),
    Entry::honoured(
        "affinity",
        O,
        "cookie",
        affinity,
        "none",
        "a cookie keeps a client on one endpoint (and on the stable or canary side, see affinity-canary-behavior)",
    ),
    Entry::honoured(
        "affinity-canary-behavior",
        O,
        "sticky or legacy (read on the canary Ingress, as ingress-nginx)",
        canary_behavior,
        "sticky",
        "sticky: a client stays on the side its cookie names; legacy: only stable is sticky. The canary header and cookie still win (ingress-nginx lets a stable session beat them)",
    )
    .on_canary(),
    Entry::honoured(
        "affinity-mode",
        O,
        "balanced or persistent",
        affinity_mode,
        "balanced",
        "balanced: a scale-up moves the new endpoints' share of clients; persistent: a client moves only when its endpoint is gone",
    )
    .needs(STICKY),
    Entry::honoured(
        "cors-allow-credentials",
        O,
        "a Go boolean",
        go_bool,
        "true",
        "sends Access-Control-Allow-Credentials: true",
    )
    .needs(CORS_ON),
    Entry::honoured(
        "cors-allow-headers",
        O,
        "header names, comma-separated",
        cors_headers,
        "ingress-nginx's list (DNT,Keep-Alive,User-Agent,…,Authorization)",
        "Access-Control-Allow-Headers",
    )
    .needs(CORS_ON),
    Entry::honoured(
        "cors-allow-methods",
        O,
        "methods, comma-separated",
        cors_methods,
        "GET, PUT, POST, DELETE, PATCH, OPTIONS",
        "Access-Control-Allow-Methods",
    )
    .needs(CORS_ON),
    Entry::honoured(
        "cors-allow-origin",
        O,
        "origins (scheme://[*.]host[:port] or null), comma-separated, or *",
        cors_origins,
        "a refusal",
        "the origins answered (each reflected in Access-Control-Allow-Origin); default *",
    )
    .needs(CORS_ON),
    Entry::honoured(
        "cors-expose-headers",
        O,
        "header names or *, comma-separated",
        cors_expose,
        "none",
        "Access-Control-Expose-Headers",
    )
    .needs(CORS_ON),
    Entry::honoured("cors-max-age", O, "whole seconds", cors_max_age, "1728000", "Access-Control-Max-Age")
        .needs(CORS_ON),
    Entry::ignored("enable-access-log", O, "weir's access log applies to every request"),
    Entry::honoured(
        "enable-cors",
        O,
        "a Go boolean",
        go_bool,
        "false",
        "weir answers CORS preflights (204) and adds the CORS headers to answers of allowed origins",
    ),
    Entry::ignored("enable-opentelemetry", O, TRACING),
    Entry::ignored("enable-rewrite-log", O, "nginx's rewrite debugging log"),
    Entry::ignored("http2-push-preload", O, "HTTP/2 server push, which browsers no longer use"),
    Entry::ignored("opentelemetry-operation-name", O, TRACING),
    Entry::ignored("opentelemetry-trust-incoming-span", O, TRACING),
    Entry::honoured(
        "session-cookie-change-on-failure",
        O,
        "a Go boolean",
        go_bool,
        "false",
        "when the cookie's endpoint failed and another answered, the cookie is pointed elsewhere",
    )
    .needs(STICKY),
    Entry::honoured(
        "session-cookie-conditional-samesite-none",
        O,
        "a Go boolean",
        go_bool,
        "false",
        "SameSite=None is left out for browsers known to reject it (ingress-nginx's list)",
    )
    .needs(STICKY),
    Entry::honoured(
        "session-cookie-domain",
        O,
        "a domain (letters, digits and - . _ ~ / :)",
        cookie_domain,
        "none",
        "the cookie's Domain",
    )
    .needs(STICKY),
    Entry::honoured(
        "session-cookie-expires",
        O,
        "whole seconds, not negative",
        cookie_seconds,
        "none",
        "the cookie's Expires, this long after the answer",
    )
    .needs(STICKY),
    Entry::honoured("session-cookie-max-age", O, "whole seconds", cookie_max_age, "none", "the cookie's Max-Age")
        .needs(STICKY),
    Entry::honoured(
        "session-cookie-name",
        O,
        "a cookie name (letters, digits and - . _ ~)",
        cookie_name,
        "INGRESSCOOKIE",
        "the affinity cookie's name",
    )
    .needs(STICKY),
    Entry::honoured(
        "session-cookie-path",
        O,
        "a path starting with /",
        cookie_path,
        "the rule's path (/ on a regex host)",
        "the cookie's Path",
    )
    .needs(STICKY),
    Entry::honoured(
        "session-cookie-samesite",
        O,
        "None, Lax or Strict (any case)",
        cookie_samesite,
        "none",
        "the cookie's SameSite",
    )
    .needs(STICKY),
    Entry::honoured("session-cookie-secure", O, "a Go boolean", go_bool, "false", "the cookie's Secure attribute")
        .needs(STICKY),
];

/// `app-root`: ingress-nginx's `RegexPathWithCapture` and `url.ParseRequestURI`, not an
/// absolute URL; it drops a value that fails (the redirect does not happen, nothing else
/// changes), and so does weir. A `$` (nginx would expand a variable in the Location) and a
/// root of `/` itself (a redirect loop) are weir's own refusal and drop.
fn app_root(v: &str) -> Checked {
    if v.contains('$') {
        return Checked::Unsupported(
            "nginx would expand the $ variable in the Location; weir does not".into(),
        );
    }
    match validate::chars(v, CharSet::Basic, false) {
        Err(e) => Checked::Invalid(e),
        Ok(()) if !v.starts_with('/') => Checked::Invalid("is not a path starting with /".into()),
        Ok(()) if v == "/" => Checked::Invalid("would redirect / to itself".into()),
        Ok(()) => Checked::Valid(v.to_string()),
    }
}

/// `default-backend`: `ValidateServiceName` (a DNS-1035 label, untrimmed); a value that
/// fails makes ingress-nginx skip the Ingress. Whether the Service exists is translation's
/// to see (ingress-nginx then ignores the annotation, and so does weir, reported).
fn service_name(v: &str) -> Checked {
    let b = v.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    match ok {
        true => Checked::Valid(v.to_string()),
        false => Checked::Unsupported(format!(
            "{v:?} is not a Service name (a DNS-1035 label: lower-case letters, digits and -, \
             starting with a letter, at most 63) (ingress-nginx skips the Ingress)"
        )),
    }
}

/// `server-alias`: `ValidateArrayOfServerName` (each comma-separated name, trimmed, in
/// `IsValidRegex`'s characters; a value that fails makes ingress-nginx skip the Ingress).
/// nginx would take any server-name form; weir serves exact names and `*.example.com`, so a
/// regular expression (`~^…`) or another pattern (`.example.com`, `www.example.*`) is
/// refused: requests for it would not reach the Ingress. Normalised as ingress-nginx's
/// parser does: empty names left out, duplicates removed, sorted (and lower-cased, as nginx
/// compares names). No name left: dropped.
fn server_aliases(v: &str) -> Checked {
    let mut names = std::collections::BTreeSet::new();
    for name in v.split(',').map(str::trim) {
        if let Err(e) = validate::chars(name, CharSet::Regex, false) {
            return Checked::Unsupported(format!("{name:?} {e} (ingress-nginx skips the Ingress)"));
        }
        if name.is_empty() {
            continue;
        }
        match weir_config::checks::host_name(name) {
            Ok(n) => names.insert(n),
            Err(_) => {
                return Checked::Unsupported(format!(
                    "{name:?} is not a host name weir serves (exact names and *.example.com wildcards; \
                     nginx's regular-expression and other server-name patterns are not supported)"
                ))
            }
        };
    }
    match names.is_empty() {
        true => Checked::Invalid("lists no host name".into()),
        false => Checked::Valid(names.into_iter().collect::<Vec<_>>().join(",")),
    }
}

/// `permanent-redirect` / `temporal-redirect`: `URLIsValidRegex` (a value that fails it makes
/// ingress-nginx skip the whole Ingress), then a URL weir redirects to: `http://` or
/// `https://` with a host, or a path (nginx completes it with the request's scheme and host).
/// Anything else (ingress-nginx forwards the request, or redirects to another scheme) is a
/// refusal: the redirect the Ingress asks for would not happen.
fn redirect_url(v: &str) -> Checked {
    if let Err(e) = validate::chars(v, CharSet::Url, false) {
        return Checked::Unsupported(format!("{e} (ingress-nginx skips the Ingress)"));
    }
    let host = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
    let ok = match host {
        Some(rest) => !rest.is_empty() && !rest.starts_with('/'),
        None => v.starts_with('/') && !v.starts_with("//"),
    };
    if ok {
        Checked::Valid(v.to_string())
    } else {
        Checked::Unsupported(
            "is not an http:// or https:// URL with a host, nor a path: weir would not redirect".into(),
        )
    }
}

fn permanent_code(v: &str) -> Checked {
    redirect_code(v, 308)
}

fn temporal_code(v: &str) -> Checked {
    redirect_code(v, 307)
}

/// ingress-nginx: not an integer skips the Ingress; outside 300..`max` the default code.
/// nginx's `return` answers 300 and 304..306 with the URL as the body and no Location, which
/// weir does not imitate: refused.
fn redirect_code(v: &str, max: i64) -> Checked {
    match validate::go_int(v) {
        Err(e) => Checked::Unsupported(format!("{e} (ingress-nginx skips the Ingress)")),
        Ok(n) if !(300..=max).contains(&n) => Checked::Invalid(format!("{n} is not within 300..{max}")),
        Ok(n @ (301 | 302 | 303 | 307 | 308)) => Checked::Valid(n.to_string()),
        Ok(n) => Checked::Unsupported(format!(
            "nginx answers {n} with the URL as its body, not a redirect; weir redirects with 301, 302, 303, 307 or 308"
        )),
    }
}

/// `rewrite-target`: `RegexPathWithCapture`; ingress-nginx drops a value that fails (the
/// upstream then gets the original path), weir refuses: the upstream must not see paths the
/// Ingress meant to hide behind the rewrite. nginx variables (`$host`) are refused too; the
/// groups are checked against each rule's path in translation.
fn rewrite_target(v: &str) -> Checked {
    capture_chars(v, true)
}

/// `x-forwarded-prefix`: `RegexPathWithCapture` with spaces removed; a value that fails makes
/// ingress-nginx skip the Ingress.
fn forwarded_prefix(v: &str) -> Checked {
    capture_chars(&v.replace(' ', ""), false)
}

fn capture_chars(v: &str, target: bool) -> Checked {
    let bad = v.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~/:$".contains(*c)));
    if let Some(c) = bad {
        return Checked::Unsupported(format!(
            "contains {c:?}; allowed are letters, digits and - . _ ~ / : $"
        ));
    }
    match weir_config::rewrite::check_target(v, 9, target) {
        Ok(()) => Checked::Valid(v.to_string()),
        Err(e) => Checked::Unsupported(format!("{e} (nginx variables are not supported)")),
    }
}

/// `upstream-vhost`: `ValidateServerName` (trimmed; a value that fails makes ingress-nginx
/// skip the Ingress), then a Host weir can send. An nginx variable (`$service_name…`) or a
/// server-name pattern is refused: the upstream would get another Host than asked.
fn upstream_vhost(v: &str) -> Checked {
    let v = v.trim();
    if v.contains('$') {
        return Checked::Unsupported(
            "nginx variables in upstream-vhost are not supported; give the host literally".into(),
        );
    }
    if let Err(e) = validate::chars(v, CharSet::Regex, false) {
        return Checked::Unsupported(format!("{e} (ingress-nginx skips the Ingress)"));
    }
    match weir_config::checks::upstream_host(v) {
        Ok(_) => Checked::Valid(v.to_string()),
        Err(e) => Checked::Unsupported(e),
    }
}

/// `cors-allow-origin`: each origin as `corsOriginRegex` has it. ingress-nginx skips a bad
/// origin, and with none left (or a value its validator rejects) answers every origin; weir
/// refuses instead: the Ingress would be open to origins it did not list.
fn cors_origins(v: &str) -> Checked {
    let list: Vec<&str> = v.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();
    if list.contains(&"*") {
        return Checked::Valid("*".into());
    }
    if let Some(bad) = list.iter().find(|o| !weir_config::cors::valid_origin(o)) {
        return Checked::Unsupported(format!(
            "{bad:?} is not an origin like https://app.example.com or https://*.example.com:8443"
        ));
    }
    if list.is_empty() {
        return Checked::Unsupported("lists no origin (ingress-nginx would then answer every origin)".into());
    }
    Checked::Valid(list.join(","))
}

/// `corsMethodsRegex`; a value that fails takes the default.
fn cors_methods(v: &str) -> Checked {
    tokens(v, false, "is not a list of methods")
}

/// `HeadersVariable`; a value that fails takes the default.
fn cors_headers(v: &str) -> Checked {
    tokens(v, false, "is not a list of header names")
}

/// `corsExposeHeadersRegex`; a value that fails sends none.
fn cors_expose(v: &str) -> Checked {
    tokens(v, true, "is not a list of header names or *")
}

/// The tokens of a list, empty ones left out (ingress-nginx's patterns allow them), as
/// weir-config takes them.
fn tokens(v: &str, star: bool, reason: &str) -> Checked {
    let joined: Vec<&str> = v.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
    let joined = joined.join(", ");
    match weir_config::cors::token_list(&joined, star) {
        true => Checked::Valid(joined),
        false => Checked::Invalid(reason.into()),
    }
}

fn cors_max_age(v: &str) -> Checked {
    match validate::go_int(v) {
        Ok(n) if n >= 0 => Checked::Valid(n.to_string()),
        Ok(n) => Checked::Invalid(format!("{n} is negative")),
        Err(e) => Checked::Invalid(e),
    }
}

/// `affinity`: `ValidateOptions(["cookie"], true, true)`; anything else is no affinity.
fn affinity(v: &str) -> Checked {
    match validate::one_of(v, &["cookie"], true, true) {
        Ok(c) => Checked::Valid(c.to_string()),
        Err(e) => Checked::Invalid(e),
    }
}

fn canary_behavior(v: &str) -> Checked {
    match validate::one_of(v, &["sticky", "legacy"], true, true) {
        Ok(c) => Checked::Valid(c.to_string()),
        Err(e) => Checked::Invalid(e),
    }
}

fn affinity_mode(v: &str) -> Checked {
    match validate::one_of(v, &["balanced", "persistent"], true, true) {
        Ok(c) => Checked::Valid(c.to_string()),
        Err(e) => Checked::Invalid(e),
    }
}

/// `BasicCharsRegex`, and an HTTP token (a cookie name weir can set); else the default.
fn cookie_name(v: &str) -> Checked {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    match validate::chars(v, CharSet::Basic, false) {
        Err(e) => Checked::Invalid(e),
        Ok(()) if !v.chars().all(token) => Checked::Invalid("is not a cookie name".into()),
        Ok(()) => Checked::Valid(v.to_string()),
    }
}

/// `URLIsValidRegex`; a value that is not a cookie Path takes the default.
fn cookie_path(v: &str) -> Checked {
    match validate::chars(v, CharSet::Url, false) {
        Err(e) => Checked::Invalid(e),
        Ok(()) if !v.starts_with('/') || v.contains(',') => {
            Checked::Invalid("is not a path starting with / (no ,)".into())
        }
        Ok(()) => Checked::Valid(v.to_string()),
    }
}

fn cookie_domain(v: &str) -> Checked {
    match validate::chars(v, CharSet::Basic, false) {
        Err(e) => Checked::Invalid(e),
        Ok(()) => Checked::Valid(v.to_string()),
    }
}

/// `affinityCookieExpiresRegex` (an integer); weir also drops a negative Expires.
fn cookie_seconds(v: &str) -> Checked {
    match validate::go_int(v) {
        Ok(n) if n >= 0 => Checked::Valid(n.to_string()),
        Ok(n) => Checked::Invalid(format!("{n} is negative")),
        Err(e) => Checked::Invalid(e),
    }
}

fn cookie_max_age(v: &str) -> Checked {
    match validate::go_int(v) {
        Ok(n) => Checked::Valid(n.to_string()),
        Err(e) => Checked::Invalid(e),
    }
}

/// `ValidateOptions(["none", "lax", "strict"], false, true)`, returned as browsers spell it.
fn cookie_samesite(v: &str) -> Checked {
    match validate::one_of(v, &["none", "lax", "strict"], false, true) {
        Ok("none") => Checked::Valid("None".into()),
        Ok("lax") => Checked::Valid("Lax".into()),
        Ok(_) => Checked::Valid("Strict".into()),
        Err(e) => Checked::Invalid(e),
    }
}
