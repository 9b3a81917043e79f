//! Protocol hardening: slowloris, header and body limits, request smuggling, CONNECT and
//! absolute-form requests, and gRPC over an HTTP/2 cleartext upstream.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weir_proxy::server::ConnSettings;
use weir_proxy::testkit::client::{h1_over, h2_over, send_get};
use weir_proxy::testkit::weir::{serving, tls_settings};
use weir_proxy::testkit::{Upstream, WAIT};

fn one_route(up: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules:
      - {{ path: /, backend: {{ service: app, endpoints: ['{up}'] }}{extra} }}
"
    )
}

/// Write raw bytes, read until the peer closes (or WAIT), return what came back.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ =
        tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await.expect("weir answers and closes in time");
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_cut_at_the_header_timeout_while_a_normal_client_is_served() {
    let up = Upstream::plain("app").await;
    let timeout = Duration::from_millis(800);
    let settings = weir_proxy::Settings {
        conn: ConnSettings { header_read_timeout: timeout, ..ConnSettings::default() },
        ..tls_settings()
    };
    let weir = serving(settings, &one_route(up.addr, "")).await;
    let addr = weir.data_addr;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..300 {
        slow.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let head = b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: ";
            // One byte every 100 ms: never finishes the head. Bounded: at most 100 bytes.
            for i in 0..100usize {
                if s.write_all(&head[i % head.len()..][..1]).await.is_err() {
                    return true;
                }
                let mut buf = [0u8; 256];
                match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true, // closed by weir
                    Ok(Ok(_)) => {}                        // a 408 may come first; keep reading
                    Err(_) => {}
                }
            }
            false
        }));
    }
    // Meanwhile a normal client is served, several times.
    let mut normal = h1_over(TcpStream::connect(addr).await.expect("connect")).await;
    for _ in 0..5 {
        assert_eq!(send_get(&mut normal, "app.test", "/").await.0, 200);
    }
    for task in slow {
        assert!(task.await.expect("join"), "a slow client was not cut");
    }
    let elapsed = started.elapsed();
    assert!(elapsed < timeout * 6, "slow clients were cut only after {elapsed:?}");
    weir.shutdown().await;
}

#[tokio::test]
async fn oversized_request_headers_get_431() {
    let up = Upstream::plain("app").await;
    let weir = serving(tls_settings(), &one_route(up.addr, "")).await;
    let big = "x".repeat(40 * 1024);
    let resp =
        raw(weir.data_addr, format!("GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: {big}\r\n\r\n").as_bytes())
            .await;
    assert_eq!(status_of(&resp), "431", "{}", &resp[..resp.len().min(200)]);
    assert_eq!(up.hits(), 0);
    weir.shutdown().await;
}

#[tokio::test]
async fn bodies_over_the_rule_limit_get_413_declared_or_streamed() {
    let up = Upstream::plain("app").await;
    let weir = serving(tls_settings(), &one_route(up.addr, ", maxBodySize: 1k")).await;
    let body = "y".repeat(2048);
    let declared = format!("POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2048\r\n\r\n{body}");
    assert_eq!(status_of(&raw(weir.data_addr, declared.as_bytes()).await), "413");
    assert_eq!(up.hits(), 0, "a declared oversize body never reaches the upstream");

    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n{body}\r\n0\r\n\r\n"
    );
    assert_eq!(status_of(&raw(weir.data_addr, chunked.as_bytes()).await), "413");

    let small = "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let resp = raw(weir.data_addr, small.as_bytes()).await;
    assert_eq!(status_of(&resp), "200");
    assert!(resp.ends_with("app 5\n"), "{resp}");
    weir.shutdown().await;
}

