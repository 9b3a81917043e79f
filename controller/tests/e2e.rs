//! End to end: fake API server → controller loop → fake proxy admin API, plus real
//! routing decisions through weir-config on each pushed table.
//!
//! Everything binds 127.0.0.1:0, every wait is a bounded poll, and each test stops what it
//! started (the controller via its shutdown flag; servers on drop).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_config::wire::TableDoc;
use weir_config::{pick_backend, RouteTable, Side};
use weir_controller::lease::{lease_loop, LeaseSettings};
use weir_controller::metrics::Metrics;
use weir_controller::push::PushTiming;
use weir_controller::status::Publish;
use weir_controller::testkit::fake_admin::FakeAdmin;
use weir_controller::testkit::fake_api::FakeApi;
use weir_controller::testkit::fixtures::*;
use weir_controller::testkit::wait_for;
use weir_controller::Settings;

const FIRST_SYNC: Duration = Duration::from_secs(10);
const ONE_SECOND: Duration = Duration::from_secs(1);

fn stable() -> Ingress {
    ingress("app").host("app.example.com").path("/", "app", "http").build()
}

fn canary(weight: i64) -> Ingress {
    argo_canary(&stable(), "app-rollout", "app", "app-canary").created(60).weight(weight).build()
}

fn seed(api: &FakeApi) {
    api.apply(&service("app").port("http", 80, "http").build());
    api.apply(&service("app-canary").port("http", 80, "http").build());
    api.apply(
        &endpoint_slice("app-abc", "app")
            .port("http", 8080)
            .ready("10.0.0.1")
            .ready("10.0.0.2")
            .terminating("10.0.0.3")
            .build(),
    );
    api.apply(&endpoint_slice("app-canary-def", "app-canary").port("http", 8080).ready("10.0.1.1").build());
    api.apply(&stable());
    api.apply(&canary(0));
}

struct Controller {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), weir_controller::Error>>,
}

