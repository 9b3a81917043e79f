//! The proxy's admin API client and the push loop.
//!
//! The loop holds the latest desired table and the version the proxy last reported. It
//! `PUT`s whenever they differ: after a new translation, after the proxy answered with
//! another version (a restarted proxy has none), and again after failures, with
//! exponential backoff (100 ms doubling to 5 s, jittered) while the proxy is unreachable.
//! Every ~1 s it `GET`s `/config` to notice a proxy that restarted and lost its table.
//! A table the proxy rejects (400) is not retried until the desired table changes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::Error;
use crate::metrics::Metrics;

/// One request's time limit; the admin API is in the pod and answers at once.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A translated table ready to push: its version and its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub version: String,
    pub body: Bytes,
}

/// What the proxy said to a `PUT /config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// 200: the proxy now serves this version.
    Accepted { version: Option<String> },
    /// 400: the proxy refused the table and kept its previous one.
    Rejected { body: String },
}

/// A small HTTP/1 client for the admin API.
#[derive(Clone)]
pub struct AdminClient {
    target: Target,
}

/// Where the admin API listens.
#[derive(Clone)]
enum Target {
    /// `http://host:port` (loopback TCP): a keep-alive client.
    Tcp { base: String, client: Box<Client<HttpConnector, Full<Bytes>>> },
    /// `unix:/path`: the proxy's Unix socket (mode 0600), a connection per request.
    Unix(PathBuf),
}

impl AdminClient {
    /// `base` like `http://127.0.0.1:10255` (plain HTTP: the admin API is on loopback), or
    /// `unix:/run/weir/admin.sock` (also `unix:///run/weir/admin.sock`) for the proxy's
    /// `--admin-socket`.
    pub fn new(base: &str) -> Result<AdminClient, Error> {
        if let Some(path) = base.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if !path.starts_with('/') || path.len() < 2 {
                return Err(Error::AdminUrl(base.into()));
            }
            return Ok(AdminClient { target: Target::Unix(PathBuf::from(path)) });
        }
        let base = base.trim_end_matches('/').to_string();
        let uri: Uri = format!("{base}/config").parse().map_err(|_| Error::AdminUrl(base.clone()))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(Error::AdminUrl(base));
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(AdminClient { target: Target::Tcp { base, client: Box::new(client) } })
    }

    async fn request(&self, method: Method, path: &str, body: Bytes) -> Result<(StatusCode, Bytes), Error> {
        let uri = match &self.target {
            Target::Tcp { base, .. } => format!("{base}{path}"),
            Target::Unix(_) => path.to_owned(),
        };
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(Error::AdminBuild)?;
        let exchange = async {
            let resp = match &self.target {
                Target::Tcp { client, .. } => client.request(req).await.map_err(Error::AdminRequest)?,
                Target::Unix(path) => unix_request(path, req).await?,
            };
            let status = resp.status();
            let body = resp.into_body().collect().await.map_err(Error::AdminBody)?.to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.map_err(|_| Error::AdminTimeout)?
    }

    /// `PUT /config` with a JSON table.
    pub async fn put_config(&self, body: Bytes) -> Result<PutOutcome, Error> {
        let (status, body) = self.request(Method::PUT, "/config", body).await?;
        match status {
            StatusCode::OK => Ok(PutOutcome::Accepted { version: version_of(&body)? }),
            StatusCode::BAD_REQUEST => {
                Ok(PutOutcome::Rejected { body: String::from_utf8_lossy(&body).into() })
            }
            other => Err(Error::AdminStatus(other)),
        }
    }

    /// The version the proxy serves; `None` when it has no table (404 or `version: null`).
    pub async fn current_version(&self) -> Result<Option<String>, Error> {
        let (status, body) = self.request(Method::GET, "/config", Bytes::new()).await?;
        match status {
            StatusCode::OK => version_of(&body),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(Error::AdminStatus(other)),
        }
    }

    /// `GET /guards`: the canary guards of the table the proxy serves.
    pub async fn guards(&self) -> Result<ProxyGuards, Error> {
        let (status, body) = self.request(Method::GET, "/guards", Bytes::new()).await?;
        match status {
            StatusCode::OK => serde_json::from_slice(&body).map_err(Error::AdminJson),
            other => Err(Error::AdminStatus(other)),
        }
    }
}

/// What `GET /guards` answers.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct ProxyGuards {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub guards: Vec<ProxyGuard>,
}

