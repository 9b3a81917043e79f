//! A rule's retries and send timeout (issue 17: `proxy-next-upstream`, `-tries`, `-timeout`,
//! `proxy-send-timeout`): which failed attempts go to the next endpoint, how many, for how
//! long, and a request body the upstream stops taking answered 504 after the send timeout.
//! The defaults (error and timeout, idempotent methods, 3 tries) are `endpoint_failures.rs`.
//! Real sockets on 127.0.0.1:0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weir_proxy::testkit::upstream::{hanging_endpoint, read_head, refused_addr, resetting_endpoint};
use weir_proxy::testkit::weir::{metrics_settings, serving};
use weir_proxy::testkit::{empty, get, within, Upstream, H1};

/// One rule per host: `(host, endpoints, the rule's extra fields)`.
fn table(host_rules: &[(&str, &[SocketAddr], &str)]) -> String {
    let mut yaml = String::from("schema: weir/v1\ndefaults: { connectTimeout: 1s }\nhosts:\n");
    for (host, endpoints, extra) in host_rules {
        let list: Vec<String> = endpoints.iter().map(|a| format!("\"{a}\"")).collect();
        yaml.push_str(&format!(
            "  - host: {host}\n    rules:\n      - {{ path: /, {extra} backend: {{ endpoints: [{}] }} }}\n",
            list.join(", ")
        ));
    }
    yaml
}

/// Two GETs to `host`: round robin starts one at each of its two endpoints.
async fn two_gets(weir: SocketAddr, host: &str) -> Vec<(StatusCode, String)> {
    let mut out = Vec::new();
    for _ in 0..2 {
        let reply = get(weir, host, "/", &[]).await;
        out.push((reply.status, reply.text()));
    }
    out
}

#[tokio::test]
async fn statuses_tries_off_and_non_idempotent_as_configured() {
    // Two busy endpoints: one retried on 503 is ejected (nginx counts 503 against it).
    let unavailable = Upstream::plain("busy").await;
    unavailable.answer_with_status(503);
    let unavailable2 = Upstream::plain("busy2").await;
    unavailable2.answer_with_status(503);
    let good = Upstream::plain("good").await;
    let (resetter, reset_seen) = resetting_endpoint().await;
    let (resetter2, reset_seen2) = resetting_endpoint().await;
    let (resetter3, reset_seen3) = resetting_endpoint().await;
    let refused = refused_addr();
    let busy_good: &[SocketAddr] = &[unavailable.addr, good.addr];
    let busy2_good: &[SocketAddr] = &[unavailable2.addr, good.addr];
    let yaml = table(&[
        ("503.test", busy_good, "retry: { on: [error, timeout, http_503] },"),
        ("default.test", busy2_good, ""),
        ("once.test", &[resetter, good.addr], "retry: { tries: 1 },"),
        ("off.test", &[refused, good.addr], "retry: { on: [off] },"),
        ("post.test", &[resetter2, good.addr], "retry: { on: [error, non_idempotent] },"),
        ("post-default.test", &[resetter3, good.addr], ""),
    ]);
    let weir = serving(metrics_settings(), &yaml).await;

    // http_503: the busy endpoint's answer goes to the next endpoint; by default it is the
    // client's answer.
    let with = two_gets(weir.data_addr, "503.test").await;
    println!("http_503 retried: {with:?}");
    assert!(with.iter().all(|(s, t)| *s == StatusCode::OK && t == "good 0\n"), "{with:?}");
    let without = two_gets(weir.data_addr, "default.test").await;
    println!("by default: {without:?}");
    let statuses: Vec<u16> = without.iter().map(|(s, _)| s.as_u16()).collect();
    assert!(statuses.contains(&503) && statuses.contains(&200), "{without:?}");

    // tries 1: a reset GET is not tried again.
    let once = two_gets(weir.data_addr, "once.test").await;
    println!("tries 1: {once:?}");
    assert!(once.iter().any(|(s, _)| *s == StatusCode::BAD_GATEWAY), "{once:?}");
    assert_eq!(reset_seen.load(Ordering::Relaxed), 1);

    // off: not even a refused connection goes to the next endpoint.
    let off = two_gets(weir.data_addr, "off.test").await;
    println!("off: {off:?}");
    assert!(off.iter().any(|(s, _)| *s == StatusCode::BAD_GATEWAY), "{off:?}");

    // non_idempotent: a bodyless POST that was reset is sent to the next endpoint; by
    // default it never is.
    for (host, seen, want) in [
        ("post.test", &reset_seen2, StatusCode::OK),
        ("post-default.test", &reset_seen3, StatusCode::BAD_GATEWAY),
    ] {
        let mut statuses = Vec::new();
        for _ in 0..2 {
            let req = Request::post("/").header(header::HOST, host).body(empty()).expect("request");
            let reply = H1::connect(weir.data_addr).await.send(req).await.expect("POST answered");
            statuses.push(reply.status);
        }
        println!("{host}: bodyless POSTs {statuses:?}");
        assert_eq!(seen.load(Ordering::Relaxed), 1, "{host}: one POST reached the resetting endpoint");
        assert!(statuses.contains(&want), "{host}: {statuses:?}");
        if want == StatusCode::OK {
            assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{host}: {statuses:?}");
        }
    }
    within("weir to shut down", weir.shutdown()).await;
}

