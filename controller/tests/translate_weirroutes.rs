//! WeirRoutes (the Argo Rollouts plugin's contract) in the pure translation: which rules get
//! the split, precedence over canary Ingresses, and every generation refused whole.

use weir_config::{pick_backend, RouteTable, Side};
use weir_controller::testkit::fixtures::*;
use weir_controller::testkit::world::*;
use weir_controller::translate::{Reason, RouteOutcome};

fn outcome(t: &weir_controller::Translation, name: &str) -> RouteOutcome {
    t.routes.iter().find(|r| r.name == name).cloned().unwrap_or_else(|| panic!("no outcome for {name}"))
}

/// `app` with two hosts' `/` to Service app and `/metrics` to Service metrics.
fn two_hosts() -> IngressBuilder {
    main_app().path("/metrics", "metrics", "http").host("www.example.com").path("/", "app", "http")
}

#[test]
fn the_weight_and_header_routes_reach_every_rule_of_the_stable_ingress_sending_to_stable() {
    let mut w = world().with(two_hosts());
    w.services.push(service("metrics").port("http", 80, 8080).build());
    let t = w
        .with_route(
            weir_route("app").generation(4).weight(20).header_route("testers", "x-canary", "exact", "true"),
        )
        .run();
    assert_eq!(
        outcome(&t, "app"),
        RouteOutcome {
            namespace: "default".into(),
            name: "app".into(),
            generation: 4,
            applied: Ok(20),
            uid: String::new(),
            guard: None,
            destinations: vec![],
        }
    );
    for host in ["app.example.com", "www.example.com"] {
        let c = canary(&t, Some(host), "/");
        assert_eq!((c.weight, c.weight_total), (Some(20), Some(100)), "{host}");
        assert_eq!(c.backend.service.as_deref(), Some("app-canary"));
        assert_eq!(c.backend.ingress.as_deref(), Some("app"), "labels name the stable Ingress");
        assert_eq!(c.backend.endpoints, vec!["10.0.1.1:8080"]);
        assert_eq!(c.header_routes.len(), 1);
        assert_eq!(c.header_routes[0].matches[0].exact.as_deref(), Some("true"));
        assert!(c.header.is_none() && c.cookie.is_none());
    }
    assert!(rule(&t, Some("app.example.com"), "/metrics").canary.is_none(), "another Service's rule");
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
}

#[test]
fn a_header_route_request_goes_to_the_canary_at_weight_zero() {
    let t = world()
        .with(main_app())
        .with_route(weir_route("app").header_route("t", "x-canary", "regex", "true|yes"))
        .run();
    let table = RouteTable::from_doc(&t.doc).expect("valid");
    let route = table.match_route("app.example.com", "/").unwrap().unwrap();
    let mut h = http::HeaderMap::new();
    assert_eq!(pick_backend(route, &h, |_| 1).side, Some(Side::Stable));
    h.insert("x-canary", "yes".parse().unwrap());
    assert_eq!(pick_backend(route, &h, |_| 1).side, Some(Side::Canary));
    h.insert("x-canary", "yes!".parse().unwrap());
    assert_eq!(pick_backend(route, &h, |_| 1).side, Some(Side::Stable), "anchored");
}

#[test]
fn mirror_routes_reach_the_rule_and_copy_what_they_select() {
    let t = world()
        .with(main_app())
        .with_route(weir_route("app").weight(0).mirror_route("api", 50, "GET", "/api"))
        .run();
    assert_eq!(outcome(&t, "app").applied, Ok(0));
    let c = canary(&t, Some("app.example.com"), "/");
    assert_eq!(c.mirror_routes.len(), 1);
    assert_eq!((c.mirror_routes[0].name.as_str(), c.mirror_routes[0].percentage), ("api", 50));
    assert_eq!(c.mirror_routes[0].matches[0].method.as_deref(), Some("GET"));
    assert_eq!(c.mirror_routes[0].matches[0].path_prefix.as_deref(), Some("/api"));
    let table = RouteTable::from_doc(&t.doc).expect("valid");
    let route = table.match_route("app.example.com", "/").unwrap().unwrap();
    let h = http::HeaderMap::new();
    let copied = |method: http::Method, path: &str| {
        weir_config::mirror_route(route.canary.as_ref().unwrap(), Side::Stable, &method, path, &h, |_| 1)
            .is_some()
    };
    assert!(copied(http::Method::GET, "/api/x"));
    assert!(!copied(http::Method::POST, "/api/x") && !copied(http::Method::GET, "/web"));
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
}

