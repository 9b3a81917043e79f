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

const IS: &str = "ImplementationSpecific";

fn service_at(t: &weir_controller::translate::Translation, path: &str) -> Option<String> {
    let table = weir_config::RouteTable::from_doc(&t.doc).expect("valid");
    table.match_route("app.example.com", path).unwrap().map(|r| r.stable.id.service.clone())
}

fn upstream_path(t: &weir_controller::translate::Translation, path: &str) -> Option<String> {
    let table = weir_config::RouteTable::from_doc(&t.doc).expect("valid");
    let route = table.match_route("app.example.com", path).unwrap()?;
    let normalized = weir_config::matching::normalize_request_path(path).unwrap();
    route.rewrite.as_ref()?.apply(&normalized, None).map(|r| r.path_and_query)
}

#[test]
fn use_regex_on_one_ingress_makes_every_path_of_its_host_a_pattern_in_ingress_nginx_s_order() {
    // ingress-nginx's path-matching example across two Ingresses of one host: /foo/bar/bar
    // goes to the longer pattern /foo/bar/[A-Z0-9]{3}, case-insensitively.
    let regex = ingress("regex")
        .host("app.example.com")
        .path_typed("/foo/bar/[A-Z0-9]{3}", IS, "app-canary", "http")
        .nginx("use-regex", "true")
        .created(1);
    let plain = ingress("plain")
        .host("app.example.com")
        .path("/foo/bar/bar", "app", "http")
        .path("/", "app", "http")
        .created(2);
    let other = ingress("other").host("other.example.com").path("/a.b", "app", "http");
    let t = world().with(regex).with(plain).with(other).run();
    let host = |h: &str| t.doc.hosts.iter().find(|d| d.host.as_deref() == Some(h)).unwrap();
    assert_eq!(host("app.example.com").regex_paths, Some(true));
    assert_eq!(host("other.example.com").regex_paths, None, "another host keeps prefix paths");
    for (path, want) in [
        ("/foo/bar/bar", "app-canary"),
        ("/FOO/BAR/x1Z", "app-canary"),
        ("/foo/bar/ba", "app"),
        ("/x", "app"),
    ] {
        assert_eq!(service_at(&t, path).as_deref(), Some(want), "{path}");
    }
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    // use-regex false (or a target equal to the path) changes nothing.
    for (k, v) in [("use-regex", "false"), ("rewrite-target", "/")] {
        let t = world().with(main_app().nginx(k, v)).run();
        assert_eq!(t.doc.hosts[0].regex_paths, None, "{k}={v}");
        assert!(rule(&t, Some("app.example.com"), "/").rewrite.is_none(), "{k}={v}");
    }
}

#[test]
fn rewrite_target_with_capture_groups_reaches_the_proxy_as_ingress_nginx_s_example() {
    let ing = ingress("rewrite")
        .host("app.example.com")
        .path_typed("/something(/|$)(.*)", IS, "app", "http")
        .nginx("rewrite-target", "/$2")
        .nginx("x-forwarded-prefix", "/something");
    let t = world().with(ing).run();
    let r = rule(&t, Some("app.example.com"), "/something(/|$)(.*)");
    let rw = r.rewrite.as_ref().expect("a rewrite");
    assert_eq!((rw.target.as_str(), rw.forwarded_prefix.as_deref()), ("/$2", Some("/something")));
    for (path, want) in [("/something", "/"), ("/something/", "/"), ("/something/new", "/new")] {
        assert_eq!(upstream_path(&t, path).as_deref(), Some(want), "{path}");
    }
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
}

