//! Canary Ingresses attached to main rules: rule by rule (§3, D1), and `spec.defaultBackend`
//! to the catch-all; which canary holds a rule when several name it (D4 and the Rollout rule).
//!
//! Precedence: a canary Ingress controlled by an Argo Rollout (an ownerReference of kind
//! `Rollout` in `argoproj.io` with `controller: true`, as Argo's nginx router writes it) wins
//! over one no Rollout controls, whatever their ages; within each group the oldest wins. A
//! hand-written canary left over from an ingress-nginx migration would otherwise, being
//! older, make every Argo step inert. The canary that loses is reported (CanaryConflict).
//! A rule a WeirRoute holds (the `weirroutes` step, which runs first) takes no canary
//! Ingress at all, not even a Rollout's.

use k8s_openapi::api::networking::v1::Ingress;

use super::backends::{Index, Via};
use super::diagnostics::{Diagnostics, IngressRef, Reason};
use super::rules::{rule_paths, Attached, Entry, RuleKey, Table};
use crate::annotations::{canary_doc, CanaryAnnotations};

/// The Rollout that controls this Ingress, if any.
pub(crate) fn controlling_rollout(ing: &Ingress) -> Option<&str> {
    ing.metadata.owner_references.as_deref().unwrap_or_default().iter().find_map(|o| {
        let argo = o.api_version.split('/').next() == Some("argoproj.io");
        (argo && o.kind == "Rollout" && o.controller == Some(true)).then_some(o.name.as_str())
    })
}

/// Canaries in the order they claim rules: Rollout-controlled first, each group in the
/// given (age) order, which a stable sort keeps.
pub(crate) fn by_precedence<'a, 'b>(
    canaries: &'b [(&'a Ingress, CanaryAnnotations)],
) -> Vec<&'b (&'a Ingress, CanaryAnnotations)> {
    let mut ordered: Vec<_> = canaries.iter().collect();
    ordered.sort_by_key(|(ing, _)| controlling_rollout(ing).is_none());
    ordered
}

/// What a canary attaches with; shared by its rules and its defaultBackend.
/// A canary's backends: its own `service-upstream` (ingress-nginx reads it there); a
/// `default-backend` is the main Ingress's location's, never the canary's upstream's.
fn via_of(annotations: &CanaryAnnotations) -> Via<'static> {
    Via { service_upstream: annotations.service_upstream, default_backend: None }
}

struct Candidate<'a> {
    at: IngressRef,
    rollout: Option<&'a str>,
    annotations: &'a CanaryAnnotations,
    prefix: &'a str,
}

impl Table {
    /// Attach a canary Ingress: each rule path to the main rule with the same host, path
    /// string and pathType (§3, D1); its `spec.defaultBackend` to the default server's `/`
    /// and to the `/` of every host that the same main defaultBackend fills (the catch-all
    /// pair, as ingress-nginx merges a canary's default backend into the default server's).
    pub(crate) fn add_canary(
        &mut self,
        ing: &Ingress,
        annotations: &CanaryAnnotations,
        prefix: &str,
        index: &Index<'_>,
        diags: &mut Diagnostics,
    ) {
        let c = Candidate { at: IngressRef::of(ing), rollout: controlling_rollout(ing), annotations, prefix };
        for rp in rule_paths(ing, true, diags) {
            let entry = self
                .hosts
                .get_mut(&rp.host)
                .and_then(|rules| rules.get_mut(&rp.key()))
                .filter(|e| e.path == rp.path && e.path_type == rp.path_type);
            let Some(entry) = entry else {
                if annotations.refused.is_some() {
                    continue; // nothing to deny, and its refusal is reported already
                }
                diags.warn(
                    &c.at,
                    Reason::CanaryWithoutMain,
                    format!("no main Ingress rule matches {}; this canary path does nothing", rp.describe()),
                );
                continue;
            };
            if held_by_route(entry, &c, &rp.describe(), diags) {
                continue;
            }
            if let Some(why) = &annotations.refused {
                // A refused canary closes the rules it pairs with: serving them without it
                // could send its requests where the canary's settings would not.
                entry.deny.get_or_insert_with(|| super::access::deny_doc(why));
                continue;
            }
            if holds_other(entry, &c, &rp.describe(), diags) {
                continue;
            }
            let Some(backend) = index.backend_via(&c.at, rp.backend, &via_of(annotations), diags) else {
                continue;
            };
            attach(entry, &c, backend, diags);
        }
        if let Some(default) = ing.spec.as_ref().and_then(|s| s.default_backend.as_ref()) {
            self.add_canary_default_backend(default, &c, index, diags);
        }
    }

