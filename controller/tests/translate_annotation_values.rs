//! Canary values are checked with ingress-nginx's validators before use: a value with
//! characters outside its key's set is dropped with a diagnostic naming the key, leaving the
//! rules ingress-nginx would leave (a dropped header value → the header's always/never).

use weir_config::{pick_backend, RouteTable, Side};
use weir_controller::testkit::fixtures::*;
use weir_controller::testkit::world::*;
use weir_controller::translate::Reason;

fn canary_with(key: &str, value: &str) -> weir_controller::testkit::fixtures::IngressBuilder {
    canary_ingress("ro", "app")
        .host("app.example.com")
        .path("/", "app-canary", "http")
        .weight(0)
        .nginx("canary-by-header", "X-Canary")
        .nginx(key, value)
}

#[test]
fn a_header_value_outside_its_character_set_is_dropped_leaving_always_and_never() {
    // (key, value, header sent, side) — weight 0, so only the header can pick the canary.
    let cases = [
        ("canary-by-header-value", "beta users", "beta users", Side::Canary),
        ("canary-by-header-value", "beta,users", "beta,users", Side::Stable),
        ("canary-by-header-value", "beta,users", "always", Side::Canary),
        ("canary-by-header-value", "v=2", "never", Side::Stable),
        ("canary-by-header-pattern", "^v[0-9]+$", "v7", Side::Canary),
        ("canary-by-header-pattern", "^(a|b c)$", "b c", Side::Stable),
        ("canary-by-header-pattern", "^(a|b c)$", "always", Side::Canary),
    ];
    for (key, value, sent, side) in cases {
        let t = world().with(main_app()).with(canary_with(key, value)).run();
        let table = RouteTable::from_doc(&t.doc).expect("valid");
        let route = table.match_route("app.example.com", "/").expect("path").expect("route");
        let mut headers = http::HeaderMap::new();
        headers.insert("x-canary", sent.parse().expect("header value"));
        assert_eq!(pick_backend(route, &headers, |_| 1).side, Some(side), "{key}={value:?}, sent {sent:?}");
    }
}

#[test]
fn a_dropped_canary_value_is_reported_with_its_key_and_reason() {
    let t = world().with(main_app()).with(canary_with("canary-by-header-value", "a;b")).run();
    assert_eq!(reasons(&t), vec![("ro-app-canary".into(), Reason::InvalidAnnotation)]);
    let message = &t.diagnostics[0].message;
    assert!(
        message.contains("nginx.ingress.kubernetes.io/canary-by-header-value=\"a;b\"")
            && message.contains("contains ';'")
            && message.contains("using the header's pattern or always/never rules"),
        "{message}"
    );
    assert!(canary(&t, Some("app.example.com"), "/").header_value.is_none());
    let cookie = world().with(main_app()).with(canary_with("canary-by-cookie", "ab@c")).run();
    assert!(canary(&cookie, Some("app.example.com"), "/").cookie.is_none());
}
