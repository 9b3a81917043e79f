//! Exposition checks: families, labels, buckets, swaps, bounds — without sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use weir_config::{Side, TableDoc};

use super::series::MAX_HOSTS_PER_RULE;
use super::{Metrics, MetricsSettings};
use crate::pool::{PoolSettings, Pools};
use crate::record::{Fault, Record, UpstreamExchange};
use crate::routes::Routes;
use crate::snapshot::Snapshot;
use crate::upstream_tls::UpstreamTls;

use crate::testkit::exposition::{find, parse, sum, types};

const REQUESTS: &str = "nginx_ingress_controller_requests";

fn table(version: &str, with_admin_rule: bool) -> TableDoc {
    let admin = if with_admin_rule {
        r#"
      - path: /admin
        backend: { namespace: prod, ingress: admin, service: admin, port: 8080, endpoints: ["127.0.0.1:9"] }"#
    } else {
        ""
    };
    let yaml = format!(
        r#"schema: weir/v1
version: {version}
hosts:
  - host: api.example.com
    rules:
      - path: /
        backend: {{ namespace: prod, ingress: sample-api, service: sample-api-stable, port: 80, endpoints: ["127.0.0.1:9"] }}
        canary:
          backend: {{ namespace: prod, ingress: sample-api-canary, service: sample-api-canary, port: 80, endpoints: ["127.0.0.1:10"] }}
          weight: 20{admin}
  - host: "*.tenants.example.com"
    rules:
      - path: /
        backend: {{ namespace: t, ingress: tenants, service: tenants, port: http, endpoints: ["127.0.0.1:11"] }}
"#
    );
    serde_yaml_ng::from_str(&yaml).expect("test table parses")
}

fn setup(settings: MetricsSettings) -> (Arc<Metrics>, Routes) {
    let metrics = Arc::new(Metrics::new(settings));
    let routes = Routes::with_metrics(
        Pools::new(PoolSettings::default(), 1, UpstreamTls::new().expect("tls config")),
        Some(metrics.clone()),
    );
    routes.install(table("v1", true)).expect("valid table");
    (metrics, routes)
}

/// A finished request of `snapshot`'s route `route` (by path), served by `side`.
fn request(
    snapshot: &Arc<Snapshot>,
    route: Option<usize>,
    side: Side,
    host: &str,
    status: u16,
) -> Box<Record> {
    let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    Box::new(Record {
        started: Instant::now() - Duration::from_millis(60),
        snapshot: snapshot.clone(),
        route,
        side: Some(side),
        fell_back: false,
        client: "127.0.0.1:5000".parse().expect("addr"),
        host: host.into(),
        method: Method::GET,
        uri: http::uri::PathAndQuery::from_static("/x?y=1"),
        request_id: None,
        status,
        fault: Fault::of_relayed(status),
        request_size: 55,
        request_body_counted: None,
        response_head_size: 40,
        upstream: Some(UpstreamExchange {
            addr,
            status,
            connect: Duration::ZERO,
            header: Duration::from_millis(30),
            response: Some(Duration::from_millis(50)),
            attempts: 1,
            sent_at: Instant::now(),
        }),
        cors: None,
        limit_slot: None,
        sticky: None,
        preferred_endpoint: None,
    })
}

fn route_index(snapshot: &Snapshot, path: &str, host: &str) -> Option<usize> {
    snapshot.table.routes().iter().position(|r| r.path == path && r.host == host)
}

fn record(metrics: &Metrics, rec: Box<Record>) {
    metrics.record(&rec, 1234, rec.started.elapsed());
}

