//! Certificates made at test time, and TLS clients that trust them.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use super::wait::within;

/// A self-signed certificate for some names: chain PEM, key PEM, and DER for trust roots.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: rustls_pki_types::CertificateDer<'static>,
}

pub fn cert(names: &[&str]) -> TestCert {
    let c = rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("rcgen");
    TestCert { cert_pem: c.cert.pem(), key_pem: c.signing_key.serialize_pem(), der: c.cert.der().clone() }
}

/// A YAML `tls:` value for a certificate (flow style, PEM as a JSON string).
pub fn tls_yaml(c: &TestCert) -> String {
    format!(
        "{{ certificate: {}, key: {} }}",
        serde_json::to_string(&c.cert_pem).expect("json"),
        serde_json::to_string(&c.key_pem).expect("json")
    )
}

/// A TLS client trusting `roots`, offering `alpn`.
pub fn tls_client(roots: &[&TestCert], alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.der.clone()).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connect with TLS to `addr` presenting `sni`.
pub async fn tls_connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    sni: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from(sni.to_string()).expect("sni");
    within("TLS handshake", connector.connect(name, tcp)).await
}
