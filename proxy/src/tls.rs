//! The TLS listener's configuration: certificates chosen by SNI from the table in force.
//!
//! Each handshake is resolved against the current snapshot's [`CertStore`]: exact name,
//! then a one-label wildcard, then the table's default certificate; with none of these the
//! handshake fails (`unrecognized_name`). A table swap therefore changes the certificate
//! for new connections without touching established ones. Only TLS 1.2 and 1.3 are
//! offered, ALPN `h2` and `http/1.1`.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[cfg(doc)]
use crate::certs::CertStore;
use crate::routes::Routes;

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
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver { routes }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
