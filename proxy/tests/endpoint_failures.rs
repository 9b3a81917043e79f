//! Endpoint failures absorbed (issue 21): an endpoint killed (SIGKILL) under load costs no
//! idempotent request, a failed endpoint is ejected (`weir_upstream_ejections_total`), a POST
//! is never sent twice, and an endpoint that accepts and hangs times out to the next one.
//! Real processes (`weir-test-upstream`, stopped by PID) and real sockets on 127.0.0.1:0.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, Request, StatusCode};
use weir_proxy::testkit::exposition::{find, parse, sum};
use weir_proxy::testkit::upstream::{hanging_endpoint, resetting_endpoint};
use weir_proxy::testkit::weir::{metrics_settings, serving};
use weir_proxy::testkit::{body, get, request, within, Upstream, H1};
use weir_proxy::Running;

const UPSTREAM_BIN: &str = env!("CARGO_BIN_EXE_weir-test-upstream");
/// Concurrent clients of the load test.
const CLIENTS: usize = 32;
/// Requests each client sends at most (the load test's count bound).
const MAX_PER_CLIENT: usize = 400;

/// An upstream in a child process; killed (SIGKILL) and reaped when dropped.
struct UpstreamProcess {
    child: Child,
    addr: SocketAddr,
}

impl UpstreamProcess {
    async fn spawn(name: &str) -> UpstreamProcess {
        let mut child = Command::new(UPSTREAM_BIN)
            .arg(name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start weir-test-upstream");
        let stdout = child.stdout.take().expect("stdout");
        let line = within(
            "weir-test-upstream to print its address",
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await
        .expect("reader")
        .expect("read the address");
        let addr = line.trim().parse().unwrap_or_else(|e| panic!("bad address line {line:?}: {e}"));
        UpstreamProcess { child, addr }
    }

    /// SIGKILL (`Child::kill` on Unix), then reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for UpstreamProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

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

async fn ejections(weir: &Running) -> f64 {
    let addr = weir.metrics_addr.expect("metrics listener");
    let reply = get(addr, "metrics", "/metrics", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let samples = parse(&reply.text());
    assert!(
        !find(&samples, "weir_upstream_ejections_total", &[]).is_empty(),
        "weir_upstream_ejections_total is exported"
    );
    sum(&samples, "weir_upstream_ejections_total", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_one_endpoint_under_load_fails_no_request() {
    let a = UpstreamProcess::spawn("a").await;
    let mut b = UpstreamProcess::spawn("b").await;
    let c = UpstreamProcess::spawn("c").await;
    let yaml = table(&[("app.test", &[a.addr, b.addr, c.addr], "")]);
    let weir = serving(metrics_settings(), &yaml).await;
    let data = weir.data_addr;
    assert_eq!(ejections(&weir).await, 0.0);

    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (done, stop) = (done.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut conn = H1::connect(data).await;
            let mut failures = Vec::new();
            let mut served = [0usize; 3];
            for _ in 0..MAX_PER_CLIENT {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match conn.send(request("app.test", "/", &[])).await {
                    Ok(r) if r.status == StatusCode::OK => {
                        let i = ["a", "b", "c"].iter().position(|n| r.upstream() == *n);
                        served[i.expect("a named upstream answered")] += 1;
                    }
                    Ok(r) => failures.push(format!("{} {:?}", r.status, r.text())),
                    Err(e) => {
                        failures.push(format!("client error: {e}"));
                        conn = H1::connect(data).await;
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            (failures, served)
        }));
    }
    // Under load: every client has had a few answers; then SIGKILL b mid-run.
    within("the clients to get going", async {
        while done.load(Ordering::Relaxed) < CLIENTS * 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    b.kill();
    let killed_at = done.load(Ordering::Relaxed);
    within("the clients to send more after the kill", async {
        while done.load(Ordering::Relaxed) < killed_at + CLIENTS * 50 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let (mut failures, mut served) = (Vec::new(), [0usize; 3]);
    for client in clients {
        let (f, s) = within("a client to finish", client).await.expect("client task");
        failures.extend(f);
        for i in 0..3 {
            served[i] += s[i];
        }
    }
    let total = done.load(Ordering::Relaxed);
    println!("{total} requests ({killed_at} before the kill), served by a/b/c: {served:?}");
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(served[1] > 0, "b served before it was killed");
    assert!(served[0] > 0 && served[2] > 0);
    let ejected = ejections(&weir).await;
    println!("weir_upstream_ejections_total {ejected}");
    assert!(ejected >= 1.0, "the killed endpoint was ejected");
    // While b is ejected, nothing is sent its way: no request needs a retry.
    for _ in 0..30 {
        let r = get(data, "app.test", "/", &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_ne!(r.upstream(), "b");
    }
    assert_eq!(ejections(&weir).await, ejected, "an ejected endpoint is not tried (nor counted) again");
    within("weir to shut down", weir.shutdown()).await;
}

#[tokio::test]
async fn a_reset_before_the_response_retries_a_get_but_never_resends_a_post() {
    let good = Upstream::plain("good").await;
    let (resetter, seen) = resetting_endpoint().await;
    let (good2, _g) = {
        let u = Upstream::plain("good2").await;
        (u.addr, u)
    };
    let (resetter2, seen2) = resetting_endpoint().await;
    let yaml = table(&[("post.test", &[resetter, good.addr], ""), ("get.test", &[resetter2, good2], "")]);
    let weir = serving(metrics_settings(), &yaml).await;

    // Round robin alternates the first endpoint: within two requests one starts at the
    // resetting endpoint (which is then ejected, so no later one does).
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let req =
            Request::post("/").header(header::HOST, "post.test").body(body("payload")).expect("request");
        let reply = H1::connect(weir.data_addr).await.send(req).await.expect("POST answered");
        statuses.push(reply.status);
        if reply.status != StatusCode::OK {
            println!("POST reset after it was sent: {} {:?}", reply.status, reply.text());
            assert_eq!(reply.upstream(), "-", "weir answered itself");
            break;
        }
        assert_eq!(reply.text(), "good 7\n");
    }
    assert_eq!(statuses.last(), Some(&StatusCode::BAD_GATEWAY), "statuses: {statuses:?}");
    assert_eq!(seen.load(Ordering::Relaxed), 1, "the POST reached the resetting endpoint once");
    assert_eq!(good.hits(), statuses.len() - 1, "the reset POST was not sent to the good endpoint");

    for _ in 0..2 {
        let reply = get(weir.data_addr, "get.test", "/", &[]).await;
        assert_eq!((reply.status, reply.text().as_str()), (StatusCode::OK, "good2 0\n"));
    }
    assert_eq!(seen2.load(Ordering::Relaxed), 1, "one GET was reset, then sent to the next endpoint");
    assert!(ejections(&weir).await >= 2.0, "both resetting endpoints were ejected");
    within("weir to shut down", weir.shutdown()).await;
}

#[tokio::test]
async fn an_endpoint_that_hangs_times_out_and_the_next_one_answers() {
    const TIMEOUT: Duration = Duration::from_millis(400);
    let good = Upstream::plain("good").await;
    let (hanger, accepted) = hanging_endpoint().await;
    let (only_hanger, _) = hanging_endpoint().await;
    let timeout = "responseTimeout: 400ms,";
    let yaml = table(&[("app.test", &[hanger, good.addr], timeout), ("hang.test", &[only_hanger], timeout)]);
    let weir = serving(metrics_settings(), &yaml).await;

    let mut slow = 0;
    for _ in 0..2 {
        let started = Instant::now();
        let reply = get(weir.data_addr, "app.test", "/", &[]).await;
        let took = started.elapsed();
        assert_eq!((reply.status, reply.text().as_str()), (StatusCode::OK, "good 0\n"));
        if took >= TIMEOUT {
            println!("GET first sent to the hanging endpoint: answered by the next after {took:?}");
            slow += 1;
        }
    }
    assert_eq!(slow, 1, "exactly one GET waited out the response timeout (then the endpoint was ejected)");
    assert_eq!(accepted.load(Ordering::Relaxed), 1);
    assert_eq!(good.hits(), 2);

    // The last (here: only) endpoint timing out is the client's 504.
    let started = Instant::now();
    let reply = get(weir.data_addr, "hang.test", "/", &[]).await;
    println!("GET to a backend whose only endpoint hangs: {} after {:?}", reply.status, started.elapsed());
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() >= TIMEOUT);
    assert!(ejections(&weir).await >= 2.0);
    within("weir to shut down", weir.shutdown()).await;
}
