//! Peak memory of holding a 5,000-Ingress cluster and translating it: prints VmHWM.

use weir_controller::testkit::synthetic;
use weir_controller::{translate, Options};

fn vm(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

fn main() {
    println!("start: VmHWM {}", vm("VmHWM:"));
    let state = synthetic::cluster(5_000, 1_000, 20_000);
    println!("objects built: VmHWM {}, VmRSS {}", vm("VmHWM:"), vm("VmRSS:"));
    // The first translation checks every certificate; later ones reuse the verdicts.
    let started = std::time::Instant::now();
    let t = translate(&state, &Options::default());
    let cold = started.elapsed();
    let rounds: u32 = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(translate(&state, &Options::default()));
    }
    let warm = started.elapsed() / rounds.max(1);
    let json = serde_json::to_vec(&t.doc).unwrap_or_default();
    println!(
        "translated {} hosts, {} TLS bindings, {} diagnostics in {cold:?} (first), {warm:?} (again); \
         table JSON {} KiB",
        t.doc.hosts.len(),
        t.tls.len(),
        t.diagnostics.len(),
        json.len() / 1024
    );
    println!("after translate: VmHWM {} (peak), VmRSS {}", vm("VmHWM:"), vm("VmRSS:"));
}
