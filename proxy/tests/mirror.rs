//! Mirror routes (issue 18): which requests are copied to the canary, the copy's head and
//! body, the percentage within a tolerance band, and that a copy never changes the primary:
//! a mirror target that holds every copy, one that refuses connections, one that answers
//! 500; copies in flight bounded; bodies past the limit or cut short not copied.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use weir_proxy::mirror::MirrorSettings;
use weir_proxy::testkit::exposition::{scrape_until, sum, Sample};
use weir_proxy::testkit::weir::{metrics_settings, serving};
use weir_proxy::testkit::{body, refused_addr, request, within, Upstream, H1};
use weir_proxy::{Running, Settings};

/// What the mirror target received of one copy.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    request_id: String,
    forwarded_for: String,
    body: Bytes,
}

/// A mirror target: records every request whole, then answers `status` (or holds every
/// answer while `hold` is set).
struct Target {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    count: watch::Receiver<usize>,
    gate: watch::Sender<bool>,
}

impl Target {
    async fn start(status: u16, hold: bool) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the mirror target");
        let addr = listener.local_addr().expect("address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, count) = watch::channel(0usize);
        let (gate, gate_rx) = watch::channel(!hold);
        let (seen2, count_tx) = (seen.clone(), Arc::new(count_tx));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, count_tx, gate_rx) = (seen2.clone(), count_tx.clone(), gate_rx.clone());
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (seen, count_tx, mut gate_rx) = (seen.clone(), count_tx.clone(), gate_rx.clone());
                    async move {
                        let header = |n: &str| {
                            req.headers()
                                .get(n)
                                .map(|v| v.to_str().unwrap_or("?").to_owned())
                                .unwrap_or_default()
                        };
                        let (method, path) = (req.method().to_string(), req.uri().to_string());
                        let (request_id, forwarded_for) = (header("x-request-id"), header("x-forwarded-for"));
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        seen.lock().unwrap().push(Seen { method, path, request_id, forwarded_for, body });
                        count_tx.send_modify(|c| *c += 1);
                        let _ = gate_rx.wait_for(|open| *open).await;
                        let mut resp = Response::new(Full::new(Bytes::from_static(b"mirror\n")));
                        *resp.status_mut() = StatusCode::from_u16(status).expect("status");
                        Ok::<_, Infallible>(resp)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Target { addr, seen, count, gate }
    }

