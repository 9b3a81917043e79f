//! This replica's entry of each WeirRoute's `status.replicas`: what the proxy beside it has
//! acknowledged (plugin/README.md, "What each weir replica's controller does").
//!
//! Written only for the table the proxy acknowledged (the push loop's `acked` version equals
//! the version of the translation the outcomes came from), by server-side apply of a body
//! holding only `status.replicas: [<this entry>]` under the field manager
//! `weir-controller/<pod>`, forced, so each replica owns exactly its entry. Rewritten when
//! the entry changes and at least every `heartbeat` (≤ 20 s by the contract). While the proxy
//! serves another table, or none, nothing is written: the heartbeat goes stale and the
//! plugin's VerifyWeight says so. On shutdown each entry written is removed (an apply of
//! `replicas: []` under the same manager).
//!
//! An entry's `guard` is the proxy's canary guard for the WeirRoute (`guards.rs`); when it
//! trips, the entry is rewritten at once and a Warning Event `CanaryGuardTripped` is
//! published about the WeirRoute, by each replica whose proxy tripped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::push::ProxyGuards;
use crate::translate::RouteOutcome;
use crate::weirroute::{
    table_version_number, GuardStatus, ReplicaStatus, WeirRoute, API_VERSION, GUARD_ARMED, GUARD_TRIPPED,
    KIND,
};

/// Most often an entry is rewritten without a change (the contract asks for ≤ 20 s).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Wait before retrying a write that failed.
const RETRY: Duration = Duration::from_secs(2);

/// The WeirRoute outcomes of one translation and the table version they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteReports {
    pub version: String,
    pub routes: Vec<RouteOutcome>,
}

type Key = (String, String);

/// The guard of one outcome as the proxy reports it: `Off` when the applied generation has
/// none; `Tripped` when the proxy's guard for this canary hash tripped; else `Armed` (the
/// acknowledged table arms it; a proxy not read yet has not tripped it).
pub fn guard_status(o: &RouteOutcome, guards: &ProxyGuards) -> GuardStatus {
    let Some(hash) = &o.guard else { return GuardStatus::off() };
    match guards.find(&o.namespace, &o.name, hash) {
        Some(g) if g.state == GUARD_TRIPPED => GuardStatus {
            state: GUARD_TRIPPED.into(),
            canary_hash: hash.clone(),
            tripped_at: g
                .tripped_at
                .and_then(|s| Timestamp::from_millisecond((s * 1000.0) as i64).ok())
                .map(Time),
            reason: g.reason.clone().unwrap_or_default(),
        },
        _ => GuardStatus {
            state: GUARD_ARMED.into(),
            canary_hash: hash.clone(),
            tripped_at: None,
            reason: String::new(),
        },
    }
}

/// The entry for one outcome; `applied` is the last generation this replica had in force.
pub fn entry(
    pod: &str,
    o: &RouteOutcome,
    applied: Option<i64>,
    version: &str,
    guard: GuardStatus,
    now: Timestamp,
) -> ReplicaStatus {
    let (observed_generation, weight, message) = match &o.applied {
        Ok(w) => (o.generation, *w, String::new()),
        Err(why) => (applied.unwrap_or(0), 0, why.clone()),
    };
    ReplicaStatus {
        name: pod.into(),
        observed_generation,
        weight,
        table_version: table_version_number(version),
        additional_destinations: if o.applied.is_ok() { o.destinations.clone() } else { Vec::new() },
        guard,
        message,
        heartbeat_time: Time(now),
    }
}

fn manager(pod: &str) -> String {
    format!("weir-controller/{pod}")
}

