//! The Prometheus text exposition (format 0.0.4) of weir's metrics.
//!
//! Each family is written whole (HELP, TYPE, then every sample) because the format requires
//! a family's samples to be contiguous. Everything is read from the snapshot in force at
//! scrape time: the request series through its rule handles, weir's per-rule and config
//! gauges from its table.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use prometheus::core::Collector;
use prometheus::Encoder;

use super::health::ProcessSample;
use super::histogram::{Buckets, Histogram, LENGTH, SIZE, TIME};
use super::series::{RequestSeries, SideSeries};
use super::{escape, Metrics};
use crate::snapshot::Snapshot;

/// The side series of `snapshot`'s rules, each once, in a stable order (rule host, then
/// labels).
fn sides_of(snapshot: &Snapshot) -> Vec<Arc<SideSeries>> {
    let mut sides = BTreeMap::new();
    for (route, h) in snapshot.table.routes().iter().zip(&snapshot.metrics) {
        for side in std::iter::once(&h.stable).chain(&h.canary).chain(&h.destinations) {
            sides.entry((route.host.as_str(), &*side.labels)).or_insert_with(|| side.clone());
        }
    }
    sides.into_values().collect()
}

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const PREFIX: &str = "nginx_ingress_controller_";

type Pick = fn(&RequestSeries) -> &Histogram;

/// ingress-nginx's histogram families: name, help, buckets, field.
const HISTOGRAMS: [(&str, &str, &Buckets, Pick); 7] = [
    (
        "request_duration_seconds",
        "The request processing time in seconds: from the first byte read from the client to the last byte sent to it",
        &TIME,
        |s| &s.request_duration,
    ),
    (
        "response_duration_seconds",
        "The time spent receiving the response from the upstream server, in seconds",
        &TIME,
        |s| &s.response_duration,
    ),
    (
        "header_duration_seconds",
        "The time spent receiving the first header from the upstream server, in seconds",
        &TIME,
        |s| &s.header_duration,
    ),
    (
        "connect_duration_seconds",
        "The time spent establishing a connection with the upstream server, in seconds (0 for a reused connection)",
        &TIME,
        |s| &s.connect_duration,
    ),
    (
        "request_size",
        "The request length in bytes (including request line, header, and request body)",
        &LENGTH,
        |s| &s.request_size,
    ),
    ("response_size", "The response length in bytes (including status line, header, and body)", &LENGTH, |s| {
        &s.response_size
    }),
    ("bytes_sent", "DEPRECATED The number of bytes sent to a client", &SIZE, |s| &s.bytes_sent),
];

/// Builds the exposition text.
struct Out<'a> {
    buf: String,
    consts: &'a str,
}

impl Out<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = write!(self.buf, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    /// One sample; `labels` are already escaped `k="v"` lists, joined after the constants.
    fn sample(&mut self, name: &str, labels: &[&str], value: impl std::fmt::Display) {
        self.buf.push_str(name);
        self.buf.push('{');
        self.buf.push_str(self.consts);
        for l in labels.iter().filter(|l| !l.is_empty()) {
            self.buf.push(',');
            self.buf.push_str(l);
        }
        let _ = writeln!(self.buf, "}} {value}");
    }

    /// One sample without the constant labels (`labels` already escaped and joined).
    fn sample_bare(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.buf, "{name}{{{labels}}} {value}");
    }

    /// One `_bucket` sample: `labels` then `le`.
    fn bucket(&mut self, name: &str, labels: &str, le: &str, value: u64) {
        let _ = writeln!(self.buf, "{name}{{{},{labels},le=\"{le}\"}} {value}", self.consts);
    }
}

impl Metrics {
    /// The whole exposition: request families, weir's families, process metrics.
    pub fn encode(&self, snapshot: &Snapshot) -> String {
        let mut out = Out { buf: String::with_capacity(16 << 10), consts: &self.const_labels };
        self.encode_requests(&mut out, &sides_of(snapshot));
        self.encode_weir(&mut out, snapshot);
        self.encode_health(&mut out, snapshot);
        let mut text = out.buf;
        let mut process = Vec::new();
        // Process metrics are best effort: /proc may be unreadable in odd sandboxes.
        if prometheus::TextEncoder::new().encode(&self.process.collect(), &mut process).is_ok() {
            text.push_str(&String::from_utf8_lossy(&process));
        }
        text
    }

