//! TLS termination: SNI selection, the default certificate, ALPN, certificate swaps,
//! ssl-redirect, key redaction, and real clients (curl, h2load).

use std::process::Command;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use weir_proxy::testkit::client::{h1_over, h2_over, send_get};
use weir_proxy::testkit::tls::{cert, tls_client, tls_connect, tls_yaml, TestCert};
use weir_proxy::testkit::weir::{serving, tls_settings};
use weir_proxy::testkit::Upstream;

fn table(a: &TestCert, wild: &TestCert, default: &TestCert, up: std::net::SocketAddr) -> String {
    format!(
        "schema: weir/v1
tls: {{ defaultCertificate: {d} }}
hosts:
  - host: a.example.test
    tls: {a}
    rules: [{{ path: /, backend: {{ service: a, endpoints: ['{up}'] }} }}]
  - host: b.example.test
    tls: {a}
    sslRedirect: false
    rules: [{{ path: /, backend: {{ service: b, endpoints: ['{up}'] }} }}]
  - host: '*.wild.test'
    tls: {w}
    rules: [{{ path: /, backend: {{ service: w, endpoints: ['{up}'] }} }}]
",
        a = tls_yaml(a),
        w = tls_yaml(wild),
        d = tls_yaml(default),
    )
}

/// The leaf certificate the server presented on a connection.
fn presented(stream: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default()
}

#[tokio::test]
async fn sni_picks_the_exact_then_wildcard_certificate_and_unknown_names_get_the_default() {
    let up = Upstream::plain("up").await;
    let (a, wild, default) =
        (cert(&["a.example.test", "b.example.test"]), cert(&["*.wild.test"]), cert(&["unknown.test"]));
    let weir = serving(tls_settings(), &table(&a, &wild, &default, up.addr)).await;
    let tls_addr = weir.tls_addr.expect("tls listener");
    let client = tls_client(&[&a, &wild, &default], &[b"http/1.1"]);

    let s = tls_connect(&client, tls_addr, "a.example.test").await.expect("a handshake");
    assert!(presented(&s) == a.der.to_vec(), "exact host gets its certificate");
    let mut sender = h1_over(s).await;
    assert_eq!(send_get(&mut sender, "a.example.test", "/").await, (200, "up 0\n".into()));

    let s = tls_connect(&client, tls_addr, "x.wild.test").await.expect("wildcard handshake");
    assert!(presented(&s) == wild.der.to_vec(), "a one-label name under the wildcard gets the wildcard's");

    let s = tls_connect(&client, tls_addr, "unknown.test").await.expect("default handshake");
    assert!(presented(&s) == default.der.to_vec(), "unknown SNI gets the default certificate");
    weir.shutdown().await;
}

