//! The metrics listener and access log end to end: real upstreams, weir in-process,
//! promtool on the real exposition.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_proxy::access_log::AccessLogTarget;
use weir_proxy::testkit::exposition::{find, scrape, scrape_until, sum};
use weir_proxy::testkit::weir::{metrics_settings as settings, start};
use weir_proxy::testkit::{get, Upstream, H1};

const REQUESTS: &str = "nginx_ingress_controller_requests";

#[tokio::test]
async fn promtool_reports_only_ingress_nginx_counter_names_on_real_output() {
    let (stable, canary) = (Upstream::plain("stable").await, Upstream::plain("canary").await);
    let weir = start(settings(), Some(sample_table(stable.addr, canary.addr, 50))).await;
    let mut client = H1::connect(weir.data_addr).await;
    for _ in 0..20 {
        client.get("api.example.com", "/", &[]).await;
    }
    client.get("api.example.com", "/", &[("x-canary", "always")]).await;
    let text = scrape(&weir).await;
    assert!(text.contains("process_cpu_seconds_total"), "process metrics are exported");

    // promtool must be installed (Debian package `prometheus`): a missing one fails the test.
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (apt-get install prometheus)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool ran");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let problems: Vec<&str> = report.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        problems,
        vec![
            r#"nginx_ingress_controller_errors counter metrics should have "_total" suffix"#,
            r#"nginx_ingress_controller_requests counter metrics should have "_total" suffix"#,
            r#"nginx_ingress_controller_success counter metrics should have "_total" suffix"#,
        ],
        "promtool found more than the lints ingress-nginx compatibility forces (its counter names)"
    );
    weir.shutdown().await;
}

#[tokio::test]
async fn unknown_hosts_are_not_recorded_and_canary_requests_carry_the_canary_label() {
    let (stable, canary) = (Upstream::plain("stable").await, Upstream::plain("canary").await);
    let weir = start(settings(), Some(sample_table(stable.addr, canary.addr, 0))).await;
    let mut client = H1::connect(weir.data_addr).await;
    assert_eq!(client.get("nobody.example.org", "/", &[]).await.status, 404);
    let r = client.get("API.example.com:8080", "/a", &[("x-canary", "always")]).await;
    assert_eq!((r.status.as_u16(), r.upstream()), (200, "canary"));
    let r = client.get("api.example.com", "/b", &[]).await;
    assert_eq!((r.status.as_u16(), r.upstream()), (200, "stable"));

    let samples = scrape_until(&weir, |s| sum(s, REQUESTS, &[]) >= 2.0).await;
    assert!(find(&samples, REQUESTS, &[("host", "nobody.example.org")]).is_empty());
    assert_eq!(find(&samples, REQUESTS, &[]).len(), 2);
    let c = find(&samples, REQUESTS, &[("canary", "prod-sample-api-canary-80")]);
    assert_eq!(c.len(), 1);
    let l = &c[0].labels;
    assert_eq!(
        (&*l["host"], &*l["ingress"], &*l["service"], &*l["path"], &*l["status"], &*l["method"]),
        ("api.example.com", "sample-api", "sample-api-stable", "/", "200", "GET")
    );
    assert_eq!(sum(&samples, REQUESTS, &[("canary", "")]), 1.0);
    // One exchange each on a fresh pooled connection: the upstream timings are there.
    assert_eq!(sum(&samples, "nginx_ingress_controller_header_duration_seconds_count", &[]), 2.0);
    assert_eq!(sum(&samples, "nginx_ingress_controller_response_duration_seconds_count", &[]), 2.0);
    weir.shutdown().await;
}

#[tokio::test]
async fn the_metrics_listener_serves_healthz_and_readyz_and_refuses_other_paths() {
    let (stable, canary) = (Upstream::plain("stable").await, Upstream::plain("canary").await);
    let weir = start(settings(), Some(sample_table(stable.addr, canary.addr, 0))).await;
    let addr = weir.metrics_addr.expect("metrics listener");
    let healthz = get(addr, "weir", "/healthz", &[]).await;
    assert_eq!((healthz.status.as_u16(), healthz.text()), (200, "ok\n".to_string()));
    assert_eq!(get(addr, "weir", "/readyz", &[]).await.status, 200);
    assert_eq!(get(addr, "weir", "/other", &[]).await.status, 404);
    weir.shutdown().await;

    // Before any table: alive, not ready.
    let empty = start(settings(), None).await;
    let addr = empty.metrics_addr.expect("metrics listener");
    assert_eq!(get(addr, "weir", "/healthz", &[]).await.status, 200);
    assert_eq!(get(addr, "weir", "/readyz", &[]).await.status, 503);
    empty.shutdown().await;
}

#[tokio::test]
async fn without_metrics_nothing_is_served_or_recorded() {
    let (stable, canary) = (Upstream::plain("stable").await, Upstream::plain("canary").await);
    let mut s = settings();
    s.metrics = None;
    let weir = start(s, Some(sample_table(stable.addr, canary.addr, 0))).await;
    assert!(weir.metrics_addr.is_none() && weir.metrics.is_none());
    assert_eq!(H1::connect(weir.data_addr).await.get("api.example.com", "/", &[]).await.status, 200);
    weir.shutdown().await;
}

