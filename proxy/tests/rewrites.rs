//! Regex hosts and rewrites through the proxy (ingress-nginx's rewrite-target example): the
//! upstream gets the rewritten path with the request's query on both carriers (weir's own
//! exchange and hyper's, for a body), X-Forwarded-Prefix replaces the client's, and a path no
//! pattern matches is 404.

use weir_proxy::testkit::weir::{serving, settings};
use weir_proxy::testkit::{body, get, request, within, Upstream, H1};

#[tokio::test]
async fn the_upstream_gets_the_rewritten_path_and_the_query() {
    let up = Upstream::start("stable").await;
    let yaml = format!(
        "schema: weir/v1
hosts:
  - host: app.test
    regexPaths: true
    rules:
      - path: /something(/|$)(.*)
        pathType: ImplementationSpecific
        backend: {{ endpoints: [\"{0}\"] }}
        rewrite: {{ target: /$2, forwardedPrefix: /something }}
      - path: /static/
        backend: {{ endpoints: [\"{0}\"] }}
",
        up.addr
    );
    let running = serving(settings(), &yaml).await;
    let cases = [
        ("/something", "/"),
        ("/something/", "/"),
        ("/something/new?a=1&b=2", "/new?a=1&b=2"),
        ("/Something/a%20b", "/a%20b"),
        ("/static/app.js", "/static/app.js"),
        ("/STATIC/app.js", "/STATIC/app.js"),
    ];
    for (path, want) in cases {
        let reply = get(running.data_addr, "app.test", path, &[("x-forwarded-prefix", "/client")]).await;
        assert_eq!(reply.status.as_u16(), 200, "{path}");
        assert_eq!(reply.json()["uri"], want, "{path}");
        let prefix =
            if path.to_ascii_lowercase().starts_with("/something") { "/something" } else { "/client" };
        assert_eq!(reply.echoed("x-forwarded-prefix"), vec![prefix], "{path}");
    }
    // A request with a body goes through hyper's client: rewritten the same.
    let mut req = request("app.test", "/something/orders?x=1", &[]);
    *req.method_mut() = http::Method::POST;
    *req.body_mut() = body("order");
    let reply = H1::connect(running.data_addr).await.send(req).await.expect("answer");
    assert_eq!((reply.status.as_u16(), reply.json()["uri"].as_str()), (200, Some("/orders?x=1")));
    // No pattern matches: the host keeps the request, 404.
    let reply = get(running.data_addr, "app.test", "/other", &[]).await;
    assert_eq!((reply.status.as_u16(), reply.upstream()), (404, "-"));
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn an_upstream_host_replaces_the_host_the_upstream_gets_and_not_x_forwarded_host() {
    let up = Upstream::start("stable").await;
    let yaml = format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules:
      - path: /
        backend: {{ endpoints: [\"{0}\"] }}
        upstreamHost: api.internal:8443
",
        up.addr
    );
    let running = serving(settings(), &yaml).await;
    let reply = get(running.data_addr, "app.test", "/x", &[]).await;
    assert_eq!(reply.echoed("host"), vec!["api.internal:8443"]);
    assert_eq!(reply.echoed("x-forwarded-host"), vec!["app.test"]);
    let mut req = request("app.test", "/x", &[]);
    *req.method_mut() = http::Method::POST;
    *req.body_mut() = body("b");
    let reply = H1::connect(running.data_addr).await.send(req).await.expect("answer");
    assert_eq!(reply.echoed("host"), vec!["api.internal:8443"], "hyper's client too");
    within("weir to stop", running.shutdown()).await;
}
