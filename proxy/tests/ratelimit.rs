//! Rate limits through the proxy, nginx's `limit_req … burst nodelay` and `limit_conn`: a
//! burst of rps × multiplier above the first request passes, the rest gets 503 at once; the
//! rate refills within a tolerance band; an allowlisted client is never limited; requests
//! in progress per client are bounded and their slots freed when answered; each refusal is
//! counted in weir_rate_limited_total.

use std::time::{Duration, Instant};

use weir_proxy::testkit::exposition::{scrape_until, Sample};
use weir_proxy::testkit::weir::{metrics_settings, serving};
use weir_proxy::testkit::{get, within, Upstream};

fn table(stable: std::net::SocketAddr, slow: std::net::SocketAddr) -> String {
    format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules:
      - path: /limited
        backend: {{ endpoints: [\"{stable}\"] }}
        rateLimit: {{ zone: shop/api, rps: 5, burstMultiplier: 2 }}
      - path: /also
        backend: {{ endpoints: [\"{stable}\"] }}
        rateLimit: {{ zone: shop/api, rps: 5, burstMultiplier: 2 }}
      - path: /staff
        backend: {{ endpoints: [\"{stable}\"] }}
        rateLimit: {{ rps: 1, burstMultiplier: 1, allowlist: [127.0.0.0/8], status: 429 }}
      - path: /slow
        backend: {{ endpoints: [\"{slow}\"] }}
        rateLimit: {{ connections: 2 }}
"
    )
}

#[tokio::test]
async fn bursts_rates_allowlists_and_connections_are_limited_as_nginx_limits_them() {
    let up = Upstream::start("stable").await;
    let slow = Upstream::start("slow").await;
    let running = serving(metrics_settings(), &table(up.addr, slow.addr)).await;
    let addr = running.data_addr;

    // rps 5, multiplier 2: the first request and a burst of 10 pass at once, then 503.
    // Two rules of one zone count together.
    let mut statuses = Vec::new();
    for i in 0..16 {
        let path = if i % 2 == 0 { "/limited" } else { "/also" };
        statuses.push(get(addr, "app.test", path, &[]).await.status.as_u16());
    }
    let passed = statuses.iter().filter(|s| **s == 200).count();
    // Requests are sent one after another: up to one more may have drained meanwhile.
    assert!((11..=12).contains(&passed), "{statuses:?}");
    assert!(statuses[12..].iter().all(|s| *s == 503), "{statuses:?}");
    // At 5 per second, about 5 more pass over the next second (band: 3..=8, for a
    // loaded machine's pace).
    let start = Instant::now();
    let mut later = 0;
    while start.elapsed() < Duration::from_secs(1) {
        if get(addr, "app.test", "/limited", &[]).await.status.as_u16() == 200 {
            later += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!((3..=8).contains(&later), "{later} passed in the second after the burst");

    // The allowlist (loopback) is never limited, though rps 1 burst 1 would stop the third.
    for _ in 0..10 {
        assert_eq!(get(addr, "app.test", "/staff", &[]).await.status.as_u16(), 200);
    }

    // Two requests in progress at once per client: the third gets 503 while they last.
    slow.answer_after(Duration::from_millis(1500));
    let a = tokio::spawn(get(addr, "app.test", "/slow", &[]));
    let b = tokio::spawn(get(addr, "app.test", "/slow", &[]));
    slow.wait_for_hits(2).await;
    assert_eq!(get(addr, "app.test", "/slow", &[]).await.status.as_u16(), 503);
    assert_eq!(within("the slow answers", a).await.unwrap().status.as_u16(), 200);
    assert_eq!(within("the slow answers", b).await.unwrap().status.as_u16(), 200);
    slow.answer_after(Duration::ZERO);
    assert_eq!(get(addr, "app.test", "/slow", &[]).await.status.as_u16(), 200, "slots freed");

    let limited = (16 - passed) as f64;
    let label = |x: &Sample, k: &str| x.labels.get(k).cloned().unwrap_or_default();
    let samples = scrape_until(&running, |s| {
        s.iter().any(|x| {
            x.name == "weir_rate_limited_total"
                && label(x, "zone") == "shop/api"
                && label(x, "limit") == "rps"
                && x.value >= limited
        })
    })
    .await;
    let conns = samples.iter().find(|x| {
        x.name == "weir_rate_limited_total"
            && label(x, "limit") == "connections"
            && label(x, "zone") == "app.test/slow"
    });
    assert_eq!(conns.map(|x| x.value), Some(1.0));
    within("weir to stop", running.shutdown()).await;
}
