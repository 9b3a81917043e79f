//! Table tests of [`access_doc`] with the access keys as they are once the proxy enforces
//! them (their ungated checks): IP lists, basic auth from Secrets, external auth.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;

use super::access_doc;
use crate::annotations::catalog::{check_ungated, Checked};
use crate::annotations::{Evaluation, Finding, Verdict};
use crate::testkit::fixtures::ingress;

const P: &str = "nginx.ingress.kubernetes.io";
const SHA_SECRET: &str = "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="; // "secret"

/// What evaluate gives with the access keys enforced (their own checks, no gate).
fn eval(pairs: &[(&str, &str)]) -> Evaluation {
    let verdicts = pairs
        .iter()
        .map(|(name, value)| {
            let finding = match check_ungated(name, value) {
                Some((Checked::Valid(v), _)) => Finding::Use(v),
                Some((Checked::Invalid(reason), fallback)) => Finding::Dropped { reason, fallback },
                Some((Checked::Unsupported(r), _)) => Finding::Refused(r),
                None => Finding::Ignored(String::new()),
            };
            Verdict { key: format!("{P}/{name}"), name: name.to_string(), value: value.to_string(), finding }
        })
        .collect();
    Evaluation { verdicts }
}

fn htpasswd(ns: &str, name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta { namespace: Some(ns.into()), name: Some(name.into()), ..Default::default() },
        type_: Some("Opaque".into()),
        data: Some(data.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec()))).collect()),
        ..Default::default()
    }
}

/// Annotations without the prefix.
type Pairs = Vec<(&'static str, &'static str)>;

#[test]
fn access_annotations_become_the_rule_s_access_or_a_reason_naming_the_key() {
    let secrets = [
        htpasswd(
            "default",
            "users",
            &[("auth", &format!("# staff\nalice:{SHA_SECRET}\n\nbob:{SHA_SECRET}\n"))],
        ),
        htpasswd("default", "map", &[("carol", SHA_SECRET)]),
        htpasswd("default", "broken", &[("auth", "alice:plaintext\n")]),
        htpasswd("default", "empty", &[("other", "x")]),
        htpasswd("other", "users", &[("auth", &format!("eve:{SHA_SECRET}"))]),
    ];
    let by_name: HashMap<(&str, &str), &Secret> = secrets
        .iter()
        .map(|s| {
            ((s.metadata.namespace.as_deref().unwrap_or(""), s.metadata.name.as_deref().unwrap_or("")), s)
        })
        .collect();
    let basic = |secret: &'static str| vec![("auth-type", "basic"), ("auth-secret", secret)];
    // (annotations, Ok(fragments of the access JSON) or Err(fragment of the reason))
    #[rustfmt::skip]
    let cases: Vec<(Pairs, Result<&[&str], &str>)> = vec![
        (vec![("whitelist-source-range", "10.0.0.1/8, 2001:db8::/32")], Ok(&[r#""allow":["10.0.0.0/8","2001:db8::/32"]"#])),
        (vec![("whitelist-source-range", "10.0.0.0/8"), ("allowlist-source-range", "192.168.0.0/16")], Ok(&[r#""allow":["192.168.0.0/16"]"#])),
        (vec![("denylist-source-range", "203.0.113.7")], Ok(&[r#""deny":["203.0.113.7/32"]"#])),
        (basic("users"), Ok(&[r#""users":["alice:{SHA}"#, r#""bob:{SHA}"#, r#""source":"default/users""#])),
        ([basic("map"), vec![("auth-secret-type", "auth-map"), ("auth-realm", "Staff only")]].concat(), Ok(&[r#""realm":"Staff only""#, r#""carol:{SHA}"#])),
        ([basic("users"), vec![("auth-realm", "a\"b")]].concat(), Ok(&[r#""users":["alice"#])),
        (basic("missing"), Err("nginx.ingress.kubernetes.io/auth-secret: Secret default/missing does not exist")),
        (basic("broken"), Err("nginx.ingress.kubernetes.io/auth-secret: user \"alice\": the hash is not bcrypt")),
        (basic("empty"), Err("has no key `auth`")),
        (basic("other/users"), Err("in another namespace")),
        (vec![("auth-type", "basic")], Err("needs auth-secret")),
        (vec![("auth-url", "http://oauth2-proxy.auth.svc:4180/oauth2/auth"), ("auth-method", "POST"),
              ("auth-signin", "https://$host/oauth2/start?rd=$escaped_request_uri"),
              ("auth-response-headers", "X-Auth-Request-User, X-Auth-Request-Email"),
              ("auth-cache-key", "$http_authorization"), ("auth-cache-duration", "200 10m, 401 30s")],
         Ok(&[r#""url":"http://oauth2-proxy.auth.svc:4180/oauth2/auth""#, r#""method":"POST""#,
              r#""signin":"https://$host/oauth2/start?rd=$escaped_request_uri""#,
              r#""responseHeaders":["X-Auth-Request-User","X-Auth-Request-Email"]"#,
              r#""durations":[{"statuses":[200],"duration":"10m"},{"statuses":[401],"duration":"30s"}]"#])),
        (vec![("auth-url", "http://a/"), ("auth-signin", "https://$host/start?x=$arg_x")], Ok(&[r#""url":"http://a/""#])),
        (vec![("auth-signin", "https://a/start")], Ok(&[])),
    ];
    for (pairs, want) in cases {
        let ing = ingress("app").build();
        let got = access_doc(&ing, &eval(&pairs), P, &by_name);
        match (got, want) {
            (Ok(doc), Ok(fragments)) => {
                let json = serde_json::to_string(&doc).unwrap_or_default();
                if fragments.is_empty() {
                    assert!(doc.is_none(), "{pairs:?}: {json}");
                }
                for f in fragments {
                    assert!(json.contains(f), "{pairs:?}: {f} not in {json}");
                }
            }
            (Err(why), Err(fragment)) => {
                assert!(why.contains(fragment), "{pairs:?}: {fragment:?} not in {why:?}");
                assert!(!why.contains("plaintext"), "{pairs:?}: a hash is echoed: {why}");
            }
            (got, want) => panic!("{pairs:?}: got {got:?}, want {want:?}"),
        }
    }
}
