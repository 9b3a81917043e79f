//! Tests of the catalog: it lists exactly ingress-nginx v1.15.1's keys, each once, with a
//! state that matches what weir honours today; waivers; typo suggestions.

use super::*;
use crate::annotations::validate;

/// Every annotation key of ingress-nginx v1.15.1, one per line: the `AnnotationFields` of
/// each parser under `internal/ingress/annotations/`, with the aliases
/// `whitelist-source-range` and `limit-whitelist`.
const V1_15_1: &str = include_str!("v1.15.1-keys.txt");

/// What the controller reads today (annotations.rs, annotations/rule.rs, translate/access.rs,
/// translate/select.rs).
const HONOURED_TODAY: &[&str] = &[
    "affinity",
    "affinity-canary-behavior",
    "affinity-mode",
    "app-root",
    "cors-allow-credentials",
    "cors-allow-headers",
    "cors-allow-methods",
    "cors-allow-origin",
    "cors-expose-headers",
    "cors-max-age",
    "enable-cors",
    "backend-protocol",
    "canary",
    "canary-by-cookie",
    "canary-by-header",
    "canary-by-header-pattern",
    "canary-by-header-value",
    "canary-weight",
    "canary-weight-total",
    "default-backend",
    "force-ssl-redirect",
    "from-to-www-redirect",
    "permanent-redirect",
    "permanent-redirect-code",
    "proxy-body-size",
    "proxy-connect-timeout",
    "proxy-next-upstream",
    "proxy-next-upstream-timeout",
    "proxy-next-upstream-tries",
    "proxy-read-timeout",
    "proxy-send-timeout",
    "rewrite-target",
    "server-alias",
    "service-upstream",
    "session-cookie-change-on-failure",
    "session-cookie-conditional-samesite-none",
    "session-cookie-domain",
    "session-cookie-expires",
    "session-cookie-max-age",
    "session-cookie-name",
    "session-cookie-path",
    "session-cookie-samesite",
    "session-cookie-secure",
    "ssl-redirect",
    "temporal-redirect",
    "temporal-redirect-code",
    "upstream-vhost",
    "use-regex",
    "x-forwarded-prefix",
];

/// What the controller translates into access rules: honoured once the proxy enforces them
/// ([`ACCESS_ENFORCED`]), refused until then.
const ACCESS_KEYS: &[&str] = &[
    "allowlist-source-range",
    "auth-cache-duration",
    "auth-cache-key",
    "auth-method",
    "auth-realm",
    "auth-response-headers",
    "auth-secret",
    "auth-secret-type",
    "auth-signin",
    "auth-signin-redirect-param",
    "auth-type",
    "auth-url",
    "denylist-source-range",
    "limit-allowlist",
    "limit-burst-multiplier",
    "limit-connections",
    "limit-rpm",
    "limit-rps",
    "limit-whitelist",
    "whitelist-source-range",
];

/// An access key's check as it will be once enforced (the gate bypassed).
fn ungated_check(name: &str, value: &str) -> Option<Checked> {
    access::ALL_ENTRIES.iter().find(|e| e.name == name).and_then(|e| match e.policy {
        Policy::Honoured { check, .. } => Some(check(value)),
        _ => None,
    })
}

#[test]
fn access_keys_are_refused_until_the_proxy_enforces_them() {
    for key in ACCESS_KEYS {
        let e = lookup(key).unwrap_or_else(|| panic!("{key} is not in the catalog"));
        let want = if ACCESS_ENFORCED { State::Honoured } else { State::Refused };
        assert_eq!(e.state(), want, "{key}");
        assert!(ungated_check(key, "x").is_some(), "{key} has a check for when it is enforced");
        if !ACCESS_ENFORCED {
            assert!(e.reason.contains("does not enforce access rules yet"), "{key}: {}", e.reason);
        }
    }
}

#[test]
fn the_catalog_lists_exactly_the_v1_15_1_keys_each_once() {
    let total: usize =
        [backend::ENTRIES, access::ENTRIES.as_slice(), routing::ENTRIES].iter().map(|g| g.len()).sum();
    assert_eq!(total, ENTRIES.len(), "a key is listed twice");
    let ours: Vec<&str> = ENTRIES.keys().copied().collect();
    let mut want: Vec<&str> = V1_15_1.lines().collect();
    want.sort_unstable();
    assert_eq!(ours, want);
}

