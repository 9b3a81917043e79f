//! Additional weighted destinations (Argo Rollouts experiments' `additionalDestinations`):
//! the proxy splits a rule's weighted traffic between stable, the canary and each
//! destination within a band, and counts each destination's requests under its own
//! ingress-nginx `canary` label.

use std::collections::HashMap;

use weir_proxy::testkit::exposition::{parse, scrape, sum};
use weir_proxy::testkit::weir::{metrics_settings, serving};
use weir_proxy::testkit::{within, Upstream, H1};

#[tokio::test]
async fn weighted_traffic_splits_between_stable_the_canary_and_each_destination() {
    let (stable, canary) = (Upstream::start("stable").await, Upstream::start("canary").await);
    let (a, b) = (Upstream::start("exp-a").await, Upstream::start("exp-b").await);
    let table = format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules:
      - path: /
        backend: {{ namespace: shop, ingress: app, service: stable, port: 80, endpoints: [\"{}\"] }}
        canary:
          backend: {{ namespace: shop, ingress: app, service: canary, port: 80, endpoints: [\"{}\"] }}
          weight: 20
          destinations:
            - {{ backend: {{ namespace: shop, ingress: app, service: exp-a, port: 80, endpoints: [\"{}\"] }}, weight: 30 }}
            - {{ backend: {{ namespace: shop, ingress: app, service: exp-b, port: 80, endpoints: [\"{}\"] }}, weight: 10 }}
",
        stable.addr, canary.addr, a.addr, b.addr
    );
    let running = serving(metrics_settings(), &table).await;
    let n = 2_000usize;
    let mut conn = H1::connect(running.data_addr).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for i in 0..n {
        let reply = conn.get("app.test", &format!("/r{i}"), &[]).await;
        assert_eq!(reply.status, 200);
        *seen.entry(reply.upstream().to_owned()).or_default() += 1;
    }
    // Each share p of n within 5 standard deviations.
    for (name, p) in [("stable", 0.4), ("canary", 0.2), ("exp-a", 0.3), ("exp-b", 0.1)] {
        let got = seen.get(name).copied().unwrap_or(0) as f64;
        let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
        assert!(
            (got - mean).abs() <= 5.0 * sd,
            "{name}: {got} of {n}, expected {mean} ± {:.0}: {seen:?}",
            5.0 * sd
        );
    }
    let samples = parse(&scrape(&running).await);
    for (upstream, canary_label) in
        [("exp-a", "shop-exp-a-80"), ("exp-b", "shop-exp-b-80"), ("canary", "shop-canary-80")]
    {
        let counted = sum(&samples, "nginx_ingress_controller_requests", &[("canary", canary_label)]);
        assert_eq!(counted, seen[upstream] as f64, "{upstream}'s requests under canary={canary_label}");
    }
    let stable_counted = sum(&samples, "nginx_ingress_controller_requests", &[("canary", "")]);
    assert_eq!(stable_counted, seen["stable"] as f64);
    within("weir to stop", running.shutdown()).await;
}
