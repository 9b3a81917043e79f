//! A rule's `redirect` (ingress-nginx's permanent-redirect / temporal-redirect) and `appRoot`,
//! with ingress-nginx's documented examples: the status and Location, nginx's variables in the
//! URL, app-root only for `/`, and their order before ssl-redirect.

use weir_proxy::testkit::weir::{serving, settings, tls_settings};
use weir_proxy::testkit::{get, tls, within, Upstream};

fn table(stable: std::net::SocketAddr, rules: &str) -> String {
    format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules:
{}",
        rules.replace("STABLE", &stable.to_string())
    )
}

#[tokio::test]
async fn a_redirect_rule_answers_its_code_and_location_and_forwards_nothing() {
    let up = Upstream::start("stable").await;
    let rules = "      - path: /google
        backend: { endpoints: [\"STABLE\"] }
        redirect: { url: \"https://www.google.com\" }
      - path: /moved
        backend: { endpoints: [\"STABLE\"] }
        redirect: { url: \"https://new.example.com$request_uri\", code: 308 }
      - path: /maintenance
        backend: { endpoints: [\"STABLE\"] }
        redirect: { url: \"https://status.example.com/?from=$scheme://$host$uri&q=$args\", code: 302 }
      - path: /shop
        backend: { endpoints: [\"STABLE\"] }
        redirect: { url: \"/store$uri\", code: 307 }
      - path: /
        backend: { endpoints: [\"STABLE\"] }
        appRoot: /app1
";
    let running = serving(settings(), &table(up.addr, rules)).await;
    let cases = [
        ("/google/x", 301, "https://www.google.com"),
        ("/moved/a/b?c=1&d", 308, "https://new.example.com/moved/a/b?c=1&d"),
        ("/maintenance/x?y=2", 302, "https://status.example.com/?from=http://app.test/maintenance/x&q=y=2"),
        ("/", 302, "http://app.test/app1"),
        ("/shop/cart?id=3", 307, "http://app.test/store/shop/cart"),
    ];
    for (path, status, location) in cases {
        let reply = get(running.data_addr, "app.test", path, &[]).await;
        assert_eq!(reply.status.as_u16(), status, "{path}");
        assert_eq!(reply.headers["location"], location, "{path}");
        assert_eq!(reply.upstream(), "-", "{path}: answered by weir");
    }
    // app-root redirects only `/` itself; the rest of the rule is forwarded.
    let reply = get(running.data_addr, "app.test", "/app1/page", &[]).await;
    assert_eq!((reply.status.as_u16(), reply.upstream()), (200, "stable"));
    let reply = get(running.data_addr, "app.test", "/?x=1", &[]).await;
    assert_eq!(
        reply.headers["location"], "http://app.test/app1",
        "the query is not carried, as nginx's $uri test"
    );
    assert_eq!(up.hits(), 1, "only /app1/page reached the upstream");
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn a_rules_redirect_comes_before_ssl_redirect() {
    let up = Upstream::start("stable").await;
    let cert = tls::cert(&["app.test"]);
    let yaml = format!(
        "schema: weir/v1
hosts:
  - host: app.test
    tls: {}
    rules:
      - path: /old
        backend: {{ endpoints: [\"{1}\"] }}
        redirect: {{ url: \"https://other.example.com/\" }}
      - path: /
        backend: {{ endpoints: [\"{1}\"] }}
",
        tls::tls_yaml(&cert),
        up.addr
    );
    let running = serving(tls_settings(), &yaml).await;
    let reply = get(running.data_addr, "app.test", "/old", &[]).await;
    assert_eq!(reply.status.as_u16(), 301);
    assert_eq!(reply.headers["location"], "https://other.example.com/");
    let reply = get(running.data_addr, "app.test", "/page", &[]).await;
    assert_eq!(reply.status.as_u16(), 308, "the rest of the host still gets ssl-redirect");
    within("weir to stop", running.shutdown()).await;
}
