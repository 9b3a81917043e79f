//! One small GET over a keep-alive HTTP/1.1 connection: straight to a loopback upstream, and
//! through in-process weir to the same upstream. The difference is weir's cost per request
//! (with the client, weir and upstream sharing this machine's cores).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok\n"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

async fn connect(addr: SocketAddr) -> http1::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    sender
}

async fn requests(sender: &mut http1::SendRequest<Empty<Bytes>>, n: u64) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        sender.ready().await.expect("ready");
        let req = Request::get("/").header("host", "app.test").body(Empty::new()).expect("request");
        let resp = sender.send_request(req).await.expect("response");
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.expect("body");
    }
    started.elapsed()
}

fn proxy_path(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (up, weir) = rt.block_on(async {
        let up = upstream().await;
        let yaml = format!(
            "schema: weir/v1\nhosts:\n  - host: app.test\n    rules:\n      - {{ path: /, backend: {{ endpoints: [\"{up}\"] }} }}\n"
        );
        let settings = weir_proxy::Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: None,
            ..weir_proxy::Settings::default()
        };
        let weir = weir_proxy::start(settings, Some(serde_yaml_ng::from_str(&yaml).expect("doc")))
            .await
            .unwrap_or_else(|e| panic!("weir did not start: {e}"));
        (up, weir)
    });
    let mut direct = rt.block_on(connect(up));
    let mut through = rt.block_on(connect(weir.data_addr));

    let mut g = c.benchmark_group("proxy_path");
    g.bench_function("direct_to_upstream", |b| b.iter_custom(|n| rt.block_on(requests(&mut direct, n))));
    g.bench_function("through_weir", |b| b.iter_custom(|n| rt.block_on(requests(&mut through, n))));
    g.finish();

    // The ratio, from interleaved rounds so that load from elsewhere on the machine hits
    // both sides alike: median per-request time through weir over median direct.
    const ROUNDS: usize = 7;
    const PER_ROUND: u64 = 1000;
    let (mut d, mut t) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        d.push(rt.block_on(requests(&mut direct, PER_ROUND)).as_secs_f64() / PER_ROUND as f64);
        t.push(rt.block_on(requests(&mut through, PER_ROUND)).as_secs_f64() / PER_ROUND as f64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (d, t) = (median(&mut d), median(&mut t));
    println!(
        "proxy_path/ratio: direct {:.1} µs, through weir {:.1} µs per request: {:.2}x (+{:.1} µs)",
        d * 1e6,
        t * 1e6,
        t / d,
        (t - d) * 1e6
    );

    drop((direct, through));
    rt.block_on(weir.shutdown());
}

criterion_group!(benches, proxy_path);
criterion_main!(benches);
