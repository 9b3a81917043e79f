//! ingress-nginx's own Grafana dashboard (`deploy/grafana/dashboards/nginx.json` of
//! ingress-nginx v1.15.1, "NGINX Ingress controller"), unchanged, against weir: a real
//! Prometheus scrapes a real weir the way ingress-nginx's chart has it scraped (its
//! ServiceMonitor's default, honorLabels off, plus the `kubernetes_pod_name` label of the
//! classic annotation-based pod scrape its certificate panel filters on), every template
//! variable is resolved as Grafana does (`label_values`), and every panel query must answer
//! at least one series — with every variable at "All" (`.*`, the dashboard's allValue) and
//! with the controller-level variables (namespace, class, controller pod) picked.
//!
//! "Last Config Failed" counts controllers whose last reload failed, so a healthy weir gives
//! it no series: the test checks that it answers nothing while every table was accepted,
//! then pushes a table weir refuses (it keeps serving the one in force) and requires every
//! query to answer. `cargo test -p weir-proxy --test ingress_nginx_dashboard -- --nocapture`
//! prints each query's answer.

mod prom_kit;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prom_kit::{Prometheus, Target};
use weir_proxy::metrics::MetricsSettings;
use weir_proxy::testkit::weir::{metrics_settings as settings, start};
use weir_proxy::testkit::{Upstream, H1};

/// The dashboard's template variables, in its order: (name, metric selector, label) of
/// `label_values(<selector>, <label>)`. All have includeAll with allValue `.*`.
const VARIABLES: &[(&str, &str, &str)] = &[
    ("namespace", "nginx_ingress_controller_config_hash", "controller_namespace"),
    (
        "controller_class",
        r#"nginx_ingress_controller_config_hash{namespace=~"$namespace"}"#,
        "controller_class",
    ),
    (
        "controller",
        r#"nginx_ingress_controller_config_hash{namespace=~"$namespace",controller_class=~"$controller_class"}"#,
        "controller_pod",
    ),
    (
        "exported_namespace",
        r#"nginx_ingress_controller_requests{namespace=~"$namespace",controller_class=~"$controller_class",controller_pod=~"$controller"}"#,
        "exported_namespace",
    ),
    (
        "ingress",
        r#"nginx_ingress_controller_requests{namespace=~"$namespace",controller_class=~"$controller_class",controller_pod=~"$controller",exported_namespace=~"$exported_namespace"}"#,
        "ingress",
    ),
];

