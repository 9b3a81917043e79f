//! `spec.tls` of the main Ingresses → a certificate per table host, and the default one.
//!
//! Rules, as ingress-nginx applies them per server (host):
//! - A host gets the Secret named for it in `spec.tls[].hosts` (compared lower-case) by the
//!   oldest main Ingress whose Secret is usable; an Ingress naming a *different* Secret for
//!   a host that already has one is reported (`TlsConflict`) and ignored for that host.
//!   Canary Ingresses' TLS is ignored (canary-semantics.md §3).
//! - A Secret that is missing, not `kubernetes.io/tls`, lacks `tls.crt`/`tls.key`, or does
//!   not pass the proxy's own checks ([`super::certs`]) is reported on the Ingress, and the
//!   host is served without a certificate of its own: plain HTTP, and over TLS whatever the
//!   SNI fallback gives (the default certificate) — ingress-nginx would use its default
//!   (fake) certificate. One bad Secret never makes the proxy refuse the table.
//! - A TLS host that no rule serves still gets a host in the table with its certificate:
//!   `/` of the Ingress's `defaultBackend` if it has one, otherwise no rules (404), as
//!   ingress-nginx serves such a host with its default backend.
//! - A `spec.tls` entry without `hosts` is reported and ignored: weir attaches certificates
//!   by host name only (use `--default-ssl-certificate` for a catch-all).
//! - `sslRedirect` of a host with a certificate comes from the Ingress that supplied it:
//!   `ssl-redirect` (default true) or `force-ssl-redirect`.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use weir_config::wire::TlsDoc;

use super::certs::{Memo, SecretProblem};
use super::diagnostics::{Diagnostics, IngressRef, Reason};
use super::rules::{valid_host, HostTls};
use super::state::TlsBinding;
use crate::annotations::RuleAnnotations;

/// What [`resolve`] found.
#[derive(Default)]
pub(crate) struct Resolved {
    /// Every TLS host and the Secret chosen for it, usable or not, sorted by host.
    pub bindings: Vec<TlsBinding>,
    /// Hosts with a usable certificate.
    pub hosts: BTreeMap<String, HostTls>,
}

/// The outcome of reading one Secret, shared by every host that names it (PEM is large).
type Pair = Rc<Result<TlsDoc, SecretProblem>>;

struct Claim {
    secret: (String, String),
    ingress: IngressRef,
    pair: Pair,
    ssl_redirect: bool,
}

/// Resolve the TLS hosts of the main Ingresses (oldest first).
pub(crate) fn resolve(
    main: &[(&Ingress, RuleAnnotations)],
    secrets: &HashMap<(&str, &str), &Secret>,
    memo: &mut Memo<'_>,
    diags: &mut Diagnostics,
) -> Resolved {
    let mut checked: HashMap<(String, String), Pair> = HashMap::new();
    let mut by_host: BTreeMap<String, Claim> = BTreeMap::new();
    for (ing, rule) in main {
        let Some(entries) = ing.spec.as_ref().and_then(|s| s.tls.as_deref()) else { continue };
        let at = IngressRef::of(ing);
        for tls in entries {
            // No Secret: ingress-nginx serves these hosts with its default certificate.
            let Some(name) = tls.secret_name.as_deref().filter(|s| !s.is_empty()) else { continue };
            let hosts = tls.hosts.as_deref().unwrap_or_default();
            if hosts.is_empty() {
                diags.warn(
                    &at,
                    Reason::UnsupportedRule,
                    format!(
                        "spec.tls entry with secret {name:?} lists no hosts; weir attaches \
                         certificates by host only (see --default-ssl-certificate); ignored"
                    ),
                );
                continue;
            }
            let key = (at.namespace.clone(), name.to_string());
            let pair = checked
                .entry(key.clone())
                .or_insert_with(|| {
                    let secret = secrets.get(&(key.0.as_str(), key.1.as_str())).copied();
                    Rc::new(memo.pair(secret, format!("{}/{}", key.0, key.1)))
                })
                .clone();
            if let Err(problem) = &*pair {
                let reason =
                    if problem.is_not_found() { Reason::SecretNotFound } else { Reason::InvalidSecret };
                diags.warn(
                    &at,
                    reason,
                    format!("TLS secret {}/{name} {problem}; its hosts are served without it", at.namespace),
                );
            }
            for host in hosts {
                let host = host.to_ascii_lowercase();
                if !valid_host(&host) {
                    diags.warn(
                        &at,
                        Reason::UnsupportedRule,
                        format!("TLS host {host:?} is not a valid DNS name; ignored"),
                    );
                    continue;
                }
                let claim = Claim {
                    secret: key.clone(),
                    ingress: at.clone(),
                    pair: pair.clone(),
                    ssl_redirect: rule.redirect(),
                };
                claim_host(&mut by_host, host, claim, diags);
            }
        }
    }
    // Only the claims hold the pairs now: a Secret named for one host moves, not copies.
    drop(checked);
    let mut out = Resolved::default();
    for (host, claim) in by_host {
        out.bindings.push(TlsBinding {
            host: Some(host.clone()),
            secret_namespace: claim.secret.0,
            secret_name: claim.secret.1,
            ingress: claim.ingress,
            found: claim.pair.is_ok(),
        });
        let pair = Rc::try_unwrap(claim.pair).unwrap_or_else(|shared| (*shared).clone());
        if let Ok(doc) = pair {
            out.hosts.insert(host, HostTls { doc, ssl_redirect: claim.ssl_redirect });
        }
    }
    out
}

/// The oldest claim with a usable certificate keeps a host; a different Secret is reported.
fn claim_host(by_host: &mut BTreeMap<String, Claim>, host: String, claim: Claim, diags: &mut Diagnostics) {
    let shown = format!("{host:?}");
    let slot = match by_host.entry(host) {
        Entry::Vacant(v) => {
            v.insert(claim);
            return;
        }
        Entry::Occupied(o) => o.into_mut(),
    };
    if slot.secret == claim.secret {
        return;
    }
    let (older, newer) =
        (format!("{}/{}", slot.secret.0, slot.secret.1), format!("{}/{}", claim.secret.0, claim.secret.1));
    if slot.pair.is_err() && claim.pair.is_ok() {
        diags.warn(
            &claim.ingress,
            Reason::TlsConflict,
            format!(
                "TLS secret {older} named for host {shown} by older ingress {} cannot be used; \
                 this ingress's secret {newer} serves the host",
                slot.ingress
            ),
        );
        *slot = claim;
    } else {
        diags.warn(
            &claim.ingress,
            Reason::TlsConflict,
            format!(
                "host {shown} already has TLS secret {older} from older ingress {}; \
                 secret {newer} is ignored for it",
                slot.ingress
            ),
        );
    }
}
