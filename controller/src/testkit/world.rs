//! A small world of Services and slices for the translation tests, and lookups into what
//! a translation made of it.

use std::sync::Arc;

use crate::testkit::fixtures::*;
use crate::translate::{translate, ClusterState, Options, Reason, Translation};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use weir_config::wire::{CanaryDoc, RuleDoc};
use weir_config::RouteTable;

#[derive(Default, Clone)]
pub struct World {
    pub ingresses: Vec<Ingress>,
    pub classes: Vec<IngressClass>,
    pub services: Vec<Service>,
    pub slices: Vec<EndpointSlice>,
    pub secrets: Vec<Secret>,
    pub weir_routes: Vec<crate::weirroute::WeirRoute>,
}

/// Services `app` and `app-canary` (port `http` 80 → 8080) with ready endpoints; the
/// `app` slice also lists a not-ready and a terminating pod that must be left out.
pub fn world() -> World {
    World {
        services: vec![
            service("app").port("http", 80, 8080).build(),
            service("app-canary").port("http", 80, 8080).build(),
        ],
        slices: vec![
            endpoint_slice("app-x1", "app")
                .port("http", 8080)
                .ready("10.0.0.2")
                .ready("10.0.0.1")
                .not_ready("10.0.0.3")
                .terminating("10.0.0.4")
                .build(),
            endpoint_slice("app-canary-y1", "app-canary").port("http", 8080).ready("10.0.1.1").build(),
        ],
        ..Default::default()
    }
}

impl World {
    pub fn with(mut self, ing: IngressBuilder) -> Self {
        self.ingresses.push(ing.build());
        self
    }
    pub fn with_route(mut self, wr: WeirRouteBuilder) -> Self {
        self.weir_routes.push(wr.build());
        self
    }
    pub fn state(&self) -> ClusterState {
        ClusterState {
            ingresses: self.ingresses.iter().cloned().map(Arc::new).collect(),
            classes: self.classes.iter().cloned().map(Arc::new).collect(),
            services: self.services.iter().cloned().map(Arc::new).collect(),
            slices: self.slices.iter().cloned().map(Arc::new).collect(),
            secrets: self.secrets.iter().cloned().map(Arc::new).collect(),
            weir_routes: self.weir_routes.iter().cloned().map(Arc::new).collect(),
            ..Default::default()
        }
    }
    /// Translate with default options; the table must always validate.
    pub fn run(&self) -> Translation {
        let t = translate(&self.state(), &Options::default());
        if let Err(e) = RouteTable::from_doc(&t.doc) {
            panic!("translated table does not validate: {e}\n{:#?}", t.doc);
        }
        t
    }
}

pub fn rule<'a>(t: &'a Translation, host: Option<&str>, path: &str) -> &'a RuleDoc {
    let h =
        t.doc.hosts.iter().find(|h| h.host.as_deref() == host).unwrap_or_else(|| panic!("no host {host:?}"));
    h.rules.iter().find(|r| r.path == path).unwrap_or_else(|| panic!("no path {path} in {host:?}"))
}

pub fn canary<'a>(t: &'a Translation, host: Option<&str>, path: &str) -> &'a CanaryDoc {
    rule(t, host, path).canary.as_ref().unwrap_or_else(|| panic!("no canary on {host:?} {path}"))
}

pub fn reasons(t: &Translation) -> Vec<(String, Reason)> {
    t.diagnostics.iter().map(|d| (d.ingress.name.clone(), d.reason)).collect()
}

pub fn main_app() -> IngressBuilder {
    ingress("app").host("app.example.com").path("/", "app", "http")
}