#[test]
fn a_bad_pattern_or_rewrite_costs_its_own_rule_only() {
    let h = Some("app.example.com");
    // A pattern weir cannot run (look-ahead) is skipped; the other rules stay.
    let ing = ingress("bad")
        .host("app.example.com")
        .path_typed("/(?=admin)", IS, "app", "http")
        .path_typed("/ok/(.*)", IS, "app", "http")
        .nginx("use-regex", "true");
    let t = world().with(ing).run();
    assert_eq!(reasons(&t), vec![("bad".into(), Reason::UnsupportedRule)]);
    assert!(t.diagnostics[0].message.contains("PCRE-only"), "{}", t.diagnostics[0].message);
    assert_eq!(t.doc.hosts[0].rules.len(), 1);
    // A group the path lacks: that rule answers 503.
    let ing = ingress("groups")
        .host("app.example.com")
        .path_typed("/a/(.*)", IS, "app", "http")
        .nginx("rewrite-target", "/$2");
    let t = world().with(ing).run();
    assert!(rule(&t, h, "/a/(.*)").deny.is_some());
    assert_eq!(reasons(&t), vec![("groups".into(), Reason::AnnotationRefused)]);
    // An nginx variable or a character outside ingress-nginx's set refuses the Ingress.
    for target in ["/$host/x", "/a?b=1"] {
        let t = world().with(main_app().nginx("rewrite-target", target)).run();
        assert!(rule(&t, h, "/").deny.is_some(), "{target}");
        assert!(
            reasons(&t).contains(&("app".into(), Reason::AnnotationRefused)),
            "{target}: {:?}",
            t.diagnostics
        );
    }
    // An Exact and a Prefix of one path are one pattern on a regex host: the older is kept.
    let exact =
        ingress("exact").host("app.example.com").path_typed("/foo", "Exact", "app", "http").created(1);
    let prefix = ingress("prefix")
        .host("app.example.com")
        .path("/foo", "app-canary", "http")
        .nginx("use-regex", "true")
        .created(2);
    let t = world().with(exact).with(prefix).run();
    assert_eq!(t.doc.hosts[0].rules.len(), 1);
    assert_eq!(service_at(&t, "/foo").as_deref(), Some("app"), "the older Ingress's rule");
    assert_eq!(reasons(&t), vec![("prefix".into(), Reason::DuplicateRule)]);
}

#[test]
fn upstream_vhost_is_the_host_the_upstream_gets_and_a_variable_refuses() {
    let h = Some("app.example.com");
    let t = world().with(main_app().nginx("upstream-vhost", "api.internal")).run();
    assert_eq!(rule(&t, h, "/").upstream_host.as_deref(), Some("api.internal"));
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    let t = world().with(main_app().nginx("upstream-vhost", "$service_name.svc")).run();
    let r = rule(&t, h, "/");
    assert!(r.deny.is_some() && r.upstream_host.is_none(), "{r:?}");
    assert_eq!(reasons(&t), vec![("app".into(), Reason::AnnotationRefused)]);
}

#[test]
fn enable_cors_carries_its_settings_and_an_origin_list_weir_cannot_read_refuses() {
    let h = Some("app.example.com");
    let t = world()
        .with(
            main_app()
                .nginx("enable-cors", "true")
                .nginx(
                    "cors-allow-origin",
                    "https://origin-site.com:4443, http://origin-site.com, https://*.example.org",
                )
                .nginx("cors-allow-methods", "PUT, GET, POST, OPTIONS")
                .nginx("cors-allow-credentials", "false")
                .nginx("cors-max-age", "600"),
        )
        .run();
    let cors = rule(&t, h, "/").cors.clone().expect("cors");
    assert_eq!(
        cors.allow_origins.as_deref(),
        Some(
            &[
                "https://origin-site.com:4443".to_string(),
                "http://origin-site.com".into(),
                "https://*.example.org".into()
            ][..]
        )
    );
    assert_eq!(cors.allow_methods.as_deref(), Some("PUT, GET, POST, OPTIONS"));
    assert_eq!(
        (cors.allow_credentials, cors.max_age, cors.allow_headers.as_deref()),
        (Some(false), Some(600), None)
    );
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    // ingress-nginx's defaults: every origin; a bad methods list takes the default, reported.
    let t =
        world().with(main_app().nginx("enable-cors", "true").nginx("cors-allow-methods", "GET;POST")).run();
    let cors = rule(&t, h, "/").cors.clone().expect("cors");
    assert_eq!((cors.allow_origins, cors.allow_methods), (None, None));
    assert_eq!(reasons(&t), vec![("app".into(), Reason::InvalidAnnotation)]);
    // Off, or settings without enable-cors: nothing.
    for (k, v) in [("enable-cors", "false"), ("cors-allow-origin", "https://a.test")] {
        let t = world().with(main_app().nginx(k, v)).run();
        assert!(rule(&t, h, "/").cors.is_none(), "{k}={v}");
    }
    // An origin weir cannot read would leave ingress-nginx answering every origin: refused.
    let t = world()
        .with(main_app().nginx("enable-cors", "true").nginx("cors-allow-origin", "https://a.test/path"))
        .run();
    let r = rule(&t, h, "/");
    assert!(r.deny.is_some() && r.cors.is_none(), "{r:?}");
    assert_eq!(reasons(&t), vec![("app".into(), Reason::AnnotationRefused)]);
}

