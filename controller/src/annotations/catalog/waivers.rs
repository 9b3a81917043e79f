//! The operator's per-key opt-out (`--accept-annotation`): refused keys whose refusal the
//! operator accepts, checked against the catalog when the controller starts.

use super::entry::State;
use super::table::{lookup, nearest};

/// The operator's opt-out: refused keys whose refusal is accepted (`--accept-annotation`).
/// A waived key is ignored instead of refusing its Ingress, and reported as waived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waivers(std::collections::BTreeSet<&'static str>);

impl Waivers {
    /// Parse the flag's keys (with or without the annotation prefix). Each must name a key
    /// the catalog refuses: waiving a typo or an honoured key is a mistake worth stopping for.
    pub fn parse<S: AsRef<str>>(keys: &[S], prefix: &str) -> Result<Waivers, crate::error::Error> {
        let mut out = std::collections::BTreeSet::new();
        for key in keys {
            let raw = key.as_ref().trim();
            if raw.is_empty() {
                continue; // an empty flag or environment variable accepts nothing
            }
            let name = raw.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')).unwrap_or(raw);
            let problem = match lookup(name) {
                Some(e) if e.state() == State::Refused => {
                    out.insert(e.name);
                    continue;
                }
                Some(e) => format!("is {}, not refused; there is nothing to accept", e.state()),
                None => match nearest(name) {
                    Some(n) => format!("is not an ingress-nginx annotation (did you mean {n}?)"),
                    None => "is not an ingress-nginx annotation".into(),
                },
            };
            return Err(crate::error::Error::Waiver { key: raw.to_string(), problem });
        }
        Ok(Waivers(out))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}