#[test]
fn every_request_family_has_ingress_nginx_types_labels_and_buckets() {
    let (metrics, routes) = setup(MetricsSettings::default());
    let snap = routes.load();
    let root = route_index(&snap, "/", "api.example.com");
    record(&metrics, request(&snap, root, Side::Stable, "api.example.com", 200));
    let text = metrics.encode(&routes.load());
    let types = types(&text);
    let samples = parse(&text);

    assert_eq!(types[REQUESTS], "counter");
    let label_names: Vec<&str> = vec![
        "canary",
        "controller_class",
        "controller_namespace",
        "controller_pod",
        "fault",
        "host",
        "ingress",
        "method",
        "namespace",
        "path",
        "service",
        "status",
    ];
    let req = find(&samples, REQUESTS, &[]);
    assert_eq!(req.len(), 1);
    assert_eq!(req[0].labels.keys().map(String::as_str).collect::<Vec<_>>(), label_names);
    let l = &req[0].labels;
    assert_eq!(
        (&*l["namespace"], &*l["ingress"], &*l["service"], &*l["path"], &*l["canary"]),
        ("prod", "sample-api", "sample-api-stable", "/", "")
    );
    assert_eq!((&*l["host"], &*l["method"], &*l["status"]), ("api.example.com", "GET", "200"));
    assert_eq!(l["controller_class"], "weir.dev/ingress-controller");

    let time = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"];
    let length = ["10", "20", "30", "40", "50", "60", "70", "80", "90", "100", "+Inf"];
    let size = ["10", "100", "1000", "10000", "100000", "1e+06", "1e+07", "+Inf"];
    let families: [(&str, &[&str]); 7] = [
        ("request_duration_seconds", &time),
        ("response_duration_seconds", &time),
        ("header_duration_seconds", &time),
        ("connect_duration_seconds", &time),
        ("request_size", &length),
        ("response_size", &length),
        ("bytes_sent", &size),
    ];
    for (family, les) in families {
        let name = format!("nginx_ingress_controller_{family}");
        assert_eq!(types[&name], "histogram", "{name}");
        let buckets = find(&samples, &format!("{name}_bucket"), &[]);
        let got: Vec<&str> = buckets.iter().map(|s| s.labels["le"].as_str()).collect();
        assert_eq!(got, les, "{name} buckets");
        for b in &buckets {
            let mut names: Vec<&str> = b.labels.keys().map(String::as_str).collect();
            names.retain(|n| *n != "le");
            assert_eq!(names, label_names, "{name} labels");
        }
        assert_eq!(sum(&samples, &format!("{name}_count"), &[]), 1.0, "{name} count");
    }
    // The values land where the request put them.
    let le = |family: &str, le: &str| {
        sum(&samples, &format!("nginx_ingress_controller_{family}_bucket"), &[("le", le)])
    };
    assert_eq!(le("request_duration_seconds", "0.05"), 0.0);
    assert_eq!(le("request_duration_seconds", "0.1"), 1.0);
    assert_eq!(le("header_duration_seconds", "0.025"), 0.0);
    assert_eq!(le("header_duration_seconds", "0.05"), 1.0);
    assert_eq!(le("connect_duration_seconds", "0.005"), 1.0, "a reused connection connects in 0 s");
    assert_eq!(le("request_size", "60"), 1.0);
    assert_eq!(le("request_size", "50"), 0.0);
    assert_eq!(le("bytes_sent", "1000"), 0.0);
    assert_eq!(le("bytes_sent", "10000"), 1.0);
    assert_eq!(le("response_size", "100"), 0.0);
    assert_eq!(le("response_size", "+Inf"), 1.0);
    assert_eq!(sum(&samples, "nginx_ingress_controller_bytes_sent_sum", &[]), 1234.0);
}

#[test]
fn the_canary_label_names_the_canary_upstream_and_other_labels_the_main_rule() {
    let (metrics, routes) = setup(MetricsSettings::default());
    let snap = routes.load();
    let root = route_index(&snap, "/", "api.example.com");
    record(&metrics, request(&snap, root, Side::Canary, "api.example.com", 200));
    record(&metrics, request(&snap, root, Side::Stable, "api.example.com", 200));
    let samples = parse(&metrics.encode(&snap));
    let canary = find(&samples, REQUESTS, &[("canary", "prod-sample-api-canary-80")]);
    assert_eq!(canary.len(), 1);
    let l = &canary[0].labels;
    assert_eq!(
        (&*l["ingress"], &*l["service"], &*l["namespace"]),
        ("sample-api", "sample-api-stable", "prod")
    );
    assert_eq!(find(&samples, REQUESTS, &[("canary", "")]).len(), 1);
}

