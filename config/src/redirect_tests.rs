//! A rule's `redirect` and `appRoot` in the route model: the Location each builds from a
//! request (nginx's variables, a path completed with the request's scheme and host), and a
//! field error for every mistake.

use crate::test_support::{field_errors, one_host};
use crate::{ConfigError, RequestParts, RouteTable};

fn table(extra: &str) -> Result<RouteTable, ConfigError> {
    one_host(&format!(
        "      - path: /
        backend: {{ endpoints: [127.0.0.1:1] }}
{extra}"
    ))
}

fn location(redirect: &str, parts: &RequestParts<'_>) -> (u16, String) {
    let t = table(&format!("        redirect: {redirect}\n")).expect("valid");
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    let r = route.redirect.as_ref().expect("a redirect");
    (r.code.as_u16(), r.location(parts))
}

#[test]
fn a_redirect_expands_nginx_variables_and_completes_a_path() {
    let req = RequestParts { scheme: "https", host: "app.example.com", path: "/a/b", query: Some("x=1&y") };
    let bare = RequestParts { query: None, ..req };
    let cases = [
        ("{ url: 'https://www.google.com' }", &req, 301, "https://www.google.com"),
        (
            "{ url: 'https://new.example.com$request_uri', code: 308 }",
            &req,
            308,
            "https://new.example.com/a/b?x=1&y",
        ),
        (
            "{ url: 'https://new.example.com$request_uri', code: 308 }",
            &bare,
            308,
            "https://new.example.com/a/b",
        ),
        (
            "{ url: 'http://x.test$uri?from=$host&q=$args', code: 302 }",
            &req,
            302,
            "http://x.test/a/b?from=app.example.com&q=x=1&y",
        ),
        ("{ url: '/moved', code: 307 }", &req, 307, "https://app.example.com/moved"),
        (
            "{ url: '$scheme://example.com$request_uri', code: 308 }",
            &req,
            308,
            "https://example.com/a/b?x=1&y",
        ),
        ("{ url: 'https://q.test/?s=$query_string', code: 303 }", &bare, 303, "https://q.test/?s="),
    ];
    for (redirect, parts, code, want) in cases {
        assert_eq!(location(redirect, parts), (code, want.to_string()), "{redirect}");
    }
}

#[test]
fn every_bad_redirect_or_app_root_is_a_field_error_with_its_reason() {
    let at = "hosts[0].rules[0]";
    let cases = [
        (
            "redirect: { url: 'ftp://files.example.com' }",
            "redirect.url",
            "not an absolute http:// or https:// URL",
        ),
        ("redirect: { url: 'example.com/new' }", "redirect.url", "nor a path starting with /"),
        ("redirect: { url: '//example.com/new' }", "redirect.url", "nor a path starting with /"),
        ("redirect: { url: 'https://a.test/b c' }", "redirect.url", "not an absolute"),
        (
            "redirect: { url: 'https://a.test/$request_id' }",
            "redirect.url",
            "uses $request_id, which weir does not provide",
        ),
        ("redirect: { url: 'https://a.test/', code: 304 }", "redirect.code", "304 is not a redirect status"),
        ("redirect: { url: 'https://a.test/', code: 200 }", "redirect.code", "200 is not a redirect status"),
        ("redirect: { url: 'https://a.test/', code: -1 }", "redirect.code", "-1 is not a redirect status"),
        ("appRoot: app1", "appRoot", "is not a path like /app"),
        ("appRoot: /", "appRoot", "is not a path like /app"),
        ("appRoot: '/a b'", "appRoot", "is not a path like /app"),
        ("appRoot: '/$uri'", "appRoot", "is not a path like /app"),
        (
            "deny: { reason: refused }\n        redirect: { url: 'https://a.test/' }",
            "deny",
            "cannot also redirect",
        ),
    ];
    for (extra, field, reason) in cases {
        let errs = field_errors(table(&format!("        {extra}\n")));
        assert_eq!(errs.len(), 1, "{extra}: {errs:?}");
        assert_eq!(errs[0].0, format!("{at}.{field}"), "{extra}");
        assert!(errs[0].1.contains(reason), "{extra}: {:?}", errs[0].1);
    }
    // An unknown field is refused, not ignored.
    let r = table("        redirect: { url: 'https://a.test/', status: 302 }\n");
    assert!(matches!(r, Err(ConfigError::Parse(ref e)) if e.to_string().contains("status")), "{r:?}");
}

#[test]
fn an_app_root_is_kept_as_written() {
    let t = table("        appRoot: /app1\n").expect("valid");
    let route = t.match_route("app.example.com", "/").unwrap().unwrap();
    assert_eq!(route.app_root.as_deref(), Some("/app1"));
    assert!(route.redirect.is_none());
}
