//! Table tests of the access annotations in translation: each state (honoured, refused,
//! waived, unknown, dropped), Secrets for basic auth, deny rules and the fall-through case.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use weir_config::wire::RuleDoc;
use weir_config::RouteTable;
use weir_controller::annotations::catalog::Waivers;
use weir_controller::testkit::fixtures::*;
use weir_controller::translate::{Reason, Translation};
use weir_controller::{translate, ClusterState, Options};

const P: &str = "nginx.ingress.kubernetes.io";
const SHA_SECRET: &str = "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="; // "secret"

fn htpasswd(ns: &str, name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta { namespace: Some(ns.into()), name: Some(name.into()), ..Default::default() },
        type_: Some("Opaque".into()),
        data: Some(data.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec()))).collect()),
        ..Default::default()
    }
}

fn run(ingresses: Vec<IngressBuilder>, secrets: Vec<Secret>, opts: &Options) -> Translation {
    let state = ClusterState {
        ingresses: ingresses.into_iter().map(|i| Arc::new(i.build())).collect(),
        services: vec![Arc::new(service("app").port("http", 80, 8080).build())],
        slices: vec![Arc::new(endpoint_slice("app-1", "app").port("http", 8080).ready("10.0.0.1").build())],
        secrets: secrets.into_iter().map(Arc::new).collect(),
        ..Default::default()
    };
    let t = translate(&state, opts);
    if let Err(e) = RouteTable::from_doc(&t.doc) {
        panic!("translated table does not validate: {e}\n{:#?}", t.doc);
    }
    t
}

fn rule<'a>(t: &'a Translation, path: &str) -> &'a RuleDoc {
    let host = t.doc.hosts.iter().find(|h| h.host.as_deref() == Some("app.example.com"));
    host.and_then(|h| h.rules.iter().find(|r| r.path == path))
        .unwrap_or_else(|| panic!("no rule {path}: {:#?}", t.doc))
}

fn app(annotations: &[(&str, &str)]) -> IngressBuilder {
    let mut b = ingress("app").host("app.example.com").path("/admin", "app", "http");
    for (k, v) in annotations {
        b = b.nginx(k, v);
    }
    b
}

/// Annotations without the prefix.
type Pairs = Vec<(&'static str, &'static str)>;