#[tokio::test]
async fn smuggling_attempts_get_400_and_never_reach_the_upstream() {
    let up = Upstream::plain("app").await;
    let weir = serving(tls_settings(), &one_route(up.addr, "")).await;
    let attempts: &[&str] = &[
        // two different lengths
        "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello",
        // a list as a length
        "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5, 5\r\n\r\nhello",
        // a transfer coding that is not chunked
        "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        // obfuscated chunked
        "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    ];
    for attempt in attempts {
        let resp = raw(weir.data_addr, attempt.as_bytes()).await;
        assert_eq!(status_of(&resp), "400", "{attempt:?} → {resp:?}");
    }
    assert_eq!(up.hits(), 0, "the upstream saw a smuggling attempt");
    weir.shutdown().await;
}

/// Transfer-Encoding with Content-Length, in either order (CL.TE and TE.CL smuggling):
/// 400, the connection closed, and the upstream sees neither the request nor the one
/// hidden behind its body. (hyper drops the Content-Length before weir sees the request;
/// weir finds it in the connection's copy of the raw head.)
#[tokio::test]
async fn transfer_encoding_with_content_length_gets_400_in_either_order() {
    let up = Upstream::plain("app").await;
    let weir = serving(tls_settings(), &one_route(up.addr, "")).await;
    for order in [
        "Content-Length: 6\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 6",
        "transfer-encoding: chunked\r\nX-Other: 1\r\ncontent-LENGTH: 6",
    ] {
        let attack = format!(
            "POST / HTTP/1.1\r\nHost: app.test\r\n{order}\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"
        );
        let resp = raw(weir.data_addr, attack.as_bytes()).await;
        assert_eq!(status_of(&resp), "400", "{order:?} → {resp:?}");
        assert_eq!(resp.matches("HTTP/1.1 ").count(), 1, "exactly one response, then close: {resp:?}");
    }
    assert_eq!(up.hits(), 0, "the upstream saw a smuggling attempt");
    // A plain chunked request on a connection that earlier sent a Content-Length is fine.
    let mut s = TcpStream::connect(weir.data_addr).await.expect("connect");
    s.write_all(b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2\r\n\r\nhi").await.expect("write");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf)).await.expect("in time").expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    s.write_all(b"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await.expect("in time").expect("read");
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 200") && rest.ends_with("app 2\n"), "{rest}");
    weir.shutdown().await;
}

#[tokio::test]
async fn connect_and_absolute_form_requests_for_unnamed_hosts_are_refused() {
    let up = Upstream::plain("app").await;
    let yaml = format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules: [{{ path: /, backend: {{ endpoints: ['{0}'] }} }}]
  - rules: [{{ path: /, backend: {{ endpoints: ['{0}'] }} }}]
",
        up.addr
    );
    let weir = serving(tls_settings(), &yaml).await;
    let connect =
        raw(weir.data_addr, b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n").await;
    assert_eq!(status_of(&connect), "405", "{connect}");
    let absolute =
        raw(weir.data_addr, b"GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n").await;
    assert_eq!(status_of(&absolute), "400", "{absolute}");
    assert_eq!(up.hits(), 0);
    // absolute-form naming a served host is fine (RFC 9112 says servers must accept it)
    let named =
        raw(weir.data_addr, b"GET http://app.test/ HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
            .await;
    assert_eq!(status_of(&named), "200", "{named}");
    weir.shutdown().await;
}

/// A gRPC-like HTTP/2 cleartext upstream: echoes each request data frame as it arrives,
/// then ends with trailers.
async fn grpc_echo_upstream() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = service_fn(|req: Request<Incoming>| async move {
                let te = req.headers().get("te").cloned();
                let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
                tokio::spawn(async move {
                    let mut body = req.into_body();
                    let mut frames = 0;
                    while let Some(Ok(frame)) = body.frame().await {
                        // An empty DATA frame may carry END_STREAM; count messages only.
                        if let Ok(data) = frame.into_data().map_err(drop).and_then(|d| {
                            if d.is_empty() {
                                Err(())
                            } else {
                                Ok(d)
                            }
                        }) {
                            frames += 1;
                            if tx.send(Ok(Frame::data(data))).await.is_err() {
                                return;
                            }
                        }
                    }
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    trailers.insert("x-frames", http::HeaderValue::from(frames));
                    let _ = tx.send(Ok(Frame::trailers(trailers))).await;
                });
                let stream = tokio_stream_from(rx);
                let mut resp = Response::new(StreamBody::new(stream));
                resp.headers_mut().insert("content-type", http::HeaderValue::from_static("application/grpc"));
                if let Some(te) = te {
                    resp.headers_mut().insert("x-seen-te", te);
                }
                Ok::<_, Infallible>(resp)
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// An mpsc receiver as a `Stream`, without tokio-stream.
fn tokio_stream_from<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_streaming_call_with_trailers_passes_through_an_h2c_upstream() {
    let up = grpc_echo_upstream().await;
    let weir = serving(tls_settings(), &one_route(up, ", protocol: GRPC")).await;
    let mut sender =
        h2_over::<_, StreamBody<_>>(TcpStream::connect(weir.data_addr).await.expect("connect")).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
    let req = Request::post("http://app.test/echo.Echo/Stream")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(StreamBody::new(tokio_stream_from(rx)))
        .expect("request");
    let resp = tokio::time::timeout(WAIT, async {
        tx.send(Ok(Frame::data(Bytes::from_static(b"ping-1")))).await.expect("send 1");
        sender.send_request(req).await.expect("response head")
    })
    .await
    .expect("in time");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-seen-te"], "trailers", "gRPC upstreams get te: trailers");
    let mut body = resp.into_body();
    // Streaming both ways: each echo arrives before the next message is sent.
    for i in 1..=3 {
        let frame = tokio::time::timeout(WAIT, body.frame())
            .await
            .expect("echo in time")
            .expect("frame")
            .expect("ok");
        assert_eq!(frame.into_data().expect("data"), format!("ping-{i}"));
        if i < 3 {
            tx.send(Ok(Frame::data(Bytes::from(format!("ping-{}", i + 1))))).await.expect("send next");
        }
    }
    drop(tx); // end of the client stream
    let trailers = loop {
        let frame =
            tokio::time::timeout(WAIT, body.frame()).await.expect("in time").expect("frame").expect("ok");
        if let Ok(t) = frame.into_trailers() {
            break t;
        }
    };
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-frames"], "3");
    weir.shutdown().await;
}

#[tokio::test]
async fn a_grpc_request_that_fails_in_weir_gets_a_grpc_status() {
    // An endpoint that refuses connections: bind, note the port, close.
    let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let weir = serving(tls_settings(), &one_route(dead, ", protocol: GRPC")).await;
    let mut sender =
        h2_over::<_, Full<Bytes>>(TcpStream::connect(weir.data_addr).await.expect("connect")).await;
    let req = Request::post("http://app.test/echo.Echo/Unary")
        .header("content-type", "application/grpc")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
        .expect("request");
    let resp =
        tokio::time::timeout(WAIT, sender.send_request(req)).await.expect("in time").expect("response");
    assert_eq!(resp.status(), 200, "gRPC errors travel in grpc-status");
    assert_eq!(resp.headers()["content-type"], "application/grpc");
    assert_eq!(resp.headers()["grpc-status"], "14", "UNAVAILABLE for a 502");
    weir.shutdown().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_close_after_the_keepalive_timeout_but_not_before() {
    let up = Upstream::plain("app").await;
    let keepalive = Duration::from_millis(400);
    let settings = weir_proxy::Settings {
        conn: ConnSettings {
            keepalive_timeout: keepalive,
            header_read_timeout: Duration::from_secs(5),
            ..ConnSettings::default()
        },
        ..tls_settings()
    };
    let weir = serving(settings, &one_route(up.addr, "")).await;
    let mut s = TcpStream::connect(weir.data_addr).await.expect("connect");
    let request = b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n";
    let mut buf = vec![0u8; 4096];
    let mut last_sent = Instant::now();
    for _ in 0..3 {
        // Requests spaced by half the timeout keep the connection open.
        last_sent = Instant::now();
        s.write_all(request).await.expect("write");
        let n = tokio::time::timeout(WAIT, s.read(&mut buf)).await.expect("in time").expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "served while active");
        tokio::time::sleep(keepalive / 2).await;
    }
    let n = tokio::time::timeout(WAIT, s.read(&mut buf)).await.expect("closed in time").unwrap_or(0);
    assert_eq!(n, 0, "weir closed the idle connection");
    // weir went idle after it received the last request, so no earlier than this:
    let waited = last_sent.elapsed();
    assert!(waited >= keepalive, "closed after {waited:?}, before the keep-alive timeout");
    weir.shutdown().await;
}

#[tokio::test]
async fn idle_http2_connections_are_closed_too() {
    let up = Upstream::plain("app").await;
    let settings = weir_proxy::Settings {
        conn: ConnSettings { keepalive_timeout: Duration::from_millis(300), ..ConnSettings::default() },
        ..tls_settings()
    };
    let weir = serving(settings, &one_route(up.addr, "")).await;
    let mut sender =
        h2_over::<_, Full<Bytes>>(TcpStream::connect(weir.data_addr).await.expect("connect")).await;
    let req = Request::get("http://app.test/").body(Full::new(Bytes::new())).expect("req");
    let resp = sender.send_request(req).await.expect("served");
    assert_eq!(resp.status(), 200);
    drop(resp);
    let deadline = Instant::now() + WAIT;
    while !sender.is_closed() {
        assert!(Instant::now() < deadline, "the idle HTTP/2 connection stayed open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    weir.shutdown().await;
}

/// A client that sends its request and then shuts down its sending side (as `nc -N`,
/// scripts, and some load balancers' health checks do) still gets the answer: the upstream
/// request is not abandoned because the client's half of the connection closed.
#[tokio::test]
async fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    // An upstream that holds its answer until the test lets it go.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
    let up = listener.local_addr().expect("addr");
    let (got, request_seen) = tokio::sync::oneshot::channel();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "weir closed the upstream connection before the head ended");
            head.extend_from_slice(&buf[..n]);
        }
        let _ = got.send(());
        let _ = released.await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nheld\r\n").await;
    });
    let weir = serving(tls_settings(), &one_route(up, "")).await;
    let mut s = TcpStream::connect(weir.data_addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n").await.expect("write");
    s.shutdown().await.expect("half-close");
    tokio::time::timeout(WAIT, request_seen).await.expect("in time").expect("the upstream got the request");
    let _ = release.send(());
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await.expect("in time").expect("read");
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200") && out.ends_with("held\r\n"), "{out:?}");
    weir.shutdown().await;
}
