//! Managed header routes (a WeirRoute's `setHeaderRoute`): the decision, table-driven, and
//! the file format's field errors.

use http::{HeaderMap, HeaderValue};

use crate::test_support::one_host;
use crate::{pick_backend, ConfigError, Reason, RouteTable, Side};

/// A one-rule table: the canary has weight `weight` of 100 and these header routes (YAML
/// list items, indented 10), plus an nginx `canary-by-header: X-Nginx`.
fn routes_table(routes: &str, weight: u32, canary_eps: &str) -> Result<RouteTable, ConfigError> {
    one_host(&format!(
        "      - path: /
        backend: {{ service: stable, endpoints: [127.0.0.1:1] }}
        canary:
          backend: {{ service: canary, endpoints: [{canary_eps}] }}
          weight: {weight}
          header: X-Nginx
          headerRoutes:
{routes}"
    ))
}

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_bytes(v).unwrap());
    }
    h
}

const TESTERS: &str = "            - name: testers
              matches:
                - { header: x-canary, exact: \"true\" }
            - name: beta
              matches:
                - { header: x-user, prefix: beta- }
                - { header: x-region, regex: \"eu-(west|north)\" }
";

/// (case, request headers, side, what decided)
type Case<'a> = (&'a str, &'a [(&'a str, &'a [u8])], Side, Reason);

#[test]
fn the_first_route_whose_matches_all_hold_sends_to_the_canary() {
    let t = routes_table(TESTERS, 0, "127.0.0.1:2").expect("valid");
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let never_draw = |_| panic!("a header route decides without a draw");
    let cases: &[Case] = &[
        ("exact match", &[("x-canary", b"true")], Side::Canary, Reason::HeaderRoute),
        ("exact is case-sensitive", &[("x-canary", b"True")], Side::Stable, Reason::Weight),
        ("exact is whole-value", &[("x-canary", b"true1")], Side::Stable, Reason::Weight),
        ("header name is case-insensitive", &[("X-Canary", b"true")], Side::Canary, Reason::HeaderRoute),
        ("no header", &[], Side::Stable, Reason::Weight),
        (
            "both matches of beta",
            &[("x-user", b"beta-7"), ("x-region", b"eu-west")],
            Side::Canary,
            Reason::HeaderRoute,
        ),
        ("only one match of beta (AND)", &[("x-user", b"beta-7")], Side::Stable, Reason::Weight),
        (
            "prefix does not match",
            &[("x-user", b"alpha-7"), ("x-region", b"eu-west")],
            Side::Stable,
            Reason::Weight,
        ),
        (
            "regex is anchored at the start",
            &[("x-user", b"beta-1"), ("x-region", b"xeu-west")],
            Side::Stable,
            Reason::Weight,
        ),
        (
            "regex is anchored at the end",
            &[("x-user", b"beta-1"), ("x-region", b"eu-west2")],
            Side::Stable,
            Reason::Weight,
        ),
        (
            "regex alternation inside the anchors",
            &[("x-user", b"beta-1"), ("x-region", b"eu-north")],
            Side::Canary,
            Reason::HeaderRoute,
        ),
        (
            "repeated header joined with \", \"",
            &[("x-canary", b"true"), ("x-canary", b"true")],
            Side::Stable,
            Reason::Weight,
        ),
        (
            "non-UTF-8 value fails a regex",
            &[("x-user", b"beta-1"), ("x-region", b"eu-west\xff")],
            Side::Stable,
            Reason::Weight,
        ),
        // Header routes come before the nginx header stage: X-Nginx: never cannot override.
        (
            "before the nginx header stage",
            &[("x-canary", b"true"), ("x-nginx", b"never")],
            Side::Canary,
            Reason::HeaderRoute,
        ),
        ("nginx stage still applies otherwise", &[("x-nginx", b"always")], Side::Canary, Reason::Header),
    ];
    for (case, pairs, side, reason) in cases {
        let h = headers(pairs);
        let d = if *reason == Reason::Weight {
            pick_backend(route, &h, |_| 1)
        } else {
            pick_backend(route, &h, never_draw)
        };
        assert_eq!((d.side, d.reason), (Some(*side), *reason), "{case}");
    }
}

#[test]
fn a_header_route_to_an_empty_canary_is_honoured_as_unavailable() {
    let t = routes_table(TESTERS, 50, "").expect("valid");
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let d = pick_backend(route, &headers(&[("x-canary", b"true")]), |_| 1);
    assert_eq!((d.side, d.reason, d.fell_back), (None, Reason::HeaderRoute, false));
    // Weighted traffic still falls back to stable (D3).
    let d = pick_backend(route, &headers(&[]), |_| 1);
    assert_eq!((d.side, d.fell_back), (Some(Side::Stable), true));
}

#[test]
fn bad_header_routes_are_field_errors_and_reject_the_table() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "no value test",
            "            - { name: a, matches: [{ header: x-a }] }\n",
            "hosts[0].rules[0].canary.headerRoutes[0].matches[0]: needs one of exact, prefix or regex",
        ),
        (
            "two value tests",
            "            - { name: a, matches: [{ header: x-a, exact: b, prefix: c }] }\n",
            "hosts[0].rules[0].canary.headerRoutes[0].matches[0]: sets more than one of exact, prefix and regex; set exactly one",
        ),
        (
            "bad header name",
            "            - { name: a, matches: [{ header: \"x a\", exact: b }] }\n",
            "hosts[0].rules[0].canary.headerRoutes[0].matches[0].header: \"x a\" is not a valid HTTP header name",
        ),
        (
            "regex that does not compile",
            "            - { name: a, matches: [{ header: x-a, regex: \"(\" }] }\n",
            "hosts[0].rules[0].canary.headerRoutes[0].matches[0].regex: \"(\" is not a valid pattern",
        ),
        (
            "backreference (not RE2)",
            "            - { name: a, matches: [{ header: x-a, regex: '(a)\\1' }] }\n",
            "hosts[0].rules[0].canary.headerRoutes[0].matches[0].regex: \"(a)\\\\1\" is not a valid pattern",
        ),
        (
            "no matches",
            "            - { name: a, matches: [] }\n",
            "hosts[0].rules[0].canary.headerRoutes[0].matches: is empty; a route needs at least one match",
        ),
        (
            "empty name",
            "            - { name: \"\", matches: [{ header: x-a, exact: b }] }\n",
            "hosts[0].rules[0].canary.headerRoutes[0].name: is empty",
        ),
        (
            "duplicate name",
            "            - { name: a, matches: [{ header: x-a, exact: b }] }\n            - { name: a, matches: [{ header: x-b, exact: b }] }\n",
            "hosts[0].rules[0].canary.headerRoutes[1].name: \"a\" is used by an earlier route of this rule",
        ),
    ];
    for (case, routes, want) in cases {
        match routes_table(routes, 0, "127.0.0.1:2") {
            Err(ConfigError::Invalid(errs)) => {
                let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
                assert!(got.len() == 1 && got[0].starts_with(want), "{case}: {got:?}");
            }
            Err(e) => panic!("{case}: expected field errors, got {e}"),
            Ok(_) => panic!("{case}: accepted"),
        }
    }
}

#[test]
fn unknown_fields_in_a_header_route_do_not_parse() {
    let routes = "            - { name: a, matches: [{ header: x-a, exact: b, suffix: c }] }\n";
    match routes_table(routes, 0, "127.0.0.1:2") {
        Err(ConfigError::Parse(e)) => assert!(e.to_string().contains("suffix"), "{e}"),
        other => panic!("expected a parse error naming the field, got {other:?}"),
    }
}

#[test]
fn too_many_routes_are_refused() {
    let mut routes = String::new();
    for i in 0..=crate::validate::MAX_HEADER_ROUTES {
        routes.push_str(&format!("            - {{ name: r{i}, matches: [{{ header: x-a, exact: b }}] }}\n"));
    }
    match routes_table(&routes, 0, "127.0.0.1:2") {
        Err(ConfigError::Invalid(errs)) => {
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert_eq!(errs[0].field, "hosts[0].rules[0].canary.headerRoutes");
        }
        other => panic!("expected a field error, got {other:?}"),
    }
}