#[test]
fn what_weir_cannot_enforce_refuses_the_ingress_with_a_deny_rule_and_an_event_naming_the_key() {
    let enforced = weir_controller::annotations::catalog::ACCESS_ENFORCED;
    let secrets = || vec![htpasswd("default", "users", &[("auth", &format!("alice:{SHA_SECRET}"))])];
    // (annotations, refused with this in the reason (None: served), diagnostic expected)
    #[rustfmt::skip]
    let cases: Vec<(Pairs, Option<&str>, Option<Reason>)> = vec![
        (vec![("configuration-snippet", "deny all;")], Some("configuration-snippet"), Some(Reason::AnnotationRefused)),
        (vec![("auth-tls-secret", "default/ca")], Some("auth-tls-secret"), Some(Reason::AnnotationRefused)),
        (vec![("whitelist-source-rang", "10.0.0.0/8")], None, Some(Reason::UnknownAnnotation)),
        (vec![("proxy-buffering", "off")], None, None),
        (vec![("auth-signin", "https://a/start")], None, None), // ignored without auth-url
        (vec![("allowlist-source-range", "10.0.0.0/33")], Some("allowlist-source-range"), Some(Reason::AnnotationRefused)),
        (vec![("auth-url", "https://$host/oauth2/auth")], Some("auth-url"), Some(Reason::AnnotationRefused)),
        (vec![("auth-type", "basic"), ("auth-secret", "missing")], Some("auth-secret"), Some(Reason::AnnotationRefused)),
        // valid access settings: refused until the proxy enforces them, then served
        (vec![("whitelist-source-range", "10.0.0.0/8")], (!enforced).then_some("whitelist-source-range"), (!enforced).then_some(Reason::AnnotationRefused)),
        (vec![("auth-type", "basic"), ("auth-secret", "users")], (!enforced).then_some("auth-type"), (!enforced).then_some(Reason::AnnotationRefused)),
        (vec![("auth-url", "http://oauth2-proxy.auth.svc/oauth2/auth")], (!enforced).then_some("auth-url"), (!enforced).then_some(Reason::AnnotationRefused)),
    ];
    for (annotations, refused, reason) in cases {
        let t = run(vec![app(&annotations)], secrets(), &Options::default());
        let r = rule(&t, "/admin");
        match refused {
            None => assert!(r.deny.is_none(), "{annotations:?}: {:?}", r.deny),
            Some(why) => {
                let deny = r.deny.as_ref().unwrap_or_else(|| panic!("{annotations:?}: not refused"));
                assert_eq!(deny.status, Some(503));
                assert!(deny.reason.contains(why), "{annotations:?}: {why} not in {}", deny.reason);
                assert!(r.access.is_none() && r.canary.is_none(), "{annotations:?}");
                assert!(
                    r.backend.endpoints.is_empty(),
                    "{annotations:?}: a proxy without deny must answer 503 too"
                );
                assert_eq!(r.backend.ingress.as_deref(), Some("app"), "metrics keep the Ingress's labels");
            }
        }
        let found: Vec<Reason> = t.diagnostics.iter().map(|d| d.reason).collect();
        match reason {
            Some(reason) => {
                let d = t.diagnostics.iter().find(|d| d.reason == reason);
                let d = d.unwrap_or_else(|| panic!("{annotations:?}: no {reason:?} in {found:?}"));
                assert!(d.message.contains(P), "{annotations:?}: the event names no key: {}", d.message);
            }
            None => assert!(found.is_empty(), "{annotations:?}: unexpected {:?}", t.diagnostics),
        }
    }
}

#[test]
fn an_accepted_refusal_serves_the_ingress_and_says_so() {
    let opts = Options {
        accepted: Waivers::parse(&["configuration-snippet"], P).unwrap_or_default(),
        ..Default::default()
    };
    let t = run(vec![app(&[("configuration-snippet", "more_set_headers x;")])], vec![], &opts);
    assert!(rule(&t, "/admin").deny.is_none());
    assert!(t.diagnostics.iter().any(|d| d.reason == Reason::AnnotationWaived), "{:?}", t.diagnostics);
}

#[test]
fn a_refused_ingress_s_path_does_not_fall_through_to_another_ingress_s_root() {
    // (refused one older?, its Service exists?)
    for (older, service_exists) in [(true, true), (false, true), (true, false)] {
        let svc = if service_exists { "app" } else { "gone" };
        let admin = ingress("admin")
            .created(if older { 1 } else { 5 })
            .host("app.example.com")
            .path("/admin", svc, "http")
            .nginx("auth-url", "https://$host/oauth2/auth");
        let public = ingress("public").created(3).host("app.example.com").path("/", "app", "http");
        let t = run(vec![admin, public], vec![], &Options::default());
        let table = RouteTable::from_doc(&t.doc).unwrap_or_else(|e| panic!("{e}"));
        let route = table.match_route("app.example.com", "/admin/users").ok().flatten();
        let route = route.unwrap_or_else(|| panic!("older {older}: /admin/users matches nothing"));
        assert_eq!(route.path, "/admin", "older {older} service {service_exists}");
        assert_eq!(route.deny.as_ref().map(|d| d.status.as_u16()), Some(503));
        let root = table.match_route("app.example.com", "/").ok().flatten();
        assert!(root.is_some_and(|r| r.deny.is_none()), "the other Ingress's / is unaffected");
    }
}