#[test]
fn rate_limits_are_per_ingress_zones_and_a_value_weir_cannot_read_refuses() {
    let h = Some("app.example.com");
    let t = world()
        .with(
            main_app()
                .nginx("limit-rps", "10")
                .nginx("limit-connections", "0")
                .nginx("limit-burst-multiplier", "3")
                .nginx("limit-whitelist", "10.0.0.0/8")
                .nginx("limit-allowlist", "192.168.0.0/16, 10.1.0.0/16"),
        )
        .run();
    let rl = rule(&t, h, "/").rate_limit.clone().expect("a rate limit");
    assert_eq!(
        (rl.zone.as_deref(), rl.rps, rl.rpm, rl.connections),
        (Some("default/app"), Some(10), None, None)
    );
    assert_eq!(
        (rl.burst_multiplier, rl.allowlist.len()),
        (Some(3), 2),
        "limit-allowlist wins over limit-whitelist"
    );
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    // A multiplier that is not a number takes 5, reported; 0 everywhere is no limit.
    let t = world().with(main_app().nginx("limit-rpm", "60").nginx("limit-burst-multiplier", "x")).run();
    assert_eq!(
        rule(&t, h, "/").rate_limit.as_ref().map(|r| (r.rpm, r.burst_multiplier)),
        Some((Some(60), None))
    );
    assert_eq!(reasons(&t), vec![("app".into(), Reason::InvalidAnnotation)]);
    let t = world().with(main_app().nginx("limit-rps", "0")).run();
    assert!(rule(&t, h, "/").rate_limit.is_none());
    // Not a number (ingress-nginx skips the Ingress) or a bad allowlist (ingress-nginx drops
    // the limits): refused.
    for (k, v) in [("limit-rps", "ten"), ("limit-connections", "-1"), ("limit-allowlist", "10.0.0.0/33")] {
        let mut ing = main_app().nginx(k, v);
        if k == "limit-allowlist" {
            ing = ing.nginx("limit-rps", "5");
        }
        let t = world().with(ing).run();
        assert!(rule(&t, h, "/").deny.is_some(), "{k}={v}");
        assert!(
            reasons(&t).contains(&("app".into(), Reason::AnnotationRefused)),
            "{k}={v}: {:?}",
            t.diagnostics
        );
    }
}

#[test]
fn from_to_www_redirect_answers_the_other_name_unless_a_rule_names_it() {
    let with = |host: &str| {
        ingress("site").host(host).path("/", "app", "http").nginx("from-to-www-redirect", "true")
    };
    for (host, from) in [("example.com", "www.example.com"), ("www.example.com", "example.com")] {
        let t = world().with(with(host)).run();
        let table = weir_config::RouteTable::from_doc(&t.doc).expect("valid");
        let route = table.match_route(from, "/a/b").unwrap().expect("the other name is served");
        let r = route.redirect.as_ref().expect("a redirect");
        let parts =
            weir_config::RequestParts { scheme: "https", host: from, path: "/a/b", query: Some("x=1") };
        assert_eq!((r.code.as_u16(), r.location(&parts)), (308, format!("https://{host}/a/b?x=1")), "{host}");
        assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    }
    // The other name served by an Ingress of its own: no redirect there.
    let own = ingress("www").host("www.example.com").path("/", "app-canary", "http");
    let t = world().with(with("example.com")).with(own).run();
    let table = weir_config::RouteTable::from_doc(&t.doc).expect("valid");
    let route = table.match_route("www.example.com", "/").unwrap().expect("served");
    assert!(route.redirect.is_none() && route.stable.id.service == "app-canary");
    // Off: no other name.
    let t = world().with(ingress("site").host("example.com").path("/", "app", "http")).run();
    assert!(t.doc.hosts.iter().all(|h| h.host.as_deref() != Some("www.example.com")));
}

