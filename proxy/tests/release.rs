//! Idle HTTP/1.1 connections give hyper's buffers back (`h1.rs`): released once quiet for a
//! second, counted by `weir_client_connections_released`, and served again as if nothing
//! had happened: the next request, a next request that was half sent before the release, an
//! upgrade, TLS, the header-read clock, and a drain.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use weir_proxy::testkit::client::{h1_over, send_get};
use weir_proxy::testkit::exposition::{scrape_until, sum, Sample};
use weir_proxy::testkit::tls::{cert, tls_client, tls_connect, tls_yaml};
use weir_proxy::testkit::weir::{metrics_settings, serving, tls_settings};
use weir_proxy::testkit::{one_upstream_table, within, Upstream, H1};
use weir_proxy::{Running, Settings};

const RELEASED: &str = "weir_client_connections_released";

fn state(samples: &[Sample], state: &str) -> f64 {
    sum(samples, "nginx_ingress_controller_nginx_process_connections", &[("state", state)])
}

/// Scrape until `n` connections are released; fails the test if that does not happen.
async fn released(weir: &Running, n: f64) -> Vec<Sample> {
    let samples = scrape_until(weir, |s| sum(s, RELEASED, &[]) == n).await;
    assert_eq!(sum(&samples, RELEASED, &[]), n, "released connections");
    samples
}

/// Read one HTTP/1.1 response with a Content-Length body from `stream`: (head, body).
async fn response(stream: &mut TcpStream) -> (String, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .expect("a content-length");
            if got.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&got[end + 4..end + 4 + length]).into_owned();
                return (head, body);
            }
        }
        let n = within("a response", stream.read(&mut buf)).await.expect("read");
        assert!(n > 0, "closed before the response ended: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn an_idle_connection_is_released_and_its_next_requests_are_served() {
    let up = Upstream::plain("app").await;
    let weir = serving(metrics_settings(), &one_upstream_table(up.addr)).await;
    let mut client = H1::connect(weir.data_addr).await;
    for round in 0..3 {
        let r = client.get("app.test", "/", &[]).await;
        assert_eq!((r.status.as_u16(), r.upstream()), (200, "app"), "round {round}");
        let samples = released(&weir, 1.0).await;
        // Released is a kind of waiting: the connection is open, idle, and counted so (the
        // scrape's own connection is on the metrics listener, not counted).
        assert_eq!((state(&samples, "active"), state(&samples, "waiting")), (1.0, 1.0), "round {round}");
    }
    assert_eq!(up.hits(), 3);
    weir.shutdown().await;
}

#[tokio::test]
async fn a_next_request_half_sent_before_the_release_is_finished_after_it() {
    let up = Upstream::plain("app").await;
    let weir = serving(metrics_settings(), &one_upstream_table(up.addr)).await;
    let mut stream = TcpStream::connect(weir.data_addr).await.expect("connect");
    // One write: a whole request and the first half of the next (hyper reads both at once).
    stream
        .write_all(b"GET /one HTTP/1.1\r\nhost: app.test\r\n\r\nGET /two HTTP/1.1\r\nho")
        .await
        .expect("write");
    let (head, body) = response(&mut stream).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, "app 0\n");
    released(&weir, 1.0).await;
    stream.write_all(b"st: app.test\r\n\r\n").await.expect("write the rest");
    let (head, body) = response(&mut stream).await;
    assert!(head.starts_with("http/1.1 200") && head.contains("x-upstream: app"), "{head}");
    assert_eq!(body, "app 0\n");
    assert_eq!(up.hits(), 2);
    weir.shutdown().await;
}

#[tokio::test]
async fn a_released_connection_can_still_upgrade_to_a_websocket() {
    let up = Upstream::start("app").await;
    let weir = serving(metrics_settings(), &one_upstream_table(up.addr)).await;
    let mut stream = TcpStream::connect(weir.data_addr).await.expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\nhost: app.test\r\n\r\n").await.expect("write");
    let (head, _) = response(&mut stream).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    released(&weir, 1.0).await;
    let (mut ws, resp) =
        within("the WebSocket handshake", tokio_tungstenite::client_async("ws://app.test/chat", stream))
            .await
            .expect("handshake through weir");
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("after a release")).await.expect("send");
    let back = within("the echo", ws.next()).await.expect("a frame").expect("a frame");
    assert_eq!(back, Message::text("after a release"));
    // The tunnel is not an idle HTTP connection: it is never released.
    released(&weir, 0.0).await;
    ws.close(None).await.expect("close");
    weir.shutdown().await;
}

#[tokio::test]
async fn a_released_tls_connection_is_served_again() {
    let up = Upstream::plain("app").await;
    let c = cert(&["app.test"]);
    let table = format!(
        "schema: weir/v1\nhosts:\n  - host: app.test\n    tls: {}\n    rules: [{{ path: /, backend: {{ endpoints: ['{}'] }} }}]\n",
        tls_yaml(&c),
        up.addr
    );
    let settings = Settings { tls_listen: tls_settings().tls_listen, ..metrics_settings() };
    let weir = serving(settings, &table).await;
    let client = tls_client(&[&c], &[b"http/1.1"]);
    let s = tls_connect(&client, weir.tls_addr.expect("tls listener"), "app.test").await.expect("handshake");
    let mut sender = h1_over(s).await;
    for round in 0..2 {
        assert_eq!(send_get(&mut sender, "app.test", "/").await, (200, "app 0\n".into()), "round {round}");
        released(&weir, 1.0).await;
    }
    weir.shutdown().await;
}

#[tokio::test]
async fn the_header_read_clock_runs_for_a_head_started_after_a_release() {
    let up = Upstream::plain("app").await;
    let mut settings = metrics_settings();
    settings.conn.header_read_timeout = Duration::from_secs(2);
    let weir = serving(settings, &one_upstream_table(up.addr)).await;
    let mut stream = TcpStream::connect(weir.data_addr).await.expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\nhost: app.test\r\n\r\n").await.expect("write");
    response(&mut stream).await;
    released(&weir, 1.0).await;
    // Half a head, then nothing: the 2 s header clock, not the 75 s keep-alive one, closes it.
    stream.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
    let mut buf = [0u8; 64];
    let n = within("the header-read timeout to close the connection", stream.read(&mut buf)).await;
    assert!(matches!(n, Ok(0) | Err(_)), "expected the connection closed, read {n:?}");
    weir.shutdown().await;
}

#[tokio::test]
async fn a_drain_closes_released_connections_at_once() {
    let up = Upstream::plain("app").await;
    let weir = serving(metrics_settings(), &one_upstream_table(up.addr)).await;
    let mut stream = TcpStream::connect(weir.data_addr).await.expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\nhost: app.test\r\n\r\n").await.expect("write");
    response(&mut stream).await;
    released(&weir, 1.0).await;
    // The drain timeout is 5 s: returning well before means the connection was not waited for.
    let started = std::time::Instant::now();
    weir.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(4), "shutdown waited {:?}", started.elapsed());
    let mut buf = [0u8; 64];
    let n = within("the drain to close the connection", stream.read(&mut buf)).await;
    assert!(matches!(n, Ok(0) | Err(_)), "expected the connection closed, read {n:?}");
}