#[test]
fn a_weirroute_takes_its_rules_from_an_argo_nginx_canary_ingress() {
    let stable = main_app().build();
    let nginx_canary = argo_canary(&stable, "other-rollout", "app", "app-canary").created(60).weight(90);
    let t = world().with(main_app()).with(nginx_canary).with_route(weir_route("app").weight(10)).run();
    let c = canary(&t, Some("app.example.com"), "/");
    assert_eq!(c.weight, Some(10), "the WeirRoute's weight, not the canary Ingress's 90");
    assert_eq!(reasons(&t), vec![("other-rollout-app-canary".into(), Reason::CanaryConflict)]);
    assert!(t.diagnostics[0].message.contains("WeirRoute default/app"), "{}", t.diagnostics[0].message);
}

#[test]
fn ingresses_no_weirroute_names_keep_their_nginx_canaries() {
    let other = ingress("other").host("other.example.com").path("/", "app", "http");
    let other_canary = argo_canary(&other.clone().build(), "r2", "app", "app-canary").created(60).weight(30);
    let t = world()
        .with(main_app())
        .with(other)
        .with(other_canary)
        .with_route(weir_route("app").weight(10))
        .run();
    assert_eq!(canary(&t, Some("app.example.com"), "/").weight, Some(10));
    assert_eq!(canary(&t, Some("other.example.com"), "/").weight, Some(30));
}

#[test]
fn generations_weir_cannot_express_are_refused_whole_and_the_rules_go_to_stable() {
    let cases: Vec<(&str, WeirRouteBuilder, &str)> = vec![
        (
            "destinations over maxWeight",
            weir_route("app")
                .weight(95)
                .raw("additionalDestinations", serde_json::json!({"serviceName": "exp", "weight": 10})),
            "spec.additionalDestinations: the canary's and the destinations' weights add up to 105, over maxWeight 100",
        ),
        (
            "a destination that is the canary",
            weir_route("app")
                .weight(20)
                .raw("additionalDestinations", serde_json::json!({"serviceName": "app-canary", "weight": 10})),
            "spec.additionalDestinations[0].serviceName: \"app-canary\" is the stable or canary Service",
        ),
        (
            "a destination with a negative share",
            weir_route("app")
                .weight(20)
                .raw("additionalDestinations", serde_json::json!({"serviceName": "exp", "weight": -1})),
            "spec.additionalDestinations[0].weight: -1 is negative",
        ),
        (
            "a mirror route without matches",
            weir_route("app")
                .weight(20)
                .raw("mirrorRoutes", serde_json::json!({"name": "m", "percentage": 50})),
            "spec.mirrorRoutes[0].matches: is empty",
        ),
        (
            "a mirror percentage over 100",
            weir_route("app").weight(20).mirror_route("m", 150, "GET", "/api"),
            "spec.mirrorRoutes[0].percentage: 150 is not within 0..100",
        ),
        (
            "a mirror header test weir rejects",
            weir_route("app").weight(20).raw(
                "mirrorRoutes",
                serde_json::json!({"name": "m", "percentage": 5,
                                   "matches": [{"headers": [{"header": "x-a", "value": {"regex": "(a)\\1"}}]}]}),
            ),
            "spec.mirrorRoutes[0].matches[0].headers[0].value.regex",
        ),
        (
            "a guard without a window",
            weir_route("app").weight(20).raw("guard", serde_json::json!({"errorPercent": 5, "minRequests": 5})),
            "spec.guard.windowSeconds: 0 is not within 1..600",
        ),
        (
            "a guard's share over 100",
            weir_route("app")
                .weight(20)
                .raw("guard", serde_json::json!({"errorPercent": 101, "windowSeconds": 10, "minRequests": 5})),
            "spec.guard.errorPercent: 101 is not within 1..100",
        ),
        (
            "a guard judging no requests",
            weir_route("app")
                .weight(20)
                .raw("guard", serde_json::json!({"errorPercent": 10, "windowSeconds": 10, "minRequests": 0})),
            "spec.guard.minRequests: 0 is under 1",
        ),
        (
            "a guard that is not an object",
            weir_route("app").weight(20).raw("guard", serde_json::json!("on")),
            "spec.guard: invalid type",
        ),
        (
            "a regex weir rejects",
            weir_route("app").weight(20).header_route("t", "x-a", "regex", "(a)\\1"),
            "spec.headerRoutes[0].matches[0].value.regex",
        ),
        (
            "a bad header name",
            weir_route("app").weight(20).header_route("t", "x a", "exact", "1"),
            "spec.headerRoutes[0].matches[0].header",
        ),
        (
            "a missing Ingress",
            weir_route("app").weight(20).ingresses(&["app", "gone"]),
            "spec.stableIngresses: gone not found",
        ),
        ("a weight over maxWeight", weir_route("app").weight(120), "spec.weight 120"),
        (
            "no rule to stableService",
            weir_route("app").weight(20).services("nope", "app-canary"),
            "no rule of ingress app sends to Service \"nope\"",
        ),
        ("canary is stable", weir_route("app").weight(20).services("app", "app"), "spec.canaryService"),
        (
            "a sticky assignment cookie that is no cookie name",
            weir_route("app").weight(20).sticky_assignment("a b"),
            "spec.stickyAssignment.cookie: \"a b\" is not a cookie name",
        ),
    ];
    for (case, wr, want) in cases {
        let nginx_canary = argo_canary(&main_app().build(), "r", "app", "app-canary").created(60).weight(50);
        let t = world().with(main_app()).with(nginx_canary).with_route(wr.generation(3)).run();
        let o = outcome(&t, "app");
        assert_eq!(o.generation, 3, "{case}");
        match &o.applied {
            Err(why) => assert!(why.contains(want), "{case}: {why}"),
            Ok(w) => panic!("{case}: applied with weight {w}"),
        }
        if case != "no rule to stableService" {
            assert!(
                rule(&t, Some("app.example.com"), "/").canary.is_none(),
                "{case}: a refused WeirRoute's rule sends everything to stable, the nginx canary included"
            );
        }
    }
}