#[test]
fn retries_and_the_send_timeout_take_ingress_nginx_s_values_and_defaults() {
    use weir_config::retry::RetryOn;
    let h = Some("app.example.com");
    let table = |t: &weir_controller::translate::Translation| {
        weir_config::RouteTable::from_doc(&t.doc).expect("a valid table")
    };
    // Unset: ingress-nginx's defaults (error timeout, 3 tries, no time limit, 60 s).
    let t = world().with(main_app()).run();
    assert!(rule(&t, h, "/").retry.is_none() && rule(&t, h, "/").send_timeout.is_none());
    let routes = table(&t);
    let r = routes.match_route("app.example.com", "/").unwrap().expect("route");
    assert_eq!(r.retry, weir_config::retry::Retry::default());
    assert_eq!(r.send_timeout, std::time::Duration::from_secs(60));

    let t = world()
        .with(
            main_app()
                .nginx("proxy-next-upstream", "error timeout http_502 http_503")
                .nginx("proxy-next-upstream-tries", "5")
                .nginx("proxy-next-upstream-timeout", "10")
                .nginx("proxy-send-timeout", "120"),
        )
        .run();
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    let routes = table(&t);
    let r = routes.match_route("app.example.com", "/").unwrap().expect("route");
    assert!(r.retry.on.contains(RetryOn::ERROR | RetryOn::TIMEOUT));
    assert!(
        r.retry.on.status(http::StatusCode::BAD_GATEWAY) && !r.retry.on.status(http::StatusCode::NOT_FOUND)
    );
    assert_eq!((r.retry.tries, r.retry.timeout), (5, Some(std::time::Duration::from_secs(10))));
    assert_eq!(r.send_timeout, std::time::Duration::from_secs(120));

    // off anywhere wins (as nginx); tries 0 is as many as allowed.
    let t = world()
        .with(main_app().nginx("proxy-next-upstream", "error off").nginx("proxy-next-upstream-tries", "0"))
        .run();
    let routes = table(&t);
    let r = routes.match_route("app.example.com", "/").unwrap().expect("route");
    assert_eq!((r.retry.on, r.retry.tries), (RetryOn::OFF, weir_config::retry::MAX_TRIES));

    // Values ingress-nginx's validators reject take the default, reported.
    for (k, v) in [
        ("proxy-next-upstream", "error sometimes"),
        ("proxy-next-upstream-tries", "-1"),
        ("proxy-next-upstream-timeout", "soon"),
        ("proxy-send-timeout", "0"),
    ] {
        let t = world().with(main_app().nginx(k, v)).run();
        assert_eq!(reasons(&t), vec![("app".into(), Reason::InvalidAnnotation)], "{k}={v}");
        let routes = table(&t);
        let r = routes.match_route("app.example.com", "/").unwrap().expect("route");
        assert_eq!(r.retry, weir_config::retry::Retry::default(), "{k}={v}");
        assert_eq!(r.send_timeout, std::time::Duration::from_secs(60), "{k}={v}");
    }
}

