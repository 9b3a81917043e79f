//! Table tests of the pure translation: pairing rules (§3), D1, D4, ports, default
//! backend, TLS, class selection, lenient annotations, and order independence.

use k8s_openapi::api::networking::v1::IngressClass;
use weir_config::wire::PortDoc;
use weir_config::{pick_backend, RouteTable, Side};
use weir_controller::testkit::fixtures::*;
use weir_controller::testkit::world::*;
use weir_controller::translate::Reason;
use weir_controller::{translate, Options};

#[test]
fn ordinary_ingress_becomes_one_rule_with_only_ready_endpoints() {
    let t = world().with(main_app()).run();
    let r = rule(&t, Some("app.example.com"), "/");
    assert_eq!(r.path_type.as_deref(), Some("Prefix"));
    assert_eq!(r.backend.service.as_deref(), Some("app"));
    assert_eq!(r.backend.ingress.as_deref(), Some("app"));
    assert_eq!(r.backend.namespace.as_deref(), Some("default"));
    assert_eq!(r.backend.port, Some(PortDoc::Name("http".into())));
    assert_eq!(r.backend.endpoints, vec!["10.0.0.1:8080", "10.0.0.2:8080"]);
    assert!(r.canary.is_none());
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    assert_eq!(t.served.len(), 1);
}

#[test]
fn named_target_port_resolves_through_the_slice_port_name() {
    let mut w = world();
    w.services.push(service("web").port("http", 80, "web-http").port("metrics", 9090, 9090).build());
    w.slices.push(
        endpoint_slice("web-a", "web").port("metrics", 9090).port("http", 3000).ready("10.1.0.1").build(),
    );
    let t = w.with(ingress("web").host("web.example.com").path("/", "web", 80)).run();
    assert_eq!(rule(&t, Some("web.example.com"), "/").backend.endpoints, vec!["10.1.0.1:3000"]);
}

#[test]
fn unnamed_service_port_by_number_uses_the_unnamed_slice_port() {
    let mut w = world();
    w.services.push(service("solo").port("", 80, 8000).build());
    w.slices.push(endpoint_slice("solo-a", "solo").port("", 8000).ready("10.2.0.1").build());
    w.slices
        .push(endpoint_slice("solo-b", "solo").port("", 8000).ready("10.2.0.2").ready("10.2.0.1").build());
    let t = w.with(ingress("solo").host("solo.example.com").path("/", "solo", 80)).run();
    assert_eq!(
        rule(&t, Some("solo.example.com"), "/").backend.endpoints,
        vec!["10.2.0.1:8000", "10.2.0.2:8000"]
    );
}

#[test]
fn ipv6_endpoints_are_bracketed() {
    let mut w = world();
    w.services.push(service("v6").port("http", 80, 8080).build());
    w.slices
        .push(endpoint_slice("v6-a", "v6").address_type("IPv6").port("http", 8080).ready("fd00::7").build());
    let t = w.with(ingress("v6").host("v6.example.com").path("/", "v6", "http")).run();
    assert_eq!(rule(&t, Some("v6.example.com"), "/").backend.endpoints, vec!["[fd00::7]:8080"]);
}

#[test]
fn missing_service_or_port_keeps_the_rule_empty_and_is_reported() {
    let t = world()
        .with(ingress("ghost").host("ghost.example.com").path("/", "nope", 80))
        .with(ingress("badport").host("bp.example.com").path("/", "app", "grpc"))
        .run();
    assert!(rule(&t, Some("ghost.example.com"), "/").backend.endpoints.is_empty());
    assert!(rule(&t, Some("bp.example.com"), "/").backend.endpoints.is_empty());
    assert_eq!(
        reasons(&t),
        vec![("badport".into(), Reason::ServicePortNotFound), ("ghost".into(), Reason::ServiceNotFound)]
    );
}

#[test]
fn canary_pairs_with_the_main_rule_of_same_host_path_and_path_type() {
    let t = world()
        .with(main_app())
        .with(canary_ingress("ro", "app").host("app.example.com").path("/", "app-canary", "http").weight(20))
        .run();
    let c = canary(&t, Some("app.example.com"), "/");
    assert_eq!((c.weight, c.weight_total), (Some(20), Some(100)));
    assert_eq!(c.backend.service.as_deref(), Some("app-canary"));
    assert_eq!(c.backend.ingress.as_deref(), Some("ro-app-canary"));
    assert_eq!(c.backend.endpoints, vec!["10.0.1.1:8080"]);
    // Metrics identity stays the main Ingress's.
    assert_eq!(rule(&t, Some("app.example.com"), "/").backend.ingress.as_deref(), Some("app"));
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    assert_eq!(t.served.len(), 1, "canary Ingresses are not served directly");
}