#[test]
fn exactly_what_the_controller_reads_today_is_honoured() {
    let honoured: Vec<&str> =
        ENTRIES.values().filter(|e| e.state() == State::Honoured).map(|e| e.name).collect();
    let mut want: Vec<&str> = HONOURED_TODAY.to_vec();
    if ACCESS_ENFORCED {
        want.extend(ACCESS_KEYS);
        want.sort_unstable();
    }
    assert_eq!(honoured, want);
}

#[test]
fn the_issue_s_default_refusals_are_refused() {
    for key in [
        "configuration-snippet",
        "server-snippet",
        "auth-snippet",
        "stream-snippet",
        "enable-modsecurity",
        "enable-owasp-core-rules",
        "modsecurity-snippet",
        "modsecurity-transaction-id",
        "auth-tls-secret",
        "auth-tls-verify-client",
        "auth-tls-match-cn",
        "ssl-passthrough",
        "proxy-ssl-verify",
        "mirror-target",
        "mirror-host",
        "mirror-request-body",
    ] {
        assert_eq!(lookup(key).map(Entry::state), Some(State::Refused), "{key}");
    }
}

#[test]
fn only_canary_keys_and_upstream_and_server_settings_are_read_on_a_canary() {
    for e in ENTRIES.values() {
        let expected = e.name.starts_with("canary")
            || e.name == "affinity-canary-behavior"
            || e.name.starts_with("upstream-hash-by")
            || e.name.starts_with("auth-tls-")
            || e.name.starts_with("proxy-ssl-")
            || matches!(e.name, "load-balance" | "service-upstream");
        assert_eq!(e.on_canary, expected, "{}", e.name);
    }
}

#[test]
fn every_needed_key_is_itself_in_the_catalog() {
    for e in ENTRIES.values() {
        for n in e.needs {
            assert!(lookup(n).is_some(), "{} needs unknown {n}", e.name);
        }
        assert!(!e.reason.is_empty() && !e.reason.contains('\n'), "{}: one-line reason", e.name);
    }
}

#[test]
fn waivers_take_refused_keys_with_or_without_prefix_and_reject_the_rest() {
    let p = "nginx.ingress.kubernetes.io";
    let w = Waivers::parse(&["configuration-snippet", " nginx.ingress.kubernetes.io/auth-snippet", ""], p);
    let w = w.unwrap_or_default();
    assert_eq!(w.iter().collect::<Vec<_>>(), ["auth-snippet", "configuration-snippet"]);
    let cases = [
        ("proxy-body-size", "--accept-annotation proxy-body-size: is honoured, not refused; there is nothing to accept"),
        ("proxy-buffering", "--accept-annotation proxy-buffering: is ignored, not refused; there is nothing to accept"),
        (
            "configuration-snipet",
            "--accept-annotation configuration-snipet: is not an ingress-nginx annotation (did you mean configuration-snippet?)",
        ),
    ];
    for (key, message) in cases {
        let err = Waivers::parse(&[key], p).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(err, Err(message.to_string()), "{key}");
    }
}

#[test]
fn typos_suggest_the_nearest_key_and_far_names_suggest_nothing() {
    let cases = [
        ("whitelist-source-rage", Some("whitelist-source-range")),
        ("rewrite-targets", Some("rewrite-target")),
        ("proxy-body-sise", Some("proxy-body-size")),
        ("canary-weigth", Some("canary-weight")),
        ("secure-backends", None),
        ("ab", None),
    ];
    for (name, want) in cases {
        assert_eq!(nearest(name), want, "{name}");
    }
}