#[test]
fn requests_that_matched_no_rule_are_not_recorded() {
    let (metrics, routes) = setup(MetricsSettings::default());
    let snap = routes.load();
    record(&metrics, request(&snap, None, Side::Stable, "unknown.example.org", 404));
    let samples = parse(&metrics.encode(&snap));
    assert!(find(&samples, REQUESTS, &[]).is_empty());
    assert!(!samples.iter().any(|s| s.labels.get("host").is_some_and(|h| h == "unknown.example.org")));
}

#[test]
fn status_class_mode_labels_the_class_and_merges_codes() {
    let (metrics, routes) = setup(MetricsSettings { status_class: true, ..Default::default() });
    let snap = routes.load();
    let root = route_index(&snap, "/", "api.example.com");
    for status in [200, 201, 204, 503] {
        record(&metrics, request(&snap, root, Side::Stable, "api.example.com", status));
    }
    let samples = parse(&metrics.encode(&snap));
    assert_eq!(sum(&samples, REQUESTS, &[("status", "2xx")]), 3.0);
    assert_eq!(sum(&samples, REQUESTS, &[("status", "5xx")]), 1.0);
    assert!(find(&samples, REQUESTS, &[("status", "200")]).is_empty());
}

#[test]
fn a_swap_keeps_counters_of_unchanged_rules_and_drops_removed_ones() {
    let (metrics, routes) = setup(MetricsSettings::default());
    let snap = routes.load();
    let root = route_index(&snap, "/", "api.example.com");
    let admin = route_index(&snap, "/admin", "api.example.com");
    record(&metrics, request(&snap, root, Side::Stable, "api.example.com", 200));
    record(&metrics, request(&snap, admin, Side::Stable, "api.example.com", 200));
    let before = parse(&metrics.encode(&snap));
    assert_eq!(sum(&before, REQUESTS, &[("ingress", "admin")]), 1.0);

    // v2 drops /admin and reorders nothing else: the root rule keeps its count.
    routes.install(table("v2", false)).expect("valid table");
    let next = routes.load();
    let root2 = route_index(&next, "/", "api.example.com");
    record(&metrics, request(&next, root2, Side::Stable, "api.example.com", 200));
    // A request still in flight on the old table lands in the same (carried) series.
    record(&metrics, request(&snap, root, Side::Stable, "api.example.com", 200));
    let after = parse(&metrics.encode(&next));
    assert_eq!(sum(&after, REQUESTS, &[("ingress", "sample-api"), ("canary", "")]), 3.0);
    assert!(find(&after, REQUESTS, &[("ingress", "admin")]).is_empty(), "removed rule is gone");
    assert!(find(&after, "weir_backend_ready_endpoints", &[("ingress", "admin")]).is_empty());
    assert_eq!(sum(&after, "weir_config_info", &[("version", "v2")]), 1.0);
    assert!(find(&after, "weir_config_info", &[("version", "v1")]).is_empty());
    assert_eq!(sum(&after, "weir_config_generation", &[]), 2.0);
    assert_eq!(sum(&after, "weir_config_reloads_total", &[("result", "ok")]), 2.0);
}

#[test]
fn rejected_tables_are_counted_and_change_nothing() {
    let (metrics, routes) = setup(MetricsSettings::default());
    let mut bad = table("v9", true);
    bad.schema = "weir/v0".into();
    assert!(routes.install(bad).is_err());
    routes.count_rejected();
    let samples = parse(&metrics.encode(&routes.load()));
    assert_eq!(sum(&samples, "weir_config_reloads_total", &[("result", "rejected")]), 2.0);
    assert_eq!(sum(&samples, "weir_config_info", &[("version", "v1")]), 1.0);
}

