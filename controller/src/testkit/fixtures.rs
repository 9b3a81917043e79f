//! Builder fixtures with real shapes: Ingresses as users and Argo Rollouts write them,
//! Services with named ports, EndpointSlices with ready/terminating conditions.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Secret, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressClassSpec,
    IngressRule, IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;

pub const PREFIX: &str = "nginx.ingress.kubernetes.io";
/// Fixture creation times count seconds from this instant (2025-01-01T00:00:00Z).
pub const EPOCH: i64 = 1_735_689_600;

/// A Service port reference: by number or by name.
#[derive(Debug, Clone)]
pub enum Port {
    Number(i32),
    Name(String),
}

impl From<i32> for Port {
    fn from(n: i32) -> Port {
        Port::Number(n)
    }
}

impl From<&str> for Port {
    fn from(s: &str) -> Port {
        Port::Name(s.into())
    }
}

fn service_backend(service: &str, port: Port) -> IngressBackend {
    let port = match port {
        Port::Number(n) => ServiceBackendPort { number: Some(n), name: None },
        Port::Name(s) => ServiceBackendPort { number: None, name: Some(s) },
    };
    IngressBackend {
        service: Some(IngressServiceBackend { name: service.into(), port: Some(port) }),
        resource: None,
    }
}

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta { namespace: Some(namespace.into()), name: Some(name.into()), ..Default::default() }
}

/// A creation time `secs` seconds after [`EPOCH`].
pub fn at(secs: i64) -> Time {
    Time(Timestamp::from_second(EPOCH + secs).unwrap_or_default())
}

/// An Ingress under construction. `host` starts a rule; `path` adds to the last rule.
#[derive(Debug, Clone)]
pub struct IngressBuilder {
    ing: Ingress,
}

/// An ordinary Ingress of class `weir` in namespace `default`, created at [`EPOCH`].
pub fn ingress(name: &str) -> IngressBuilder {
    let mut ing = Ingress { metadata: meta("default", name), ..Default::default() };
    ing.metadata.creation_timestamp = Some(at(0));
    ing.spec = Some(IngressSpec { ingress_class_name: Some("weir".into()), ..Default::default() });
    IngressBuilder { ing }
}

/// A canary Ingress exactly as Argo Rollouts' nginx router writes it: named
/// `<rollout>-<stable>-canary`, owned by the Rollout, `canary: "true"`, `canary-weight: "0"`.
/// Add its rules with `host`/`path` (Argo copies the stable Ingress's rules that point at
/// the stable Service, retargeted to the canary Service; see [`argo_canary`]).
pub fn canary_ingress(rollout: &str, stable_ingress: &str) -> IngressBuilder {
    ingress(&format!("{rollout}-{stable_ingress}-canary"))
        .annotation(&format!("{PREFIX}/canary"), "true")
        .weight(0)
        .owned_by_rollout(rollout)
}

/// Argo's canary for `stable`: its rules pointing at `stable_service`, retargeted to
/// `canary_service`, its TLS and class copied.
pub fn argo_canary(
    stable: &Ingress,
    rollout: &str,
    stable_service: &str,
    canary_service: &str,
) -> IngressBuilder {
    let name = stable.metadata.name.clone().unwrap_or_default();
    let mut b =
        canary_ingress(rollout, &name).namespace(stable.metadata.namespace.as_deref().unwrap_or("default"));
    let mut spec = stable.spec.clone().unwrap_or_default();
    spec.default_backend = None;
    for rule in spec.rules.iter_mut().flatten() {
        if let Some(http) = rule.http.as_mut() {
            http.paths
                .retain(|p| p.backend.service.as_ref().map(|s| s.name.as_str()) == Some(stable_service));
            for p in &mut http.paths {
                if let Some(s) = p.backend.service.as_mut() {
                    s.name = canary_service.into();
                }
            }
        }
    }
    b.ing.spec = Some(spec);
    b
}