    fn encode_requests(&self, out: &mut Out<'_>, sides: &[Arc<SideSeries>]) {
        // Read every series once (one consistent copy across families), with its labels
        // joined once, then write family by family.
        let status_class = self.settings.status_class;
        let mut rows = Vec::new();
        for side in sides {
            side.for_each(|host, method, status, fault, s| {
                let status = if status_class { format!("{status}xx") } else { status.to_string() };
                let labels = format!(
                    "{},host=\"{}\",method=\"{}\",status=\"{status}\",fault=\"{}\"",
                    side.labels,
                    escape(host),
                    escape(method),
                    fault.as_str()
                );
                let hists = HISTOGRAMS.map(|(_, _, buckets, pick)| pick(s).read(buckets));
                rows.push((labels, s.requests.get(), hists));
            });
        }
        let name = format!("{PREFIX}requests");
        out.header(&name, "counter", "The total number of client requests");
        for (labels, requests, _) in &rows {
            out.sample(&name, &[labels], requests);
        }
        for (f, (family, help, buckets, _)) in HISTOGRAMS.iter().enumerate() {
            let name = format!("{PREFIX}{family}");
            let (bucket, sum, count) =
                (format!("{name}_bucket"), format!("{name}_sum"), format!("{name}_count"));
            out.header(&name, "histogram", help);
            for (labels, _, hists) in &rows {
                let (cumulative, total) = &hists[f];
                for (i, le) in buckets.le.iter().chain(["+Inf"].iter()).enumerate() {
                    out.bucket(&bucket, labels, le, cumulative[i]);
                }
                out.sample(&sum, &[labels], total);
                out.sample(&count, &[labels], cumulative[buckets.bounds.len()]);
            }
        }
    }

    fn encode_weir(&self, out: &mut Out<'_>, snapshot: &Snapshot) {
        let routes = snapshot.table.routes();
        let with_canary: Vec<_> = routes
            .iter()
            .zip(&snapshot.metrics)
            .filter_map(|(r, h)| r.canary.as_ref().map(|c| (&c.policy, &*h.rule.labels)))
            .collect();
        out.header("weir_canary_weight", "gauge", "The canary weight applied to a rule (canary-weight)");
        for (policy, labels) in &with_canary {
            out.sample("weir_canary_weight", &[labels], policy.weight);
        }
        out.header(
            "weir_canary_weight_denominator",
            "gauge",
            "The canary weight denominator applied to a rule (canary-weight-total)",
        );
        for (policy, labels) in &with_canary {
            out.sample("weir_canary_weight_denominator", &[labels], policy.total);
        }
        out.header(
            "weir_canary_weight_ratio",
            "gauge",
            "The share of weighted decisions sent to the canary: weight / total, at most 1",
        );
        for (policy, labels) in &with_canary {
            let ratio = (f64::from(policy.weight) / f64::from(policy.total.max(1))).min(1.0);
            out.sample("weir_canary_weight_ratio", &[labels], ratio);
        }
        out.header(
            "weir_canary_fallbacks_total",
            "counter",
            "Weighted decisions sent to the other side because the chosen one had no ready endpoint",
        );
        let mut seen = HashSet::new();
        for h in snapshot.metrics.iter().filter(|h| h.canary.is_some()) {
            if seen.insert(&*h.rule.labels) {
                out.sample("weir_canary_fallbacks_total", &[&h.rule.labels], h.rule.fallbacks.get());
            }
        }

        out.header("weir_backend_ready_endpoints", "gauge", "Ready endpoints of a backend");
        let mut seen = HashSet::new();
        for b in snapshot.table.backends() {
            if seen.insert(&b.id) {
                let labels = format!(
                    "namespace=\"{}\",ingress=\"{}\",service=\"{}\",port=\"{}\"",
                    escape(&b.id.namespace),
                    escape(&b.id.ingress),
                    escape(&b.id.service),
                    escape(&b.id.port)
                );
                out.sample("weir_backend_ready_endpoints", &[&labels], b.endpoints.len());
            }
        }

        out.header("weir_config_info", "gauge", "The route table in force: its version label (always 1)");
        let version = format!("version=\"{}\"", escape(snapshot.table.version()));
        out.sample("weir_config_info", &[&version], 1);
        out.header("weir_config_generation", "gauge", "Tables installed since start (0: none yet)");
        out.sample("weir_config_generation", &[], snapshot.generation);
        out.header(
            "weir_config_last_applied_timestamp_seconds",
            "gauge",
            "When the table in force was applied, in seconds since the Unix epoch",
        );
        let applied = snapshot.applied_at.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        out.sample("weir_config_last_applied_timestamp_seconds", &[], applied);
        out.header("weir_config_reloads_total", "counter", "Route tables pushed or reloaded, by outcome");
        out.sample("weir_config_reloads_total", &["result=\"ok\""], self.reloads_ok.get());
        out.sample("weir_config_reloads_total", &["result=\"rejected\""], self.reloads_rejected.get());
        out.header(
            "weir_access_log_dropped_total",
            "counter",
            "Access-log lines dropped because the log writer was behind",
        );
        out.sample("weir_access_log_dropped_total", &[], self.access_log_dropped.get());
        out.header(
            "weir_upstream_ejections_total",
            "counter",
            "Endpoints taken out of rotation for 10 s after a failed attempt (passive health)",
        );
        out.sample("weir_upstream_ejections_total", &[], self.upstream_ejections.get());
        out.header(
            "weir_mirror_requests_total",
            "counter",
            "Requests a mirror route selected for a copy to the canary",
        );
        out.sample("weir_mirror_requests_total", &[], self.mirror.requests.get());
        out.header(
            "weir_mirror_copies_total",
            "counter",
            "Mirror copies of requests to a canary (mirror routes), by what became of them",
        );
        for (result, n) in self.mirror.results() {
            out.sample("weir_mirror_copies_total", &[&format!("result=\"{result}\"")], n);
        }
        encode_guards(out, snapshot);
        encode_limits(out, snapshot);
    }