#[test]
fn weights_and_fallbacks_are_exposed_per_rule() {
    let (metrics, routes) = setup(MetricsSettings::default());
    let snap = routes.load();
    let root = route_index(&snap, "/", "api.example.com");
    let mut rec = request(&snap, root, Side::Canary, "api.example.com", 200);
    rec.fell_back = true;
    record(&metrics, rec);
    let samples = parse(&metrics.encode(&snap));
    let rule = [("ingress", "sample-api"), ("host", "api.example.com"), ("path", "/")];
    assert_eq!(sum(&samples, "weir_canary_weight", &rule), 20.0);
    assert_eq!(sum(&samples, "weir_canary_weight_denominator", &rule), 100.0);
    assert_eq!(sum(&samples, "weir_canary_weight_ratio", &rule), 0.2);
    assert_eq!(sum(&samples, "weir_canary_fallbacks_total", &rule), 1.0);
    assert_eq!(sum(&samples, "weir_backend_ready_endpoints", &[("service", "sample-api-canary")]), 1.0);
}

#[test]
fn upstream_timings_are_observed_only_for_one_upstream_exchange() {
    let (metrics, routes) = setup(MetricsSettings::default());
    let snap = routes.load();
    let root = route_index(&snap, "/", "api.example.com");
    let mut retried = request(&snap, root, Side::Stable, "api.example.com", 200);
    if let Some(up) = retried.upstream.as_mut() {
        up.attempts = 2;
    }
    record(&metrics, retried);
    let mut unfinished = request(&snap, root, Side::Stable, "api.example.com", 200);
    if let Some(up) = unfinished.upstream.as_mut() {
        up.response = None;
    }
    record(&metrics, unfinished);
    let mut local = request(&snap, root, Side::Stable, "api.example.com", 503);
    local.upstream = None;
    record(&metrics, local);
    let samples = parse(&metrics.encode(&snap));
    let count = |f: &str| sum(&samples, &format!("nginx_ingress_controller_{f}_count"), &[]);
    assert_eq!(count("request_duration_seconds"), 3.0);
    assert_eq!(count("header_duration_seconds"), 1.0);
    assert_eq!(count("connect_duration_seconds"), 1.0);
    assert_eq!(count("response_duration_seconds"), 0.0);
}

#[test]
fn hosts_past_the_bound_are_recorded_under_the_rule_host() {
    let (metrics, routes) = setup(MetricsSettings::default());
    let snap = routes.load();
    let tenants = route_index(&snap, "/", "*.tenants.example.com");
    for i in 0..MAX_HOSTS_PER_RULE + 10 {
        record(&metrics, request(&snap, tenants, Side::Stable, &format!("t{i}.tenants.example.com"), 200));
    }
    // A client naming the rule host literally shares the overflow series, never a duplicate.
    record(&metrics, request(&snap, tenants, Side::Stable, "*.tenants.example.com", 200));
    let samples = parse(&metrics.encode(&snap));
    let series = find(&samples, REQUESTS, &[("ingress", "tenants")]);
    assert_eq!(series.len(), MAX_HOSTS_PER_RULE + 1);
    assert_eq!(sum(&samples, REQUESTS, &[("host", "*.tenants.example.com")]), 11.0);
    assert_eq!(sum(&samples, REQUESTS, &[("host", "t0.tenants.example.com")]), 1.0);
}

#[test]
fn extension_methods_are_bounded_and_label_values_are_escaped() {
    let (metrics, routes) = setup(MetricsSettings::default());
    let snap = routes.load();
    let tenants = route_index(&snap, "/", "*.tenants.example.com");
    for i in 0..20 {
        let mut rec = request(&snap, tenants, Side::Stable, "a\"b\\.tenants.example.com", 200);
        rec.method = Method::from_bytes(format!("X{i}").as_bytes()).expect("token");
        record(&metrics, rec);
    }
    let samples = parse(&metrics.encode(&snap));
    assert_eq!(find(&samples, REQUESTS, &[("ingress", "tenants")]).len(), 9);
    assert_eq!(sum(&samples, REQUESTS, &[("method", "OTHER")]), 12.0);
    assert_eq!(sum(&samples, REQUESTS, &[("host", "a\"b\\.tenants.example.com")]), 20.0);
}