#[test]
fn argo_rollouts_canary_copied_from_the_stable_ingress_pairs() {
    let stable = ingress("app")
        .host("app.example.com")
        .path("/", "app", "http")
        .path("/static", "assets", 80)
        .tls(&["app.example.com"], "app-tls")
        .build();
    let mut w = world();
    let canary_ing = argo_canary(&stable, "app-rollout", "app", "app-canary").weight(40).weight_total(1000);
    w.ingresses.push(stable);
    let t = w.with(canary_ing).run();
    let c = canary(&t, Some("app.example.com"), "/");
    assert_eq!((c.weight, c.weight_total), (Some(40), Some(1000)));
    assert!(rule(&t, Some("app.example.com"), "/static").canary.is_none());
}

#[test]
fn empty_path_pairs_with_slash() {
    let t = world()
        .with(ingress("app").host("app.example.com").path("", "app", "http"))
        .with(canary_ingress("ro", "app").host("app.example.com").path("/", "app-canary", "http").weight(5))
        .run();
    assert_eq!(canary(&t, Some("app.example.com"), "/").weight, Some(5));
}

#[test]
fn canary_with_another_path_type_host_or_path_string_does_not_pair() {
    for (host, path, pt) in [
        ("app.example.com", "/", "Exact"),
        ("app.example.com", "/", "ImplementationSpecific"),
        ("other.example.com", "/", "Prefix"),
        ("", "/", "Prefix"),
    ] {
        let t = world()
            .with(main_app())
            .with(
                canary_ingress("ro", "app").host(host).path_typed(path, pt, "app-canary", "http").weight(50),
            )
            .run();
        assert!(rule(&t, Some("app.example.com"), "/").canary.is_none(), "{host} {path} {pt}");
        assert_eq!(
            reasons(&t),
            vec![("ro-app-canary".into(), Reason::CanaryWithoutMain)],
            "{host} {path} {pt}"
        );
    }
    // "/api" and "/api/" are one rule for matching, but pairing compares the string exactly.
    let t = world()
        .with(ingress("api").host("app.example.com").path("/api", "app", "http"))
        .with(
            canary_ingress("ro", "api")
                .host("app.example.com")
                .path("/api/", "app-canary", "http")
                .weight(50),
        )
        .run();
    assert!(rule(&t, Some("app.example.com"), "/api").canary.is_none());
    assert_eq!(reasons(&t), vec![("ro-api-canary".into(), Reason::CanaryWithoutMain)]);
}

#[test]
fn a_canary_applies_only_to_the_rules_it_names_not_to_every_user_of_the_service() {
    // D1: two Ingresses share Service `app`; the canary names only a.example.com.
    let t = world()
        .with(ingress("a").host("a.example.com").path("/", "app", "http"))
        .with(ingress("b").host("b.example.com").path("/", "app", "http"))
        .with(canary_ingress("ro", "a").host("a.example.com").path("/", "app-canary", "http").weight(100))
        .run();
    assert_eq!(canary(&t, Some("a.example.com"), "/").weight, Some(100));
    assert!(rule(&t, Some("b.example.com"), "/").canary.is_none());
}

#[test]
fn one_canary_path_without_main_does_not_disable_its_other_paths() {
    let t = world()
        .with(main_app())
        .with(
            canary_ingress("ro", "app")
                .host("app.example.com")
                .path("/", "app-canary", "http")
                .path("/missing", "app-canary", "http")
                .weight(30),
        )
        .run();
    assert_eq!(canary(&t, Some("app.example.com"), "/").weight, Some(30));
    assert_eq!(reasons(&t), vec![("ro-app-canary".into(), Reason::CanaryWithoutMain)]);
}

#[test]
fn the_oldest_canary_wins_a_rule_and_the_conflict_is_reported() {
    let young =
        canary_ingress("young", "app").host("app.example.com").path("/", "app-canary", "http").weight(90);
    let old = canary_ingress("old", "app").host("app.example.com").path("/", "app-canary", "http").weight(10);
    let t = world().with(main_app()).with(young.created(20)).with(old.created(10)).run();
    assert_eq!(canary(&t, Some("app.example.com"), "/").weight, Some(10));
    assert_eq!(reasons(&t), vec![("young-app-canary".into(), Reason::CanaryConflict)]);
}

