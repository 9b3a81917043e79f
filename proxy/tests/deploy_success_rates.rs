//! Every success-rate expression weir ships (the dashboard's panels, the example
//! AnalysisTemplates) answers 0, not "no data", when every request fails, and 1 when none
//! does; the canary error-rate alert fires. Evaluated by a real Prometheus scraping a real
//! weir in front of an all-500 backend (ingress sample-api) and an all-200 one (healthy-api),
//! while clients also send both a burst of malformed bodies: those 400s are the clients'
//! faults (`fault="client"`) and move none of the shipped rates.
//!
//! Why it matters: ingress-nginx's usual success-rate query divides the rate of non-5xx
//! requests by the rate of all requests; with no non-5xx request the numerator has no
//! series, the quotient is empty, and Argo Rollouts counts an empty answer as a measurement
//! *Error* instead of a failure. The shipped expressions add `or 0 * <denominator>`
//! (`or vector(0)` where nothing is grouped).

mod prom_kit;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prom_kit::{Prometheus, Series, Target};
use weir_proxy::testkit::weir::{metrics_settings as settings, start};
use weir_proxy::testkit::{Upstream, H1};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// (where, expression) of every success rate shipped: dashboard panels titled "Success
/// rate…" and AnalysisTemplate metrics named "*success*", with Grafana's and Argo's
/// variables replaced (`$namespace`/`$ingress` by All, `{{args.ingress}}` by `ingress`).
fn shipped_success_rates(ingress: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dashboard: serde_json::Value =
        serde_json::from_str(&read(&deploy_dir().join("monitoring/weir-canary.json")))
            .expect("dashboard JSON");
    let mut panels: Vec<&serde_json::Value> =
        dashboard["panels"].as_array().expect("panels").iter().collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        let title = panel["title"].as_str().unwrap_or_default();
        if title.to_lowercase().starts_with("success rate") {
            for t in panel["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().expect("expr");
                out.push((
                    format!("dashboard {title:?} {}", t["refId"].as_str().unwrap_or("?")),
                    expr.replace("$__rate_interval", "1m")
                        .replace("$namespace", ".*")
                        .replace("$ingress", ".*"),
                ));
            }
        }
    }
    let examples = deploy_dir().join("examples/argo-rollouts");
    for dir in ["canary", "bluegreen"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(examples.join(dir))
            .expect("examples")
            .map(|e| e.expect("entry").path())
            .collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_some_and(|x| x == "yaml")) {
            for doc in serde_yaml_ng::Deserializer::from_str(&read(&path)) {
                let doc: serde_yaml_ng::Value = serde::Deserialize::deserialize(doc).expect("YAML");
                if doc["kind"] != "AnalysisTemplate" {
                    continue;
                }
                for m in doc["spec"]["metrics"].as_sequence().into_iter().flatten() {
                    let name = m["name"].as_str().unwrap_or_default();
                    if let (true, Some(q)) =
                        (name.contains("success"), m["provider"]["prometheus"]["query"].as_str())
                    {
                        let template = doc["metadata"]["name"].as_str().unwrap_or("?");
                        out.push((
                            format!("AnalysisTemplate {template} metric {name}"),
                            q.replace("{{args.ingress}}", ingress),
                        ));
                    }
                }
            }
        }
    }
    out
}

fn table(failing: [std::net::SocketAddr; 2], healthy: [std::net::SocketAddr; 2]) -> weir_config::TableDoc {
    let rule = |host: &str, ingress: &str, [stable, canary]: [std::net::SocketAddr; 2]| {
        format!(
            r#"  - host: {host}
    rules:
      - path: /
        backend: {{ namespace: prod, ingress: {ingress}, service: {ingress}-stable, port: 80, endpoints: ["{stable}"] }}
        canary:
          backend: {{ namespace: prod, ingress: {ingress}-canary, service: {ingress}-canary, port: 80, endpoints: ["{canary}"] }}
          weight: 50
"#
        )
    };
    let yaml = format!(
        "schema: weir/v1\nversion: success-rates-1\nhosts:\n{}{}",
        rule("failing.example.com", "sample-api", failing),
        rule("healthy.example.com", "healthy-api", healthy)
    );
    serde_yaml_ng::from_str(&yaml).expect("table parses")
}