#[test]
fn session_affinity_takes_ingress_nginx_s_example_and_the_canary_s_behavior() {
    use weir_config::affinity::{Mode, SameSite};
    let h = Some("app.example.com");
    // ingress-nginx's documented example (docs/examples/affinity/cookie).
    let t = world()
        .with(
            main_app()
                .nginx("affinity", "cookie")
                .nginx("session-cookie-name", "http-cookie")
                .nginx("session-cookie-expires", "172800")
                .nginx("session-cookie-max-age", "172800")
                .nginx("session-cookie-samesite", "none")
                .nginx("affinity-mode", "persistent"),
        )
        .run();
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    let table = weir_config::RouteTable::from_doc(&t.doc).expect("valid");
    let r = table.match_route("app.example.com", "/").unwrap().expect("route");
    let a = r.affinity.as_ref().expect("affinity");
    assert_eq!(
        (a.cookie.as_str(), a.mode, a.expires, a.max_age),
        ("http-cookie", Mode::Persistent, Some(172800), Some(172800))
    );
    assert_eq!(
        (a.same_site, a.secure, a.canary_sticky, a.change_on_failure),
        (Some(SameSite::None), Some(false), true, false)
    );

    // Bad values take ingress-nginx's defaults, reported; affinity other than cookie is none.
    let t = world()
        .with(
            main_app()
                .nginx("affinity", "cookie")
                .nginx("session-cookie-name", "a/b")
                .nginx("affinity-mode", "sometimes"),
        )
        .run();
    let table = weir_config::RouteTable::from_doc(&t.doc).expect("valid");
    let a = table
        .match_route("app.example.com", "/")
        .unwrap()
        .expect("route")
        .affinity
        .clone()
        .expect("affinity");
    assert_eq!((a.cookie.as_str(), a.mode), ("INGRESSCOOKIE", Mode::Balanced));
    assert_eq!(reasons(&t).len(), 2, "{:?}", t.diagnostics);
    let t = world().with(main_app().nginx("affinity", "ip")).run();
    assert!(rule(&t, h, "/").affinity.is_none());
    assert_eq!(reasons(&t), vec![("app".into(), Reason::InvalidAnnotation)]);

    // affinity-canary-behavior is read on the canary Ingress.
    for (behavior, sticky) in [(None, true), (Some("legacy"), false), (Some("sticky"), true)] {
        let mut canary =
            canary_ingress("ro", "app").host("app.example.com").path("/", "app-canary", "http").weight(20);
        if let Some(b) = behavior {
            canary = canary.nginx("affinity-canary-behavior", b);
        }
        let t = world().with(main_app().nginx("affinity", "cookie")).with(canary).run();
        let table = weir_config::RouteTable::from_doc(&t.doc).expect("valid");
        let r = table.match_route("app.example.com", "/").unwrap().expect("route");
        assert!(r.canary.is_some());
        assert_eq!(r.affinity.as_ref().map(|a| a.canary_sticky), Some(sticky), "{behavior:?}");
    }
}

fn host_doc<'a>(
    t: &'a weir_controller::translate::Translation,
    h: &str,
) -> Option<&'a weir_config::wire::HostDoc> {
    t.doc.hosts.iter().find(|d| d.host.as_deref() == Some(h))
}

fn service_for(t: &weir_controller::translate::Translation, host: &str, path: &str) -> Option<String> {
    let table = weir_config::RouteTable::from_doc(&t.doc).expect("valid");
    table.match_route(host, path).unwrap().map(|r| r.stable.id.service.clone())
}

#[test]
fn server_alias_answers_as_its_host_with_the_host_s_rules_and_certificate() {
    // ingress-nginx's example form: "<alias 1>,<alias 2>".
    let cert = test_cert(&["app.example.com", "alias1.example.com", "alias2.example.com"]);
    let mut w = world().with(
        main_app()
            .path("/admin", "app-canary", "http")
            .tls(&["app.example.com"], "app-tls")
            .nginx("server-alias", "alias1.example.com, Alias2.example.com"),
    );
    w.secrets.push(tls_secret_with("app-tls", &cert));
    let t = w.run();
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    let host = host_doc(&t, "app.example.com").expect("the host");
    for alias in ["alias1.example.com", "alias2.example.com"] {
        let a = host_doc(&t, alias).unwrap_or_else(|| panic!("{alias} served"));
        assert_eq!(a.rules, host.rules, "{alias}: the same rules");
        assert_eq!(a.tls, host.tls, "{alias}: the same certificate");
        assert!(a.tls.is_some() && a.ssl_redirect == host.ssl_redirect, "{alias}");
        assert_eq!(service_for(&t, alias, "/admin/x").as_deref(), Some("app-canary"), "{alias}");
        assert_eq!(service_for(&t, alias, "/").as_deref(), Some("app"), "{alias}");
    }
    // Without the annotation the names are not served.
    let t = world().with(main_app()).run();
    assert!(host_doc(&t, "alias1.example.com").is_none());
    // A wildcard alias is a server_name nginx takes and weir serves; an exact host elsewhere
    // keeps its own requests.
    let other = ingress("other").host("b.example.org").path("/api", "app-canary", "http");
    let t = world().with(main_app().nginx("server-alias", "*.example.org")).with(other).run();
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    assert_eq!(service_for(&t, "x.example.org", "/").as_deref(), Some("app"));
    assert_eq!(service_for(&t, "b.example.org", "/api").as_deref(), Some("app-canary"));
    assert_eq!(service_for(&t, "b.example.org", "/").as_deref(), None, "b's host keeps the request: 404");
}