    fn add_canary_default_backend(
        &mut self,
        default: &k8s_openapi::api::networking::v1::IngressBackend,
        c: &Candidate<'_>,
        index: &Index<'_>,
        diags: &mut Diagnostics,
    ) {
        let root: RuleKey = (String::new(), false);
        let Some(catch_all) = self.hosts.get(&None).and_then(|r| r.get(&root)).map(|e| e.owner.clone())
        else {
            diags.warn(
                &c.at,
                Reason::CanaryWithoutMain,
                "no main Ingress serves the default server (spec.defaultBackend or a host-less `/` rule); \
                 this canary's defaultBackend does nothing",
            );
            return;
        };
        let backend = match &c.annotations.refused {
            Some(_) => None,
            None => match index.backend_via(&c.at, default, &via_of(c.annotations), diags) {
                Some(b) => Some(b),
                None => return,
            },
        };
        for (host, rules) in &mut self.hosts {
            let Some(entry) = rules.get_mut(&root) else { continue };
            if host.is_some() && !(entry.from_default && entry.owner == catch_all) {
                continue;
            }
            let Some(backend) = &backend else {
                // A refused canary closes the catch-all it pairs with, as its rules do.
                let why = c.annotations.refused.as_deref().unwrap_or_default();
                entry.deny.get_or_insert_with(|| super::access::deny_doc(why));
                continue;
            };
            let what = match host {
                None => "the default server's `/`".to_string(),
                Some(h) => format!("host {h:?} `/` (filled by the defaultBackend of {catch_all})"),
            };
            if !holds_other(entry, c, &what, diags) {
                attach(entry, c, backend.clone(), diags);
            }
        }
    }
}

/// Whether a WeirRoute holds this rule (it takes precedence over every canary Ingress); if
/// so, the candidate is reported.
fn held_by_route(entry: &Entry, c: &Candidate<'_>, what: &str, diags: &mut Diagnostics) -> bool {
    let Some(hold) = &entry.route else { return false };
    diags.warn(
        &c.at,
        Reason::CanaryConflict,
        format!(
            "{what} of ingress {} is split by WeirRoute {} (the Argo Rollouts weir plugin), which takes \
             precedence over canary Ingresses; this canary is inert there",
            entry.owner, hold.route
        ),
    );
    true
}

/// Whether another canary already holds this rule; if so, the candidate is reported.
fn holds_other(entry: &Entry, c: &Candidate<'_>, what: &str, diags: &mut Diagnostics) -> bool {
    if held_by_route(entry, c, what, diags) {
        return true;
    }
    let Some(first) = &entry.canary else { return false };
    if first.ingress == c.at {
        return true;
    }
    let message = match (&first.rollout, c.rollout) {
        (Some(rollout), None) => format!(
            "{what} of ingress {} is held by canary {}, controlled by Rollout {rollout}, which takes \
             precedence over a canary no Rollout controls; this canary is inert there (delete it if it \
             is left over from ingress-nginx)",
            entry.owner, first.ingress
        ),
        _ => format!(
            "{what} of ingress {} already has canary {} (older); this canary is inert there",
            entry.owner, first.ingress
        ),
    };
    diags.warn(&c.at, Reason::CanaryConflict, message);
    true
}

fn attach(
    entry: &mut Entry,
    c: &Candidate<'_>,
    backend: weir_config::wire::BackendDoc,
    diags: &mut Diagnostics,
) {
    let (doc, warnings) = canary_doc(c.annotations, c.prefix, backend);
    for w in warnings {
        diags.warn(&c.at, Reason::InvalidAnnotation, w.to_string());
    }
    entry.canary = Some(Attached {
        doc,
        ingress: c.at.clone(),
        rollout: c.rollout.map(Into::into),
        legacy_affinity: c.annotations.legacy_affinity,
    });
}
