//! Routing annotations in translation (issue 17), with ingress-nginx's documented examples:
//! permanent-redirect / temporal-redirect with their codes (temporal wins; a code out of range
//! takes the default, with a diagnostic), app-root, and the values that refuse the Ingress.

use weir_config::wire::RedirectDoc;
use weir_controller::testkit::fixtures::*;
use weir_controller::testkit::world::*;
use weir_controller::translate::Reason;

fn app(annotations: &[(&str, &str)]) -> IngressBuilder {
    annotations.iter().fold(main_app(), |b, (k, v)| b.nginx(k, v))
}

/// (annotations without the prefix, the redirect expected, the diagnostics expected)
type Case = (Vec<(&'static str, &'static str)>, Option<RedirectDoc>, Vec<Reason>);

fn redirect(url: &str, code: i64) -> Option<RedirectDoc> {
    Some(RedirectDoc { url: url.into(), code: Some(code) })
}

#[test]
fn redirects_take_ingress_nginx_s_codes_and_precedence() {
    let h = Some("app.example.com");
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        (vec![("permanent-redirect", "https://www.google.com")], redirect("https://www.google.com", 301), vec![]),
        (vec![("permanent-redirect", "https://www.google.com"), ("permanent-redirect-code", "308")], redirect("https://www.google.com", 308), vec![]),
        (vec![("permanent-redirect", "/new"), ("permanent-redirect-code", "200")], redirect("/new", 301), vec![Reason::InvalidAnnotation]),
        (vec![("temporal-redirect", "https://status.example.com/")], redirect("https://status.example.com/", 302), vec![]),
        (vec![("temporal-redirect", "https://status.example.com/"), ("temporal-redirect-code", "307")], redirect("https://status.example.com/", 307), vec![]),
        (vec![("temporal-redirect", "https://status.example.com/"), ("temporal-redirect-code", "308")], redirect("https://status.example.com/", 302), vec![Reason::InvalidAnnotation]),
        // both: temporal wins, and the permanent code is not read for it
        (vec![("temporal-redirect", "https://t.example.com/"), ("permanent-redirect", "https://p.example.com/"), ("permanent-redirect-code", "308")], redirect("https://t.example.com/", 302), vec![]),
        // a code alone changes nothing
        (vec![("temporal-redirect-code", "307")], None, vec![]),
    ];
    for (annotations, want, diags) in cases {
        let t = world().with(app(&annotations)).run();
        let r = rule(&t, h, "/");
        assert_eq!(r.redirect, want, "{annotations:?}");
        assert!(r.deny.is_none(), "{annotations:?}");
        let got: Vec<Reason> = t.diagnostics.iter().map(|d| d.reason).collect();
        assert_eq!(got, diags, "{annotations:?}: {:?}", t.diagnostics);
    }
}

#[test]
fn a_redirect_weir_would_not_make_as_asked_refuses_the_ingress() {
    for (key, value) in [
        ("permanent-redirect", "https://example.com$request_uri"),
        ("permanent-redirect", "ftp://files.example.com/"),
        ("temporal-redirect", "example.com/new"),
        ("permanent-redirect-code", "abc"),
        ("temporal-redirect-code", "304"),
    ] {
        let mut annotations = vec![(key, value)];
        if key == "temporal-redirect-code" {
            annotations.push(("temporal-redirect", "https://t.example.com/"));
        }
        let t = world().with(app(&annotations)).run();
        let r = rule(&t, Some("app.example.com"), "/");
        assert!(r.deny.is_some() && r.redirect.is_none() && r.app_root.is_none(), "{key}={value:?}: {r:?}");
        let d = t.diagnostics.iter().find(|d| d.reason == Reason::AnnotationRefused).expect("a refusal");
        assert!(d.message.contains(key), "{}", d.message);
    }
}

#[test]
fn app_root_is_kept_and_a_bad_one_dropped_with_a_diagnostic() {
    let h = Some("app.example.com");
    let t = world().with(app(&[("app-root", "/app1")])).run();
    assert_eq!(rule(&t, h, "/").app_root.as_deref(), Some("/app1"));
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    for bad in ["app1", "/", "https://example.com/app1"] {
        let t = world().with(app(&[("app-root", bad)])).run();
        let r = rule(&t, h, "/");
        assert!(r.app_root.is_none() && r.deny.is_none(), "{bad}: {r:?}");
        assert_eq!(reasons(&t), vec![("app".into(), Reason::InvalidAnnotation)], "{bad}");
    }
    // On a canary Ingress ingress-nginx does not read it: the main Ingress's rule has none.
    let t = world()
        .with(main_app())
        .with(
            canary_ingress("ro", "app")
                .host("app.example.com")
                .path("/", "app-canary", "http")
                .nginx("app-root", "/x"),
        )
        .run();
    assert!(rule(&t, h, "/").app_root.is_none());
}
