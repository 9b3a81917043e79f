//! The migration analyzer (`weir-controller analyze`): what weir would do with each
//! ingress-nginx annotation of a set of Ingresses, judged by the same catalog the
//! controller uses ([`crate::annotations::evaluate`]).
//!
//! Exit codes: 0 nothing refused; 1 at least one Ingress would be refused; 2 an input could
//! not be read (reported with the file and the reason; readable files are still analysed).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::annotations::catalog::{State, Waivers};
use crate::annotations::{evaluate, read_canary, Finding, Verdict};

pub mod input;
pub use input::{from_cluster, parse_documents, read_paths, Loaded};

/// One Ingress's result.
#[derive(Debug, Clone)]
pub struct IngressReport {
    pub source: String,
    pub namespace: String,
    pub name: String,
    /// Its `canary` annotation is true: judged as ingress-nginx judges a canary.
    pub canary: bool,
    pub verdicts: Vec<Verdict>,
    /// Its rules as `host/path` (`*` for no host; `* (default backend)` for
    /// `spec.defaultBackend`): what answers 503 when the Ingress is refused.
    pub rules: Vec<String>,
}

impl IngressReport {
    pub fn refused(&self) -> bool {
        self.verdicts.iter().any(|v| v.state() == State::Refused)
    }
}

/// The whole analysis, Ingresses sorted by namespace and name.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub ingresses: Vec<IngressReport>,
    /// Inputs that could not be read: (path, reason with its causes).
    pub errors: Vec<(String, String)>,
}

/// A value as the text report shows it: quoted, escaped, cut after 80 characters.
fn shown(value: &str) -> String {
    let quoted = format!("{value:?}");
    match quoted.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &quoted[..i]),
        None => quoted,
    }
}

/// The (host, path) rules of an Ingress, as the report names them.
fn rules_of(ing: &k8s_openapi::api::networking::v1::Ingress) -> Vec<String> {
    let Some(spec) = ing.spec.as_ref() else { return Vec::new() };
    let mut out: Vec<String> =
        spec.default_backend.iter().map(|_| "* (default backend)".to_string()).collect();
    for rule in spec.rules.iter().flatten() {
        let host = rule.host.as_deref().unwrap_or("*");
        for p in rule.http.iter().flat_map(|h| &h.paths) {
            out.push(format!("{host}{}", p.path.as_deref().unwrap_or("/")));
        }
    }
    out
}

/// The Ingress's class as ingress-nginx reads it: the legacy `kubernetes.io/ingress.class`
/// annotation first, then `spec.ingressClassName`.
pub fn class_of(ing: &k8s_openapi::api::networking::v1::Ingress) -> Option<&str> {
    let legacy = ing.metadata.annotations.as_ref().and_then(|a| a.get("kubernetes.io/ingress.class"));
    legacy.map(String::as_str).or_else(|| ing.spec.as_ref()?.ingress_class_name.as_deref())
}

/// Keep the Ingresses of `class`, and those naming no class (a default IngressClass may
/// serve them).
pub fn of_class(loaded: Vec<Loaded>, class: &str) -> Vec<Loaded> {
    loaded.into_iter().filter(|l| class_of(&l.ingress).is_none_or(|c| c == class)).collect()
}

/// Judge every loaded Ingress under `prefix` with the operator's `waivers`.
pub fn analyze(loaded: Vec<Loaded>, prefix: &str, waivers: &Waivers) -> Report {
    let mut ingresses: Vec<IngressReport> = loaded
        .into_iter()
        .map(|Loaded { source, ingress }| {
            let annotations = ingress.metadata.annotations.as_ref();
            let canary = read_canary(annotations, prefix).0.enabled;
            IngressReport {
                source,
                namespace: ingress.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
                name: ingress.metadata.name.clone().unwrap_or_default(),
                canary,
                verdicts: evaluate(annotations, prefix, canary, waivers).verdicts,
                rules: rules_of(&ingress),
            }
        })
        .collect();
    ingresses.sort_by(|a, b| (&a.namespace, &a.name, &a.source).cmp(&(&b.namespace, &b.name, &b.source)));
    Report { ingresses, errors: Vec::new() }
}

