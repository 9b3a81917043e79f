//! Header rewriting, checked on both sides: what the upstream received (its JSON echo) and
//! what the client received.

use weir_proxy::testkit::{empty, get, request, Weir, H1};

#[tokio::test]
async fn host_is_kept_and_forwarding_headers_are_set() {
    let (_up, weir) = Weir::with_one_upstream().await;
    let mut conn = H1::connect(weir.data).await;
    let r = conn.get("app.test:8443", "/", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.echoed("host"), ["app.test:8443"]);
    assert_eq!(r.echoed("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(r.echoed("x-real-ip"), ["127.0.0.1"]);
    assert_eq!(r.echoed("x-forwarded-proto"), ["http"]);
    assert_eq!(r.echoed("x-forwarded-host"), ["app.test"]);
    assert_eq!(r.echoed("x-forwarded-port"), [weir.data.port().to_string()]);
    assert_eq!(r.json()["version"], "HTTP/1.1");
    drop(conn);
    weir.stop().await;
}

#[tokio::test]
async fn x_forwarded_for_is_appended_to_the_incoming_one() {
    let (_up, weir) = Weir::with_one_upstream().await;
    let mut conn = H1::connect(weir.data).await;
    let r = conn.get("app.test", "/", &[("X-Forwarded-For", "203.0.113.9, 198.51.100.2")]).await;
    assert_eq!(r.echoed("x-forwarded-for"), ["203.0.113.9, 198.51.100.2, 127.0.0.1"]);
    // X-Real-IP is the peer, not the claimed client
    assert_eq!(r.echoed("x-real-ip"), ["127.0.0.1"]);
    // Several lines are one list (RFC 9110 §5.3): all of it is kept, in order.
    let two = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-For", "198.51.100.2")];
    let r = conn.get("app.test", "/", &two).await;
    assert_eq!(r.echoed("x-forwarded-for"), ["203.0.113.9, 198.51.100.2, 127.0.0.1"]);
    drop(conn);
    weir.stop().await;
}

#[tokio::test]
async fn userinfo_in_an_absolute_form_request_gets_400_and_a_port_stays_in_host_only() {
    let (up, weir) = Weir::with_one_upstream().await;
    let mut conn = H1::connect(weir.data).await;
    // RFC 9110 §4.2.4: userinfo in a target is treated as an error (it hides the authority).
    let req = http::Request::get("http://user:pw@app.test:8443/p")
        .header("host", "app.test:8443")
        .body(empty())
        .expect("request");
    let r = conn.send(req).await.expect("response");
    assert_eq!(r.status, 400);
    assert_eq!(up.hits(), 0);
    let mut conn = H1::connect(weir.data).await;
    let req = http::Request::get("http://app.test:8443/p")
        .header("host", "app.test:8443")
        .body(empty())
        .expect("request");
    let r = conn.send(req).await.expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.echoed("host"), ["app.test:8443"]);
    assert_eq!(r.echoed("x-forwarded-host"), ["app.test"]);
    drop(conn);
    weir.stop().await;
}

#[tokio::test]
async fn x_request_id_is_passed_through_when_sent_and_generated_when_not() {
    let (_up, weir) = Weir::with_one_upstream().await;
    let mut conn = H1::connect(weir.data).await;
    let r = conn.get("app.test", "/", &[("X-Request-ID", "req-abc-123")]).await;
    assert_eq!(r.echoed("x-request-id"), ["req-abc-123"]);

    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let ids = conn.get("app.test", "/", &[]).await.echoed("x-request-id");
        assert_eq!(ids.len(), 1, "{ids:?}");
        let id = &ids[0];
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "not 32 hex digits: {id}");
        assert!(seen.insert(id.clone()), "request id {id} repeated");
    }
    drop(conn);
    weir.stop().await;
}

const REQUEST_HOP_BY_HOP: &[&str] =
    &["connection", "x-secret", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"];

#[tokio::test]
async fn hop_by_hop_request_headers_do_not_reach_the_upstream() {
    let (up, weir) = Weir::with_one_upstream().await;
    let hop: &[(&str, &str)] = &[
        ("Connection", "keep-alive, X-Secret"),
        ("X-Secret", "token"),
        ("Keep-Alive", "timeout=300"),
        ("Proxy-Connection", "keep-alive"),
        ("TE", "trailers"),
        ("Trailer", "x-checksum"),
        ("X-End-To-End", "kept"),
    ];
    // Sent straight to the upstream, they all arrive: the echo sees them.
    let direct = get(up.addr, "app.test", "/", hop).await;
    assert_eq!(direct.echoed("x-secret"), ["token"]);
    assert_eq!(direct.echoed("te"), ["trailers"]);
    let mut conn = H1::connect(weir.data).await;
    let r = conn.send(request("app.test", "/", hop)).await.expect("request");
    assert_eq!(r.status, 200);
    let echo = r.json();
    for name in REQUEST_HOP_BY_HOP {
        assert!(echo["headers"].get(*name).is_none(), "upstream received {name}: {}", echo["headers"]);
    }
    assert_eq!(r.echoed("x-end-to-end"), ["kept"]);
    drop(conn);
    weir.stop().await;
}

#[tokio::test]
async fn an_upgrade_header_without_connection_upgrade_is_dropped_and_the_request_served() {
    let (_up, weir) = Weir::with_one_upstream().await;
    let mut conn = H1::connect(weir.data).await;
    let r = conn.get("app.test", "/", &[("Upgrade", "websocket")]).await;
    assert_eq!(r.status, 200);
    assert!(r.echoed("upgrade").is_empty(), "upstream received Upgrade: {:?}", r.echoed("upgrade"));
    // the connection keeps working afterwards
    assert_eq!(conn.get("app.test", "/", &[]).await.status, 200);
    drop(conn);
    weir.stop().await;
}

#[tokio::test]
async fn hop_by_hop_response_headers_do_not_reach_the_client() {
    let (up, weir) = Weir::with_one_upstream().await;
    // Straight from the upstream, the client would see them.
    let direct = get(up.addr, "app.test", "/?hop=1", &[]).await;
    assert_eq!(direct.headers["x-hop-secret"], "1");
    assert_eq!(direct.headers["keep-alive"], "timeout=5");
    let mut conn = H1::connect(weir.data).await;
    let r = conn.get("app.test", "/?hop=1", &[]).await;
    assert_eq!(r.status, 200);
    for name in ["connection", "x-hop-secret", "keep-alive", "proxy-connection", "trailer", "upgrade"] {
        assert!(r.headers.get(name).is_none(), "client received {name}: {:?}", r.headers);
    }
    assert_eq!(r.headers["x-end-to-end"], "kept");
    assert_eq!(r.upstream(), "app");
    drop(conn);
    weir.stop().await;
}
