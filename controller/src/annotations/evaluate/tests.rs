//! Table-driven tests of [`evaluate`]: every state, canary position, needs, waivers.

use super::*;

const P: &str = "nginx.ingress.kubernetes.io";

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (format!("{P}/{k}"), v.to_string())).collect()
}

fn judged(pairs: &[(&str, &str)], canary: bool, waivers: &Waivers) -> Vec<(String, State, String)> {
    let a = annotations(pairs);
    evaluate(Some(&a), P, canary, waivers)
        .verdicts
        .into_iter()
        .map(|v| (v.name.clone(), v.state(), v.reason()))
        .collect()
}

#[test]
fn each_key_gets_its_state_and_reason() {
    // (key, value, canary, state, start of reason)
    let cases = [
        ("proxy-body-size", "8m", false, State::Honoured, "request body limit"),
        ("proxy-body-size", "8 mb", false, State::Honoured, "value dropped: is not a size"),
        (
            "auth-url",
            "http://oauth2-proxy.auth.svc/oauth2/auth",
            false,
            State::Honoured,
            "external authentication: a subrequest decides",
        ),
        (
            "auth-url",
            "https://$host/oauth2/auth",
            false,
            State::Refused,
            "nginx variables in auth-url are not supported",
        ),
        ("configuration-snippet", "deny all;", false, State::Refused, "raw nginx configuration"),
        ("proxy-buffering", "off", false, State::Ignored, "nginx buffer tuning"),
        ("ssl-passthrough", "false", false, State::Ignored, "\"false\" switches it off"),
        ("ssl-passthrough", "true", false, State::Refused, "TLS passthrough is not implemented"),
        ("ssl-passthrough", "yes", false, State::Refused, "\"yes\" is not a boolean, so it may mean on"),
        ("enable-cors", "false", false, State::Honoured, "weir answers CORS preflights"),
        ("proxy-ssl-verify", "on", false, State::Ignored, "has no effect without proxy-ssl-secret"),
        ("satisfy", " ALL ", false, State::Ignored, "\"ALL\" switches it off"),
        ("satisfy", "any", false, State::Refused, "weir would require every access check"),
        ("backend-protocol", "fcgi", false, State::Refused, "FCGI: weir does not speak FastCGI"),
        ("backend-protocol", "AJP", false, State::Honoured, "value dropped: is not one of"),
        (
            "configuration-snipet",
            "deny all;",
            false,
            State::Unknown,
            "not an ingress-nginx v1.15.1 annotation (did you mean configuration-snippet?; \
             ingress-nginx ignores the misspelt key too, so configuration-snippet is not in force today)",
        ),
        (
            "whitelist-source-rage",
            "10.0.0.0/8",
            false,
            State::Unknown,
            "not an ingress-nginx v1.15.1 annotation (did you mean whitelist-source-range?",
        ),
        (
            "proxy-body-sise",
            "8m",
            false,
            State::Unknown,
            "not an ingress-nginx v1.15.1 annotation (did you mean proxy-body-size?); ignored",
        ),
        (
            "secure-backends",
            "true",
            false,
            State::Unknown,
            "removed from ingress-nginx (backend-protocol: HTTPS replaces it)",
        ),
        ("x-totally-custom", "1", false, State::Unknown, "not an ingress-nginx v1.15.1 annotation; ignored"),
        ("rewrite-target", "   ", false, State::Ignored, "empty value"),
        ("rewrite-target", "/$2", true, State::Ignored, "not read on a canary Ingress"),
        ("canary-weight", "20", true, State::Honoured, "share of requests for the canary"),
        (
            "auth-tls-secret",
            "ns/ca",
            true,
            State::Refused,
            "client certificate authentication is not implemented",
        ),
        ("affinity", "cookie", false, State::Honoured, "a cookie keeps a client on one endpoint"),
    ];
    for (key, value, canary, state, reason) in cases {
        let got = judged(&[(key, value)], canary, &Waivers::default());
        assert_eq!(got.len(), 1);
        let (_, s, r) = &got[0];
        assert_eq!((*s, r.starts_with(reason)), (state, true), "{key}={value:?} canary={canary}: {r}");
    }
}

#[test]
fn a_setting_counts_only_when_its_feature_key_is_on() {
    let waivers = Waivers::default();
    let states = |pairs: &[(&str, &str)]| {
        judged(pairs, false, &waivers).into_iter().map(|(n, s, _)| (n, s)).collect::<Vec<_>>()
    };
    assert_eq!(states(&[("auth-signin", "https://a/start")]), [("auth-signin".into(), State::Ignored)]);
    assert_eq!(
        states(&[("auth-signin", "https://a/start"), ("auth-url", "http://b/auth")]),
        [("auth-signin".into(), State::Honoured), ("auth-url".into(), State::Honoured)]
    );
    // enable-cors "false" (or not a boolean) is off, so its settings do nothing.
    for off in ["false", "0", "maybe"] {
        assert_eq!(
            states(&[("cors-allow-origin", "https://a"), ("enable-cors", off)]),
            [("cors-allow-origin".into(), State::Ignored), ("enable-cors".into(), State::Honoured)],
            "{off}"
        );
    }
    assert_eq!(
        states(&[("cors-allow-origin", "https://a"), ("enable-cors", "true")]),
        [("cors-allow-origin".into(), State::Honoured), ("enable-cors".into(), State::Honoured)]
    );
}

#[test]
fn a_waived_refusal_is_ignored_and_says_so() {
    let waivers = Waivers::parse(&["configuration-snippet"], P).unwrap_or_default();
    let got = judged(
        &[("configuration-snippet", "more_set_headers \"X: y\";"), ("server-snippet", "x")],
        false,
        &waivers,
    );
    assert_eq!(got[0].1, State::Ignored);
    assert!(got[0].2.starts_with("refusal accepted by the operator"), "{}", got[0].2);
    assert_eq!(got[1].1, State::Refused, "only the waived key");
}

#[test]
fn the_evaluation_answers_what_translation_asks() {
    let a = annotations(&[
        ("proxy-read-timeout", "120"),
        ("canary-by-header-value", "a;b"),
        ("server-snippet", "x"),
    ]);
    let mut a = a;
    a.insert("kubernetes.io/ingress.class".into(), "nginx".into());
    let e = evaluate(Some(&a), P, false, &Waivers::default());
    assert_eq!(e.verdicts.len(), 3, "other prefixes are not ours");
    assert_eq!(e.value("proxy-read-timeout"), Some("120s"));
    assert_eq!(e.value("canary-by-header-value"), None, "dropped");
    assert!(e.is_refused());
    assert_eq!(e.refusals().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["server-snippet"]);
    assert_eq!(e.counts(), [2, 1, 0, 0]);
    assert_eq!(e.warnings().count(), 2, "the dropped value and the refusal");
    assert_eq!(
        e.refusal().as_deref(),
        Some(
            "not served as asked (its rules answer 503): nginx.ingress.kubernetes.io/server-snippet: raw nginx \
             configuration cannot be honoured (it may deny, rewrite or add headers); ingress-nginx's defaults \
             reject it too"
        )
    );
    let none = evaluate(None, P, false, &Waivers::default());
    assert!(!none.is_refused() && none.refusal().is_none());
}
