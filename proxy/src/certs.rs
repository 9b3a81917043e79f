//! The certificates of one route table, loaded and indexed for handshakes: exact names,
//! one-label wildcards, and the table's default certificate. Plain data of the snapshot;
//! the TLS listener's SNI resolver (`tls.rs`) reads it.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use weir_config::{checks, FieldError, RouteTable};

/// Certificates of one table, ready for handshakes.
#[derive(Default)]
pub struct CertStore {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by what follows `*.`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Load every certificate of `table`; a key that cannot sign or does not match its
    /// certificate is an error naming the field (the reason never includes key material).
    pub fn build(table: &RouteTable) -> Result<CertStore, Vec<FieldError>> {
        let mut errs = Vec::new();
        let mut load = |c: &weir_config::Certificate| match checks::certified_key(c.chain.clone(), &c.key) {
            Ok(ck) => Some(Arc::new(ck)),
            Err(problem) => {
                errs.push(FieldError { field: format!("{}.key", c.field), reason: problem.to_string() });
                None
            }
        };
        let mut store = CertStore::default();
        for c in table.certificates() {
            let Some(ck) = load(c) else { continue };
            match c.name.strip_prefix("*.") {
                Some(suffix) => store.wildcard.insert(suffix.to_string(), ck),
                None => store.exact.insert(c.name.clone(), ck),
            };
        }
        store.default = table.default_certificate().and_then(&mut load);
        if errs.is_empty() {
            Ok(store)
        } else {
            Err(errs)
        }
    }

    /// The certificate for an SNI name (lower-case), or for no SNI.
    pub fn resolve(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = sni {
            if let Some(ck) = self.exact.get(name) {
                return Some(ck.clone());
            }
            if let Some((_, rest)) = name.split_once('.') {
                if let Some(ck) = self.wildcard.get(rest) {
                    return Some(ck.clone());
                }
            }
        }
        self.default.clone()
    }

    /// True when the table has any certificate (the TLS listener can serve someone).
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.default.is_none()
    }
}
