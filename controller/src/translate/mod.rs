//! The pure translation: cluster objects → one [`TableDoc`] plus diagnostics and TLS refs.
//!
//! No I/O and no clock: the same objects give the same table, byte for byte, whatever
//! order they arrived in. Every collection is sorted before it is walked, conflicts are
//! settled by age (oldest Ingress wins; ties by `namespace/name` descending, as
//! ingress-nginx's `sortIngressSlice`), and `version` is a content hash of the result.
//!
//! Steps: [`select`] picks weir's Ingresses and orders them; main rules are merged per
//! host (duplicates reported); `spec.defaultBackend` fills the default server; [`canary`]
//! Ingresses attach rule by rule, after [`weirroutes`] (the Argo plugin's WeirRoutes, which
//! take precedence over canary Ingresses on the rules they name), (docs/canary-semantics.md §3, D1, D4), a Rollout's first,
//! and a canary's defaultBackend to the catch-all; [`backends`] resolves
//! Service ports to ready EndpointSlice addresses; [`tls`] puts checked certificates from
//! TLS Secrets on their hosts ([`certs`] checks them as the proxy will).

mod access;
mod backends;
mod canary;
pub mod certs;
mod diagnostics;
mod rules;
mod select;
mod state;
mod tls;
mod weirroutes;

use weir_config::wire::{TableDoc, TableTlsDoc};

pub use certs::CertChecks;
pub use diagnostics::{Diagnostic, IngressRef, Reason, Severity};
pub use select::is_weirs;
pub use state::{ClusterState, Options, TlsBinding};
pub use weirroutes::RouteOutcome;

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
    /// Findings about no Ingress in particular (the default certificate), to log.
    pub warnings: Vec<String>,
    /// Annotations of weir's Ingresses by state, in `State::ALL` order.
    pub annotation_counts: [usize; 4],
    /// What became of each WeirRoute, sorted by namespace/name: the replica's status entry.
    pub routes: Vec<RouteOutcome>,
}

/// Translate cluster state into weir's route table.
pub fn translate(state: &ClusterState, opts: &Options) -> Translation {
    let mut diags = diagnostics::Diagnostics::default();
    let index = backends::Index::new(state);
    let selected = select::select(state, opts, &index.secrets, &mut diags);
    let mut memo = certs::Memo::begin(&state.cert_checks);
    let mut table = rules::Table::default();
    for (ing, settings) in &selected.main {
        table.add_main(ing, settings, &index, &mut diags);
    }
    for (ing, settings) in &selected.main {
        table.add_default_backend(ing, settings, &index, &mut diags);
    }
    let served: Vec<IngressRef> = selected.main.iter().map(|(i, _)| IngressRef::of(i)).collect();
    let routes = table.add_weir_routes(&state.weir_routes, &served, &index, &mut diags);
    for (ing, annotations) in canary::by_precedence(&selected.canaries) {
        table.add_canary(ing, annotations, &opts.annotation_prefix, &index, &mut diags);
    }
    let resolved = tls::resolve(&selected.main, &index.secrets, &mut memo, &mut diags);
    let mut doc = table.into_doc(resolved.hosts, &mut diags);
    doc.client_address = opts.client_address.clone();
    let mut warnings = Vec::new();
    if let Some((namespace, name)) = &opts.default_certificate {
        let secret = index.secrets.get(&(namespace.as_str(), name.as_str())).copied();
        match memo.pair(secret, format!("{namespace}/{name}")) {
            Ok(cert) => doc.tls = Some(TableTlsDoc { default_certificate: Some(cert) }),
            Err(problem) => warnings
                .push(format!("default TLS certificate secret {namespace}/{name} {problem}; not used")),
        }
    }
    drop(memo);
    doc.version = Some(content_version(&doc));
    let served = served.into_iter().collect::<std::collections::BTreeSet<_>>();
    Translation {
        doc,
        tls: resolved.bindings,
        diagnostics: diags.finish(),
        served: served.into_iter().collect(),
        warnings,
        annotation_counts: selected.counts,
        routes,
    }
}

/// A stable content hash of a document (its `version` ignored): FNV-1a 64 over its JSON
/// (`weir_config::checks::content_fnv1a64`), which is deterministic because every list in
/// it is sorted. Stable across builds and restarts, so a restarted controller recognises
/// the table the proxy already has.
pub fn content_version(doc: &TableDoc) -> String {
    format!("w-{:016x}", weir_config::checks::content_fnv1a64(doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_config::wire::{DefaultsDoc, HostDoc};

    #[test]
    fn the_content_version_ignores_the_version_field_and_sees_everything_else() {
        let doc = TableDoc {
            schema: "weir/v1".into(),
            defaults: Some(DefaultsDoc { max_body_size: Some("2m".into()), ..Default::default() }),
            hosts: vec![HostDoc { host: Some("a.example.com".into()), ..Default::default() }],
            ..Default::default()
        };
        let versioned = TableDoc { version: Some("w-1".into()), ..doc.clone() };
        assert_eq!(content_version(&doc), content_version(&versioned));
        assert_eq!(content_version(&doc), format!("w-{:016x}", weir_config::checks::content_fnv1a64(&doc)));
        let other = TableDoc { defaults: None, ..doc.clone() };
        assert_ne!(content_version(&doc), content_version(&other));
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod precedence_tests;
