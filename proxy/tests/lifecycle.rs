//! In-process start and shutdown: shutdown finishes requests in flight, closes idle
//! HTTP/1.1 and h2c connections instead of waiting for them, and stops accepting.

use weir_proxy::testkit::{empty, get, h2c, read, within, Upstream, Weir, H1};

#[tokio::test]
async fn shutdown_closes_idle_connections_and_then_refuses_new_ones() {
    let (_up, weir) = Weir::with_one_upstream().await;
    let data = weir.data;
    // Idle keep-alive connections of both kinds, each having served a request.
    let mut h1 = H1::connect(data).await;
    assert_eq!(h1.get("app.test", "/", &[]).await.status, 200);
    let mut h2 = h2c(data).await;
    let req = http::Request::get("http://app.test/").body(empty()).expect("request");
    assert_eq!(read(h2.send_request(req).await.expect("h2c")).await.expect("body").status, 200);

    // The drain timeout is 5 s: returning within WAIT without our help means the idle
    // connections were closed rather than waited for.
    let started = std::time::Instant::now();
    weir.stop().await;
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "shutdown waited {:?}", started.elapsed());
    assert!(H1::try_connect(data).await.is_err(), "still accepting after shutdown");
    drop((h1, h2));
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish() {
    let (up, weir) = Weir::with_one_upstream().await;
    let data = weir.data;
    let in_flight = tokio::spawn(async move { get(data, "app.test", "/?hold=1", &[]).await });
    up.wait_for_hits(1).await;
    let stopping = tokio::spawn(weir.stop());
    // New connections are refused once shutdown has begun; wait for that, bounded.
    within("weir to stop accepting", async {
        for _ in 0..100_000 {
            if H1::try_connect(data).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("weir kept accepting after shutdown began");
    })
    .await;
    up.release();
    let r = within("the in-flight response", in_flight).await.expect("request task");
    assert_eq!((r.status.as_u16(), r.upstream()), (200, "app"));
    within("shutdown to return", stopping).await.expect("stop task");
}

#[tokio::test]
async fn several_workers_share_the_data_port_and_drain() {
    let up = Upstream::start("app").await;
    let weir = Weir::start_with(Some(&weir_proxy::testkit::one_upstream_table(up.addr)), 3).await;
    let data = weir.data;
    // Sixteen connections (sixteen source ports: the kernel spreads them over the workers'
    // sockets), each serving keep-alive requests without a body (weir's exchange, pooled
    // per worker) and with one (hyper's client).
    let mut clients = Vec::new();
    for _ in 0..16 {
        clients.push(H1::connect(data).await);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        for _ in 0..4 {
            let reply = client.get("app.test", "/", &[]).await;
            assert_eq!((reply.status.as_u16(), reply.upstream()), (200, "app"), "connection {i}");
        }
        let post = http::Request::post("/?count=1")
            .header(http::header::HOST, "app.test")
            .body(weir_proxy::testkit::body("hello"))
            .expect("request");
        let reply = client.send(post).await.expect("POST through a worker");
        assert_eq!(reply.headers["x-received-bytes"], "5");
    }
    assert_eq!(up.hits(), 16 * 5);
    assert!(up.connections() <= 16 * 2, "upstream connections are reused: {}", up.connections());

    let started = std::time::Instant::now();
    weir.stop().await;
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "shutdown waited {:?}", started.elapsed());
    assert!(H1::try_connect(data).await.is_err(), "a worker still accepts after shutdown");
    drop(clients);
}
