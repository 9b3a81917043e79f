//! The reconcile loop: wait for the caches → translate → hand the table to the pusher (and
//! the WeirRoute outcomes to the status writer, which reports them once the proxy has the
//! table) → events and status (leader only) → wait for the next burst of changes.
//!
//! Bursts are coalesced: after the first change the loop waits until the watches have
//! been quiet for `debounce` (default 50 ms), but never longer than `max_delay` (500 ms)
//! after that first change, so a steady trickle of endpoint updates cannot starve it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::error::Error;
use crate::events::EventSink;
use crate::guards::guard_loop;
use crate::lease::{lease_loop, LeaseSettings};
use crate::metrics::Metrics;
use crate::push::{push_loop, AdminClient, Desired, ProxyGuards, PushTiming};
use crate::route_status::{status_loop, RouteReports};
use crate::status::{self, Publish};
use crate::translate::{translate, Options, Translation};

/// Everything the controller is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub options: Options,
    /// Watch one namespace only; `None` = all namespaces.
    pub namespace: Option<String>,
    /// The proxy admin API base URL, e.g. `http://127.0.0.1:10255`.
    pub proxy_admin: String,
    pub publish: Publish,
    pub debounce: Duration,
    pub max_delay: Duration,
    pub push: PushTiming,
    /// Leader election; `None` = this replica always acts as leader.
    pub lease: Option<LeaseSettings>,
    /// Reported as the Events' reporting instance (pod name).
    pub instance: Option<String>,
    /// Re-check status (e.g. a publish Service that got its address) at least this often.
    pub resync: Duration,
    /// How often this replica's WeirRoute status entries are rewritten without a change.
    pub route_heartbeat: Duration,
    /// How long to wait, after the other caches synced, for the first list of WeirRoutes
    /// before serving without them (the CRD may not be installed).
    pub route_sync_wait: Duration,
    /// How often the proxy's canary guards are read while a WeirRoute arms one.
    pub guard_poll: Duration,
}

impl Settings {
    pub fn new(proxy_admin: &str) -> Settings {
        Settings {
            options: Options::default(),
            namespace: None,
            proxy_admin: proxy_admin.into(),
            publish: Publish::Nothing,
            debounce: Duration::from_millis(50),
            max_delay: Duration::from_millis(500),
            push: PushTiming::default(),
            lease: None,
            instance: None,
            resync: Duration::from_secs(30),
            route_heartbeat: crate::route_status::DEFAULT_HEARTBEAT,
            route_sync_wait: Duration::from_secs(5),
            guard_poll: crate::guards::DEFAULT_POLL,
        }
    }
}

/// Wait until changes have been quiet for `quiet`, or `max` has passed.
async fn debounce(changed: &Notify, quiet: Duration, max: Duration) {
    let deadline = Instant::now() + max;
    loop {
        let until = (Instant::now() + quiet).min(deadline);
        tokio::select! {
            _ = changed.notified() => if Instant::now() >= deadline { return },
            _ = tokio::time::sleep_until(until) => return,
        }
    }
}

