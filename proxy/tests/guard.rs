//! The local canary guard (issue 18) under load: a canary that starts answering 500 at
//! weight 50 loses its weighted traffic (how long that took and how many requests reached
//! it meanwhile are printed), while header testers still reach it; a healthy canary, one
//! answering client-caused 4xx, and clients sending broken bodies never trip it; too few
//! answers are never judged; a new revision starts afresh and the same one keeps the trip.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_proxy::testkit::exposition::{scrape, sum};
use weir_proxy::testkit::weir::{metrics_settings, parse_doc, serving};
use weir_proxy::testkit::{get, raw, within, Upstream, H1};
use weir_proxy::Running;

const GUARD: &str = "{ errorPercent: 20, window: 10s, minRequests: 20 }";

/// `app.test` at weight 50 between `stable` and `canary`, the canary guarded by `guard`.
fn table(stable: SocketAddr, canary: SocketAddr, guard: &str) -> String {
    format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules:
      - path: /
        backend: {{ namespace: shop, service: stable, endpoints: [\"{stable}\"] }}
        canary:
          backend: {{ namespace: shop, service: canary, endpoints: [\"{canary}\"] }}
          weight: 50
          header: X-Canary
          guard: {guard}
"
    )
}

/// One request of the load: when it started, whether the guard had tripped by then, who
/// answered and with what.
#[derive(Debug, Clone)]
struct Sent {
    started: Instant,
    after_trip: bool,
    upstream: String,
    status: u16,
}

/// `clients` keep-alive clients sending `GET /` until `stop` is set (each at most 5,000
/// requests), every request logged.
fn load(
    running: &Running,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> (tokio::task::JoinSet<()>, Arc<Mutex<Vec<Sent>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (addr, routes, stop, log) =
            (running.data_addr, running.routes.clone(), stop.clone(), log.clone());
        tasks.spawn(async move {
            let mut conn = H1::connect(addr).await;
            for _ in 0..5_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let after_trip = routes.load().guard_tripped(0);
                let started = Instant::now();
                let reply = conn.get("app.test", "/", &[]).await;
                let sent = Sent {
                    started,
                    after_trip,
                    upstream: reply.upstream().to_owned(),
                    status: reply.status.as_u16(),
                };
                log.lock().unwrap().push(sent);
            }
        });
    }
    (tasks, log)
}

/// Wait (bounded) until `n` requests of the load were answered.
async fn answered(log: &Mutex<Vec<Sent>>, n: usize) {
    within(&format!("{n} answers"), async {
        for _ in 0..20_000 {
            if log.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the load did not reach {n} answers");
    })
    .await;
}

async fn admin_guards(running: &Running) -> serde_json::Value {
    let reply = get(running.admin_addr.expect("admin"), "admin", "/guards", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_that_starts_failing_under_load_loses_its_weighted_traffic_and_keeps_its_testers() {
    let (stable, canary) = (Upstream::start("stable").await, Upstream::start("canary").await);
    let running = serving(metrics_settings(), &table(stable.addr, canary.addr, GUARD)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (mut tasks, log) = load(&running, 8, stop.clone());
    answered(&log, 400).await;
    assert!(!running.routes.load().guard_tripped(0), "a healthy canary does not trip");

    let failing_from = Instant::now();
    let before = log.lock().unwrap().len();
    canary.answer_with_status(500);
    within("the guard to trip", async {
        for _ in 0..20_000 {
            if running.routes.load().guard_tripped(0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the guard never tripped");
    })
    .await;
    let tripped_after = failing_from.elapsed();
    let at_trip = log.lock().unwrap().len();
    answered(&log, at_trip + 1_000).await;
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}

    let log = log.lock().unwrap().clone();
    let failed: Vec<&Sent> =
        log[before..].iter().filter(|s| s.upstream == "canary" && s.status == 500).collect();
    let last_to_canary = failed.iter().map(|s| s.started).max().expect("the canary failed some requests");
    let late: Vec<&Sent> = log.iter().filter(|s| s.after_trip && s.upstream == "canary").collect();
    assert!(late.is_empty(), "no weighted request that started after the trip went to the canary: {late:?}");
    let after: Vec<&Sent> = log.iter().filter(|s| s.after_trip).collect();
    assert!(after.len() >= 900, "the load went on after the trip ({} requests)", after.len());
    assert!(after.iter().all(|s| (s.upstream.as_str(), s.status) == ("stable", 200)), "all of it to stable");
    println!(
        "guard: tripped {:.1} ms after the canary began answering 500 (weighted traffic to it stopped {:.1} ms after); \
         {} requests reached the failing canary meanwhile; {} weighted requests after the trip, all to stable",
        tripped_after.as_secs_f64() * 1e3,
        last_to_canary.saturating_duration_since(failing_from).as_secs_f64() * 1e3,
        failed.len(),
        after.len(),
    );

    // Testers still reach the canary (and see what broke).
    let reply = get(running.data_addr, "app.test", "/", &[("x-canary", "always")]).await;
    assert_eq!((reply.status.as_u16(), reply.upstream()), (500, "canary"));

    // It says so: the metric and the admin API.
    let samples = weir_proxy::testkit::exposition::parse(&scrape(&running).await);
    let labels = [("namespace", "shop"), ("guard", "canary"), ("revision", "")];
    assert_eq!(sum(&samples, "weir_canary_guard_tripped", &labels), 1.0);
    let guards = admin_guards(&running).await;
    let g = &guards["guards"][0];
    assert_eq!((g["state"].as_str(), g["name"].as_str()), (Some("Tripped"), Some("canary")), "{guards}");
    assert!(g["reason"].as_str().is_some_and(|r| r.contains("backend faults")), "{guards}");
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_and_client_caused_answers_never_trip_it() {
    let (stable, canary) = (Upstream::start("stable").await, Upstream::start("canary").await);
    let running = serving(metrics_settings(), &table(stable.addr, canary.addr, GUARD)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (mut tasks, log) = load(&running, 8, stop.clone());
    answered(&log, 1_000).await;
    // Client-caused 4xx from the canary: answers, not faults.
    canary.answer_with_status(404);
    let n = log.lock().unwrap().len();
    answered(&log, n + 1_000).await;
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    // Clients sending broken bodies to the canary: their fault, not the canary's.
    for _ in 0..60 {
        let reply = raw(
            running.data_addr,
            b"POST / HTTP/1.1\r\nHost: app.test\r\nX-Canary: always\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    }
    let guards = admin_guards(&running).await;
    let g = &guards["guards"][0];
    assert_eq!(g["state"], "Armed", "{guards}");
    assert_eq!(g["faults"], 0, "{guards}");
    let answers = g["answers"].as_u64().unwrap();
    assert!(answers >= 500, "the canary's answers were judged ({answers} in the window)");
    let saw_404 = log.lock().unwrap().iter().any(|s| s.upstream == "canary" && s.status == 404);
    assert!(saw_404, "the canary answered 404s");
    assert!(!running.routes.load().guard_tripped(0));
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn too_few_answers_are_never_judged() {
    let (stable, canary) = (Upstream::start("stable").await, Upstream::start("canary").await);
    canary.answer_with_status(503);
    let guard = "{ errorPercent: 50, window: 1m, minRequests: 30 }";
    let running = serving(metrics_settings(), &table(stable.addr, canary.addr, guard)).await;
    let mut conn = H1::connect(running.data_addr).await;
    for i in 1..=30 {
        let reply = conn.get("app.test", "/", &[("x-canary", "always")]).await;
        assert_eq!(reply.status, 503);
        assert_eq!(running.routes.load().guard_tripped(0), i == 30, "after {i} answers, all faults");
    }
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn a_new_revision_starts_afresh_and_the_same_one_keeps_the_trip() {
    let (stable, canary) = (Upstream::start("stable").await, Upstream::start("canary").await);
    canary.answer_with_status(500);
    let guard = |rev: &str| format!("{{ errorPercent: 10, window: 10s, minRequests: 1, revision: {rev} }}");
    let running = serving(metrics_settings(), &table(stable.addr, canary.addr, &guard("a"))).await;
    let reply = get(running.data_addr, "app.test", "/", &[("x-canary", "always")]).await;
    assert_eq!(reply.status, 500);
    assert!(running.routes.load().guard_tripped(0));

    // A table pushed for another reason (same guard) keeps the trip.
    running.routes.install(parse_doc(&table(stable.addr, canary.addr, &guard("a")))).expect("installs");
    assert!(running.routes.load().guard_tripped(0), "the same revision keeps its trip");
    // The canary's next version is judged afresh: weighted traffic reaches it again.
    canary.answer_with_status(200);
    running.routes.install(parse_doc(&table(stable.addr, canary.addr, &guard("b")))).expect("installs");
    assert!(!running.routes.load().guard_tripped(0));
    let mut conn = H1::connect(running.data_addr).await;
    let mut to_canary = 0;
    for _ in 0..100 {
        to_canary += usize::from(conn.get("app.test", "/", &[]).await.upstream() == "canary");
    }
    assert!((20..=80).contains(&to_canary), "weight 50 again: {to_canary} of 100 to the canary");
    let samples = weir_proxy::testkit::exposition::parse(&scrape(&running).await);
    assert_eq!(sum(&samples, "weir_canary_guard_tripped", &[("revision", "b")]), 0.0);
    assert!(
        weir_proxy::testkit::exposition::find(&samples, "weir_canary_guard_tripped", &[("revision", "a")])
            .is_empty(),
        "the old revision's guard is gone with its table"
    );
    within("weir to stop", running.shutdown()).await;
}
