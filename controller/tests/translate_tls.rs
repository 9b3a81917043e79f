//! TLS from Secrets: certificates on hosts, bad Secrets isolated, conflicts, redirects,
//! the default certificate, and no private key in any message or Debug output.

use std::sync::Arc;

use k8s_openapi::ByteString;
use weir_config::wire::HostDoc;
use weir_config::RouteTable;
use weir_controller::testkit::fixtures::*;
use weir_controller::testkit::world::*;
use weir_controller::translate::{Reason, Translation};
use weir_controller::{translate, Options};
use weir_proxy::certs::CertStore;

fn host<'a>(t: &'a Translation, name: &str) -> &'a HostDoc {
    t.doc.hosts.iter().find(|h| h.host.as_deref() == Some(name)).unwrap_or_else(|| panic!("no host {name}"))
}

/// The table must not only validate: the proxy must load every certificate in it.
fn proxy_loads(t: &Translation) {
    let table = RouteTable::from_doc(&t.doc).expect("valid table");
    if let Err(e) = CertStore::build(&table) {
        panic!("the proxy would refuse the table: {e:?}");
    }
}

/// The key body without its PEM armour lines, to search for in messages.
fn key_body(cert: &TestCert) -> String {
    cert.key_pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>()
}

#[test]
fn a_tls_host_gets_the_secrets_pair_and_redirects_by_default() {
    let cert = test_cert(&["app.example.com"]);
    let mut w = world().with(main_app().tls(&["App.example.com"], "app-tls"));
    w.secrets.push(tls_secret_with("app-tls", &cert));
    let t = w.run();
    proxy_loads(&t);
    let h = host(&t, "app.example.com");
    let tls = h.tls.as_ref().expect("tls");
    assert_eq!(tls.certificate.as_deref(), Some(cert.cert_pem.as_str()));
    assert_eq!(tls.key.as_deref(), Some(cert.key_pem.as_str()));
    assert_eq!(tls.source.as_deref(), Some("default/app-tls"));
    assert_eq!(h.ssl_redirect, Some(true));
    assert!(t.tls[0].found);
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
}

#[test]
fn a_bad_secret_leaves_only_its_host_plain_and_is_reported_without_key_material() {
    let good = test_cert(&["ok.example.com"]);
    let other = test_cert(&["x.example.com"]);
    let mut no_key = tls_secret_with("bad", &good);
    no_key.data.as_mut().map(|d| d.remove("tls.key"));
    let mut bad_cert = tls_secret_with("bad", &good);
    bad_cert.data.as_mut().map(|d| d.insert("tls.crt".into(), ByteString(b"not a pem".to_vec())));
    let mut bad_key = tls_secret_with("bad", &good);
    let garbled = good.key_pem.replace("-----END", "garbage\n-----END");
    bad_key.data.as_mut().map(|d| d.insert("tls.key".into(), ByteString(garbled.into_bytes())));
    let mismatched =
        tls_secret_with("bad", &TestCert { cert_pem: good.cert_pem.clone(), key_pem: other.key_pem.clone() });
    let mut opaque = tls_secret_with("bad", &good);
    opaque.type_ = Some("Opaque".into());
    let cases = [
        ("no tls.key", Some(no_key), Reason::InvalidSecret),
        ("certificate not PEM", Some(bad_cert), Reason::InvalidSecret),
        ("key not PEM", Some(bad_key), Reason::InvalidSecret),
        ("key of another certificate", Some(mismatched), Reason::InvalidSecret),
        ("Opaque type", Some(opaque), Reason::SecretNotFound),
        ("missing", None, Reason::SecretNotFound),
    ];
    for (what, secret, reason) in cases {
        let mut w = world().with(main_app().tls(&["app.example.com"], "bad")).with(
            ingress("ok").host("ok.example.com").path("/", "app", "http").tls(&["ok.example.com"], "ok"),
        );
        w.secrets.push(tls_secret_with("ok", &good));
        w.secrets.extend(secret);
        let t = w.run();
        proxy_loads(&t);
        let bad = host(&t, "app.example.com");
        assert!(bad.tls.is_none() && bad.ssl_redirect.is_none(), "{what}: {bad:?}");
        assert!(host(&t, "ok.example.com").tls.is_some(), "{what}");
        assert_eq!(reasons(&t), vec![("app".into(), reason)], "{what}");
        for d in &t.diagnostics {
            assert!(
                !d.message.contains(&key_body(&good)) && !d.message.contains(&key_body(&other)),
                "{what}"
            );
        }
    }
}

#[test]
fn a_mismatched_key_is_named_as_such() {
    let (a, b) = (test_cert(&["a.example.com"]), test_cert(&["b.example.com"]));
    let mut w = world().with(main_app().tls(&["app.example.com"], "mixed"));
    w.secrets.push(tls_secret_with("mixed", &TestCert { cert_pem: a.cert_pem, key_pem: b.key_pem }));
    let t = w.run();
    assert!(t.diagnostics[0].message.contains("does not match the certificate"), "{:?}", t.diagnostics);
}