#[test]
fn honoured_checks_keep_ingress_nginx_s_sets_and_weir_s_limits() {
    // (key, value, expected)
    let cases = [
        ("canary-by-header-value", "beta-users", Checked::Valid("beta-users".into())),
        ("canary-by-header", " X-Canary ", Checked::Valid("X-Canary".into())),
        ("proxy-body-size", "8m", Checked::Valid("8m".into())),
        ("proxy-connect-timeout", "30", Checked::Valid("30s".into())),
        ("backend-protocol", " grpcs", Checked::Valid("GRPCS".into())),
        (
            "backend-protocol",
            "FCGI",
            Checked::Unsupported("FCGI: weir does not speak FastCGI to upstreams".into()),
        ),
        ("ssl-redirect", "yes", Checked::Invalid("is not a boolean (true, false, 1, 0, t, f, …)".into())),
        ("permanent-redirect", "https://www.google.com", Checked::Valid("https://www.google.com".into())),
        ("permanent-redirect", "/new/path?a=b", Checked::Valid("/new/path?a=b".into())),
        ("temporal-redirect", "http://x.test:8080/a", Checked::Valid("http://x.test:8080/a".into())),
        ("permanent-redirect-code", "308", Checked::Valid("308".into())),
        ("permanent-redirect-code", "200", Checked::Invalid("200 is not within 300..308".into())),
        ("temporal-redirect-code", "308", Checked::Invalid("308 is not within 300..307".into())),
        ("temporal-redirect-code", "303", Checked::Valid("303".into())),
        ("app-root", "/app1", Checked::Valid("/app1".into())),
        ("app-root", "app1", Checked::Invalid("is not a path starting with /".into())),
        ("app-root", "/", Checked::Invalid("would redirect / to itself".into())),
        ("rewrite-target", "/$2", Checked::Valid("/$2".into())),
        ("rewrite-target", "/api/$1/x", Checked::Valid("/api/$1/x".into())),
        ("use-regex", "yes", Checked::Invalid("is not a boolean (true, false, 1, 0, t, f, …)".into())),
        ("x-forwarded-prefix", "/app $1", Checked::Valid("/app$1".into())),
        ("upstream-vhost", " api.internal:8080 ", Checked::Valid("api.internal:8080".into())),
        // ingress-nginx's parser: trimmed, empty names out, deduplicated and sorted.
        (
            "server-alias",
            "www.example.com, Alias.Example.com,,www.example.com",
            Checked::Valid("alias.example.com,www.example.com".into()),
        ),
        ("server-alias", "*.example.com", Checked::Valid("*.example.com".into())),
        ("server-alias", " , ", Checked::Invalid("lists no host name".into())),
        ("default-backend", "my-default", Checked::Valid("my-default".into())),
        ("service-upstream", "true", Checked::Valid("true".into())),
        ("service-upstream", "yes", Checked::Invalid("is not a boolean (true, false, 1, 0, t, f, …)".into())),
    ];
    for (key, value, want) in cases {
        assert_eq!(check(key, value).map(|(c, _)| c), Some(want), "{key}={value:?}");
    }
    let access = [
        ("whitelist-source-range", "10.0.0.1/8, ::1", Checked::Valid("10.0.0.0/8,::1/128".into())),
        ("auth-type", " basic", Checked::Valid("basic".into())),
        ("auth-type", "digest", Checked::Unsupported("digest authentication is not implemented".into())),
        (
            "auth-url",
            " https://auth.example.com/x?a=b ",
            Checked::Valid("https://auth.example.com/x?a=b".into()),
        ),
        (
            "auth-url",
            "https://$host/x",
            Checked::Unsupported(
                "nginx variables in auth-url are not supported; give the URL literally".into(),
            ),
        ),
        (
            "auth-signin",
            "https://$host/start?rd=$escaped_request_uri",
            Checked::Valid("https://$host/start?rd=$escaped_request_uri".into()),
        ),
        ("auth-response-headers", "X-User, X-Email", Checked::Valid("X-User,X-Email".into())),
        ("auth-secret-type", "auth-map", Checked::Valid("auth-map".into())),
    ];
    for (key, value, want) in access {
        assert_eq!(ungated_check(key, value), Some(want), "{key}={value:?}");
    }
    for (key, value) in
        [("canary-by-header-value", "a,b"), ("proxy-body-size", "10b"), ("proxy-read-timeout", "0")]
    {
        assert!(matches!(check(key, value), Some((Checked::Invalid(_), _))), "{key}={value:?}");
    }
    for (key, value) in [
        ("allowlist-source-range", "10.0.0.0/33"),
        ("denylist-source-range", "10.0.0.0/8,"),
        ("auth-url", "http://a/;proxy_pass"),
        ("auth-url", "ftp://a/"),
        ("auth-method", "get"),
        ("auth-response-headers", "X-User:evil"),
        ("auth-secret", "a/b/c"),
        ("auth-secret-type", "file"),
    ] {
        assert!(
            matches!(ungated_check(key, value), Some(Checked::Unsupported(_))),
            "{key}={value:?} refuses"
        );
    }
    for (key, value) in
        [("auth-signin", "https://a/?x=$arg_x"), ("auth-cache-key", "$foo"), ("auth-realm", "a\"b")]
    {
        assert!(matches!(ungated_check(key, value), Some(Checked::Invalid(_))), "{key}={value:?} is dropped");
    }
    // Redirects: a value ingress-nginx skips the Ingress for, or one weir would not redirect
    // as asked, refuses.
    for (key, value) in [
        ("permanent-redirect", "https://x.test$request_uri"),
        ("permanent-redirect", "https://x.test/a b"),
        ("permanent-redirect", "ftp://files.test/"),
        ("permanent-redirect", "www.example.com"),
        ("permanent-redirect", "https://"),
        ("temporal-redirect", "//x.test/"),
        ("permanent-redirect-code", "abc"),
        ("permanent-redirect-code", "304"),
        ("temporal-redirect-code", " 302"),
        ("app-root", "/$1"),
        ("rewrite-target", "/$host"),
        ("rewrite-target", "/a?b"),
        ("rewrite-target", "new"),
        ("x-forwarded-prefix", "/p;q"),
        ("upstream-vhost", "$service_name.$namespace.svc"),
        ("upstream-vhost", "~^www\\d+\\.example\\.com$"),
        ("upstream-vhost", "a b"),
        // nginx server-name patterns weir does not serve, and characters ingress-nginx rejects
        ("server-alias", "~^www\\d+\\.example\\.com$"),
        ("server-alias", ".example.com"),
        ("server-alias", "www.example.*"),
        ("server-alias", "a.example.com b.example.com"),
        ("server-alias", "a.example.com;b"),
        // not a DNS-1035 label: ingress-nginx skips the Ingress
        ("default-backend", "My-Default"),
        ("default-backend", " svc"),
        ("default-backend", "1svc"),
        ("default-backend", "ns/svc"),
    ] {
        assert!(matches!(check(key, value), Some((Checked::Unsupported(_), _))), "{key}={value:?} refuses");
    }
    assert_eq!(check("configuration-snippet", "x"), None, "not honoured: no check");
}

