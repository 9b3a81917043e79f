//! CORS in the file format: origins as ingress-nginx accepts them, and a field error for
//! every mistake.

use http::HeaderValue;

use crate::test_support::{field_errors, one_host};
use crate::{ConfigError, RouteTable};

fn with_cors(cors: &str) -> Result<RouteTable, ConfigError> {
    one_host(&format!("      - path: /\n        backend: {{ endpoints: [] }}\n        cors: {cors}\n"))
}

#[test]
fn listed_origins_match_whole_case_insensitive_one_label_for_a_star() {
    let t = with_cors("{ allowOrigins: ['https://*.example.org', 'http://localhost:3000', 'null'] }")
        .expect("valid");
    let cors = t.match_route("app.example.com", "/").unwrap().unwrap().cors.as_ref().expect("cors");
    let allowed = |o: &str| cors.allow_origin(Some(&HeaderValue::from_str(o).unwrap())).is_some();
    for o in ["https://api.example.org", "HTTPS://API.Example.org", "http://localhost:3000", "null"] {
        assert!(allowed(o), "{o}");
    }
    for o in [
        "https://example.org",
        "https://a.b.example.org",
        "http://localhost:30001",
        "https://api.example.org.evil",
        "xhttp://localhost:3000",
    ] {
        assert!(!allowed(o), "{o}");
    }
    assert!(cors.allow_origin(None).is_none(), "no Origin, no CORS");
    let any = with_cors("{}").expect("valid");
    let cors = any.match_route("app.example.com", "/").unwrap().unwrap().cors.as_ref().unwrap();
    assert_eq!(cors.allow_origin(None), Some(HeaderValue::from_static("*")));
}

#[test]
fn every_bad_cors_field_is_named() {
    let cases = [
        ("{ allowOrigins: [] }", "cors.allowOrigins", "is empty"),
        ("{ allowOrigins: ['*', 'https://a.test'] }", "cors.allowOrigins", "list it alone"),
        ("{ allowOrigins: ['https://a.test/path'] }", "cors.allowOrigins[0]", "is not an origin"),
        ("{ allowOrigins: ['a.test'] }", "cors.allowOrigins[0]", "is not an origin"),
        ("{ allowOrigins: ['HTTPS://a.test'] }", "cors.allowOrigins[0]", "is not an origin"),
        ("{ allowMethods: 'GET; DROP' }", "cors.allowMethods", "is not a comma-separated list of methods"),
        ("{ allowHeaders: 'X-A, ' }", "cors.allowHeaders", "is not a comma-separated list of header names"),
        ("{ exposeHeaders: 'X-A:1' }", "cors.exposeHeaders", "header names or *"),
    ];
    for (cors, field, reason) in cases {
        let errs = field_errors(with_cors(cors));
        assert_eq!(errs.len(), 1, "{cors}: {errs:?}");
        assert_eq!(errs[0].0, format!("hosts[0].rules[0].{field}"), "{cors}");
        assert!(errs[0].1.contains(reason), "{cors}: {:?}", errs[0].1);
    }
}
