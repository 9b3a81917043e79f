//! Leader election on a `coordination.k8s.io/v1` Lease, client-go style.
//!
//! Every `retry` the loop reads the Lease. Free (no holder) or expired → take it (replace
//! with our identity, `leaseTransitions + 1`); ours → renew `renewTime`. "Expired" is
//! judged on the local clock: the record must have stayed unchanged for the lease duration
//! since we first saw it, so clock skew between nodes cannot steal a live lease. Writes use
//! the read resourceVersion, so of two candidates only one wins (the other gets 409). A
//! leader that cannot renew for 2/3 of the duration steps down before others may take
//! over. On shutdown a leader releases the Lease (holder cleared) so a peer takes over at
//! once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

/// Which Lease, who we are, and how long a term lasts.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// Unique per replica (pod name).
    pub identity: String,
    /// `leaseDurationSeconds`: how long a silent holder keeps the lease.
    pub duration: Duration,
    /// How often to renew or try to acquire.
    pub retry: Duration,
}

type Record = (Option<String>, Option<Timestamp>);

struct Observed {
    record: Record,
    since: Instant,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Run the election until `shutdown`; `leader` says whether we hold the Lease now.
pub async fn lease_loop(
    client: Client,
    s: LeaseSettings,
    leader: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api = Api::<Lease>::namespaced(client, &s.namespace);
    let mut observed: Option<Observed> = None;
    let mut last_renewed: Option<Instant> = None;
    let renew_deadline = s.duration.mul_f64(2.0 / 3.0);
    loop {
        match try_acquire_or_renew(&api, &s, &mut observed).await {
            Ok(true) => {
                last_renewed = Some(Instant::now());
                if leader.send_if_modified(|l| !std::mem::replace(l, true)) {
                    tracing::info!(identity = %s.identity, lease = %s.name, "became leader");
                }
            }
            Ok(false) => {
                last_renewed = None;
                if leader.send_if_modified(|l| std::mem::replace(l, false)) {
                    tracing::warn!(identity = %s.identity, "lost leadership");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "lease update failed");
                if last_renewed.is_none_or(|t| t.elapsed() >= renew_deadline)
                    && leader.send_if_modified(|l| std::mem::replace(l, false))
                {
                    tracing::warn!(identity = %s.identity, "could not renew in time; stepped down");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(s.retry) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => {
                if *leader.borrow() {
                    if let Err(error) = release(&api, &s).await {
                        tracing::warn!(%error, "could not release the lease");
                    }
                }
                leader.send_replace(false);
                return;
            }
        }
    }
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

async fn try_acquire_or_renew(
    api: &Api<Lease>,
    s: &LeaseSettings,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let now = MicroTime(Timestamp::now());
    let Some(current) = api.get_opt(&s.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(s.name.clone()),
                namespace: Some(s.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(s.identity.clone()),
                lease_duration_seconds: Some(secs(s.duration)),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = current.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let record: Record = (holder.clone(), spec.renew_time.as_ref().map(|t| t.0));
    if observed.as_ref().is_none_or(|o| o.record != record) {
        *observed = Some(Observed { record, since: Instant::now() });
    }
    let since = observed.as_ref().map_or_else(Instant::now, |o| o.since);
    let duration = spec
        .lease_duration_seconds
        .map_or(s.duration, |d| Duration::from_secs(u64::try_from(d).unwrap_or(0)));
    let mine = holder.as_deref() == Some(s.identity.as_str());
    if !mine && holder.is_some() && since.elapsed() < duration {
        return Ok(false);
    }
    let mut next = current;
    let spec = next.spec.get_or_insert_with(Default::default);
    if !mine {
        spec.holder_identity = Some(s.identity.clone());
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(now);
    spec.lease_duration_seconds = Some(secs(s.duration));
    match api.replace(&s.name, &PostParams::default(), &next).await {
        Ok(_) => Ok(true),
        Err(e) if is_conflict(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Give the Lease up: clear the holder so a peer need not wait for it to expire.
async fn release(api: &Api<Lease>, s: &LeaseSettings) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&s.name).await? else { return Ok(()) };
    let spec = lease.spec.get_or_insert_with(Default::default);
    if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    api.replace(&s.name, &PostParams::default(), &lease).await.map(|_| ())
}
