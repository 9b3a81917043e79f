//! WeirRoutes (the Argo Rollouts traffic-router plugin's contract, plugin/README.md) attached
//! to the rules of their stable Ingresses: the weighted split to the canary Service and the
//! managed header and mirror routes, on the same canary machinery the nginx canary
//! annotations use.
//!
//! Which rules: every rule (and `spec.defaultBackend` filling) of each Ingress named in
//! `stableIngresses` whose backend is `stableService`. Precedence: a WeirRoute attaches
//! before any canary Ingress, so a rule it holds is not also split by a canary Ingress (an
//! Argo nginx-router canary for the same rule is reported as CanaryConflict and is inert
//! there); between WeirRoutes naming one rule, the oldest holds it and the other is refused.
//!
//! `spec.guard` arms the proxy's local canary guard on every rule of the WeirRoute: one
//! guard, named after the WeirRoute and revised by `spec.canaryHash`.
//!
//! `spec.additionalDestinations` (Argo experiments) become the rules' additional weighted
//! destinations: each experiment Service on the rule's port (or its only port), its share out
//! of `maxWeight` drawn after the canary's.
//!
//! All or nothing per WeirRoute: a generation weir cannot express (destinations whose shares
//! exceed `maxWeight` or that name stable or the canary, a guard, header or mirror route
//! weir-config would reject, a missing Ingress, no
//! rule sending to `stableService`) is refused with a message, and the rules it names send
//! everything to stable (no weight, no header routes, and no canary Ingress either), which
//! never makes the canary more reachable than the Rollout asked.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::{IngressBackend, IngressServiceBackend, ServiceBackendPort};
use weir_config::wire::{
    BackendDoc, CanaryDoc, DestinationDoc, GuardDoc, HeaderMatchDoc, HeaderRouteDoc, MirrorMatchDoc,
    MirrorRouteDoc, PortDoc, StickyAssignmentDoc,
};

use super::backends::Index;
use super::diagnostics::{Diagnostics, IngressRef};
use super::rules::{Attached, RouteHold, RuleKey, Table};
use crate::weirroute::{Destination, DestinationWeight, GuardPolicy, HeaderMatch, WeirRoute};

/// What the translation made of one WeirRoute (at its generation).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteOutcome {
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    /// The canary weight in force, or why the generation was refused.
    pub applied: Result<i64, String>,
    /// The object's uid (for Events about it).
    pub uid: String,
    /// The canary guard the applied generation arms: its revision (the canary hash).
    pub guard: Option<String>,
    /// The additional destinations' shares in force (when applied).
    pub destinations: Vec<DestinationWeight>,
}

/// Oldest first; ties by namespace/name, as Ingresses are ordered.
fn by_age(routes: &[Arc<WeirRoute>]) -> Vec<&WeirRoute> {
    let mut ordered: Vec<&WeirRoute> = routes.iter().map(|r| &**r).collect();
    ordered.sort_by(|a, b| {
        let key = |r: &WeirRoute| {
            (
                r.metadata.creation_timestamp.as_ref().map(|t| t.0),
                r.metadata.namespace.clone().unwrap_or_default(),
                r.metadata.name.clone().unwrap_or_default(),
            )
        };
        key(a).cmp(&key(b))
    });
    ordered
}

/// The contract's header matches as weir-config's.
fn header_matches(matches: &[HeaderMatch]) -> Vec<HeaderMatchDoc> {
    matches
        .iter()
        .map(|m| HeaderMatchDoc {
            header: m.header.clone(),
            exact: m.value.exact.clone(),
            prefix: m.value.prefix.clone(),
            regex: m.value.regex.clone(),
        })
        .collect()
}

/// weir-config's field errors, with the paths the contract has: weir-config puts the value
/// test on the match itself; the contract nests it in `value`.
fn contract_errors(errors: &[weir_config::FieldError]) -> String {
    let nested = |field: &str| {
        for test in [".exact", ".prefix", ".regex"] {
            if let Some(head) = field.strip_suffix(test) {
                return format!("{head}.value{test}");
            }
        }
        field.to_string()
    };
    errors.iter().map(|e| format!("{}: {}", nested(&e.field), e.reason)).collect::<Vec<_>>().join("; ")
}

