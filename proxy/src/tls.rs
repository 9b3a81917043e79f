//! TLS with rustls: certificates chosen by SNI from the table in force, and upstream TLS.
//!
//! The server side resolves each handshake against the current [`Snapshot`]'s
//! [`CertStore`]: exact name, then a one-label wildcard, then the table's default
//! certificate; with none of these the handshake fails (`unrecognized_name`). A table swap
//! therefore changes the certificate for new connections without touching established
//! ones. Only TLS 1.2 and 1.3 are offered, ALPN `h2` and `http/1.1`.
//!
//! Upstream TLS (`HTTPS`/`GRPCS` backends) does not verify the upstream's certificate, as
//! ingress-nginx's default `proxy-ssl-verify: off`: in-cluster backends mostly present
//! self-signed certificates. The connection is still encrypted.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use weir_config::{FieldError, RouteTable};

use crate::snapshot::Routes;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

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
        let provider = provider();
        let mut errs = Vec::new();
        let mut load = |c: &weir_config::Certificate| -> Option<Arc<CertifiedKey>> {
            let key = match provider.key_provider.load_private_key(c.key.clone_key()) {
                Ok(k) => k,
                Err(_) => {
                    errs.push(FieldError {
                        field: format!("{}.key", c.field),
                        reason: "is not a usable private key (RSA, ECDSA or Ed25519)".into(),
                    });
                    return None;
                }
            };
            let ck = CertifiedKey::new(c.chain.clone(), key);
            match ck.keys_match() {
                Ok(()) => Some(Arc::new(ck)),
                Err(rustls::Error::InconsistentKeys(_)) => {
                    errs.push(FieldError {
                        field: format!("{}.key", c.field),
                        reason: "does not match the certificate".into(),
                    });
                    None
                }
                // The key type cannot tell (e.g. no public key available): accept it.
                Err(_) => Some(Arc::new(ck)),
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

/// Picks certificates from the snapshot in force at handshake time.
#[derive(Debug)]
struct SniResolver {
    routes: Arc<Routes>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // rustls hands SNI over lower-cased and without a trailing dot.
        self.routes.load().certs.resolve(hello.server_name())
    }
}

/// The TLS server configuration for the data plane's TLS listener.
pub fn server_config(routes: Arc<Routes>) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { routes }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Client configuration for TLS to upstreams, offering `alpn` (`h2` or `http/1.1`).
pub fn upstream_config(alpn: &[u8]) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = provider();
    let verifier = Arc::new(NoVerification(provider.clone()));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// Accepts any upstream certificate (see the module docs), still checking signatures so
/// the handshake itself is sound.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