    /// ingress-nginx's controller-health families (its controller, nginx status and nginx
    /// process collectors), as weir means them (README, "ingress-nginx's dashboard").
    fn encode_health(&self, out: &mut Out<'_>, snapshot: &Snapshot) {
        let name = |family: &str| format!("{PREFIX}{family}");
        let loaded = snapshot.is_loaded();

        let n = name("config_hash");
        out.header(
            &n,
            "gauge",
            "Running configuration hash actually running (weir: of the route table in force)",
        );
        out.sample(&n, &[], if loaded { snapshot.health.config_hash } else { 0 });
        let n = name("config_last_reload_successful");
        out.header(&n, "gauge", "Whether the last configuration reload attempt was successful");
        out.sample(&n, &[], u8::from(self.last_reload_ok.load(Ordering::Relaxed)));
        let n = name("config_last_reload_successful_timestamp_seconds");
        out.header(&n, "gauge", "Timestamp of the last successful configuration reload.");
        let applied = snapshot.applied_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        out.sample(&n, &[], if loaded { applied } else { 0 });
        let n = name("success");
        out.header(
            &n,
            "counter",
            "Cumulative number of Ingress controller reload operations (weir: route tables accepted)",
        );
        out.sample(&n, &[], self.reloads_ok.get());
        let n = name("errors");
        out.header(&n, "counter", "Cumulative number of Ingress controller errors during reload operations (weir: route tables refused)");
        out.sample(&n, &[], self.reloads_rejected.get());

        // As in ingress-nginx: no controller_* labels, `class` instead.
        let n = name("ssl_expire_time_seconds");
        out.header(&n, "gauge", "Number of seconds since 1970 to the SSL Certificate expire.");
        let class = escape(&self.settings.controller_class);
        for c in &snapshot.health.certificates {
            let labels = format!(
                "namespace=\"{}\",class=\"{class}\",host=\"{}\",secret_name=\"{}\",identifier=\"{}\"",
                escape(&c.namespace),
                escape(&c.host),
                escape(&c.secret_name),
                escape(&c.identifier),
            );
            out.sample_bare(&n, &labels, c.not_after);
        }

        let c = self.conns.counts();
        let n = name("nginx_process_connections");
        out.header(
            &n,
            "gauge",
            "current number of client connections with state {active, reading, writing, waiting}",
        );
        for (state, v) in
            [("active", c.active), ("reading", c.reading), ("writing", c.writing), ("waiting", c.waiting)]
        {
            out.sample(&n, &[&format!("state=\"{state}\"")], v);
        }
        let n = name("nginx_process_connections_total");
        out.header(&n, "counter", "total number of connections with state {accepted, handled}");
        out.sample(&n, &["state=\"accepted\""], c.accepted);
        out.sample(&n, &["state=\"handled\""], c.handled);
        let n = name("nginx_process_requests_total");
        out.header(&n, "counter", "total number of client requests");
        out.sample(&n, &[], c.requests);
        let n = "weir_client_connections_released";
        out.header(n, "gauge", "Idle HTTP/1.1 client connections holding no buffer (among the waiting)");
        out.sample(n, &[], c.released);

        // Best effort, like the process_* families: /proc may be unreadable.
        let Some(p) = ProcessSample::read() else { return };
        let gauges: [(&str, &str, f64); 5] = [
            ("num_procs", "number of processes", 1.0),
            ("resident_memory_bytes", "number of bytes of memory in use", p.resident_bytes as f64),
            ("virtual_memory_bytes", "number of bytes of memory in use", p.virtual_bytes as f64),
            ("oldest_start_time_seconds", "start time in seconds since 1970/01/01", p.start_time),
            ("cpu_seconds_total", "Cpu usage in seconds", p.cpu_seconds),
        ];
        for (family, help, v) in gauges {
            let n = name(&format!("nginx_process_{family}"));
            let kind = if family.ends_with("_total") { "counter" } else { "gauge" };
            out.header(&n, kind, help);
            out.sample(&n, &[], v);
        }
        if let Some((read, written)) = p.io {
            for (family, help, v) in [
                ("read_bytes_total", "number of bytes read", read),
                ("write_bytes_total", "number of bytes written", written),
            ] {
                let n = name(&format!("nginx_process_{family}"));
                out.header(&n, "counter", help);
                out.sample(&n, &[], v);
            }
        }
    }
}

