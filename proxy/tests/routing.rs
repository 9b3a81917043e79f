//! Host and path matching through the proxy: exact and wildcard hosts, the default server,
//! Exact over Prefix, longest prefix, whole path elements, path normalization.

use weir_proxy::testkit::{Upstream, Weir, H1};

#[tokio::test]
async fn requests_reach_the_rule_their_host_and_path_select() {
    let names = ["app-root", "app-api", "app-api-v1", "app-docs", "wild", "default", "strict"];
    let mut ups = Vec::new();
    for n in names {
        ups.push(Upstream::start(n).await);
    }
    let ep = |name: &str| format!("\"{}\"", ups.iter().find(|u| u.name == name).expect("upstream").addr);
    let yaml = format!(
        "schema: weir/v1
hosts:
  - host: app.example.com
    rules:
      - {{ path: /, backend: {{ endpoints: [{root}] }} }}
      - {{ path: /api, pathType: Prefix, backend: {{ endpoints: [{api}] }} }}
      - {{ path: /api/v1, pathType: Exact, backend: {{ endpoints: [{v1}] }} }}
      - {{ path: /docs, pathType: Exact, backend: {{ endpoints: [{docs}] }} }}
  - host: '*.example.com'
    rules:
      - {{ path: /, backend: {{ endpoints: [{wild}] }} }}
  - host: strict.example.com
    rules:
      - {{ path: /only, pathType: Exact, backend: {{ endpoints: [{strict}] }} }}
  - rules:
      - {{ path: /, backend: {{ endpoints: [{default}] }} }}
",
        root = ep("app-root"),
        api = ep("app-api"),
        v1 = ep("app-api-v1"),
        docs = ep("app-docs"),
        wild = ep("wild"),
        strict = ep("strict"),
        default = ep("default"),
    );
    let weir = Weir::with(&yaml).await;
    // (Host header, path, who answers: an upstream's name or weir's status)
    let cases: &[(&str, &str, &str)] = &[
        ("app.example.com", "/", "app-root"),
        ("app.example.com", "/index.html", "app-root"),
        ("APP.Example.COM:8080", "/api", "app-api"),
        ("app.example.com.", "/api", "app-api"),
        ("app.example.com", "/api/", "app-api"),
        ("app.example.com", "/api/users?x=1", "app-api"),
        ("app.example.com", "/apis", "app-root"),
        ("app.example.com", "/api-v2", "app-root"),
        ("app.example.com", "/api/v1", "app-api-v1"),
        ("app.example.com", "/api/v1/", "app-api"),
        ("app.example.com", "/api/v1/x", "app-api"),
        ("app.example.com", "/docs", "app-docs"),
        ("app.example.com", "/docs/intro", "app-root"),
        ("app.example.com", "/static/../api/v1", "app-api-v1"),
        ("app.example.com", "/%61pi/v1", "app-api-v1"),
        ("app.example.com", "//api//x", "app-api"),
        ("shop.example.com", "/", "wild"),
        ("shop.example.com", "/api", "wild"),
        ("a.b.example.com", "/", "default"),
        ("example.com", "/", "default"),
        ("other.test", "/anything", "default"),
        ("127.0.0.1", "/", "default"),
        ("strict.example.com", "/only", "strict"),
        ("strict.example.com", "/only/more", "404"),
        ("strict.example.com", "/", "404"),
    ];
    let mut conn = H1::connect(weir.data).await;
    let mut wrong = Vec::new();
    for (host, path, want) in cases {
        let r = conn.get(host, path, &[]).await;
        let got = match r.upstream() {
            "-" => r.status.as_str().to_owned(),
            name => name.to_owned(),
        };
        if got != *want {
            wrong.push(format!("{host}{path}: got {got}, want {want}"));
        }
    }
    assert!(wrong.is_empty(), "misrouted:\n{}", wrong.join("\n"));
    drop(conn);
    weir.stop().await;
}

#[tokio::test]
async fn the_upstream_gets_the_original_path_and_query() {
    let up = Upstream::start("app").await;
    let weir = Weir::with(&format!(
        "schema: weir/v1\nhosts:\n  - rules:\n      - {{ path: /, backend: {{ endpoints: [\"{}\"] }} }}\n",
        up.addr
    ))
    .await;
    let r = weir.get("app.test", "/a/b%20c?q=1&r=%2F").await;
    assert_eq!(r.json()["uri"], "/a/b%20c?q=1&r=%2F");
    weir.stop().await;
}