/// Every query of the dashboard: (panel title, PromQL), panels first, then the annotation.
const QUERIES: &[(&str, &str)] = &[
    (
        "Controller Request Volume",
        r#"round(sum(irate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace"}[2m])), 0.001)"#,
    ),
    (
        "Controller Connections",
        r#"sum(avg_over_time(nginx_ingress_controller_nginx_process_connections{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",state="active"}[2m]))"#,
    ),
    (
        "Controller Success Rate (non-4|5xx responses)",
        r#"sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace",status!~"[4-5].*"}[2m])) / sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace"}[2m]))"#,
    ),
    (
        "Config Reloads",
        r#"avg(irate(nginx_ingress_controller_success{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[1m])) * 60"#,
    ),
    (
        "Last Config Failed",
        r#"count(nginx_ingress_controller_config_last_reload_successful{controller_pod=~"$controller",controller_namespace=~"$namespace"} == 0)"#,
    ),
    (
        "Ingress Request Volume",
        r#"round(sum(irate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",exported_namespace=~"$exported_namespace",ingress=~"$ingress"}[2m])) by (ingress), 0.001)"#,
    ),
    (
        "Ingress Success Rate (non-4|5xx responses)",
        r#"sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace",exported_namespace=~"$exported_namespace",ingress=~"$ingress",status!~"[4-5].*"}[2m])) by (ingress) / sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace",exported_namespace=~"$exported_namespace",ingress=~"$ingress"}[2m])) by (ingress)"#,
    ),
    (
        "Network I/O pressure (Received)",
        r#"sum (irate (nginx_ingress_controller_request_size_sum{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[2m]))"#,
    ),
    (
        "Network I/O pressure (Sent)",
        r#"- sum (irate (nginx_ingress_controller_response_size_sum{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[2m]))"#,
    ),
    (
        "Average Memory Usage",
        r#"avg(nginx_ingress_controller_nginx_process_resident_memory_bytes{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}) "#,
    ),
    (
        "Average CPU Usage",
        r#"avg (rate (nginx_ingress_controller_nginx_process_cpu_seconds_total{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[2m])) "#,
    ),
    (
        "Ingress Percentile Response Times and Transfer Rates (P50)",
        r#"histogram_quantile(0.50, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le, ingress))"#,
    ),
    (
        "Ingress Percentile Response Times and Transfer Rates (P90)",
        r#"histogram_quantile(0.90, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le, ingress))"#,
    ),
    (
        "Ingress Percentile Response Times and Transfer Rates (P99)",
        r#"histogram_quantile(0.99, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le, ingress))"#,
    ),
    (
        "Ingress Percentile Response Times and Transfer Rates (IN)",
        r#"sum(irate(nginx_ingress_controller_request_size_sum{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (ingress)"#,
    ),
    (
        "Ingress Percentile Response Times and Transfer Rates (OUT)",
        r#"sum(irate(nginx_ingress_controller_response_size_sum{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (ingress)"#,
    ),
    (
        "Ingress Percentile Response Times (Ingress Namespaces) P80",
        r#"histogram_quantile(0.80, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le))"#,
    ),
    (
        "Ingress Percentile Response Times (Ingress Namespaces) P90",
        r#"histogram_quantile(0.90, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le))"#,
    ),
    (
        "Ingress Percentile Response Times (Ingress Namespaces) P99",
        r#"histogram_quantile(0.99, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le))"#,
    ),
    (
        "Ingress Request Latency Heatmap",
        r#"sum(increase(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le)"#,
    ),
    (
        "Ingress Certificate Expiry",
        r#"avg(nginx_ingress_controller_ssl_expire_time_seconds{kubernetes_pod_name=~"$controller",namespace=~"$namespace",ingress=~"$ingress"}) by (host) - time()"#,
    ),
    (
        "annotation: config reloads",
        r#"sum(changes(nginx_ingress_controller_config_last_reload_successful_timestamp_seconds{instance!="unknown",controller_class=~"$controller_class",namespace=~"$namespace"}[30s])) by (controller_class)"#,
    ),
];

const POD: &str = "weir-7c9d8f6b5-x2k4q";
const NAMESPACE: &str = "weir-system";

fn substitute(q: &str, values: &[(&str, String)]) -> String {
    // Longest names first: $controller is a prefix of $controller_class.
    let mut sorted: Vec<&(&str, String)> = values.iter().collect();
    sorted.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    sorted.iter().fold(q.to_string(), |q, (name, value)| q.replace(&format!("${name}"), value))
}

