//! The vocabulary of the catalog: a key's entry, its group, policy and state, and what a
//! value check finds; shared by the catalog and its group tables.

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
