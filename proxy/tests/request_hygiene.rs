//! Request hygiene (issue 21): one host per request, no h2c tunnels, the client's faults
//! never blamed on a backend, ALPN honoured, a bad preface closes the connection. Raw
//! sockets where the bytes matter; upstreams that echo what they received.

use std::net::SocketAddr;

use http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weir_proxy::testkit::exposition::{find, scrape_until, sum};
use weir_proxy::testkit::tls::{cert, tls_client, tls_connect, tls_yaml};
use weir_proxy::testkit::weir::{metrics_settings, serving, settings, tls_settings};
use weir_proxy::testkit::{empty, h2c, read, within, Upstream, H1, WAIT};

fn one_route(up: SocketAddr) -> String {
    format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules:
      - {{ path: /, backend: {{ namespace: shop, ingress: app, service: app, port: 80, endpoints: ['{up}'] }} }}
  - host: evil.example
    rules:
      - {{ path: /, backend: {{ namespace: shop, ingress: evil, service: evil, port: 80, endpoints: ['{up}'] }} }}
"
    )
}

/// Write `bytes` (then, if `half_close`, end the write side), read until weir closes or
/// [`WAIT`] passes; everything read.
async fn exchange(addr: SocketAddr, bytes: &[u8], half_close: bool) -> Vec<u8> {
    let mut s = within("connect", TcpStream::connect(addr)).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    if half_close {
        s.shutdown().await.expect("half close");
    }
    let mut out = Vec::new();
    let read = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "weir neither answered nor closed within {WAIT:?}: {:?}",
        String::from_utf8_lossy(&out)
    );
    out
}

fn status_of(response: &[u8]) -> String {
    String::from_utf8_lossy(response).split(' ').nth(1).unwrap_or("").to_owned()
}

#[tokio::test]
async fn an_absolute_form_target_wins_over_host_for_routing_and_every_header() {
    let up = Upstream::start("app").await;
    let weir = serving(metrics_settings(), &one_route(up.addr)).await;
    let mut client = H1::connect(weir.data_addr).await;
    let req = Request::get("http://app.test/where?q=1").header("host", "evil.example").body(empty()).unwrap();
    let reply = client.send(req).await.expect("answer");
    assert_eq!(reply.status, 200);
    let echo = reply.json();
    assert_eq!(echo["uri"], "/where?q=1", "the upstream gets origin-form: {echo}");
    assert_eq!(reply.echoed("host"), ["app.test"], "the target's authority replaces Host");
    assert_eq!(reply.echoed("x-forwarded-host"), ["app.test"]);
    // Routed by the authority: app's rule, and recorded under its host, never evil's.
    let samples = scrape_until(&weir, |s| sum(s, "nginx_ingress_controller_requests", &[]) >= 1.0).await;
    let recorded = find(&samples, "nginx_ingress_controller_requests", &[]);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].labels["ingress"], "app");
    assert_eq!(recorded[0].labels["host"], "app.test");
    weir.shutdown().await;
}

#[tokio::test]
async fn ambiguous_hosts_get_400_and_never_reach_the_upstream() {
    let up = Upstream::start("app").await;
    let weir = serving(settings(), &one_route(up.addr)).await;
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: app.test\r\nHost: evil.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test\r\nHost: app.test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: user@app.test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: evil.example@app.test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test/x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test?x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test:80x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test:80:81\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
        b"GET http://app.test/ HTTP/1.1\r\nHost: \r\n\r\n",
        b"GET http://app.test/ HTTP/1.1\r\n\r\n",
        b"GET http://user@app.test/ HTTP/1.1\r\nHost: app.test\r\n\r\n",
    ];
    for case in cases {
        let answer = exchange(weir.data_addr, case, false).await;
        assert_eq!(
            status_of(&answer),
            "400",
            "{:?} → {:?}",
            String::from_utf8_lossy(case),
            String::from_utf8_lossy(&answer)
        );
    }
    assert_eq!(up.hits(), 0, "no ambiguous request reached the upstream");
    // The well-formed neighbours are served.
    for ok in [
        &b"GET / HTTP/1.1\r\nHost: App.Test:8080\r\nConnection: close\r\n\r\n"[..],
        b"GET http://app.test/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ] {
        let answer = exchange(weir.data_addr, ok, false).await;
        let status = status_of(&answer);
        assert!(
            status == "200" || status == "404",
            "{:?} → {:?}",
            String::from_utf8_lossy(ok),
            String::from_utf8_lossy(&answer)
        );
    }
    weir.shutdown().await;
}