fn table(stable: std::net::SocketAddr, canary: std::net::SocketAddr) -> weir_config::TableDoc {
    let cert = rcgen::generate_simple_self_signed(vec!["shop.example.com".to_string()]).expect("rcgen");
    let yaml = format!(
        r#"schema: weir/v1
version: dashboard-1
hosts:
  - host: shop.example.com
    tls: {{ certificate: {}, key: {}, source: shop/shop-example-com-tls }}
    sslRedirect: false
    rules:
      - path: /
        backend: {{ namespace: shop, ingress: shop-web, service: shop-web-stable, port: 80, endpoints: ["{stable}"] }}
        canary:
          backend: {{ namespace: shop, ingress: shop-web-canary, service: shop-web-canary, port: 80, endpoints: ["{canary}"] }}
          weight: 20
"#,
        serde_json::to_string(&cert.cert.pem()).expect("json"),
        serde_json::to_string(&cert.signing_key.serialize_pem()).expect("json"),
    );
    serde_yaml_ng::from_str(&yaml).expect("table parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_nginx_dashboard_queries_all_answer_from_weir() {
    let deadline = Instant::now() + Duration::from_secs(50);
    let (stable, canary) = (Upstream::plain("shop-stable").await, Upstream::plain("shop-canary").await);
    let mut s = settings();
    s.tls_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    s.metrics = Some(MetricsSettings {
        controller_namespace: NAMESPACE.into(),
        controller_pod: POD.into(),
        ..MetricsSettings::default()
    });
    let weir = start(s, Some(table(stable.addr, canary.addr))).await;
    let labels = vec![
        ("namespace", NAMESPACE.to_string()),
        ("pod", POD.to_string()),
        ("kubernetes_pod_name", POD.to_string()),
        ("service", "weir-metrics".to_string()),
        ("container", "weir".to_string()),
        ("endpoint", "metrics".to_string()),
    ];
    let target = Target {
        job: "weir",
        addr: weir.metrics_addr.expect("metrics listener"),
        honor_labels: false,
        labels,
    };
    let prom = Prometheus::start("ingress-nginx-dashboard", &[target], deadline).await;

    // Keep-alive clients (open connections for the connections panel) sending steadily.
    let stop = Arc::new(AtomicBool::new(false));
    let mut traffic = Vec::new();
    for _ in 0..3 {
        let (stop, data) = (stop.clone(), weir.data_addr);
        traffic.push(tokio::spawn(async move {
            let mut client = H1::connect(data).await;
            while !stop.load(Ordering::Relaxed) {
                client.get("shop.example.com", "/", &[]).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    // Until the request families have two samples in Prometheus (rate windows need two).
    prom.wait_for("count_over_time(nginx_ingress_controller_requests[1m])", deadline, |a| {
        a.iter().any(|(_, v)| *v >= 3.0)
    })
    .await
    .unwrap_or_else(|last| panic!("weir's request metrics never reached Prometheus: {last:?}"));

    let mut report = Vec::new();
    // Healthy: every table was accepted, so the failed-reload panel has nothing to count.
    let (failed_title, failed_query) = QUERIES[4];
    assert_eq!(failed_title, "Last Config Failed");
    let all: Vec<(&str, String)> = VARIABLES.iter().map(|(name, _, _)| (*name, ".*".to_string())).collect();
    let healthy = prom.query(&substitute(failed_query, &all)).await.expect("query");
    assert!(healthy.is_empty(), "no reload failed yet, yet {failed_title} answers {healthy:?}");
    report.push(format!("[before the refused table] {failed_title}: no series (every table accepted)"));
    // A pushed table weir refuses: the table in force keeps serving, the panel counts 1.
    let mut refused = table(stable.addr, canary.addr);
    refused.schema = "weir/v0".into();
    assert!(weir.routes.install(refused).is_err(), "the refused table must be refused");
    prom.wait_for(r#"nginx_ingress_controller_config_last_reload_successful == 0"#, deadline, |a| {
        !a.is_empty()
    })
    .await
    .unwrap_or_else(|last| panic!("the refused reload never reached Prometheus: {last:?}"));

    let mut failures = Vec::new();
    // Variables, each at "All" for the ones after it (Grafana's first option).
    let mut picked = all.clone();
    for (i, (name, selector, label)) in VARIABLES.iter().enumerate() {
        let q = format!("group by ({label}) ({})", substitute(selector, &all));
        let values: Vec<String> = prom
            .query(&q)
            .await
            .unwrap_or_else(|e| panic!("variable {name}: {e}"))
            .iter()
            .filter_map(|(m, _)| m[*label].as_str().map(String::from))
            .collect();
        report.push(format!("variable ${name} = label_values(…, {label}): {values:?}"));
        if values.is_empty() {
            failures.push(format!("variable ${name} has no values"));
        } else if i < 3 {
            picked[i].1 = values[0].clone();
        }
    }
    for (pass, values) in [("All", &all), ("namespace/class/controller picked", &picked)] {
        for (title, query) in QUERIES {
            let q = substitute(query, values);
            match prom.query(&q).await {
                Ok(answer) if !answer.is_empty() => {
                    let shown: Vec<String> = answer.iter().take(3).map(|(m, v)| format!("{v} {m}")).collect();
                    report.push(format!("[{pass}] {title}: {}", shown.join("; ")));
                }
                Ok(_) => {
                    report.push(format!("[{pass}] {title}: NO DATA"));
                    failures.push(format!("[{pass}] {title}: no data from {q}"));
                }
                Err(e) => failures.push(format!("[{pass}] {title}: query error {e}")),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in traffic {
        let _ = t.await;
    }
    eprintln!("{}", report.join("\n"));
    drop(prom);
    weir.shutdown().await;
    assert!(
        failures.is_empty(),
        "{} of ingress-nginx's dashboard queries answer nothing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
