//! Session affinity (issue 17: ingress-nginx's `affinity: cookie`, `session-cookie-*`,
//! `affinity-mode`, `affinity-canary-behavior`) and weir's sticky canary assignment:
//! a cookie keeps a client on its endpoint and side, across table swaps that change the
//! endpoints and the canary weight; a point cookie keeps a client's side while the weight
//! grows 10 → 25 → 50 → 100. Real sockets on 127.0.0.1:0.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use http::StatusCode;
use weir_proxy::testkit::{within, Reply, Upstream, Weir, H1};

/// One rule of `host`: stable endpoints, an optional canary, and extra rule fields.
fn table(stable: &[SocketAddr], canary: Option<(&[SocketAddr], u32, &str)>, extra: &str) -> String {
    let list = |eps: &[SocketAddr]| eps.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
    let canary = canary.map_or(String::new(), |(eps, weight, more)| {
        format!(
            ", canary: {{ backend: {{ namespace: shop, service: web-canary, port: 80, endpoints: [{}] }}, weight: {weight}, header: X-Canary{more} }}",
            list(eps)
        )
    });
    format!(
        "schema: weir/v1\nhosts:\n  - host: shop.test\n    rules:\n      - {{ path: /, {extra} backend: {{ namespace: shop, service: web, port: 80, endpoints: [{}] }}{canary} }}\n",
        list(stable)
    )
}

/// The `name=value` of the reply's Set-Cookie named `name`, and the whole header.
fn set_cookie(reply: &Reply, name: &str) -> Option<(String, String)> {
    reply.headers.get_all(http::header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let pair = v.split(';').next()?.trim();
        pair.starts_with(&format!("{name}=")).then(|| (pair.to_string(), v.to_string()))
    })
}

/// Who answered: the upstream's name (`<name> <body length>`).
fn who(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.text());
    reply.text().split(' ').next().unwrap_or_default().to_string()
}