#[test]
fn server_alias_that_is_a_host_elsewhere_or_of_another_server_is_not_added() {
    // alias = a host of another Ingress's rule: that rule keeps it (ingress-nginx skips it).
    let other = ingress("other").host("taken.example.com").path("/", "app-canary", "http").created(2);
    let app = main_app().nginx("server-alias", "taken.example.com,free.example.com").created(1);
    let t = world().with(app.clone()).with(other.clone()).run();
    assert_eq!(service_for(&t, "taken.example.com", "/").as_deref(), Some("app-canary"));
    assert_eq!(service_for(&t, "free.example.com", "/").as_deref(), Some("app"));
    assert_eq!(reasons(&t), vec![("app".into(), Reason::DuplicateRule)]);
    let msg = &t.diagnostics[0].message;
    assert!(msg.contains("server-alias") && msg.contains("taken.example.com"), "{msg}");
    assert_eq!(host_doc(&t, "taken.example.com").map(|h| h.rules.len()), Some(1));
    // The same whichever Ingress is older: a rule's host always wins over an alias.
    let t = world().with(app.created(3)).with(other).run();
    assert_eq!(service_for(&t, "taken.example.com", "/").as_deref(), Some("app-canary"));
    // Two hosts claiming one alias: the first host by name keeps it (nginx's first
    // server_name), the other is told.
    let a = ingress("a")
        .host("a.example.com")
        .path("/", "app", "http")
        .nginx("server-alias", "shared.example.com");
    let b = ingress("b")
        .host("b.example.com")
        .path("/", "app-canary", "http")
        .nginx("server-alias", "shared.example.com");
    let t = world().with(b).with(a).run();
    assert_eq!(service_for(&t, "shared.example.com", "/").as_deref(), Some("app"));
    assert_eq!(reasons(&t), vec![("b".into(), Reason::DuplicateRule)]);
    assert!(t.diagnostics[0].message.contains("already an alias of host \"a.example.com\""));
    // A second Ingress of the host with aliases of its own: the older one's are kept.
    let first = main_app().nginx("server-alias", "one.example.com").created(1);
    let second = ingress("second")
        .host("app.example.com")
        .path("/second", "app", "http")
        .nginx("server-alias", "two.example.com")
        .created(2);
    let t = world().with(second).with(first).run();
    assert!(host_doc(&t, "one.example.com").is_some() && host_doc(&t, "two.example.com").is_none());
    assert_eq!(reasons(&t), vec![("second".into(), Reason::DuplicateRule)]);
    // Fail closed: an exact alias a wildcard host of another Ingress covers would take that
    // host's requests for the name; it is not added.
    let wild = ingress("wild").host("*.example.net").path("/", "app-canary", "http");
    let t = world().with(main_app().nginx("server-alias", "x.example.net")).with(wild).run();
    assert_eq!(service_for(&t, "x.example.net", "/").as_deref(), Some("app-canary"));
    assert_eq!(reasons(&t), vec![("app".into(), Reason::DuplicateRule)]);
}

