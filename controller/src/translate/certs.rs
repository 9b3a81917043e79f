//! TLS Secrets → certificate/key PEM pairs, checked exactly as the proxy will load them.
//!
//! The proxy refuses a whole table when one key does not load or does not match its
//! certificate, so a Secret is only used after the same checks pass here, the very ones
//! (`weir_config::checks::certificate`): PEM chain and key parse, ring can sign with the
//! key, and the key's public half is the certificate's. A Secret that fails is reported and its hosts
//! are served without it (plain HTTP, or the default certificate by SNI fallback).
//!
//! Loading a key costs tens of microseconds (RSA: more), so verdicts are memoized in
//! [`CertChecks`] by Secret `uid` + `resourceVersion`, which the API server changes on
//! every write. A Secret without both is checked every time. The memo holds verdicts only,
//! never key material. Nothing here may put key bytes into a message.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use weir_config::checks::{self, CertificateProblem};
use weir_config::wire::TlsDoc;

pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";
pub const CERT_KEY: &str = "tls.crt";
pub const KEY_KEY: &str = "tls.key";

/// Why a Secret cannot serve TLS. Messages name the problem, never the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretProblem {
    NotFound,
    WrongType(String),
    Missing(&'static str),
    NotText(&'static str),
    BadCertificate(String),
    BadKey,
    UnusableKey,
    KeyMismatch,
}

impl fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretProblem::NotFound => f.write_str("does not exist"),
            SecretProblem::WrongType(t) => write!(f, "is of type {t:?}, not {TLS_SECRET_TYPE}"),
            SecretProblem::Missing(k) => write!(f, "has no {k}"),
            SecretProblem::NotText(k) => write!(f, "{k} is not UTF-8 PEM text"),
            SecretProblem::BadCertificate(why) => {
                write!(f, "{CERT_KEY} is not a PEM certificate chain: {why}")
            }
            SecretProblem::BadKey => write!(f, "{KEY_KEY} is not a PEM private key (PKCS#8, PKCS#1 or SEC1)"),
            SecretProblem::UnusableKey => {
                write!(f, "{KEY_KEY} is not a usable private key (RSA, ECDSA or Ed25519)")
            }
            SecretProblem::KeyMismatch => write!(f, "{KEY_KEY} does not match the certificate in {CERT_KEY}"),
        }
    }
}

impl SecretProblem {
    /// Missing or not a TLS Secret at all, as opposed to a TLS Secret with bad content.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SecretProblem::NotFound | SecretProblem::WrongType(_))
    }
}

type Verdict = Result<(), SecretProblem>;

/// Memoized verdicts of [`check`], shared by clones of one `ClusterState`. Each
/// translation keeps only the entries it used, so deleted or updated Secrets drop out.
#[derive(Clone, Default)]
pub struct CertChecks(Arc<Mutex<HashMap<(String, String), Verdict>>>);

impl fmt::Debug for CertChecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "CertChecks({n} memoized)")
    }
}

/// One translation's use of the memo: reads the previous round, writes this one.
pub(crate) struct Memo<'a> {
    shared: &'a CertChecks,
    previous: HashMap<(String, String), Verdict>,
    current: HashMap<(String, String), Verdict>,
}

impl<'a> Memo<'a> {
    pub(crate) fn begin(shared: &'a CertChecks) -> Memo<'a> {
        let previous = std::mem::take(&mut *shared.0.lock().unwrap_or_else(|e| e.into_inner()));
        Memo { shared, previous, current: HashMap::new() }
    }

    /// The PEM pair of a Secret, or why it cannot be used.
    pub(crate) fn pair(&mut self, secret: Option<&Secret>, source: String) -> Result<TlsDoc, SecretProblem> {
        let secret = secret.ok_or(SecretProblem::NotFound)?;
        let ty = secret.type_.as_deref().unwrap_or("Opaque");
        if ty != TLS_SECRET_TYPE {
            return Err(SecretProblem::WrongType(ty.to_string()));
        }
        let text = |k: &'static str| -> Result<&str, SecretProblem> {
            let bytes = secret.data.as_ref().and_then(|d| d.get(k)).ok_or(SecretProblem::Missing(k))?;
            std::str::from_utf8(&bytes.0).map_err(|_| SecretProblem::NotText(k))
        };
        let (certificate, key) = (text(CERT_KEY)?, text(KEY_KEY)?);
        let memo_key = secret.metadata.uid.clone().zip(secret.metadata.resource_version.clone());
        let known =
            memo_key.as_ref().and_then(|k| self.current.get(k).cloned().or_else(|| self.previous.remove(k)));
        let verdict = known.unwrap_or_else(|| check(certificate, key));
        if let Some(k) = memo_key {
            self.current.insert(k, verdict.clone());
        }
        verdict.map(|()| TlsDoc {
            certificate: Some(certificate.to_string()),
            key: Some(key.to_string()),
            source: Some(source),
            ..Default::default()
        })
    }
}

impl Drop for Memo<'_> {
    fn drop(&mut self) {
        let mut shared = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        *shared = std::mem::take(&mut self.current);
    }
}

/// The proxy's checks, from the one place they live (`weir_config::checks::certificate`).
pub fn check(certificate: &str, key: &str) -> Result<(), SecretProblem> {
    checks::certificate(certificate, key).map_err(|problem| match problem {
        CertificateProblem::NoCertificate => SecretProblem::BadCertificate(problem.to_string()),
        CertificateProblem::BadCertificate(why) => SecretProblem::BadCertificate(why),
        CertificateProblem::BadKey => SecretProblem::BadKey,
        CertificateProblem::UnusableKey => SecretProblem::UnusableKey,
        CertificateProblem::KeyMismatch => SecretProblem::KeyMismatch,
    })
}
