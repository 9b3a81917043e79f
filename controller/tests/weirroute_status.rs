//! WeirRoutes through the running controller: fake API server → controller → fake proxy
//! admin API, and this replica's `status.replicas` entry written back by server-side apply
//! once the proxy acknowledged the table (plugin/README.md, the WeirRoute contract).
//!
//! Everything binds 127.0.0.1:0, every wait is a bounded poll, and each test stops the
//! controller through its shutdown flag; servers stop on drop.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_config::wire::{CanaryDoc, TableDoc};
use weir_controller::metrics::Metrics;
use weir_controller::push::PushTiming;
use weir_controller::testkit::fake_admin::FakeAdmin;
use weir_controller::testkit::fake_api::FakeApi;
use weir_controller::testkit::fixtures::*;
use weir_controller::testkit::wait_for;
use weir_controller::weirroute::{table_version_number, WeirRoute};
use weir_controller::Settings;

const LIMIT: Duration = Duration::from_secs(10);
const POD: &str = "weir-0";

fn seed(api: &FakeApi) {
    api.apply(&service("app").port("http", 80, "http").build());
    api.apply(&service("app-canary").port("http", 80, "http").build());
    api.apply(&endpoint_slice("app-abc", "app").port("http", 8080).ready("10.0.0.1").build());
    api.apply(&endpoint_slice("app-canary-def", "app-canary").port("http", 8080).ready("10.0.1.1").build());
    api.apply(&ingress("app").host("app.example.com").path("/", "app", "http").build());
}

struct Controller {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), weir_controller::Error>>,
    metrics: Metrics,
}

impl Controller {
    fn start(api: &FakeApi, admin: &FakeAdmin) -> Controller {
        let mut settings = Settings::new(&admin.url());
        settings.push = PushTiming {
            poll: Duration::from_millis(200),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(500),
        };
        settings.instance = Some(POD.into());
        settings.route_heartbeat = Duration::from_millis(300);
        settings.route_sync_wait = Duration::from_millis(300);
        let (stop, rx) = watch::channel(false);
        let client = api.client().expect("client");
        let metrics = Metrics::new().expect("metrics");
        let task = tokio::spawn(weir_controller::run(client, settings, metrics.clone(), rx));
        Controller { stop, task, metrics }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let done = tokio::time::timeout(Duration::from_secs(15), self.task).await;
        assert!(matches!(done, Ok(Ok(Ok(())))), "controller did not stop cleanly: {done:?}");
    }
}

fn app_canary(t: &TableDoc) -> Option<&CanaryDoc> {
    let host = t.hosts.iter().find(|h| h.host.as_deref() == Some("app.example.com"))?;
    host.rules.iter().find(|r| r.path == "/")?.canary.as_ref()
}

