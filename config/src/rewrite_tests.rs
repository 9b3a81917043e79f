//! Regex hosts and rewrites with ingress-nginx's documented examples: the match order
//! across rules of one host, case-insensitive patterns anchored at the start only, the
//! whole-path replacement with capture groups, and a field error for every mistake.

use crate::test_support::{field_errors, one_host};
use crate::{ConfigError, RouteTable};

fn regex_host(rules: &[(&str, &str)]) -> Result<RouteTable, ConfigError> {
    let mut yaml = String::from(
        "schema: weir/v1\nhosts:\n  - host: app.example.com\n    regexPaths: true\n    rules:\n",
    );
    for (path, extra) in rules {
        yaml.push_str(&format!(
            "      - path: '{path}'\n        pathType: ImplementationSpecific\n        backend: {{ service: '{}', endpoints: [] }}\n{extra}",
            service(path)
        ));
    }
    RouteTable::parse(&yaml)
}

/// A service name per path, to see which rule served.
fn service(path: &str) -> String {
    path.bytes().map(|b| if b.is_ascii_alphanumeric() { char::from(b) } else { '-' }).collect()
}

fn served(t: &RouteTable, path: &str) -> Option<String> {
    t.match_route("app.example.com", path).unwrap().map(|r| r.stable.id.service.clone())
}

#[test]
fn a_regex_host_tries_the_longest_path_first_case_insensitive_and_anchored_at_the_start() {
    // ingress-nginx's "ingress path matching" example: /foo/bar/bar goes to the longer
    // pattern /foo/bar/[A-Z0-9]{3}, not the literal /foo/bar/bar.
    let t = regex_host(&[("/foo/bar/bar", ""), ("/foo/bar/[A-Z0-9]{3}", ""), ("/foo/.+", ""), ("/", "")])
        .expect("valid");
    let cases = [
        ("/foo/bar/bar", "-foo-bar--A-Z0-9--3-"),
        ("/foo/bar/BAZ", "-foo-bar--A-Z0-9--3-"),
        ("/foo/bar/ba", "-foo---"),
        ("/FOO/x", "-foo---"),
        ("/foo", "-"),
        ("/other", "-"),
    ];
    for (path, want) in cases {
        assert_eq!(served(&t, path).as_deref(), Some(want), "{path}");
    }
    // Anchored at the start only: /api matches /apis and /api-v2, as nginx's `~* "^/api"`.
    let t = regex_host(&[("/api", ""), ("/api/v1/", "")]).expect("valid");
    for (path, want) in [
        ("/apis", Some("-api")),
        ("/api-v2/x", Some("-api")),
        ("/API/v1/x", Some("-api-v1-")),
        ("/x/api", None),
    ] {
        assert_eq!(served(&t, path).as_deref(), want, "{path}");
    }
    // The literal a pattern starts with only narrows the search: an optional character, an
    // alternation outside groups, a non-ASCII path are still matched by the pattern itself.
    let t = regex_host(&[("/api/?x", ""), ("/a|/bc", ""), ("/k8s", ""), ("/", "")]).expect("valid");
    for (path, want) in [
        ("/apix", "-api--x"),
        ("/api/x", "-api--x"),
        ("/z/bc", "-a--bc"),
        ("/\u{212A}8s", "-k8s"),
        ("/K8S", "-k8s"),
    ] {
        assert_eq!(served(&t, path).as_deref(), Some(want), "{path}");
    }
    // Equal lengths: the greater path first (ingress-nginx's sort), whatever the file order.
    let t = regex_host(&[("/a.", ""), ("/ab", "")]).expect("valid");
    assert_eq!(served(&t, "/ab").as_deref(), Some("-ab"));
}

fn rewritten(t: &RouteTable, path: &str, query: Option<&str>) -> (String, Option<String>) {
    let route = t.match_route("app.example.com", path).unwrap().expect("a route");
    let normalized = crate::matching::normalize_request_path(path).unwrap();
    let r = route.rewrite.as_ref().expect("a rewrite").apply(&normalized, query).expect("applies");
    (r.path_and_query, r.prefix)
}

#[test]
fn a_rewrite_replaces_the_whole_path_with_capture_groups_as_nginx_does() {
    // ingress-nginx's rewrite example: /something(/|$)(.*) → /$2.
    let t = regex_host(&[
        ("/something(/|$)(.*)", "        rewrite: { target: '/$2', forwardedPrefix: /something }\n"),
        ("/api/(v[0-9]+)/(.*)", "        rewrite: { target: '/$2/$1' }\n"),
        ("/whole", "        rewrite: { target: / }\n"),
    ])
    .expect("valid");
    let cases = [
        ("/something", None, "/"),
        ("/something/", None, "/"),
        ("/something/new", None, "/new"),
        ("/something/new/page", Some("a=1&b"), "/new/page?a=1&b"),
        ("/SOMETHING/Case", None, "/Case"),
        ("/api/v2/users/7", None, "/users/7/v2"),
        ("/whole/of/it", Some("q"), "/?q"),
        // captures come from the normalized path, and the result is escaped again
        ("/something/a%20b", None, "/a%20b"),
        ("/something/a%20b/../c%2525", None, "/c%2525"),
    ];
    for (path, query, want) in cases {
        assert_eq!(rewritten(&t, path, query).0, want, "{path}");
    }
    assert_eq!(rewritten(&t, "/something/x", None).1.as_deref(), Some("/something"));
    assert_eq!(rewritten(&t, "/api/v1/x", None).1, None);
    // Outside a regex host the path is literal: no groups, and `.` is a dot.
    let t = one_host(
        "      - path: /v1.0\n        backend: { endpoints: [] }\n        rewrite: { target: /v1 }\n",
    )
    .expect("valid");
    assert_eq!(rewritten(&t, "/v1.0/x", None).0, "/v1");
}

