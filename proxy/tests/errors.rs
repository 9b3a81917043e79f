//! Who failed decides the status: no route 404, no endpoint 503, connect failure 502, slow
//! upstream 504; a refused endpoint is retried on the next one; malformed requests get 400
//! (never a panic or a hung connection).

use weir_proxy::testkit::{raw, refused_addr, Upstream, Weir, H1};

async fn setup() -> (Upstream, Weir) {
    let live = Upstream::start("live").await;
    let (dead1, dead2) = (refused_addr(), refused_addr());
    let yaml = format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules:
      - {{ path: /, backend: {{ endpoints: [\"{live}\"] }} }}
      - path: /slow
        responseTimeout: 300ms
        backend: {{ endpoints: [\"{live}\"] }}
      - {{ path: /empty, backend: {{ endpoints: [] }}, canary: {{ backend: {{ endpoints: [] }}, weight: 50 }} }}
      - {{ path: /dead, backend: {{ endpoints: [\"{dead1}\", \"{dead2}\"] }} }}
      - {{ path: /half-dead, backend: {{ endpoints: [\"{dead1}\", \"{live}\"] }} }}
",
        live = live.addr
    );
    let weir = Weir::with(&yaml).await;
    (live, weir)
}

#[tokio::test]
async fn statuses_name_who_failed() {
    let (_live, weir) = setup().await;
    let mut conn = H1::connect(weir.data).await;
    let cases: &[(&str, &str, u16)] = &[
        ("app.test", "/", 200),
        ("nobody.test", "/", 404),
        ("app.test", "/empty", 503),
        ("app.test", "/dead", 502),
        ("app.test", "/slow?delay=3000", 504),
        ("app.test", "/slow?delay=0", 200),
        // an upstream's own error status is relayed as is
        ("app.test", "/?status=503", 503),
    ];
    for (host, path, want) in cases {
        let r = conn.get(host, path, &[]).await;
        assert_eq!(r.status.as_u16(), *want, "{host}{path}: {}", r.text());
        if *want != 200 && !path.contains("status=") {
            assert_eq!(r.upstream(), "-", "weir itself answers {want}");
        }
    }
    drop(conn);
    weir.stop().await;
}

#[tokio::test]
async fn a_refused_endpoint_is_skipped_and_every_request_succeeds() {
    let (live, weir) = setup().await;
    let mut conn = H1::connect(weir.data).await;
    for i in 0..100 {
        let r = conn.get("app.test", "/half-dead", &[]).await;
        assert_eq!((r.status.as_u16(), r.upstream()), (200, "live"), "request {i}");
    }
    assert!(live.hits() >= 100);
    drop(conn);
    weir.stop().await;
}

#[tokio::test]
async fn a_request_body_survives_a_refused_endpoint_and_reaches_the_live_one() {
    let (_live, weir) = setup().await;
    let mut conn = H1::connect(weir.data).await;
    for i in 0..50usize {
        let data = vec![b'x'; 1000 + i];
        let req = http::Request::post("/half-dead?count=1")
            .header("host", "app.test")
            .body(weir_proxy::testkit::body(data))
            .expect("request");
        let r = conn.send(req).await.expect("request");
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.headers["x-received-bytes"], (1000 + i).to_string().as_str(), "request {i}");
    }
    drop(conn);
    weir.stop().await;
}

/// The status line weir answers a raw request with.
async fn status_of(weir: &Weir, request: &[u8]) -> String {
    let head = raw(weir.data, request).await;
    head.lines().next().unwrap_or("<closed without an answer>").to_owned()
}

#[tokio::test]
async fn malformed_requests_get_400_without_hanging() {
    let (_live, weir) = setup().await;
    // Bytes that are no request line at all (no `HTTP/` version: neither HTTP/1 nor the
    // HTTP/2 preface) are closed without an answer, as an invalid preface must be on the h2c
    // port (RFC 9113 §3.4, h2spec 3.5/2): weir cannot tell the two apart. Never a hang.
    for (what, req) in [
        ("garbage request line", &b"THIS IS NOT HTTP\r\n\r\n"[..]),
        ("binary garbage", b"\x00\x01\x02\x03\xff\xfe\r\n\r\n"),
    ] {
        assert_eq!(status_of(&weir, req).await, "<closed without an answer>", "{what}");
    }
    let cases: &[(&str, &[u8])] = &[
        ("request line with a bad version", b"GET / HTTP/x.y\r\nHost: app.test\r\n\r\n"),
        ("bad header line", b"GET / HTTP/1.1\r\nHost: app.test\r\nno colon here\r\n\r\n"),
        ("bad percent-escape", b"GET /%zz HTTP/1.1\r\nHost: app.test\r\n\r\n"),
        ("truncated percent-escape", b"GET /a% HTTP/1.1\r\nHost: app.test\r\n\r\n"),
        ("escaped NUL", b"GET /a%00b HTTP/1.1\r\nHost: app.test\r\n\r\n"),
        ("dot-dot above the root", b"GET /../etc/passwd HTTP/1.1\r\nHost: app.test\r\n\r\n"),
        ("escaped dot-dot above the root", b"GET /a/%2e%2e/%2e%2e/x HTTP/1.1\r\nHost: app.test\r\n\r\n"),
        ("no Host on HTTP/1.1", b"GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n"),
        (
            "two Content-Lengths",
            b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, req) in cases {
        let line = status_of(&weir, req).await;
        if !line.starts_with("HTTP/1.1 400") {
            wrong.push(format!("{what}: {line:?}"));
        }
    }
    assert!(wrong.is_empty(), "not answered 400:\n{}", wrong.join("\n"));
    // weir is still serving
    let r = weir.get("app.test", "/").await;
    assert_eq!(r.status, 200);
    weir.stop().await;
}

#[tokio::test]
async fn http_1_0_without_host_goes_to_the_default_server_or_404() {
    let (_live, weir) = setup().await;
    // no default server in this table: 404, answered (not a hang)
    let line = status_of(&weir, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(line.starts_with("HTTP/1.0 404") || line.starts_with("HTTP/1.1 404"), "{line}");
    weir.stop().await;
}
