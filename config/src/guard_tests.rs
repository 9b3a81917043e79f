//! The local canary guard in the route model: its file format and field errors, when a
//! window's counts trip it, and what a tripped guard changes in the canary decision.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};

use crate::test_support::{field_errors, one_host};
use crate::{pick_backend_guarded, ConfigError, Reason, RouteTable, Side};

/// A table of one host with these rules (YAML list items indented 6), canaries guarded as
/// each rule says.
fn table(rules: &str) -> Result<RouteTable, ConfigError> {
    one_host(rules)
}

fn rule(path: &str, weight: u32, guard: &str) -> String {
    format!(
        "      - path: {path}
        backend: {{ namespace: shop, service: stable, endpoints: [127.0.0.1:1] }}
        canary:
          backend: {{ namespace: shop, service: canary, endpoints: [127.0.0.1:2] }}
          weight: {weight}
          header: x-canary
          cookie: canary
          headerRoutes: [{{ name: testers, matches: [{{ header: x-tester, exact: 'yes' }}] }}]
          guard: {guard}
"
    )
}

#[test]
fn a_guard_reads_with_its_defaults_and_its_key() {
    let t = table(&rule("/", 50, "{ errorPercent: 20, window: 10s, minRequests: 50, revision: 7d9f }"))
        .expect("valid");
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let g = route.canary.as_ref().unwrap().guard.as_ref().expect("guarded");
    assert_eq!((g.error_percent, g.window, g.min_requests), (20, Duration::from_secs(10), 50));
    assert_eq!(
        (g.key.namespace.as_str(), g.key.name.as_str(), g.key.revision.as_str()),
        ("shop", "canary", "7d9f")
    );

    let t = table(&rule("/", 50, "{ name: shop-rollout, errorPercent: 5, window: 1m, minRequests: 1 }"))
        .expect("valid");
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let g = route.canary.as_ref().unwrap().guard.as_ref().unwrap();
    assert_eq!(
        (g.key.name.as_str(), g.key.revision.as_str(), g.window),
        ("shop-rollout", "", Duration::from_secs(60))
    );
}

#[test]
fn every_bad_guard_field_is_named_with_its_reason() {
    let cases = [
        ("{ errorPercent: 0, window: 10s, minRequests: 5 }", "errorPercent", "0 is not within 1..100"),
        ("{ errorPercent: 101, window: 10s, minRequests: 5 }", "errorPercent", "101 is not within 1..100"),
        ("{ errorPercent: 10, window: 10s, minRequests: 0 }", "minRequests", "0 is under 1"),
        ("{ errorPercent: 10, window: 500ms, minRequests: 5 }", "window", "is not within 1s..10m"),
        ("{ errorPercent: 10, window: 11m, minRequests: 5 }", "window", "is not within 1s..10m"),
        ("{ errorPercent: 10, window: soon, minRequests: 5 }", "window", "is not a duration"),
        (
            "{ name: '', errorPercent: 10, window: 10s, minRequests: 5 }",
            "name",
            "must be 1 to 253 characters",
        ),
        (
            "{ errorPercent: 10, window: 10s, minRequests: 5, revision: \"a\\tb\" }",
            "revision",
            "none a control",
        ),
    ];
    for (guard, field, reason) in cases {
        let errs = field_errors(table(&rule("/", 50, guard)));
        assert_eq!(errs.len(), 1, "{guard}: {errs:?}");
        assert_eq!(errs[0].0, format!("hosts[0].rules[0].canary.guard.{field}"), "{guard}");
        assert!(errs[0].1.contains(reason), "{guard}: {:?}", errs[0].1);
    }
    // An unknown field is refused, not ignored.
    let r = table(&rule("/", 50, "{ errorPercent: 10, window: 10s, minRequests: 5, threshold: 3 }"));
    assert!(matches!(r, Err(ConfigError::Parse(ref e)) if e.to_string().contains("threshold")), "{r:?}");
}

