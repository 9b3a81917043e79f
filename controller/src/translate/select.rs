//! Which Ingresses are weir's, split into main and canary, oldest first.

use std::cmp::Ordering;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use super::diagnostics::{Diagnostics, IngressRef, Reason};
use super::{ClusterState, Options};
use crate::annotations::{read_canary, read_rule, CanaryAnnotations, RuleAnnotations};

/// The legacy class annotation; when present it decides alone, as in ingress-nginx.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Marks the cluster's default IngressClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

pub(crate) struct Selected<'a> {
    /// Ordinary Ingresses with their per-rule annotations, oldest first.
    pub main: Vec<(&'a Ingress, RuleAnnotations)>,
    /// Canary Ingresses with their parsed annotations, oldest first.
    pub canaries: Vec<(&'a Ingress, CanaryAnnotations)>,
}

/// Whether weir serves this Ingress: the class annotation equal to `--class`; else
/// `spec.ingressClassName` equal to `--class` or naming an IngressClass whose controller is
/// weir's; else (no class at all) a default IngressClass whose controller is weir's exists.
pub fn is_weirs(ing: &Ingress, classes: &[std::sync::Arc<IngressClass>], opts: &Options) -> bool {
    let ours = |c: &IngressClass| {
        c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(opts.controller_name.as_str())
    };
    if let Some(a) = ing.metadata.annotations.as_ref().and_then(|a| a.get(CLASS_ANNOTATION)) {
        return *a == opts.class;
    }
    match ing.spec.as_ref().and_then(|s| s.ingress_class_name.as_deref()) {
        Some(name) => {
            name == opts.class || classes.iter().any(|c| c.metadata.name.as_deref() == Some(name) && ours(c))
        }
        None => classes.iter().any(|c| {
            ours(c)
                && c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                    .map(String::as_str)
                    == Some("true")
        }),
    }
}

/// ingress-nginx's `sortIngressSlice`: older first; equal timestamps by `namespace/name`
/// descending. Missing timestamps sort first.
pub(crate) fn age_order(a: &Ingress, b: &Ingress) -> Ordering {
    let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
    ta.cmp(&tb).then_with(|| name_key(b).cmp(&name_key(a)))
}

fn name_key(i: &Ingress) -> (&str, &str) {
    (i.metadata.namespace.as_deref().unwrap_or(""), i.metadata.name.as_deref().unwrap_or(""))
}

pub(crate) fn select<'a>(state: &'a ClusterState, opts: &Options, diags: &mut Diagnostics) -> Selected<'a> {
    let mut ours: Vec<&Ingress> =
        state.ingresses.iter().map(|i| &**i).filter(|i| is_weirs(i, &state.classes, opts)).collect();
    ours.sort_by(|a, b| age_order(a, b));
    let mut selected = Selected { main: Vec::new(), canaries: Vec::new() };
    for ing in ours {
        let at = IngressRef::of(ing);
        let (canary, warnings) = read_canary(ing.metadata.annotations.as_ref(), &opts.annotation_prefix);
        for w in warnings {
            diags.warn(&at, Reason::InvalidAnnotation, w.to_string());
        }
        if canary.enabled {
            selected.canaries.push((ing, canary));
        } else {
            if canary.any_setting() {
                diags.warn(
                    &at,
                    Reason::CanaryNotEnabled,
                    format!(
                        "canary settings are configured but {}/canary is not \"true\"; \
                         serving it as an ordinary Ingress",
                        opts.annotation_prefix
                    ),
                );
            }
            let (rule, warnings) = read_rule(ing.metadata.annotations.as_ref(), &opts.annotation_prefix);
            for w in warnings {
                diags.warn(&at, Reason::InvalidAnnotation, w.to_string());
            }
            selected.main.push((ing, rule));
        }
    }
    selected
}