/// One guard of the proxy's table.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyGuard {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub revision: String,
    /// `Armed` or `Tripped`.
    pub state: String,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub tripped_at: Option<f64>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl ProxyGuards {
    /// The guard of WeirRoute `namespace/name` for canary `revision` (the translation names
    /// each WeirRoute's guard after it).
    pub fn find(&self, namespace: &str, name: &str, revision: &str) -> Option<&ProxyGuard> {
        self.guards.iter().find(|g| g.namespace == namespace && g.name == name && g.revision == revision)
    }
}

/// One request on a new connection to the Unix socket at `path`.
async fn unix_request(
    path: &std::path::Path,
    mut req: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, Error> {
    req.headers_mut().insert(http::header::HOST, http::HeaderValue::from_static("localhost"));
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|source| Error::AdminSocket { path: path.to_owned(), source })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(Error::AdminExchange)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "admin socket connection ended with an error");
        }
    });
    sender.send_request(req).await.map_err(Error::AdminExchange)
}

fn version_of(body: &[u8]) -> Result<Option<String>, Error> {
    #[derive(serde::Deserialize)]
    struct Head {
        version: Option<String>,
    }
    let head: Head = serde_json::from_slice(body).map_err(Error::AdminJson)?;
    Ok(head.version)
}

/// Timing of the push loop; tests shorten it.
#[derive(Debug, Clone, Copy)]
pub struct PushTiming {
    /// How often to ask the proxy which version it serves.
    pub poll: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for PushTiming {
    fn default() -> Self {
        PushTiming {
            poll: Duration::from_secs(1),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// Keep the proxy on the latest desired table until `shutdown` turns true. `acked` always
/// holds the version the proxy last acknowledged serving (its `PUT` answer or a poll), or
/// `None` while that is unknown: WeirRoute status reports only what the proxy has.
pub async fn push_loop(
    client: AdminClient,
    mut desired: watch::Receiver<Option<Arc<Desired>>>,
    metrics: Metrics,
    timing: PushTiming,
    acked: watch::Sender<Option<String>>,
    mut shutdown: watch::Receiver<bool>,
) {
    // What the proxy serves, as far as we know; `None` = unknown or no table.
    let mut proxy_has: Option<String> = None;
    let tell = |has: &Option<String>| {
        acked.send_if_modified(|v| {
            let changed = v != has;
            v.clone_from(has);
            changed
        });
    };
    let mut rejected: Option<String> = None;
    let mut delay = timing.backoff_min;
    let mut next_poll = Instant::now() + timing.poll;
    loop {
        let want = desired.borrow_and_update().clone();
        let mut failed = false;
        if let Some(want) = want.filter(|w| {
            proxy_has.as_deref() != Some(w.version.as_str())
                && rejected.as_deref() != Some(w.version.as_str())
        }) {
            match client.put_config(want.body.clone()).await {
                Ok(PutOutcome::Accepted { version }) => {
                    tracing::info!(version = %want.version, "pushed route table");
                    metrics.pushes.with_label_values(&["ok"]).inc();
                    metrics.last_push_time.set(unix_now());
                    proxy_has = Some(version.unwrap_or_else(|| want.version.clone()));
                    delay = timing.backoff_min;
                }
                Ok(PutOutcome::Rejected { body }) => {
                    tracing::error!(version = %want.version, %body, "proxy rejected the route table");
                    metrics.pushes.with_label_values(&["rejected"]).inc();
                    rejected = Some(want.version.clone());
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?delay, "push failed; proxy unavailable?");
                    metrics.pushes.with_label_values(&["failed"]).inc();
                    proxy_has = None;
                    failed = true;
                }
            }
        }
        tell(&proxy_has);
        let wake = if failed { Instant::now() + jitter(delay) } else { next_poll };
        if failed {
            delay = (delay * 2).min(timing.backoff_max);
        }
        tokio::select! {
            _ = crate::shutdown::stopped(&mut shutdown) => return,
            changed = desired.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep_until(wake) => {
                if Instant::now() >= next_poll {
                    next_poll = Instant::now() + timing.poll;
                    match client.current_version().await {
                        Ok(v) if v != proxy_has => {
                            tracing::info!(proxy = ?v, ours = ?proxy_has, "proxy serves another table; will push");
                            proxy_has = v;
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::debug!(%error, "polling the proxy failed");
                            proxy_has = None;
                        }
                    }
                    tell(&proxy_has);
                }
            }
        }
    }
}

/// 75–100 % of `d`, so replicas and restarts do not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.75 + fastrand::f64() * 0.25)
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}