#[tokio::test]
async fn h2_is_negotiated_by_alpn() {
    let up = Upstream::plain("up").await;
    let (a, wild, default) = (cert(&["a.example.test"]), cert(&["*.wild.test"]), cert(&["d.test"]));
    let weir = serving(tls_settings(), &table(&a, &wild, &default, up.addr)).await;
    let client = tls_client(&[&a], &[b"h2", b"http/1.1"]);
    let s = tls_connect(&client, weir.tls_addr.expect("tls"), "a.example.test").await.expect("handshake");
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut sender = h2_over::<_, Full<Bytes>>(s).await;
    let req = Request::get("https://a.example.test/").body(Full::new(Bytes::new())).expect("req");
    let resp = sender.send_request(req).await.expect("h2 response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.into_body().collect().await.expect("body").to_bytes(), "up 0\n");
    weir.shutdown().await;
}

#[tokio::test]
async fn a_certificate_swap_serves_new_connections_while_established_ones_keep_working() {
    let up = Upstream::plain("up").await;
    let (old, new, wild, default) =
        (cert(&["a.example.test"]), cert(&["a.example.test"]), cert(&["*.wild.test"]), cert(&["d.test"]));
    let weir = serving(tls_settings(), &table(&old, &wild, &default, up.addr)).await;
    let tls_addr = weir.tls_addr.expect("tls");
    let client = tls_client(&[&old, &new], &[b"http/1.1"]);

    let established = tls_connect(&client, tls_addr, "a.example.test").await.expect("handshake");
    assert!(presented(&established) == old.der.to_vec());
    let mut kept = h1_over(established).await;
    assert_eq!(send_get(&mut kept, "a.example.test", "/").await.0, 200);

    let doc = serde_yaml_ng::from_str(&table(&new, &wild, &default, up.addr)).expect("doc");
    weir.routes.install(doc).expect("swap");

    // A fresh client: a resumed TLS session would skip the certificate altogether.
    let fresh_client = tls_client(&[&old, &new], &[b"http/1.1"]);
    let fresh = tls_connect(&fresh_client, tls_addr, "a.example.test").await.expect("handshake after swap");
    assert!(presented(&fresh) == new.der.to_vec(), "new connections get the new certificate");
    for _ in 0..3 {
        assert_eq!(
            send_get(&mut kept, "a.example.test", "/").await.0,
            200,
            "the established connection still serves"
        );
    }
    weir.shutdown().await;
}

#[tokio::test]
async fn plain_http_to_a_tls_host_is_redirected_unless_the_host_opts_out() {
    let up = Upstream::plain("up").await;
    let (a, wild, default) =
        (cert(&["a.example.test", "b.example.test"]), cert(&["*.wild.test"]), cert(&["d.test"]));
    let weir = serving(tls_settings(), &table(&a, &wild, &default, up.addr)).await;
    let port = weir.tls_addr.expect("tls").port();
    let mut plain = h1_over(tokio::net::TcpStream::connect(weir.data_addr).await.expect("connect")).await;
    let req = Request::get("/p?q=1")
        .header("host", "A.example.test:80")
        .body(Full::new(Bytes::new()))
        .expect("req");
    let resp = plain.send_request(req).await.expect("resp");
    assert_eq!(resp.status(), 308);
    assert_eq!(resp.headers()["location"], format!("https://a.example.test:{port}/p?q=1").as_str());
    assert_eq!(up.hits(), 0, "a redirected request never reaches the upstream");
    assert_eq!(
        send_get(&mut plain, "b.example.test", "/").await,
        (200, "up 0\n".into()),
        "sslRedirect: false"
    );
    weir.shutdown().await;
}

#[tokio::test]
async fn private_keys_never_appear_in_the_admin_api_or_in_rejections() {
    let up = Upstream::plain("up").await;
    let (a, wild, default) = (cert(&["a.example.test"]), cert(&["*.wild.test"]), cert(&["d.test"]));
    let weir = serving(tls_settings(), &table(&a, &wild, &default, up.addr)).await;
    let admin = weir.admin_addr.expect("admin");
    let mut sender = h1_over(tokio::net::TcpStream::connect(admin).await.expect("connect")).await;
    let (status, body) = send_get(&mut sender, "admin", "/config").await;
    assert_eq!(status, 200);
    assert!(body.contains("<redacted>") && !body.contains("PRIVATE KEY"), "{body}");

    // A key that does not match its certificate: rejected, named, not echoed.
    let other = cert(&["a.example.test"]);
    let mismatched =
        TestCert { cert_pem: a.cert_pem.clone(), key_pem: other.key_pem.clone(), der: a.der.clone() };
    let bad = table(&mismatched, &wild, &default, up.addr);
    let req = Request::put("/config").header("host", "admin").body(Full::new(Bytes::from(bad))).expect("req");
    let resp = sender.send_request(req).await.expect("resp");
    assert_eq!(resp.status(), 400);
    let body =
        String::from_utf8_lossy(&resp.into_body().collect().await.expect("body").to_bytes()).into_owned();
    assert!(body.contains("hosts[0].tls.key") && body.contains("does not match the certificate"), "{body}");
    assert!(!body.contains("PRIVATE KEY"), "{body}");
    weir.shutdown().await;
}

/// Write the certificate to a temp file for the command-line clients.
fn ca_file(c: &TestCert) -> tempfile_path::TempPath {
    tempfile_path::write(&c.cert_pem)
}

mod tempfile_path {
    //! A file removed on drop, without a tempfile dependency.
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    pub fn write(content: &str) -> TempPath {
        let path =
            std::env::temp_dir().join(format!("weir-test-{}-{}.pem", std::process::id(), fastrand::u64(..)));
        std::fs::write(&path, content).expect("write temp file");
        TempPath(path)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_through_over_tls_with_http2_and_http1() {
    let up = Upstream::plain("up").await;
    let (a, wild, default) = (cert(&["a.example.test"]), cert(&["*.wild.test"]), cert(&["d.test"]));
    let weir = serving(tls_settings(), &table(&a, &wild, &default, up.addr)).await;
    let port = weir.tls_addr.expect("tls").port();
    let ca = ca_file(&a);
    for (flag, want) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = tokio::task::spawn_blocking({
            let ca = ca.0.clone();
            move || {
                Command::new("curl")
                    .args(["-sS", "--max-time", "10", flag, "--cacert"])
                    .arg(&ca)
                    .args(["--resolve", &format!("a.example.test:{port}:127.0.0.1")])
                    .args(["-w", "\n%{http_code} %{http_version}"])
                    .arg(format!("https://a.example.test:{port}/"))
                    .output()
                    .expect("curl is installed (scripts/test.sh installs it)")
            }
        })
        .await
        .expect("join");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "curl {flag}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout.trim_end().lines().last(), Some(format!("200 {want}").as_str()), "{stdout}");
    }
    weir.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2load_completes_every_request_over_tls() {
    let up = Upstream::plain("up").await;
    let (a, wild, default) = (cert(&["a.example.test"]), cert(&["*.wild.test"]), cert(&["d.test"]));
    let weir = serving(tls_settings(), &table(&a, &wild, &default, up.addr)).await;
    let port = weir.tls_addr.expect("tls").port();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("h2load")
            .args(["-n", "400", "-c", "4", "-m", "10", "--connect-to", &format!("127.0.0.1:{port}")])
            .arg(format!("https://a.example.test:{port}/"))
            .output()
            .expect("h2load is installed (scripts/test.sh installs nghttp2-client)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("400 succeeded, 0 failed, 0 errored"), "{stdout}");
    assert!(stdout.contains("Application protocol: h2"), "{stdout}");
    assert_eq!(up.hits(), 400);
    weir.shutdown().await;
}