#[test]
fn the_fault_label_keeps_a_clients_400_apart_from_an_upstreams_and_the_status_as_sent() {
    let (metrics, routes) = setup(MetricsSettings::default());
    let snap = routes.load();
    let root = route_index(&snap, "/", "api.example.com");
    // The upstream's own 400 (no fault), weir's 400 for a malformed body (the client's), a
    // 499 for a client that went away, an upstream 503 (the backend's).
    for (status, fault) in
        [(400, Fault::None), (400, Fault::Client), (499, Fault::Client), (503, Fault::Backend)]
    {
        let mut rec = request(&snap, root, Side::Canary, "api.example.com", status);
        rec.fault = fault;
        record(&metrics, rec);
    }
    let samples = parse(&metrics.encode(&routes.load()));
    let count = |status: &str, fault: &str| sum(&samples, REQUESTS, &[("status", status), ("fault", fault)]);
    assert_eq!((count("400", ""), count("400", "client")), (1.0, 1.0));
    assert_eq!((count("499", "client"), count("503", "backend")), (1.0, 1.0));
    assert_eq!(find(&samples, REQUESTS, &[]).len(), 4, "one series per (status, fault)");
    // Every family carries the label, histograms included.
    let buckets =
        find(&samples, "nginx_ingress_controller_request_duration_seconds_count", &[("fault", "client")]);
    assert_eq!(buckets.iter().map(|s| s.value).sum::<f64>(), 2.0);
}

/// A table serving `shop.example.com` with a certificate expiring at `not_after` (serial
/// 4242), from the Secret `shop/shop-tls`, plus a default certificate without a source.
fn tls_table(version: &str, not_after: (i32, u8, u8)) -> TableDoc {
    let mut params = rcgen::CertificateParams::new(vec!["shop.example.com".to_string()]).expect("params");
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    params.serial_number = Some(rcgen::SerialNumber::from(4242u64));
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    let default = rcgen::generate_simple_self_signed(vec!["fallback.example".to_string()]).expect("rcgen");
    let yaml = format!(
        r#"schema: weir/v1
version: {version}
tls:
  defaultCertificate: {{ certificate: {}, key: {} }}
hosts:
  - host: shop.example.com
    tls: {{ certificate: {}, key: {}, source: shop/shop-tls }}
    rules:
      - path: /
        backend: {{ namespace: shop, ingress: shop, service: shop, port: 80, endpoints: ["127.0.0.1:9"] }}
"#,
        serde_json::to_string(&default.cert.pem()).expect("json"),
        serde_json::to_string(&default.signing_key.serialize_pem()).expect("json"),
        serde_json::to_string(&cert.pem()).expect("json"),
        serde_json::to_string(&key.serialize_pem()).expect("json"),
    );
    serde_yaml_ng::from_str(&yaml).expect("test table parses")
}