#[test]
fn server_alias_weir_cannot_serve_refuses_and_an_empty_one_is_dropped() {
    let h = Some("app.example.com");
    // nginx regular-expression server names, and characters ingress-nginx's validator
    // rejects (it skips the Ingress): refused, the rules answer 503, no alias.
    for bad in ["~^www\\d+\\.example\\.com$", "www.example.*", "a.example.com;b.example.com"] {
        let t = world().with(main_app().nginx("server-alias", bad)).run();
        assert!(rule(&t, h, "/").deny.is_some(), "{bad}");
        assert_eq!(t.doc.hosts.len(), 1, "{bad}: no alias host");
        let d = t.diagnostics.iter().find(|d| d.reason == Reason::AnnotationRefused).expect("refused");
        assert!(d.message.contains("server-alias"), "{}", d.message);
    }
    let t = world().with(main_app().nginx("server-alias", " , ")).run();
    assert!(rule(&t, h, "/").deny.is_none());
    assert_eq!(reasons(&t), vec![("app".into(), Reason::InvalidAnnotation)]);
    assert_eq!(t.doc.hosts.len(), 1);
    // A refused Ingress lends its host no aliases.
    let t = world()
        .with(main_app().nginx("server-alias", "alias.example.com").nginx("configuration-snippet", "x"))
        .run();
    assert!(host_doc(&t, "alias.example.com").is_none());
}

/// `app` without ready endpoints, and `fallback` (ports `http` 80 → 8080 first, `other`
/// second) with one.
fn fallback_world() -> World {
    let mut w = world();
    w.slices.retain(|s| s.metadata.name.as_deref() != Some("app-x1"));
    w.services.push(service("fallback").port("http", 80, 8080).port("other", 81, 9090).build());
    w.slices.push(
        endpoint_slice("fallback-z1", "fallback")
            .port("http", 8080)
            .port("other", 9090)
            .ready("10.0.2.1")
            .build(),
    );
    w
}

#[test]
fn default_backend_serves_rules_whose_service_has_no_endpoints() {
    let h = Some("app.example.com");
    let t = fallback_world().with(main_app().nginx("default-backend", "fallback")).run();
    let r = rule(&t, h, "/");
    assert_eq!(r.backend.endpoints, vec!["10.0.2.1:8080".to_string()], "the first port's endpoints");
    assert_eq!(r.backend.service.as_deref(), Some("app"), "labelled with the rule's Service");
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    // Without the annotation: no endpoints (503).
    let t = fallback_world().with(main_app()).run();
    assert!(rule(&t, h, "/").backend.endpoints.is_empty());
    // A rule whose Service has endpoints keeps its own.
    let t = world().with(main_app().nginx("default-backend", "app-canary")).run();
    assert_eq!(rule(&t, h, "/").backend.endpoints, vec!["10.0.0.1:8080".to_string(), "10.0.0.2:8080".into()]);
    // A rule whose Service does not exist gets it too (ingress-nginx: an upstream with none).
    let ing = ingress("gone")
        .host("app.example.com")
        .path("/", "nope", "http")
        .nginx("default-backend", "fallback");
    let t = fallback_world().with(ing).run();
    assert_eq!(rule(&t, h, "/").backend.endpoints, vec!["10.0.2.1:8080".to_string()]);
    assert_eq!(reasons(&t), vec![("gone".into(), Reason::ServiceNotFound)]);
    // spec.defaultBackend's `/` is a location of the Ingress too.
    let ing = ingress("def").default_backend("app", "http").nginx("default-backend", "fallback");
    let t = fallback_world().with(ing).run();
    assert_eq!(rule(&t, None, "/").backend.endpoints, vec!["10.0.2.1:8080".to_string()]);
}

#[test]
fn default_backend_that_does_not_exist_is_ignored_and_reported_and_a_bad_name_refuses() {
    let h = Some("app.example.com");
    let t = fallback_world().with(main_app().nginx("default-backend", "missing")).run();
    let r = rule(&t, h, "/");
    assert!(r.backend.endpoints.is_empty() && r.deny.is_none(), "{r:?}");
    assert_eq!(reasons(&t), vec![("app".into(), Reason::ServiceNotFound)]);
    let msg = &t.diagnostics[0].message;
    assert!(msg.contains("default-backend") && msg.contains("default/missing"), "{msg}");
    // A Service with no ports: ignored, as ingress-nginx ("has no ports. Ignoring").
    let mut w = fallback_world();
    w.services.push(service("portless").build());
    let t = w.with(main_app().nginx("default-backend", "portless")).run();
    assert!(rule(&t, h, "/").backend.endpoints.is_empty());
    assert_eq!(reasons(&t), vec![("app".into(), Reason::ServicePortNotFound)]);
    // Not a Service name: ingress-nginx skips the Ingress; weir refuses it (503).
    let t = fallback_world().with(main_app().nginx("default-backend", "Fallback")).run();
    assert!(rule(&t, h, "/").deny.is_some());
    assert!(reasons(&t).contains(&("app".into(), Reason::AnnotationRefused)), "{:?}", t.diagnostics);
    // A canary's own default-backend is not read (the main Ingress's location's is).
    let t = fallback_world()
        .with(main_app())
        .with(
            canary_ingress("ro", "app")
                .host("app.example.com")
                .path("/", "app", "http")
                .nginx("default-backend", "fallback"),
        )
        .run();
    assert!(canary(&t, h, "/").backend.endpoints.is_empty());
}

