//! Table tests of canary precedence (a Rollout's canary beats a hand-written one) and of the
//! defaultBackend-only canary pairing with the catch-all. The wider translation tests live in
//! `controller/tests/translate.rs`.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use weir_config::wire::RuleDoc;
use weir_config::RouteTable;

use super::*;
use crate::testkit::fixtures::*;

fn run(ingresses: Vec<Ingress>) -> Translation {
    let state = ClusterState {
        ingresses: ingresses.into_iter().map(Arc::new).collect(),
        services: vec![
            Arc::new(service("app").port("http", 80, 8080).build()),
            Arc::new(service("app-canary").port("http", 80, 8080).build()),
            Arc::new(service("old-canary").port("http", 80, 8080).build()),
        ],
        slices: vec![
            Arc::new(endpoint_slice("app-a", "app").port("http", 8080).ready("192.0.2.1").build()),
            Arc::new(
                endpoint_slice("app-canary-a", "app-canary").port("http", 8080).ready("192.0.2.2").build(),
            ),
            Arc::new(
                endpoint_slice("old-canary-a", "old-canary").port("http", 8080).ready("192.0.2.3").build(),
            ),
        ],
        ..Default::default()
    };
    let t = translate(&state, &Options::default());
    if let Err(e) = RouteTable::from_doc(&t.doc) {
        panic!("translated table does not validate: {e}\n{:#?}", t.doc);
    }
    t
}

fn rule<'a>(t: &'a Translation, host: Option<&str>, path: &str) -> &'a RuleDoc {
    let h = t.doc.hosts.iter().find(|h| h.host.as_deref() == host);
    let r = h.and_then(|h| h.rules.iter().find(|r| r.path == path));
    r.unwrap_or_else(|| panic!("no rule {host:?} {path} in {:#?}", t.doc))
}

/// The canary Service serving a rule, or None.
fn canary_service(t: &Translation, host: Option<&str>, path: &str) -> Option<String> {
    rule(t, host, path).canary.as_ref().and_then(|c| c.backend.service.clone())
}

fn reasons(t: &Translation) -> Vec<(String, Reason)> {
    t.diagnostics.iter().map(|d| (d.ingress.name.clone(), d.reason)).collect()
}

fn main_app() -> IngressBuilder {
    ingress("app").host("app.example.com").path("/", "app", "http")
}

/// A canary for app.example.com `/` named `name`, created at `created`, to `service`.
fn hand_written(name: &str, created: i64, service: &str) -> IngressBuilder {
    ingress(name)
        .created(created)
        .nginx("canary", "true")
        .weight(0)
        .host("app.example.com")
        .path("/", service, "http")
}

fn with_owner(b: IngressBuilder, api_version: &str, kind: &str, controller: Option<bool>) -> Ingress {
    let mut ing = b.build();
    ing.metadata.owner_references = Some(vec![OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: "ro".into(),
        uid: "uid-ro".into(),
        controller,
        block_owner_deletion: Some(true),
    }]);
    ing
}

#[test]
fn a_canary_controlled_by_a_rollout_beats_an_older_hand_written_one_whichever_is_older() {
    // (hand-written created, Rollout's canary created): the Rollout's wins either way.
    for (stale_at, argo_at) in [(1, 50), (50, 1), (7, 7)] {
        let argo = canary_ingress("ro", "app").created(argo_at).host("app.example.com").path(
            "/",
            "app-canary",
            "http",
        );
        let t = run(vec![
            main_app().build(),
            hand_written("stale", stale_at, "old-canary").build(),
            argo.build(),
        ]);
        assert_eq!(
            canary_service(&t, Some("app.example.com"), "/").as_deref(),
            Some("app-canary"),
            "{stale_at} {argo_at}"
        );
        assert_eq!(reasons(&t), vec![("stale".into(), Reason::CanaryConflict)]);
        let message = &t.diagnostics[0].message;
        assert!(
            message.contains("controlled by Rollout ro") && message.contains("default/ro-app-canary"),
            "{message}"
        );
    }
}

