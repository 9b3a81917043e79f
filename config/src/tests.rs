//! Table-driven tests of validation, matching and the canary decision.

use http::{HeaderMap, HeaderValue};

use crate::{pick_backend, ConfigError, Decision, Reason, RouteTable, Side};

fn table(yaml: &str) -> RouteTable {
    match RouteTable::parse(yaml) {
        Ok(t) => t,
        Err(e) => panic!("fixture does not validate: {e}"),
    }
}

fn errors(yaml: &str) -> Vec<String> {
    match RouteTable::parse(yaml) {
        Ok(_) => panic!("expected the document to be rejected"),
        Err(ConfigError::Invalid(errs)) => errs.iter().map(|e| e.to_string()).collect(),
        Err(e) => panic!("expected field errors, got {e}"),
    }
}

/// A one-rule table whose canary has the given policy lines (YAML, indented 8).
fn canary_table(policy: &str, main_eps: &str, canary_eps: &str) -> RouteTable {
    table(&format!(
        "schema: weir/v1
hosts:
  - host: app.example.com
    rules:
      - path: /
        backend: {{ service: stable, endpoints: [{main_eps}] }}
        canary:
          backend: {{ service: canary, endpoints: [{canary_eps}] }}
{policy}"
    ))
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

fn decide(t: &RouteTable, pairs: &[(&str, &str)], roll: u32) -> Decision {
    let route = t.match_route("app.example.com", "/").unwrap().expect("route");
    pick_backend(route, &headers(pairs), |_| roll)
}

const EPS: &str = "127.0.0.1:1";
const EPS2: &str = "127.0.0.1:2";

// ---------- header stage ----------

#[test]
fn header_value_equal_sends_to_canary_and_other_values_fall_through() {
    let t = canary_table("          header: X-Canary\n          headerValue: blue\n", EPS, EPS2);
    assert_eq!(decide(&t, &[("x-canary", "blue")], 100).side, Some(Side::Canary));
    assert_eq!(decide(&t, &[("x-canary", "blue")], 100).reason, Reason::Header);
    // case-sensitive value; always/never have no meaning with a value set
    assert_eq!(decide(&t, &[("x-canary", "Blue")], 100).reason, Reason::Weight);
    assert_eq!(decide(&t, &[("x-canary", "never")], 100).reason, Reason::Weight);
    assert_eq!(decide(&t, &[("x-canary", "always")], 100).side, Some(Side::Stable));
}

#[test]
fn header_name_matches_case_insensitively() {
    let t = canary_table("          header: X-CANARY\n", EPS, EPS2);
    assert_eq!(decide(&t, &[("x-canary", "always")], 100).side, Some(Side::Canary));
}

#[test]
fn header_pattern_is_an_unanchored_case_sensitive_search() {
    let t = canary_table("          header: X-Canary\n          headerPattern: 'beta|gamma'\n", EPS, EPS2);
    assert_eq!(decide(&t, &[("x-canary", "users-beta-1")], 100).side, Some(Side::Canary));
    assert_eq!(decide(&t, &[("x-canary", "BETA")], 100).reason, Reason::Weight);
    let anchored =
        canary_table("          header: X-Canary\n          headerPattern: '^(?i)beta$'\n", EPS, EPS2);
    assert_eq!(decide(&anchored, &[("x-canary", "BETA")], 100).side, Some(Side::Canary));
    assert_eq!(decide(&anchored, &[("x-canary", "beta2")], 100).reason, Reason::Weight);
}

#[test]
fn header_value_beats_header_pattern_when_both_are_set() {
    let t = canary_table(
        "          header: X-Canary\n          headerValue: exact\n          headerPattern: '.*'\n",
        EPS,
        EPS2,
    );
    assert_eq!(decide(&t, &[("x-canary", "other")], 100).reason, Reason::Weight);
    assert_eq!(decide(&t, &[("x-canary", "exact")], 100).side, Some(Side::Canary));
}

#[test]
fn header_always_and_never_are_case_sensitive_keywords() {
    let t = canary_table("          header: X-Canary\n          weight: 50\n", EPS, EPS2);
    assert_eq!(
        decide(&t, &[("x-canary", "always")], 100),
        Decision { side: Some(Side::Canary), reason: Reason::Header, fell_back: false }
    );
    assert_eq!(
        decide(&t, &[("x-canary", "never")], 1),
        Decision { side: Some(Side::Stable), reason: Reason::Header, fell_back: false }
    );
    assert_eq!(decide(&t, &[("x-canary", "Always")], 100).reason, Reason::Weight);
    assert_eq!(decide(&t, &[("x-canary", "")], 100).reason, Reason::Weight);
}

#[test]
fn never_header_beats_always_cookie() {
    let t = canary_table("          header: X-Canary\n          cookie: canary\n", EPS, EPS2);
    let d = decide(&t, &[("x-canary", "never"), ("cookie", "canary=always")], 1);
    assert_eq!((d.side, d.reason), (Some(Side::Stable), Reason::Header));
}

#[test]
fn unmatched_header_falls_through_to_the_cookie() {
    let t = canary_table("          header: X-Canary\n          cookie: canary\n", EPS, EPS2);
    let d = decide(&t, &[("x-canary", "maybe"), ("cookie", "a=b; canary=always")], 100);
    assert_eq!((d.side, d.reason), (Some(Side::Canary), Reason::Cookie));
}

#[test]
fn repeated_header_values_are_joined_with_comma_space() {
    let t = canary_table("          header: X-Canary\n          headerValue: 'a, b'\n", EPS, EPS2);
    assert_eq!(decide(&t, &[("x-canary", "a"), ("x-canary", "b")], 100).side, Some(Side::Canary));
    // "always" repeated is "always, always": not the keyword.
    let k = canary_table("          header: X-Canary\n", EPS, EPS2);
    assert_eq!(decide(&k, &[("x-canary", "always"), ("x-canary", "always")], 100).reason, Reason::Weight);
}

#[test]
fn invalid_pattern_from_a_lenient_source_sends_header_carriers_to_stable_and_stops() {
    let t = canary_table(
        "          header: X-Canary\n          invalidHeaderPattern: '(unclosed'\n          weight: 100\n          cookie: c\n",
        EPS,
        EPS2,
    );
    let d = decide(&t, &[("x-canary", "anything"), ("cookie", "c=always")], 1);
    assert_eq!((d.side, d.reason), (Some(Side::Stable), Reason::Header));
    // without the header the weight applies
    assert_eq!(decide(&t, &[], 1).side, Some(Side::Canary));
}

// ---------- cookie stage ----------

#[test]
fn cookie_always_and_never_force_the_side_and_other_values_fall_through() {
    let t = canary_table("          cookie: Canary-User\n          weight: 50\n", EPS, EPS2);
    assert_eq!(decide(&t, &[("cookie", "canary-user=always")], 100).side, Some(Side::Canary));
    assert_eq!(decide(&t, &[("cookie", "x=1;  Canary-User = never")], 1).side, Some(Side::Stable));
    assert_eq!(
        decide(&t, &[("cookie", "x=1"), ("cookie", "canary-user=always")], 100).reason,
        Reason::Cookie
    );
    assert_eq!(decide(&t, &[("cookie", "canary-user=Always")], 100).reason, Reason::Weight);
}

#[test]
fn cookie_values_are_compared_as_received_like_nginx_cookie_variables() {
    let t = canary_table("          cookie: canary\n          weight: 50\n", EPS, EPS2);
    let reason = |cookie: &str| decide(&t, &[("cookie", cookie)], 100).reason;
    // Quotes and trailing spaces are part of the value: nothing unquotes or trims it.
    assert_eq!(reason("canary=\"always\""), Reason::Weight);
    assert_eq!(reason("canary=always ; x=1"), Reason::Weight);
    // A comma also starts a pair, but only `;` ends a value.
    assert_eq!(reason("x=1, canary=always"), Reason::Cookie);
    assert_eq!(reason("canary=always, x=1"), Reason::Weight);
    // The first pair of that name decides, even when its value means nothing.
    assert_eq!(reason("canary=maybe; canary=always"), Reason::Weight);
    // nginx consumes the byte after a bare name before it looks for the next pair.
    assert_eq!(reason("canary;canary=always"), Reason::Weight);
    assert_eq!(reason("canaryx=1; canary=always"), Reason::Cookie);
    // Non-ASCII bytes elsewhere in the line do not hide the cookie.
    let mut headers = http::HeaderMap::new();
    headers
        .insert(http::header::COOKIE, http::HeaderValue::from_bytes(b"n=\xe9t\xe9; canary=always").unwrap());
    assert_eq!(crate::canary::cookie_value(&headers, "canary"), Some(&b"always"[..]));
}

// ---------- weight stage ----------

#[test]
fn weight_zero_never_draws_and_never_picks_canary() {
    let t = canary_table("          weight: 0\n", EPS, EPS2);
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let d = pick_backend(route, &HeaderMap::new(), |_| panic!("no draw at weight 0"));
    assert_eq!(d.side, Some(Side::Stable));
}

#[test]
fn weight_equal_to_total_always_picks_canary_without_a_draw() {
    let t = canary_table("          weight: 1000\n          weightTotal: 1000\n", EPS, EPS2);
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let d = pick_backend(route, &HeaderMap::new(), |_| panic!("no draw at weight = total"));
    assert_eq!(d.side, Some(Side::Canary));
}

#[test]
fn weight_draw_is_canary_iff_r_at_most_weight() {
    let t = canary_table("          weight: 10\n", EPS, EPS2);
    assert_eq!(decide(&t, &[], 1).side, Some(Side::Canary));
    assert_eq!(decide(&t, &[], 10).side, Some(Side::Canary));
    assert_eq!(decide(&t, &[], 11).side, Some(Side::Stable));
    assert_eq!(decide(&t, &[], 100).side, Some(Side::Stable));
}

/// Count canary picks over `n` seeded draws and check they fall within 5 sigma.
fn assert_share(weight: u32, total: u32, n: u32) {
    let t = canary_table(&format!("          weight: {weight}\n          weightTotal: {total}\n"), EPS, EPS2);
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let h = HeaderMap::new();
    let canary = (0..n)
        .filter(|_| pick_backend(route, &h, |total| rng.u32(1..=total)).side == Some(Side::Canary))
        .count() as f64;
    let p = weight as f64 / total as f64;
    let mean = p * n as f64;
    let sigma = (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (canary - mean).abs() <= 5.0 * sigma,
        "{weight}/{total}: {canary} canary of {n}, expected {mean} ± {}",
        5.0 * sigma
    );
}

#[test]
fn weight_10_of_100_splits_within_five_sigma() {
    assert_share(10, 100, 200_000);
}

#[test]
fn weight_1_of_1000_splits_within_five_sigma() {
    assert_share(1, 1000, 1_000_000);
}

#[test]
fn weight_total_below_100_is_honoured_d2() {
    // ingress-nginx raises 10 to 100 (5 of 10 → 5 %); weir honours 50 %.
    assert_share(5, 10, 100_000);
}

#[test]
fn header_and_cookie_still_apply_at_weight_zero() {
    let t = canary_table("          header: X-Canary\n          cookie: c\n", EPS, EPS2);
    assert_eq!(decide(&t, &[("x-canary", "always")], 1).side, Some(Side::Canary));
    assert_eq!(decide(&t, &[("cookie", "c=always")], 1).side, Some(Side::Canary));
}

// ---------- availability (D3) ----------

#[test]
fn weighted_choice_of_an_empty_main_falls_back_to_canary_d3() {
    let t = canary_table("          weight: 0\n", "", EPS2);
    assert_eq!(
        decide(&t, &[], 100),
        Decision { side: Some(Side::Canary), reason: Reason::Weight, fell_back: true }
    );
}

#[test]
fn weighted_choice_of_an_empty_canary_falls_back_to_main_d3() {
    let t = canary_table("          weight: 100\n", EPS, "");
    assert_eq!(
        decide(&t, &[], 1),
        Decision { side: Some(Side::Stable), reason: Reason::Weight, fell_back: true }
    );
}

#[test]
fn explicit_choice_of_an_empty_side_is_honoured_as_unavailable_d3() {
    let t = canary_table("          header: X-Canary\n          weight: 100\n", "", EPS2);
    assert_eq!(
        decide(&t, &[("x-canary", "never")], 1),
        Decision { side: None, reason: Reason::Header, fell_back: false }
    );
}

#[test]
fn no_side_can_serve_when_both_are_empty() {
    let t = canary_table("          weight: 50\n", "", "");
    assert_eq!(decide(&t, &[], 1).side, None);
}

// ---------- validation (D5 and friends) ----------

#[test]
fn invalid_pattern_in_a_file_rejects_the_document_d5() {
    let errs = errors(
        "schema: weir/v1
hosts:
  - host: a.example.com
    rules:
      - path: /
        backend: { endpoints: ['127.0.0.1:1'] }
        canary:
          backend: { endpoints: ['127.0.0.1:2'] }
          header: X-Canary
          headerPattern: '(?=lookahead)'
",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0]
            .starts_with("hosts[0].rules[0].canary.headerPattern: \"(?=lookahead)\" is not a valid pattern"),
        "{errs:?}"
    );
}

#[test]
fn validation_collects_every_error_with_its_field_path() {
    let errs = errors(
        "schema: weir/v2
hosts:
  - host: a.example.com
    rules:
      - path: /
        backend: { endpoints: ['127.0.0.1:1'] }
  - host: b.example.com
    rules:
      - path: nope
        pathType: Regex
        backend: { endpoints: ['localhost:80', '127.0.0.1:0'], port: 70000 }
  - host: c.example.com
    rules:
      - path: /
        connectTimeout: soon
        backend: { endpoints: [] }
        canary:
          backend: { endpoints: [] }
          weight: -5
          weightTotal: 0
          header: 'bad header'
          cookie: 'a;b'
  - host: 'A.EXAMPLE.com'
  - host: 'x.*.com'
",
    );
    let expected = [
        "schema: \"weir/v2\" is not supported",
        "hosts[1].rules[0].path: \"nope\" must start with '/'",
        "hosts[1].rules[0].pathType: \"Regex\" is not one of",
        "hosts[1].rules[0].backend.port: 70000 is not a port number",
        "hosts[1].rules[0].backend.endpoints[0]: \"localhost:80\" is not an ip:port address",
        "hosts[1].rules[0].backend.endpoints[1]: \"127.0.0.1:0\": port 0 is not allowed",
        "hosts[2].rules[0].connectTimeout: \"soon\" is not a duration",
        "hosts[2].rules[0].canary.weight: -5 is negative",
        "hosts[2].rules[0].canary.weightTotal: 0 must be at least 1",
        "hosts[2].rules[0].canary.header: \"bad header\" is not a valid HTTP header name",
        "hosts[2].rules[0].canary.cookie: \"a;b\" is not a valid cookie name",
        "hosts[3].host: \"a.example.com\" is already defined at hosts[0]",
        "hosts[4].host: \"x.*.com\": a wildcard must be the whole first label",
    ];
    for want in expected {
        assert!(errs.iter().any(|e| e.starts_with(want)), "missing {want:?} in {errs:#?}");
    }
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
}

#[test]
fn unknown_fields_and_wrong_types_are_parse_errors() {
    for doc in ["schema: weir/v1\nhostz: []\n", "schema: weir/v1\nhosts: {}\n", "::: not yaml"] {
        assert!(matches!(RouteTable::parse(doc), Err(ConfigError::Parse(_))), "{doc}");
    }
}

#[test]
fn duplicate_paths_of_one_host_are_rejected_but_exact_and_prefix_may_share_a_path() {
    let errs = errors(
        "schema: weir/v1
hosts:
  - rules:
      - { path: /foo, backend: {} }
      - { path: /foo/, backend: {} }
      - { path: /foo, pathType: Exact, backend: {} }
",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("hosts[0].rules[1].path:"), "{errs:?}");
}

#[test]
fn weight_above_total_in_a_file_is_rejected() {
    let errs = errors(
        "schema: weir/v1
hosts:
  - rules:
      - path: /
        backend: {}
        canary: { backend: {}, weight: 150 }
",
    );
    assert_eq!(errs, vec!["hosts[0].rules[0].canary.weight: 150 exceeds weightTotal 100".to_string()]);
}

#[test]
fn the_examples_validate() {
    for (name, text) in [
        ("basic.yaml", include_str!("../examples/basic.yaml")),
        ("canary.yaml", include_str!("../examples/canary.yaml")),
    ] {
        if let Err(e) = RouteTable::parse(text) {
            panic!("config/examples/{name}: {e}");
        }
    }
}

// ---------- matching ----------

const MATCH_TABLE: &str = "schema: weir/v1
hosts:
  - host: app.example.com
    rules:
      - { path: /, backend: { service: app-root } }
      - { path: /foo, backend: { service: app-foo } }
      - { path: /foo, pathType: Exact, backend: { service: app-foo-exact } }
      - { path: /foo/bar/, pathType: ImplementationSpecific, backend: { service: app-foobar } }
  - host: '*.example.com'
    rules:
      - { path: /, backend: { service: wild } }
  - host: api.example.com
    rules:
      - { path: /v1, backend: { service: api-v1 } }
  - rules:
      - { path: /, backend: { service: default } }
";

#[test]
fn a_route_host_is_the_host_part_lower_cased() {
    use crate::matching::RouteHost;
    for (authority, host) in [
        ("app.example.com", "app.example.com"),
        ("APP.Example.COM:8443", "app.example.com"),
        ("app.example.com.", "app.example.com"),
        ("user@App.Test:80", "app.test"),
        ("[::1]:80", "[::1]"),
        ("", ""),
    ] {
        assert_eq!(RouteHost::new(authority).as_str(), host, "{authority}");
    }
    let t = table(MATCH_TABLE);
    let made = RouteHost::new("APP.Example.COM:8443");
    let got = t.route_for(&made, "/x").unwrap().map(|r| r.stable.id.service.as_str());
    assert_eq!(got, Some("app-root"));
    assert!(t.names(&made));
    assert!(!t.names(&RouteHost::new("a.b.example.com")));
}

#[test]
fn host_and_path_matching_follows_the_ingress_spec() {
    let t = table(MATCH_TABLE);
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("app.example.com", "/", Some("app-root")),
        ("APP.Example.COM:8443", "/x", Some("app-root")),
        ("app.example.com.", "/x", Some("app-root")),
        ("app.example.com", "/foo", Some("app-foo-exact")),
        ("app.example.com", "/foo/", Some("app-foo")),
        ("app.example.com", "/foo/baz", Some("app-foo")),
        ("app.example.com", "/foobar", Some("app-root")),
        ("app.example.com", "/foo/bar", Some("app-foobar")),
        ("app.example.com", "/foo/bar/baz", Some("app-foobar")),
        ("app.example.com", "/foo/barn", Some("app-foo")),
        ("app.example.com", "/foo/x/../bar", Some("app-foobar")),
        ("app.example.com", "//foo//bar", Some("app-foobar")),
        ("app.example.com", "/%66oo", Some("app-foo-exact")),
        ("x.example.com", "/", Some("wild")),
        ("a.b.example.com", "/", Some("default")),
        ("example.com", "/", Some("default")),
        ("api.example.com", "/v1/users", Some("api-v1")),
        // an exact host that matched keeps the request: no fall-through to the default server
        ("api.example.com", "/v2", None),
        ("[::1]:80", "/", Some("default")),
        ("", "/", Some("default")),
    ];
    for (host, path, want) in cases {
        let got = t.match_route(host, path).unwrap().map(|r| r.stable.id.service.as_str());
        assert_eq!(got, *want, "{host} {path}");
    }
}

#[test]
fn without_a_default_server_unknown_hosts_match_nothing() {
    let t =
        table("schema: weir/v1\nhosts:\n  - host: a.example.com\n    rules: [{ path: /, backend: {} }]\n");
    assert!(t.match_route("b.example.com", "/").unwrap().is_none());
}

#[test]
fn malformed_paths_are_errors_not_matches() {
    let t = table(MATCH_TABLE);
    for bad in ["/%zz", "/%", "/../etc", "/a/%00", "*"] {
        assert!(t.match_route("app.example.com", bad).is_err(), "{bad}");
    }
}

// ---------- TLS, body limits, protocols ----------

fn self_signed(name: &str) -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("rcgen");
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

fn indent(pem: &str, by: usize) -> String {
    pem.lines().map(|l| format!("{}{l}\n", " ".repeat(by))).collect()
}

#[test]
fn tls_hosts_carry_parsed_certificates_and_redirect_by_default() {
    let (cert, key) = self_signed("app.example.com");
    let t = table(&format!(
        "schema: weir/v1
tls:
  defaultCertificate:
    certificate: |
{c}    key: |
{k}hosts:
  - host: app.example.com
    tls:
      certificate: |
{c2}      key: |
{k2}    rules: [{{ path: /, backend: {{}} }}]
  - host: plain.example.com
    rules: [{{ path: /, backend: {{}} }}]
",
        c = indent(&cert, 6),
        k = indent(&key, 6),
        c2 = indent(&cert, 8),
        k2 = indent(&key, 8)
    ));
    assert_eq!(t.certificates().len(), 1);
    assert_eq!(t.certificates()[0].name, "app.example.com");
    assert!(t.default_certificate().is_some());
    assert!(t.match_route("app.example.com", "/").unwrap().unwrap().ssl_redirect);
    assert!(!t.match_route("plain.example.com", "/").unwrap().unwrap().ssl_redirect);
    // Debug output never shows the key.
    let debug = format!("{:?}", t.certificates()[0]);
    assert!(!debug.contains("PRIVATE KEY") && debug.contains("<redacted>"), "{debug}");
}

#[test]
fn bad_tls_material_is_reported_without_echoing_the_key() {
    let errs = errors(
        "schema: weir/v1
hosts:
  - host: a.example.com
    tls: { certificate: 'not pem', key: 'SECRET-KEY-MATERIAL' }
    rules: [{ path: /, backend: {} }]
  - host: b.example.com
    tls: { certificateFile: /etc/cert.pem, keyFile: /etc/key.pem }
    rules: [{ path: /, backend: {} }]
  - tls: { certificate: x, key: y }
    rules: [{ path: /, backend: {} }]
",
    );
    let joined = errs.join("\n");
    assert!(!joined.contains("SECRET-KEY-MATERIAL"), "{joined}");
    for want in [
        "hosts[0].tls.certificate: holds no PEM CERTIFICATE block",
        "hosts[0].tls.key: is not a PEM private key",
        "hosts[1].tls.certificateFile: file paths are read only from a config file",
        "hosts[1].tls.keyFile: file paths are read only from a config file",
        "hosts[1].tls.certificate: is required",
        "hosts[1].tls.key: is required",
        "hosts[2].tls: the default server has no name to match SNI",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(want)), "missing {want:?} in {errs:#?}");
    }
}