/// README.md's table is generated from the catalog, between these markers. Run the test
/// with `WEIR_BLESS_README=1` to rewrite it after changing the catalog.
#[test]
fn the_readme_table_is_the_catalog() {
    const START: &str = "<!-- annotation-catalog:start (generated by the_readme_table_is_the_catalog) -->\n";
    const END: &str = "<!-- annotation-catalog:end -->";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap_or_default();
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the annotation catalog markers");
    };
    let table = markdown_table();
    let current = &readme[start + START.len()..end];
    if current != table && std::env::var_os("WEIR_BLESS_README").is_some() {
        let updated = format!("{}{table}{}", &readme[..start + START.len()], &readme[end..]);
        std::fs::write(&path, updated).unwrap_or_default();
        return;
    }
    assert!(
        current == table,
        "README.md's annotation table differs from the catalog; rerun with WEIR_BLESS_README=1"
    );
}

#[test]
fn the_catalog_and_the_rule_parser_agree_on_every_value() {
    use crate::annotations::read_rule;
    let p = "nginx.ingress.kubernetes.io";
    let values: &[(&str, &[&str])] = &[
        ("proxy-body-size", &["8m", " 512K ", "0", "1g", "10b", "1.5m", "m", "8 m", "17179869184g"]),
        ("proxy-connect-timeout", &["30", "+7", "0", "-1", "1.5", "31536001", "5s"]),
        ("proxy-read-timeout", &["3600", "x", "31536000"]),
        ("backend-protocol", &["HTTPS", " grpc ", "http", "AUTO_HTTP", "AJP", "FCGI", "h2c"]),
        ("ssl-redirect", &["false", "True", "0", "yes", "off"]),
        ("force-ssl-redirect", &["true", "F", "on"]),
    ];
    for (key, vals) in values {
        for value in *vals {
            let annotations = [(format!("{p}/{key}"), value.to_string())].into_iter().collect();
            let (rule, warnings) = read_rule(Some(&annotations), p);
            let stored = match *key {
                "proxy-body-size" => rule.max_body_size.clone(),
                "proxy-connect-timeout" => rule.connect_timeout.clone(),
                "proxy-read-timeout" => rule.response_timeout.clone(),
                "backend-protocol" => {
                    rule.protocol.clone().or_else(|| warnings.is_empty().then(|| "HTTP".into()))
                }
                "ssl-redirect" => warnings.is_empty().then(|| rule.ssl_redirect.to_string()),
                _ => warnings.is_empty().then(|| rule.force_ssl_redirect.to_string()),
            };
            let checked = match check(key, value) {
                Some((Checked::Valid(v), _)) if key.ends_with("redirect") => {
                    validate::go_bool(&v).ok().map(|b| b.to_string())
                }
                Some((Checked::Valid(v), _)) => Some(v),
                _ => None,
            };
            assert_eq!(checked, stored, "{key}={value:?} (rule parser warnings: {warnings:?})");
        }
    }
}
