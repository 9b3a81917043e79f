//! The classification of every ingress-nginx v1.15.1 annotation key: what weir does with it.
//!
//! One table, [`ENTRIES`], is the single place that changes when weir learns a feature: a
//! key moves from [`Policy::Refused`] to [`Policy::Honoured`] with its value check, and the
//! controller, the `analyze` command and the README table all follow. The four states:
//! - *honoured*: weir implements it; the value is checked with ingress-nginx's validator
//!   for that key, and a value that fails is dropped with a diagnostic (its default applies),
//!   or refuses the Ingress when the value asks for something weir cannot do.
//! - *refused*: serving without it could widen access or change what a request reaches; the
//!   Ingress is refused (its rules answer 503) unless the operator accepts the risk
//!   ([`Waivers`]). Some keys are refused only when their value turns the feature on.
//! - *ignored*: tuning that changes nothing a user relies on, or not read in this position
//!   (most keys on a canary Ingress, a setting of a feature that is not enabled).
//! - *unknown*: not a v1.15.1 key (a typo, a removed key); ingress-nginx ignores it too.
//!
//! The entries live in submodules by group, each sorted by key.

mod access;
mod access_checks;
mod backend;
mod entry;
mod routing;
mod table;
mod waivers;

pub use access::ACCESS_ENFORCED;
pub use access_checks::cache_durations;
pub use entry::{Checked, Entry, Group, Policy, State, Unless};
pub use table::{lookup, nearest, ENTRIES};
pub use waivers::Waivers;

/// Check a value of an honoured key (without prefix) with its validator; `None` for a key
/// weir does not honour. Also returns what applies when the value is dropped.
pub fn check(name: &str, value: &str) -> Option<(Checked, &'static str)> {
    match lookup(name)?.policy {
        Policy::Honoured { check, fallback, .. } => Some((check(value), fallback)),
        _ => None,
    }
}

/// [`check`] as it will be once the proxy enforces access rules: the access keys' own
/// checks, whatever [`ACCESS_ENFORCED`] says (for translation tests and the flip).
pub fn check_ungated(name: &str, value: &str) -> Option<(Checked, &'static str)> {
    let entry = access::ALL_ENTRIES.iter().find(|e| e.name == name).or_else(|| lookup(name))?;
    match entry.policy {
        Policy::Honoured { check, fallback, .. } => Some((check(value), fallback)),
        _ => None,
    }
}

/// Keys ingress-nginx removed before v1.15.1 that old manifests still carry, with what
/// replaced them.
const REMOVED: &[(&str, &str)] = &[
    ("grpc-backend", "backend-protocol: GRPC replaces it"),
    ("secure-backends", "backend-protocol: HTTPS replaces it"),
];

/// What replaced a removed key, if it is one.
pub fn removed(name: &str) -> Option<&'static str> {
    REMOVED.iter().find(|(k, _)| *k == name).map(|(_, instead)| *instead)
}

/// The README table: one row per key, grouped, sorted by key within a group.
pub fn markdown_table() -> String {
    let mut rows: Vec<&Entry> = ENTRIES.values().copied().collect();
    rows.sort_by_key(|e| (e.group, e.name));
    let mut out =
        String::from("| annotation | weir | on a canary | why; accepted values |\n|---|---|---|---|\n");
    let mut group = None;
    for e in rows {
        if group != Some(e.group) {
            group = Some(e.group);
            out.push_str(&format!("| **{}** | | | |\n", e.group.title()));
        }
        let state = match e.policy {
            Policy::Refused(Unless::False) => "refused when on".to_string(),
            Policy::Refused(Unless::OneOf(off)) => format!("refused unless `{}`", off.join("`/`")),
            _ => e.state().to_string(),
        };
        let canary = if e.on_canary { "read" } else { "" };
        let mut why = e.reason.to_string();
        if let Policy::Honoured { grammar, fallback, .. } = e.policy {
            why.push_str(&format!("; {grammar}, else {fallback}"));
        }
        if !e.needs.is_empty() && !e.needs.iter().any(|n| e.reason.contains(n)) {
            why.push_str(&format!(" (only with {})", e.needs.join(" or ")));
        }
        out.push_str(&format!("| `{}` | {state} | {canary} | {} |\n", e.name, why.replace('|', "\\|")));
    }
    out
}

#[cfg(test)]
mod tests;
