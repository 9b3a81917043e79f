//! One Ingress's annotations judged against the catalog: per key its state, and the
//! validated value or the reason it was dropped or refused.
//!
//! This is what translation calls (and what `weir-controller analyze` prints). It is pure:
//! the same annotations, prefix, position and waivers give the same [`Evaluation`].
//! Order of judgement per key: not ours (other prefix) → skipped; empty value → ignored
//! (ingress-nginx treats it as unset); unknown key → unknown; on a canary Ingress, a key
//! ingress-nginx does not read there → ignored; a key whose feature key is not set
//! ([`Entry::needs`]) → ignored; then the key's policy (value check, refusal, waiver).

use std::collections::BTreeMap;

use super::catalog::{self, Checked, Entry, Policy, State, Unless, Waivers};
use super::lenient::parse_bool;

/// What became of one annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Honoured; use this value (checked and normalised).
    Use(String),
    /// Honoured key, but the value failed its check: dropped, `fallback` applies.
    Dropped { reason: String, fallback: &'static str },
    /// The Ingress cannot be served as asked.
    Refused(String),
    /// Would be refused, but the operator accepts the risk (`--accept-annotation`).
    Waived(String),
    /// Nothing to do, and why.
    Ignored(String),
    /// Not an ingress-nginx v1.15.1 key: the nearest known key, if one is close (a typo),
    /// or what replaced it, if ingress-nginx removed it.
    Unknown { nearest: Option<&'static str>, removed: Option<&'static str> },
}

/// One annotation of the Ingress and its finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The full key as written, e.g. `nginx.ingress.kubernetes.io/auth-url`.
    pub key: String,
    /// The key without prefix, e.g. `auth-url`.
    pub name: String,
    pub value: String,
    pub finding: Finding,
}

impl Verdict {
    pub fn state(&self) -> State {
        match self.finding {
            Finding::Use(_) | Finding::Dropped { .. } => State::Honoured,
            Finding::Refused(_) => State::Refused,
            Finding::Waived(_) | Finding::Ignored(_) => State::Ignored,
            Finding::Unknown { .. } => State::Unknown,
        }
    }

    /// One line for logs, Events and the analyzer: why the key has its state.
    pub fn reason(&self) -> String {
        match &self.finding {
            Finding::Use(_) => lookup_reason(&self.name),
            Finding::Dropped { reason, fallback } => format!("value dropped: {reason}; using {fallback}"),
            Finding::Refused(r) | Finding::Ignored(r) => r.clone(),
            Finding::Waived(r) => format!("refusal accepted by the operator (--accept-annotation): {r}"),
            Finding::Unknown { removed: Some(instead), .. } => {
                format!("removed from ingress-nginx ({instead}); ignored, as ingress-nginx does")
            }
            Finding::Unknown { nearest: Some(near), .. } => {
                let not_in_force = catalog::lookup(near).is_some_and(|e| e.state() == State::Refused);
                let note = if not_in_force {
                    format!("; ingress-nginx ignores the misspelt key too, so {near} is not in force today")
                } else {
                    String::new()
                };
                format!("not an ingress-nginx v1.15.1 annotation (did you mean {near}?{note}); ignored, as ingress-nginx does")
            }
            Finding::Unknown { .. } => {
                "not an ingress-nginx v1.15.1 annotation; ignored, as ingress-nginx does".into()
            }
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "annotation {}={:?} {}: {}", self.key, self.value, self.state(), self.reason())
    }
}

fn lookup_reason(name: &str) -> String {
    catalog::lookup(name).map_or_else(String::new, |e| e.reason.to_string())
}

/// Every annotation of one Ingress under the prefix, judged; sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    pub verdicts: Vec<Verdict>,
}