    async fn wait_for(&self, n: usize) {
        let mut rx = self.count.clone();
        within(&format!("the mirror target to receive {n} copies"), rx.wait_for(|c| *c >= n))
            .await
            .expect("target");
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn release(&self) {
        let _ = self.gate.send(true);
    }
}

/// `app.test` → stable `stable`, canary `canary` with these `canary:` lines (indented 10).
fn table(stable: SocketAddr, canary: SocketAddr, canary_extra: &str) -> String {
    format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules:
      - path: /
        backend: {{ service: stable, endpoints: [\"{stable}\"] }}
        canary:
          backend: {{ service: canary, endpoints: [\"{canary}\"] }}
{canary_extra}"
    )
}

const API_READS: &str = "          mirrorRoutes:
            - name: api-reads
              percentage: 100
              matches: [{ method: GET, pathPrefix: /api }]
";

fn settings_with(mirror: MirrorSettings) -> Settings {
    Settings { mirror, ..metrics_settings() }
}

fn results(samples: &[Sample], result: &str) -> f64 {
    sum(samples, "weir_mirror_copies_total", &[("result", result)])
}

/// Scrape until every selected request's copy is done (the results add up to the
/// requests), and at least `selected` were selected.
async fn settled(running: &Running, selected: f64) -> Vec<Sample> {
    let samples = scrape_until(running, |s| {
        let requests = sum(s, "weir_mirror_requests_total", &[]);
        let done: f64 =
            ["answered", "failed", "full", "too_large", "incomplete"].iter().map(|r| results(s, r)).sum();
        requests >= selected && done == requests
    })
    .await;
    let requests = sum(&samples, "weir_mirror_requests_total", &[]);
    assert!(requests >= selected, "{requests} requests selected, want at least {selected}");
    samples
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    data: &[u8],
) -> (u16, String) {
    let mut req = request("app.test", path, headers);
    *req.method_mut() = method.parse().expect("method");
    *req.body_mut() = body(data.to_vec());
    let reply = H1::connect(addr).await.send(req).await.expect("an answer");
    (reply.status.as_u16(), reply.upstream().to_owned())
}

#[tokio::test]
async fn a_matching_request_to_stable_is_copied_to_the_canary_with_the_primarys_head() {
    let stable = Upstream::start("stable").await;
    let target = Target::start(200, false).await;
    let running =
        serving(settings_with(MirrorSettings::default()), &table(stable.addr, target.addr, API_READS)).await;
    let reply = weir_proxy::testkit::get(running.data_addr, "app.test", "/api/users?page=2", &[]).await;
    assert_eq!((reply.status, reply.upstream()), (StatusCode::OK, "stable"), "the primary is stable's");
    target.wait_for(1).await;
    // Not selected: another method, another path.
    assert_eq!(send(running.data_addr, "POST", "/api/users", &[], b"").await, (200, "stable".into()));
    assert_eq!(send(running.data_addr, "GET", "/web", &[], b"").await, (200, "stable".into()));
    assert_eq!(send(running.data_addr, "GET", "/api/last", &[], b"").await, (200, "stable".into()));
    let samples = settled(&running, 2.0).await;
    let seen = target.seen();
    assert_eq!(seen.len(), 2, "only the two GET /api requests were copied: {seen:?}");
    let first = seen.iter().find(|s| s.path == "/api/users?page=2").expect("the first copy");
    assert_eq!(first.method, "GET");
    assert_eq!(
        first.request_id,
        reply.echoed("x-request-id")[0],
        "the copy carries the primary's X-Request-ID"
    );
    assert_eq!(first.forwarded_for, "127.0.0.1");
    assert_eq!(results(&samples, "answered"), 2.0);
    // Copies are not the rule's requests in ingress-nginx's families: 4 requests, all stable.
    let canary_requests = sum(&samples, "nginx_ingress_controller_requests", &[("service", "canary")]);
    assert_eq!(canary_requests, 0.0, "copies are not counted as the canary's requests");
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn a_request_the_canary_serves_is_not_copied() {
    let stable = Upstream::start("stable").await;
    let target = Target::start(200, false).await;
    let extra = format!("          header: X-Canary\n{API_READS}");
    let running =
        serving(settings_with(MirrorSettings::default()), &table(stable.addr, target.addr, &extra)).await;
    // Served by the canary (the target) itself: one request there, no copy.
    let (status, _) = send(running.data_addr, "GET", "/api/x", &[("x-canary", "always")], b"").await;
    assert_eq!(status, 200);
    // Then one to stable, copied.
    assert_eq!(send(running.data_addr, "GET", "/api/y", &[], b"").await, (200, "stable".into()));
    let samples = settled(&running, 1.0).await;
    assert_eq!(sum(&samples, "weir_mirror_requests_total", &[]), 1.0);
    let paths: Vec<String> = target.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths.contains(&"/api/x".to_string()) && paths.contains(&"/api/y".to_string()), "{paths:?}");
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn the_percentage_copies_a_share_within_a_band() {
    let stable = Upstream::start("stable").await;
    let target = Target::start(200, false).await;
    let routes = "          mirrorRoutes:\n            - { name: half, percentage: 30, matches: [{ pathPrefix: / }] }\n";
    let running =
        serving(settings_with(MirrorSettings::default()), &table(stable.addr, target.addr, routes)).await;
    let n = 600;
    let mut conn = H1::connect(running.data_addr).await;
    for i in 0..n {
        let reply = conn.get("app.test", &format!("/r{i}"), &[]).await;
        assert_eq!(reply.upstream(), "stable");
    }
    let samples = settled(&running, 1.0).await;
    let copied = sum(&samples, "weir_mirror_requests_total", &[]);
    // 30 % of 600: 180, σ = √(600 · 0.3 · 0.7) ≈ 11.2; the band is 5σ.
    assert!((124.0..=236.0).contains(&copied), "{copied} of {n} copied at 30 %");
    assert_eq!(results(&samples, "answered"), copied);
    assert_eq!(target.seen().len() as f64, copied);
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn a_mirror_target_that_holds_every_copy_does_not_hold_the_primary() {
    let stable = Upstream::start("stable").await;
    let target = Target::start(200, true).await;
    let running =
        serving(settings_with(MirrorSettings::default()), &table(stable.addr, target.addr, API_READS)).await;
    for i in 0..5 {
        let reply = weir_proxy::testkit::get(running.data_addr, "app.test", &format!("/api/{i}"), &[]).await;
        assert_eq!((reply.status, reply.upstream()), (StatusCode::OK, "stable"));
    }
    // Every primary answered while the target holds all five copies, unanswered.
    target.wait_for(5).await;
    let samples = scrape_until(&running, |_| true).await;
    assert_eq!(results(&samples, "answered"), 0.0, "the copies are still held");
    target.release();
    let samples = settled(&running, 5.0).await;
    assert_eq!(results(&samples, "answered"), 5.0);
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn a_failing_mirror_target_changes_nothing_for_the_primary() {
    let stable = Upstream::start("stable").await;
    // Nothing listens: every copy fails to connect.
    let running =
        serving(settings_with(MirrorSettings::default()), &table(stable.addr, refused_addr(), API_READS))
            .await;
    for i in 0..4 {
        let reply = weir_proxy::testkit::get(running.data_addr, "app.test", &format!("/api/{i}"), &[]).await;
        assert_eq!((reply.status, reply.upstream()), (StatusCode::OK, "stable"));
    }
    let samples = settled(&running, 4.0).await;
    assert_eq!(results(&samples, "failed"), 4.0);
    // And the copies' failures ejected nothing: the canary's own traffic still tries it.
    assert_eq!(sum(&samples, "weir_upstream_ejections_total", &[]), 0.0);
    within("weir to stop", running.shutdown()).await;
    // A target answering 500: the primary is still stable's 200.
    let target = Target::start(500, false).await;
    let running =
        serving(settings_with(MirrorSettings::default()), &table(stable.addr, target.addr, API_READS)).await;
    let reply = weir_proxy::testkit::get(running.data_addr, "app.test", "/api/x", &[]).await;
    assert_eq!((reply.status, reply.upstream()), (StatusCode::OK, "stable"));
    let samples = settled(&running, 1.0).await;
    assert_eq!(results(&samples, "answered"), 1.0);
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn copies_in_flight_are_bounded_and_the_rest_dropped_and_counted() {
    let stable = Upstream::start("stable").await;
    let target = Target::start(200, true).await;
    let mirror = MirrorSettings { max_in_flight: 2, ..MirrorSettings::default() };
    let running = serving(settings_with(mirror), &table(stable.addr, target.addr, API_READS)).await;
    // The first two copies take both slots (held at the target); three more are dropped.
    for i in 0..2 {
        let reply = weir_proxy::testkit::get(running.data_addr, "app.test", &format!("/api/{i}"), &[]).await;
        assert_eq!(reply.upstream(), "stable");
    }
    target.wait_for(2).await;
    for i in 2..5 {
        let reply = weir_proxy::testkit::get(running.data_addr, "app.test", &format!("/api/{i}"), &[]).await;
        assert_eq!(reply.upstream(), "stable");
    }
    let samples = scrape_until(&running, |s| results(s, "full") >= 3.0).await;
    assert_eq!(results(&samples, "full"), 3.0);
    target.release();
    let samples = settled(&running, 5.0).await;
    assert_eq!((results(&samples, "answered"), results(&samples, "full")), (2.0, 3.0));
    assert_eq!(target.seen().len(), 2);
    // Slots come back: the next copy is sent.
    weir_proxy::testkit::get(running.data_addr, "app.test", "/api/again", &[]).await;
    let samples = settled(&running, 6.0).await;
    assert_eq!(results(&samples, "answered"), 3.0);
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn a_body_is_copied_whole_up_to_the_limit() {
    let stable = Upstream::plain("stable").await;
    let target = Target::start(200, false).await;
    let writes = "          mirrorRoutes:\n            - { name: writes, percentage: 100, matches: [{ method: POST }] }\n";
    let mirror = MirrorSettings { body_limit: 1000, ..MirrorSettings::default() };
    let running = serving(settings_with(mirror), &table(stable.addr, target.addr, writes)).await;
    let small: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
    let (status, _) = send(running.data_addr, "POST", "/orders", &[], &small).await;
    assert_eq!(status, 200);
    target.wait_for(1).await;
    assert_eq!(target.seen()[0].body, Bytes::from(small.clone()), "the copy's body is the request's");
    // Declared over the limit: the primary gets all of it, the copy is dropped.
    let big = vec![7u8; 5000];
    let mut req = request("app.test", "/orders", &[]);
    *req.method_mut() = http::Method::POST;
    *req.body_mut() = body(big.clone());
    let reply = H1::connect(running.data_addr).await.send(req).await.expect("answer");
    assert_eq!(reply.text(), "stable 5000\n");
    // Chunked (no declared length), small and big: the tee copies the first, drops the second.
    for (len, want) in [(300usize, "stable 300\n"), (3000, "stable 3000\n")] {
        assert_eq!(chunked_post(running.data_addr, len).await, want);
    }
    let samples = settled(&running, 4.0).await;
    assert_eq!((results(&samples, "answered"), results(&samples, "too_large")), (2.0, 2.0));
    let bodies: Vec<usize> = target.seen().iter().map(|s| s.body.len()).collect();
    assert!(bodies.contains(&600) && bodies.contains(&300) && bodies.len() == 2, "{bodies:?}");
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn a_body_the_client_cuts_short_is_not_copied() {
    let stable = Upstream::plain("stable").await;
    let target = Target::start(200, false).await;
    let writes = "          mirrorRoutes:\n            - { name: writes, percentage: 100, matches: [{ method: POST }] }\n";
    let running =
        serving(settings_with(MirrorSettings::default()), &table(stable.addr, target.addr, writes)).await;
    let mut s = TcpStream::connect(running.data_addr).await.expect("connect");
    s.write_all(b"POST /orders HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .expect("write");
    // The request is selected (its head is in) before the client goes away mid-body.
    let _ = scrape_until(&running, |s| sum(s, "weir_mirror_requests_total", &[]) >= 1.0).await;
    drop(s);
    let samples = settled(&running, 1.0).await;
    assert_eq!(results(&samples, "incomplete"), 1.0);
    assert!(target.seen().is_empty());
    within("weir to stop", running.shutdown()).await;
}

/// A chunked POST of `len` bytes in 100-byte chunks; the answer's body.
async fn chunked_post(addr: SocketAddr, len: usize) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req =
        b"POST /orders HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for chunk in vec![b'x'; len].chunks(100) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&req).await.expect("write");
    let mut out = Vec::new();
    within("the answer", s.read_to_end(&mut out)).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}