#[test]
fn rules_sharing_a_guard_must_ask_for_the_same_one() {
    let same = "{ name: shop, errorPercent: 20, window: 10s, minRequests: 50 }";
    table(&(rule("/a", 10, same) + &rule("/b", 10, same))).expect("one policy, two rules");
    let other = "{ name: shop, errorPercent: 30, window: 10s, minRequests: 50 }";
    let errs = field_errors(table(&(rule("/a", 10, same) + &rule("/b", 10, other))));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, "hosts[0].rules[1].canary.guard");
    assert!(
        errs[0].1.contains("already set with another") && errs[0].1.contains("hosts[0].rules[0]"),
        "{errs:?}"
    );
    // Another revision is another guard.
    let next = "{ name: shop, errorPercent: 30, window: 10s, minRequests: 50, revision: b }";
    table(&(rule("/a", 10, same) + &rule("/b", 10, next))).expect("two revisions, two guards");
}

#[test]
fn a_guard_trips_only_past_its_share_and_never_on_too_few_answers() {
    let t = table(&rule("/", 50, "{ errorPercent: 20, window: 10s, minRequests: 50 }")).unwrap();
    let g = t
        .match_route("app.example.com", "/")
        .unwrap()
        .unwrap()
        .canary
        .as_ref()
        .unwrap()
        .guard
        .clone()
        .unwrap();
    let cases = [
        // (errors, total, trips)
        (0, 0, false),
        (49, 49, false), // every answer a fault, but too few to judge
        (50, 50, true),
        (10, 50, false), // exactly 20 %: not more than it
        (11, 50, true),
        (200, 1000, false),
        (201, 1000, true),
    ];
    for (errors, total, trips) in cases {
        assert_eq!(g.trips(errors, total), trips, "{errors} of {total}");
    }
}

/// (case, request headers, the side, what decided it)
type Case<'a> = (&'a str, &'a [(&'static str, &'static str)], Side, Reason);

#[test]
fn a_tripped_guard_sends_weighted_traffic_to_stable_and_keeps_testers_on_the_canary() {
    let t = table(&rule("/", 100, "{ errorPercent: 20, window: 10s, minRequests: 50 }")).unwrap();
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    };
    let no_draw = |_| panic!("a tripped guard draws nothing");
    let cases: &[Case] = &[
        ("weighted (weight 100 of 100)", &[], Side::Stable, Reason::Guard),
        ("a header route", &[("x-tester", "yes")], Side::Canary, Reason::HeaderRoute),
        ("canary-by-header always", &[("x-canary", "always")], Side::Canary, Reason::Header),
        ("canary-by-header never", &[("x-canary", "never")], Side::Stable, Reason::Header),
        ("canary-by-cookie always", &[("cookie", "canary=always")], Side::Canary, Reason::Cookie),
        ("a header value that decides nothing", &[("x-canary", "maybe")], Side::Stable, Reason::Guard),
    ];
    for (case, pairs, side, reason) in cases {
        let d = pick_backend_guarded(route, &headers(pairs), true, no_draw);
        assert_eq!((d.side, d.reason, d.fell_back), (Some(*side), *reason, false), "{case}");
    }
    // Untripped, the same rule's weighted traffic is the canary's.
    let d = pick_backend_guarded(route, &HeaderMap::new(), false, |_| 1);
    assert_eq!((d.side, d.reason), (Some(Side::Canary), Reason::Weight));
}

#[test]
fn a_tripped_guard_never_falls_back_onto_the_canary() {
    let rules = "      - path: /
        backend: { service: stable, endpoints: [] }
        canary:
          backend: { service: canary, endpoints: [127.0.0.1:2] }
          weight: 50
          guard: { errorPercent: 20, window: 10s, minRequests: 50 }
";
    let t = table(rules).unwrap();
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let d = pick_backend_guarded(route, &HeaderMap::new(), true, |_| 1);
    assert_eq!((d.side, d.reason), (None, Reason::Guard), "no stable endpoint: 503, not the guarded canary");
    let d = pick_backend_guarded(route, &HeaderMap::new(), false, |_| 100);
    assert_eq!((d.side, d.fell_back), (Some(Side::Canary), true), "untripped, D3 still falls back");
}