async fn upstreams(names: &[&'static str]) -> Vec<Upstream> {
    let mut out = Vec::new();
    for n in names {
        out.push(Upstream::plain(n).await);
    }
    out
}

fn addrs(ups: &[Upstream]) -> Vec<SocketAddr> {
    ups.iter().map(|u| u.addr).collect()
}

#[tokio::test]
async fn a_cookie_keeps_a_client_on_its_endpoint_balanced_and_persistent() {
    let ups = upstreams(&["a", "b", "c", "d"]).await;
    let eps = addrs(&ups);
    for mode in ["balanced", "persistent"] {
        let extra = format!(
            "affinity: {{ mode: {mode}, cookie: route, path: /, maxAge: 3600, sameSite: Lax, secure: true }},"
        );
        let weir = Weir::with(&table(&eps[..3], None, &extra)).await;
        let mut h1 = H1::connect(weir.data).await;

        // New clients: each gets a cookie with ingress-nginx's attributes, and they spread.
        let mut firsts = HashSet::new();
        let mut jar = Vec::new();
        for _ in 0..30 {
            let reply = h1.get("shop.test", "/", &[]).await;
            let (pair, whole) = set_cookie(&reply, "route").expect("a new client gets the cookie");
            assert!(whole.ends_with("; Path=/; Max-Age=3600; SameSite=Lax; Secure; HttpOnly"), "{whole}");
            firsts.insert(who(&reply));
            jar.push((pair, who(&reply)));
        }
        assert!(firsts.len() >= 2, "{mode}: new clients spread over the endpoints: {firsts:?}");

        // With its cookie, each client stays on its endpoint and gets no new cookie.
        for (pair, first) in &jar {
            for _ in 0..5 {
                let reply = h1.get("shop.test", "/", &[("cookie", pair)]).await;
                assert_eq!(&who(&reply), first, "{mode}: {pair}");
                assert!(set_cookie(&reply, "route").is_none(), "{mode}: a valid cookie is kept");
            }
        }

        // A scale-up (a fourth endpoint): persistent moves nobody, balanced only some, and
        // only to the new endpoint.
        assert_eq!(weir.put_config(&table(&eps, None, &extra)).await.status, StatusCode::OK);
        let mut moved = 0;
        for (pair, first) in &jar {
            let now = who(&h1.get("shop.test", "/", &[("cookie", pair)]).await);
            if &now != first {
                assert_eq!(now, "d", "{mode}: a client moves only to the new endpoint");
                moved += 1;
            }
        }
        println!("{mode}: {moved} of {} clients moved after a scale-up from 3 to 4 endpoints", jar.len());
        if mode == "persistent" {
            assert_eq!(moved, 0);
        }
        assert!(moved < jar.len() / 2 + 1, "{mode}: {moved}");

        // Its endpoint gone: the client is served elsewhere and gets a new cookie.
        let (pair, first) = &jar[0];
        let left: Vec<SocketAddr> = ups.iter().filter(|u| u.name != first.as_str()).map(|u| u.addr).collect();
        assert_eq!(weir.put_config(&table(&left, None, &extra)).await.status, StatusCode::OK);
        let reply = h1.get("shop.test", "/", &[("cookie", pair)]).await;
        assert_ne!(&who(&reply), first);
        if mode == "persistent" {
            assert!(set_cookie(&reply, "route").is_some(), "persistent: a new cookie for the new endpoint");
        }
        weir.stop().await;
    }
}

#[tokio::test]
async fn sticky_sides_survive_a_weight_change_and_the_canary_header_still_wins() {
    let ups = upstreams(&["stable", "canary"]).await;
    let (stable, canary) = ([ups[0].addr], [ups[1].addr]);
    let extra = "affinity: {},";
    let weir = Weir::with(&table(&stable, Some((&canary, 50, "")), extra)).await;
    let mut h1 = H1::connect(weir.data).await;
    let mut jar: Vec<(String, String)> = Vec::new();
    for _ in 0..60 {
        let reply = h1.get("shop.test", "/", &[]).await;
        let (pair, _) = set_cookie(&reply, "INGRESSCOOKIE").expect("a cookie for either side");
        jar.push((pair, who(&reply)));
    }
    let sides: HashMap<&str, usize> = jar.iter().fold(HashMap::new(), |mut m, (_, s)| {
        *m.entry(s.as_str()).or_default() += 1;
        m
    });
    println!("weight 50: new clients {sides:?}");
    assert!(sides.len() == 2, "both sides got clients at weight 50: {sides:?}");

    // The weight goes to 10, then 90: every client keeps its side (ingress-nginx's sticky).
    for weight in [10, 90] {
        assert_eq!(
            weir.put_config(&table(&stable, Some((&canary, weight, "")), extra)).await.status,
            StatusCode::OK
        );
        for (pair, side) in &jar {
            let reply = h1.get("shop.test", "/", &[("cookie", pair)]).await;
            assert_eq!(&who(&reply), side, "weight {weight}: {pair}");
        }
    }
    // weir, unlike ingress-nginx: the canary header wins over a stable session.
    let (on_stable, _) = jar.iter().find(|(_, s)| s == "stable").expect("a stable client");
    let reply = h1.get("shop.test", "/", &[("cookie", on_stable), ("x-canary", "always")]).await;
    assert_eq!(who(&reply), "canary");
    let (on_canary, _) = jar.iter().find(|(_, s)| s == "canary").expect("a canary client");
    let reply = h1.get("shop.test", "/", &[("cookie", on_canary), ("x-canary", "never")]).await;
    assert_eq!(who(&reply), "stable");

    // legacy: the canary sets no cookie, and a canary cookie pins nothing.
    let legacy = "affinity: { canaryBehavior: legacy },";
    assert_eq!(
        weir.put_config(&table(&stable, Some((&canary, 100, "")), legacy)).await.status,
        StatusCode::OK
    );
    let reply = h1.get("shop.test", "/", &[]).await;
    assert_eq!(who(&reply), "canary");
    assert!(set_cookie(&reply, "INGRESSCOOKIE").is_none(), "legacy: no cookie from the canary");
    let reply = h1.get("shop.test", "/", &[("cookie", on_stable)]).await;
    assert_eq!(who(&reply), "stable", "legacy: a stable session still stays on stable");
    weir.stop().await;
}

#[tokio::test]
async fn sticky_assignment_keeps_each_client_s_side_as_the_weight_grows() {
    const CLIENTS: usize = 400;
    let ups = upstreams(&["stable", "canary"]).await;
    let (stable, canary) = ([ups[0].addr], [ups[1].addr]);
    let sticky = ", stickyAssignment: { cookie: pt }";
    let weir = Weir::with(&table(&stable, Some((&canary, 10, sticky)), "")).await;
    let mut h1 = H1::connect(weir.data).await;

    // Each client's cookie jar: its point, once given.
    let mut jars: Vec<Option<String>> = vec![None; CLIENTS];
    let mut on_canary = vec![false; CLIENTS];
    for weight in [10u32, 25, 50, 100] {
        let yaml = table(&stable, Some((&canary, weight, sticky)), "");
        assert_eq!(weir.put_config(&yaml).await.status, StatusCode::OK);
        let mut canaries = 0;
        for (i, jar) in jars.iter_mut().enumerate() {
            let headers: Vec<(&str, &str)> = jar.as_deref().map(|c| ("cookie", c)).into_iter().collect();
            let reply = h1.get("shop.test", "/", &headers).await;
            match set_cookie(&reply, "pt") {
                Some((pair, whole)) => {
                    assert!(jar.is_none(), "a point is given once");
                    assert!(whole.contains("HttpOnly"), "{whole}");
                    *jar = Some(pair);
                }
                None => assert!(jar.is_some(), "a new client gets a point"),
            }
            let now = who(&reply) == "canary";
            assert!(!on_canary[i] || now, "weight {weight}: client {i} went back from the canary to stable");
            on_canary[i] = now;
            canaries += usize::from(now);
        }
        // Binomial band: n·p ± 5σ.
        let p = f64::from(weight) / 100.0;
        let (mean, sigma) = (CLIENTS as f64 * p, (CLIENTS as f64 * p * (1.0 - p)).sqrt());
        println!(
            "weight {weight}: {canaries} of {CLIENTS} clients on the canary (band {mean:.0} ± {:.0})",
            5.0 * sigma
        );
        assert!((canaries as f64 - mean).abs() <= 5.0 * sigma + 0.5, "weight {weight}: {canaries}");
    }
    assert!(on_canary.iter().all(|c| *c), "at 100 every client is on the canary");

    // Overrides still win: the header sends a canary client to stable.
    let jar = jars[0].as_deref().expect("a point");
    let reply =
        within("a request", h1.get("shop.test", "/", &[("cookie", jar), ("x-canary", "never")])).await;
    assert_eq!(who(&reply), "stable");
    weir.stop().await;
}

#[tokio::test]
async fn change_on_failure_points_the_cookie_at_the_endpoint_that_answered() {
    for change in [true, false] {
        let (flaky, b) = (Upstream::plain("flaky").await, Upstream::plain("b").await);
        let (flaky_addr, b_addr) = (flaky.addr, b.addr);
        let extra = format!("affinity: {{ mode: persistent, changeOnFailure: {change} }},");
        // A cookie for `flaky`, learned while it is the only endpoint.
        let weir = Weir::with(&table(&[flaky_addr], None, &extra)).await;
        let mut h1 = H1::connect(weir.data).await;
        let reply = h1.get("shop.test", "/", &[]).await;
        assert_eq!(who(&reply), "flaky");
        let (pair, _) = set_cookie(&reply, "INGRESSCOOKIE").expect("a cookie for flaky");
        // `flaky` goes away (connections refused) while still listed, beside `b`.
        flaky.stop();
        assert_eq!(weir.put_config(&table(&[flaky_addr, b_addr], None, &extra)).await.status, StatusCode::OK);
        let reply = h1.get("shop.test", "/", &[("cookie", &pair)]).await;
        assert_eq!(who(&reply), "b", "the cookie's endpoint failed: the next one answers");
        let renewed = set_cookie(&reply, "INGRESSCOOKIE");
        println!("changeOnFailure {change}: {renewed:?}");
        match change {
            true => {
                let (new_pair, _) = renewed.expect("the cookie is pointed at b");
                assert_ne!(new_pair, pair);
                let reply = h1.get("shop.test", "/", &[("cookie", &new_pair)]).await;
                assert_eq!(who(&reply), "b");
                assert!(set_cookie(&reply, "INGRESSCOOKIE").is_none(), "b's cookie is kept");
            }
            false => assert!(renewed.is_none(), "without change-on-failure the cookie stays"),
        }
        weir.stop().await;
        drop(b);
    }
}