impl Controller {
    fn start(api: &FakeApi, admin: &FakeAdmin, tweak: impl FnOnce(&mut Settings)) -> Controller {
        let mut settings = Settings::new(&admin.url());
        settings.push = PushTiming {
            poll: Duration::from_millis(200),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(500),
        };
        tweak(&mut settings);
        let client = api.client().expect("client");
        let (stop, rx) = watch::channel(false);
        let metrics = Metrics::new().expect("metrics");
        let task = tokio::spawn(weir_controller::run(client, settings, metrics, rx));
        Controller { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let done = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(matches!(done, Ok(Ok(Ok(())))), "controller did not stop cleanly: {done:?}");
    }
}

fn canary_weight(t: &TableDoc) -> Option<i64> {
    let host = t.hosts.iter().find(|h| h.host.as_deref() == Some("app.example.com"))?;
    host.rules.iter().find(|r| r.path == "/")?.canary.as_ref()?.weight
}

fn main_endpoints(t: &TableDoc) -> Vec<String> {
    t.hosts.iter().flat_map(|h| &h.rules).map(|r| r.backend.endpoints.clone()).next().unwrap_or_default()
}

/// The share of 1..=100 rolls that the pushed table sends to the canary.
fn canary_share(t: &TableDoc) -> usize {
    let table = RouteTable::from_doc(t).expect("pushed table validates");
    let route = table.match_route("app.example.com", "/").expect("path").expect("route");
    (1..=100)
        .filter(|r| pick_backend(route, &http::HeaderMap::new(), |_| *r).side == Some(Side::Canary))
        .count()
}

async fn wait_weight(admin: &FakeAdmin, weight: i64, limit: Duration) -> TableDoc {
    let got = wait_for(limit, || admin.table().filter(|t| canary_weight(t) == Some(weight))).await;
    got.unwrap_or_else(|| {
        panic!("weight {weight} not pushed within {limit:?}; proxy has {:?}", admin.table())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_weight_changes_reach_the_proxy_within_a_second_each() {
    let api = FakeApi::start().await.expect("api");
    let admin = FakeAdmin::start().await.expect("admin");
    seed(&api);
    let ctl = Controller::start(&api, &admin, |_| {});
    let first = wait_weight(&admin, 0, FIRST_SYNC).await;
    assert_eq!(main_endpoints(&first), vec!["10.0.0.1:8080", "10.0.0.2:8080"]);
    assert_eq!(canary_share(&first), 0);
    for (weight, share) in [(20, 20), (100, 100), (0, 0)] {
        api.apply(&canary(weight));
        let started = Instant::now();
        let t = wait_weight(&admin, weight, ONE_SECOND).await;
        assert!(started.elapsed() < ONE_SECOND);
        assert_eq!(canary_share(&t), share, "weight {weight}");
    }
    // Four distinct tables, each pushed once: bursts coalesce and nothing is re-sent.
    let versions: Vec<_> = admin.pushes().iter().map(|t| t.version.clone()).collect();
    assert_eq!(versions.len(), 4, "{versions:?}");
    assert_eq!(admin.rejected_count(), 0);
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_removed_from_its_slice_disappears_from_the_pushed_table() {
    let api = FakeApi::start().await.expect("api");
    let admin = FakeAdmin::start().await.expect("admin");
    seed(&api);
    let ctl = Controller::start(&api, &admin, |_| {});
    wait_weight(&admin, 0, FIRST_SYNC).await;
    api.apply(&endpoint_slice("app-abc", "app").port("http", 8080).ready("10.0.0.1").build());
    let got =
        wait_for(ONE_SECOND, || admin.table().filter(|t| main_endpoints(t) == vec!["10.0.0.1:8080"])).await;
    assert!(got.is_some(), "endpoint still listed: {:?}", admin.table());
    api.delete::<k8s_openapi::api::discovery::v1::EndpointSlice>("default", "app-abc");
    let got = wait_for(ONE_SECOND, || admin.table().filter(|t| main_endpoints(t).is_empty())).await;
    assert!(got.is_some(), "slice deletion not seen: {:?}", admin.table());
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_pushes_the_same_table() {
    let api = FakeApi::start().await.expect("api");
    let admin = FakeAdmin::start().await.expect("admin");
    seed(&api);
    api.apply(&canary(20));
    let ctl = Controller::start(&api, &admin, |_| {});
    let before = wait_weight(&admin, 20, FIRST_SYNC).await;
    ctl.stop().await;
    let pushed = admin.push_count();
    let ctl = Controller::start(&api, &admin, |_| {});
    let again =
        wait_for(FIRST_SYNC, || (admin.push_count() > pushed).then(|| admin.pushes()[pushed].clone())).await;
    assert_eq!(again, Some(before.clone()), "restarted controller pushed another table");
    assert_eq!(admin.table(), Some(before));
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_empty_proxy_gets_the_table_back_and_an_absent_one_is_retried() {
    let api = FakeApi::start().await.expect("api");
    let mut admin = FakeAdmin::start().await.expect("admin");
    seed(&api);
    let ctl = Controller::start(&api, &admin, |_| {});
    let table = wait_weight(&admin, 0, FIRST_SYNC).await;
    admin.restart().await.expect("restart");
    assert_eq!(admin.table(), None);
    let back = wait_for(Duration::from_secs(5), || admin.table()).await;
    assert_eq!(back, Some(table));
    // Down while the weight changes: retried with backoff until it is back.
    admin.stop().await;
    api.apply(&canary(50));
    tokio::time::sleep(Duration::from_millis(300)).await; // let some pushes fail
    admin.restart().await.expect("restart");
    wait_weight(&admin, 50, Duration::from_secs(5)).await;
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_gets_410_gone_relists_and_converges() {
    let api = FakeApi::start().await.expect("api");
    let admin = FakeAdmin::start().await.expect("admin");
    seed(&api);
    let ctl = Controller::start(&api, &admin, |_| {});
    wait_weight(&admin, 0, FIRST_SYNC).await;
    let lists = api.count_requests("GET", "ingresses?");
    api.expire_watches();
    api.apply(&canary(30));
    api.apply(&endpoint_slice("app-abc", "app").port("http", 8080).ready("10.0.0.9").build());
    let t = wait_for(Duration::from_secs(15), || {
        admin.table().filter(|t| canary_weight(t) == Some(30) && main_endpoints(t) == vec!["10.0.0.9:8080"])
    })
    .await;
    assert!(t.is_some(), "did not converge after 410: {:?}", admin.table());
    assert!(api.gone_sent() >= 1, "no 410 was sent");
    assert!(api.count_requests("GET", "ingresses?") > lists, "ingresses were not relisted");
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_writes_ingress_status_and_events_for_diagnostics() {
    let api = FakeApi::start().await.expect("api");
    let admin = FakeAdmin::start().await.expect("admin");
    seed(&api);
    api.apply(
        &canary_ingress("orphan", "nothing")
            .host("nothing.example.com")
            .path("/", "app-canary", "http")
            .build(),
    );
    api.apply(&ingress("ghost").host("ghost.example.com").path("/", "missing", 80).build());
    let ctl = Controller::start(&api, &admin, |s| {
        s.publish = Publish::Addresses(vec!["192.0.2.10".into(), "lb.example.com".into()]);
        s.lease = Some(LeaseSettings {
            namespace: "weir-system".into(),
            name: "weir-controller".into(),
            identity: "pod-a".into(),
            duration: Duration::from_secs(2),
            retry: Duration::from_millis(100),
        });
    });
    let status = wait_for(FIRST_SYNC, || {
        let ing: Ingress = api.get("default", "app")?;
        ing.status?.load_balancer?.ingress.filter(|i| i.len() == 2)
    })
    .await
    .expect("status written");
    assert!(status.iter().any(|i| i.ip.as_deref() == Some("192.0.2.10")), "{status:?}");
    assert!(status.iter().any(|i| i.hostname.as_deref() == Some("lb.example.com")), "{status:?}");
    let reasons = wait_for(FIRST_SYNC, || {
        let mut r: Vec<String> = api.list::<Event>().into_iter().filter_map(|e| e.reason).collect();
        r.sort();
        (r.len() >= 2).then_some(r)
    })
    .await
    .expect("events published");
    assert_eq!(reasons, vec!["CanaryWithoutMain", "ServiceNotFound"]);
    // Argo's canary Ingress is never written to.
    let c: Ingress = api.get("default", "app-rollout-app-canary").expect("canary");
    assert!(c.status.is_none());
    ctl.stop().await;
    let lease: Lease = api.get("weir-system", "weir-controller").expect("lease");
    assert_eq!(lease.spec.and_then(|s| s.holder_identity), None, "lease released on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_a_peer_takes_over_when_it_stops() {
    let api = FakeApi::start().await.expect("api");
    let settings = |id: &str| LeaseSettings {
        namespace: "weir-system".into(),
        name: "weir".into(),
        identity: id.into(),
        duration: Duration::from_secs(2),
        retry: Duration::from_millis(50),
    };
    let (a_tx, a_leader) = watch::channel(false);
    let (b_tx, b_leader) = watch::channel(false);
    let (a_stop, a_rx) = watch::channel(false);
    let (b_stop, b_rx) = watch::channel(false);
    let a = tokio::spawn(lease_loop(api.client().expect("client"), settings("a"), a_tx, a_rx));
    let first = wait_for(Duration::from_secs(5), || (*a_leader.borrow()).then_some(())).await;
    assert!(first.is_some(), "a never led");
    let b = tokio::spawn(lease_loop(api.client().expect("client"), settings("b"), b_tx, b_rx));
    // b keeps trying while a renews: it must not lead during a's term.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(500) {
        assert!(!(*a_leader.borrow() && *b_leader.borrow()), "two leaders");
        assert!(!*b_leader.borrow(), "b stole a live lease");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = a_stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), a).await;
    assert!(!*a_leader.borrow());
    let took = wait_for(Duration::from_secs(5), || (*b_leader.borrow()).then_some(())).await;
    assert!(took.is_some(), "b did not take over after a released");
    let lease: Lease = api.get("weir-system", "weir").expect("lease");
    let spec = lease.spec.expect("spec");
    assert_eq!((spec.holder_identity.as_deref(), spec.lease_transitions), (Some("b"), Some(1)));
    let _ = b_stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), b).await;
}