#[test]
fn only_a_controller_owner_reference_of_kind_rollout_in_argoproj_counts_as_a_rollouts_canary() {
    type Case<'a> = (&'a str, &'a str, Option<bool>, &'a str);
    // The hand-written canary is older, so it wins unless the other counts as a Rollout's.
    let cases: [Case; 5] = [
        ("argoproj.io/v1alpha1", "Rollout", Some(true), "app-canary"),
        ("argoproj.io/v1alpha1", "Rollout", Some(false), "old-canary"),
        ("argoproj.io/v1alpha1", "Rollout", None, "old-canary"),
        ("example.com/v1", "Rollout", Some(true), "old-canary"),
        ("argoproj.io/v1alpha1", "Experiment", Some(true), "old-canary"),
    ];
    for (api_version, kind, controller, winner) in cases {
        let newer = hand_written("newer", 20, "app-canary");
        let t = run(vec![
            main_app().build(),
            hand_written("stale", 10, "old-canary").build(),
            with_owner(newer, api_version, kind, controller),
        ]);
        let case = format!("{api_version} {kind} {controller:?}");
        assert_eq!(canary_service(&t, Some("app.example.com"), "/").as_deref(), Some(winner), "{case}");
        let loser = if winner == "app-canary" { "stale" } else { "newer" };
        assert_eq!(reasons(&t), vec![(loser.into(), Reason::CanaryConflict)], "{case}");
    }
}

#[test]
fn two_rollouts_canaries_for_one_rule_still_go_to_the_oldest() {
    let young =
        canary_ingress("young", "app").created(20).host("app.example.com").path("/", "old-canary", "http");
    let old =
        canary_ingress("old", "app").created(10).host("app.example.com").path("/", "app-canary", "http");
    let t = run(vec![main_app().build(), young.build(), old.build()]);
    assert_eq!(canary_service(&t, Some("app.example.com"), "/").as_deref(), Some("app-canary"));
    assert_eq!(reasons(&t), vec![("young-app-canary".into(), Reason::CanaryConflict)]);
    assert!(t.diagnostics[0].message.contains("(older)"), "{}", t.diagnostics[0].message);
}

#[test]
fn a_canary_with_only_a_default_backend_pairs_with_the_main_default_backend() {
    let main = ingress("fallback")
        .created(1)
        .default_backend("app", 80)
        .host("claimed.example.com")
        .path("/", "app", "http")
        .host("open.example.com")
        .path("/api", "app", "http");
    let canary = ingress("fallback-canary")
        .created(2)
        .nginx("canary", "true")
        .weight(30)
        .default_backend("app-canary", 80);
    let t = run(vec![main.build(), canary.build()]);
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    let catch_all = rule(&t, None, "/").canary.as_ref().expect("the default server has the canary");
    assert_eq!((catch_all.backend.service.as_deref(), catch_all.weight), (Some("app-canary"), Some(30)));
    assert_eq!(catch_all.backend.endpoints, vec!["192.0.2.2:8080"]);
    // The `/` that the same defaultBackend fills gets it too; explicit rules do not (D1).
    assert_eq!(canary_service(&t, Some("open.example.com"), "/").as_deref(), Some("app-canary"));
    assert_eq!(canary_service(&t, Some("open.example.com"), "/api"), None);
    assert_eq!(canary_service(&t, Some("claimed.example.com"), "/"), None);
}

#[test]
fn a_default_backend_canary_without_a_default_server_is_reported_and_changes_nothing() {
    let canary =
        ingress("lonely-canary").nginx("canary", "true").weight(50).default_backend("app-canary", 80);
    let t = run(vec![main_app().build(), canary.build()]);
    assert_eq!(reasons(&t), vec![("lonely-canary".into(), Reason::CanaryWithoutMain)]);
    assert_eq!(canary_service(&t, Some("app.example.com"), "/"), None);
    assert!(t.doc.hosts.iter().all(|h| h.host.is_some()), "no default server appears: {:#?}", t.doc);
}

#[test]
fn a_hand_written_default_backend_canary_yields_the_catch_all_to_a_rollouts() {
    let main = ingress("fallback").created(1).default_backend("app", 80);
    let stale =
        ingress("stale").created(2).nginx("canary", "true").weight(0).default_backend("old-canary", 80);
    let argo = canary_ingress("ro", "fallback").created(9).default_backend("app-canary", 80);
    let t = run(vec![main.build(), stale.build(), argo.build()]);
    assert_eq!(canary_service(&t, None, "/").as_deref(), Some("app-canary"));
    assert_eq!(reasons(&t), vec![("stale".into(), Reason::CanaryConflict)]);
}