#[tokio::test]
async fn the_access_log_writes_one_json_line_per_request() {
    let (stable, canary) = (Upstream::plain("stable").await, Upstream::plain("canary").await);
    let dir = std::env::temp_dir().join(format!("weir-access-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("access.log");
    let mut s = settings();
    s.access_log = Some(AccessLogTarget::File(path.clone()));
    let weir = start(s, Some(sample_table(stable.addr, canary.addr, 0))).await;
    let mut client = H1::connect(weir.data_addr).await;
    client.get("api.example.com", "/x?q=1", &[("x-canary", "always"), ("x-request-id", "req-7")]).await;
    client.get("nobody.example.org", "/", &[]).await;

    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(lines.len(), 2, "{lines:?}");
    let l = &lines[0];
    assert_eq!(l["host"], "api.example.com");
    assert_eq!(l["method"], "GET");
    assert_eq!(l["uri"], "/x?q=1");
    assert_eq!(l["status"], 200);
    assert_eq!(l["upstream_status"], 200);
    assert_eq!(l["upstream_addr"], canary.addr.to_string());
    assert_eq!(l["canary"], "prod-sample-api-canary-80");
    assert_eq!(
        (&l["namespace"], &l["ingress"], &l["service"]),
        (&"prod".into(), &"sample-api".into(), &"sample-api-stable".into())
    );
    assert_eq!(l["remote_addr"], "127.0.0.1");
    assert!(l["bytes_sent"].as_u64().is_some_and(|b| b > 0));
    assert!(l["request_time"].is_number() && l["upstream_response_time"].is_number());
    assert!(l["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(l["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')));
    let unknown = &lines[1];
    assert_eq!((unknown["status"].as_u64(), unknown["ingress"].as_str()), (Some(404), Some("-")));
    assert!(unknown["upstream_addr"].is_null());
    weir.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// ingress-nginx's `nginx_process_connections{state}` as weir counts its client connections:
/// one idle keep-alive (waiting), one part-way through its request head (reading), one
/// with a request held by the upstream (writing); then as they end.
#[tokio::test]
async fn client_connections_are_counted_by_state() {
    use tokio::io::AsyncWriteExt;
    const CONNS: &str = "nginx_ingress_controller_nginx_process_connections";
    const TOTAL: &str = "nginx_ingress_controller_nginx_process_connections_total";
    const REQS: &str = "nginx_ingress_controller_nginx_process_requests_total";
    let (stable, canary) = (Upstream::plain("stable").await, Upstream::plain("canary").await);
    let weir = start(settings(), Some(sample_table(stable.addr, canary.addr, 0))).await;
    let state = |s: &[weir_proxy::testkit::exposition::Sample], st: &str| sum(s, CONNS, &[("state", st)]);

    let mut idle = H1::connect(weir.data_addr).await;
    assert_eq!(idle.get("api.example.com", "/", &[]).await.status, 200);
    let mut partial = tokio::net::TcpStream::connect(weir.data_addr).await.expect("connect");
    partial.write_all(b"GET / HTTP/1.1\r\nHost: api.exa").await.expect("write");
    let data = weir.data_addr;
    let held = tokio::spawn(async move {
        let mut client = H1::connect(data).await;
        let reply = client.get("api.example.com", "/?hold=1", &[]).await;
        (client, reply)
    });
    stable.wait_for_hits(2).await;

    let want = [("active", 3.0), ("reading", 1.0), ("writing", 1.0), ("waiting", 1.0)];
    let samples = scrape_until(&weir, |s| want.iter().all(|(st, v)| state(s, st) == *v)).await;
    let seen: Vec<(&str, f64)> = want.iter().map(|(st, _)| (*st, state(&samples, st))).collect();
    assert_eq!(seen, want.to_vec(), "connections by state");
    assert_eq!(sum(&samples, TOTAL, &[("state", "accepted")]), 3.0);
    assert_eq!(sum(&samples, TOTAL, &[("state", "handled")]), 3.0);
    assert_eq!(sum(&samples, REQS, &[]), 2.0, "two request heads parsed");
    let labelled = find(&samples, CONNS, &[("controller_class", "weir.dev/ingress-controller")]);
    assert_eq!(labelled.len(), 4, "the four states carry the constant labels");

    // The held request answers: its connection is idle now; the partial head is abandoned.
    stable.release();
    let (held_client, reply) = held.await.expect("held request");
    assert_eq!(reply.status, 200);
    drop(partial);
    let want = [("active", 2.0), ("reading", 0.0), ("writing", 0.0), ("waiting", 2.0)];
    let samples = scrape_until(&weir, |s| want.iter().all(|(st, v)| state(s, st) == *v)).await;
    let seen: Vec<(&str, f64)> = want.iter().map(|(st, _)| (*st, state(&samples, st))).collect();
    assert_eq!(seen, want.to_vec(), "after the held request and the partial head ended");
    drop((idle, held_client));
    let samples = scrape_until(&weir, |s| state(s, "active") == 0.0).await;
    assert_eq!(state(&samples, "active"), 0.0, "every connection closed");
    assert_eq!(sum(&samples, TOTAL, &[("state", "accepted")]), 3.0);
    weir.shutdown().await;
}

/// A table: host `api.example.com`, `/` → ingress `sample-api` with a canary (weight
/// `weight`, `X-Canary` header), services `sample-api-stable` / `sample-api-canary`.
fn sample_table(
    stable: std::net::SocketAddr,
    canary: std::net::SocketAddr,
    weight: u32,
) -> weir_config::TableDoc {
    let yaml = format!(
        r#"schema: weir/v1
version: sample-1
hosts:
  - host: api.example.com
    rules:
      - path: /
        backend: {{ namespace: prod, ingress: sample-api, service: sample-api-stable, port: 80, endpoints: ["{stable}"] }}
        canary:
          backend: {{ namespace: prod, ingress: sample-api-canary, service: sample-api-canary, port: 80, endpoints: ["{canary}"] }}
          weight: {weight}
          header: X-Canary
"#
    );
    weir_proxy::testkit::parse_doc(&yaml)
}