#[test]
fn equal_age_canaries_are_ordered_by_namespace_and_name_descending() {
    let a = canary_ingress("a", "app").host("app.example.com").path("/", "app-canary", "http").weight(1);
    let b = canary_ingress("b", "app").host("app.example.com").path("/", "app-canary", "http").weight(2);
    let t = world().with(main_app()).with(a).with(b).run();
    // "default/b-app-canary" > "default/a-app-canary": b wins.
    assert_eq!(canary(&t, Some("app.example.com"), "/").weight, Some(2));
    assert_eq!(reasons(&t), vec![("a-app-canary".into(), Reason::CanaryConflict)]);
}

#[test]
fn weight_total_is_honoured_and_out_of_range_values_are_repaired() {
    // (weight, total) as written → (weight, total) pushed, and whether a warning is raised.
    type Case<'a> = (&'a str, &'a str, Option<i64>, Option<i64>, bool);
    let cases: [Case; 6] = [
        ("5", "10", Some(5), Some(10), false), // D2: 5 of 10 stays 50 %
        ("150", "100", Some(100), Some(100), false),
        ("-3", "100", Some(0), Some(100), true),
        ("20", "0", Some(20), Some(100), true),
        ("abc", "100", Some(0), Some(100), true),
        ("20", "1e3", Some(20), Some(100), true),
    ];
    for (weight, total, want_w, want_t, warned) in cases {
        let t = world()
            .with(main_app())
            .with(
                canary_ingress("ro", "app")
                    .host("app.example.com")
                    .path("/", "app-canary", "http")
                    .nginx("canary-weight", weight)
                    .nginx("canary-weight-total", total),
            )
            .run();
        let c = canary(&t, Some("app.example.com"), "/");
        assert_eq!((c.weight, c.weight_total), (want_w, want_t), "{weight}/{total}");
        let got = reasons(&t).contains(&("ro-app-canary".into(), Reason::InvalidAnnotation));
        assert_eq!(got, warned, "{weight}/{total}: {:?}", t.diagnostics);
    }
}

#[test]
fn canary_bool_parses_like_go_and_bad_values_mean_an_ordinary_ingress() {
    for v in ["1", "t", "T", "TRUE", "True"] {
        let t = world()
            .with(main_app())
            .with(
                ingress("c")
                    .host("app.example.com")
                    .path("/", "app-canary", "http")
                    .nginx("canary", v)
                    .weight(7),
            )
            .run();
        assert_eq!(canary(&t, Some("app.example.com"), "/").weight, Some(7), "{v}");
    }
    let t = world()
        .with(main_app())
        .with(
            ingress("c")
                .created(5)
                .host("app.example.com")
                .path("/", "app-canary", "http")
                .nginx("canary", "yes")
                .weight(7),
        )
        .run();
    assert!(rule(&t, Some("app.example.com"), "/").canary.is_none());
    let r = reasons(&t);
    for want in [Reason::InvalidAnnotation, Reason::CanaryNotEnabled, Reason::DuplicateRule] {
        assert!(r.contains(&("c".into(), want)), "{want:?} missing from {r:?}");
    }
}

#[test]
fn canary_settings_without_canary_true_give_an_ordinary_ingress_and_a_warning() {
    let t = world()
        .with(
            ingress("other")
                .host("other.example.com")
                .path("/", "app", "http")
                .weight(50)
                .nginx("canary-by-header", "X-Canary"),
        )
        .run();
    assert!(rule(&t, Some("other.example.com"), "/").canary.is_none());
    assert_eq!(reasons(&t), vec![("other".into(), Reason::CanaryNotEnabled)]);
}

