//! The controller's translation (annotation parsers, pairing, TLS, backends) on arbitrary
//! Ingresses.
//!
//! Properties: never a panic; the table it produces is always one the proxy accepts (a bad
//! Ingress must cost that Ingress only, never the whole table); and the same objects give
//! the same table whatever order they arrive in.
#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use k8s_openapi::api::core::v1::Secret;
use libfuzzer_sys::fuzz_target;
use weir_config::RouteTable;
use weir_controller::testkit::fixtures::{self, PREFIX};
use weir_controller::{translate, ClusterState, Options};

const HOSTS: &[&str] = &["app.example.com", "*.example.com", "", "api.example.com", "APP.example.com"];
const PATHS: &[&str] = &["/", "/api", "/api/", "/api/v1", "/admin", "/.well-known/acme"];
const PATH_TYPES: &[&str] = &["Prefix", "Exact", "ImplementationSpecific"];
const SERVICES: &[&str] = &["stable", "canary", "missing"];
const KEYS: &[&str] = &[
    "canary",
    "canary-weight",
    "canary-weight-total",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
    "proxy-body-size",
    "proxy-connect-timeout",
    "proxy-read-timeout",
    "backend-protocol",
    "ssl-redirect",
    "force-ssl-redirect",
];
const VALUES: &[&str] = &[
    "true",
    "false",
    "0",
    "10",
    "100",
    "X-Canary",
    "always",
    "(unclosed",
    "^a.*$",
    "8m",
    "1g",
    "10b",
    "HTTPS",
    "GRPC",
];

#[derive(Debug, Arbitrary)]
enum Text<'a> {
    Known(u8),
    Raw(&'a str),
}

impl Text<'_> {
    fn pick<'s>(&'s self, known: &'s [&'s str]) -> &'s str {
        match self {
            Text::Known(i) => known[*i as usize % known.len()],
            Text::Raw(s) => s,
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Path<'a> {
    path: Text<'a>,
    path_type: u8,
    service: u8,
    named_port: bool,
}

#[derive(Debug, Arbitrary)]
struct Ing<'a> {
    created: u8,
    canary: bool,
    owned_by_rollout: bool,
    rules: Vec<(Text<'a>, Vec<Path<'a>>)>,
    default_backend: Option<u8>,
    annotations: Vec<(Text<'a>, Text<'a>)>,
    tls: Option<(Vec<Text<'a>>, bool)>,
}

fn secret() -> Secret {
    static SECRET: OnceLock<Secret> = OnceLock::new();
    SECRET
        .get_or_init(|| {
            let cert = fixtures::test_cert(&["app.example.com", "*.example.com"]);
            fixtures::tls_secret_with("tls", &cert)
        })
        .clone()
}

fn ingress(i: usize, spec: &Ing<'_>) -> k8s_openapi::api::networking::v1::Ingress {
    let mut b = fixtures::ingress(&format!("ing-{i}")).created(i64::from(spec.created));
    if spec.canary {
        b = b.nginx("canary", "true");
    }
    if spec.owned_by_rollout {
        b = b.owned_by_rollout("app");
    }
    for (key, value) in spec.annotations.iter().take(16) {
        b = b.annotation(&format!("{PREFIX}/{}", key.pick(KEYS)), value.pick(VALUES));
    }
    for (host, paths) in spec.rules.iter().take(4) {
        b = b.host(host.pick(HOSTS));
        for p in paths.iter().take(4) {
            let service = SERVICES[p.service as usize % SERVICES.len()];
            let path_type = PATH_TYPES[p.path_type as usize % PATH_TYPES.len()];
            b = if p.named_port {
                b.path_typed(p.path.pick(PATHS), path_type, service, "http")
            } else {
                b.path_typed(p.path.pick(PATHS), path_type, service, 80)
            };
        }
    }
    if let Some(s) = spec.default_backend {
        b = b.default_backend(SERVICES[s as usize % SERVICES.len()], 80);
    }
    if let Some((hosts, exists)) = &spec.tls {
        let hosts: Vec<&str> = hosts.iter().take(4).map(|h| h.pick(HOSTS)).collect();
        b = b.tls(&hosts, if *exists { "tls" } else { "absent" });
    }
    b.build()
}

fuzz_target!(|ingresses: Vec<Ing<'_>>| {
    let mut state = ClusterState {
        ingresses: ingresses.iter().take(6).enumerate().map(|(i, s)| Arc::new(ingress(i, s))).collect(),
        secrets: vec![Arc::new(secret())],
        ..Default::default()
    };
    for (name, ip) in [("stable", "192.0.2.1"), ("canary", "192.0.2.2")] {
        state.services.push(Arc::new(fixtures::service(name).port("http", 80, 8080).build()));
        state.slices.push(Arc::new(
            fixtures::endpoint_slice(&format!("{name}-1"), name).port("http", 8080).ready(ip).build(),
        ));
    }
    let opts = Options::default();
    let first = translate(&state, &opts);
    if let Err(e) = RouteTable::from_doc(&first.doc) {
        panic!("the proxy would refuse the whole table: {e}\n{:#?}", first.doc);
    }
    state.ingresses.reverse();
    let again = translate(&state, &opts);
    assert_eq!(first.doc, again.doc, "the table depends on the order the Ingresses arrived in");
});