#[test]
fn controller_health_families_follow_the_table_and_its_certificates() {
    let metrics = Arc::new(Metrics::new(MetricsSettings {
        controller_class: "k8s.io/weir".into(),
        ..Default::default()
    }));
    let routes = Routes::with_metrics(
        Pools::new(PoolSettings::default(), 1, UpstreamTls::new().expect("tls config")),
        Some(metrics.clone()),
    );
    // Before any table: hash and timestamp 0, last reload not successful.
    let text = metrics.encode(&routes.load());
    let samples = parse(&text);
    let health = "nginx_ingress_controller_";
    let value = |s: &[crate::testkit::exposition::Sample], f: &str| sum(s, &format!("{health}{f}"), &[]);
    assert_eq!(value(&samples, "config_hash"), 0.0);
    assert_eq!(value(&samples, "config_last_reload_successful"), 0.0);
    assert_eq!(value(&samples, "config_last_reload_successful_timestamp_seconds"), 0.0);
    assert_eq!(value(&samples, "success"), 0.0);

    routes.install(tls_table("t1", (2031, 5, 17))).expect("valid table");
    let first = parse(&metrics.encode(&routes.load()));
    let hash = value(&first, "config_hash");
    assert!(hash > 0.0 && hash.fract() == 0.0, "{hash}");
    assert_eq!(value(&first, "config_last_reload_successful"), 1.0);
    let applied = value(&first, "config_last_reload_successful_timestamp_seconds");
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as f64;
    assert!(applied <= now && applied > now - 60.0, "{applied} vs {now}");
    assert_eq!(value(&first, "success"), 1.0);

    // 2031-05-17T00:00:00Z, the Secret's namespace and name, ingress-nginx's identifier.
    let ssl =
        find(&first, "nginx_ingress_controller_ssl_expire_time_seconds", &[("host", "shop.example.com")]);
    assert_eq!(ssl.len(), 1, "{ssl:?}");
    assert_eq!(ssl[0].value, 1_936_742_400.0);
    for (k, v) in [
        ("namespace", "shop"),
        ("secret_name", "shop-tls"),
        ("class", "k8s.io/weir"),
        ("identifier", "-4242"),
    ] {
        assert_eq!(ssl[0].labels.get(k).map(String::as_str), Some(v), "{k} of {:?}", ssl[0]);
    }
    assert!(!ssl[0].labels.contains_key("controller_pod"), "no constant labels, as in ingress-nginx");
    let default = find(&first, "nginx_ingress_controller_ssl_expire_time_seconds", &[("host", "_")]);
    assert_eq!(default.len(), 1, "the default certificate too: {default:?}");
    assert_eq!(default[0].labels.get("secret_name").map(String::as_str), Some(""));

    // A refused table: the table in force stays, the last reload failed.
    let mut bad = tls_table("t2", (2032, 1, 1));
    bad.schema = "weir/v0".into();
    assert!(routes.install(bad).is_err());
    let refused = parse(&metrics.encode(&routes.load()));
    assert_eq!(value(&refused, "config_last_reload_successful"), 0.0);
    assert_eq!(value(&refused, "config_hash"), hash);
    assert_eq!(value(&refused, "errors"), 1.0);

    // A renewed certificate: new hash, new expiry, reload successful again.
    routes.install(tls_table("t3", (2032, 1, 1))).expect("valid table");
    let renewed = parse(&metrics.encode(&routes.load()));
    assert_ne!(value(&renewed, "config_hash"), hash);
    assert_eq!(value(&renewed, "config_last_reload_successful"), 1.0);
    assert_eq!(value(&renewed, "success"), 2.0);
    let ssl =
        find(&renewed, "nginx_ingress_controller_ssl_expire_time_seconds", &[("host", "shop.example.com")]);
    assert_eq!(ssl.iter().map(|s| s.value).collect::<Vec<_>>(), vec![1_956_528_000.0]);

    // Process families, with the constant labels the dashboard filters on.
    let types = types(&metrics.encode(&routes.load()));
    for (family, kind) in [
        ("nginx_process_cpu_seconds_total", "counter"),
        ("nginx_process_resident_memory_bytes", "gauge"),
        ("nginx_process_virtual_memory_bytes", "gauge"),
        ("nginx_process_oldest_start_time_seconds", "gauge"),
        ("nginx_process_num_procs", "gauge"),
        ("nginx_process_read_bytes_total", "counter"),
        ("nginx_process_write_bytes_total", "counter"),
        ("nginx_process_connections", "gauge"),
        ("nginx_process_connections_total", "counter"),
        ("nginx_process_requests_total", "counter"),
        ("config_hash", "gauge"),
        ("success", "counter"),
        ("ssl_expire_time_seconds", "gauge"),
    ] {
        assert_eq!(types.get(&format!("{health}{family}")).map(String::as_str), Some(kind), "{family}");
    }
    assert!(value(&renewed, "nginx_process_resident_memory_bytes") > 0.0);
    assert_eq!(value(&renewed, "nginx_process_num_procs"), 1.0);
    let rss = find(
        &renewed,
        "nginx_ingress_controller_nginx_process_resident_memory_bytes",
        &[("controller_class", "k8s.io/weir")],
    );
    assert_eq!(rss.len(), 1);
}
