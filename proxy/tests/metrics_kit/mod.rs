//! Shared pieces of weir's end-to-end tests: switchable upstreams, a tiny HTTP client,
//! starting weir in-process on loopback port 0.
#![allow(dead_code)]

pub mod exposition;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use weir_proxy::{Running, Settings};

/// What an upstream answers; switchable while it runs.
pub struct Behaviour {
    pub status: AtomicU16,
    pub delay_ms: AtomicU64,
}

/// An upstream on 127.0.0.1:0 that names itself in `x-upstream` and the body.
pub struct Upstream {
    pub addr: SocketAddr,
    pub behaviour: Arc<Behaviour>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn upstream(name: &'static str) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
    let addr = listener.local_addr().expect("upstream addr");
    let behaviour = Arc::new(Behaviour { status: AtomicU16::new(200), delay_ms: AtomicU64::new(0) });
    let b = behaviour.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let b = b.clone();
            let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let b = b.clone();
                async move {
                    let delay = b.delay_ms.load(Ordering::Relaxed);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    let mut resp = Response::new(Full::new(Bytes::from(format!("{name}\n"))));
                    *resp.status_mut() =
                        http::StatusCode::from_u16(b.status.load(Ordering::Relaxed)).unwrap_or_default();
                    resp.headers_mut().insert("x-upstream", http::HeaderValue::from_static(name));
                    Ok::<_, Infallible>(resp)
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Upstream { addr, behaviour, task }
}

/// A keep-alive HTTP/1.1 client connection.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(conn);
        Client { sender }
    }

    /// GET `path` with `host` and extra `headers`; (status, x-upstream, body).
    pub async fn get(&mut self, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
        self.sender.ready().await.expect("connection ready");
        let mut req = Request::get(path).header("host", host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp =
            self.sender.send_request(req.body(Empty::new()).expect("request")).await.expect("response");
        let status = resp.status().as_u16();
        let who = resp.headers().get("x-upstream").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, who, String::from_utf8_lossy(&body).into_owned())
    }
}

/// One GET on a fresh connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let (status, _, body) = Client::connect(addr).await.get(host, path, &[]).await;
    (status, body)
}

/// A table: host `api.example.com`, `/` → ingress `sample-api` with a canary (weight
/// `weight`, `X-Canary` header), services `sample-api-stable` / `sample-api-canary`.
pub fn sample_table(stable: SocketAddr, canary: SocketAddr, weight: u32) -> weir_config::TableDoc {
    let yaml = format!(
        r#"schema: weir/v1
version: sample-1
hosts:
  - host: api.example.com
    rules:
      - path: /
        backend: {{ namespace: prod, ingress: sample-api, service: sample-api-stable, port: 80, endpoints: ["{stable}"] }}
        canary:
          backend: {{ namespace: prod, ingress: sample-api-canary, service: sample-api-canary, port: 80, endpoints: ["{canary}"] }}
          weight: {weight}
          header: X-Canary
"#
    );
    serde_yaml_ng::from_str(&yaml).expect("sample table parses")
}

/// Settings for an in-process weir: everything on 127.0.0.1:0, metrics listener on.
pub fn settings() -> Settings {
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    Settings {
        listen: local,
        tls_listen: None,
        admin_listen: Some(local),
        metrics_listen: Some(local),
        drain_timeout: Duration::from_secs(2),
        ..Settings::default()
    }
}

pub async fn start(settings: Settings, table: weir_config::TableDoc) -> Running {
    weir_proxy::start(settings, Some(table)).await.expect("weir starts")
}

/// The metrics text weir serves now.
pub async fn scrape(running: &Running) -> String {
    let addr = running.metrics_addr.expect("metrics listener");
    let (status, body) = get(addr, "weir", "/metrics").await;
    assert_eq!(status, 200);
    body
}

/// Scrape until `ready` holds for the samples (a request is recorded when its response
/// body is dropped, just after the client has read it), at most 5 s.
pub async fn scrape_until(
    running: &Running,
    ready: impl Fn(&[exposition::Sample]) -> bool,
) -> Vec<exposition::Sample> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let samples = exposition::parse(&scrape(running).await);
        if ready(&samples) || std::time::Instant::now() > deadline {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