async fn apply(
    client: &Client,
    pod: &str,
    key: &Key,
    replicas: Vec<ReplicaStatus>,
) -> Result<(), kube::Error> {
    let body = serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": { "name": key.1, "namespace": key.0 },
        "status": { "replicas": replicas },
    });
    let params = PatchParams::apply(&manager(pod)).force();
    match Api::<WeirRoute>::namespaced(client.clone(), &key.0)
        .patch_status(&key.1, &params, &Patch::Apply(&body))
        .await
    {
        Ok(_) => Ok(()),
        // Deleted since the translation: nothing to report on.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Tell who looks at the WeirRoute (`kubectl describe`, `kubectl get events`) that this
/// replica's guard tripped.
async fn publish_trip(recorder: &Recorder, pod: &str, o: &RouteOutcome, guard: &GuardStatus) {
    let regarding = ObjectReference {
        api_version: Some(API_VERSION.into()),
        kind: Some(KIND.into()),
        name: Some(o.name.clone()),
        namespace: Some(o.namespace.clone()),
        uid: (!o.uid.is_empty()).then(|| o.uid.clone()),
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: "CanaryGuardTripped".into(),
        note: Some(format!(
            "{pod}: canary {} guard tripped ({}): no more weighted traffic to the canary; header routes still reach it",
            guard.canary_hash, guard.reason
        )),
        action: "GuardCanary".into(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &regarding).await {
        tracing::warn!(%error, weirroute = %format!("{}/{}", o.namespace, o.name), "could not publish the guard's event");
    }
}

/// Keep this replica's entries current until `shutdown` turns true, then remove them.
pub async fn status_loop(
    client: Client,
    pod: String,
    mut acked: watch::Receiver<Option<String>>,
    mut reports: watch::Receiver<Option<Arc<RouteReports>>>,
    mut guards: watch::Receiver<Arc<ProxyGuards>>,
    heartbeat: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let recorder = Recorder::new(
        client.clone(),
        Reporter { controller: "weir-controller".into(), instance: Some(pod.clone()) },
    );
    // What was last written for each WeirRoute (heartbeat time cleared) and when.
    let mut written: HashMap<Key, (ReplicaStatus, Instant)> = HashMap::new();
    let mut applied: HashMap<Key, i64> = HashMap::new();
    loop {
        let serving = acked.borrow_and_update().clone();
        let report = reports.borrow_and_update().clone();
        let proxy_guards = guards.borrow_and_update().clone();
        let mut wake = Instant::now() + heartbeat;
        if let Some(report) = report.filter(|r| serving.as_deref() == Some(r.version.as_str())) {
            written.retain(|k, _| report.routes.iter().any(|o| (&o.namespace, &o.name) == (&k.0, &k.1)));
            applied.retain(|k, _| report.routes.iter().any(|o| (&o.namespace, &o.name) == (&k.0, &k.1)));
            for o in &report.routes {
                let key: Key = (o.namespace.clone(), o.name.clone());
                if o.applied.is_ok() {
                    applied.insert(key.clone(), o.generation);
                }
                let now = Timestamp::now();
                let guard = guard_status(o, &proxy_guards);
                let e = entry(&pod, o, applied.get(&key).copied(), &report.version, guard, now);
                let mut bare = e.clone();
                bare.heartbeat_time = Time(Timestamp::UNIX_EPOCH);
                let due = match written.get(&key) {
                    Some((last, at)) => *last != bare || at.elapsed() >= heartbeat,
                    None => true,
                };
                if due {
                    match apply(&client, &pod, &key, vec![e]).await {
                        Ok(()) => {
                            let newly_tripped = bare.guard.state == GUARD_TRIPPED
                                && written.get(&key).is_none_or(|(last, _)| last.guard != bare.guard);
                            if newly_tripped {
                                publish_trip(&recorder, &pod, o, &bare.guard).await;
                            }
                            written.insert(key, (bare, Instant::now()));
                        }
                        Err(error) => {
                            tracing::warn!(weirroute = %format!("{}/{}", key.0, key.1), %error, "could not write WeirRoute status");
                            wake = wake.min(Instant::now() + RETRY);
                        }
                    }
                }
                if let Some((_, at)) = written.get(&(o.namespace.clone(), o.name.clone())) {
                    wake = wake.min(*at + heartbeat);
                }
            }
        }
        tokio::select! {
            _ = crate::shutdown::stopped(&mut shutdown) => break,
            r = acked.changed() => if r.is_err() { break },
            r = reports.changed() => if r.is_err() { break },
            r = guards.changed() => if r.is_err() { break },
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    let removals = async {
        for key in written.keys() {
            if let Err(error) = apply(&client, &pod, key, Vec::new()).await {
                tracing::debug!(%error, "could not remove this replica's WeirRoute status entry");
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), removals).await;
}
