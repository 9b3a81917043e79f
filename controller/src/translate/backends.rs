//! Service backends → ready endpoints, and the lookup tables the translation uses.
//!
//! A Service port is found by number or name; its endpoints come from the Service's
//! EndpointSlices (label `kubernetes.io/service-name`), taking the slice port whose name
//! equals the Service port's name (that is how `targetPort`, even a named one, resolves).
//! Only ready endpoints that are not terminating are used; `ready` unset means ready.

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
        let key = (
            service.metadata.namespace.as_deref().unwrap_or(""),
            service.metadata.name.as_deref().unwrap_or(""),
            service_port.name.as_deref().unwrap_or(""),
        );
        let mut cache = self.endpoints.borrow_mut();
        doc.endpoints = cache.entry(key).or_insert_with(|| self.endpoints(key.0, key.1, key.2)).clone();
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