/// The contract's header routes as weir-config's, checked by weir-config itself.
fn header_routes(wr: &WeirRoute) -> Result<Vec<HeaderRouteDoc>, String> {
    let docs: Vec<HeaderRouteDoc> = wr
        .spec
        .header_routes
        .iter()
        .map(|r| HeaderRouteDoc { name: r.name.clone(), matches: header_matches(&r.matches) })
        .collect();
    let errors = weir_config::validate::check_header_routes("spec", &docs);
    match errors.is_empty() {
        true => Ok(docs),
        false => Err(contract_errors(&errors)),
    }
}

/// The contract's mirror routes as weir-config's, checked by weir-config itself.
fn mirror_routes(wr: &WeirRoute) -> Result<Vec<MirrorRouteDoc>, String> {
    let set = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let docs: Vec<MirrorRouteDoc> = wr
        .spec
        .mirror_routes
        .iter()
        .map(|r| MirrorRouteDoc {
            name: r.name.clone(),
            percentage: r.percentage,
            matches: r
                .matches
                .iter()
                .map(|m| MirrorMatchDoc {
                    method: set(&m.method),
                    path_prefix: set(&m.path_prefix),
                    headers: header_matches(&m.headers),
                })
                .collect(),
        })
        .collect();
    let errors = weir_config::validate::check_mirror_routes("spec", &docs);
    match errors.is_empty() {
        true => Ok(docs),
        false => Err(contract_errors(&errors)),
    }
}

/// A generation's header and mirror routes and guard, checked.
type Routes = (Vec<HeaderRouteDoc>, Vec<MirrorRouteDoc>, Option<GuardDoc>);

/// The spec checks that need no cluster object.
fn check_spec(wr: &WeirRoute) -> Result<Routes, String> {
    let s = &wr.spec;
    if s.stable_service.is_empty() || s.canary_service.is_empty() {
        return Err("spec.stableService and spec.canaryService are required".into());
    }
    if s.stable_service == s.canary_service {
        return Err(format!("spec.canaryService {:?} is also the stableService", s.canary_service));
    }
    if s.stable_ingresses.is_empty() {
        return Err("spec.stableIngresses is empty".into());
    }
    if s.max_weight < 1 || s.max_weight > i64::from(u32::MAX) {
        return Err(format!("spec.maxWeight {} is not in 1..{}", s.max_weight, u32::MAX));
    }
    if s.weight < 0 || s.weight > s.max_weight {
        return Err(format!("spec.weight {} is not in 0..{} (maxWeight)", s.weight, s.max_weight));
    }
    let destinations = destination_specs(wr)?;
    let sum = s.weight + destinations.iter().map(|d| d.weight).sum::<i64>();
    if sum > s.max_weight {
        return Err(format!(
            "spec.additionalDestinations: the canary's and the destinations' weights add up to {sum}, over \
             maxWeight {}",
            s.max_weight
        ));
    }
    if let Some(sticky) = &s.sticky_assignment {
        if !sticky.cookie.is_empty() && !weir_config::affinity::is_token(&sticky.cookie) {
            return Err(format!("spec.stickyAssignment.cookie: {:?} is not a cookie name", sticky.cookie));
        }
    }
    Ok((header_routes(wr)?, mirror_routes(wr)?, guard(wr)?))
}

/// `spec.additionalDestinations`, read and checked: each names a Service of the namespace
/// (not stable's or the canary's, nor one named twice) and a share ≥ 0.
fn destination_specs(wr: &WeirRoute) -> Result<Vec<Destination>, String> {
    let s = &wr.spec;
    let mut out: Vec<Destination> = Vec::new();
    for (i, raw) in s.additional_destinations.iter().enumerate() {
        let at = format!("spec.additionalDestinations[{i}]");
        let d: Destination = serde_json::from_value(raw.clone()).map_err(|e| format!("{at}: {e}"))?;
        if d.service_name.is_empty() {
            return Err(format!("{at}.serviceName: is required"));
        }
        if d.service_name == s.stable_service || d.service_name == s.canary_service {
            return Err(format!("{at}.serviceName: {:?} is the stable or canary Service", d.service_name));
        }
        if out.iter().any(|o| o.service_name == d.service_name) {
            return Err(format!("{at}.serviceName: {:?} is named twice", d.service_name));
        }
        if d.weight < 0 {
            return Err(format!("{at}.weight: {} is negative", d.weight));
        }
        out.push(d);
    }
    Ok(out)
}

