//! Prometheus metrics: ingress-nginx's request families, weir's own `weir_*` families, and
//! process metrics, served as text on the metrics listener (`/metrics`).
//!
//! Recording is cheap by construction: when a table is installed, [`Metrics::prepare`]
//! resolves each rule's series handles ([`RuleHandles`], stored in the snapshot aligned with
//! `table.routes()`), so a request never builds label strings. Handles are keyed by their
//! label identity and carried from one table to the next, so a swap keeps the counters of
//! rules that are still present; rules that are gone leave the output with the swap. The
//! snapshot is the one swapped state: a scrape reads the series of the snapshot in force.
//!
//! Every request family carries, besides ingress-nginx's labels, `fault` (who failed the
//! request: `client`, `backend`, `weir`, or "" — `record::Fault`), so success rates can
//! leave out what clients broke; `status` stays what the client got.
//!
//! weir's own families: `weir_canary_weight`, `_denominator`, `_ratio` and
//! `weir_canary_fallbacks_total` per rule; `weir_backend_ready_endpoints`; `weir_config_info`,
//! `_generation`, `_last_applied_timestamp_seconds`, `weir_config_reloads_total{result}`;
//! `weir_access_log_dropped_total`; `weir_upstream_ejections_total`; `weir_mirror_requests_total`, `weir_mirror_copies_total{result}`;
//! `weir_rate_limited_total{zone,limit}`. Not yet: `weir_canary_conflicts` (D4) — pairing happens
//! in the controller and the table does not carry conflicts, so the proxy has no source.
//!
//! ingress-nginx's controller-health families, which its own Grafana dashboard reads:
//! `config_hash`, `config_last_reload_successful` (+ `_timestamp_seconds`), `success`,
//! `errors`, `ssl_expire_time_seconds` (from [`health::TableHealth`], made per install),
//! `nginx_process_connections{state}`, `_connections_total`, `_requests_total` (from the
//! listeners' [`crate::conn::ConnStats`]), and `nginx_process_*` CPU, memory, start time and
//! I/O (from `/proc/self` per scrape).
//!
//! # Layout
//! - [`histogram`]: atomic histograms and ingress-nginx's bucket layouts.
//! - [`series`]: one rule side's series, per-request label lookup, cardinality bounds.
//! - [`health`]: the table's hash and certificate expiry, the process from `/proc/self`.
//! - [`encode`]: the text exposition, from the snapshot in force.
//! - [`endpoint`]: the metrics listener's requests (`/metrics`, `/healthz`, `/readyz`).

pub mod encode;
pub mod endpoint;
pub mod health;
pub mod histogram;
pub mod series;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir_config::{BackendId, Route, RouteTable, Side};

use crate::conn::ConnStats;
use crate::record::Record;
use crate::snapshot::Snapshot;
use histogram::{Counter, LENGTH, SIZE};
use series::{RuleCounters, RuleHandles, SideSeries};

/// The `controller_class` label when none is given.
pub const DEFAULT_CONTROLLER_CLASS: &str = "weir.dev/ingress-controller";

/// How metrics are labelled.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// `controller_namespace`: the pod's namespace (`POD_NAMESPACE`), `-` when unknown.
    pub controller_namespace: String,
    /// `controller_pod`: the pod's name (`POD_NAME`, else `HOSTNAME`), `-` when unknown.
    pub controller_pod: String,
    /// `controller_class`: the IngressClass controller name weir answers for.
    pub controller_class: String,
    /// Label `status` with the class (`2xx`) instead of the code (`200`).
    pub status_class: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            controller_namespace: "-".into(),
            controller_pod: "-".into(),
            controller_class: DEFAULT_CONTROLLER_CLASS.into(),
            status_class: false,
        }
    }
}

impl MetricsSettings {
    /// Settings with the pod identity read from the environment, as the Kubernetes downward
    /// API provides it (`POD_NAMESPACE`, `POD_NAME`). ingress-nginx refuses to start without
    /// them; weir labels `-` instead (and tries `HOSTNAME`, which is the pod name in a pod).
    pub fn from_env(controller_class: String, status_class: bool) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        MetricsSettings {
            controller_namespace: var("POD_NAMESPACE").unwrap_or_else(|| "-".into()),
            controller_pod: var("POD_NAME").or_else(|| var("HOSTNAME")).unwrap_or_else(|| "-".into()),
            controller_class,
            status_class,
        }
    }
}

/// The metrics registry of one weir instance.
pub struct Metrics {
    pub settings: MetricsSettings,
    /// Escaped constant labels, written into every weir and ingress-nginx sample.
    pub(crate) const_labels: Box<str>,
    pub(crate) reloads_ok: Counter,
    pub(crate) reloads_rejected: Counter,
    /// Access-log lines dropped because the writer was behind (shared with the log).
    pub access_log_dropped: Arc<Counter>,
    /// Endpoints ejected after a failed attempt (shared with the pools).
    pub upstream_ejections: Arc<Counter>,
    /// Mirror copies by what became of them (shared with the mirror).
    pub mirror: Arc<crate::mirror::MirrorStats>,
    pub(crate) process: prometheus::process_collector::ProcessCollector,
    /// Client connections by state, kept by the data listeners.
    pub(crate) conns: Arc<ConnStats>,
    /// Whether the last table pushed or reloaded was accepted (false until one is).
    pub(crate) last_reload_ok: AtomicBool,
}