#[test]
fn between_two_weirroutes_on_one_rule_the_older_holds_it() {
    let t = world()
        .with(main_app())
        .with_route(weir_route("young").created(100).weight(70))
        .with_route(weir_route("old").created(10).weight(5))
        .run();
    assert_eq!(outcome(&t, "old").applied, Ok(5));
    let young = outcome(&t, "young").applied.expect_err("refused");
    assert!(young.contains("already split by WeirRoute default/old"), "{young}");
    assert_eq!(canary(&t, Some("app.example.com"), "/").weight, Some(5));
}

#[test]
fn a_weirroute_in_another_namespace_does_not_reach_this_ingress() {
    let t = world().with(main_app()).with_route(weir_route("app").namespace("elsewhere").weight(50)).run();
    assert!(outcome(&t, "app").applied.is_err());
    assert!(rule(&t, Some("app.example.com"), "/").canary.is_none());
}

#[test]
fn the_translation_is_the_same_whatever_order_weirroutes_arrive_in() {
    let a = world()
        .with(main_app())
        .with_route(weir_route("b").created(5).weight(1))
        .with_route(weir_route("a").created(5).weight(2));
    let mut b = a.clone();
    b.weir_routes.reverse();
    let (ta, tb) = (a.run(), b.run());
    assert_eq!(ta.doc, tb.doc);
    assert_eq!(ta.routes, tb.routes);
    assert_eq!(canary(&ta, Some("app.example.com"), "/").weight, Some(2), "ties by namespace/name: a first");
}

