//! The canary decision through the real proxy: each ingress-nginx rule, end to end.
//! (The pure rules are table-tested in weir-config; here we prove the proxy applies them.)

mod common;

use common::{Upstream, Weir, H1};

struct Fixture {
    _stable: Upstream,
    _canary: Upstream,
    weir: Weir,
}

/// One host per policy; `S`/`C` are the stable and canary upstreams.
async fn fixture() -> Fixture {
    let stable = Upstream::start("stable").await;
    let canary = Upstream::start("canary").await;
    let (s, c) = (stable.addr, canary.addr);
    let rule = |host: &str, main: &str, can: &str, policy: &str| {
        format!(
            "  - host: {host}\n    rules:\n      - path: /\n        backend: {{ service: stable, endpoints: [{main}] }}\n        canary:\n          backend: {{ service: canary, endpoints: [{can}] }}\n{policy}"
        )
    };
    let (s, c) = (format!("\"{s}\""), format!("\"{c}\""));
    let yaml = [
        "schema: weir/v1\nversion: canary-e2e\nhosts:\n".to_string(),
        rule("value.test", &s, &c, "          header: X-Canary\n          headerValue: blue\n"),
        rule(
            "pattern.test",
            &s,
            &c,
            "          header: X-Canary\n          headerPattern: '^(alice|bob)@example\\.com$'\n",
        ),
        rule("keywords.test", &s, &c, "          header: X-Canary\n          cookie: canary\n"),
        rule(
            "forced.test",
            &s,
            &c,
            "          header: X-Canary\n          cookie: canary\n          weight: 100\n",
        ),
        rule("zero.test", &s, &c, "          weight: 0\n"),
        rule("all.test", &s, &c, "          weight: 1000\n          weightTotal: 1000\n"),
        rule("split.test", &s, &c, "          weight: 10\n"),
        rule("main-empty.test", "", &c, "          header: X-Canary\n          weight: 0\n"),
        rule("canary-empty.test", &s, "", "          header: X-Canary\n          weight: 100\n"),
        rule("both-empty.test", "", "", "          weight: 50\n"),
    ]
    .concat();
    let weir = Weir::with(&yaml).await;
    Fixture { _stable: stable, _canary: canary, weir }
}

/// Who answered: the upstream's name, or weir's own status.
async fn who(conn: &mut H1, host: &str, headers: &[(&str, &str)]) -> String {
    let r = conn.get(host, "/", headers).await;
    match r.upstream() {
        "-" => r.status.as_str().to_owned(),
        name => {
            assert_eq!(r.status, 200, "{host} {headers:?}");
            name.to_owned()
        }
    }
}

/// Each case is sent `REPEAT` times: a forced decision must hold every time.
const REPEAT: usize = 10;

/// (host, request headers, who must answer: an upstream's name or weir's status)
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