impl Metrics {
    pub fn new(settings: MetricsSettings) -> Self {
        let const_labels = format!(
            "controller_class=\"{}\",controller_namespace=\"{}\",controller_pod=\"{}\"",
            escape(&settings.controller_class),
            escape(&settings.controller_namespace),
            escape(&settings.controller_pod),
        );
        Metrics {
            settings,
            const_labels: const_labels.into(),
            reloads_ok: Counter::default(),
            reloads_rejected: Counter::default(),
            access_log_dropped: Arc::default(),
            upstream_ejections: Arc::default(),
            mirror: Arc::default(),
            process: prometheus::process_collector::ProcessCollector::for_self(),
            conns: Arc::default(),
            last_reload_ok: AtomicBool::new(false),
        }
    }

    /// Resolve every rule's handles for `table`, carrying the series of rules whose label
    /// identity is unchanged from `previous` (the snapshot `table` replaces): a swap keeps
    /// their counters, and rules that are gone leave the output with the swap. Call once
    /// per table about to be installed (under the install lock), after every check that
    /// could refuse it.
    pub fn prepare(&self, table: &RouteTable, previous: &Snapshot) -> Vec<RuleHandles> {
        let mut sides: HashMap<(String, String), Arc<SideSeries>> = HashMap::new();
        let mut rules: HashMap<String, Arc<RuleCounters>> = HashMap::new();
        for (route, h) in previous.table.routes().iter().zip(&previous.metrics) {
            for side in std::iter::once(&h.stable).chain(&h.canary).chain(&h.destinations) {
                sides.insert((route.host.clone(), side.labels.to_string()), side.clone());
            }
            rules.insert(h.rule.labels.to_string(), h.rule.clone());
        }
        table
            .routes()
            .iter()
            .map(|route| {
                let mut side = |canary: Option<&BackendId>| {
                    let key = (route.host.clone(), side_labels(route, canary));
                    let series = Arc::new(SideSeries::new(key.1.clone(), &route.host));
                    sides.entry(key).or_insert(series).clone()
                };
                let stable = side(None);
                let canary = route.canary.as_ref().map(|c| side(Some(&c.backend.id)));
                let destinations = route
                    .canary
                    .iter()
                    .flat_map(|c| &c.destinations)
                    .map(|d| side(Some(&d.backend.id)))
                    .collect();
                let labels = rule_labels(route);
                let counters = RuleCounters { labels: labels.clone().into(), fallbacks: Counter::default() };
                let rule = rules.entry(labels).or_insert_with(|| Arc::new(counters)).clone();
                RuleHandles { stable, canary, destinations, rule }
            })
            .collect()
    }

    /// A table was accepted and is now in force.
    pub fn config_applied(&self) {
        self.reloads_ok.inc();
        self.last_reload_ok.store(true, Ordering::Relaxed);
    }

    /// A pushed or reloaded table was refused (it did not parse or validate).
    pub fn config_rejected(&self) {
        self.reloads_rejected.inc();
        self.last_reload_ok.store(false, Ordering::Relaxed);
    }

    /// Record one finished request that took `elapsed` and sent `bytes_sent` bytes.
    /// Requests that matched no rule (unknown host, unrouted path) are not recorded, as in
    /// ingress-nginx: their labels would be client-chosen.
    pub fn record(&self, rec: &Record, bytes_sent: u64, elapsed: Duration) {
        let Some(handles) = rec.route.and_then(|i| rec.snapshot.metrics.get(i)) else { return };
        if rec.fell_back {
            handles.rule.fallbacks.inc();
        }
        let side = match (rec.side, &handles.canary) {
            (Some(Side::Canary), Some(canary)) => canary,
            (Some(Side::Destination(i)), _) => {
                handles.destinations.get(usize::from(i)).unwrap_or(&handles.stable)
            }
            _ => &handles.stable,
        };
        let status = if self.settings.status_class { rec.status / 100 } else { rec.status };
        let host = if rec.host.is_empty() { "-" } else { rec.host.as_str() };
        let request_size = rec.request_size();
        // Upstream timings only when exactly one upstream exchange answered.
        let upstream = rec.upstream.as_ref().filter(|u| u.attempts == 1);
        side.with(host, &rec.method, status, rec.fault, |s| {
            s.requests.inc();
            s.request_duration.observe_duration(elapsed);
            s.request_size.observe(&LENGTH, request_size);
            s.response_size.observe(&LENGTH, bytes_sent);
            s.bytes_sent.observe(&SIZE, bytes_sent);
            if let Some(up) = upstream {
                s.connect_duration.observe_duration(up.connect);
                s.header_duration.observe_duration(up.header);
                if let Some(response) = up.response {
                    s.response_duration.observe_duration(response);
                }
            }
        });
    }
}

/// `namespace,ingress,service,path,canary` of a rule side: the main rule's identity, and
/// the canary's upstream name when it is the canary side.
fn side_labels(route: &Route, canary: Option<&BackendId>) -> String {
    let id = &route.stable.id;
    format!(
        "namespace=\"{}\",ingress=\"{}\",service=\"{}\",path=\"{}\",canary=\"{}\"",
        escape(&id.namespace),
        escape(&id.ingress),
        escape(&id.service),
        escape(path_label(route)),
        canary.map(|c| escape(&c.upstream_name())).unwrap_or_default(),
    )
}

/// `namespace,ingress,host,path,path_type,canary` of a rule for weir's per-rule families.
fn rule_labels(route: &Route) -> String {
    let id = &route.stable.id;
    format!(
        "namespace=\"{}\",ingress=\"{}\",host=\"{}\",path=\"{}\",path_type=\"{}\",canary=\"{}\"",
        escape(&id.namespace),
        escape(&id.ingress),
        escape(&route.host),
        escape(path_label(route)),
        route.path_type.as_str(),
        route.canary.as_ref().map(|c| escape(&c.backend.id.upstream_name())).unwrap_or_default(),
    )
}

fn path_label(route: &Route) -> &str {
    if route.path.is_empty() {
        "/"
    } else {
        &route.path
    }
}

/// A label value escaped for the text format (`\`, `"`, newline).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}