#[test]
fn header_value_beats_pattern_and_a_bad_pattern_becomes_invalid_header_pattern() {
    let base = || canary_ingress("ro", "app").host("app.example.com").path("/", "app-canary", "http");
    let t = world()
        .with(main_app())
        .with(
            base()
                .nginx("canary-by-header", "X-Canary")
                .nginx("canary-by-header-value", "yes")
                .nginx("canary-by-header-pattern", "(("),
        )
        .run();
    let c = canary(&t, Some("app.example.com"), "/");
    assert_eq!((c.header_value.as_deref(), c.header_pattern.as_deref()), (Some("yes"), None));
    assert!(t.diagnostics.is_empty());

    let t = world()
        .with(main_app())
        .with(base().nginx("canary-by-header", "X-Canary").nginx("canary-by-header-pattern", "^(a|b"))
        .run();
    let c = canary(&t, Some("app.example.com"), "/");
    assert_eq!(c.invalid_header_pattern.as_deref(), Some("^(a|b"));
    assert_eq!(c.header_pattern, None);
    assert_eq!(reasons(&t), vec![("ro-app-canary".into(), Reason::InvalidAnnotation)]);

    let t = world()
        .with(main_app())
        .with(base().nginx("canary-by-header", "bad header").nginx("canary-by-cookie", "a;b").weight(3))
        .run();
    let c = canary(&t, Some("app.example.com"), "/");
    assert_eq!((c.header.as_deref(), c.cookie.as_deref(), c.weight), (None, None, Some(3)));
    assert_eq!(t.diagnostics.len(), 2, "{:?}", t.diagnostics);
}

#[test]
fn rules_of_one_host_from_several_ingresses_merge_and_the_oldest_keeps_a_duplicate() {
    let t = world()
        .with(
            ingress("new")
                .created(50)
                .host("app.example.com")
                .path("/", "app-canary", "http")
                .path("/new", "app", "http"),
        )
        .with(
            ingress("old")
                .created(1)
                .host("App.Example.com")
                .path("/", "app", "http")
                .path("/old/", "app", "http"),
        )
        .with(ingress("newer").created(60).host("app.example.com").path("/old", "app-canary", "http"))
        .run();
    assert_eq!(t.doc.hosts.len(), 1);
    assert_eq!(rule(&t, Some("app.example.com"), "/").backend.ingress.as_deref(), Some("old"));
    assert_eq!(rule(&t, Some("app.example.com"), "/new").backend.ingress.as_deref(), Some("new"));
    assert_eq!(rule(&t, Some("app.example.com"), "/old/").backend.ingress.as_deref(), Some("old"));
    assert_eq!(
        reasons(&t),
        vec![("new".into(), Reason::DuplicateRule), ("newer".into(), Reason::DuplicateRule)]
    );
}

#[test]
fn default_backend_becomes_the_default_servers_catch_all_and_the_oldest_wins() {
    let t = world()
        .with(ingress("fallback").created(1).default_backend("app", 80))
        .with(
            ingress("late")
                .created(9)
                .default_backend("app-canary", 80)
                .host("late.example.com")
                .path("/api", "app", "http"),
        )
        .run();
    let r = rule(&t, None, "/");
    assert_eq!((r.backend.ingress.as_deref(), r.path_type.as_deref()), (Some("fallback"), Some("Prefix")));
    assert_eq!(r.backend.endpoints, vec!["10.0.0.1:8080", "10.0.0.2:8080"]);
    // The later Ingress's defaultBackend still serves the unclaimed `/` of its own host.
    assert_eq!(rule(&t, Some("late.example.com"), "/").backend.service.as_deref(), Some("app-canary"));
    assert_eq!(reasons(&t), vec![("late".into(), Reason::DuplicateRule)]);
}

#[test]
fn tls_hosts_resolve_to_secrets_and_a_missing_secret_is_reported() {
    let mut w = world();
    w.secrets.push(tls_secret("app-tls"));
    let mut opaque = tls_secret("opaque");
    opaque.type_ = Some("Opaque".into());
    w.secrets.push(opaque);
    let t = w
        .with(main_app().tls(&["App.example.com"], "app-tls").tls(&["www.example.com"], "gone"))
        .with(ingress("o").host("o.example.com").path("/", "app", "http").tls(&["o.example.com"], "opaque"))
        .run();
    let got: Vec<_> =
        t.tls.iter().map(|b| (b.host.as_deref().unwrap_or("-"), b.secret_name.as_str(), b.found)).collect();
    assert_eq!(
        got,
        vec![
            ("app.example.com", "app-tls", true),
            ("o.example.com", "opaque", false),
            ("www.example.com", "gone", false)
        ]
    );
    assert_eq!(
        reasons(&t),
        vec![("app".into(), Reason::SecretNotFound), ("o".into(), Reason::SecretNotFound)]
    );
}

