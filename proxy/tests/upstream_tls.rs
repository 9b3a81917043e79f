//! Upstream protocols beyond HTTP/1.1 cleartext: HTTPS and GRPCS (HTTP/2 over TLS) backends,
//! and the client connection limit.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weir_proxy::server::ConnSettings;
use weir_proxy::testkit::client::{h1_over, send_get};
use weir_proxy::testkit::weir::{serving, tls_settings};
use weir_proxy::testkit::{Upstream, WAIT};

/// A TLS upstream with a self-signed certificate (weir does not verify upstream
/// certificates, as ingress-nginx's default), answering with the protocol it saw.
async fn tls_upstream(alpn: &'static [u8]) -> std::net::SocketAddr {
    let c = rcgen::generate_simple_self_signed(vec!["upstream.test".to_string()]).expect("rcgen");
    let key = rustls_pki_types::PrivateKeyDer::try_from(c.signing_key.serialize_der()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![c.cert.der().clone()], key)
        .expect("server config");
    config.alpn_protocols = vec![alpn.to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let body = format!("secure {:?}\n", req.version());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                if alpn == b"h2" {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                }
            });
        }
    });
    addr
}

fn table(up: std::net::SocketAddr, protocol: &str) -> String {
    format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules: [{{ path: /, protocol: {protocol}, backend: {{ endpoints: ['{up}'] }} }}]
"
    )
}

#[tokio::test]
async fn an_https_backend_is_reached_over_tls() {
    let up = tls_upstream(b"http/1.1").await;
    let weir = serving(tls_settings(), &table(up, "HTTPS")).await;
    let mut client = h1_over(TcpStream::connect(weir.data_addr).await.expect("connect")).await;
    for _ in 0..3 {
        assert_eq!(send_get(&mut client, "app.test", "/").await, (200, "secure HTTP/1.1\n".into()));
    }
    weir.shutdown().await;
}

#[tokio::test]
async fn a_grpcs_backend_is_reached_with_http2_over_tls() {
    let up = tls_upstream(b"h2").await;
    let weir = serving(tls_settings(), &table(up, "GRPCS")).await;
    let mut client = h1_over(TcpStream::connect(weir.data_addr).await.expect("connect")).await;
    assert_eq!(send_get(&mut client, "app.test", "/").await, (200, "secure HTTP/2.0\n".into()));
    weir.shutdown().await;
}

#[tokio::test]
async fn an_https_backend_that_is_plain_http_is_a_502() {
    let plain = Upstream::plain("plain").await;
    let weir = serving(tls_settings(), &table(plain.addr, "HTTPS")).await;
    let mut client = h1_over(TcpStream::connect(weir.data_addr).await.expect("connect")).await;
    assert_eq!(send_get(&mut client, "app.test", "/").await.0, 502);
    weir.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let up = Upstream::plain("app").await;
    let settings = weir_proxy::Settings {
        conn: ConnSettings { max_connections: 2, ..ConnSettings::default() },
        ..tls_settings()
    };
    let weir = serving(settings, &table(up.addr, "HTTP")).await;
    let mut first = h1_over(TcpStream::connect(weir.data_addr).await.expect("connect")).await;
    let mut second = h1_over(TcpStream::connect(weir.data_addr).await.expect("connect")).await;
    assert_eq!(send_get(&mut first, "app.test", "/").await.0, 200);
    assert_eq!(send_get(&mut second, "app.test", "/").await.0, 200);

    // The third connection is accepted by the kernel but not served while two are open.
    let mut third = TcpStream::connect(weir.data_addr).await.expect("connect");
    third.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n").await.expect("write");
    let mut buf = Vec::new();
    let early = tokio::time::timeout(Duration::from_millis(300), third.read_to_end(&mut buf)).await;
    assert!(early.is_err() && buf.is_empty(), "served beyond the limit: {:?}", String::from_utf8_lossy(&buf));

    drop(first); // frees a slot
    tokio::time::timeout(WAIT, third.read_to_end(&mut buf))
        .await
        .expect("served once a slot frees")
        .expect("read");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf));
    drop(second);
    weir.shutdown().await;
}
