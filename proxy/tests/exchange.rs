//! weir's own HTTP/1.1 exchange (bodyless requests to plain-HTTP upstreams) against an
//! upstream that writes exactly the bytes each test scripts: keep-alive reuse, upstreams
//! that close idle connections, every response framing of RFC 9112 §6.3, and malformed
//! answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::{header, Method, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use weir_proxy::testkit::{within, Weir, H1};

/// What the scripted upstream does with one request.
enum Answer {
    /// Write these bytes and keep the connection open.
    Keep(&'static [u8]),
    /// Write these bytes, then close without saying so.
    Close(&'static [u8]),
    /// Close without answering (an idle connection the upstream had just closed).
    Drop,
}

/// A raw TCP upstream: for the `n`-th request (from 0) on a connection to `path`, does
/// `script(path, n)`. Requests carry no body, so a head ends each one.
struct Scripted {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Scripted {
    async fn start(script: fn(&str, usize) -> Answer) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (conns, reqs) = (connections.clone(), requests.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                conns.fetch_add(1, Ordering::SeqCst);
                let reqs = reqs.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for n in 0..1000 {
                        let Some(end) = read_head(&mut stream, &mut buf).await else { return };
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end);
                        reqs.fetch_add(1, Ordering::SeqCst);
                        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                        match script(&path, n) {
                            Answer::Keep(bytes) => {
                                if stream.write_all(bytes).await.is_err() {
                                    return;
                                }
                            }
                            Answer::Close(bytes) => {
                                let _ = stream.write_all(bytes).await;
                                return;
                            }
                            Answer::Drop => return,
                        }
                    }
                });
            }
        });
        Scripted { addr, connections, requests, accept }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    async fn weir(&self) -> Weir {
        Weir::with(&weir_proxy::testkit::one_upstream_table(self.addr)).await
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Read until a blank line; the head's length, or `None` when the peer closed.
async fn read_head(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    let mut chunk = [0u8; 4096];
    for _ in 0..1000 {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(at + 4);
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    None
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn send(method: Method, path: &str) -> Request<weir_proxy::testkit::ReqBody> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "app.test")
        .body(weir_proxy::testkit::empty())
        .expect("request")
}

#[tokio::test]
async fn keep_alive_connections_are_reused() {
    let up = Scripted::start(|_, _| Answer::Keep(OK)).await;
    let weir = up.weir().await;
    let mut client = H1::connect(weir.data).await;
    for _ in 0..20 {
        let reply = client.get("app.test", "/", &[]).await;
        assert_eq!((reply.status, reply.text().as_str()), (StatusCode::OK, "ok"));
    }
    assert_eq!(up.connections(), 1, "20 requests in a row must share one upstream connection");
    weir.stop().await;
}

#[tokio::test]
async fn upstreams_closing_idle_connections_lose_no_idempotent_request() {
    // Each connection answers once and then, at the next request, closes without answering:
    // the race of an upstream's keep-alive timeout with weir reusing the connection.
    let up = Scripted::start(|_, n| if n == 0 { Answer::Keep(OK) } else { Answer::Drop }).await;
    let weir = up.weir().await;
    let mut client = H1::connect(weir.data).await;
    for i in 0..10 {
        let reply = client.get("app.test", "/", &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "request {i}: {}", reply.text());
    }
    assert!(up.requests() > 10, "some requests must have met a closed connection (saw {})", up.requests());
    // A request that is not idempotent is never sent twice: it fails instead.
    let mut failed = 0;
    for _ in 0..4 {
        let reply = client.send(send(Method::POST, "/")).await.expect("a response");
        if reply.status == StatusCode::BAD_GATEWAY {
            failed += 1;
        } else {
            assert_eq!(reply.status, StatusCode::OK);
        }
    }
    assert!(failed >= 1, "a POST on a connection closed under it must get 502, not be resent");
    weir.stop().await;
}

#[tokio::test]
async fn every_response_framing_reaches_the_client_whole() {
    let up = Scripted::start(|path, _| match path {
        "/chunked" => Answer::Keep(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        ),
        "/hints" => Answer::Keep(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"),
        "/head" => Answer::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
        "/nocontent" => Answer::Keep(b"HTTP/1.1 204 No Content\r\n\r\n"),
        "/http10" => Answer::Close(b"HTTP/1.0 200 OK\r\n\r\nuntil the end"),
        "/extra" => Answer::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhellogarbage"),
        "/both" => Answer::Keep(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        _ => Answer::Keep(OK),
    })
    .await;
    let weir = up.weir().await;
    let mut client = H1::connect(weir.data).await;

    let reply = client.get("app.test", "/chunked", &[]).await;
    assert_eq!(reply.text(), "hello world");
    let reply = client.get("app.test", "/hints", &[]).await;
    assert_eq!((reply.status, reply.text().as_str()), (StatusCode::OK, "final"));
    let reply = client.send(send(Method::HEAD, "/head")).await.expect("HEAD");
    assert_eq!(reply.headers[header::CONTENT_LENGTH], "10");
    assert!(reply.body.is_empty());
    let reply = client.get("app.test", "/nocontent", &[]).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(up.connections(), 1, "chunked, 1xx, HEAD and 204 all leave the connection reusable");

    let reply = client.get("app.test", "/http10", &[]).await;
    assert_eq!(reply.text(), "until the end");
    let reply = client.get("app.test", "/", &[]).await;
    assert_eq!(reply.text(), "ok");
    assert_eq!(up.connections(), 2, "a body delimited by close ends its connection");

    let reply = client.get("app.test", "/extra", &[]).await;
    assert_eq!(reply.text(), "hello", "bytes past the Content-Length are not body");
    client.get("app.test", "/", &[]).await;
    assert_eq!(up.connections(), 3, "a connection with bytes past the body is not reused");

    let reply = client.get("app.test", "/both", &[]).await;
    assert_eq!(reply.text(), "abc", "Transfer-Encoding wins over Content-Length");
    assert!(reply.headers.get(header::CONTENT_LENGTH).is_none_or(|v| v == "3"));
    client.get("app.test", "/", &[]).await;
    assert_eq!(up.connections(), 4, "a response with both framings is not trusted with a next request");
    weir.stop().await;
}

#[tokio::test]
async fn malformed_upstream_answers_are_502_and_truncated_bodies_are_cut() {
    let up = Scripted::start(|path, _| match path {
        "/garbage" => Answer::Keep(b"SSH-2.0-OpenSSH\r\n\r\n"),
        "/badlength" => Answer::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n"),
        "/twolengths" => Answer::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        "/badchunk" => Answer::Close(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        "/short" => Answer::Close(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
        "/silent" => Answer::Drop,
        _ => Answer::Keep(OK),
    })
    .await;
    let weir = up.weir().await;
    for path in ["/garbage", "/badlength", "/twolengths", "/silent"] {
        let reply = within(path, weir_proxy::testkit::get(weir.data, "app.test", path, &[])).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{path}: {}", reply.text());
    }
    for path in ["/badchunk", "/short"] {
        let mut client = H1::connect(weir.data).await;
        let outcome = client.send(send(Method::GET, path)).await;
        assert!(outcome.is_err(), "{path}: a cut body must not look complete: {outcome:?}");
    }
    // weir is still serving.
    assert_eq!(weir.get("app.test", "/").await.text(), "ok");
    weir.stop().await;
}
