//! Test kit for the TLS and hardening suites: weir in-process on loopback port 0,
//! upstreams that name themselves, certificates made at test time, and small clients.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use weir_proxy::{Running, Settings};

/// Upper bound for anything a test waits on.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Settings for a test weir: everything on 127.0.0.1:0, TLS on.
pub fn settings() -> Settings {
    let lo = SocketAddr::from(([127, 0, 0, 1], 0));
    Settings { listen: lo, tls_listen: Some(lo), admin_listen: Some(lo), ..Settings::default() }
}

pub async fn weir(yaml: &str) -> Running {
    weir_with(settings(), yaml).await
}

pub async fn weir_with(settings: Settings, yaml: &str) -> Running {
    let doc = serde_yaml_ng::from_str(yaml).expect("test table parses");
    weir_proxy::start(settings, Some(doc)).await.expect("weir starts")
}

/// An HTTP/1.1 upstream that answers with its name and counts the requests it saw.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<AtomicUsize>,
}

impl Upstream {
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

pub async fn upstream(name: &'static str) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            let svc = service_fn(move |req: Request<Incoming>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    // Read the whole body so request framing is exercised end to end.
                    let len = req.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
                    let mut resp = Response::new(Full::new(Bytes::from(format!("{name} {len}\n"))));
                    resp.headers_mut().insert("x-upstream", http::HeaderValue::from_static(name));
                    Ok::<_, Infallible>(resp)
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Upstream { addr, seen }
}

/// A self-signed certificate for `names`, as (chain PEM, key PEM, DER for trust roots).
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
    tokio::time::timeout(PATIENCE, connector.connect(name, tcp)).await.expect("handshake in time")
}

/// An HTTP/1.1 sender over any stream.
pub async fn h1<S>(stream: S) -> hyper::client::conn::http1::SendRequest<Full<Bytes>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("h1 handshake");
    tokio::spawn(conn);
    sender
}

/// An HTTP/2 sender over any stream.
pub async fn h2<S, B>(stream: S) -> hyper::client::conn::http2::SendRequest<B>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    sender
}

/// GET `path` for `host` and return (status, body).
pub async fn get(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: &str,
    path: &str,
) -> (u16, String) {
    let req = Request::get(path).header("host", host).body(Full::new(Bytes::new())).expect("request");
    tokio::time::timeout(PATIENCE, sender.ready()).await.expect("ready in time").expect("connection usable");
    let resp =
        tokio::time::timeout(PATIENCE, sender.send_request(req)).await.expect("in time").expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