fn entries(api: &FakeApi) -> Vec<Value> {
    api.get::<WeirRoute>("default", "app")
        .and_then(|w| w.status)
        .and_then(|s| s.get("replicas").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn entry(api: &FakeApi, name: &str) -> Option<Value> {
    entries(api).into_iter().find(|e| e["name"] == name)
}

fn status_patches(api: &FakeApi) -> usize {
    api.count_requests("PATCH", "/weirroutes/app/status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_crd_ingresses_are_served_and_weirroutes_are_picked_up_once_it_is_installed() {
    let api = FakeApi::start().await.expect("api");
    let admin = FakeAdmin::start().await.expect("admin");
    api.set_installed::<WeirRoute>(false);
    seed(&api);
    let ctl = Controller::start(&api, &admin);
    let first = wait_for(LIMIT, || admin.table()).await.expect("Ingresses served without the CRD");
    assert!(app_canary(&first).is_none());
    api.set_installed::<WeirRoute>(true);
    api.apply(&weir_route("app").weight(30).build());
    // The WeirRoute watch retries with backoff (0.8 s doubling); no restart is needed.
    let t = wait_for(Duration::from_secs(30), || {
        admin.table().filter(|t| app_canary(t).is_some_and(|c| c.weight == Some(30)))
    })
    .await;
    assert!(t.is_some(), "WeirRoute not picked up: {:?}", admin.table());
    let e = wait_for(LIMIT, || entry(&api, POD)).await.expect("status entry");
    assert_eq!(e["weight"], 30);
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_replica_applies_its_own_entry_after_the_proxy_acknowledged_and_keeps_it_fresh() {
    let api = FakeApi::start().await.expect("api");
    let mut admin = FakeAdmin::start().await.expect("admin");
    seed(&api);
    // Another replica's entry, written before we start: it must survive our writes.
    let mut wr = serde_json::to_value(
        weir_route("app")
            .generation(1)
            .weight(20)
            .header_route("testers", "x-canary", "exact", "true")
            .build(),
    )
    .unwrap();
    wr["status"] = json!({"replicas": [{"name": "weir-1", "observedGeneration": 1, "weight": 20, "tableVersion": 7,
        "guard": {"state": "Off"}, "heartbeatTime": "2025-01-01T00:00:00Z"}]});
    api.apply(&serde_json::from_value::<WeirRoute>(wr).unwrap());
    let ctl = Controller::start(&api, &admin);

    let e = wait_for(LIMIT, || entry(&api, POD)).await.expect("status entry");
    let table = admin.table().expect("a table");
    let version = table.version.clone().expect("versioned");
    assert_eq!(e["observedGeneration"], 1);
    assert_eq!(e["weight"], 20);
    assert_eq!(e["tableVersion"], table_version_number(&version), "the acknowledged table {version}");
    assert_eq!(format!("w-{:016x}", e["tableVersion"].as_i64().unwrap() as u64), version);
    assert_eq!(e["guard"], json!({"state": "Off"}));
    assert!(e.get("message").is_none(), "{e}");
    assert!(e["heartbeatTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    assert!(entry(&api, "weir-1").is_some(), "the other replica's entry was removed: {:?}", entries(&api));
    let c = app_canary(&table).expect("canary");
    assert_eq!((c.weight, c.header_routes.len()), (Some(20), 1));
    assert!(
        api.count_requests("PATCH", "fieldManager=weir-controller%2Fweir-0")
            + api.count_requests("PATCH", "fieldManager=weir-controller/weir-0")
            > 0,
        "not applied as weir-controller/weir-0"
    );
    assert!(api.count_requests("PATCH", "force=true") > 0, "not forced");

    // Heartbeat: rewritten without a change (300 ms here), and those status writes (ours and
    // any other replica's) do not make the controller translate again.
    // (First let the start-up reconciles settle: the watches' first lists each wake it.)
    for _ in 0..20 {
        let r = ctl.metrics.reconciles.get();
        tokio::time::sleep(Duration::from_millis(150)).await;
        if ctl.metrics.reconciles.get() == r {
            break;
        }
    }
    let before = status_patches(&api);
    let reconciles = ctl.metrics.reconciles.get();
    let beat = wait_for(Duration::from_secs(5), || (status_patches(&api) >= before + 3).then_some(())).await;
    assert!(beat.is_some(), "no heartbeat: {} → {}", before, status_patches(&api));
    assert_eq!(ctl.metrics.reconciles.get(), reconciles, "a status write woke the reconcile loop");

    // A generation weir cannot express: refused, the old generation kept, weight 0, message.
    api.apply(
        &weir_route("app")
            .generation(2)
            .weight(40)
            .raw("guard", json!({"errorPercent": 150, "windowSeconds": 10, "minRequests": 50}))
            .build(),
    );
    let e = wait_for(LIMIT, || entry(&api, POD).filter(|e| e.get("message").is_some()))
        .await
        .expect("refusal reported");
    assert_eq!((e["observedGeneration"].clone(), e["weight"].clone()), (json!(1), json!(0)), "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("spec.guard.errorPercent: 150 is not within 1..100"),
        "{e}"
    );
    assert!(app_canary(&admin.table().unwrap()).is_none(), "refused: everything to stable");

    // Applied again at generation 3.
    api.apply(&weir_route("app").generation(3).weight(50).build());
    let e = wait_for(LIMIT, || entry(&api, POD).filter(|e| e["observedGeneration"] == 3))
        .await
        .expect("generation 3");
    assert_eq!(e["weight"], 50);
    assert!(e.get("message").is_none(), "{e}");

    // The proxy gone: no more heartbeats (the plugin then sees a stale entry).
    admin.stop().await;
    let mut quiet = false;
    for _ in 0..8 {
        let n = status_patches(&api);
        tokio::time::sleep(Duration::from_millis(700)).await; // > two heartbeats
        if status_patches(&api) == n {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "status still written while the proxy is unreachable");
    admin.restart().await.expect("restart");
    let before = status_patches(&api);
    let beat = wait_for(LIMIT, || (status_patches(&api) > before).then_some(())).await;
    assert!(beat.is_some(), "heartbeat did not resume once the proxy had the table again");

    // Shutdown removes only this replica's entry.
    ctl.stop().await;
    assert!(entry(&api, POD).is_none(), "{:?}", entries(&api));
    assert!(entry(&api, "weir-1").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_is_armed_on_every_rule_and_its_trip_reaches_the_entry_and_an_event() {
    let api = FakeApi::start().await.expect("api");
    let admin = FakeAdmin::start().await.expect("admin");
    seed(&api);
    let guard = json!({"errorPercent": 20, "windowSeconds": 10, "minRequests": 50});
    api.apply(
        &weir_route("app").generation(1).weight(50).canary_hash("c1").raw("guard", guard.clone()).build(),
    );
    let ctl = Controller::start(&api, &admin);

    // The table arms one guard named after the WeirRoute, revised by the canary hash.
    let table =
        wait_for(LIMIT, || admin.table().filter(|t| app_canary(t).is_some_and(|c| c.guard.is_some())))
            .await
            .expect("a guarded canary pushed");
    let g = app_canary(&table).unwrap().guard.clone().unwrap();
    assert_eq!(
        (g.name.as_deref(), g.error_percent, g.window.as_str(), g.min_requests, g.revision.as_deref()),
        (Some("app"), 20, "10s", 50, Some("c1"))
    );
    let e = wait_for(LIMIT, || entry(&api, POD)).await.expect("status entry");
    assert_eq!(e["guard"], json!({"state": "Armed", "canaryHash": "c1"}), "{e}");
    assert!(
        wait_for(LIMIT, || (admin.guard_reads() > 0).then_some(())).await.is_some(),
        "the guards are read"
    );

    // The proxy's guard trips: the entry says so at once, with when and why, and an Event.
    let proxy_guard = |rev: &str, state: &str| {
        json!({"namespace": "default", "name": "app", "revision": rev, "state": state,
               "trippedAt": 1_767_225_600.5, "reason": "backend faults 41 of 80 answers in 10s, over 20%"})
    };
    admin.set_guards(vec![proxy_guard("c0", "Tripped")]);
    let reads = admin.guard_reads();
    assert!(wait_for(LIMIT, || (admin.guard_reads() > reads + 1).then_some(())).await.is_some());
    let e = entry(&api, POD).unwrap();
    assert_eq!(e["guard"]["state"], "Armed", "a trip of another canary hash is not this one's: {e}");
    admin.set_guards(vec![proxy_guard("c1", "Tripped")]);
    let e = wait_for(LIMIT, || entry(&api, POD).filter(|e| e["guard"]["state"] == "Tripped"))
        .await
        .expect("the trip reported");
    assert_eq!(e["guard"]["canaryHash"], "c1");
    assert_eq!(e["guard"]["trippedAt"], "2026-01-01T00:00:00Z", "{e}");
    assert!(e["guard"]["reason"].as_str().unwrap().contains("41 of 80"), "{e}");
    assert_eq!(e["weight"], 50, "the weight asked is still what the table has");
    let events = wait_for(LIMIT, || {
        let list: Vec<Value> = api
            .list::<k8s_openapi::api::events::v1::Event>()
            .into_iter()
            .map(|ev| serde_json::to_value(ev).unwrap())
            .filter(|ev| ev["reason"] == "CanaryGuardTripped")
            .collect();
        (!list.is_empty()).then_some(list)
    })
    .await
    .expect("an Event about the trip");
    let ev = &events[0];
    assert_eq!(
        (ev["regarding"]["kind"].as_str(), ev["regarding"]["name"].as_str()),
        (Some("WeirRoute"), Some("app"))
    );
    assert_eq!(ev["type"], "Warning");
    assert!(ev["note"].as_str().unwrap().starts_with("weir-0: canary c1 guard tripped"), "{ev}");

    // Heartbeats do not repeat the Event.
    let before = status_patches(&api);
    assert!(wait_for(LIMIT, || (status_patches(&api) >= before + 2).then_some(())).await.is_some());
    let n = api
        .list::<k8s_openapi::api::events::v1::Event>()
        .iter()
        .filter(|ev| ev.reason.as_deref() == Some("CanaryGuardTripped"))
        .count();
    assert_eq!(n, 1, "one Event per trip");

    // A new canary (UpdateHash): its guard is armed afresh.
    api.apply(&weir_route("app").generation(2).weight(0).canary_hash("c2").raw("guard", guard).build());
    let e =
        wait_for(LIMIT, || entry(&api, POD).filter(|e| e["observedGeneration"] == 2)).await.expect("gen 2");
    assert_eq!(e["guard"], json!({"state": "Armed", "canaryHash": "c2"}), "{e}");

    // An experiment's destinations: their shares in force are in the entry.
    api.apply(&service("exp").port("http", 80, "http").build());
    api.apply(
        &weir_route("app")
            .generation(3)
            .weight(20)
            .raw(
                "additionalDestinations",
                json!({"serviceName": "exp", "podTemplateHash": "e1", "weight": 30}),
            )
            .build(),
    );
    let e =
        wait_for(LIMIT, || entry(&api, POD).filter(|e| e["observedGeneration"] == 3)).await.expect("gen 3");
    assert_eq!(e["additionalDestinations"], json!([{"serviceName": "exp", "weight": 30}]), "{e}");
    let table = admin.table().unwrap();
    let d = &app_canary(&table).unwrap().destinations;
    assert_eq!((d.len(), d[0].weight, d[0].backend.service.as_deref()), (1, 30, Some("exp")));
    ctl.stop().await;
}
