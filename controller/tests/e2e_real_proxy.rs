//! End to end with the real weir proxy in-process: fake API server → controller → weir's
//! admin API → a real request through weir's data listener to a loopback upstream.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;
use weir_controller::metrics::Metrics;
use weir_controller::testkit::fake_api::FakeApi;
use weir_controller::testkit::fixtures::*;
use weir_controller::Settings;

/// An upstream on 127.0.0.1:0 that answers with its own name.
async fn upstream(name: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| async move {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        Bytes::from(name),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

async fn who_answers(data: SocketAddr) -> Option<String> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::get(format!("http://{data}/"))
        .header("host", "app.example.com")
        .body(Empty::new())
        .ok()?;
    let resp = tokio::time::timeout(Duration::from_secs(2), client.request(req)).await.ok()?.ok()?;
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some(String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_changes_steer_real_requests_through_weir() {
    let (stable_addr, s_task) = upstream("stable").await;
    let (canary_addr, c_task) = upstream("canary").await;
    let api = FakeApi::start().await.expect("api");
    api.apply(&service("app").port("http", 80, "http").build());
    api.apply(&service("app-canary").port("http", 80, "http").build());
    api.apply(
        &endpoint_slice("app-a", "app")
            .port("http", i32::from(stable_addr.port()))
            .ready("127.0.0.1")
            .build(),
    );
    api.apply(
        &endpoint_slice("app-canary-a", "app-canary")
            .port("http", i32::from(canary_addr.port()))
            .ready("127.0.0.1")
            .build(),
    );
    let stable = ingress("app").host("app.example.com").path("/", "app", "http").build();
    api.apply(&stable);
    let canary = |w| argo_canary(&stable, "ro", "app", "app-canary").weight(w).build();
    api.apply(&canary(0));

    let proxy = weir_proxy::start(
        weir_proxy::Settings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls_listen: None,
            admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..Default::default()
        },
        None,
    )
    .await
    .expect("weir starts");
    let admin = proxy.admin_addr.expect("admin listener");
    let (stop, rx) = watch::channel(false);
    let ctl = tokio::spawn(weir_controller::run(
        api.client().expect("client"),
        Settings::new(&format!("http://{admin}")),
        Metrics::new().expect("metrics"),
        rx,
    ));
    for (weight, want, limit) in [(0, "stable", 10), (100, "canary", 1), (0, "stable", 1)] {
        api.apply(&canary(weight));
        let mut got = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(limit);
        while tokio::time::Instant::now() < deadline {
            got = who_answers(proxy.data_addr).await;
            if got.as_deref() == Some(want) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(got.as_deref(), Some(want), "weight {weight}");
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), ctl).await;
    proxy.shutdown().await;
    s_task.abort();
    c_task.abort();
}