/// Run the controller until `shutdown` turns true; then stop pushing, release the Lease
/// and stop every watch before returning.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    let admin = AdminClient::new(&settings.proxy_admin)?;
    let changed = Arc::new(Notify::new());
    let (caches, watches) = crate::watch::start(&client, settings.namespace.as_deref(), changed.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for w in watches {
        tasks.spawn(w);
    }
    let (desired_tx, desired_rx) = watch::channel::<Option<Arc<Desired>>>(None);
    let (acked_tx, acked_rx) = watch::channel::<Option<String>>(None);
    let pusher = tokio::spawn(push_loop(
        admin.clone(),
        desired_rx,
        metrics.clone(),
        settings.push,
        acked_tx,
        shutdown.clone(),
    ));
    let (reports_tx, reports_rx) = watch::channel::<Option<Arc<RouteReports>>>(None);
    let (guards_tx, guards_rx) = watch::channel(Arc::new(ProxyGuards::default()));
    let guard_reader =
        tokio::spawn(guard_loop(admin, reports_rx.clone(), guards_tx, settings.guard_poll, shutdown.clone()));
    let route_status = match &settings.instance {
        Some(pod) => Some(tokio::spawn(status_loop(
            client.clone(),
            pod.clone(),
            acked_rx,
            reports_rx,
            guards_rx,
            settings.route_heartbeat,
            shutdown.clone(),
        ))),
        None => {
            tracing::warn!("no pod name (POD_NAME): WeirRoute status is not reported");
            None
        }
    };
    let (leader_tx, mut leader) = watch::channel(settings.lease.is_none());
    let elector = settings
        .lease
        .clone()
        .map(|l| tokio::spawn(lease_loop(client.clone(), l, leader_tx, shutdown.clone())));

    let synced = tokio::select! {
        synced = caches.wait_synced() => synced,
        _ = crate::shutdown::stopped(&mut shutdown) => false,
    };
    let synced = synced
        && tokio::select! {
            listed = tokio::time::timeout(settings.route_sync_wait, caches.weir_routes.wait_until_ready()) => {
                if !matches!(listed, Ok(Ok(()))) {
                    tracing::warn!(
                        "WeirRoutes could not be listed (is the weirroutes.weir.dev CRD installed, and may weir \
                         list it?); serving Ingresses without them, and picking them up once they can be listed"
                    );
                }
                true
            }
            _ = crate::shutdown::stopped(&mut shutdown) => false,
        };
    if synced {
        tracing::info!("watch caches synced");
        let mut events = EventSink::new(client.clone(), settings.instance.clone());
        let mut last: Option<Translation> = None;
        loop {
            let t = reconcile(&caches, &settings, &metrics, last.as_ref(), &desired_tx);
            let report =
                RouteReports { version: t.doc.version.clone().unwrap_or_default(), routes: t.routes.clone() };
            reports_tx.send_if_modified(|r| {
                let changed = r.as_deref() != Some(&report);
                if changed {
                    *r = Some(Arc::new(report));
                }
                changed
            });
            let is_leader = *leader.borrow_and_update();
            metrics.leader.set(i64::from(is_leader));
            if is_leader {
                events.publish(&t.diagnostics, &caches.ingresses).await;
                if let Err(error) = sync_status(&client, &settings.publish, &t, &caches).await {
                    tracing::warn!(%error, "could not update Ingress status");
                }
            } else {
                events.forget();
            }
            last = Some(t);
            tokio::select! {
                _ = changed.notified() => debounce(&changed, settings.debounce, settings.max_delay).await,
                // Without a Lease the sender is dropped at once (and the elector drops it when
                // it ends): a closed channel must disable this branch, not fire it every time.
                Ok(()) = leader.changed() => {}
                _ = tokio::time::sleep(settings.resync) => {}
                _ = crate::shutdown::stopped(&mut shutdown) => break,
            }
        }
    }
    // The pusher and the elector watch `shutdown` themselves; give them a moment to finish
    // (the elector releases the Lease), then stop the watches.
    let _ = tokio::time::timeout(Duration::from_secs(5), pusher).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), guard_reader).await;
    if let Some(route_status) = route_status {
        let _ = tokio::time::timeout(Duration::from_secs(5), route_status).await;
    }
    if let Some(elector) = elector {
        let _ = tokio::time::timeout(Duration::from_secs(5), elector).await;
    }
    tasks.shutdown().await;
    metrics.set_ready(false);
    Ok(())
}

/// One translation of the caches; a changed table goes to the pusher.
fn reconcile(
    caches: &crate::watch::Caches,
    settings: &Settings,
    metrics: &Metrics,
    last: Option<&Translation>,
    desired: &watch::Sender<Option<Arc<Desired>>>,
) -> Translation {
    for (kind, n) in caches.counts() {
        metrics.watched_objects.with_label_values(&[kind]).set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    let state = caches.snapshot();
    let started = std::time::Instant::now();
    let t = translate(&state, &settings.options);
    metrics.translate_seconds.observe(started.elapsed().as_secs_f64());
    metrics.reconciles.inc();
    metrics.set_diagnostics(&t.diagnostics);
    metrics.set_annotations(&t.annotation_counts);
    let version = t.doc.version.clone().unwrap_or_default();
    if last.and_then(|l| l.doc.version.as_deref()) != Some(version.as_str()) {
        match serde_json::to_vec(&t.doc) {
            Ok(body) => {
                tracing::info!(%version, hosts = t.doc.hosts.len(), "route table changed");
                desired.send_replace(Some(Arc::new(Desired { version, body: body.into() })));
            }
            Err(error) => tracing::error!(%error, "could not serialize the route table"),
        }
    }
    let before: BTreeSet<_> = last.map(|l| l.diagnostics.iter().collect()).unwrap_or_default();
    for d in t.diagnostics.iter().filter(|d| !before.contains(d)) {
        tracing::warn!(ingress = %d.ingress, reason = d.reason.as_str(), "{}", d.message);
    }
    for w in t.warnings.iter().filter(|w| last.is_none_or(|l| !l.warnings.contains(w))) {
        tracing::warn!("{w}");
    }
    for r in t.routes.iter().filter(|r| last.is_none_or(|l| !l.routes.contains(r))) {
        match &r.applied {
            Ok(weight) => {
                tracing::info!(weirroute = %format!("{}/{}", r.namespace, r.name), generation = r.generation, weight, "WeirRoute applied")
            }
            Err(why) => {
                tracing::warn!(weirroute = %format!("{}/{}", r.namespace, r.name), generation = r.generation, "WeirRoute refused: {why}")
            }
        }
    }
    metrics.set_ready(true);
    t
}

async fn sync_status(
    client: &Client,
    publish: &Publish,
    t: &Translation,
    caches: &crate::watch::Caches,
) -> Result<(), Error> {
    let Some(want) = status::addresses(client, publish).await? else { return Ok(()) };
    let n = status::sync(client, &t.served, &caches.ingresses, &want).await?;
    if n > 0 {
        tracing::info!(ingresses = n, "updated Ingress status");
    }
    Ok(())
}
