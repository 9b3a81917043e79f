//! Diagnostics: what translation found wrong, each naming the Ingress it concerns.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::networking::v1::Ingress;

/// An Ingress by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IngressRef {
    pub namespace: String,
    pub name: String,
}

impl IngressRef {
    pub fn of(ing: &Ingress) -> IngressRef {
        IngressRef {
            namespace: ing.metadata.namespace.clone().unwrap_or_default(),
            name: ing.metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for IngressRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Why a diagnostic was raised; its name is the Kubernetes Event `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// A canary rule names a (host, path, pathType) that no main rule has.
    CanaryWithoutMain,
    /// A second canary for one main rule (D4); the oldest keeps it.
    CanaryConflict,
    /// An annotation value did not parse or was out of range; a default was used.
    InvalidAnnotation,
    /// canary-* annotations set but `canary` is not true: served as an ordinary Ingress.
    CanaryNotEnabled,
    /// The backend Service does not exist (the rule is kept with no endpoints).
    ServiceNotFound,
    /// The Service has no port with that number or name.
    ServicePortNotFound,
    /// A TLS Secret does not exist or is not of type `kubernetes.io/tls`.
    SecretNotFound,
    /// A TLS Secret lacks `tls.crt`/`tls.key`, or they do not parse or do not match.
    InvalidSecret,
    /// Two Ingresses name different TLS Secrets for one host; the oldest usable one wins.
    TlsConflict,
    /// A main rule duplicates an older Ingress's (host, path, pathType); the older wins.
    DuplicateRule,
    /// A rule weir cannot serve (bad host or path, resource backend, ExternalName).
    UnsupportedRule,
    /// An annotation weir cannot honour: the Ingress's rules answer 503.
    AnnotationRefused,
    /// A refused annotation the operator accepts (`--accept-annotation`): served without it.
    AnnotationWaived,
    /// Not an ingress-nginx annotation (a typo or a removed key); ignored.
    UnknownAnnotation,
}

impl Reason {
    /// Every reason, for metrics that show each one (at 0 when absent).
    pub const ALL: [Reason; 14] = [
        Reason::CanaryWithoutMain,
        Reason::CanaryConflict,
        Reason::InvalidAnnotation,
        Reason::CanaryNotEnabled,
        Reason::ServiceNotFound,
        Reason::ServicePortNotFound,
        Reason::SecretNotFound,
        Reason::InvalidSecret,
        Reason::TlsConflict,
        Reason::DuplicateRule,
        Reason::UnsupportedRule,
        Reason::AnnotationRefused,
        Reason::AnnotationWaived,
        Reason::UnknownAnnotation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CanaryWithoutMain => "CanaryWithoutMain",
            Reason::CanaryConflict => "CanaryConflict",
            Reason::InvalidAnnotation => "InvalidAnnotation",
            Reason::CanaryNotEnabled => "CanaryNotEnabled",
            Reason::ServiceNotFound => "ServiceNotFound",
            Reason::ServicePortNotFound => "ServicePortNotFound",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::InvalidSecret => "InvalidSecret",
            Reason::TlsConflict => "TlsConflict",
            Reason::DuplicateRule => "DuplicateRule",
            Reason::UnsupportedRule => "UnsupportedRule",
            Reason::AnnotationRefused => "AnnotationRefused",
            Reason::AnnotationWaived => "AnnotationWaived",
            Reason::UnknownAnnotation => "UnknownAnnotation",
        }
    }
}

/// Every diagnostic is a warning today; kept as a type so Normal events can follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
}

/// One finding about one Ingress.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Diagnostic {
    pub ingress: IngressRef,
    pub reason: Reason,
    pub message: String,
    pub severity: Severity,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ingress {}: {}: {}", self.ingress, self.reason.as_str(), self.message)
    }
}

/// Collects diagnostics; sorted and deduplicated at the end so order of discovery is moot.
#[derive(Default)]
pub(crate) struct Diagnostics(BTreeSet<Diagnostic>);

impl Diagnostics {
    pub(crate) fn warn(&mut self, ingress: &IngressRef, reason: Reason, message: impl Into<String>) {
        self.0.insert(Diagnostic {
            ingress: ingress.clone(),
            reason,
            message: message.into(),
            severity: Severity::Warning,
        });
    }

    pub(crate) fn finish(self) -> Vec<Diagnostic> {
        self.0.into_iter().collect()
    }
}
