//! A real Prometheus scrapes a real weir, and the queries of metrics.md answer what the
//! traffic implies: per-service rate, canary success rate, canary p99 latency.
//!
//! Needs the `prometheus` binary (Debian package `prometheus`); a missing one fails.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_proxy::testkit::weir::{metrics_settings as settings, start};
use weir_proxy::testkit::{get, Upstream, H1};

/// A Prometheus process and its temp dir; killed and removed on drop, even on panic.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind for a free port");
    l.local_addr().expect("addr").port()
}

fn start_prometheus(target: SocketAddr) -> Prometheus {
    let dir = std::env::temp_dir().join(format!("weir-prometheus-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: weir\n    \
             scrape_interval: 1s\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("write prometheus.yml");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus must be installed (apt-get install prometheus)");
    Prometheus { child, dir, addr }
}

fn url_encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query: (labels of each series, value).
async fn query(prom: SocketAddr, q: &str) -> Vec<(serde_json::Value, f64)> {
    let reply = get(prom, "127.0.0.1", &format!("/api/v1/query?query={}", url_encode(q)), &[]).await;
    let body = reply.text();
    assert_eq!(reply.status, 200, "query {q} failed: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
    v["data"]["result"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .filter_map(|s| {
                    let value = s["value"][1].as_str()?.parse::<f64>().ok()?;
                    Some((s["metric"].clone(), value))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Wait until Prometheus answers `/-/ready` (it takes a moment to open its port and TSDB).
async fn wait_ready(prom: SocketAddr, deadline: Instant) {
    loop {
        if tokio::net::TcpStream::connect(prom).await.is_ok()
            && get(prom, "127.0.0.1", "/-/ready", &[]).await.status == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Poll `q` until `ok` holds for its answer; panic with the last answer at the deadline.
async fn wait_for(
    prom: SocketAddr,
    q: &str,
    deadline: Instant,
    ok: impl Fn(&[(serde_json::Value, f64)]) -> bool,
) -> Vec<(serde_json::Value, f64)> {
    loop {
        let answer = query(prom, q).await;
        if ok(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "timed out waiting on {q}; last answer {answer:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

const RATE_BY_SERVICE: &str =
    r#"sum(rate(nginx_ingress_controller_requests{service=~".*sample-api.*"}[2m])) by (service)"#;
const CANARY_SUCCESS: &str = r#"sum(rate(nginx_ingress_controller_requests{ingress="sample-api",canary!="",status!~"5.."}[1m]))
  / sum(rate(nginx_ingress_controller_requests{ingress="sample-api",canary!=""}[1m]))"#;
const CANARY_P99: &str = r#"histogram_quantile(0.99, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress="sample-api",canary!=""}[1m])) by (le))"#;

fn table(stable: SocketAddr, canary: SocketAddr, legacy: SocketAddr) -> weir_config::TableDoc {
    let yaml = format!(
        r#"schema: weir/v1
version: prom-1
hosts:
  - host: api.example.com
    rules:
      - path: /
        backend: {{ namespace: prod, ingress: sample-api, service: sample-api-stable, port: 80, endpoints: ["{stable}"] }}
        canary:
          backend: {{ namespace: prod, ingress: sample-api-canary, service: sample-api-canary, port: 80, endpoints: ["{canary}"] }}
          weight: 50
      - path: /legacy
        backend: {{ namespace: prod, ingress: sample-api-legacy, service: sample-api-legacy, port: 80, endpoints: ["{legacy}"] }}
"#
    );
    serde_yaml_ng::from_str(&yaml).expect("table parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_answers_the_rollout_queries_from_weirs_metrics() {
    let deadline = Instant::now() + Duration::from_secs(55);
    let (stable, canary, legacy) =
        (Upstream::plain("stable").await, Upstream::plain("canary").await, Upstream::plain("legacy").await);
    canary.answer_after(Duration::from_millis(60));
    let weir = start(settings(), Some(table(stable.addr, canary.addr, legacy.addr))).await;
    let metrics_addr = weir.metrics_addr.expect("metrics listener");
    let prom = start_prometheus(metrics_addr);
    wait_ready(prom.addr, deadline).await;

    // Steady traffic for the whole test, paced so two cores stay mostly idle.
    let stop = Arc::new(AtomicBool::new(false));
    let mut traffic = Vec::new();
    for path in ["/", "/", "/", "/legacy"] {
        let (stop, data) = (stop.clone(), weir.data_addr);
        traffic.push(tokio::spawn(async move {
            let mut client = H1::connect(data).await;
            while !stop.load(Ordering::Relaxed) {
                client.get("api.example.com", path, &[]).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }

    // Per-service rates: canary requests count under the main rule's service, as in
    // ingress-nginx, so the two services are the two main rules' services.
    let rates =
        wait_for(prom.addr, RATE_BY_SERVICE, deadline, |a| a.len() == 2 && a.iter().all(|(_, v)| *v > 0.0))
            .await;
    let mut services: Vec<_> =
        rates.iter().filter_map(|(m, _)| m["service"].as_str().map(String::from)).collect();
    services.sort();
    assert_eq!(services, ["sample-api-legacy", "sample-api-stable"]);

    let success = wait_for(prom.addr, CANARY_SUCCESS, deadline, |a| a.len() == 1).await;
    assert!((success[0].1 - 1.0).abs() < 1e-9, "canary success rate while it answers 200: {success:?}");
    let p99 = wait_for(prom.addr, CANARY_P99, deadline, |a| a.len() == 1 && a[0].1.is_finite()).await;
    assert!(
        p99[0].1 > 0.05 && p99[0].1 <= 0.1,
        "p99 of a 60 ms canary lies in its bucket (0.05, 0.1]: {p99:?}"
    );

    // The canary breaks: its success rate falls well below 1.
    canary.answer_with_status(500);
    let fallen = wait_for(prom.addr, CANARY_SUCCESS, deadline, |a| a.len() == 1 && a[0].1 < 0.8).await;
    assert!(fallen[0].1 < 0.8, "{fallen:?}");
    eprintln!("rates by service {rates:?}\ncanary success {success:?} then {fallen:?}\ncanary p99 {p99:?}");

    stop.store(true, Ordering::Relaxed);
    for t in traffic {
        let _ = t.await;
    }
    drop(prom);
    weir.shutdown().await;
}
