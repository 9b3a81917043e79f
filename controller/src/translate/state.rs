//! The inputs and settings of the translation, and the TLS bindings it reports: the types
//! its steps share, re-exported by the translate module.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use super::certs::CertChecks;
use super::diagnostics::IngressRef;
use crate::annotations::catalog::Waivers;

/// Everything the translation reads, as the reflectors' stores hold it.
#[derive(Clone, Default)]
pub struct ClusterState {
    pub ingresses: Vec<Arc<Ingress>>,
    pub classes: Vec<Arc<IngressClass>>,
    pub services: Vec<Arc<Service>>,
    pub slices: Vec<Arc<EndpointSlice>>,
    pub secrets: Vec<Arc<Secret>>,
    /// WeirRoutes (empty when the CRD is not installed).
    pub weir_routes: Vec<Arc<crate::weirroute::WeirRoute>>,
    /// Memoized certificate checks; keep one across translations (clones share it).
    pub cert_checks: CertChecks,
}

/// Counts only: the derived form would print Secrets' private keys.
impl std::fmt::Debug for ClusterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterState")
            .field("ingresses", &self.ingresses.len())
            .field("classes", &self.classes.len())
            .field("services", &self.services.len())
            .field("slices", &self.slices.len())
            .field("secrets", &self.secrets.len())
            .field("weir_routes", &self.weir_routes.len())
            .field("cert_checks", &self.cert_checks)
            .finish()
    }
}

/// Which Ingresses are weir's and how their annotations are spelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The ingress class name weir serves (`--class`, default `weir`).
    pub class: String,
    /// The `spec.controller` of IngressClasses weir implements (`--controller-name`).
    pub controller_name: String,
    /// Annotation prefix without the trailing `/` (default `nginx.ingress.kubernetes.io`).
    pub annotation_prefix: String,
    /// `--default-ssl-certificate`: the TLS Secret (namespace, name) served when SNI names
    /// no host with a certificate.
    pub default_certificate: Option<(String, String)>,
    /// `--accept-annotation`: refused keys the operator accepts (served without them).
    pub accepted: Waivers,
    /// The table's `clientAddress` (`--use-forwarded-headers` with `--proxy-real-ip-cidr`,
    /// or `--use-proxy-protocol`, as ingress-nginx's ConfigMap keys): the client address
    /// IP allow/deny lists judge. `None`: the TCP peer.
    pub client_address: Option<weir_config::access::doc::ClientAddressDoc>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            class: "weir".into(),
            controller_name: "weir.dev/ingress-controller".into(),
            annotation_prefix: "nginx.ingress.kubernetes.io".into(),
            default_certificate: None,
            accepted: Default::default(),
            client_address: None,
        }
    }
}

/// A TLS host and the Secret chosen for it (see the `tls` step for the rules).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TlsBinding {
    /// The host as listed in `spec.tls[].hosts`, lower-cased; `None` for the default server.
    pub host: Option<String>,
    pub secret_namespace: String,
    pub secret_name: String,
    /// The Ingress that named it (the oldest one, when several name one host).
    pub ingress: IngressRef,
    /// Whether the Secret exists, is of type `kubernetes.io/tls` and holds a pair that
    /// passed the proxy's checks, i.e. whether the host got its certificate.
    pub found: bool,
}