#[tokio::test]
async fn over_http2_a_host_header_must_name_the_authority() {
    let up = Upstream::start("app").await;
    let weir = serving(settings(), &one_route(up.addr)).await;
    let mut h2 = h2c(weir.data_addr).await;
    let mut send = |host: Option<&str>| {
        let mut req = Request::get("http://app.test/").body(empty()).unwrap();
        if let Some(h) = host {
            req.headers_mut().insert("host", h.parse().unwrap());
        }
        let sent = h2.send_request(req);
        async move { read(within("h2 answer", sent).await.expect("response")).await.expect("body") }
    };
    let mismatch = send(Some("evil.example")).await;
    assert_eq!(mismatch.status, 400, "{}", mismatch.text());
    let same = send(Some("APP.test")).await;
    assert_eq!(same.status, 200, "{}", same.text());
    assert_eq!(same.echoed("host"), ["app.test"]);
    let none = send(None).await;
    assert_eq!(none.status, 200);
    assert_eq!(up.hits(), 2, "only the consistent requests reached the upstream");
    weir.shutdown().await;
}

/// An upstream that answers every request `101 Switching Protocols` to h2c and then writes
/// bytes a tunnel would carry.
async fn switching_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nTUNNELLED")
                    .await;
                let _ = s.read(&mut buf).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_h2c_upgrade_is_stripped_and_served_as_http11() {
    let up = Upstream::start("app").await;
    let weir = serving(settings(), &one_route(up.addr)).await;
    let mut client = H1::connect(weir.data_addr).await;
    let req = Request::get("/")
        .header("host", "app.test")
        .header("connection", "Upgrade, HTTP2-Settings")
        .header("upgrade", "h2c")
        .header("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA")
        .body(empty())
        .unwrap();
    let reply = client.send(req).await.expect("answer");
    assert_eq!(reply.status, 200);
    for name in ["upgrade", "connection", "http2-settings"] {
        assert_eq!(reply.echoed(name), Vec::<String>::new(), "{name} reached the upstream");
    }
    // Still HTTP/1.1 on the same connection.
    assert_eq!(client.get("app.test", "/", &[]).await.status, 200);
    weir.shutdown().await;

    // An upstream that switches anyway gets no tunnel: 502, its bytes never reach the client.
    let weir = serving(settings(), &one_route(switching_upstream().await)).await;
    let upgrade = b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";
    let with_body = b"POST / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nhi";
    for request in [&upgrade[..], &with_body[..]] {
        let answer = exchange(weir.data_addr, request, true).await;
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(status_of(&answer), "502", "{text}");
        assert!(!text.contains("TUNNELLED") && !text.contains("101"), "{text}");
    }
    weir.shutdown().await;
}

fn canary_table(stable: SocketAddr, canary: SocketAddr) -> String {
    format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules:
      - path: /
        backend: {{ namespace: shop, ingress: app, service: app-stable, port: 80, endpoints: ['{stable}'] }}
        canary:
          backend: {{ namespace: shop, ingress: app-canary, service: app-canary, port: 80, endpoints: ['{canary}'] }}
          weight: 0
          header: X-Canary
"
    )
}

#[tokio::test]
async fn a_broken_client_body_is_the_clients_400_or_499_never_the_canarys_502() {
    let (stable, canary) = (Upstream::plain("stable").await, Upstream::plain("canary").await);
    let weir = serving(metrics_settings(), &canary_table(stable.addr, canary.addr)).await;
    let head = "POST / HTTP/1.1\r\nHost: app.test\r\nX-Canary: always\r\nTransfer-Encoding: chunked\r\n\r\n";
    // A chunk size of 2^64, and one that is not hex: malformed framing, 400.
    for chunk in ["10000000000000000\r\nxx\r\n", "zz\r\nxx\r\n"] {
        let answer = exchange(weir.data_addr, format!("{head}{chunk}").as_bytes(), false).await;
        assert_eq!(status_of(&answer), "400", "{chunk:?}: {:?}", String::from_utf8_lossy(&answer));
    }
    // A client that stops mid-chunk and closes its side: nginx's 499, not a backend's fault.
    let answer = exchange(weir.data_addr, format!("{head}a\r\nabc").as_bytes(), true).await;
    let status = status_of(&answer);
    assert!(status == "499" || answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));

    let faults = |s: &[weir_proxy::testkit::exposition::Sample]| {
        sum(s, "nginx_ingress_controller_requests", &[("fault", "client")])
    };
    let samples = scrape_until(&weir, |s| faults(s) >= 3.0).await;
    let recorded = find(&samples, "nginx_ingress_controller_requests", &[]);
    assert_eq!(faults(&samples), 3.0, "{recorded:?}");
    for s in &recorded {
        assert_eq!(s.labels["fault"], "client", "{s:?}");
        assert!(s.labels["status"] == "400" || s.labels["status"] == "499", "{s:?}");
    }
    assert_eq!(sum(&samples, "nginx_ingress_controller_requests", &[("status", "502")]), 0.0);
    assert_eq!(sum(&samples, "nginx_ingress_controller_requests", &[("status", "400")]), 2.0);
    // A well-formed chunked body still goes through to the canary, recorded with no fault.
    let ok = exchange(weir.data_addr, format!("{head}2\r\nhi\r\n0\r\n\r\n").as_bytes(), true).await;
    assert_eq!(status_of(&ok), "200", "{:?}", String::from_utf8_lossy(&ok));
    let samples =
        scrape_until(&weir, |s| sum(s, "nginx_ingress_controller_requests", &[("fault", "")]) >= 1.0).await;
    let served = find(&samples, "nginx_ingress_controller_requests", &[("fault", "")]);
    assert_eq!(served.len(), 1, "{served:?}");
    assert_eq!(served[0].labels["status"], "200");
    assert_eq!(served[0].labels["canary"], "shop-app-canary-80");
    weir.shutdown().await;
}

