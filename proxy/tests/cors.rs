//! A rule's CORS with ingress-nginx's documented behaviour: every origin by default
//! (Allow-Origin `*`, credentials true, its default methods, headers and max age), a listed
//! origin reflected (a `*.` label is one DNS label, case-insensitive), others untouched;
//! a CORS `OPTIONS` answered 204 by weir before any access check, the upstream never asked;
//! weir's own answers (a 401) carry the headers too.

use weir_proxy::testkit::weir::{serving, settings};
use weir_proxy::testkit::{get, request, within, Upstream, H1};

const SHA_SECRET: &str = "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="; // "secret"

fn table(stable: std::net::SocketAddr) -> String {
    format!(
        "schema: weir/v1
hosts:
  - host: app.test
    rules:
      - path: /any
        backend: {{ endpoints: [\"{stable}\"] }}
        cors: {{}}
      - path: /listed
        backend: {{ endpoints: [\"{stable}\"] }}
        cors:
          allowOrigins: [\"https://origin-site.com:4443\", \"http://origin-site.com\", \"https://*.example.org\"]
          allowMethods: \"GET, POST\"
          allowHeaders: \"X-Custom,Content-Type\"
          allowCredentials: false
          exposeHeaders: \"X-Total\"
          maxAge: 600
        access: {{ basicAuth: {{ realm: staff, users: [\"alice:{SHA_SECRET}\"] }} }}
      - path: /
        backend: {{ endpoints: [\"{stable}\"] }}
"
    )
}

fn header(reply: &weir_proxy::testkit::Reply, name: &str) -> Option<String> {
    reply.headers.get(name).map(|v| v.to_str().unwrap().to_string())
}

async fn options(addr: std::net::SocketAddr, path: &str, origin: &str) -> weir_proxy::testkit::Reply {
    let mut req = request("app.test", path, &[("origin", origin), ("access-control-request-method", "POST")]);
    *req.method_mut() = http::Method::OPTIONS;
    H1::connect(addr).await.send(req).await.expect("answer")
}

#[tokio::test]
async fn cors_answers_preflights_and_marks_answers_as_ingress_nginx_does() {
    let up = Upstream::start("stable").await;
    let running = serving(settings(), &table(up.addr)).await;
    let addr = running.data_addr;

    // Every origin: any request gets the headers; OPTIONS is answered by weir.
    let reply = get(addr, "app.test", "/any/x", &[("origin", "https://anywhere.test")]).await;
    assert_eq!((reply.status.as_u16(), reply.upstream()), (200, "stable"));
    let want = [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-methods", "GET, PUT, POST, DELETE, PATCH, OPTIONS"),
        (
            "access-control-allow-headers",
            "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization",
        ),
        ("access-control-max-age", "1728000"),
    ];
    for (name, value) in want {
        assert_eq!(header(&reply, name).as_deref(), Some(value), "{name}");
    }
    assert_eq!(header(&reply, "access-control-expose-headers"), None);
    let hits = up.hits();
    let reply = options(addr, "/any/x", "https://anywhere.test").await;
    assert_eq!((reply.status.as_u16(), reply.upstream()), (204, "-"));
    assert_eq!(header(&reply, "access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(header(&reply, "content-type").as_deref(), Some("text/plain charset=UTF-8"));
    assert!(reply.body.is_empty());
    assert_eq!(up.hits(), hits, "the preflight never reached the upstream");

    // Listed origins: reflected; a preflight passes before basic auth asks for credentials.
    for origin in ["https://origin-site.com:4443", "HTTP://Origin-Site.com", "https://api.example.org"] {
        let reply = options(addr, "/listed", origin).await;
        assert_eq!(reply.status.as_u16(), 204, "{origin}");
        assert_eq!(header(&reply, "access-control-allow-origin").as_deref(), Some(origin), "{origin}");
        assert_eq!(header(&reply, "access-control-allow-methods").as_deref(), Some("GET, POST"));
        assert_eq!(header(&reply, "access-control-allow-headers").as_deref(), Some("X-Custom,Content-Type"));
        assert_eq!(header(&reply, "access-control-expose-headers").as_deref(), Some("X-Total"));
        assert_eq!(header(&reply, "access-control-max-age").as_deref(), Some("600"));
        assert_eq!(header(&reply, "access-control-allow-credentials"), None);
    }
    // The answer to a CORS request carries the headers whoever answers: here basic auth's 401.
    let reply = get(addr, "app.test", "/listed", &[("origin", "https://api.example.org")]).await;
    assert_eq!(reply.status.as_u16(), 401);
    assert_eq!(header(&reply, "access-control-allow-origin").as_deref(), Some("https://api.example.org"));
    // Not listed (another site, two labels for `*.`, another port): no CORS, and OPTIONS is
    // an ordinary request (here refused by basic auth like any other).
    for origin in ["https://evil.test", "https://a.b.example.org", "https://origin-site.com:4444", "null"] {
        let reply = options(addr, "/listed", origin).await;
        assert_eq!(reply.status.as_u16(), 401, "{origin}");
        assert_eq!(header(&reply, "access-control-allow-origin"), None, "{origin}");
    }
    // No CORS on the rule: nothing added, OPTIONS forwarded.
    let reply = options(addr, "/other", "https://anywhere.test").await;
    assert_eq!((reply.status.as_u16(), reply.upstream()), (200, "stable"));
    assert_eq!(header(&reply, "access-control-allow-origin"), None);
    within("weir to stop", running.shutdown()).await;
}