#[test]
fn redacted_documents_hide_every_private_key() {
    let doc: crate::TableDoc = serde_yaml_ng::from_str(
        "schema: weir/v1
tls: { defaultCertificate: { certificate: C, key: K1 } }
hosts:
  - host: a.example.com
    tls: { certificate: C, key: K2 }
",
    )
    .unwrap();
    let shown = serde_json::to_string(&doc.redacted()).unwrap();
    assert!(!shown.contains("K1") && !shown.contains("K2"), "{shown}");
    assert_eq!(shown.matches(crate::wire::REDACTED).count(), 2, "{shown}");
}

#[test]
fn body_limits_default_to_one_mebibyte_and_parse_nginx_sizes() {
    let t = table(
        "schema: weir/v1
defaults: { maxBodySize: 8m }
hosts:
  - rules:
      - { path: /, backend: {} }
      - { path: /a, maxBodySize: 512k, backend: {} }
      - { path: /b, maxBodySize: '0', backend: {} }
      - { path: /c, maxBodySize: '1024', backend: {} }
",
    );
    let limit = |p: &str| t.match_route("x", p).unwrap().unwrap().max_body_size;
    assert_eq!(limit("/"), Some(8 << 20));
    assert_eq!(limit("/a"), Some(512 << 10));
    assert_eq!(limit("/b"), None);
    assert_eq!(limit("/c"), Some(1024));
    let plain = table("schema: weir/v1\nhosts: [{ rules: [{ path: /, backend: {} }] }]\n");
    assert_eq!(plain.match_route("x", "/").unwrap().unwrap().max_body_size, Some(1 << 20));
    let errs = errors("schema: weir/v1\nhosts: [{ rules: [{ path: /, maxBodySize: 10q, backend: {} }] }]\n");
    assert!(errs[0].starts_with("hosts[0].rules[0].maxBodySize: \"10q\" is not a size"), "{errs:?}");
}

