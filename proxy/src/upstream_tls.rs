//! TLS to upstreams (`HTTPS`/`GRPCS` backends). The upstream's certificate is not verified,
//! as ingress-nginx's default `proxy-ssl-verify: off`: in-cluster backends mostly present
//! self-signed certificates. The connection is still encrypted, and signatures are still
//! checked so the handshake itself is sound.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// TLS client configurations for HTTPS (ALPN http/1.1) and GRPCS (ALPN h2) upstreams.
#[derive(Clone)]
pub struct UpstreamTls {
    pub http1: Arc<rustls::ClientConfig>,
    pub h2: Arc<rustls::ClientConfig>,
}

impl UpstreamTls {
    /// The client configurations weir uses for `HTTPS` and `GRPCS` backends.
    pub fn new() -> Result<Self, rustls::Error> {
        Ok(UpstreamTls { http1: client_config(b"http/1.1")?, h2: client_config(b"h2")? })
    }
}

/// Client configuration for TLS to upstreams, offering `alpn` (`h2` or `http/1.1`).
fn client_config(alpn: &[u8]) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(NoVerification(provider.clone()));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// Accepts any upstream certificate (see the module docs).
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
