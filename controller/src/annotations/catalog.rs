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

use std::collections::BTreeMap;
use std::sync::LazyLock;

mod access;
mod access_checks;
mod backend;
mod routing;
mod waivers;

pub use access::ACCESS_ENFORCED;
pub use access_checks::cache_durations;
pub use waivers::Waivers;

/// What weir does with an annotation (or with one occurrence of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Honoured,
    Refused,
    Ignored,
    Unknown,
}

impl State {
    pub const ALL: [State; 4] = [State::Honoured, State::Refused, State::Ignored, State::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Honoured => "honoured",
            State::Refused => "refused",
            State::Ignored => "ignored",
            State::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The README's grouping of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    Canary,
    Backend,
    Tls,
    Auth,
    Access,
    Routing,
    Nginx,
    Other,
}

impl Group {
    pub fn title(self) -> &'static str {
        match self {
            Group::Canary => "canary",
            Group::Backend => "backend, timeouts, buffering, load balancing",
            Group::Tls => "TLS",
            Group::Auth => "authentication",
            Group::Access => "IP access and rate limits",
            Group::Routing => "routing, redirects, headers",
            Group::Nginx => "raw nginx, WAF",
            Group::Other => "CORS, affinity, tracing, logs",
        }
    }
}

/// The result of checking one value of an honoured key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The value to use, normalised (trimmed) as ingress-nginx uses it.
    Valid(String),
    /// ingress-nginx's validator rejects it (or weir cannot represent it): the value is
    /// dropped and the key's default applies.
    Invalid(String),
    /// A valid value asking for something weir does not do: the Ingress is refused.
    Unsupported(String),
}

/// When a refused key is harmless after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unless {
    /// Refused whatever the value.
    Never,
    /// Harmless when the value is a Go boolean false (the feature is off); a value that is
    /// not a boolean is refused (fail closed).
    False,
    /// Harmless when the value, trimmed, is one of these (ASCII case-insensitive).
    OneOf(&'static [&'static str]),
}

/// What weir does with a key.
#[derive(Debug, Clone, Copy)]
pub enum Policy {
    /// Implemented. `grammar` describes the accepted values; `check` applies ingress-nginx's
    /// validator (and weir's own limits); `fallback` is what applies when a value is dropped.
    Honoured {
        grammar: &'static str,
        check: fn(&str) -> Checked,
        fallback: &'static str,
    },
    Refused(Unless),
    Ignored,
}

/// One annotation key.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The key without prefix, e.g. `auth-url`.
    pub name: &'static str,
    pub group: Group,
    pub policy: Policy,
    /// One line: why weir treats it so (for refused keys: what serving without it would do).
    pub reason: &'static str,
    /// Whether ingress-nginx reads it on a canary Ingress (everything else comes from the
    /// main Ingress there).
    pub on_canary: bool,
    /// The key has an effect only when one of these keys is also set (non-empty); without
    /// them ingress-nginx ignores it, and so does weir. Empty: no such condition.
    pub needs: &'static [&'static str],
}

impl Entry {
    pub(crate) const fn refused(name: &'static str, group: Group, reason: &'static str) -> Entry {
        Entry { name, group, policy: Policy::Refused(Unless::Never), reason, on_canary: false, needs: &[] }
    }

    pub(crate) const fn ignored(name: &'static str, group: Group, reason: &'static str) -> Entry {
        Entry { name, group, policy: Policy::Ignored, reason, on_canary: false, needs: &[] }
    }

    pub(crate) const fn honoured(
        name: &'static str,
        group: Group,
        grammar: &'static str,
        check: fn(&str) -> Checked,
        fallback: &'static str,
        reason: &'static str,
    ) -> Entry {
        Entry {
            name,
            group,
            policy: Policy::Honoured { grammar, check, fallback },
            reason,
            on_canary: false,
            needs: &[],
        }
    }

    /// Refused only when the value does not switch the feature off.
    pub(crate) const fn unless(self, unless: Unless) -> Entry {
        Entry { policy: Policy::Refused(unless), ..self }
    }

    pub(crate) const fn on_canary(self) -> Entry {
        Entry { on_canary: true, ..self }
    }

    pub(crate) const fn needs(self, needs: &'static [&'static str]) -> Entry {
        Entry { needs, ..self }
    }

    /// The state of the key as the table lists it (before value, position and waivers).
    pub fn state(&self) -> State {
        match self.policy {
            Policy::Honoured { .. } => State::Honoured,
            Policy::Refused(_) => State::Refused,
            Policy::Ignored => State::Ignored,
        }
    }
}

/// Every key, by name.
pub static ENTRIES: LazyLock<BTreeMap<&'static str, &'static Entry>> = LazyLock::new(|| {
    [backend::ENTRIES, access::ENTRIES.as_slice(), routing::ENTRIES]
        .into_iter()
        .flatten()
        .map(|e| (e.name, e))
        .collect()
});

/// The entry for a key without prefix.
pub fn lookup(name: &str) -> Option<&'static Entry> {
    ENTRIES.get(name).copied()
}

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

/// The known key nearest to an unknown one (edit distance at most 2, and less than half
/// its length), to suggest for typos.
pub fn nearest(name: &str) -> Option<&'static str> {
    let limit = 2.min(name.chars().count().saturating_sub(1) / 2);
    ENTRIES.keys().map(|k| (edit_distance(name, k), *k)).filter(|(d, _)| *d <= limit).min().map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
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
