//! The pure translation: cluster objects → one [`TableDoc`] plus diagnostics and TLS refs.
//!
//! No I/O and no clock: the same objects give the same table, byte for byte, whatever
//! order they arrived in. Every collection is sorted before it is walked, conflicts are
//! settled by age (oldest Ingress wins; ties by `namespace/name` descending, as
//! ingress-nginx's `sortIngressSlice`), and `version` is a content hash of the result.
//!
//! Steps: [`select`] picks weir's Ingresses and orders them; main rules are merged per
//! host (duplicates reported); `spec.defaultBackend` fills the default server; canary
//! Ingresses attach rule by rule (canary-semantics.md §3, D1, D4); [`backends`] resolves
//! Service ports to ready EndpointSlice addresses; TLS hosts resolve to Secret references.

mod backends;
mod diagnostics;
mod rules;
mod select;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use weir_config::wire::TableDoc;

pub use diagnostics::{Diagnostic, IngressRef, Reason, Severity};
pub use select::is_weirs;

/// Everything the translation reads, as the reflectors' stores hold it.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    pub ingresses: Vec<Arc<Ingress>>,
    pub classes: Vec<Arc<IngressClass>>,
    pub services: Vec<Arc<Service>>,
    pub slices: Vec<Arc<EndpointSlice>>,
    pub secrets: Vec<Arc<Secret>>,
}

/// Which Ingresses are weir's and how their annotations are spelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The ingress class name weir serves (`--class`, default `weir`).
    pub class: String,
    /// The `spec.controller` of IngressClasses weir implements (`--controller-name`).
    pub controller_name: String,
    /// Annotation prefix without the trailing `/` (default `nginx.ingress.kubernetes.io`).
    pub annotation_prefix: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            class: "weir".into(),
            controller_name: "weir.dev/ingress-controller".into(),
            annotation_prefix: "nginx.ingress.kubernetes.io".into(),
        }
    }
}

/// A TLS host and the Secret that should serve it. The route table has no TLS fields yet
/// (issue 3 adds them); this is the hook: the pusher will carry these once the wire does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TlsBinding {
    /// The host as listed in `spec.tls[].hosts`, lower-cased; `None` for the default server.
    pub host: Option<String>,
    pub secret_namespace: String,
    pub secret_name: String,
    /// The Ingress that named it (the oldest one, when several name one host).
    pub ingress: IngressRef,
    /// Whether the Secret exists (and is of type `kubernetes.io/tls`).
    pub found: bool,
}

/// What [`translate`] produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The whole route table, `version` set to a content hash.
    pub doc: TableDoc,
    /// TLS hosts → Secrets, sorted by host.
    pub tls: Vec<TlsBinding>,
    /// Warnings to log and emit as Events, sorted, no duplicates.
    pub diagnostics: Vec<Diagnostic>,
    /// The main (non-canary) Ingresses weir serves, sorted: those whose status it writes.
    /// Canary Ingresses are left alone: Argo Rollouts owns them.
    pub served: Vec<IngressRef>,
}

/// Translate cluster state into weir's route table.
pub fn translate(state: &ClusterState, opts: &Options) -> Translation {
    let mut diags = diagnostics::Diagnostics::default();
    let selected = select::select(state, opts, &mut diags);
    let index = backends::Index::new(state);
    let mut table = rules::Table::default();
    for ing in &selected.main {
        table.add_main(ing, &index, &mut diags);
    }
    for ing in &selected.main {
        table.add_default_backend(ing, &index, &mut diags);
    }
    for (ing, annotations) in &selected.canaries {
        table.add_canary(ing, annotations, &opts.annotation_prefix, &index, &mut diags);
    }
    let tls = backends::tls_bindings(&selected.main, &index, &mut diags);
    let mut doc = table.into_doc();
    doc.version = Some(content_version(&doc));
    let served = selected.main.iter().map(|i| IngressRef::of(i)).collect::<std::collections::BTreeSet<_>>();
    Translation { doc, tls, diagnostics: diags.finish(), served: served.into_iter().collect() }
}

/// A stable content hash of a document (its `version` ignored): FNV-1a 64 over its JSON,
/// which is deterministic because every list in it is sorted. Stable across builds and
/// restarts, so a restarted controller recognises the table the proxy already has.
pub fn content_version(doc: &TableDoc) -> String {
    let unversioned = TableDoc { version: None, ..doc.clone() };
    let json = serde_json::to_vec(&unversioned).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("w-{h:016x}")
}
