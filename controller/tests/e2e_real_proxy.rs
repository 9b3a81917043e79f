//! End to end with the real weir proxy in-process: fake API server → weir-controller →
//! weir's loopback admin API → real requests through weir's data listener to loopback
//! upstreams that answer with their own names.
//!
//! Everything binds 127.0.0.1 (one upstream also 127.0.0.2, see the endpoint test) on port
//! 0, except a restarted proxy's admin listener, which rebinds the old admin address. Every
//! wait is a bounded poll, every loop is bounded in count and time, and each test stops
//! the controller (its shutdown flag), the proxy (`Running::shutdown`) and its upstreams.
//! The controller runs with its production timing (`Settings::new`: 50 ms debounce, 1 s
//! proxy poll, 100 ms–5 s push backoff).
//!
//! Convergence times are printed (`cargo test … -- --nocapture` shows them): each is the
//! time from the fake API server write (`FakeApi::apply` returning) to the first
//! `GET /config` on weir's admin API that shows the new table version, polled every 5 ms
//! over a fresh loopback connection, so a measurement overstates the real time by up to
//! one poll plus one request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_config::TableDoc;
use weir_controller::metrics::Metrics;
use weir_controller::testkit::fake_api::FakeApi;
use weir_controller::testkit::fixtures::*;
use weir_controller::testkit::wait_for;
use weir_controller::Settings;
use weir_proxy::testkit::weir::settings;
use weir_proxy::testkit::Upstream;

const HOST: &str = "app.example.com";
/// The first sync: caches listed, translated, pushed.
const FIRST_SYNC: Duration = Duration::from_secs(10);
const ONE_SECOND: Duration = Duration::from_secs(1);
/// A restarted proxy gets its table back through the controller's 1 s poll.
const TABLE_BACK: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Upstreams

