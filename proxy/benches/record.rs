//! The cost of recording one finished request's metrics (the common case: its series
//! already exists), and of one scrape of a table with some series.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use http::Method;
use weir_config::{Side, TableDoc};
use weir_proxy::metrics::{Metrics, MetricsSettings};
use weir_proxy::pool::{PoolSettings, Pools};
use weir_proxy::record::{Fault, Record, UpstreamExchange};
use weir_proxy::routes::Routes;
use weir_proxy::upstream_tls::UpstreamTls;

fn table() -> TableDoc {
    let mut yaml = String::from("schema: weir/v1\nversion: bench\nhosts:\n");
    for h in 0..50 {
        yaml.push_str(&format!(
            "  - host: app{h}.example.com\n    rules:\n      - path: /\n        backend: {{ namespace: prod, ingress: app{h}, service: app{h}, port: 80, endpoints: [\"127.0.0.1:9\"] }}\n        canary:\n          backend: {{ namespace: prod, ingress: app{h}-canary, service: app{h}-canary, port: 80, endpoints: [\"127.0.0.1:10\"] }}\n          weight: 10\n"
        ));
    }
    serde_yaml_ng::from_str(&yaml).expect("bench table parses")
}

fn record_one(c: &mut Criterion) {
    let metrics = Arc::new(Metrics::new(MetricsSettings::default()));
    let routes = Routes::with_metrics(
        Pools::new(PoolSettings::default(), 1, UpstreamTls::new().expect("tls config")),
        Some(metrics.clone()),
    );
    routes.install(table()).expect("valid table");
    let snapshot = routes.load();
    let route = snapshot.table.routes().iter().position(|r| r.host == "app7.example.com");
    let rec = Record {
        started: Instant::now(),
        snapshot: snapshot.clone(),
        route,
        side: Some(Side::Canary),
        fell_back: false,
        client: "127.0.0.1:5000".parse().expect("addr"),
        host: "app7.example.com".into(),
        method: Method::GET,
        uri: http::uri::PathAndQuery::from_static("/api/items?page=2"),
        request_id: None,
        status: 200,
        fault: Fault::None,
        request_size: 180,
        request_body_counted: None,
        response_head_size: 120,
        upstream: Some(UpstreamExchange {
            addr: "127.0.0.1:10".parse().expect("addr"),
            status: 200,
            connect: Duration::ZERO,
            header: Duration::from_micros(800),
            response: Some(Duration::from_micros(950)),
            attempts: 1,
            sent_at: Instant::now(),
        }),
        cors: None,
        limit_slot: None,
        sticky: None,
        preferred_endpoint: None,
    };
    metrics.record(&rec, 2048, Duration::from_millis(1)); // create the series
    c.bench_function("metrics_record_one_request", |b| {
        b.iter(|| metrics.record(black_box(&rec), black_box(2048), black_box(Duration::from_micros(1200))))
    });
    // Two threads recording into the same series: the cost of sharing its cache lines.
    // Per request of wall time, so perfect scaling would halve the one-thread figure.
    c.bench_function("metrics_record_two_threads_same_series", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        for _ in 0..iters / 2 {
                            metrics.record(black_box(&rec), 2048, Duration::from_micros(1200));
                        }
                    });
                }
            });
            started.elapsed()
        })
    });

    // A scrape: 100 rule sides with 3 statuses each (300 label sets).
    for (i, r) in snapshot.table.routes().iter().enumerate() {
        for side in [Side::Stable, Side::Canary] {
            for status in [200, 404, 503] {
                let mut rec = Record { route: Some(i), side: Some(side), status, ..clone_record(&rec) };
                rec.host = r.host.clone();
                metrics.record(&rec, 100, Duration::from_millis(3));
            }
        }
    }
    c.bench_function("metrics_encode_300_series", |b| b.iter(|| black_box(metrics.encode(&snapshot)).len()));
}

fn clone_record(r: &Record) -> Record {
    Record {
        started: r.started,
        snapshot: r.snapshot.clone(),
        route: r.route,
        side: r.side,
        fell_back: r.fell_back,
        client: r.client,
        host: r.host.clone(),
        method: r.method.clone(),
        uri: r.uri.clone(),
        request_id: None,
        status: r.status,
        fault: r.fault,
        request_size: r.request_size,
        request_body_counted: None,
        response_head_size: r.response_head_size,
        upstream: r.upstream.clone(),
        cors: None,
        limit_slot: None,
        sticky: None,
        preferred_endpoint: None,
    }
}

criterion_group!(benches, record_one);
criterion_main!(benches);