async fn check(cases: &[Case<'_>]) {
    let f = fixture().await;
    let mut conn = H1::connect(f.weir.data).await;
    for (host, headers, want) in cases {
        for _ in 0..REPEAT {
            assert_eq!(who(&mut conn, host, headers).await, *want, "{host} with {headers:?}");
        }
    }
    drop(conn);
    f.weir.stop().await;
}

#[tokio::test]
async fn header_value_sends_only_the_exact_value_to_the_canary() {
    check(&[
        ("value.test", &[("X-Canary", "blue")], "canary"),
        ("value.test", &[("x-canary", "blue")], "canary"),
        ("value.test", &[("X-Canary", "Blue")], "stable"),
        ("value.test", &[("X-Canary", "always")], "stable"),
        ("value.test", &[], "stable"),
    ])
    .await;
}

#[tokio::test]
async fn header_pattern_sends_matching_values_to_the_canary() {
    check(&[
        ("pattern.test", &[("X-Canary", "alice@example.com")], "canary"),
        ("pattern.test", &[("X-Canary", "bob@example.com")], "canary"),
        ("pattern.test", &[("X-Canary", "mallory@example.com")], "stable"),
        ("pattern.test", &[("X-Canary", "alice@example.com.evil")], "stable"),
    ])
    .await;
}

#[tokio::test]
async fn always_and_never_headers_force_the_side_whatever_the_weight() {
    check(&[
        ("keywords.test", &[("X-Canary", "always")], "canary"),
        ("forced.test", &[("X-Canary", "never")], "stable"),
        ("forced.test", &[("X-Canary", "Never")], "canary"),
        ("keywords.test", &[("X-Canary", "Always")], "stable"),
    ])
    .await;
}

#[tokio::test]
async fn never_header_beats_always_cookie() {
    check(&[
        ("keywords.test", &[("X-Canary", "never"), ("Cookie", "canary=always")], "stable"),
        ("forced.test", &[("X-Canary", "never"), ("Cookie", "canary=always")], "stable"),
        // a header value with no meaning falls through to the cookie
        ("keywords.test", &[("X-Canary", "maybe"), ("Cookie", "canary=always")], "canary"),
    ])
    .await;
}

#[tokio::test]
async fn cookie_always_and_never_force_the_side_whatever_the_weight() {
    check(&[
        ("keywords.test", &[("Cookie", "canary=always")], "canary"),
        ("keywords.test", &[("Cookie", "a=1; Canary = always; b=2")], "canary"),
        // As nginx's $cookie_: the value is taken as received, quotes and spaces included.
        ("keywords.test", &[("Cookie", "a=1; canary=always ; b=2")], "stable"),
        ("keywords.test", &[("Cookie", "canary=\"always\"")], "stable"),
        ("forced.test", &[("Cookie", "canary=never")], "stable"),
        ("forced.test", &[("Cookie", "canary=sometimes")], "canary"),
    ])
    .await;
}

#[tokio::test]
async fn weight_zero_sends_all_to_stable_and_weight_equal_to_total_sends_all_to_canary() {
    check(&[("zero.test", &[], "stable"), ("all.test", &[], "canary")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_percent_weight_splits_two_thousand_requests_within_five_sigma() {
    const N: usize = 2000;
    const CLIENTS: usize = 4;
    let f = fixture().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let addr = f.weir.data;
        tasks.spawn(async move {
            let mut conn = H1::connect(addr).await;
            let mut canary = 0usize;
            for _ in 0..N / CLIENTS {
                match who(&mut conn, "split.test", &[]).await.as_str() {
                    "canary" => canary += 1,
                    "stable" => {}
                    other => panic!("unexpected answer {other}"),
                }
            }
            canary
        });
    }
    let mut canary = 0;
    while let Some(n) = tasks.join_next().await {
        canary += n.expect("client task");
    }
    // Binomial(2000, 0.1): mean 200, sigma = sqrt(2000 * 0.1 * 0.9) ≈ 13.4; 5 sigma ≈ 67.
    let (mean, sigma) = (N as f64 * 0.1, (N as f64 * 0.1 * 0.9).sqrt());
    assert!(
        (canary as f64 - mean).abs() <= 5.0 * sigma,
        "{canary} of {N} went to the canary; expected {mean} ± {:.0}",
        5.0 * sigma
    );
    f.weir.stop().await;
}

#[tokio::test]
async fn a_weighted_choice_to_an_empty_side_falls_back_to_the_other_side() {
    check(&[
        // weight 0 would pick stable, which has no endpoint: the canary serves (D3)
        ("main-empty.test", &[], "canary"),
        // weight 100 would pick the canary, which has no endpoint: stable serves
        ("canary-empty.test", &[], "stable"),
    ])
    .await;
}

#[tokio::test]
async fn an_explicit_header_choice_of_an_empty_side_gets_503() {
    check(&[
        ("canary-empty.test", &[("X-Canary", "always")], "503"),
        ("main-empty.test", &[("X-Canary", "never")], "503"),
        // and the explicit choice of the side that can serve still works
        ("canary-empty.test", &[("X-Canary", "never")], "stable"),
        ("main-empty.test", &[("X-Canary", "always")], "canary"),
    ])
    .await;
}

#[tokio::test]
async fn both_sides_empty_gets_503() {
    check(&[("both-empty.test", &[], "503"), ("both-empty.test", &[("Cookie", "canary=always")], "503")])
        .await;
}

#[tokio::test]
async fn an_h2c_client_splitting_cookies_over_several_headers_is_decided_by_its_cookie() {
    let f = fixture().await;
    let mut h2 = common::h2c(f.weir.data).await;
    // keywords.test has weight 0 and forced.test weight 100: only the cookie can decide.
    let cases = [
        ("keywords.test", ["session=1", "canary=always"], "canary"),
        ("forced.test", ["canary=never", "theme=dark"], "stable"),
    ];
    for (host, cookies, want) in cases {
        for _ in 0..REPEAT {
            let mut req =
                http::Request::get(format!("http://{host}/")).body(common::empty()).expect("request");
            for c in cookies {
                req.headers_mut().append("cookie", http::HeaderValue::from_static(c));
            }
            let r = common::read(h2.send_request(req).await.expect("h2c")).await.expect("body");
            assert_eq!(r.upstream(), want, "cookies {cookies:?}");
        }
    }
    drop(h2);
    f.weir.stop().await;
}
