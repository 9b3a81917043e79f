//! ingress-nginx's routing annotations on the request path (issue 17): a host of 50 regex
//! paths (use-regex) matched against a request path, and a rewrite (rewrite-target with
//! capture groups) of the matched path, beside a 50-rule prefix host as the reference.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use weir_config::matching::normalize_request_path;
use weir_config::RouteTable;

const RULES: usize = 50;

/// A host of `RULES` rules: regex patterns like `/svc-7/(v[0-9]+)/(.*)` rewritten to `/$2`
/// (`regex`), or plain prefixes `/svc-7` (not `regex`).
fn table(regex: bool) -> RouteTable {
    let mut y =
        format!("schema: weir/v1\nhosts:\n  - host: app.example.com\n    regexPaths: {regex}\n    rules:\n");
    for i in 0..RULES {
        let (path, rewrite) = match regex {
            true => (format!("/svc-{i}/(v[0-9]+)/(.*)"), "\n        rewrite: { target: /$2 }".to_string()),
            false => (format!("/svc-{i}"), String::new()),
        };
        y.push_str(&format!(
            "      - path: '{path}'\n        backend: {{ endpoints: [\"10.0.0.{}:80\"] }}{rewrite}\n",
            i + 1
        ));
    }
    RouteTable::parse(&y).expect("bench table is valid")
}

fn routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("routing_50_rules");
    let path = "/svc-37/v2/orders/1234";
    let prefix = table(false);
    g.bench_function("prefix_match", |b| {
        b.iter(|| black_box(prefix.match_route(black_box("app.example.com"), black_box(path)).ok().flatten()))
    });
    let regex = table(true);
    g.bench_function("regex_match", |b| {
        b.iter(|| black_box(regex.match_route(black_box("app.example.com"), black_box(path)).ok().flatten()))
    });
    let route = regex.match_route("app.example.com", path).unwrap().expect("matched").clone();
    let rewrite = route.rewrite.as_ref().expect("a rewrite");
    g.bench_function("rewrite", |b| {
        b.iter(|| {
            let normalized = normalize_request_path(black_box(path)).expect("a path");
            black_box(rewrite.apply(&normalized, black_box(Some("page=2"))))
        })
    });
    g.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