/// The canary guards of the table in force (`guard.rs`): whether each has tripped, and its
/// window's counts.
/// `weir_rate_limited_total{zone,limit}`: requests a rule's rate limits refused.
fn encode_limits(out: &mut Out<'_>, snapshot: &Snapshot) {
    use crate::ratelimit::Limited;
    out.header(
        "weir_rate_limited_total",
        "counter",
        "Requests refused by a rate limit (limit-rps, limit-rpm, limit-connections), by zone and limit",
    );
    for zone in crate::ratelimit::distinct(&snapshot.limits) {
        for which in [Limited::PerSecond, Limited::PerMinute, Limited::Connections] {
            let labels = format!("zone=\"{}\",limit=\"{}\"", escape(zone.name()), which.as_str());
            out.sample("weir_rate_limited_total", &[&labels], zone.limited(which));
        }
    }
}

fn encode_guards(out: &mut Out<'_>, snapshot: &Snapshot) {
    let guards = crate::guard::distinct(&snapshot.guards);
    let labels: Vec<String> = guards
        .iter()
        .map(|g| {
            let k = &g.policy.key;
            format!(
                "namespace=\"{}\",guard=\"{}\",revision=\"{}\"",
                escape(&k.namespace),
                escape(&k.name),
                escape(&k.revision)
            )
        })
        .collect();
    out.header(
        "weir_canary_guard_tripped",
        "gauge",
        "1 when a canary guard has tripped (its canary gets no weighted traffic), 0 while it watches",
    );
    for (g, l) in guards.iter().zip(&labels) {
        out.sample("weir_canary_guard_tripped", &[l], u8::from(g.is_tripped()));
    }
    let counts: Vec<(u64, u64)> = guards.iter().map(|g| g.window_counts()).collect();
    out.header("weir_canary_guard_window_answers", "gauge", "Canary answers in a guard's window");
    for (c, l) in counts.iter().zip(&labels) {
        out.sample("weir_canary_guard_window_answers", &[l], c.0);
    }
    out.header(
        "weir_canary_guard_window_faults",
        "gauge",
        "Canary answers in a guard's window that were backend faults",
    );
    for (c, l) in counts.iter().zip(&labels) {
        out.sample("weir_canary_guard_window_faults", &[l], c.1);
    }
}