#[test]
fn the_oldest_ingress_keeps_a_contested_path_whether_refused_or_not() {
    let refused = |created| {
        ingress("refused")
            .created(created)
            .host("app.example.com")
            .path("/admin", "app", "http")
            .nginx("server-snippet", "x")
    };
    let plain =
        |created| ingress("plain").created(created).host("app.example.com").path("/admin", "app", "http");
    let t = run(vec![refused(1), plain(2)], vec![], &Options::default());
    assert!(rule(&t, "/admin").deny.is_some());
    assert!(t.diagnostics.iter().any(|d| d.ingress.name == "plain" && d.reason == Reason::DuplicateRule));
    let t = run(vec![refused(2), plain(1)], vec![], &Options::default());
    assert!(rule(&t, "/admin").deny.is_none(), "an older ordinary Ingress keeps serving");
}

#[test]
fn a_refused_canary_denies_the_main_rules_it_pairs_with() {
    let main = ingress("app")
        .created(1)
        .host("app.example.com")
        .path("/admin", "app", "http")
        .path("/other", "app", "http");
    let canary = ingress("app-canary")
        .created(2)
        .host("app.example.com")
        .path("/admin", "app", "http")
        .nginx("canary", "true")
        .nginx("canary-weight", "10")
        .nginx("auth-tls-secret", "default/ca");
    let t = run(vec![main, canary], vec![], &Options::default());
    assert!(rule(&t, "/admin").deny.as_ref().is_some_and(|d| d.reason.contains("auth-tls-secret")));
    assert!(rule(&t, "/admin").canary.is_none());
    assert!(rule(&t, "/other").deny.is_none(), "only the paired rule is closed");
}

#[test]
fn a_refused_canary_s_default_backend_closes_the_catch_all_it_pairs_with() {
    let main = ingress("app")
        .created(1)
        .default_backend("app", "http")
        .host("app.example.com")
        .path("/admin", "app", "http");
    let canary = |refused: bool| {
        let c = ingress("app-canary").created(2).default_backend("app", "http").nginx("canary", "true");
        if refused {
            c.nginx("auth-tls-secret", "default/ca")
        } else {
            c.nginx("canary-weight", "5")
        }
    };
    for refused in [true, false] {
        let t = run(vec![main.clone(), canary(refused)], vec![], &Options::default());
        let root = t
            .doc
            .hosts
            .iter()
            .find(|h| h.host.is_none())
            .and_then(|h| h.rules.iter().find(|r| r.path == "/"));
        let root = root.unwrap_or_else(|| panic!("no default server: {:#?}", t.doc));
        assert_eq!(root.deny.is_some(), refused, "{root:?}");
        assert_eq!(root.canary.is_some(), !refused, "{root:?}");
        assert!(rule(&t, "/admin").deny.is_none(), "the main's own rule is not paired");
    }
}

#[test]
fn annotations_are_counted_by_state_and_a_secret_change_changes_the_table() {
    let ing = || {
        app(&[
            ("auth-type", "basic"),
            ("auth-secret", "users"),
            ("server-snippet", "x"),
            ("proxy-buffering", "on"),
            ("typo-key", "1"),
        ])
    };
    let t = run(
        vec![ing()],
        vec![htpasswd("default", "users", &[("auth", &format!("a:{SHA_SECRET}"))])],
        &Options::default(),
    );
    let enforced = weir_controller::annotations::catalog::ACCESS_ENFORCED;
    assert_eq!(t.annotation_counts, if enforced { [2, 1, 1, 1] } else { [0, 3, 1, 1] });
    if !enforced {
        return; // the Secret is read only when basic auth is enforced
    }
    let plain = || app(&[("auth-type", "basic"), ("auth-secret", "users")]);
    let one = run(
        vec![plain()],
        vec![htpasswd("default", "users", &[("auth", &format!("a:{SHA_SECRET}"))])],
        &Options::default(),
    );
    let two = run(
        vec![plain()],
        vec![htpasswd("default", "users", &[("auth", &format!("b:{SHA_SECRET}"))])],
        &Options::default(),
    );
    assert_ne!(one.doc.version, two.doc.version);
    let users = |t: &Translation| {
        rule(t, "/admin").access.as_ref().and_then(|a| a.basic_auth.as_ref()).map(|b| b.users.clone())
    };
    assert_eq!(users(&two), Some(vec![format!("b:{SHA_SECRET}")]));
}
