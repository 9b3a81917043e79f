//! Access control on the request path (issue 16): deny rules, IP allow/deny lists on the
//! table's client address (TCP peer, trusted X-Forwarded-For, PROXY protocol v1/v2), basic
//! auth per hash format and across a Secret change, external auth (allow, 401, 403, signin
//! redirect, down, timeout, copied and forged headers, cache), and what the metrics record.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weir_proxy::testkit::exposition::{find, scrape_until};
use weir_proxy::testkit::weir::{metrics_settings, serving, settings};
use weir_proxy::testkit::{get, raw, refused_addr, within, Upstream, Weir, H1, WAIT};
use weir_proxy::Settings;

/// A table for `app.test` whose rules are `rules` (YAML list items, indented 6), all to `up`,
/// with `head` (top-level keys such as `clientAddress`) added.
fn table(head: &str, up: SocketAddr, rules: &[(&str, &str)]) -> String {
    let mut yaml = format!("schema: weir/v1\n{head}hosts:\n  - host: app.test\n    rules:\n");
    for (path, extra) in rules {
        yaml.push_str(&format!(
            "      - path: {path}\n        pathType: Prefix\n        backend: {{ endpoints: [\"{up}\"] }}\n{extra}"
        ));
    }
    yaml
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

// ---------------------------------------------------------------- deny rules, IP rules

#[tokio::test]
async fn a_deny_rule_answers_its_status_and_reaches_no_backend() {
    let up = Upstream::start("app").await;
    let weir = Weir::with(&table(
        "",
        up.addr,
        &[("/refused", "        deny: { status: 503, reason: \"refused Ingress\" }\n"), ("/", "")],
    ))
    .await;
    let r = weir.get("app.test", "/refused/x").await;
    assert_eq!((r.status, r.upstream()), (StatusCode::SERVICE_UNAVAILABLE, "-"));
    assert!(!r.text().contains("refused Ingress"), "the reason is not for clients: {}", r.text());
    assert_eq!(weir.get("app.test", "/open").await.upstream(), "app");
    assert_eq!(up.hits(), 1);
    weir.stop().await;
}

#[tokio::test]
async fn ipv4_peers_are_allowed_and_denied_by_the_lists() {
    let up = Upstream::start("app").await;
    let rules = [
        ("/allowed", "        access: { allow: [127.0.0.0/8] }\n"),
        ("/elsewhere", "        access: { allow: [10.0.0.0/8, '2001:db8::/32'] }\n"),
        ("/denied", "        access: { deny: [127.0.0.1] }\n"),
        ("/deny-first", "        access: { allow: [127.0.0.0/8], deny: [127.0.0.0/24] }\n"),
        ("/v6-only", "        access: { allow: ['::/0'] }\n"),
    ];
    let weir = Weir::with(&table("", up.addr, &rules)).await;
    for (path, want) in
        [("/allowed", 200), ("/elsewhere", 403), ("/denied", 403), ("/deny-first", 403), ("/v6-only", 403)]
    {
        let r = weir.get("app.test", path).await;
        assert_eq!(r.status.as_u16(), want, "{path}: {}", r.text());
        assert_eq!(r.upstream(), if want == 200 { "app" } else { "-" }, "{path}");
    }
    assert_eq!(up.hits(), 1);
    weir.stop().await;
}

#[tokio::test]
async fn ipv6_peers_are_allowed_and_denied_by_the_lists() {
    let up = Upstream::start("app").await;
    let rules = [
        ("/allowed", "        access: { allow: ['::1/128'] }\n"),
        ("/v4-only", "        access: { allow: [0.0.0.0/0] }\n"),
        ("/denied", "        access: { deny: ['::/0'] }\n"),
    ];
    let listen: SocketAddr = "[::1]:0".parse().unwrap();
    let running = serving(Settings { listen, ..settings() }, &table("", up.addr, &rules)).await;
    for (path, want) in [("/allowed", 200), ("/v4-only", 403), ("/denied", 403)] {
        let r = get(running.data_addr, "app.test", path, &[]).await;
        assert_eq!(r.status.as_u16(), want, "{path}");
    }
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn an_ipv4_client_of_a_dual_stack_listener_is_its_ipv4_address() {
    let up = Upstream::start("app").await;
    let rules = [
        ("/v4", "        access: { allow: [127.0.0.1/32] }\n"),
        ("/v6", "        access: { allow: ['::/0'] }\n"),
    ];
    let listen: SocketAddr = "[::]:0".parse().unwrap();
    let running = serving(Settings { listen, ..settings() }, &table("", up.addr, &rules)).await;
    let v4 = SocketAddr::from(([127, 0, 0, 1], running.data_addr.port()));
    let r = get(v4, "app.test", "/v4", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Not `::ffff:127.0.0.1`: the address the client has, in every header that shows it.
    assert_eq!(r.echoed("x-real-ip"), ["127.0.0.1"]);
    assert_eq!(r.echoed("x-forwarded-for"), ["127.0.0.1"]);
    // Nor judged as an IPv6 client.
    assert_eq!(get(v4, "app.test", "/v6", &[]).await.status, StatusCode::FORBIDDEN);
    within("weir to stop", running.shutdown()).await;
}

#[tokio::test]
async fn a_trusted_proxy_chain_names_the_client_for_the_lists_x_real_ip_and_x_forwarded_for() {
    let up = Upstream::start("app").await;
    let head = "clientAddress: { from: forwardedFor, trustedProxies: [127.0.0.0/8, 10.0.0.0/8] }\n";
    let rules = [
        ("/v4", "        access: { allow: [198.51.100.0/24] }\n"),
        ("/v6", "        access: { allow: ['2001:db8::/32'] }\n"),
        ("/deny", "        access: { deny: [198.51.100.0/24] }\n"),
    ];
    let weir = Weir::with(&table(head, up.addr, &rules)).await;
    let send = |path: &'static str, xff: &'static str| async move {
        get(weir.data, "app.test", path, &[("x-forwarded-for", xff)]).await
    };
    // The rightmost untrusted hop is the client; a forged left entry changes nothing.
    let r = send("/v4", "6.6.6.6, 198.51.100.7, 10.1.1.1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.echoed("x-real-ip"), ["198.51.100.7"]);
    assert_eq!(r.echoed("x-forwarded-for"), ["6.6.6.6, 198.51.100.7, 10.1.1.1, 127.0.0.1"]);
    // A client past the allowed one is what counts.
    assert_eq!(send("/v4", "198.51.100.7, 203.0.113.1").await.status, StatusCode::FORBIDDEN);
    assert_eq!(send("/v6", "[2001:db8::5]").await.status, StatusCode::OK);
    assert_eq!(send("/v6", "2001:db9::5").await.status, StatusCode::FORBIDDEN);
    assert_eq!(send("/deny", "198.51.100.7").await.status, StatusCode::FORBIDDEN);
    assert_eq!(send("/deny", "203.0.113.1").await.status, StatusCode::OK);
    // An entry that is not an address: the client is unknown, refused by any list.
    assert_eq!(send("/v4", "198.51.100.7, not-an-ip").await.status, StatusCode::FORBIDDEN);
    weir.stop().await;
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let up = Upstream::start("app").await;
    let rules = [("/v4", "        access: { allow: [198.51.100.0/24] }\n")];
    for head in ["", "clientAddress: { from: forwardedFor, trustedProxies: [10.0.0.0/8] }\n"] {
        let weir = Weir::with(&table(head, up.addr, &rules)).await;
        let r = get(weir.data, "app.test", "/v4", &[("x-forwarded-for", "198.51.100.7")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "table head {head:?}");
        weir.stop().await;
    }
    assert_eq!(up.hits(), 0);
}

/// One request after `header` on a new connection, answered with `Connection: close`.
async fn after_proxy_header(addr: SocketAddr, header: &[u8], path: &str) -> String {
    sent_after_proxy_header(addr, header, path, "").await
}

/// As [`after_proxy_header`], with `extra` header lines (each ending in CRLF).
async fn sent_after_proxy_header(addr: SocketAddr, header: &[u8], path: &str, extra: &str) -> String {
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(
        format!("GET {path} HTTP/1.1\r\nhost: app.test\r\nconnection: close\r\n{extra}\r\n").as_bytes(),
    );
    let mut stream = within("connect", TcpStream::connect(addr)).await.expect("connect");
    stream.write_all(&bytes).await.expect("write");
    let mut out = Vec::new();
    // A reset (weir closed with the request unread) ends the answer as a close does.
    let _ = within("the answer and close", stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn v2_header(source: &str, dest: &str) -> Vec<u8> {
    use ppp::v2;
    let (s, d): (SocketAddr, SocketAddr) = (source.parse().unwrap(), dest.parse().unwrap());
    v2::Builder::with_addresses(v2::Version::Two | v2::Command::Proxy, v2::Protocol::Stream, (s, d))
        .build()
        .expect("a v2 header")
}

#[tokio::test]
async fn the_proxy_protocol_names_the_client_in_v1_and_v2() {
    let up = Upstream::start("app").await;
    let head = "clientAddress: { from: proxyProtocol }\n";
    let rules = [
        ("/v4", "        access: { allow: [198.51.100.0/24] }\n"),
        ("/v6", "        access: { allow: ['2001:db8::/32'] }\n"),
        ("/", ""),
    ];
    let weir = Weir::with(&table(head, up.addr, &rules)).await;
    let ok = after_proxy_header(weir.data, b"PROXY TCP4 198.51.100.7 10.0.0.1 40000 80\r\n", "/v4").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("\"x-real-ip\":[\"198.51.100.7\"]"), "X-Real-IP is the PROXY source: {ok}");
    assert!(ok.contains("\"x-forwarded-for\":[\"198.51.100.7\"]"), "{ok}");
    let no = after_proxy_header(weir.data, b"PROXY TCP4 203.0.113.1 10.0.0.1 40000 80\r\n", "/v4").await;
    assert!(no.starts_with("HTTP/1.1 403"), "{no}");
    let v6 = after_proxy_header(weir.data, &v2_header("[2001:db8::5]:4000", "[2001:db8::1]:80"), "/v6").await;
    assert!(v6.starts_with("HTTP/1.1 200"), "{v6}");
    let v2_other = after_proxy_header(weir.data, &v2_header("192.0.2.1:4000", "10.0.0.1:80"), "/v6").await;
    assert!(v2_other.starts_with("HTTP/1.1 403"), "{v2_other}");
    // A client-sent X-Forwarded-For changes nothing: the PROXY source is the client.
    let forged = sent_after_proxy_header(
        weir.data,
        b"PROXY TCP4 203.0.113.1 10.0.0.1 40000 80\r\n",
        "/v4",
        "x-forwarded-for: 198.51.100.7\r\n",
    )
    .await;
    assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
    // No header, or a malformed one: 400 and closed, never served.
    let none = raw(weir.data, b"GET / HTTP/1.1\r\nhost: app.test\r\n\r\n").await;
    assert!(none.starts_with("HTTP/1.1 400"), "{none}");
    let bad =
        raw(weir.data, b"PROXY TCP4 999.1.1.1 10.0.0.1 1 80\r\nGET / HTTP/1.1\r\nhost: app.test\r\n\r\n")
            .await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    assert_eq!(up.hits(), 2);
    weir.stop().await;
}

#[tokio::test]
async fn a_proxy_protocol_listener_closes_peers_outside_its_trusted_proxies() {
    let up = Upstream::start("app").await;
    let head = "clientAddress: { from: proxyProtocol, trustedProxies: [10.0.0.0/8] }\n";
    let weir = Weir::with(&table(head, up.addr, &[("/", "")])).await;
    let closed = after_proxy_header(weir.data, b"PROXY TCP4 198.51.100.7 10.0.0.1 40000 80\r\n", "/").await;
    assert_eq!(closed, "", "closed without an answer");
    assert_eq!(up.hits(), 0);
    weir.stop().await;
}

// ---------------------------------------------------------------- basic auth

/// (user, password, htpasswd line) in each supported format.
const USERS: [(&str, &str, &str); 4] = [
    ("apr", "p@ss word", "apr:$apr1$saltsalt$11QAx5Oiaores.cTy1Ple."),
    ("sha", "secret", "sha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="),
    ("bca", "U*U", "bca:$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    ("bcy", "U*U", "bcy:$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
];

fn basic_rule(realm: &str, lines: &[&str]) -> String {
    let users: Vec<String> = lines.iter().map(|l| format!("'{l}'")).collect();
    format!("        access:\n          basicAuth: {{ realm: \"{realm}\", users: [{}] }}\n", users.join(", "))
}

#[tokio::test]
async fn basic_auth_checks_each_hash_format_and_challenges_otherwise() {
    let up = Upstream::start("app").await;
    let lines: Vec<&str> = USERS.iter().map(|u| u.2).collect();
    let weir = Weir::with(&table("", up.addr, &[("/", &basic_rule("staff only", &lines))])).await;
    let mut client = H1::connect(weir.data).await;
    for (user, password, _) in USERS {
        let auth = basic(user, password);
        // Twice: the second is answered from the credential cache, and must agree.
        for round in 0..2 {
            let r = client.get("app.test", "/", &[("authorization", &auth)]).await;
            assert_eq!((r.status, r.upstream()), (StatusCode::OK, "app"), "{user} round {round}");
        }
        let r = client.get("app.test", "/", &[("authorization", &basic(user, "wrong"))]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{user} with a wrong password");
        assert_eq!(r.headers["www-authenticate"], "Basic realm=\"staff only\"");
    }
    let unknown = client.get("app.test", "/", &[("authorization", &basic("nobody", "secret"))]).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let missing = client.get("app.test", "/", &[]).await;
    assert_eq!((missing.status, missing.upstream()), (StatusCode::UNAUTHORIZED, "-"));
    assert_eq!(missing.headers["www-authenticate"], "Basic realm=\"staff only\"");
    let bearer = client.get("app.test", "/", &[("authorization", "Bearer abc")]).await;
    assert_eq!(bearer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(up.hits(), 8);
    weir.stop().await;
}

#[tokio::test]
async fn a_changed_secret_takes_effect_with_the_table_and_the_old_password_stops_working() {
    let up = Upstream::start("app").await;
    let old = table("", up.addr, &[("/", &basic_rule("r", &["alice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="]))]);
    let new = table("", up.addr, &[("/", &basic_rule("r", &["alice:{SHA}DjwucjOQlKagdnNdNvbhVN0Qar0="]))]);
    let weir = Weir::with(&old).await;
    let (old_auth, new_auth) = (basic("alice", "secret"), basic("alice", "n3w-pass"));
    let send = |auth: String| {
        let data = weir.data;
        async move { get(data, "app.test", "/", &[("authorization", &auth)]).await.status }
    };
    assert_eq!(send(old_auth.clone()).await, StatusCode::OK);
    assert_eq!(send(new_auth.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(weir.put_config(&new).await.status, StatusCode::OK);
    // The old password was cached as good under the old table: it must not outlive it.
    assert_eq!(send(old_auth).await, StatusCode::UNAUTHORIZED);
    assert_eq!(send(new_auth).await, StatusCode::OK);
    weir.stop().await;
}

// ---------------------------------------------------------------- external auth

/// An auth service that answers by the request's `x-test-auth` header: `allow` (200 with
/// X-Auth-Request-User: alice), `allow-anon` (200, no identity), `deny401` (401 with a
/// Bearer challenge), `deny403`, `broken` (502), `slow` (200 after 2 s). Keeps the
/// headers of the last subrequest and counts them.
struct AuthService {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    last: Arc<Mutex<Option<(String, String, HeaderMap)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AuthService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AuthService {
    async fn start() -> AuthService {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the auth service");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(Mutex::new(None));
        let (h, l) = (hits.clone(), last.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (h, l) = (h.clone(), l.clone());
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    h.fetch_add(1, Ordering::SeqCst);
                    let path = req.uri().to_string();
                    *l.lock().unwrap() = Some((req.method().to_string(), path, req.headers().clone()));
                    let mode = req
                        .headers()
                        .get("x-test-auth")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    async move {
                        let mut resp = Response::new(Full::new(Bytes::from_static(b"auth says")));
                        match mode.as_str() {
                            "allow" => {
                                resp.headers_mut().insert("x-auth-request-user", "alice".parse().unwrap());
                                resp.headers_mut()
                                    .insert("x-auth-request-email", "alice@example.com".parse().unwrap());
                            }
                            "allow-anon" => {}
                            "deny401" => {
                                *resp.status_mut() = StatusCode::UNAUTHORIZED;
                                resp.headers_mut()
                                    .insert("www-authenticate", "Bearer realm=\"auth\"".parse().unwrap());
                            }
                            "deny403" => *resp.status_mut() = StatusCode::FORBIDDEN,
                            "slow" => tokio::time::sleep(Duration::from_secs(2)).await,
                            _ => *resp.status_mut() = StatusCode::BAD_GATEWAY,
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                conns.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        AuthService { addr, hits, last, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn last(&self) -> (String, String, HeaderMap) {
        self.last.lock().unwrap().clone().expect("a subrequest arrived")
    }
}

fn external_rule(url: &str, extra: &str) -> String {
    format!(
        "        access:\n          externalAuth:\n            url: \"{url}\"\n            responseHeaders: [X-Auth-Request-User, X-Auth-Request-Email]\n{extra}"
    )
}

#[tokio::test]
async fn external_auth_lets_a_2xx_through_with_its_headers_and_strips_forged_ones() {
    let up = Upstream::start("app").await;
    let auth = AuthService::start().await;
    let url = format!("http://{}/verify?from=weir", auth.addr);
    let rule = external_rule(&url, "            proxySetHeaders: { X-Auth-Tenant: blue }\n");
    let weir = Weir::with(&table("", up.addr, &[("/", &rule)])).await;

    let r = get(
        weir.data,
        "app.test",
        "/private/page?q=1",
        &[("x-test-auth", "allow"), ("x-auth-request-user", "mallory"), ("cookie", "s=1")],
    )
    .await;
    assert_eq!((r.status, r.upstream()), (StatusCode::OK, "app"), "{}", r.text());
    assert_eq!(r.echoed("x-auth-request-user"), ["alice"], "the auth service's identity, never the client's");
    assert_eq!(r.echoed("x-auth-request-email"), ["alice@example.com"]);
    let (method, uri, headers) = auth.last();
    assert_eq!((method.as_str(), uri.as_str()), ("GET", "/verify?from=weir"));
    assert_eq!(headers["x-original-url"], "http://app.test/private/page?q=1");
    assert_eq!(headers["x-original-method"], "GET");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-host"], "app.test");
    assert_eq!(headers["x-auth-tenant"], "blue");
    assert_eq!(headers["cookie"], "s=1", "the client's headers go to the auth service");
    assert_eq!(headers["host"], auth.addr.to_string());
    // One request id for the subrequest and the forwarded request.
    assert_eq!(r.echoed("x-request-id"), [headers["x-request-id"].to_str().unwrap()]);

    // An allowed answer without the identity headers: the client's are still gone.
    let anon =
        get(weir.data, "app.test", "/", &[("x-test-auth", "allow-anon"), ("x-auth-request-user", "mallory")])
            .await;
    assert_eq!(anon.status, StatusCode::OK);
    assert!(anon.echoed("x-auth-request-user").is_empty(), "{:?}", anon.echoed("x-auth-request-user"));
    weir.stop().await;
}

#[tokio::test]
async fn external_auth_401_and_403_go_back_to_the_client() {
    let up = Upstream::start("app").await;
    let auth = AuthService::start().await;
    let weir =
        Weir::with(&table("", up.addr, &[("/", &external_rule(&format!("http://{}/", auth.addr), ""))]))
            .await;
    let r = get(weir.data, "app.test", "/", &[("x-test-auth", "deny401")]).await;
    assert_eq!((r.status, r.upstream()), (StatusCode::UNAUTHORIZED, "-"));
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"auth\"");
    let r = get(weir.data, "app.test", "/", &[("x-test-auth", "deny403")]).await;
    assert_eq!((r.status, r.upstream()), (StatusCode::FORBIDDEN, "-"));
    assert_eq!(up.hits(), 0);
    weir.stop().await;
}

#[tokio::test]
async fn a_401_with_a_signin_page_redirects_there_with_the_original_url() {
    let up = Upstream::start("app").await;
    let auth = AuthService::start().await;
    let rules = [
        ("/plain", external_rule(&format!("http://{}/", auth.addr), "            signin: \"https://login.example/start\"\n")),
        (
            "/own-rd",
            external_rule(
                &format!("http://{}/", auth.addr),
                "            signin: \"https://login.example/start?rd=$scheme://$host$escaped_request_uri&x=1\"\n",
            ),
        ),
    ];
    let rules: Vec<(&str, &str)> = rules.iter().map(|(p, r)| (*p, r.as_str())).collect();
    let weir = Weir::with(&table("", up.addr, &rules)).await;
    let r = get(weir.data, "app.test", "/plain/a?b=c%20d", &[("x-test-auth", "deny401")]).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.headers["location"],
        "https://login.example/start?rd=http%3A%2F%2Fapp.test%2Fplain%2Fa%3Fb%3Dc%2520d"
    );
    let r = get(weir.data, "app.test", "/own-rd/x", &[("x-test-auth", "deny401")]).await;
    assert_eq!(r.headers["location"], "https://login.example/start?rd=http://app.test%2Fown-rd%2Fx&x=1");
    // A 403 is not sent to sign in.
    let r = get(weir.data, "app.test", "/plain", &[("x-test-auth", "deny403")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    weir.stop().await;
}

#[tokio::test]
async fn an_auth_service_that_fails_is_down_or_too_slow_gives_500() {
    let up = Upstream::start("app").await;
    let auth = AuthService::start().await;
    let rules = [
        ("/live", external_rule(&format!("http://{}/", auth.addr), "            timeout: 300ms\n")),
        ("/down", external_rule(&format!("http://{}/", refused_addr()), "")),
    ];
    let rules: Vec<(&str, &str)> = rules.iter().map(|(p, r)| (*p, r.as_str())).collect();
    let weir = Weir::with(&table("", up.addr, &rules)).await;
    for (path, mode) in [("/live", "broken"), ("/live", "slow"), ("/down", "allow")] {
        let r = get(weir.data, "app.test", path, &[("x-test-auth", mode)]).await;
        assert_eq!((r.status, r.upstream()), (StatusCode::INTERNAL_SERVER_ERROR, "-"), "{path} {mode}");
    }
    assert_eq!(up.hits(), 0);
    weir.stop().await;
}

#[tokio::test]
async fn allowed_answers_are_cached_under_the_rendered_key() {
    let up = Upstream::start("app").await;
    let auth = AuthService::start().await;
    let cache =
        "            cache: { key: \"$http_x_user\", durations: [{ statuses: [200], duration: 5m }] }\n";
    let weir =
        Weir::with(&table("", up.addr, &[("/", &external_rule(&format!("http://{}/", auth.addr), cache))]))
            .await;
    let send = |user: &'static str, mode: &'static str| {
        let data = weir.data;
        async move {
            get(
                data,
                "app.test",
                "/",
                &[("x-user", user), ("x-test-auth", mode), ("x-auth-request-user", "mallory")],
            )
            .await
        }
    };
    let first = send("u1", "allow").await;
    assert_eq!(first.echoed("x-auth-request-user"), ["alice"]);
    // Same key: answered from the cache (with the cached headers), however the request asks.
    let second = send("u1", "deny403").await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.echoed("x-auth-request-user"), ["alice"]);
    assert_eq!(auth.hits(), 1);
    // Another key asks again; a refusal whose status the durations do not name is not cached.
    assert_eq!(send("u2", "deny403").await.status, StatusCode::FORBIDDEN);
    assert_eq!(send("u2", "deny403").await.status, StatusCode::FORBIDDEN);
    assert_eq!(auth.hits(), 3);
    weir.stop().await;
}

#[tokio::test]
async fn a_refusal_is_cached_when_the_durations_name_its_status() {
    let up = Upstream::start("app").await;
    let auth = AuthService::start().await;
    let cache = "            cache: { key: \"$http_x_user\", durations: [{ statuses: [200], duration: 5m }, \
                 { statuses: [401], duration: 5m }] }\n";
    let weir =
        Weir::with(&table("", up.addr, &[("/", &external_rule(&format!("http://{}/", auth.addr), cache))]))
            .await;
    let send = |mode: &'static str| {
        let data = weir.data;
        async move { get(data, "app.test", "/", &[("x-user", "u1"), ("x-test-auth", mode)]).await }
    };
    let first = send("deny401").await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    // Remembered as refused, with its challenge: the service that would now allow is not asked.
    let second = send("allow").await;
    assert_eq!((second.status, second.upstream()), (StatusCode::UNAUTHORIZED, "-"));
    assert_eq!(second.headers["www-authenticate"], "Bearer realm=\"auth\"");
    assert_eq!((auth.hits(), up.hits()), (1, 0));
    weir.stop().await;
}

// ---------------------------------------------------------------- metrics

#[tokio::test]
async fn metrics_record_the_status_the_client_got_and_blame_no_backend() {
    let up = Upstream::start("app").await;
    let rules = [
        ("/ip", "        access: { allow: [10.0.0.0/8] }\n".to_string()),
        ("/basic", basic_rule("r", &["sha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="])),
        ("/ext", external_rule(&format!("http://{}/", refused_addr()), "")),
    ];
    let rules: Vec<(&str, &str)> = rules.iter().map(|(p, r)| (*p, r.as_str())).collect();
    let running = serving(metrics_settings(), &table("", up.addr, &rules)).await;
    for (path, want) in [("/ip", 403), ("/basic", 401), ("/ext", 500)] {
        assert_eq!(get(running.data_addr, "app.test", path, &[]).await.status.as_u16(), want);
    }
    let samples = scrape_until(&running, |s| {
        ["403", "401", "500"]
            .iter()
            .all(|st| !find(s, "nginx_ingress_controller_requests", &[("status", st)]).is_empty())
    })
    .await;
    for status in ["403", "401", "500"] {
        let hits =
            find(&samples, "nginx_ingress_controller_requests", &[("status", status), ("host", "app.test")]);
        assert_eq!(hits.len(), 1, "{status}: {hits:?}");
        assert_eq!(hits[0].value, 1.0);
    }
    // No upstream exchange: no upstream timing was observed for these requests.
    let upstream = find(&samples, "nginx_ingress_controller_connect_duration_seconds_count", &[]);
    assert!(upstream.iter().all(|s| s.value == 0.0), "{upstream:?}");
    assert_eq!(up.hits(), 0);
    let _ = WAIT;
    within("weir to stop", running.shutdown()).await;
}
