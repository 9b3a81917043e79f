//! Mirror routes (a WeirRoute's `setMirrorRoute`): which requests are copied to the canary,
//! table-driven, and the file format's field errors.

use http::{HeaderMap, HeaderValue, Method};

use crate::test_support::one_host;
use crate::{mirror_route, ConfigError, RouteTable, Side};

/// A one-rule table whose canary has these mirror routes (YAML list items, indented 10).
fn mirror_table(routes: &str) -> Result<RouteTable, ConfigError> {
    one_host(&format!(
        "      - path: /
        backend: {{ service: stable, endpoints: [127.0.0.1:1] }}
        canary:
          backend: {{ service: canary, endpoints: [127.0.0.1:2] }}
          mirrorRoutes:
{routes}"
    ))
}

const ROUTES: &str = "            - name: api-reads
              percentage: 100
              matches:
                - { method: GET, pathPrefix: /api }
                - { method: HEAD, pathPrefix: /api }
            - name: beta-writes
              percentage: 100
              matches:
                - method: POST
                  headers: [{ header: x-user, prefix: beta- }]
";

/// (case, method, path, request headers, the side the request goes to, the route that copies it)
type Case<'a> = (&'a str, Method, &'a str, &'a [(&'a str, &'a str)], Side, Option<&'a str>);

#[test]
fn the_first_route_one_of_whose_matches_holds_copies_a_request_to_stable() {
    let t = mirror_table(ROUTES).expect("valid");
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let canary = route.canary.as_ref().unwrap();
    let never_draw = |_| panic!("percentage 100 copies without a draw");
    let cases: &[Case] = &[
        ("GET under the prefix", Method::GET, "/api/users", &[], Side::Stable, Some("api-reads")),
        ("the prefix itself", Method::GET, "/api", &[], Side::Stable, Some("api-reads")),
        ("a prefix of bytes, not segments", Method::GET, "/apix", &[], Side::Stable, Some("api-reads")),
        ("the second match of the route (OR)", Method::HEAD, "/api/x", &[], Side::Stable, Some("api-reads")),
        ("another method", Method::DELETE, "/api/x", &[], Side::Stable, None),
        ("outside the prefix", Method::GET, "/web", &[], Side::Stable, None),
        (
            "method and header (AND)",
            Method::POST,
            "/web",
            &[("x-user", "beta-1")],
            Side::Stable,
            Some("beta-writes"),
        ),
        ("method without the header", Method::POST, "/web", &[], Side::Stable, None),
        ("the header with another method", Method::PUT, "/web", &[("x-user", "beta-1")], Side::Stable, None),
        ("a request the canary serves is not copied", Method::GET, "/api/x", &[], Side::Canary, None),
    ];
    for (case, method, path, pairs, side, want) in cases {
        let mut h = HeaderMap::new();
        for (k, v) in *pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        let got = mirror_route(canary, *side, method, path, &h, never_draw).map(|r| r.name.as_str());
        assert_eq!(got, *want, "{case}");
    }
}

#[test]
fn the_percentage_is_a_draw_out_of_100() {
    let routes = "            - { name: half, percentage: 50, matches: [{}] }\n";
    let t = mirror_table(routes).expect("valid");
    let canary = t.match_route("app.example.com", "/").unwrap().unwrap().canary.as_ref().unwrap();
    let copied = |r: u32| {
        mirror_route(canary, Side::Stable, &Method::GET, "/", &HeaderMap::new(), |total| {
            assert_eq!(total, 100);
            r
        })
        .is_some()
    };
    assert!(copied(1) && copied(50), "draws 1..=50 copy");
    assert!(!copied(51) && !copied(100), "draws 51..=100 do not");
    // 0 never copies, and never draws.
    let t = mirror_table("            - { name: none, percentage: 0, matches: [{}] }\n").expect("valid");
    let canary = t.match_route("app.example.com", "/").unwrap().unwrap().canary.as_ref().unwrap();
    let never_draw = |_| panic!("percentage 0 copies nothing without a draw");
    assert!(mirror_route(canary, Side::Stable, &Method::GET, "/", &HeaderMap::new(), never_draw).is_none());
}

#[test]
fn bad_mirror_routes_are_field_errors_and_reject_the_table() {
    let at = "hosts[0].rules[0].canary.mirrorRoutes";
    let cases: &[(&str, &str, String)] = &[
        (
            "percentage over 100",
            "            - { name: a, percentage: 101, matches: [{}] }\n",
            format!("{at}[0].percentage: 101 is not within 0..100"),
        ),
        (
            "negative percentage",
            "            - { name: a, percentage: -1, matches: [{}] }\n",
            format!("{at}[0].percentage: -1 is not within 0..100"),
        ),
        (
            "no matches",
            "            - { name: a, percentage: 10, matches: [] }\n",
            format!("{at}[0].matches: is empty; a mirror route needs at least one match"),
        ),
        (
            "lower-case method",
            "            - { name: a, percentage: 10, matches: [{ method: get }] }\n",
            format!("{at}[0].matches[0].method: \"get\" is not an upper-case HTTP method like GET"),
        ),
        (
            "path prefix without /",
            "            - { name: a, percentage: 10, matches: [{ pathPrefix: api }] }\n",
            format!("{at}[0].matches[0].pathPrefix: \"api\" does not start with /"),
        ),
        (
            "a header test without a value test",
            "            - { name: a, percentage: 10, matches: [{ headers: [{ header: x-a }] }] }\n",
            format!("{at}[0].matches[0].headers[0]: needs one of exact, prefix or regex"),
        ),
        (
            "empty name",
            "            - { name: \"\", percentage: 10, matches: [{}] }\n",
            format!("{at}[0].name: is empty"),
        ),
        (
            "duplicate name",
            "            - { name: a, percentage: 10, matches: [{}] }\n            - { name: a, percentage: 10, matches: [{}] }\n",
            format!("{at}[1].name: \"a\" is used by an earlier mirror route of this rule"),
        ),
    ];
    for (case, routes, want) in cases {
        match mirror_table(routes) {
            Err(ConfigError::Invalid(errs)) => {
                let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
                assert!(got.len() == 1 && got[0].starts_with(want.as_str()), "{case}: {got:?}");
            }
            Err(e) => panic!("{case}: expected field errors, got {e}"),
            Ok(_) => panic!("{case}: accepted"),
        }
    }
}

#[test]
fn unknown_fields_in_a_mirror_route_do_not_parse() {
    let routes = "            - { name: a, percentage: 10, matches: [{ path: /api }] }\n";
    match mirror_table(routes) {
        Err(ConfigError::Parse(e)) => assert!(e.to_string().contains("path"), "{e}"),
        other => panic!("expected a parse error naming the field, got {other:?}"),
    }
}