#[test]
fn every_bad_pattern_or_rewrite_is_a_field_error_naming_the_reason() {
    let at = "hosts[0].rules[0]";
    let cases: [(&str, &str, &str, &str); 8] = [
        ("/a(b", "", "path", "is not a regular expression weir runs"),
        ("/(?=x)", "", "path", "PCRE-only syntax"),
        ("/(a)\\1", "", "path", "PCRE-only syntax"),
        ("/a b", "", "path", "contains a space"),
        (
            "/(a)(b)",
            "        rewrite: { target: '/$3' }\n",
            "rewrite.target",
            "$3 names a capture group the path does not have (it has 2)",
        ),
        (
            "/(a)",
            "        rewrite: { target: '/$x' }\n",
            "rewrite.target",
            "a $ must start a capture group reference",
        ),
        ("/(a)", "        rewrite: { target: 'new' }\n", "rewrite.target", "must start with / or a $n group"),
        (
            "/(a)",
            "        rewrite: { target: '/', forwardedPrefix: '/p?q' }\n",
            "rewrite.forwardedPrefix",
            "contains a space, control character, '?' or '#'",
        ),
    ];
    for (path, extra, field, reason) in cases {
        let errs = field_errors(regex_host(&[(path, extra)]));
        assert!(!errs.is_empty(), "{path} {extra}");
        assert_eq!(errs[0].0, format!("{at}.{field}"), "{path} {extra}: {errs:?}");
        assert!(errs[0].1.contains(reason), "{path} {extra}: {:?}", errs[0].1);
    }
    // `?` is a pattern's quantifier in a regex host, and not a path character elsewhere.
    regex_host(&[("/api/?(.*)", "")]).expect("a regex host takes ?");
    let errs = field_errors(one_host("      - path: /api/?x\n        backend: { endpoints: [] }\n"));
    assert!(errs[0].1.contains("'?'"), "{errs:?}");
    // A literal path has no groups to refer to.
    let errs = field_errors(one_host(
        "      - path: /v1\n        backend: { endpoints: [] }\n        rewrite: { target: /$1 }\n",
    ));
    assert!(errs[0].1.contains("it has 0"), "{errs:?}");
    // The same pattern twice is one rule defined twice.
    let errs = field_errors(regex_host(&[("/a", ""), ("/a", "")]));
    assert!(errs[0].0.ends_with("rules[1].path") && errs[0].1.contains("duplicates"), "{errs:?}");
}

#[test]
fn an_upstream_host_is_a_host_with_an_optional_port() {
    for good in ["api.internal", "api.internal:8443", "10.0.0.7", "[fd00::7]:80"] {
        let t = one_host(&format!(
            "      - path: /\n        backend: {{ endpoints: [] }}\n        upstreamHost: '{good}'\n"
        ))
        .unwrap_or_else(|e| panic!("{good}: {e}"));
        let route = t.match_route("app.example.com", "/").unwrap().unwrap();
        assert_eq!(route.upstream_host.as_ref().map(|h| h.to_str().unwrap()), Some(good));
    }
    for bad in
        ["", "api internal", "api.internal:0", "api.internal:http", "*.example.com", "fd00::7", "$host"]
    {
        let errs = field_errors(one_host(&format!(
            "      - path: /\n        backend: {{ endpoints: [] }}\n        upstreamHost: '{bad}'\n"
        )));
        assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
        assert_eq!(errs[0].0, "hosts[0].rules[0].upstreamHost", "{bad}");
        assert!(errs[0].1.contains("is not a host name or address"), "{bad}: {errs:?}");
    }
}

/// A trailing `(.*)` is taken off the compiled pattern (the one-pass engine then stops at the
/// end of the rest); every group must still be what the whole pattern's leftmost-first match
/// gives, including where the rest could match in more than one way and where a line feed ends
/// the tail.
#[test]
fn a_trailing_any_group_gives_the_groups_of_the_whole_pattern() {
    let patterns = [
        "/app(/|$)(.*)",
        "/(a|ab)(b*)(.*)",
        "/(v[0-9]+)/(.*)",
        "/x(.*)",
        "(.*)",
        "/(?:api)?(/?)(.*)",
        "/((a+)(b?))(.*)",
        "/a(.*)(.*)",
        "/b(.*?)",
        "/c(.+)",
        "/d((.*))",
    ];
    let paths = [
        "/app",
        "/app/",
        "/APP/x/y",
        "/abbbc",
        "/ab",
        "/v12/orders/1",
        "/x",
        "/",
        "/api/t",
        "/aab/z",
        "/a\nb",
        "/app/a\nb",
        "/b/c",
        "/c/d",
        "/dd",
    ];
    let mut split = 0;
    for pattern in patterns {
        let groups = crate::rewrite::check_pattern(pattern).unwrap();
        let target = format!("/{}=", (1..=groups).map(|g| format!("=${g}")).collect::<String>());
        let mut errs = Vec::new();
        let rw = crate::rewrite::Rewrite::new(&mut errs, "r", pattern, true, &target, None).expect(pattern);
        split += usize::from(rw.splits_tail());
        let whole = regex::Regex::new(&format!("(?i)^{pattern}")).unwrap();
        for path in paths {
            let want = whole.captures(path).map(|c| {
                let texts: String =
                    (1..c.len()).map(|g| format!("={}", c.get(g).map_or("", |m| m.as_str()))).collect();
                format!("/{texts}=")
            });
            let got = rw.apply(path, None).map(|r| r.path_and_query.replace("%0A", "\n"));
            assert_eq!(got, want, "{pattern} on {path:?}");
        }
    }
    assert_eq!(split, 8, "the patterns whose tail is taken off");
}
