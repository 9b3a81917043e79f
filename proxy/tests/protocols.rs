//! Beyond plain HTTP/1.1: a WebSocket tunnelled through weir, and h2c (HTTP/2 by prior
//! knowledge) served on the same port and forwarded upstream as HTTP/1.1.

mod common;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Version};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use common::{body, empty, h2c, read, within, Upstream, Weir};

async fn setup() -> (Upstream, Weir) {
    let up = Upstream::start("app").await;
    let weir = Weir::with(&format!(
        "schema: weir/v1\nhosts:\n  - host: app.test\n    rules:\n      - {{ path: /, backend: {{ endpoints: [\"{}\"] }} }}\n",
        up.addr
    ))
    .await;
    (up, weir)
}

#[tokio::test]
async fn a_websocket_echoes_text_and_binary_frames_through_weir() {
    let (up, weir) = setup().await;
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
async fn an_h2c_request_is_served_and_forwarded_as_http_1_1() {
    let (up, weir) = setup().await;
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
