//! Service backends → ready endpoints, and the lookup tables the translation uses.
//!
//! A Service port is found by number or name; its endpoints come from the Service's
//! EndpointSlices (label `kubernetes.io/service-name`), taking the slice port whose name
//! equals the Service port's name (that is how `targetPort`, even a named one, resolves).
//! Only ready endpoints that are not terminating are used; `ready` unset means ready.
//! Per Ingress ([`Via`]): `service-upstream` makes the one endpoint the Service's
//! `ClusterIP:port`, and `default-backend`'s endpoints stand in for a rule's when it has none.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::IngressBackend;
use weir_config::wire::{BackendDoc, PortDoc};

use super::diagnostics::{Diagnostics, IngressRef, Reason};
use super::state::ClusterState;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Ready endpoints of one Service port, resolved once per translation and shared by
/// every rule that uses that port: keyed by the Service's namespace and name and the
/// Service port's name (which selects the slice port).
type EndpointKey<'a> = (&'a str, &'a str, &'a str);

/// How one Ingress wants its backends resolved: `service-upstream`, and the ready endpoints
/// of its `default-backend` (see [`Index::default_backend`]).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Via<'e> {
    pub(crate) service_upstream: bool,
    pub(crate) default_backend: Option<&'e [String]>,
}

/// Lookup tables built once per translation.
pub(crate) struct Index<'a> {
    endpoints: RefCell<HashMap<EndpointKey<'a>, Vec<String>>>,
    services: HashMap<(&'a str, &'a str), &'a Service>,
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    /// Secrets by (namespace, name), whatever their type (the TLS check reports a wrong one).
    pub(crate) secrets: HashMap<(&'a str, &'a str), &'a Secret>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(state: &'a ClusterState) -> Index<'a> {
        let key = |m: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            (m.namespace.as_deref().unwrap_or(""), m.name.as_deref().unwrap_or(""))
        };
        let services = state.services.iter().map(|s| (key(&s.metadata), &**s)).collect();
        let mut slices: HashMap<_, Vec<&EndpointSlice>> = HashMap::new();
        for s in &state.slices {
            if let Some(svc) = s.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) {
                slices
                    .entry((s.metadata.namespace.as_deref().unwrap_or(""), svc.as_str()))
                    .or_default()
                    .push(s);
            }
        }
        let secrets = state.secrets.iter().map(|s| (key(&s.metadata), &**s)).collect();
        Index { endpoints: RefCell::default(), services, slices, secrets }
    }

    /// The ports of Service `namespace/name`, when it exists.
    pub(crate) fn service_ports(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<&'a [k8s_openapi::api::core::v1::ServicePort]> {
        let service = self.services.get(&(namespace, name))?;
        Some(service.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or_default())
    }

    /// The wire backend for an Ingress backend, or `None` when weir cannot serve it
    /// (a `resource` backend). A missing Service or port keeps the backend, with no
    /// endpoints, and reports it: the proxy answers 503, as ingress-nginx does.
    pub(crate) fn backend(
        &self,
        at: &IngressRef,
        backend: &IngressBackend,
        diags: &mut Diagnostics,
    ) -> Option<BackendDoc> {
        self.backend_via(at, backend, &Via::default(), diags)
    }

    /// [`Index::backend`] with the Ingress's `service-upstream` and `default-backend`.
    /// The labels (namespace, Ingress, Service, port) stay the rule's either way: what
    /// ingress-nginx's metrics name (its `service` label is the rule's Service, also when
    /// the custom default backend's upstream answers).
    pub(crate) fn backend_via(
        &self,
        at: &IngressRef,
        backend: &IngressBackend,
        via: &Via<'_>,
        diags: &mut Diagnostics,
    ) -> Option<BackendDoc> {
        let mut doc = self.resolve(at, backend, via.service_upstream, diags)?;
        // ingress-nginx: a location whose upstream has no endpoints (no Service, no such
        // port, no ready pod) sends to the custom default backend's, when it has some. An
        // ExternalName Service has endpoints there (its name); weir serves none, so its rule
        // keeps answering 503 rather than reaching the default backend.
        let external = backend
            .service
            .as_ref()
            .and_then(|s| self.services.get(&(at.namespace.as_str(), s.name.as_str())))
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.type_.as_deref())
            == Some("ExternalName");
        if doc.endpoints.is_empty() && !external {
            if let Some(fallback) = via.default_backend {
                doc.endpoints = fallback.to_vec();
            }
        }
        Some(doc)
    }

    /// The ready endpoints of an Ingress's `default-backend` Service (its first port, as
    /// ingress-nginx takes), or `None`, reported, when the annotation cannot be used: the
    /// Service does not exist (ingress-nginx ignores the annotation then), is ExternalName,
    /// or has no port. Empty when it has no ready endpoints (ingress-nginx then keeps the
    /// rule's own upstream: the same 503).
    pub(crate) fn default_backend(
        &self,
        at: &IngressRef,
        name: &str,
        diags: &mut Diagnostics,
    ) -> Option<Vec<String>> {
        let what = format!("default-backend service {}/{name}", at.namespace);
        let Some(&service) = self.services.get(&(at.namespace.as_str(), name)) else {
            let msg = format!("{what} does not exist; annotation ignored, as ingress-nginx does");
            diags.warn(at, Reason::ServiceNotFound, msg);
            return None;
        };
        let spec = service.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            let msg =
                format!("{what} is of type ExternalName, which weir does not serve; annotation ignored");
            diags.warn(at, Reason::UnsupportedRule, msg);
            return None;
        }
        let Some(first) = spec.and_then(|s| s.ports.as_deref()).and_then(<[_]>::first) else {
            let msg = format!("{what} has no ports; annotation ignored, as ingress-nginx does");
            diags.warn(at, Reason::ServicePortNotFound, msg);
            return None;
        };
        let key = (
            service.metadata.namespace.as_deref().unwrap_or(""),
            service.metadata.name.as_deref().unwrap_or(""),
            first.name.as_deref().unwrap_or(""),
        );
        Some(self.cached_endpoints(key))
    }

    /// [`Index::endpoints`], once per Service port and translation.
    fn cached_endpoints(&self, key: EndpointKey<'a>) -> Vec<String> {
        let mut cache = self.endpoints.borrow_mut();
        cache.entry(key).or_insert_with(|| self.endpoints(key.0, key.1, key.2)).clone()
    }

    fn resolve(
        &self,
        at: &IngressRef,
        backend: &IngressBackend,
        service_upstream: bool,
        diags: &mut Diagnostics,
    ) -> Option<BackendDoc> {
        let Some(svc) = backend.service.as_ref() else {
            diags.warn(at, Reason::UnsupportedRule, "a resource backend is not supported; rule skipped");
            return None;
        };
        let port = svc.port.as_ref().and_then(|p| match (p.number, &p.name) {
            (Some(n), _) if n != 0 => Some(PortDoc::Number(i64::from(n))),
            (_, Some(name)) if !name.is_empty() => Some(PortDoc::Name(name.clone())),
            _ => None,
        });
        let mut doc = BackendDoc {
            namespace: Some(at.namespace.clone()),
            ingress: Some(at.name.clone()),
            service: Some(svc.name.clone()),
            port: port.clone(),
            endpoints: Vec::new(),
        };
        let Some(&service) = self.services.get(&(at.namespace.as_str(), svc.name.as_str())) else {
            diags.warn(
                at,
                Reason::ServiceNotFound,
                format!("service {}/{} does not exist", at.namespace, svc.name),
            );
            return Some(doc);
        };
        let spec = service.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            diags.warn(
                at,
                Reason::UnsupportedRule,
                format!(
                    "service {}/{} is of type ExternalName, which weir does not serve",
                    at.namespace, svc.name
                ),
            );
            return Some(doc);
        }
        let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
        let found = match &port {
            Some(PortDoc::Number(n)) => ports.iter().find(|p| i64::from(p.port) == *n),
            Some(PortDoc::Name(name)) => ports.iter().find(|p| p.name.as_deref() == Some(name.as_str())),
            // No port given: ingress-nginx takes the Service's only port.
            None => (ports.len() == 1).then(|| &ports[0]),
        };
        let Some(service_port) = found else {
            let wanted = match &port {
                Some(PortDoc::Number(n)) => n.to_string(),
                Some(PortDoc::Name(n)) => format!("{n:?}"),
                None => "(none given)".into(),
            };
            diags.warn(
                at,
                Reason::ServicePortNotFound,
                format!("service {}/{} has no port {wanted}", at.namespace, svc.name),
            );
            return Some(doc);
        };
        if service_upstream {
            // ingress-nginx's getServiceClusterEndpoint: the ClusterIP and the Service port;
            // none (headless "None", or unset) falls back to the endpoints.
            let ip = spec.and_then(|s| s.cluster_ip.as_deref()).filter(|ip| !ip.is_empty() && *ip != "None");
            match ip.map(|ip| (ip, ip.parse::<IpAddr>(), u16::try_from(service_port.port))) {
                Some((_, Ok(ip), Ok(port))) if port != 0 => {
                    doc.endpoints = vec![SocketAddr::new(ip, port).to_string()];
                    return Some(doc);
                }
                Some((ip, _, _)) => diags.warn(
                    at,
                    Reason::InvalidAnnotation,
                    format!(
                        "service-upstream: service {}/{} has ClusterIP {ip:?} and port {}, not an address weir can use; using its endpoints",
                        at.namespace, svc.name, service_port.port
                    ),
                ),
                None => diags.warn(
                    at,
                    Reason::InvalidAnnotation,
                    format!(
                        "service-upstream: service {}/{} has no ClusterIP (headless); using its endpoints, as ingress-nginx does",
                        at.namespace, svc.name
                    ),
                ),
            }
        }
        let key = (
            service.metadata.namespace.as_deref().unwrap_or(""),
            service.metadata.name.as_deref().unwrap_or(""),
            service_port.name.as_deref().unwrap_or(""),
        );
        doc.endpoints = self.cached_endpoints(key);
        Some(doc)
    }

    /// Ready, non-terminating endpoint addresses of one Service port, sorted, no duplicates
    /// (a pod appears in two slices while they are being rebalanced).
    fn endpoints(&self, namespace: &str, service: &str, want: &str) -> Vec<String> {
        let mut out = BTreeSet::new();
        for slice in self.slices.get(&(namespace, service)).map(Vec::as_slice).unwrap_or_default() {
            if slice.address_type == "FQDN" {
                continue;
            }
            let Some(number) = slice
                .ports
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|p| p.name.as_deref().unwrap_or("") == want)
                .and_then(|p| p.port)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n != 0)
            else {
                continue;
            };
            for ep in &slice.endpoints {
                let cond = ep.conditions.as_ref();
                let ready = cond.and_then(|c| c.ready).unwrap_or(true);
                let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
                if !ready || terminating {
                    continue;
                }
                if let Some(ip) = ep.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) {
                    out.insert(SocketAddr::new(ip, number));
                }
            }
        }
        out.into_iter().map(|a| a.to_string()).collect()
    }
}
