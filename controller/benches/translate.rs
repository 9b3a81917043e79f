//! Translation time at scale: 5,000 Ingresses (1,000 with Argo canaries), 20,000 endpoints.

use criterion::{criterion_group, criterion_main, Criterion};
use weir_controller::testkit::synthetic;
use weir_controller::{translate, Options};

fn bench(c: &mut Criterion) {
    let state = synthetic::cluster(5_000, 1_000, 20_000);
    let opts = Options::default();
    let t = translate(&state, &opts);
    assert!(t.diagnostics.is_empty(), "{:?}", &t.diagnostics[..1]);
    let mut group = c.benchmark_group("translate");
    group.sample_size(20);
    group.bench_function("5k_ingresses_1k_canaries_20k_endpoints", |b| {
        b.iter(|| translate(std::hint::black_box(&state), &opts))
    });
    group.bench_function("5k_ingresses_serialize_json", |b| b.iter(|| serde_json::to_vec(&t.doc)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