#[test]
fn class_selection_follows_annotation_then_class_name_then_default_class() {
    let ours = "weir.dev/ingress-controller";
    let cases: Vec<(&str, IngressBuilder, Vec<IngressClass>, bool)> = vec![
        ("class name weir", main_app(), vec![], true),
        ("class name nginx", main_app().class(Some("nginx")), vec![], false),
        (
            "class named by our controller",
            main_app().class(Some("edge")),
            vec![ingress_class("edge", ours, false)],
            true,
        ),
        (
            "class of another controller",
            main_app().class(Some("edge")),
            vec![ingress_class("edge", "k8s.io/ingress-nginx", false)],
            false,
        ),
        (
            "annotation weir",
            main_app().class(Some("nginx")).annotation("kubernetes.io/ingress.class", "weir"),
            vec![],
            true,
        ),
        (
            "annotation nginx beats class name",
            main_app().annotation("kubernetes.io/ingress.class", "nginx"),
            vec![],
            false,
        ),
        (
            "no class, our default class",
            main_app().class(None),
            vec![ingress_class("weir", ours, true)],
            true,
        ),
        (
            "no class, someone else's default",
            main_app().class(None),
            vec![ingress_class("nginx", "k8s.io/ingress-nginx", true)],
            false,
        ),
        (
            "no class, ours not default",
            main_app().class(None),
            vec![ingress_class("weir", ours, false)],
            false,
        ),
    ];
    for (what, ing, classes, want) in cases {
        let mut w = world().with(ing);
        w.classes = classes;
        let t = w.run();
        assert_eq!(!t.doc.hosts.is_empty(), want, "{what}");
    }
}

#[test]
fn invalid_hosts_and_paths_are_skipped_and_reported() {
    let t = world()
        .with(ingress("bad").host("a.*.example.com").path("/", "app", "http"))
        .with(
            ingress("bad2")
                .host("ok.example.com")
                .path_typed("relative", "ImplementationSpecific", "app", "http")
                .path("/fine", "app", "http"),
        )
        .run();
    assert_eq!(t.doc.hosts.len(), 1);
    rule(&t, Some("ok.example.com"), "/fine");
    assert_eq!(
        reasons(&t),
        vec![("bad".into(), Reason::UnsupportedRule), ("bad2".into(), Reason::UnsupportedRule)]
    );
}

#[test]
fn the_same_objects_in_any_order_give_the_same_table_and_version() {
    let mut w = world()
        .with(main_app().tls(&["app.example.com"], "app-tls"))
        .with(
            ingress("b")
                .created(3)
                .host("b.example.com")
                .path("/", "app", "http")
                .path_typed("/x", "Exact", "app", 80),
        )
        .with(ingress("dup").created(3).host("b.example.com").path("/", "app-canary", "http"))
        .with(ingress("d").default_backend("app", 80))
        .with(
            canary_ingress("r1", "app")
                .created(4)
                .host("app.example.com")
                .path("/", "app-canary", "http")
                .weight(20),
        )
        .with(
            canary_ingress("r2", "app")
                .created(4)
                .host("app.example.com")
                .path("/", "app-canary", "http")
                .weight(30),
        )
        .with(
            canary_ingress("r3", "b")
                .host("b.example.com")
                .path_typed("/x", "Exact", "app-canary", "http")
                .weight(1),
        );
    w.slices
        .push(endpoint_slice("app-x2", "app").port("http", 8080).ready("10.0.0.9").ready("10.0.0.1").build());
    let reference = w.run();
    assert!(reference.doc.version.as_deref().is_some_and(|v| v.starts_with("w-")));
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..50 {
        let mut p = w.clone();
        rng.shuffle(&mut p.ingresses);
        rng.shuffle(&mut p.services);
        rng.shuffle(&mut p.slices);
        assert_eq!(p.run(), reference);
    }
    // And a change of content changes the version.
    let changed = w.with(ingress("z").host("z.example.com").path("/", "app", "http")).run();
    assert_ne!(changed.doc.version, reference.doc.version);
}

#[test]
fn the_translated_table_decides_like_the_annotations_say() {
    let t = world()
        .with(main_app())
        .with(
            canary_ingress("ro", "app")
                .host("app.example.com")
                .path("/", "app-canary", "http")
                .weight(20)
                .nginx("canary-by-header", "X-Canary"),
        )
        .run();
    let table = RouteTable::from_doc(&t.doc).expect("valid");
    let route = table.match_route("app.example.com", "/orders").expect("path").expect("route");
    let mut headers = http::HeaderMap::new();
    assert_eq!(pick_backend(route, &headers, |_| 20).side, Some(Side::Canary));
    assert_eq!(pick_backend(route, &headers, |_| 21).side, Some(Side::Stable));
    headers.insert("x-canary", "never".parse().expect("value"));
    assert_eq!(pick_backend(route, &headers, |_| 1).side, Some(Side::Stable));
}

