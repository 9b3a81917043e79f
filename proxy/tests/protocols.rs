//! Beyond plain HTTP/1.1: a WebSocket tunnelled through weir, and h2c (HTTP/2 by prior
//! knowledge) served on the same port and forwarded upstream as HTTP/1.1.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Version};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use weir_proxy::testkit::{body, empty, h2c, read, within, Weir};

#[tokio::test]
async fn a_websocket_echoes_text_and_binary_frames_through_weir() {
    let (up, weir) = Weir::with_one_upstream().await;
    let stream = within("connect", TcpStream::connect(weir.data)).await.expect("connect");
    let (mut ws, resp) =
        within("the WebSocket handshake", tokio_tungstenite::client_async("ws://app.test/chat", stream))
            .await
            .expect("handshake through weir");
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["x-upstream"], "app", "the upgrade reached the upstream");
    assert_eq!(up.hits(), 1);

    for i in 0..10 {
        let text = format!("hello {i}");
        ws.send(Message::text(text.clone())).await.expect("send text");
        let back = within("the echo", ws.next()).await.expect("a frame").expect("a frame");
        assert_eq!(back, Message::text(text));
    }
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).await.expect("send binary");
    let back = within("the binary echo", ws.next()).await.expect("a frame").expect("a frame");
    assert_eq!(back.into_data(), Bytes::from(big));

    ws.close(None).await.expect("close");
    drop(ws);
    weir.stop().await;
}

#[tokio::test]
async fn an_h2_client_s_cookie_fields_reach_an_http_1_1_upstream_as_one_line() {
    let (_up, weir) = Weir::with_one_upstream().await;
    let h2 = h2c(weir.data).await;
    // Without a body (weir's own exchange) and with one (hyper's client).
    for (method, body) in [("GET", empty()), ("POST", self::body(&b"x"[..]))] {
        let req = Request::builder()
            .method(method)
            .uri("http://app.test/")
            .header("cookie", "a=1")
            .header("cookie", "b=2; c=3")
            .body(body)
            .expect("request");
        let r = read(within("the h2c response", h2.clone().send_request(req)).await.expect("h2c request"))
            .await
            .expect("body");
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(r.echoed("cookie"), ["a=1; b=2; c=3"], "{method}");
    }
    drop(h2);
    weir.stop().await;
}

#[tokio::test]
async fn an_h2c_request_is_served_and_forwarded_as_http_1_1() {
    let (up, weir) = Weir::with_one_upstream().await;
    let mut h2 = h2c(weir.data).await;
    let req = Request::get("http://app.test/h2?x=1").body(empty()).expect("request");
    let r = read(within("the h2c response", h2.send_request(req)).await.expect("h2c request"))
        .await
        .expect("body");
    assert_eq!(r.status, 200);
    assert_eq!(r.version, Version::HTTP_2);
    assert_eq!(r.upstream(), "app");
    let echo = r.json();
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["uri"], "/h2?x=1");
    assert_eq!(r.echoed("host"), ["app.test"]);
    assert_eq!(r.echoed("x-forwarded-host"), ["app.test"]);

    // Many concurrent streams on the one connection, with bodies.
    let mut streams = tokio::task::JoinSet::new();
    for i in 0..50u64 {
        let mut h2 = h2.clone();
        streams.spawn(async move {
            let req = Request::post("http://app.test/?count=1")
                .body(body(vec![7u8; (i * 1000) as usize]))
                .expect("request");
            let r = read(h2.send_request(req).await.expect("stream")).await.expect("body");
            (
                i,
                r.status.as_u16(),
                r.headers["x-received-bytes"].to_str().map(str::to_owned).unwrap_or_default(),
            )
        });
    }
    while let Some(done) = within("the concurrent streams", streams.join_next()).await {
        let (i, status, count) = done.expect("stream task");
        assert_eq!((status, count), (200, (i * 1000).to_string()), "stream {i}");
    }
    assert!(up.hits() >= 51);
    drop(h2);
    weir.stop().await;
}

#[tokio::test]
async fn expect_100_continue_gets_100_and_then_the_body_is_forwarded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_up, weir) = Weir::with_one_upstream().await;
    let mut stream = within("connect", TcpStream::connect(weir.data)).await.expect("connect");
    let head =
        "POST /?count=1 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("write head");
    // A client like curl waits for 100 Continue before it sends the body.
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = within("100 Continue", stream.read(&mut buf)).await.expect("read");
        assert!(n > 0, "closed before 100 Continue: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let interim = String::from_utf8_lossy(&got).into_owned();
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    stream.write_all(b"hello world").await.expect("write body");
    let mut rest = Vec::new();
    loop {
        let n = within("the final response", stream.read(&mut buf)).await.expect("read");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&rest));
        rest.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&rest);
        if text.contains("\r\n\r\n") && text.ends_with("11") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&rest).to_lowercase();
    assert!(text.contains("200 ok") && text.contains("x-received-bytes: 11"), "{text}");
    weir.stop().await;
}

#[tokio::test]
async fn head_and_bodiless_statuses_end_cleanly_and_the_connection_is_reused() {
    let (up, weir) = Weir::with_one_upstream().await;
    let mut conn = weir_proxy::testkit::H1::connect(weir.data).await;
    for round in 0..3 {
        let head = Request::head("/?bytes=5000").header("host", "app.test").body(empty()).expect("request");
        let r = conn.send(head).await.expect("HEAD");
        assert_eq!((r.status.as_u16(), r.body.len()), (200, 0), "round {round}");
        for status in [204, 304] {
            let r = conn.get("app.test", &format!("/?status={status}"), &[]).await;
            assert_eq!((r.status.as_u16(), r.body.len()), (status, 0), "round {round}");
        }
        let r = conn.get("app.test", "/?empty=1", &[]).await;
        assert_eq!((r.status.as_u16(), r.body.len()), (200, 0), "round {round}");
        assert_eq!(r.headers["content-length"], "0");
        let r = conn.get("app.test", "/?bytes=5000", &[]).await;
        assert_eq!((r.status.as_u16(), r.body.len()), (200, 5000), "round {round}");
    }
    assert_eq!(up.hits(), 15);
    assert_eq!(up.connections(), 1, "weir reused its upstream connection for all 15 requests");
    drop(conn);
    weir.stop().await;
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let (up, weir) = Weir::with_one_upstream().await;
    let mut conn = weir_proxy::testkit::H1::connect(weir.data).await;
    for i in 0..50 {
        let path = if i % 2 == 0 { "/" } else { "/?bytes=100000" };
        assert_eq!(conn.get("app.test", path, &[]).await.status, 200);
    }
    assert_eq!(up.hits(), 50);
    assert_eq!(up.connections(), 1, "weir opened a new upstream connection instead of reusing its idle one");
    drop(conn);
    weir.stop().await;
}