/// Two upstreams on the same port, one on 127.0.0.1 and one on 127.0.0.2, so that both
/// fit in one EndpointSlice (a slice has one port list for all its endpoints). Both
/// addresses are loopback on Linux. Bounded retries when the port is taken on 127.0.0.2.
async fn upstream_pair(a: &'static str, b: &'static str) -> (Upstream, Upstream) {
    for _ in 0..20 {
        let first = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
        let port = first.local_addr().expect("addr").port();
        if let Ok(second) = tokio::net::TcpListener::bind(("127.0.0.2", port)).await {
            return (Upstream::plain_on(a, first), Upstream::plain_on(b, second));
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2 after 20 tries");
}

// ---------------------------------------------------------------------------------------
// The cluster, as the fake API server holds it

fn stable() -> Ingress {
    ingress("app").host(HOST).path("/", "app", "http").build()
}

fn canary(weight: i64) -> Ingress {
    argo_canary(&stable(), "app-rollout", "app", "app-canary").created(60).weight(weight).build()
}

fn slice(name: &str, service: &str, port: u16, ips: &[&str]) -> EndpointSlice {
    let mut s = endpoint_slice(name, service).port("http", i32::from(port));
    for ip in ips {
        s = s.ready(ip);
    }
    s.build()
}

/// Services `app` and `app-canary`, their slices on the given upstreams, `app` and its
/// Argo canary at `weight`.
fn seed(api: &FakeApi, stable: &[&Upstream], canary_up: &Upstream, weight: i64) {
    api.apply(&service("app").port("http", 80, "http").build());
    api.apply(&service("app-canary").port("http", 80, "http").build());
    let port = stable[0].addr.port();
    assert!(stable.iter().all(|u| u.addr.port() == port), "one slice, one port");
    let ips: Vec<String> = stable.iter().map(|u| u.addr.ip().to_string()).collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    api.apply(&slice("app-a", "app", port, &ips));
    api.apply(&slice("app-canary-a", "app-canary", canary_up.addr.port(), &["127.0.0.1"]));
    api.apply(&self::stable());
    api.apply(&canary(weight));
}

// ---------------------------------------------------------------------------------------
// The real proxy and its admin API

fn weir_settings(admin: SocketAddr) -> weir_proxy::Settings {
    weir_proxy::Settings { admin_listen: Some(admin), ..settings() }
}

/// A weir with no table and its admin API on 127.0.0.1:0.
async fn start_weir() -> weir_proxy::Running {
    weir_proxy::start(weir_settings("127.0.0.1:0".parse().expect("addr")), None).await.expect("weir starts")
}

/// A weir with no table and its admin API on `admin` (a restarted proxy): the bind is
/// retried every 20 ms for up to 5 s in case the port is not free again yet. Returns the
/// proxy and how many binds failed first.
async fn restart_weir(admin: SocketAddr) -> (weir_proxy::Running, usize) {
    let started = Instant::now();
    let mut failed = 0;
    loop {
        match weir_proxy::start(weir_settings(admin), None).await {
            Ok(running) => return (running, failed),
            Err(weir_proxy::StartError::Bind { .. })
                if failed < 250 && started.elapsed() < Duration::from_secs(5) =>
            {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("weir did not restart on {admin} after {failed} failed binds: {e}"),
        }
    }
}

/// What weir's `GET /config` says.
#[derive(Debug, Clone)]
struct Served {
    version: String,
    generation: u64,
    table: TableDoc,
}

/// `GET /config` on weir's admin API over a fresh connection; `None` for no table (404),
/// an error, or no answer within 500 ms.
async fn served(admin: SocketAddr) -> Option<Served> {
    #[derive(serde::Deserialize)]
    struct Body {
        version: String,
        generation: u64,
        table: TableDoc,
    }
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::get(format!("http://{admin}/config")).body(Empty::new()).ok()?;
    let exchange = async {
        let resp = client.request(req).await.ok()?;
        if resp.status() != http::StatusCode::OK {
            return None;
        }
        resp.into_body().collect().await.ok().map(|b| b.to_bytes())
    };
    let body = tokio::time::timeout(Duration::from_millis(500), exchange).await.ok()??;
    let b: Body = serde_json::from_slice(&body).ok()?;
    Some(Served { version: b.version, generation: b.generation, table: b.table })
}

/// Poll `GET /config` every 5 ms until `cond` holds or `limit` passes from `since`.
/// Returns what weir served and the time from `since` to seeing it.
async fn wait_served(
    admin: SocketAddr,
    since: Instant,
    limit: Duration,
    mut cond: impl FnMut(&Served) -> bool,
) -> Result<(Served, Duration), Option<Served>> {
    let mut last = None;
    for _ in 0..100_000 {
        if since.elapsed() >= limit {
            break;
        }
        if let Some(s) = served(admin).await {
            if cond(&s) {
                return Ok((s, since.elapsed()));
            }
            last = Some(s);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(last)
}

fn canary_weight(t: &TableDoc) -> Option<i64> {
    let host = t.hosts.iter().find(|h| h.host.as_deref() == Some(HOST))?;
    host.rules.iter().find(|r| r.path == "/")?.canary.as_ref()?.weight
}

fn main_endpoints(t: &TableDoc) -> Vec<String> {
    let host = t.hosts.iter().find(|h| h.host.as_deref() == Some(HOST));
    let rule = host.and_then(|h| h.rules.iter().find(|r| r.path == "/"));
    let mut eps = rule.map(|r| r.backend.endpoints.clone()).unwrap_or_default();
    eps.sort();
    eps
}

// ---------------------------------------------------------------------------------------
// Requests through weir's data port

/// A keep-alive HTTP/1 client for weir's data port.
struct Requests {
    client: Client<HttpConnector, Empty<Bytes>>,
    data: SocketAddr,
}

impl Requests {
    fn new(data: SocketAddr) -> Requests {
        Requests { client: Client::builder(TokioExecutor::new()).build_http(), data }
    }

    /// One `GET /` for the app's host: the answering upstream's name (`x-upstream`), or what
    /// went wrong.
    async fn one(&self) -> Result<String, String> {
        let req = http::Request::get(format!("http://{}/", self.data))
            .header("host", HOST)
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(2), self.client.request(req))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let name = resp.headers().get("x-upstream").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        if status != http::StatusCode::OK {
            return Err(format!("{status}: {body}"));
        }
        name.ok_or(format!("no upstream named itself: {body}"))
    }

    /// `n` requests in turn: how many each upstream answered; failures under `"error: …"`.
    async fn tally(&self, n: usize) -> BTreeMap<String, usize> {
        let mut got = BTreeMap::new();
        for _ in 0..n {
            let key = self.one().await.unwrap_or_else(|e| format!("error: {e}"));
            *got.entry(key).or_insert(0) += 1;
        }
        got
    }
}

fn only(name: &str, n: usize) -> BTreeMap<String, usize> {
    BTreeMap::from([(name.to_string(), n)])
}

/// Requests sent in the background, one every ~2 ms, until stopped (at most 20 000 or
/// 60 s): proves the proxy kept serving through whatever happened meanwhile.
struct Traffic {
    stop: Arc<AtomicBool>,
    task: JoinHandle<BTreeMap<String, usize>>,
}

impl Traffic {
    fn start(data: SocketAddr) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let requests = Requests::new(data);
            let started = Instant::now();
            let mut got = BTreeMap::new();
            for _ in 0..20_000 {
                if flag.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                let key = requests.one().await.unwrap_or_else(|e| format!("error: {e}"));
                *got.entry(key).or_insert(0) += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            eprintln!("background traffic ran {:?}", started.elapsed());
            got
        });
        Traffic { stop, task }
    }

    async fn finish(self) -> BTreeMap<String, usize> {
        self.stop.store(true, Ordering::Relaxed);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("traffic stops")
            .expect("traffic")
    }
}

// ---------------------------------------------------------------------------------------
// The controller

struct Controller {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), weir_controller::Error>>,
    metrics: Metrics,
}

impl Controller {
    /// A controller with production timing, pushing to weir's admin API at `admin`.
    fn start(api: &FakeApi, admin: SocketAddr) -> Controller {
        let settings = Settings::new(&format!("http://{admin}"));
        let (stop, rx) = watch::channel(false);
        let metrics = Metrics::new().expect("metrics");
        let task =
            tokio::spawn(weir_controller::run(api.client().expect("client"), settings, metrics.clone(), rx));
        Controller { stop, task, metrics }
    }

    fn pushes(&self, result: &str) -> u64 {
        self.metrics.pushes.with_label_values(&[result]).get()
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let done = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(matches!(done, Ok(Ok(Ok(())))), "controller did not stop cleanly: {done:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The tests

/// The 5-sigma band for `n` Bernoulli(`p`) trials.
fn five_sigma(n: usize, p: f64) -> (usize, usize) {
    let n = n as f64;
    let (mean, sd) = (n * p, (n * p * (1.0 - p)).sqrt());
    (((mean - 5.0 * sd).max(0.0)).floor() as usize, (mean + 5.0 * sd).ceil() as usize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_weight_0_20_100_0_changes_the_split_clients_see_within_a_second_each() {
    let stable_up = Upstream::plain("stable").await;
    let canary_up = Upstream::plain("canary").await;
    let api = FakeApi::start().await.expect("api");
    seed(&api, &[&stable_up], &canary_up, 0);
    let proxy = start_weir().await;
    let admin = proxy.admin_addr.expect("admin listener");
    let ctl = Controller::start(&api, admin);
    let (mut now, _) = wait_served(admin, Instant::now(), FIRST_SYNC, |s| canary_weight(&s.table) == Some(0))
        .await
        .expect("first table with weight 0");
    let requests = Requests::new(proxy.data_addr);
    assert_eq!(requests.tally(100).await, only("stable", 100), "weight 0 before any change");

    // "Within 1 s" is measured per step from just before `api.apply` (the fake API server
    // write) to the first 5 ms `GET /config` poll on weir's admin API showing a different
    // table version; that version must carry the new weight. Only then are the N requests
    // sent. 400 requests at 20 %: mean 80, sigma 8, so 40..=120 canaries pass.
    const N: usize = 400;
    for weight in [20, 100, 0] {
        let before = now.version.clone();
        let written = Instant::now();
        api.apply(&canary(weight));
        let (s, took) =
            wait_served(admin, written, ONE_SECOND, |s| s.version != before).await.unwrap_or_else(|last| {
                panic!("weight {weight}: the proxy's table did not change within 1 s; it serves {last:?}")
            });
        eprintln!("canary-weight {weight}: fake API write → proxy table version changed in {took:?}");
        assert!(took < ONE_SECOND, "weight {weight} took {took:?}");
        assert_eq!(canary_weight(&s.table), Some(weight), "the changed table has another weight");
        let got = requests.tally(N).await;
        let canaries = got.get("canary").copied().unwrap_or(0);
        assert_eq!(canaries + got.get("stable").copied().unwrap_or(0), N, "weight {weight}: {got:?}");
        match weight {
            0 => assert_eq!(canaries, 0, "weight 0: {got:?}"),
            100 => assert_eq!(canaries, N, "weight 100: {got:?}"),
            w => {
                let (lo, hi) = five_sigma(N, w as f64 / 100.0);
                assert!((lo..=hi).contains(&canaries), "weight {w}: {canaries}/{N} canary, want {lo}..={hi}");
            }
        }
        now = s;
    }
    assert_eq!(ctl.pushes("rejected"), 0);
    // One translation per debounced burst: the first sync and three changes, with room
    // for a watch event or two more. An idle controller does not spin.
    let reconciles = ctl.metrics.reconciles.get();
    eprintln!("reconciles over the whole test: {reconciles}");
    assert!(reconciles <= 10, "{reconciles} translations for 4 changes: the reconcile loop spins");
    ctl.stop().await;
    proxy.shutdown().await;
    stable_up.stop();
    canary_up.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_removed_from_the_stable_slice_receives_no_further_requests() {
    let (kept, removed) = upstream_pair("stable-kept", "stable-removed").await;
    let canary_up = Upstream::plain("canary").await;
    let api = FakeApi::start().await.expect("api");
    seed(&api, &[&kept, &removed], &canary_up, 0);
    let proxy = start_weir().await;
    let admin = proxy.admin_addr.expect("admin listener");
    let ctl = Controller::start(&api, admin);
    let both = vec![kept.addr.to_string(), removed.addr.to_string()];
    let (before, _) = wait_served(admin, Instant::now(), FIRST_SYNC, |s| main_endpoints(&s.table) == both)
        .await
        .expect("first table with both stable endpoints");
    let requests = Requests::new(proxy.data_addr);
    // Endpoints are tried round-robin: both get traffic while listed.
    let got = requests.tally(200).await;
    assert_eq!(got.values().sum::<usize>(), 200, "{got:?}");
    assert!(got.get(kept.name).copied().unwrap_or(0) >= 50, "{got:?}");
    assert!(got.get(removed.name).copied().unwrap_or(0) >= 50, "{got:?}");

    let written = Instant::now();
    api.apply(&slice("app-a", "app", kept.addr.port(), &["127.0.0.1"]));
    let (_, took) = wait_served(admin, written, ONE_SECOND, |s| s.version != before.version)
        .await
        .unwrap_or_else(|last| panic!("the slice change did not reach the proxy within 1 s: {last:?}"));
    eprintln!("endpoint removed: fake API write → proxy table version changed in {took:?}");
    let now = served(admin).await.expect("table");
    assert_eq!(main_endpoints(&now.table), vec![kept.addr.to_string()]);

    let removed_hits = removed.hits();
    let kept_hits = kept.hits();
    assert_eq!(requests.tally(200).await, only(kept.name, 200));
    assert_eq!(removed.hits(), removed_hits, "the removed endpoint still receives requests");
    assert_eq!(kept.hits(), kept_hits + 200);
    assert_eq!(canary_up.hits(), 0);
    ctl.stop().await;
    proxy.shutdown().await;
    kept.stop();
    removed.stop();
    canary_up.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_controller_leaves_the_proxy_serving_and_its_restart_loses_nothing() {
    let stable_up = Upstream::plain("stable").await;
    let canary_up = Upstream::plain("canary").await;
    let api = FakeApi::start().await.expect("api");
    seed(&api, &[&stable_up], &canary_up, 0);
    let proxy = start_weir().await;
    let admin = proxy.admin_addr.expect("admin listener");
    let ctl = Controller::start(&api, admin);
    let (first, _) = wait_served(admin, Instant::now(), FIRST_SYNC, |s| canary_weight(&s.table) == Some(0))
        .await
        .expect("first table");
    let requests = Requests::new(proxy.data_addr);
    assert_eq!(requests.tally(50).await, only("stable", 50));

    // Stopped: the proxy keeps the table and keeps serving; then a new controller starts.
    let traffic = Traffic::start(proxy.data_addr);
    ctl.stop().await;
    assert_eq!(requests.tally(200).await, only("stable", 200), "while the controller is down");
    let down = served(admin).await.expect("table while the controller is down");
    assert_eq!((&down.version, down.generation), (&first.version, first.generation));
    let ctl = Controller::start(&api, admin);
    // The restarted controller knows nothing of the proxy, so it PUTs its table once: the
    // generation moves, the version must not.
    let (again, took) = wait_served(admin, Instant::now(), FIRST_SYNC, |s| s.generation > first.generation)
        .await
        .unwrap_or_else(|last| panic!("the restarted controller pushed nothing: {last:?}"));
    eprintln!("restarted controller: start → its table accepted in {took:?}");
    assert_eq!(again.version, first.version, "the restarted controller pushed another table");
    assert_eq!(again.table, first.table);
    // The proxy answers the PUT before the controller counts it.
    wait_for(ONE_SECOND, || (ctl.pushes("ok") >= 1).then_some(())).await;
    assert_eq!((ctl.pushes("ok"), ctl.pushes("rejected")), (1, 0));
    assert_eq!(requests.tally(200).await, only("stable", 200), "after the restart");
    let during = traffic.finish().await;
    assert_eq!(during.keys().collect::<Vec<_>>(), vec!["stable"], "stop → down → restart: {during:?}");
    eprintln!("requests through the controller restart: {during:?}");

    // A change made while the controller is down reaches the proxy after its restart.
    ctl.stop().await;
    let still = served(admin).await.expect("table");
    api.apply(&canary(100));
    assert_eq!(requests.tally(50).await, only("stable", 50), "nobody pushed the change yet");
    assert_eq!(served(admin).await.map(|s| s.version), Some(still.version.clone()));
    let ctl = Controller::start(&api, admin);
    let (changed, took) =
        wait_served(admin, Instant::now(), FIRST_SYNC, |s| canary_weight(&s.table) == Some(100))
            .await
            .unwrap_or_else(|last| panic!("the change made while down was not picked up: {last:?}"));
    eprintln!("restarted controller: start → change made while down served in {took:?}");
    assert_ne!(changed.version, still.version);
    assert_eq!(requests.tally(100).await, only("canary", 100));
    ctl.stop().await;
    proxy.shutdown().await;
    stable_up.stop();
    canary_up.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_proxy_gets_its_table_back_without_restarting_the_controller() {
    let stable_up = Upstream::plain("stable").await;
    let canary_up = Upstream::plain("canary").await;
    let api = FakeApi::start().await.expect("api");
    // Weight 100: only the full table (its canary included) sends requests to "canary".
    seed(&api, &[&stable_up], &canary_up, 100);
    let proxy = start_weir().await;
    let admin = proxy.admin_addr.expect("admin listener");
    let ctl = Controller::start(&api, admin);
    let (first, _) = wait_served(admin, Instant::now(), FIRST_SYNC, |s| canary_weight(&s.table) == Some(100))
        .await
        .expect("first table");
    assert_eq!(Requests::new(proxy.data_addr).tally(20).await, only("canary", 20));

    let stopped = Instant::now();
    proxy.shutdown().await;
    let (proxy, failed_binds) = restart_weir(admin).await;
    eprintln!(
        "proxy restart: shutdown + rebind of {admin} in {:?} ({failed_binds} failed binds)",
        stopped.elapsed()
    );
    assert_eq!(proxy.admin_addr, Some(admin));
    let restarted = Instant::now();
    let (back, took) = wait_served(admin, restarted, TABLE_BACK, |s| s.version == first.version)
        .await
        .unwrap_or_else(|last| panic!("the restarted proxy did not get its table back: {last:?}"));
    eprintln!("proxy restart: restarted → table back in {took:?}");
    assert_eq!(back.table, first.table);
    assert!(!ctl.task.is_finished(), "the controller stopped");
    assert_eq!(Requests::new(proxy.data_addr).tally(100).await, only("canary", 100));
    // Only the one table, pushed once to each proxy (counted after the proxy answered).
    wait_for(ONE_SECOND, || (ctl.pushes("ok") >= 2).then_some(())).await;
    assert_eq!((ctl.pushes("ok"), ctl.pushes("rejected")), (2, 0));
    ctl.stop().await;
    proxy.shutdown().await;
    stable_up.stop();
    canary_up.stop();
}