#[tokio::test]
async fn an_invalid_connection_preface_closes_the_connection_without_an_answer() {
    let up = Upstream::plain("app").await;
    let weir = serving(settings(), &one_route(up.addr)).await;
    for bytes in [&b"INVALID CONNECTION PREFACE\r\n\r\n"[..], b"\x16\x03\x01\x00\x05hello\n"] {
        let answer = exchange(weir.data_addr, bytes, false).await;
        assert!(
            answer.is_empty(),
            "{:?} got {:?}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&answer)
        );
    }
    // A bad HTTP/1 request line still gets its 4xx/5xx answer.
    let bad_version = exchange(weir.data_addr, b"GET / HTTP/9.9\r\nHost: app.test\r\n\r\n", false).await;
    assert!(status_of(&bad_version).starts_with('4') || status_of(&bad_version).starts_with('5'));
    weir.shutdown().await;
}

#[tokio::test]
async fn the_tls_listener_serves_only_the_protocol_alpn_agreed_on() {
    let up = Upstream::plain("app").await;
    let c = cert(&["app.test"]);
    let yaml = format!(
        "schema: weir/v1
hosts:
  - host: app.test
    tls: {}
    sslRedirect: false
    rules: [{{ path: /, backend: {{ service: app, endpoints: ['{}'] }} }}]
",
        tls_yaml(&c),
        up.addr
    );
    let weir = serving(tls_settings(), &yaml).await;
    let tls_addr = weir.tls_addr.expect("tls listener");
    let request = b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    async fn over_tls(
        conn: &tokio_rustls::TlsConnector,
        addr: SocketAddr,
        bytes: &[u8],
    ) -> (Option<Vec<u8>>, Vec<u8>) {
        let mut s = tls_connect(conn, addr, "app.test").await.expect("handshake");
        let alpn = s.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        s.write_all(bytes).await.expect("write");
        let mut out = Vec::new();
        let read = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "weir neither answered nor closed");
        (alpn, out)
    }
    // h2 agreed: HTTP/1.1 bytes are not served.
    let (alpn, out) = over_tls(&tls_client(&[&c], &[b"h2"]), tls_addr, request).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert!(
        !String::from_utf8_lossy(&out).starts_with("HTTP/1.1"),
        "HTTP/1.1 served after h2: {:?}",
        String::from_utf8_lossy(&out)
    );
    // http/1.1 agreed (or nothing): the HTTP/2 preface is not served.
    for alpn in [&[&b"http/1.1"[..]][..], &[]] {
        let (agreed, out) = over_tls(&tls_client(&[&c], alpn), tls_addr, preface).await;
        assert_ne!(agreed.as_deref(), Some(&b"h2"[..]));
        assert!(out.is_empty(), "HTTP/2 served after {agreed:?}: {:?}", String::from_utf8_lossy(&out));
        let (_, served) = over_tls(&tls_client(&[&c], alpn), tls_addr, request).await;
        assert_eq!(status_of(&served), "200", "{:?}", String::from_utf8_lossy(&served));
    }
    // And h2 agreed with a real HTTP/2 client is served.
    let s = tls_connect(&tls_client(&[&c], &[b"h2"]), tls_addr, "app.test").await.expect("handshake");
    let mut h2 = weir_proxy::testkit::client::h2_over(s).await;
    let resp = within("h2 answer", h2.send_request(Request::get("https://app.test/").body(empty()).unwrap()))
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(up.hits(), 3);
    weir.shutdown().await;
}
