//! The admin API: health and readiness, GET/PUT /config, invalid pushes rejected whole with
//! every error listed, and weight swaps under load that lose no request.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use weir_proxy::testkit::{within, Upstream, Weir, H1};

/// A one-rule table on `app.test` splitting `weight` % to the canary.
fn table(version: &str, stable: &Upstream, canary: &Upstream, weight: u32) -> String {
    format!(
        "schema: weir/v1
version: {version}
hosts:
  - host: app.test
    rules:
      - path: /
        backend: {{ service: stable, endpoints: [\"{}\"] }}
        canary:
          backend: {{ service: canary, endpoints: [\"{}\"] }}
          weight: {weight}
",
        stable.addr, canary.addr
    )
}

#[tokio::test]
async fn health_readiness_and_config_follow_the_first_table() {
    let (stable, canary) = (Upstream::start("stable").await, Upstream::start("canary").await);
    let weir = Weir::start(None).await;
    assert_eq!(weir.admin_get("/healthz").await.status, 200);
    assert_eq!(weir.admin_get("/readyz").await.status, 503);
    assert_eq!(weir.admin_get("/config").await.status, 404);
    assert_eq!(weir.get("app.test", "/").await.status, 404, "no table: nothing routes");

    let put = weir.put_config(&table("first", &stable, &canary, 0)).await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json()["version"], "first");
    assert_eq!(put.json()["generation"], 1);

    assert_eq!(weir.admin_get("/healthz").await.status, 200);
    assert_eq!(weir.admin_get("/readyz").await.status, 200);
    let config = weir.admin_get("/config").await;
    assert_eq!(config.status, 200);
    assert_eq!(config.json()["version"], "first");
    assert_eq!(config.json()["table"]["hosts"][0]["host"], "app.test");
    assert_eq!(weir.get("app.test", "/").await.upstream(), "stable");

    assert_eq!(weir.admin_get("/nothing-here").await.status, 404);
    weir.stop().await;
}

#[tokio::test]
async fn an_invalid_push_is_rejected_with_every_error_and_the_old_table_keeps_serving() {
    let (stable, canary) = (Upstream::start("stable").await, Upstream::start("canary").await);
    let weir = Weir::with(&table("good-1", &stable, &canary, 0)).await;
    let before = weir.admin_get("/config").await.json();

    let bad = r#"schema: weir/v2
version: bad-1
hosts:
  - host: "not a host!"
    rules:
      - { path: /, backend: { endpoints: ["127.0.0.1:8080"] } }
  - host: app.test
    rules:
      - path: api
        pathType: Regex
        responseTimeout: soon
        backend: { endpoints: ["not-an-address", "127.0.0.1:0"] }
        canary:
          backend: { endpoints: [] }
          weight: -1
          weightTotal: 0
          headerPattern: "("
"#;
    let r = weir.put_config(bad).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let errors = r.json()["errors"].as_array().cloned().expect("an errors list");
    let fields: BTreeSet<String> =
        errors.iter().map(|e| e["field"].as_str().expect("field").to_owned()).collect();
    let want: BTreeSet<String> = [
        "schema",
        "hosts[0].host",
        "hosts[1].rules[0].path",
        "hosts[1].rules[0].pathType",
        "hosts[1].rules[0].responseTimeout",
        "hosts[1].rules[0].backend.endpoints[0]",
        "hosts[1].rules[0].backend.endpoints[1]",
        "hosts[1].rules[0].canary.weight",
        "hosts[1].rules[0].canary.weightTotal",
        "hosts[1].rules[0].canary.headerPattern",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(fields, want, "errors: {errors:#?}");
    assert!(errors.iter().all(|e| !e["reason"].as_str().unwrap_or_default().is_empty()));

    // A document that does not parse is refused too, with one error saying so.
    let r = weir.put_config("schema: weir/v1\nhosts: [ { unknownField: 1 } ]\n").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"].as_array().map(Vec::len), Some(1));

    // The old table is untouched and still serves.
    let after = weir.admin_get("/config").await.json();
    assert_eq!(after["version"], "good-1");
    assert_eq!(after["generation"], before["generation"]);
    let served = weir.get("app.test", "/").await;
    assert_eq!((served.status.as_u16(), served.upstream()), (200, "stable"));
    weir.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_the_weight_200_times_under_load_fails_no_request() {
    const CLIENTS: usize = 32;
    const SWAPS: usize = 200;
    /// Per-client ceiling, so the loop is bounded even if `stop` were never set.
    const MAX_PER_CLIENT: usize = 50_000;
    let (stable, canary) = (Upstream::start("stable").await, Upstream::start("canary").await);
    let weir = Weir::with(&table("w-start", &stable, &canary, 50)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    // Every client has made one successful request before the swaps start.
    let started = Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (stop, sent, started, addr) = (stop.clone(), sent.clone(), started.clone(), weir.data);
        clients.spawn(async move {
            let mut conn = H1::connect(addr).await;
            let mut failures = Vec::new();
            for i in 0..MAX_PER_CLIENT {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match conn.send(weir_proxy::testkit::request("app.test", "/", &[])).await {
                    Ok(r) if r.status == 200 && matches!(r.upstream(), "stable" | "canary") => {}
                    Ok(r) => failures.push(format!("status {} from {}", r.status, r.upstream())),
                    Err(e) => {
                        failures.push(format!("error: {e}"));
                        conn = H1::connect(addr).await;
                    }
                }
                sent.fetch_add(1, Ordering::Relaxed);
                if i == 0 {
                    started.wait().await;
                }
            }
            failures
        });
    }
    within("every client's first request", started.wait()).await;

    let at_start = sent.load(Ordering::Relaxed);
    for i in 0..SWAPS {
        let weight = [0, 10, 50, 90, 100][i % 5];
        let r = weir.put_config(&table(&format!("w-{i}"), &stable, &canary, weight)).await;
        assert_eq!(r.status, 200, "swap {i}: {}", r.text());
    }
    let during = sent.load(Ordering::Relaxed) - at_start;
    stop.store(true, Ordering::Relaxed);

    let mut failures = Vec::new();
    while let Some(result) = within("clients to stop", clients.join_next()).await {
        failures.extend(result.expect("client task"));
    }
    let total = sent.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(during >= SWAPS, "only {during} requests ran during the {SWAPS} swaps");
    let upstream_conns = stable.connections() + canary.connections();
    eprintln!(
        "{total} requests by {CLIENTS} clients, {during} of them during {SWAPS} swaps; none failed; \
         {upstream_conns} upstream connections"
    );

    // Pools outlive swaps: upstream connections are bounded by the clients' concurrency
    // (at most CLIENTS per side at once, plus a few opened while an idle one was still
    // finishing), not by the number of swaps or requests.
    assert!(upstream_conns <= 4 * CLIENTS, "{upstream_conns} upstream connections for {CLIENTS} clients");

    // The split follows the weight in force.
    let mut conn = H1::connect(weir.data).await;
    for (weight, want) in [(0, "stable"), (100, "canary")] {
        let r = weir.put_config(&table(&format!("final-{weight}"), &stable, &canary, weight)).await;
        assert_eq!(r.status, 200);
        for _ in 0..200 {
            assert_eq!(conn.get("app.test", "/", &[]).await.upstream(), want, "weight {weight}");
        }
    }
    drop(conn);
    weir.stop().await;
}

/// A fresh directory for one test's socket, under the system temp dir.
fn socket_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-admin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// One request on a new connection to the Unix socket at `path`.
async fn over_unix(
    path: &std::path::Path,
    method: http::Method,
    uri: &str,
    body: String,
) -> weir_proxy::testkit::Reply {
    let stream = within("connect to the admin socket", tokio::net::UnixStream::connect(path))
        .await
        .expect("connect to the admin socket");
    let mut sender = weir_proxy::testkit::client::h1_over(stream).await;
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::HOST, "localhost")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("request");
    let resp = within("the admin API to answer", sender.send_request(req)).await.expect("an answer");
    within("the body", weir_proxy::testkit::read(resp)).await.expect("the body")
}

#[tokio::test]
async fn the_admin_api_on_a_unix_socket_is_mode_0600_and_changes_routing() {
    use std::os::unix::fs::PermissionsExt;
    let up = Upstream::start("app").await;
    let dir = socket_dir("socket");
    let path = dir.join("admin.sock");
    // A stale socket file (its process gone) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("a stale socket"));
    let settings = weir_proxy::Settings {
        admin_listen: None,
        admin_socket: Some(path.clone()),
        ..weir_proxy::testkit::weir::settings()
    };
    let weir = weir_proxy::testkit::weir::start(settings, None).await;
    assert_eq!(weir.admin_addr, None, "no TCP admin listener");
    let mode = std::fs::metadata(&path).expect("the socket exists").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");

    let table = weir_proxy::testkit::one_upstream_table(up.addr);
    let reply = over_unix(&path, http::Method::PUT, "/config", table).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let routed = weir_proxy::testkit::get(weir.data_addr, "app.test", "/", &[]).await;
    assert_eq!((routed.status.as_u16(), routed.upstream()), (200, "app"));
    assert_eq!(over_unix(&path, http::Method::GET, "/readyz", String::new()).await.status, 200);

    // A second weir on the same, live socket is refused, and the live one keeps it.
    let again = weir_proxy::Settings {
        admin_listen: None,
        admin_socket: Some(path.clone()),
        ..weir_proxy::testkit::weir::settings()
    };
    match weir_proxy::start(again, None).await {
        Err(e) => assert!(e.to_string().contains("admin.sock"), "{e}"),
        Ok(_) => panic!("a second weir took a live admin socket"),
    }
    assert!(path.exists());
    within("weir to shut down", weir.shutdown()).await;
    assert!(!path.exists(), "the socket is removed at shutdown");

    // Anything at the path that is not a socket is never deleted.
    std::fs::write(&path, "not a socket").expect("a file");
    let on_file = weir_proxy::Settings {
        admin_listen: None,
        admin_socket: Some(path.clone()),
        ..weir_proxy::testkit::weir::settings()
    };
    match weir_proxy::start(on_file, None).await {
        Err(e) => assert!(e.to_string().contains("not a socket"), "{e}"),
        Ok(_) => panic!("weir replaced a regular file with its socket"),
    }
    assert_eq!(std::fs::read_to_string(&path).expect("the file is kept"), "not a socket");
    let _ = std::fs::remove_dir_all(&dir);
}
