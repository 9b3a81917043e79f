//! Which Ingresses are weir's, split into main and canary, oldest first.

use std::cmp::Ordering;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Secret;

use weir_config::wire::{AffinityDoc, CorsDoc, RateLimitDoc, RedirectDoc, RetryDoc};

use super::access;
use super::diagnostics::{Diagnostics, IngressRef, Reason};
use super::state::{ClusterState, Options};
use crate::annotations::{
    evaluate, parse_bool, read_canary, read_rule, CanaryAnnotations, Evaluation, Finding, RuleAnnotations,
};

/// The legacy class annotation; when present it decides alone, as in ingress-nginx.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Marks the cluster's default IngressClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

pub(crate) struct Selected<'a> {
    /// Ordinary Ingresses with their per-rule annotations, oldest first.
    pub main: Vec<(&'a Ingress, RuleAnnotations)>,
    /// Canary Ingresses with their parsed annotations, oldest first.
    pub canaries: Vec<(&'a Ingress, CanaryAnnotations)>,
    /// Annotations of weir's Ingresses by state, in `State::ALL` order (for the metric).
    pub counts: [usize; 4],
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

pub(crate) fn select<'a>(
    state: &'a ClusterState,
    opts: &Options,
    secrets: &HashMap<(&str, &str), &Secret>,
    diags: &mut Diagnostics,
) -> Selected<'a> {
    let mut ours: Vec<&Ingress> =
        state.ingresses.iter().map(|i| &**i).filter(|i| is_weirs(i, &state.classes, opts)).collect();
    ours.sort_by(|a, b| age_order(a, b));
    let mut selected = Selected { main: Vec::new(), canaries: Vec::new(), counts: [0; 4] };
    for ing in ours {
        let at = IngressRef::of(ing);
        let (mut canary, warnings) = read_canary(ing.metadata.annotations.as_ref(), &opts.annotation_prefix);
        for w in warnings {
            diags.warn(&at, Reason::InvalidAnnotation, w.to_string());
        }
        let eval = evaluate(
            ing.metadata.annotations.as_ref(),
            &opts.annotation_prefix,
            canary.enabled,
            &opts.accepted,
        );
        report(&eval, &at, &mut selected.counts, diags);
        let mut refused = eval.refusal();
        if canary.enabled {
            canary.service_upstream = eval.value("service-upstream").and_then(parse_bool).unwrap_or(false);
            canary.refused = refused;
            canary.legacy_affinity = eval.value("affinity-canary-behavior") == Some("legacy");
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
            let (mut rule, warnings) = read_rule(ing.metadata.annotations.as_ref(), &opts.annotation_prefix);
            for w in warnings {
                diags.warn(&at, Reason::InvalidAnnotation, w.to_string());
            }
            if refused.is_none() {
                match access::access_doc(ing, &eval, &opts.annotation_prefix, secrets) {
                    Ok(doc) => rule.access = doc,
                    Err(why) => {
                        diags.warn(&at, Reason::AnnotationRefused, why.clone());
                        refused = Some(format!("not served as asked (its rules answer 503): {why}"));
                    }
                }
            }
            rule.redirect = redirect_doc(&eval);
            rule.app_root = eval.value("app-root").map(str::to_string);
            rule.use_regex = eval.value("use-regex").and_then(parse_bool).unwrap_or(false);
            rule.rewrite_target = eval.value("rewrite-target").map(str::to_string);
            rule.forwarded_prefix = eval.value("x-forwarded-prefix").map(str::to_string);
            rule.upstream_host = eval.value("upstream-vhost").map(str::to_string);
            rule.cors = cors_doc(&eval);
            rule.rate_limit = rate_limit_doc(&eval, &at);
            rule.send_timeout = eval.value("proxy-send-timeout").map(str::to_string);
            rule.retry = retry_doc(&eval);
            rule.affinity = affinity_doc(&eval);
            rule.from_to_www = eval.value("from-to-www-redirect").and_then(parse_bool).unwrap_or(false);
            rule.aliases = eval
                .value("server-alias")
                .map(|a| a.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            rule.default_backend = eval.value("default-backend").map(str::to_string);
            rule.service_upstream = eval.value("service-upstream").and_then(parse_bool).unwrap_or(false);
            rule.refused = refused;
            selected.main.push((ing, rule));
        }
    }
    selected
}

/// Routing keys translation reads from the catalog's verdicts (not through `read_rule`):
/// their dropped values are reported here.
const READ_HERE: &[&str] = &[
    "affinity",
    "affinity-canary-behavior",
    "affinity-mode",
    "app-root",
    "cors-allow-credentials",
    "cors-allow-headers",
    "cors-allow-methods",
    "cors-expose-headers",
    "cors-max-age",
    "default-backend",
    "enable-cors",
    "from-to-www-redirect",
    "limit-burst-multiplier",
    "permanent-redirect-code",
    "proxy-next-upstream",
    "proxy-next-upstream-timeout",
    "proxy-next-upstream-tries",
    "proxy-send-timeout",
    "session-cookie-change-on-failure",
    "session-cookie-conditional-samesite-none",
    "session-cookie-domain",
    "session-cookie-expires",
    "session-cookie-max-age",
    "session-cookie-name",
    "session-cookie-path",
    "session-cookie-samesite",
    "session-cookie-secure",
    "server-alias",
    "service-upstream",
    "temporal-redirect-code",
    "use-regex",
];

/// `limit-rps`, `limit-rpm`, `limit-connections` (0 is none), with the burst multiplier and
/// allowlist, in one zone per Ingress (as ingress-nginx's), weir's default status 503.
fn rate_limit_doc(eval: &Evaluation, at: &IngressRef) -> Option<RateLimitDoc> {
    let count = |k: &str| eval.value(k).and_then(|v| v.parse::<i64>().ok()).filter(|n| *n > 0);
    let (rps, rpm, connections) = (count("limit-rps"), count("limit-rpm"), count("limit-connections"));
    if rps.is_none() && rpm.is_none() && connections.is_none() {
        return None;
    }
    let allow = eval.value("limit-allowlist").or_else(|| eval.value("limit-whitelist"));
    Some(RateLimitDoc {
        zone: Some(format!("{}/{}", at.namespace, at.name)),
        rps,
        rpm,
        burst_multiplier: eval.value("limit-burst-multiplier").and_then(|m| m.parse().ok()),
        connections,
        allowlist: allow.map(|a| a.split(',').map(str::to_string).collect()).unwrap_or_default(),
        status: None,
    })
}

/// `proxy-next-upstream`, `-tries`, `-timeout`: only what an Ingress sets (the rest keeps
/// ingress-nginx's defaults, which are weir's).
fn retry_doc(eval: &Evaluation) -> Option<RetryDoc> {
    let on = eval.value("proxy-next-upstream").map(|v| v.split(' ').map(str::to_string).collect());
    let tries =
        eval.value("proxy-next-upstream-tries").and_then(|t| t.parse::<i64>().ok()).map(|t| t.min(255));
    let timeout = eval.value("proxy-next-upstream-timeout").map(|t| format!("{t}s"));
    (on.is_some() || tries.is_some() || timeout.is_some()).then_some(RetryDoc { on, tries, timeout })
}

/// `affinity: cookie` and its settings; each dropped value takes ingress-nginx's default.
/// The canary behavior is the canary Ingress's (`Attached`).
fn affinity_doc(eval: &Evaluation) -> Option<AffinityDoc> {
    eval.value("affinity")?;
    let int = |k: &str| eval.value(k).and_then(|v| v.parse().ok());
    let flag = |k: &str| eval.value(k).and_then(parse_bool);
    Some(AffinityDoc {
        cookie: eval.value("session-cookie-name").map(str::to_string),
        mode: eval.value("affinity-mode").map(str::to_string),
        canary_behavior: None,
        path: eval.value("session-cookie-path").map(str::to_string),
        domain: eval.value("session-cookie-domain").map(str::to_string),
        max_age: int("session-cookie-max-age"),
        expires: int("session-cookie-expires"),
        same_site: eval.value("session-cookie-samesite").map(str::to_string),
        conditional_same_site_none: flag("session-cookie-conditional-samesite-none"),
        // ingress-nginx sets Secure only when asked (not on HTTPS by itself).
        secure: Some(flag("session-cookie-secure").unwrap_or(false)),
        change_on_failure: flag("session-cookie-change-on-failure"),
    })
}

/// `enable-cors` and its settings; each dropped value takes ingress-nginx's default.
fn cors_doc(eval: &Evaluation) -> Option<CorsDoc> {
    if !eval.value("enable-cors").and_then(parse_bool).unwrap_or(false) {
        return None;
    }
    let origins = eval.value("cors-allow-origin").filter(|o| *o != "*");
    Some(CorsDoc {
        allow_origins: origins.map(|o| o.split(',').map(str::to_string).collect()),
        allow_methods: eval.value("cors-allow-methods").map(str::to_string),
        allow_headers: eval.value("cors-allow-headers").map(str::to_string),
        allow_credentials: eval.value("cors-allow-credentials").and_then(parse_bool),
        expose_headers: eval.value("cors-expose-headers").map(str::to_string),
        max_age: eval.value("cors-max-age").and_then(|m| m.parse().ok()),
    })
}

/// ingress-nginx's redirect: `temporal-redirect` wins over `permanent-redirect`; each code
/// defaults (302, 301) when unset or dropped. Refused values refuse the Ingress before this.
fn redirect_doc(eval: &Evaluation) -> Option<RedirectDoc> {
    let (url, code, default) = match eval.value("temporal-redirect") {
        Some(url) => (url, eval.value("temporal-redirect-code"), 302),
        None => (eval.value("permanent-redirect")?, eval.value("permanent-redirect-code"), 301),
    };
    let code = code.and_then(|c| c.parse().ok()).unwrap_or(default);
    Some(RedirectDoc { url: url.to_string(), code: Some(code) })
}

/// Diagnostics for what the catalog found (values of the keys `read_rule` and `read_canary`
/// read are reported there) and the counts by state.
fn report(eval: &Evaluation, at: &IngressRef, counts: &mut [usize; 4], diags: &mut Diagnostics) {
    for (total, n) in counts.iter_mut().zip(eval.counts()) {
        *total += n;
    }
    for v in eval.warnings() {
        let reason = match v.finding {
            Finding::Refused(_) => Reason::AnnotationRefused,
            Finding::Waived(_) => Reason::AnnotationWaived,
            Finding::Unknown { .. } => Reason::UnknownAnnotation,
            Finding::Dropped { .. }
                if v.name.starts_with("auth-") || READ_HERE.contains(&v.name.as_str()) =>
            {
                Reason::InvalidAnnotation
            }
            _ => continue,
        };
        diags.warn(at, reason, v.to_string());
    }
}
