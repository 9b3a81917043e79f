//! One small GET over a keep-alive HTTP/1.1 connection: straight to a loopback upstream, and
//! through in-process weir to the same upstream. The difference is weir's cost per request
//! (with the client, weir and upstream sharing this machine's cores).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use weir_proxy::testkit::weir::{serving, settings};
use weir_proxy::testkit::{one_upstream_table, Upstream, H1};

async fn requests(client: &mut H1, n: u64) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        let reply = client.get("app.test", "/", &[]).await;
        assert_eq!(reply.status, 200);
    }
    started.elapsed()
}

fn proxy_path(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (up, weir) = rt.block_on(async {
        let up = Upstream::plain("app").await;
        let weir = serving(settings(), &one_upstream_table(up.addr)).await;
        (up, weir)
    });
    let mut direct = rt.block_on(H1::connect(up.addr));
    let mut through = rt.block_on(H1::connect(weir.data_addr));

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
    drop(up);
}

criterion_group!(benches, proxy_path);
criterion_main!(benches);