impl IngressBuilder {
    pub fn namespace(mut self, ns: &str) -> Self {
        self.ing.metadata.namespace = Some(ns.into());
        self
    }
    /// Creation time, seconds after [`EPOCH`]: older Ingresses win conflicts.
    pub fn created(mut self, secs: i64) -> Self {
        self.ing.metadata.creation_timestamp = Some(at(secs));
        self
    }
    fn spec(&mut self) -> &mut IngressSpec {
        self.ing.spec.get_or_insert_with(Default::default)
    }
    /// `spec.ingressClassName`; `None` removes it.
    pub fn class(mut self, class: Option<&str>) -> Self {
        self.spec().ingress_class_name = class.map(Into::into);
        self
    }
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.ing.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(key.into(), value.into());
        self
    }
    /// `<prefix>/<name>` with the default prefix.
    pub fn nginx(self, name: &str, value: &str) -> Self {
        self.annotation(&format!("{PREFIX}/{name}"), value)
    }
    pub fn weight(self, w: i64) -> Self {
        self.nginx("canary-weight", &w.to_string())
    }
    pub fn weight_total(self, t: i64) -> Self {
        self.nginx("canary-weight-total", &t.to_string())
    }
    pub fn owned_by_rollout(mut self, rollout: &str) -> Self {
        self.ing.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Rollout".into(),
            name: rollout.into(),
            uid: format!("uid-{rollout}"),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        self
    }
    /// Start a rule for `host` (`""` for any host).
    pub fn host(mut self, host: &str) -> Self {
        let host = (!host.is_empty()).then(|| host.to_string());
        self.spec()
            .rules
            .get_or_insert_with(Vec::new)
            .push(IngressRule { host, http: Some(HTTPIngressRuleValue { paths: Vec::new() }) });
        self
    }
    /// Add a `Prefix` path to the last rule (starting a host-less rule if there is none).
    pub fn path(self, path: &str, service: &str, port: impl Into<Port>) -> Self {
        self.path_typed(path, "Prefix", service, port)
    }
    pub fn path_typed(mut self, path: &str, path_type: &str, service: &str, port: impl Into<Port>) -> Self {
        if self.spec().rules.as_ref().is_none_or(Vec::is_empty) {
            self = self.host("");
        }
        let p = HTTPIngressPath {
            path: Some(path.into()),
            path_type: path_type.into(),
            backend: service_backend(service, port.into()),
        };
        if let Some(rule) = self.spec().rules.as_mut().and_then(|r| r.last_mut()) {
            rule.http.get_or_insert_with(Default::default).paths.push(p);
        }
        self
    }
    pub fn default_backend(mut self, service: &str, port: impl Into<Port>) -> Self {
        self.spec().default_backend = Some(service_backend(service, port.into()));
        self
    }
    pub fn tls(mut self, hosts: &[&str], secret: &str) -> Self {
        self.spec().tls.get_or_insert_with(Vec::new).push(IngressTLS {
            hosts: Some(hosts.iter().map(|h| h.to_string()).collect()),
            secret_name: Some(secret.into()),
        });
        self
    }
    pub fn build(self) -> Ingress {
        self.ing
    }
}

