//! Tests of the catalog: it lists exactly ingress-nginx v1.15.1's keys, each once, with a
//! state that matches what weir honours today; waivers; typo suggestions.

use super::*;
use crate::annotations::validate;

/// Every annotation key of ingress-nginx v1.15.1, one per line: the `AnnotationFields` of
/// each parser under `internal/ingress/annotations/`, with the aliases
/// `whitelist-source-range` and `limit-whitelist`.
const V1_15_1: &str = include_str!("v1.15.1-keys.txt");

/// What the controller reads today (annotations.rs, annotations/rule.rs).
const HONOURED_TODAY: &[&str] = &[
    "backend-protocol",
    "canary",
    "canary-by-cookie",
    "canary-by-header",
    "canary-by-header-pattern",
    "canary-by-header-value",
    "canary-weight",
    "canary-weight-total",
    "force-ssl-redirect",
    "proxy-body-size",
    "proxy-connect-timeout",
    "proxy-read-timeout",
    "ssl-redirect",
];

#[test]
fn the_catalog_lists_exactly_the_v1_15_1_keys_each_once() {
    let total: usize = [backend::ENTRIES, access::ENTRIES, routing::ENTRIES].iter().map(|g| g.len()).sum();
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
    assert_eq!(honoured, HONOURED_TODAY);
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
        "auth-type",
        "mirror-target",
        "mirror-host",
        "mirror-request-body",
        "auth-url",
        "auth-signin",
        "auth-response-headers",
        "whitelist-source-range",
        "allowlist-source-range",
        "denylist-source-range",
        "rewrite-target",
    ] {
        assert_eq!(lookup(key).map(Entry::state), Some(State::Refused), "{key}");
    }
}

#[test]
fn only_canary_keys_and_upstream_and_server_settings_are_read_on_a_canary() {
    for e in ENTRIES.values() {
        let expected = e.name.starts_with("canary")
            || e.name.starts_with("session-cookie-")
            || e.name.starts_with("affinity")
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
    let w = Waivers::parse(&["configuration-snippet", " nginx.ingress.kubernetes.io/auth-url", ""], p);
    let w = w.unwrap_or_default();
    assert_eq!(w.iter().collect::<Vec<_>>(), ["auth-url", "configuration-snippet"]);
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
    ];
    for (key, value, want) in cases {
        assert_eq!(check(key, value).map(|(c, _)| c), Some(want), "{key}={value:?}");
    }
    for (key, value) in
        [("canary-by-header-value", "a,b"), ("proxy-body-size", "10b"), ("proxy-read-timeout", "0")]
    {
        assert!(matches!(check(key, value), Some((Checked::Invalid(_), _))), "{key}={value:?}");
    }
    assert_eq!(check("auth-url", "https://x/"), None, "not honoured: no check");
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