#[test]
fn per_rule_annotations_of_the_main_ingress_fill_its_rules_and_bad_values_warn() {
    type Fields = (Option<&'static str>, Option<&'static str>, Option<&'static str>, Option<&'static str>);
    // (annotation, value) → (maxBodySize, connectTimeout, responseTimeout, protocol), warned?
    let cases: Vec<(&str, &str, Fields, bool)> = vec![
        ("proxy-body-size", "8m", (Some("8m"), None, None, None), false),
        ("proxy-body-size", "0", (Some("0"), None, None, None), false),
        ("proxy-body-size", "512K", (Some("512K"), None, None, None), false),
        ("proxy-body-size", "1.5m", (None, None, None, None), true),
        ("proxy-body-size", "10mb", (None, None, None, None), true),
        ("proxy-connect-timeout", "30", (None, Some("30s"), None, None), false),
        ("proxy-connect-timeout", "30s", (None, None, None, None), true),
        ("proxy-connect-timeout", "0", (None, None, None, None), true),
        ("proxy-read-timeout", "3600", (None, None, Some("3600s"), None), false),
        ("proxy-read-timeout", "-1", (None, None, None, None), true),
        ("backend-protocol", "GRPC", (None, None, None, Some("GRPC")), false),
        ("backend-protocol", "grpcs", (None, None, None, Some("GRPCS")), false),
        ("backend-protocol", "HTTPS", (None, None, None, Some("HTTPS")), false),
        ("backend-protocol", "HTTP", (None, None, None, None), false),
        ("backend-protocol", "AUTO_HTTP", (None, None, None, None), true),
        ("backend-protocol", "FCGI", (None, None, None, None), true),
        ("backend-protocol", "SMTP", (None, None, None, None), true),
    ];
    for (name, value, want, warned) in cases {
        let t = world().with(main_app().path("/api", "app", "http").nginx(name, value)).run();
        for path in ["/", "/api"] {
            let r = rule(&t, Some("app.example.com"), path);
            let got = (
                r.max_body_size.as_deref(),
                r.connect_timeout.as_deref(),
                r.response_timeout.as_deref(),
                r.protocol.as_deref(),
            );
            assert_eq!(got, want, "{name}={value} on {path}");
        }
        let mut want_reasons =
            if warned { vec![("app".to_string(), Reason::InvalidAnnotation)] } else { vec![] };
        // FastCGI is a valid value weir cannot speak: the catalog refuses the Ingress.
        let refused = value == "FCGI";
        if refused {
            want_reasons.push(("app".to_string(), Reason::AnnotationRefused));
        }
        assert_eq!(reasons(&t), want_reasons, "{name}={value}");
        assert_eq!(rule(&t, Some("app.example.com"), "/api").deny.is_some(), refused, "{name}={value}");
    }
}

#[test]
fn a_canarys_own_per_rule_annotations_are_ignored_and_the_mains_apply_to_both_sides() {
    let t = world()
        .with(main_app().nginx("proxy-body-size", "2m").nginx("backend-protocol", "GRPC"))
        .with(
            canary_ingress("ro", "app")
                .host("app.example.com")
                .path("/", "app-canary", "http")
                .nginx("proxy-body-size", "100m")
                .nginx("backend-protocol", "HTTPS")
                .nginx("proxy-read-timeout", "5"),
        )
        .run();
    let r = rule(&t, Some("app.example.com"), "/");
    assert!(r.canary.is_some());
    assert_eq!(r.max_body_size.as_deref(), Some("2m"));
    assert_eq!(r.protocol.as_deref(), Some("GRPC"));
    assert_eq!(r.response_timeout, None);
}

#[test]
fn per_rule_annotations_use_the_configured_prefix() {
    let w = world().with(
        main_app()
            .annotation("weir.dev/proxy-body-size", "4m")
            .annotation("nginx.ingress.kubernetes.io/proxy-body-size", "9m"),
    );
    let opts = Options { annotation_prefix: "weir.dev".into(), ..Default::default() };
    let t = translate(&w.state(), &opts);
    assert_eq!(rule(&t, Some("app.example.com"), "/").max_body_size.as_deref(), Some("4m"));
}

#[test]
fn the_default_backend_takes_the_per_rule_annotations_of_its_ingress() {
    let t = world().with(ingress("d").default_backend("app", 80).nginx("proxy-connect-timeout", "7")).run();
    assert_eq!(rule(&t, None, "/").connect_timeout.as_deref(), Some("7s"));
}