/// A ClusterIP Service in `default`; add ports with [`ServiceBuilder::port`].
pub fn service(name: &str) -> ServiceBuilder {
    ServiceBuilder {
        svc: Service {
            metadata: meta("default", name),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                ports: Some(Vec::new()),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

#[derive(Debug, Clone)]
pub struct ServiceBuilder {
    svc: Service,
}

impl ServiceBuilder {
    pub fn namespace(mut self, ns: &str) -> Self {
        self.svc.metadata.namespace = Some(ns.into());
        self
    }
    /// A port `port` named `name` (`""` for unnamed) whose targetPort is `target` (a number
    /// or a container port name).
    pub fn port(mut self, name: &str, port: i32, target: impl Into<Port>) -> Self {
        let target_port = match target.into() {
            Port::Number(n) => IntOrString::Int(n),
            Port::Name(s) => IntOrString::String(s),
        };
        let sp = ServicePort {
            name: (!name.is_empty()).then(|| name.to_string()),
            port,
            target_port: Some(target_port),
            protocol: Some("TCP".into()),
            ..Default::default()
        };
        if let Some(ports) = self.svc.spec.as_mut().and_then(|s| s.ports.as_mut()) {
            ports.push(sp);
        }
        self
    }
    pub fn type_(mut self, t: &str) -> Self {
        if let Some(s) = self.svc.spec.as_mut() {
            s.type_ = Some(t.into());
        }
        self
    }
    /// `spec.clusterIP` (`"None"` for a headless Service).
    pub fn cluster_ip(mut self, ip: &str) -> Self {
        if let Some(s) = self.svc.spec.as_mut() {
            s.cluster_ip = Some(ip.into());
        }
        self
    }
    pub fn build(self) -> Service {
        self.svc
    }
}

/// An IPv4 EndpointSlice `name` of Service `service` in `default`.
pub fn endpoint_slice(name: &str, service: &str) -> SliceBuilder {
    let mut metadata = meta("default", name);
    metadata.labels = Some(BTreeMap::from([
        ("kubernetes.io/service-name".to_string(), service.to_string()),
        ("endpointslice.kubernetes.io/managed-by".to_string(), "endpointslice-controller.k8s.io".to_string()),
    ]));
    SliceBuilder {
        slice: EndpointSlice {
            metadata,
            address_type: "IPv4".into(),
            endpoints: Vec::new(),
            ports: Some(Vec::new()),
        },
    }
}

#[derive(Debug, Clone)]
pub struct SliceBuilder {
    slice: EndpointSlice,
}

impl SliceBuilder {
    pub fn namespace(mut self, ns: &str) -> Self {
        self.slice.metadata.namespace = Some(ns.into());
        self
    }
    pub fn address_type(mut self, t: &str) -> Self {
        self.slice.address_type = t.into();
        self
    }
    /// A slice port: the Service port's name (`""` if unnamed) and the resolved target port.
    pub fn port(mut self, name: &str, port: i32) -> Self {
        self.slice.ports.get_or_insert_with(Vec::new).push(EndpointPort {
            name: Some(name.into()),
            port: Some(port),
            protocol: Some("TCP".into()),
            app_protocol: None,
        });
        self
    }
    fn endpoint(mut self, ip: &str, ready: bool, terminating: bool) -> Self {
        self.slice.endpoints.push(Endpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(ready || terminating),
                terminating: Some(terminating),
            }),
            ..Default::default()
        });
        self
    }
    pub fn ready(self, ip: &str) -> Self {
        self.endpoint(ip, true, false)
    }
    pub fn not_ready(self, ip: &str) -> Self {
        self.endpoint(ip, false, false)
    }
    /// Terminating but still serving (what a pod in its grace period looks like).
    pub fn terminating(self, ip: &str) -> Self {
        let mut s = self.endpoint(ip, false, true);
        if let Some(c) = s.slice.endpoints.last_mut().and_then(|e| e.conditions.as_mut()) {
            c.serving = Some(true);
        }
        s
    }
    pub fn build(self) -> EndpointSlice {
        self.slice
    }
}

/// A freshly generated self-signed ECDSA certificate and its key, as PEM.
#[derive(Clone)]
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A self-signed certificate for `names`.
pub fn test_cert(names: &[&str]) -> TestCert {
    let c = rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("rcgen generates a self-signed certificate");
    TestCert { cert_pem: c.cert.pem(), key_pem: c.signing_key.serialize_pem() }
}

/// A `kubernetes.io/tls` Secret in `default` holding a fresh certificate for `example.com`.
pub fn tls_secret(name: &str) -> Secret {
    tls_secret_with(name, &test_cert(&["example.com"]))
}

/// A `kubernetes.io/tls` Secret in `default` holding `cert`.
pub fn tls_secret_with(name: &str, cert: &TestCert) -> Secret {
    Secret {
        metadata: meta("default", name),
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_string(), ByteString(cert.cert_pem.clone().into_bytes())),
            ("tls.key".to_string(), ByteString(cert.key_pem.clone().into_bytes())),
        ])),
        ..Default::default()
    }
}

/// An IngressClass `name` implemented by `controller`, optionally the cluster default.
pub fn ingress_class(name: &str, controller: &str, default: bool) -> IngressClass {
    let mut metadata = ObjectMeta { name: Some(name.into()), ..Default::default() };
    if default {
        metadata.annotations = Some(BTreeMap::from([(
            "ingressclass.kubernetes.io/is-default-class".to_string(),
            "true".to_string(),
        )]));
    }
    IngressClass {
        metadata,
        spec: Some(IngressClassSpec { controller: Some(controller.into()), parameters: None }),
    }
}