/// The contract's guard as weir-config's, checked by weir-config itself: one guard per
/// WeirRoute (named after it, shared by all its rules), whose revision is the canary hash,
/// so a new canary is judged afresh.
fn guard(wr: &WeirRoute) -> Result<Option<GuardDoc>, String> {
    let Some(raw) = &wr.spec.guard else { return Ok(None) };
    let policy: GuardPolicy = serde_json::from_value(raw.clone()).map_err(|e| format!("spec.guard: {e}"))?;
    if !(1..=600).contains(&policy.window_seconds) {
        return Err(format!("spec.guard.windowSeconds: {} is not within 1..600", policy.window_seconds));
    }
    let doc = GuardDoc {
        name: wr.metadata.name.clone(),
        error_percent: policy.error_percent,
        window: format!("{}s", policy.window_seconds),
        min_requests: policy.min_requests,
        revision: (!wr.spec.canary_hash.is_empty()).then(|| wr.spec.canary_hash.clone()),
    };
    let errors = weir_config::validate::check_guard("spec.guard", &doc);
    let contract = |field: &str| match field {
        "spec.guard.revision" => "spec.canaryHash".to_string(),
        "spec.guard.window" => "spec.guard.windowSeconds".to_string(),
        other => other.to_string(),
    };
    match errors.is_empty() {
        true => Ok(Some(doc)),
        false => Err(errors
            .iter()
            .map(|e| format!("{}: {}", contract(&e.field), e.reason))
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// The port of an experiment's Service to send to: the rule's port when the Service has it,
/// else the Service's only port (Argo names an experiment Service's ports after the pod
/// template's container ports, not the stable Service's).
fn destination_port(
    index: &Index<'_>,
    namespace: &str,
    service: &str,
    rule: &Option<PortDoc>,
) -> Option<ServiceBackendPort> {
    let ports = index.service_ports(namespace, service).unwrap_or_default();
    let has = |p: &k8s_openapi::api::core::v1::ServicePort| match rule {
        Some(PortDoc::Number(n)) => i64::from(p.port) == *n,
        Some(PortDoc::Name(name)) => p.name.as_deref() == Some(name.as_str()),
        None => false,
    };
    match ports {
        [only] if !has(only) => Some(ServiceBackendPort { number: Some(only.port), ..Default::default() }),
        _ => port_of(rule),
    }
}

fn port_of(port: &Option<PortDoc>) -> Option<ServiceBackendPort> {
    match port {
        Some(PortDoc::Number(n)) => {
            Some(ServiceBackendPort { number: i32::try_from(*n).ok(), ..Default::default() })
        }
        Some(PortDoc::Name(name)) => {
            Some(ServiceBackendPort { name: Some(name.clone()), ..Default::default() })
        }
        None => None,
    }
}

type Slot = (Option<String>, RuleKey);

impl Table {
    /// Attach every WeirRoute; runs after the main rules and default backends, before any
    /// canary Ingress. Returns one outcome per WeirRoute, sorted.
    pub(crate) fn add_weir_routes(
        &mut self,
        routes: &[Arc<WeirRoute>],
        served: &[IngressRef],
        index: &Index<'_>,
        diags: &mut Diagnostics,
    ) -> Vec<RouteOutcome> {
        let mut out = Vec::new();
        for wr in by_age(routes) {
            let at = IngressRef {
                namespace: wr.metadata.namespace.clone().unwrap_or_default(),
                name: wr.metadata.name.clone().unwrap_or_default(),
            };
            let applied = self.add_weir_route(wr, &at, served, index, diags);
            if let Err(why) = &applied {
                tracing::debug!(weirroute = %at, "refused: {why}");
            }
            let guard = (applied.is_ok() && wr.spec.guard.is_some()).then(|| wr.spec.canary_hash.clone());
            let destinations = match (&applied, destination_specs(wr)) {
                (Ok(_), Ok(list)) => list
                    .into_iter()
                    .map(|d| DestinationWeight { service_name: d.service_name, weight: d.weight })
                    .collect(),
                _ => Vec::new(),
            };
            out.push(RouteOutcome {
                namespace: at.namespace,
                name: at.name,
                generation: wr.metadata.generation.unwrap_or(0),
                applied,
                uid: wr.metadata.uid.clone().unwrap_or_default(),
                guard,
                destinations,
            });
        }
        out.sort();
        out
    }

    fn add_weir_route(
        &mut self,
        wr: &WeirRoute,
        at: &IngressRef,
        served: &[IngressRef],
        index: &Index<'_>,
        diags: &mut Diagnostics,
    ) -> Result<i64, String> {
        let spec = &wr.spec;
        let mut slots: Vec<Slot> = Vec::new();
        let mut missing = Vec::new();
        for name in &spec.stable_ingresses {
            let ing = IngressRef { namespace: at.namespace.clone(), name: name.clone() };
            if !served.contains(&ing) {
                missing.push(name.as_str());
                continue;
            }
            for (host, rules) in &self.hosts {
                for (key, entry) in rules {
                    if entry.owner == ing
                        && entry.backend.service.as_deref() == Some(spec.stable_service.as_str())
                    {
                        slots.push((host.clone(), key.clone()));
                    }
                }
            }
        }
        // Slots another (older) WeirRoute holds are not this one's to touch, even to close.
        let (taken, free): (Vec<Slot>, Vec<Slot>) = slots
            .into_iter()
            .partition(|(h, k)| self.hosts[h][k].route.as_ref().is_some_and(|hold| hold.route != *at));
        let checked = check_spec(wr).and_then(|routes| {
            if !missing.is_empty() {
                return Err(format!(
                    "spec.stableIngresses: {} not found in namespace {} or not served by weir",
                    missing.join(", "),
                    at.namespace
                ));
            }
            if let Some((h, k)) = taken.first() {
                let e = &self.hosts[h][k];
                let holder = e.route.as_ref().map(|r| r.route.to_string()).unwrap_or_default();
                return Err(format!(
                    "host {:?} path {:?} of ingress {} is already split by WeirRoute {holder} (older)",
                    h.as_deref().unwrap_or("*"),
                    e.path,
                    e.owner
                ));
            }
            if free.is_empty() {
                return Err(format!(
                    "no rule of ingress {} sends to Service {:?}",
                    spec.stable_ingresses.join(", "),
                    spec.stable_service
                ));
            }
            if let Some((h, k)) = free.iter().find(|(h, k)| self.hosts[h][k].deny.is_some()) {
                let e = &self.hosts[h][k];
                return Err(format!(
                    "host {:?} path {:?} of ingress {} is refused by weir (it answers 503); see its events",
                    h.as_deref().unwrap_or("*"),
                    e.path,
                    e.owner
                ));
            }
            Ok(routes)
        });
        let hold = RouteHold { route: at.clone() };
        let destinations = destination_specs(wr).unwrap_or_default();
        let (routes, mirrors, guard) = match checked {
            Ok(routes) => routes,
            Err(why) => {
                // The rules it names send everything to stable: held, with no canary.
                for (h, k) in &free {
                    if let Some(e) = self.hosts.get_mut(h).and_then(|r| r.get_mut(k)) {
                        e.route = Some(hold.clone());
                        e.canary = None;
                    }
                }
                return Err(why);
            }
        };
        for (h, k) in &free {
            let Some(e) = self.hosts.get_mut(h).and_then(|r| r.get_mut(k)) else { continue };
            let canary = IngressBackend {
                service: Some(IngressServiceBackend {
                    name: spec.canary_service.clone(),
                    port: port_of(&e.backend.port),
                }),
                ..Default::default()
            };
            let Some(backend) = index.backend(&e.owner, &canary, diags) else { continue };
            let destinations = destinations
                .iter()
                .filter_map(|d| {
                    let port = destination_port(index, &at.namespace, &d.service_name, &e.backend.port);
                    let service = IngressServiceBackend { name: d.service_name.clone(), port };
                    let backend = IngressBackend { service: Some(service), ..Default::default() };
                    let backend: BackendDoc = index.backend(&e.owner, &backend, diags)?;
                    Some(DestinationDoc { backend, weight: d.weight })
                })
                .collect();
            let doc = CanaryDoc {
                backend,
                weight: Some(spec.weight),
                weight_total: Some(spec.max_weight),
                header_routes: routes.clone(),
                mirror_routes: mirrors.clone(),
                guard: guard.clone(),
                destinations,
                sticky_assignment: spec.sticky_assignment.as_ref().map(|s| StickyAssignmentDoc {
                    cookie: (!s.cookie.is_empty()).then(|| s.cookie.clone()),
                    max_age: s.max_age_seconds.filter(|a| *a > 0),
                }),
                ..Default::default()
            };
            e.route = Some(hold.clone());
            e.canary = Some(Attached { doc, ingress: at.clone(), rollout: None, legacy_affinity: false });
        }
        Ok(spec.weight)
    }
}