impl Report {
    /// Record unreadable inputs, each with its chain of causes.
    pub fn add_errors(&mut self, errors: Vec<crate::error::Error>) {
        for e in errors {
            let (path, source): (String, &dyn std::error::Error) = match &e {
                crate::error::Error::AnalyzeRead { path, source } => (path.display().to_string(), source),
                crate::error::Error::AnalyzeParse { path, source } => (path.display().to_string(), source),
                other => (String::new(), other),
            };
            self.errors.push((path, source.to_string()));
        }
    }

    pub fn exit_code(&self) -> i32 {
        if !self.errors.is_empty() {
            2
        } else if self.ingresses.iter().any(IngressReport::refused) {
            1
        } else {
            0
        }
    }

    /// Keys per state over all Ingresses, and each refused key with how many Ingresses it refuses.
    fn tally(&self) -> (BTreeMap<State, usize>, BTreeMap<&str, usize>) {
        let mut states: BTreeMap<State, usize> = State::ALL.iter().map(|s| (*s, 0)).collect();
        let mut refused: BTreeMap<&str, usize> = BTreeMap::new();
        for i in &self.ingresses {
            for v in &i.verdicts {
                *states.entry(v.state()).or_default() += 1;
                if v.state() == State::Refused {
                    *refused.entry(v.name.as_str()).or_default() += 1;
                }
            }
        }
        (states, refused)
    }

    /// The human-readable report.
    pub fn text(&self, prefix: &str) -> String {
        let mut out = String::new();
        for i in &self.ingresses {
            let canary = if i.canary { " (canary)" } else { "" };
            let _ = writeln!(out, "{}/{}{canary}  [{}]", i.namespace, i.name, i.source);
            if i.verdicts.is_empty() {
                let _ = writeln!(out, "  no {prefix}/ annotations");
            }
            for v in &i.verdicts {
                let _ = writeln!(
                    out,
                    "  {:<8}  {}: {}\n            {}",
                    v.state().as_str(),
                    v.name,
                    shown(&v.value),
                    v.reason()
                );
            }
            if i.refused() {
                let _ = writeln!(
                    out,
                    "  => refused: these rules would answer 503 until this is resolved: {}",
                    i.rules.join(", ")
                );
            }
        }
        for (path, reason) in &self.errors {
            let _ = writeln!(out, "error: {path}: {reason}");
        }
        let (states, refused) = self.tally();
        let refused_ingresses = self.ingresses.iter().filter(|i| i.refused()).count();
        let canaries = self.ingresses.iter().filter(|i| i.canary).count();
        let _ = writeln!(
            out,
            "\nsummary: {} Ingresses ({canaries} canary), {refused_ingresses} would be refused; annotations: {}",
            self.ingresses.len(),
            states.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ")
        );
        if !refused.is_empty() {
            let list: Vec<String> = refused.iter().map(|(k, n)| format!("{k} ({n})")).collect();
            let _ = writeln!(out, "refused keys: {}", list.join(", "));
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "{} input(s) could not be read", self.errors.len());
        }
        out
    }

    /// The machine-readable report.
    pub fn json(&self) -> serde_json::Value {
        let (states, refused) = self.tally();
        let ingresses: Vec<serde_json::Value> = self
            .ingresses
            .iter()
            .map(|i| {
                let annotations: Vec<serde_json::Value> = i
                    .verdicts
                    .iter()
                    .map(|v| {
                        serde_json::json!({
                            "key": v.key,
                            "name": v.name,
                            "value": v.value,
                            "state": v.state(),
                            "reason": v.reason(),
                            "used": match &v.finding { Finding::Use(u) => Some(u), _ => None },
                            "dropped": matches!(v.finding, Finding::Dropped { .. }),
                            "waived": matches!(v.finding, Finding::Waived(_)),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "namespace": i.namespace,
                    "name": i.name,
                    "source": i.source,
                    "canary": i.canary,
                    "refused": i.refused(),
                    "rules": i.rules,
                    "annotations": annotations,
                })
            })
            .collect();
        let errors: Vec<serde_json::Value> =
            self.errors.iter().map(|(p, r)| serde_json::json!({"path": p, "reason": r})).collect();
        serde_json::json!({
            "ingresses": ingresses,
            "errors": errors,
            "summary": {
                "ingresses": self.ingresses.len(),
                "canaries": self.ingresses.iter().filter(|i| i.canary).count(),
                "refused_ingresses": self.ingresses.iter().filter(|i| i.refused()).count(),
                "annotations": states.iter().map(|(s, n)| (s.as_str().to_string(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
                "refused_keys": refused,
            },
        })
    }
}