impl Evaluation {
    /// The verdicts that refuse the Ingress. Non-empty: serve none of its rules as asked
    /// (translation installs them as deny rules).
    pub fn refusals(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| matches!(v.finding, Finding::Refused(_)))
    }

    pub fn is_refused(&self) -> bool {
        self.refusals().next().is_some()
    }

    /// One line naming every refused key and why: the Warning Event of a refused Ingress.
    pub fn refusal(&self) -> Option<String> {
        let parts: Vec<String> = self.refusals().map(|v| format!("{}: {}", v.key, v.reason())).collect();
        (!parts.is_empty())
            .then(|| format!("not served as asked (its rules answer 503): {}", parts.join("; ")))
    }

    /// The checked value of an honoured key (without prefix), if it is set and valid.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.verdicts.iter().find(|v| v.name == name).and_then(|v| match &v.finding {
            Finding::Use(value) => Some(value.as_str()),
            _ => None,
        })
    }

    /// Verdicts worth a warning: dropped values, refusals, waivers and unknown keys.
    pub fn warnings(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| !matches!(v.finding, Finding::Use(_) | Finding::Ignored(_)))
    }

    /// How many keys are in each state, in [`State::ALL`] order (for the metric).
    pub fn counts(&self) -> [usize; 4] {
        let mut out = [0; 4];
        for v in &self.verdicts {
            out[State::ALL.iter().position(|s| *s == v.state()).unwrap_or(3)] += 1;
        }
        out
    }
}

/// Judge an Ingress's annotations under `prefix` (no trailing `/`). `canary` is whether the
/// Ingress is a canary (its `canary` annotation is true): there only the keys ingress-nginx
/// reads on a canary count.
pub fn evaluate(
    annotations: Option<&BTreeMap<String, String>>,
    prefix: &str,
    canary: bool,
    waivers: &Waivers,
) -> Evaluation {
    let ours: BTreeMap<&str, (&String, &String)> = annotations
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.strip_prefix('/')?, (k, v))))
        .collect();
    // A feature key "is set" when present, non-empty, and not switched off by its value
    // (an honoured boolean switch, like enable-cors, is on only when it reads true).
    let active = |name: &str| {
        ours.get(name).is_some_and(|(_, v)| {
            !v.trim().is_empty()
                && catalog::lookup(name).is_none_or(|e| match e.policy {
                    Policy::Honoured { grammar: "a Go boolean", .. } => parse_bool(v) == Some(true),
                    _ => !switched_off(e, v),
                })
        })
    };
    let verdicts = ours
        .iter()
        .map(|(name, (key, value))| {
            let finding = judge(name, value, canary, waivers, &active);
            Verdict { key: (*key).clone(), name: (*name).to_string(), value: (*value).clone(), finding }
        })
        .collect();
    Evaluation { verdicts }
}

fn judge(name: &str, value: &str, canary: bool, waivers: &Waivers, active: &dyn Fn(&str) -> bool) -> Finding {
    if value.trim().is_empty() {
        return Finding::Ignored("empty value: unset, as in ingress-nginx".into());
    }
    let Some(entry) = catalog::lookup(name) else {
        return Finding::Unknown { nearest: catalog::nearest(name), removed: catalog::removed(name) };
    };
    if canary && !entry.on_canary {
        return Finding::Ignored("not read on a canary Ingress: the main Ingress's setting applies".into());
    }
    if !entry.needs.is_empty() && !entry.needs.iter().any(|n| active(n)) {
        return Finding::Ignored(format!("has no effect without {}", entry.needs.join(" or ")));
    }
    let refuse = |reason: String| {
        if waivers.contains(entry.name) {
            Finding::Waived(reason)
        } else {
            Finding::Refused(reason)
        }
    };
    match entry.policy {
        Policy::Honoured { check, fallback, .. } => match check(value) {
            Checked::Valid(v) => Finding::Use(v),
            Checked::Invalid(reason) => Finding::Dropped { reason, fallback },
            Checked::Unsupported(reason) => refuse(reason),
        },
        Policy::Ignored => Finding::Ignored(entry.reason.to_string()),
        Policy::Refused(_) if switched_off(entry, value) => {
            Finding::Ignored(format!("{:?} switches it off: nothing to honour", value.trim()))
        }
        Policy::Refused(Unless::False) if parse_bool(value).is_none() => {
            refuse(format!("{:?} is not a boolean, so it may mean on: {}", value, entry.reason))
        }
        Policy::Refused(_) => refuse(entry.reason.to_string()),
    }
}

/// Whether a value turns a conditionally refused key off (harmless).
fn switched_off(entry: &Entry, value: &str) -> bool {
    match entry.policy {
        Policy::Refused(Unless::False) => parse_bool(value) == Some(false),
        Policy::Refused(Unless::OneOf(off)) => off.iter().any(|o| o.eq_ignore_ascii_case(value.trim())),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
