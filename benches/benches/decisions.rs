//! The per-request pure steps: match route, pick backend, load the snapshot.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderMap, HeaderValue};
use weir_config::{pick_backend, RouteTable, TableDoc};
use weir_proxy::pool::{PoolSettings, Pools};
use weir_proxy::routes::Routes;
use weir_proxy::upstream_tls::UpstreamTls;

/// `hosts` exact hosts with two rules each, a wildcard host, a 24-rule host, and three
/// canary hosts (weight only, header, cookie).
fn table_yaml(hosts: usize) -> String {
    let mut y = String::from("schema: weir/v1\nversion: bench\nhosts:\n");
    for i in 0..hosts {
        y.push_str(&format!(
            "  - host: host-{i}.example.com\n    rules:\n      - {{ path: /, backend: {{ service: web-{i}, endpoints: [\"10.0.{}.{}:8080\"] }} }}\n      - {{ path: /api, backend: {{ service: api-{i}, endpoints: [\"10.1.{}.{}:8080\"] }} }}\n",
            i / 250, i % 250 + 1, i / 250, i % 250 + 1
        ));
    }
    y.push_str("  - host: '*.preview.example.com'\n    rules:\n      - { path: /, backend: { endpoints: [\"10.9.0.1:80\"] } }\n");
    y.push_str("  - host: multi.example.com\n    rules:\n");
    for r in 0..12 {
        y.push_str(&format!(
            "      - {{ path: /svc/{r}, backend: {{ endpoints: [\"10.8.0.{}:80\"] }} }}\n      - {{ path: /svc/{r}/health, pathType: Exact, backend: {{ endpoints: [\"10.8.1.{}:80\"] }} }}\n",
            r + 1,
            r + 1
        ));
    }
    for (host, policy) in [
        ("weighted.example.com", "weight: 10"),
        ("header.example.com", "weight: 10, header: X-Canary"),
        ("cookie.example.com", "weight: 10, cookie: canary"),
    ] {
        y.push_str(&format!(
            "  - host: {host}\n    rules:\n      - path: /\n        backend: {{ endpoints: [\"10.7.0.1:80\"] }}\n        canary: {{ backend: {{ endpoints: [\"10.7.0.2:80\"] }}, {policy} }}\n"
        ));
    }
    y.push_str("  - rules:\n      - { path: /, backend: { endpoints: [\"10.6.0.1:80\"] } }\n");
    y
}

fn table(hosts: usize) -> RouteTable {
    RouteTable::parse(&table_yaml(hosts)).expect("bench table is valid")
}

fn match_route(c: &mut Criterion) {
    let mut g = c.benchmark_group("match_route");
    for hosts in [10usize, 10_000] {
        let t = table(hosts);
        let names: Vec<String> =
            (0..hosts).map(|i| format!("host-{}.example.com", (i * 7919) % hosts)).collect();
        let mut i = 0;
        // A different host each time (a fixed stride through all of them): cache misses
        // included, as with real traffic spread over many hosts.
        g.bench_function(BenchmarkId::new("exact_host", hosts), |b| {
            b.iter(|| {
                i = (i + 1) % names.len();
                black_box(t.match_route(black_box(&names[i]), black_box("/api/users/42")).ok().flatten())
            })
        });
        // The same host every time: the lookup itself, with everything it touches in cache.
        g.bench_function(BenchmarkId::new("exact_host_hot", hosts), |b| {
            b.iter(|| black_box(t.match_route(black_box("host-7.example.com"), black_box("/api/users/42"))))
        });
        g.bench_function(BenchmarkId::new("wildcard_host", hosts), |b| {
            b.iter(|| {
                black_box(t.match_route(black_box("pr-1234.preview.example.com"), black_box("/index.html")))
            })
        });
        g.bench_function(BenchmarkId::new("multi_rule_host", hosts), |b| {
            b.iter(|| black_box(t.match_route(black_box("multi.example.com"), black_box("/svc/11/items/7"))))
        });
        g.bench_function(BenchmarkId::new("default_server", hosts), |b| {
            b.iter(|| black_box(t.match_route(black_box("unknown.test:8080"), black_box("/"))))
        });
    }
    g.finish();
}

fn pick(c: &mut Criterion) {
    let t = table(10);
    let route = |host: &str| t.match_route(host, "/").expect("path").expect("route").clone();
    let (weighted, header, cookie) =
        (route("weighted.example.com"), route("header.example.com"), route("cookie.example.com"));
    let mut typical = HeaderMap::new();
    typical.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    typical.insert("accept", HeaderValue::from_static("*/*"));
    let mut with_header = typical.clone();
    with_header.insert("x-canary", HeaderValue::from_static("always"));
    let mut with_cookie = typical.clone();
    with_cookie
        .insert("cookie", HeaderValue::from_static("session=abc123; theme=dark; canary=always; lang=en"));

    let mut g = c.benchmark_group("pick_backend");
    g.bench_function("weight_only", |b| {
        b.iter(|| black_box(pick_backend(&weighted, black_box(&typical), |total| fastrand::u32(1..=total))))
    });
    g.bench_function("header_always", |b| {
        b.iter(|| black_box(pick_backend(&header, black_box(&with_header), |total| fastrand::u32(1..=total))))
    });
    g.bench_function("header_absent_falls_to_weight", |b| {
        b.iter(|| black_box(pick_backend(&header, black_box(&typical), |total| fastrand::u32(1..=total))))
    });
    g.bench_function("cookie_always", |b| {
        b.iter(|| black_box(pick_backend(&cookie, black_box(&with_cookie), |total| fastrand::u32(1..=total))))
    });
    g.finish();
}

fn snapshot(c: &mut Criterion) {
    let routes = Routes::new(Pools::new(PoolSettings::default(), 1, UpstreamTls::new().expect("tls config")));
    let doc: TableDoc = serde_yaml_ng::from_str(&table_yaml(10_000)).expect("doc");
    if routes.install(doc).is_err() {
        panic!("bench table is valid");
    }
    c.bench_function("snapshot_load", |b| b.iter(|| black_box(routes.load())));
}

criterion_group!(benches, match_route, pick, snapshot);
criterion_main!(benches);