#[tokio::test]
async fn the_retry_timeout_stops_new_attempts() {
    let (hanger, accepted) = hanging_endpoint().await;
    let (hanger2, accepted2) = hanging_endpoint().await;
    let good = Upstream::plain("good").await;
    let yaml = table(&[(
        "app.test",
        &[hanger, hanger2, good.addr],
        "responseTimeout: 300ms, retry: { timeout: 200ms, tries: 3 },",
    )]);
    let weir = serving(metrics_settings(), &yaml).await;
    // Whichever endpoint a request starts at: after one hanging endpoint's 300 ms the retry
    // window (200 ms) is over, so no third endpoint is tried.
    let mut timed_out = 0;
    for _ in 0..3 {
        let reply = get(weir.data_addr, "app.test", "/", &[]).await;
        println!("{} {:?}", reply.status, reply.text());
        if reply.status == StatusCode::GATEWAY_TIMEOUT {
            timed_out += 1;
        } else {
            assert_eq!(reply.status, StatusCode::OK);
        }
    }
    let hung = accepted.load(Ordering::Relaxed) + accepted2.load(Ordering::Relaxed);
    assert!(timed_out >= 1, "a request that met a hanging endpoint first got 504");
    assert_eq!(hung, timed_out, "each such request tried one endpoint only");
    within("weir to shut down", weir.shutdown()).await;
}

/// A listener that reads a request head, then nothing more, holding the connection.
async fn head_only_endpoint() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let heads = Arc::new(AtomicUsize::new(0));
    let count = heads.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            if read_head(&mut stream).await.is_some() {
                count.fetch_add(1, Ordering::Relaxed);
            }
            held.push(stream);
        }
    });
    (addr, heads)
}

#[tokio::test]
async fn a_body_the_upstream_stops_taking_is_answered_504_after_the_send_timeout() {
    const SEND_TIMEOUT: Duration = Duration::from_millis(300);
    const BODY: usize = 256 << 20;
    let (stuck, heads) = head_only_endpoint().await;
    let yaml =
        table(&[("upload.test", &[stuck], "sendTimeout: 300ms, responseTimeout: 30s, maxBodySize: \"0\",")]);
    let weir = serving(metrics_settings(), &yaml).await;

    let stream = TcpStream::connect(weir.data_addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let started = Instant::now();
    // The client keeps sending as long as weir reads; weir stops once the upstream stops.
    let writer = tokio::spawn(async move {
        let head = format!("PUT /big HTTP/1.1\r\nhost: upload.test\r\ncontent-length: {BODY}\r\n\r\n");
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 << 10];
        for _ in 0..BODY / chunk.len() {
            wr.write_all(&chunk).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        match within("weir's answer", rd.read(&mut buf)).await {
            Ok(n) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    println!("answered after {took:?}: {}", text.lines().next().unwrap_or(""));
    assert!(text.starts_with("HTTP/1.1 504"), "{text}");
    assert!(took >= SEND_TIMEOUT, "not before the send timeout: {took:?}");
    assert_eq!(heads.load(Ordering::Relaxed), 1, "the upstream got the head, once");
    writer.abort();
    within("weir to shut down", weir.shutdown()).await;
}