/// A WeirRoute as the Argo Rollouts plugin writes it, in namespace `default`, created at
/// [`EPOCH`], generation 1: stable `app`, canary `app-canary`, stable Ingress `app`, weight 0
/// of 100.
pub fn weir_route(name: &str) -> WeirRouteBuilder {
    use crate::weirroute::{RouteSpec, WeirRoute};
    let mut metadata = meta("default", name);
    metadata.creation_timestamp = Some(at(0));
    metadata.generation = Some(1);
    WeirRouteBuilder {
        wr: WeirRoute {
            metadata,
            spec: RouteSpec {
                stable_service: "app".into(),
                canary_service: "app-canary".into(),
                stable_ingresses: vec!["app".into()],
                max_weight: 100,
                ..Default::default()
            },
            status: None,
        },
    }
}

#[derive(Debug, Clone)]
pub struct WeirRouteBuilder {
    wr: crate::weirroute::WeirRoute,
}

impl WeirRouteBuilder {
    /// `spec.stickyAssignment` with this cookie (empty: the default).
    pub fn sticky_assignment(mut self, cookie: &str) -> Self {
        let cookie = cookie.to_string();
        self.wr.spec.sticky_assignment =
            Some(crate::weirroute::StickyAssignment { cookie, max_age_seconds: None });
        self
    }
    pub fn namespace(mut self, ns: &str) -> Self {
        self.wr.metadata.namespace = Some(ns.into());
        self
    }
    pub fn created(mut self, secs: i64) -> Self {
        self.wr.metadata.creation_timestamp = Some(at(secs));
        self
    }
    pub fn generation(mut self, g: i64) -> Self {
        self.wr.metadata.generation = Some(g);
        self
    }
    pub fn services(mut self, stable: &str, canary: &str) -> Self {
        self.wr.spec.stable_service = stable.into();
        self.wr.spec.canary_service = canary.into();
        self
    }
    pub fn ingresses(mut self, names: &[&str]) -> Self {
        self.wr.spec.stable_ingresses = names.iter().map(|n| n.to_string()).collect();
        self
    }
    pub fn weight(mut self, w: i64) -> Self {
        self.wr.spec.weight = w;
        self
    }
    pub fn max_weight(mut self, m: i64) -> Self {
        self.wr.spec.max_weight = m;
        self
    }
    /// `spec.canaryHash` (Argo's UpdateHash).
    pub fn canary_hash(mut self, h: &str) -> Self {
        self.wr.spec.canary_hash = h.into();
        self
    }
    /// A header route of one match; `test` is `exact`, `prefix` or `regex`.
    pub fn header_route(mut self, name: &str, header: &str, test: &str, value: &str) -> Self {
        use crate::weirroute::{HeaderMatch, HeaderRoute, StringMatch};
        let v = Some(value.to_string());
        let value = match test {
            "exact" => StringMatch { exact: v, ..Default::default() },
            "prefix" => StringMatch { prefix: v, ..Default::default() },
            _ => StringMatch { regex: v, ..Default::default() },
        };
        self.wr.spec.header_routes.push(HeaderRoute {
            name: name.into(),
            matches: vec![HeaderMatch { header: header.into(), value }],
        });
        self
    }
    /// A mirror route of one match: `method` and `path_prefix` ("" for unset).
    pub fn mirror_route(mut self, name: &str, percentage: i64, method: &str, path_prefix: &str) -> Self {
        use crate::weirroute::{MirrorMatch, MirrorRoute};
        self.wr.spec.mirror_routes.push(MirrorRoute {
            name: name.into(),
            percentage,
            matches: vec![MirrorMatch {
                method: method.into(),
                path_prefix: path_prefix.into(),
                headers: vec![],
            }],
        });
        self
    }
    /// A spec field set as raw JSON (`additionalDestinations`, `mirrorRoutes`, `guard`).
    pub fn raw(mut self, field: &str, value: serde_json::Value) -> Self {
        match field {
            "additionalDestinations" => self.wr.spec.additional_destinations = vec![value],
            "mirrorRoutes" => {
                self.wr.spec.mirror_routes = vec![serde_json::from_value(value).expect("a mirror route")]
            }
            "guard" => self.wr.spec.guard = Some(value),
            other => panic!("raw: no field {other}"),
        }
        self
    }
    pub fn build(self) -> crate::weirroute::WeirRoute {
        self.wr
    }
}