#[test]
fn backend_protocols_follow_ingress_nginx_names() {
    let t = table(
        "schema: weir/v1
hosts:
  - rules:
      - { path: /, backend: {} }
      - { path: /g, protocol: GRPC, backend: {} }
      - { path: /s, protocol: HTTPS, backend: {} }
      - { path: /gs, protocol: GRPCS, backend: {} }
",
    );
    let proto = |p: &str| t.match_route("x", p).unwrap().unwrap().protocol;
    assert_eq!(
        [proto("/"), proto("/g"), proto("/s"), proto("/gs")],
        [crate::Protocol::Http, crate::Protocol::Grpc, crate::Protocol::Https, crate::Protocol::Grpcs]
    );
    let errs = errors("schema: weir/v1\nhosts: [{ rules: [{ path: /, protocol: FCGI, backend: {} }] }]\n");
    assert!(errs[0].starts_with("hosts[0].rules[0].protocol: \"FCGI\" is not one of"), "{errs:?}");
}

#[test]
fn a_host_named_underscore_is_not_the_default_server() {
    // Found by the translate fuzz target: a TLS host `_` beside a default server made the
    // controller's table look like it defined the default server twice.
    let yaml = "schema: weir/v1\nhosts:\n  - rules:\n      - path: /\n        backend: {endpoints: ['127.0.0.1:1']}\n  - host: _\n    rules:\n      - path: /\n        backend: {endpoints: ['127.0.0.1:2']}\n";
    let t = RouteTable::parse(yaml).expect("a host `_` and the default server are two hosts");
    assert!(t.match_route("_", "/").unwrap().is_some());
    assert!(t.match_route("other.example", "/").unwrap().is_some());
    let twice = "schema: weir/v1\nhosts:\n  - rules: []\n  - rules: []\n";
    assert!(RouteTable::parse(twice).is_err(), "two default servers are still refused");
}