#[test]
fn two_ingresses_naming_different_secrets_for_one_host_the_oldest_usable_wins_and_it_is_reported() {
    let mut w = world()
        .with(main_app().created(1).tls(&["app.example.com"], "first"))
        .with(
            ingress("late")
                .created(2)
                .host("app.example.com")
                .path("/b", "app", "http")
                .tls(&["app.example.com"], "second"),
        )
        .with(
            ingress("same")
                .created(3)
                .host("app.example.com")
                .path("/c", "app", "http")
                .tls(&["app.example.com"], "first"),
        );
    w.secrets.push(tls_secret("first"));
    w.secrets.push(tls_secret("second"));
    let t = w.run();
    assert_eq!(
        host(&t, "app.example.com").tls.as_ref().and_then(|c| c.source.as_deref()),
        Some("default/first")
    );
    assert_eq!(reasons(&t), vec![("late".into(), Reason::TlsConflict)]);

    // When the oldest Ingress's Secret cannot be used, the next usable one serves the host.
    w.secrets.retain(|s| s.metadata.name.as_deref() != Some("first"));
    let t = w.run();
    assert_eq!(
        host(&t, "app.example.com").tls.as_ref().and_then(|c| c.source.as_deref()),
        Some("default/second")
    );
    assert!(reasons(&t).contains(&("late".into(), Reason::TlsConflict)), "{:?}", t.diagnostics);
}

#[test]
fn ssl_redirect_follows_the_annotations_of_the_ingress_that_brings_the_certificate() {
    let cases = [
        (vec![], Some(true)),
        (vec![("ssl-redirect", "false")], Some(false)),
        (vec![("ssl-redirect", "false"), ("force-ssl-redirect", "true")], Some(true)),
        (vec![("ssl-redirect", "nope")], Some(true)),
    ];
    for (annotations, want) in cases {
        let mut ing = main_app().tls(&["app.example.com"], "app-tls");
        for (k, v) in &annotations {
            ing = ing.nginx(k, v);
        }
        let mut w = world().with(ing);
        w.secrets.push(tls_secret("app-tls"));
        let t = w.run();
        assert_eq!(host(&t, "app.example.com").ssl_redirect, want, "{annotations:?}");
    }
}

#[test]
fn a_tls_host_without_rules_is_served_with_its_certificate_and_the_default_backend() {
    let mut w = world()
        .with(main_app().tls(&["app.example.com", "bare.example.com"], "app-tls"))
        .with(ingress("db").created(5).default_backend("app", 80).tls(&["db.example.com"], "app-tls"));
    w.secrets.push(tls_secret("app-tls"));
    let t = w.run();
    proxy_loads(&t);
    let bare = host(&t, "bare.example.com");
    assert!(bare.tls.is_some() && bare.rules.is_empty(), "{bare:?}");
    let db = host(&t, "db.example.com");
    assert!(db.tls.is_some());
    assert_eq!(db.rules.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), vec!["/"]);
}

#[test]
fn a_tls_entry_without_hosts_is_reported_and_ignored() {
    let mut ing = main_app();
    ing = ing.tls(&[], "app-tls");
    let mut w = world().with(ing);
    w.secrets.push(tls_secret("app-tls"));
    let t = w.run();
    assert!(t.doc.hosts.iter().all(|h| h.tls.is_none()));
    assert_eq!(reasons(&t), vec![("app".into(), Reason::UnsupportedRule)]);
}

#[test]
fn the_default_ssl_certificate_option_fills_the_tables_default_or_warns() {
    let mut w = world().with(main_app());
    let mut secret = tls_secret("wildcard");
    secret.metadata.namespace = Some("ingress".into());
    w.secrets.push(secret);
    let opts = |name: &str| Options {
        default_certificate: Some(("ingress".into(), name.into())),
        ..Default::default()
    };
    let t = translate(&w.state(), &opts("wildcard"));
    proxy_loads(&t);
    let default =
        t.doc.tls.as_ref().and_then(|t| t.default_certificate.as_ref()).expect("default certificate");
    assert_eq!(default.source.as_deref(), Some("ingress/wildcard"));
    assert!(t.warnings.is_empty());

    let t = translate(&w.state(), &opts("gone"));
    assert!(t.doc.tls.is_none());
    assert_eq!(
        t.warnings,
        vec!["default TLS certificate secret ingress/gone does not exist; not used".to_string()]
    );
}

#[test]
fn debug_output_of_state_and_translation_never_shows_a_private_key() {
    let cert = test_cert(&["app.example.com"]);
    let mut w = world().with(main_app().tls(&["app.example.com"], "app-tls"));
    w.secrets.push(tls_secret_with("app-tls", &cert));
    let state = w.state();
    let t = translate(&state, &Options::default());
    assert!(host(&t, "app.example.com").tls.is_some());
    let body = key_body(&cert);
    for shown in [format!("{state:?}"), format!("{t:?}"), format!("{t:#?}")] {
        assert!(!shown.contains(&body) && !shown.contains("PRIVATE KEY"), "{shown}");
    }
}

#[test]
fn a_new_resource_version_is_checked_again_while_an_unchanged_one_is_remembered() {
    let (a, b) = (test_cert(&["a.example.com"]), test_cert(&["b.example.com"]));
    let mut w = world().with(main_app().tls(&["app.example.com"], "app-tls"));
    let mut secret = tls_secret_with("app-tls", &a);
    secret.metadata.uid = Some("u1".into());
    secret.metadata.resource_version = Some("1".into());
    w.secrets.push(secret.clone());
    let mut state = w.state();
    assert!(host(&translate(&state, &Options::default()), "app.example.com").tls.is_some());
    // An update (new resourceVersion) to a mismatched pair is caught.
    secret.data = tls_secret_with("x", &TestCert { cert_pem: a.cert_pem.clone(), key_pem: b.key_pem }).data;
    secret.metadata.resource_version = Some("2".into());
    state.secrets = vec![Arc::new(secret)];
    let t = translate(&state, &Options::default());
    assert!(host(&t, "app.example.com").tls.is_none());
    assert_eq!(reasons(&t), vec![("app".into(), Reason::InvalidSecret)]);
}
