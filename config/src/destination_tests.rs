//! Additional weighted destinations (Argo Rollouts experiments' `additionalDestinations`): who
//! each draw goes to, the D3 fallbacks, the guard's share, and the file format's field errors.

use http::HeaderMap;

use crate::test_support::one_host;
use crate::{pick_backend_guarded, ConfigError, Reason, RouteTable, Side};

/// `app.example.com` with stable, a canary at `weight` of 100 and destinations `a` and `b`
/// at their weights (endpoints as given: `[]` for none).
fn table(weight: u32, a: (u32, &str), b: (u32, &str), extra: &str) -> Result<RouteTable, ConfigError> {
    one_host(&format!(
        "      - path: /
        backend: {{ service: stable, endpoints: [127.0.0.1:1] }}
        canary:
          backend: {{ service: canary, endpoints: [127.0.0.1:2] }}
          weight: {weight}
          header: x-canary
          destinations:
            - {{ backend: {{ service: exp-a, endpoints: {} }}, weight: {} }}
            - {{ backend: {{ service: exp-b, endpoints: {} }}, weight: {} }}
{extra}",
        a.1, a.0, b.1, b.0
    ))
}

const UP: &str = "[127.0.0.3:1]";

#[test]
fn each_draw_goes_to_the_share_it_falls_in() {
    let t = table(20, (10, UP), (5, UP), "").expect("valid");
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let h = HeaderMap::new();
    // r in 1..=20 canary, 21..=30 exp-a, 31..=35 exp-b, 36..=100 stable.
    for (r, side) in [
        (1, Side::Canary),
        (20, Side::Canary),
        (21, Side::Destination(0)),
        (30, Side::Destination(0)),
        (31, Side::Destination(1)),
        (35, Side::Destination(1)),
        (36, Side::Stable),
        (100, Side::Stable),
    ] {
        let d = pick_backend_guarded(route, &h, false, |total| {
            assert_eq!(total, 100);
            r
        });
        assert_eq!((d.side, d.reason, d.fell_back), (Some(side), Reason::Weight, false), "r = {r}");
    }
    // The header stage never picks a destination.
    let mut forced = HeaderMap::new();
    forced.insert("x-canary", "always".parse().unwrap());
    assert_eq!(pick_backend_guarded(route, &forced, false, |_| 25).side, Some(Side::Canary));
}

#[test]
fn a_destination_without_endpoints_gives_its_draw_to_stable_and_a_tripped_canary_its_share() {
    let guard = "          guard: { errorPercent: 20, window: 10s, minRequests: 5 }\n";
    let t = table(20, (10, "[]"), (5, UP), guard).expect("valid");
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let h = HeaderMap::new();
    let d = pick_backend_guarded(route, &h, false, |_| 25);
    assert_eq!((d.side, d.fell_back), (Some(Side::Stable), true), "exp-a has no endpoint (D3)");
    // Tripped: the canary's share goes to stable; the destinations keep theirs.
    let d = pick_backend_guarded(route, &h, true, |_| 10);
    assert_eq!((d.side, d.reason), (Some(Side::Stable), Reason::Guard));
    let d = pick_backend_guarded(route, &h, true, |_| 33);
    assert_eq!((d.side, d.reason), (Some(Side::Destination(1)), Reason::Weight));
    // Nobody but stable has a share: no draw.
    let t = table(0, (0, UP), (0, UP), "").expect("valid");
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let d = pick_backend_guarded(route, &h, false, |_| panic!("no draw"));
    assert_eq!(d.side, Some(Side::Stable));
}

#[test]
fn shares_over_the_total_and_bad_weights_are_field_errors() {
    let errs = |r: Result<RouteTable, ConfigError>| match r {
        Err(ConfigError::Invalid(e)) => e.into_iter().map(|e| (e.field, e.reason)).collect::<Vec<_>>(),
        other => panic!("not refused: {other:?}"),
    };
    let e = errs(table(60, (30, UP), (20, UP), ""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "hosts[0].rules[0].canary.destinations");
    assert!(e[0].1.contains("add up to 110, over weightTotal 100"), "{e:?}");
    let e = errs(RouteTable::parse(
        "schema: weir/v1
hosts:
  - host: a.example
    rules:
      - path: /
        backend: { service: s, endpoints: [127.0.0.1:1] }
        canary:
          backend: { service: c, endpoints: [127.0.0.1:2] }
          destinations: [{ backend: { service: x, endpoints: [nowhere] }, weight: -1 }]
",
    ));
    let fields: Vec<&str> = e.iter().map(|(f, _)| f.as_str()).collect();
    assert!(fields.contains(&"hosts[0].rules[0].canary.destinations[0].weight"), "{e:?}");
    assert!(fields.contains(&"hosts[0].rules[0].canary.destinations[0].backend.endpoints[0]"), "{e:?}");
}