#[test]
fn service_upstream_sends_to_the_cluster_ip_and_a_headless_service_keeps_its_endpoints() {
    let h = Some("app.example.com");
    let with_ip = |ip: &str| {
        let mut w = world();
        w.services[0] = service("app").port("http", 80, 8080).cluster_ip(ip).build();
        w
    };
    let t = with_ip("10.96.0.10").with(main_app().nginx("service-upstream", "true")).run();
    let r = rule(&t, h, "/");
    assert_eq!(r.backend.endpoints, vec!["10.96.0.10:80".to_string()], "ClusterIP and the Service port");
    assert_eq!(r.backend.service.as_deref(), Some("app"));
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    // A port given by name resolves to the Service port's number; IPv6 is bracketed.
    let ing =
        ingress("app").host("app.example.com").path("/", "app", "http").nginx("service-upstream", "true");
    let t = with_ip("fd00::10").with(ing).run();
    assert_eq!(rule(&t, h, "/").backend.endpoints, vec!["[fd00::10]:80".to_string()]);
    // Off, or not set: the pods.
    for ing in [main_app().nginx("service-upstream", "false"), main_app()] {
        let t = with_ip("10.96.0.10").with(ing).run();
        assert_eq!(
            rule(&t, h, "/").backend.endpoints,
            vec!["10.0.0.1:8080".to_string(), "10.0.0.2:8080".into()]
        );
    }
    // Headless (or no ClusterIP): the endpoints, as ingress-nginx falls back, reported.
    for ip in ["None", ""] {
        let t = with_ip(ip).with(main_app().nginx("service-upstream", "true")).run();
        let r = rule(&t, h, "/");
        assert_eq!(r.backend.endpoints, vec!["10.0.0.1:8080".to_string(), "10.0.0.2:8080".into()], "{ip:?}");
        assert_eq!(reasons(&t), vec![("app".into(), Reason::InvalidAnnotation)], "{ip:?}");
        assert!(t.diagnostics[0].message.contains("service-upstream"), "{}", t.diagnostics[0].message);
    }
    // The ClusterIP has endpoints, so a default-backend never replaces it.
    let mut w = with_ip("10.96.0.10");
    w.slices.retain(|s| s.metadata.name.as_deref() != Some("app-x1"));
    let t = w.with(main_app().nginx("service-upstream", "true").nginx("default-backend", "app-canary")).run();
    assert_eq!(rule(&t, h, "/").backend.endpoints, vec!["10.96.0.10:80".to_string()]);
}

#[test]
fn service_upstream_on_a_canary_is_the_canary_s_own() {
    let h = Some("app.example.com");
    let mut w = world();
    w.services[1] = service("app-canary").port("http", 80, 8080).cluster_ip("10.96.0.11").build();
    let canary_ing =
        canary_ingress("ro", "app").host("app.example.com").path("/", "app-canary", "http").weight(10);
    let t = w.clone().with(main_app()).with(canary_ing.clone().nginx("service-upstream", "true")).run();
    assert_eq!(canary(&t, h, "/").backend.endpoints, vec!["10.96.0.11:80".to_string()]);
    assert_eq!(rule(&t, h, "/").backend.endpoints.len(), 2, "the main rule keeps its pods");
    let t = w.with(main_app()).with(canary_ing).run();
    assert_eq!(canary(&t, h, "/").backend.endpoints, vec!["10.0.1.1:8080".to_string()]);
}