fn value_of(answer: &[Series], ingress: &str) -> Option<f64> {
    answer.iter().find(|(m, _)| m["ingress"] == ingress).map(|(_, v)| *v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_success_rate_is_zero_when_every_request_fails() {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (failing_stable, failing_canary) =
        (Upstream::plain("failing-stable").await, Upstream::plain("failing-canary").await);
    for u in [&failing_stable, &failing_canary] {
        u.answer_with_status(500);
    }
    let (healthy_stable, healthy_canary) =
        (Upstream::plain("healthy-stable").await, Upstream::plain("healthy-canary").await);
    let weir = start(
        settings(),
        Some(table([failing_stable.addr, failing_canary.addr], [healthy_stable.addr, healthy_canary.addr])),
    )
    .await;
    let target = Target {
        job: "weir",
        addr: weir.metrics_addr.expect("metrics listener"),
        honor_labels: true,
        labels: vec![],
    };
    let prom = Prometheus::start("success-rates", &[target], deadline).await;

    // Steady traffic to both hosts for the whole test, paced to keep two cores mostly idle.
    let stop = Arc::new(AtomicBool::new(false));
    let mut traffic = Vec::new();
    for host in ["failing.example.com", "healthy.example.com"] {
        let (stop, data) = (stop.clone(), weir.data_addr);
        traffic.push(tokio::spawn(async move {
            let mut client = H1::connect(data).await;
            let mut statuses = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                statuses.insert(client.get(host, "/", &[]).await.status.as_u16());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (host, statuses)
        }));
    }

    // And a burst of requests with broken bodies to both (a chunk size of 2^64): the client's
    // 400s, recorded with fault="client", must move no shipped rate — neither lift the
    // failing ingress's 0 nor lower the healthy one's 1 — nor the alert's.
    let mut bursts = Vec::new();
    for host in ["failing.example.com", "healthy.example.com"] {
        let (stop, data) = (stop.clone(), weir.data_addr);
        bursts.push(tokio::spawn(async move {
            let mut statuses = std::collections::BTreeSet::new();
            let request = format!(
                "POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nxx\r\n"
            );
            while !stop.load(Ordering::Relaxed) {
                let answer = weir_proxy::testkit::raw(data, request.as_bytes()).await;
                statuses.insert(answer.split(' ').nth(1).unwrap_or("none").to_owned());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (host, statuses)
        }));
    }

    let failing = shipped_success_rates("sample-api");
    let healthy = shipped_success_rates("healthy-api");
    assert!(
        failing.iter().filter(|(w, _)| w.starts_with("dashboard")).count() >= 2
            && failing.iter().any(|(w, _)| w.starts_with("AnalysisTemplate")),
        "expected the dashboard's stable and canary success rates and an AnalysisTemplate's: {failing:?}"
    );
    let mut report = Vec::new();
    for ((place, expr), (_, healthy_expr)) in failing.iter().zip(&healthy) {
        if place.starts_with("dashboard") {
            // Grouped by ingress: one series per Ingress, both present.
            let answer = prom
                .wait_for(expr, deadline, |a| {
                    value_of(a, "sample-api").is_some() && value_of(a, "healthy-api").is_some()
                })
                .await
                .unwrap_or_else(|last| {
                    panic!("{place}: no series for both Ingresses; last answer {last:?}\n{expr}")
                });
            assert_eq!(
                value_of(&answer, "sample-api"),
                Some(0.0),
                "{place}, all requests 500: {answer:?}\n{expr}"
            );
            assert_eq!(
                value_of(&answer, "healthy-api"),
                Some(1.0),
                "{place}, all requests 200: {answer:?}\n{expr}"
            );
            report.push(format!(
                "{place}: sample-api (all 500) {:?}, healthy-api (all 200) {:?}",
                value_of(&answer, "sample-api"),
                value_of(&answer, "healthy-api")
            ));
        } else {
            let zero = prom.wait_for(expr, deadline, |a| a.len() == 1).await.unwrap_or_else(|last| {
                panic!("{place} (sample-api): not one value; last answer {last:?}\n{expr}")
            });
            assert_eq!(zero[0].1, 0.0, "{place}, all requests 500: {zero:?}\n{expr}");
            let one = prom
                .wait_for(healthy_expr, deadline, |a| a.len() == 1)
                .await
                .unwrap_or_else(|last| panic!("{place} (healthy-api): not one value; last answer {last:?}"));
            assert_eq!(one[0].1, 1.0, "{place}, all requests 200: {one:?}\n{healthy_expr}");
            report.push(format!(
                "{place}: sample-api (all 500) {}, healthy-api (all 200) {}",
                zero[0].1, one[0].1
            ));
        }
    }

    // The premises. The ingress-nginx form of the query (reference/metrics.md), client
    // faults left out as weir's queries do, has no answer at all for the failing canary,
    // while it answers 1 for the healthy one. And without leaving them out, the clients'
    // broken bodies (400s, "not 5xx") lift the failing canary's rate above 0.
    let plain = |ingress: &str, faults: &str| {
        format!(
            r#"sum(rate(nginx_ingress_controller_requests{{ingress="{ingress}",canary!=""{faults},status!~"5.."}}[1m]))
  / sum(rate(nginx_ingress_controller_requests{{ingress="{ingress}",canary!=""{faults}}}[1m]))"#
        )
    };
    let no_client = r#",fault!="client""#;
    let healthy_plain = prom
        .wait_for(&plain("healthy-api", no_client), deadline, |a| a.len() == 1)
        .await
        .expect("healthy answers");
    assert_eq!(healthy_plain[0].1, 1.0);
    let failing_plain = prom.query(&plain("sample-api", no_client)).await.expect("query");
    assert!(failing_plain.is_empty(), "the plain ratio was expected to be empty: {failing_plain:?}");
    let lifted = prom.query(&plain("sample-api", "")).await.expect("query");
    assert!(
        lifted.len() == 1 && lifted[0].1 > 0.0,
        "counting the clients' 400s was expected to lift the failing canary's rate: {lifted:?}"
    );
    report.push(format!(
        "ingress-nginx's plain ratio: sample-api {failing_plain:?} (no series), healthy-api {}; \
         with the clients' faults counted, sample-api {}",
        healthy_plain[0].1, lifted[0].1
    ));

    // The canary error-rate alert fires for the failing canary only, at 100 % errors.
    let rules: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read(&deploy_dir().join("monitoring/weir-alerts.yaml"))).expect("rules");
    let alert = rules["groups"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_sequence().into_iter().flatten())
        .find(|r| r["alert"] == "WeirCanaryHighErrorRate")
        .expect("the WeirCanaryHighErrorRate rule");
    let alert_expr = alert["expr"].as_str().expect("expr");
    let fired = prom
        .wait_for(alert_expr, deadline, |a| a.len() == 1)
        .await
        .unwrap_or_else(|last| panic!("WeirCanaryHighErrorRate: last answer {last:?}"));
    assert_eq!(value_of(&fired, "sample-api"), Some(1.0), "{fired:?}");
    report.push(format!("WeirCanaryHighErrorRate: {fired:?}"));

    stop.store(true, Ordering::Relaxed);
    for t in traffic {
        let (host, statuses) = t.await.expect("traffic task");
        let want: &[u16] = if host.starts_with("failing") { &[500] } else { &[200] };
        assert_eq!(statuses.into_iter().collect::<Vec<_>>(), want, "{host} answered other statuses");
    }
    for t in bursts {
        let (host, statuses) = t.await.expect("burst task");
        assert_eq!(
            statuses.into_iter().collect::<Vec<_>>(),
            ["400"],
            "{host}: broken bodies answered otherwise"
        );
    }
    eprintln!("{}", report.join("\n"));
    drop(prom);
    weir.shutdown().await;
}