#[test]
fn a_guard_arms_one_shared_guard_on_every_rule_revised_by_the_canary_hash() {
    let mut w = world().with(two_hosts());
    w.services.push(service("metrics").port("http", 80, 8080).build());
    let guard = serde_json::json!({"errorPercent": 20, "windowSeconds": 30, "minRequests": 50});
    let t = w.with_route(weir_route("app").weight(40).canary_hash("7d9f").raw("guard", guard)).run();
    let o = outcome(&t, "app");
    assert_eq!((o.applied.clone(), o.guard.as_deref()), (Ok(40), Some("7d9f")));
    let table = RouteTable::from_doc(&t.doc).expect("valid: the rules share one policy");
    for host in ["app.example.com", "www.example.com"] {
        let c = canary(&t, Some(host), "/");
        let g = c.guard.as_ref().expect("guarded");
        assert_eq!((g.name.as_deref(), g.revision.as_deref()), (Some("app"), Some("7d9f")), "{host}");
        assert_eq!((g.error_percent, g.window.as_str(), g.min_requests), (20, "30s", 50));
        let route = table.match_route(host, "/").unwrap().unwrap();
        let key = &route.canary.as_ref().unwrap().guard.as_ref().unwrap().key;
        assert_eq!((key.namespace.as_str(), key.name.as_str()), ("default", "app"));
    }
    assert!(rule(&t, Some("app.example.com"), "/metrics").canary.is_none());

    // No guard asked, none armed.
    let t = world().with(main_app()).with_route(weir_route("app").weight(40)).run();
    assert_eq!(outcome(&t, "app").guard, None);
    assert!(canary(&t, Some("app.example.com"), "/").guard.is_none());
}

#[test]
fn experiment_destinations_get_their_shares_on_their_service_port() {
    let mut w = world().with(main_app());
    // Argo names an experiment Service's port after the container port: 8080, not 80.
    w.services.push(service("exp-a").port("http", 8080, 8080).build());
    w.slices.push(endpoint_slice("exp-a-z1", "exp-a").port("http", 8080).ready("10.0.2.1").build());
    w.services.push(service("exp-b").port("http", 80, 8080).build());
    w.slices.push(endpoint_slice("exp-b-z1", "exp-b").port("http", 8080).ready("10.0.3.1").build());
    let mut wr = weir_route("app").weight(20).build();
    wr.spec.additional_destinations = vec![
        serde_json::json!({"serviceName": "exp-a", "podTemplateHash": "h1", "weight": 30}),
        serde_json::json!({"serviceName": "exp-b", "podTemplateHash": "h2", "weight": 10}),
    ];
    w.weir_routes.push(wr);
    let t = w.run();
    let o = outcome(&t, "app");
    assert_eq!(o.applied, Ok(20));
    let shares: Vec<(String, i64)> =
        o.destinations.iter().map(|d| (d.service_name.clone(), d.weight)).collect();
    assert_eq!(shares, vec![("exp-a".into(), 30), ("exp-b".into(), 10)]);
    let c = canary(&t, Some("app.example.com"), "/");
    let got: Vec<(Option<&str>, Vec<String>, i64)> = c
        .destinations
        .iter()
        .map(|d| (d.backend.service.as_deref(), d.backend.endpoints.clone(), d.weight))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("exp-a"), vec!["10.0.2.1:8080".to_string()], 30),
            (Some("exp-b"), vec!["10.0.3.1:8080".to_string()], 10)
        ]
    );
    let table = RouteTable::from_doc(&t.doc).expect("valid");
    let route = table.match_route("app.example.com", "/").unwrap().unwrap();
    let h = http::HeaderMap::new();
    assert_eq!(pick_backend(route, &h, |_| 45).side, Some(Side::Destination(0)));
    assert_eq!(pick_backend(route, &h, |_| 55).side, Some(Side::Destination(1)));
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
}

#[test]
fn a_sticky_assignment_reaches_every_rule_of_the_weirroute() {
    let t = world()
        .with(main_app())
        .with_route(weir_route("app").weight(10).sticky_assignment("shop-point"))
        .run();
    let table = RouteTable::from_doc(&t.doc).expect("valid");
    let route = table.match_route("app.example.com", "/").unwrap().unwrap();
    let sticky = route.canary.as_ref().and_then(|c| c.sticky.as_ref()).expect("sticky assignment");
    assert_eq!(sticky.cookie, "shop-point");
    let mut h = http::HeaderMap::new();
    h.insert(http::header::COOKIE, "shop-point=999".parse().unwrap());
    assert_eq!(sticky.point(&h), Some(999));
    // Without one: a fresh draw per request, as ingress-nginx.
    let t = world().with(main_app()).with_route(weir_route("app").weight(10)).run();
    assert!(canary(&t, Some("app.example.com"), "/").sticky_assignment.is_none());
}
