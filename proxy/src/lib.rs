//! weir-proxy: the data plane.
//!
//! # The request path
//! Each request walks the same named steps; the per-request ones are functions of these
//! names in `serve.rs`, under one tracing span (`request`) per request:
//! 1. **accept** (`server.rs`) a TCP connection (within the connection limit);
//! 2. **TLS handshake** on the TLS listener, the certificate chosen by SNI (`tls.rs`);
//! 3. **serve connection**: HTTP/1.1, or HTTP/2 by prior knowledge, on one port; on the TLS
//!    port the protocol ALPN agreed on; bytes of neither close the connection;
//! 4. **take one snapshot** of the route table (`routes.rs`), held until the response ends;
//! 5. **check_request**: unambiguous framing, the one host the request is for (`request.rs`);
//! 6. **match_route**: host, then path (`weir_config::matching`); a rule may answer early
//!    (ssl-redirect, a declared body over its limit) — access control goes here;
//! 7. **pick_backend**: the canary decision (`weir_config::canary`), with D3 fallbacks; a
//!    rule whose canary guard tripped sends its weighted traffic to stable (`guard.rs`);
//! 8. **rewrite_request**: X-Forwarded-*, X-Real-IP, X-Request-ID, hop-by-hop, written once
//!    with two outputs (`forwarding.rs`);
//! 9. **send upstream** through the one seam (`forward.rs`): one endpoint-trying loop for
//!    weir's own HTTP/1.1 exchange (`exchange.rs`, bodyless requests to plain-HTTP
//!    upstreams), hyper's pooled client (`pool.rs`) and upgrades;
//! 10. **rewrite_response** (hop-by-hop);
//! 11. **record** metrics and the access log when the response body ends or is dropped
//!     (`body.rs`, `telemetry.rs`), on success and error alike; a canary's answer is also
//!     judged by the rule's canary guard.
//!
//! A step that answers the request itself returns a local answer (`answer.rs`); errors
//! become statuses in one place, `ProxyError::status` (`error.rs`).
//!
//! # Workers
//! With one worker, everything runs on the caller's runtime. With more, each worker is a
//! thread with its own current-thread runtime and its own listening sockets on the data
//! ports (`SO_REUSEPORT`: the kernel spreads connections), so a connection, its requests and
//! the upstream connections they open stay on one thread, as in nginx's worker model; the
//! admin API, metrics, reloads and pool sweeping stay on the caller's runtime.
//!
//! # Layout
//! - `server`: listeners, connection serving, graceful drain. `conn`: per-connection idle
//!   and header clocks. `preface`: what a connection speaks (first bytes, ALPN). `tls`:
//!   the TLS listener's SNI resolver.
//! - `serve`: `Proxy::serve`, the per-request steps. `request`: what check_request reads.
//!   `answer`: weir's own answers. `error`: the error enum and its status mapping.
//! - `forwarding`: the request header rules. `headers`: hop-by-hop and cookie rules.
//! - `forward`: the upstream seam and its carriers. `exchange`: weir's own HTTP/1.1
//!   exchange. [`pool`]: per-endpoint connection pools. [`upstream_tls`]: TLS to upstreams.
//!   `upstream_body`: the request body on its way upstream. `body`: the response body.
//! - [`snapshot`]: one table version (plain data). [`routes`]: the store that swaps it.
//!   [`certs`]: a table's certificates.
//! - [`record`]: what is recorded per request (plain data), with `fault`: who failed it. `telemetry`: the record step.
//!   [`metrics`]: Prometheus metrics and the metrics listener. [`access_log`]: JSON lines.
//! - `admin`: the admin API (loopback TCP, or a Unix socket: `admin_socket`). [`reload`]: file mode (SIGHUP, file changes).
//! - [`demo`]: `weir demo`, built-in upstreams. `testkit` (feature `testkit`): the test kit.

pub(crate) mod access;
pub mod access_log;
pub(crate) mod admin;
pub(crate) mod admin_socket;
pub(crate) mod answer;
pub(crate) mod body;
pub mod certs;
pub(crate) mod conn;
pub mod demo;
pub(crate) mod error;
pub(crate) mod exchange;
pub(crate) mod fault;
pub(crate) mod forward;
pub(crate) mod forwarding;
pub mod guard;
pub(crate) mod h1;
pub(crate) mod headers;
pub mod metrics;
pub mod mirror;
pub mod pool;
pub(crate) mod preface;
pub(crate) mod proxy_protocol;
pub mod ratelimit;
pub mod record;
pub mod reload;
pub(crate) mod request;
pub(crate) mod rewind;
pub mod routes;
pub(crate) mod serve;
pub mod server;
pub mod snapshot;
pub mod sticky;
pub(crate) mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub(crate) mod tls;
pub(crate) mod upstream_body;

/// Entry points for the fuzz targets in fuzz/, compiled only when cargo-fuzz builds with
/// `--cfg fuzzing`: the parsers they reach stay private to the crate otherwise.
#[cfg(fuzzing)]
pub mod fuzzing {
    /// weir's own HTTP/1.1 response parsers (head, framing, chunked body) on raw bytes.
    pub fn upstream_response(bytes: &[u8]) {
        crate::exchange::fuzz_response(bytes)
    }

    /// The forwarding headers weir writes (`forwarding.rs`) for arbitrary client headers.
    pub fn forwarding(client: &[(&[u8], &[u8])], host: &str, ip: std::net::IpAddr) {
        crate::forwarding::fuzz_forwarding(client, host, ip)
    }

    /// check_request's host rule on an arbitrary Host value: what it accepts parses as a URI
    /// authority without userinfo, and its host part is what rules are matched against.
    pub fn host(value: &[u8]) {
        crate::request::fuzz_host(value)
    }
}
pub mod upstream_tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use weir_config::{ConfigError, TableDoc};

use crate::access_log::{AccessLog, AccessLogTarget};
use crate::metrics::{Metrics, MetricsSettings};
use crate::pool::{PoolSettings, Pools};
use crate::routes::Routes;
use crate::serve::Proxy;
use crate::server::{ConnSettings, DataListener};
use crate::telemetry::Telemetry;
use crate::upstream_tls::UpstreamTls;
use tokio_rustls::TlsAcceptor;

/// Connections the kernel queues on a data port before weir accepts them.
const LISTEN_BACKLOG: u32 = 1024;

/// How to run a weir instance. Listen addresses may use port 0.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The TLS listener (certificates come from the route table); `None` disables it.
    pub tls_listen: Option<SocketAddr>,
    /// The admin API on TCP (loopback by default); `None` serves none there (file mode
    /// still reloads on SIGHUP).
    pub admin_listen: Option<SocketAddr>,
    /// The admin API on a Unix domain socket at this path, mode 0600: only processes of
    /// weir's user (the controller beside it in the pod) can change routing. Served besides
    /// `admin_listen` if both are set.
    pub admin_socket: Option<std::path::PathBuf>,
    /// The metrics listener (`/metrics`, `/healthz`); `None` serves none. Off here so
    /// in-process instances never collide on a port; the CLI defaults to `0.0.0.0:10254`.
    pub metrics_listen: Option<SocketAddr>,
    /// How requests are labelled; `None` records no metrics at all (and serves none).
    pub metrics: Option<MetricsSettings>,
    /// Where the access log goes; `None` (the default) writes none.
    pub access_log: Option<AccessLogTarget>,
    pub conn: ConnSettings,
    pub pool: PoolSettings,
    /// How long in-flight requests may take to finish at shutdown.
    pub drain_timeout: Duration,
    /// Data-plane workers: 1 serves on the caller's runtime; more start that many threads,
    /// each with its own runtime and listening sockets (see the crate docs).
    pub workers: usize,
    /// Bounds on mirror copies (`mirror.rs`).
    pub mirror: crate::mirror::MirrorSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            tls_listen: Some(SocketAddr::from(([0, 0, 0, 0], 8443))),
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 10255))),
            admin_socket: None,
            metrics_listen: None,
            metrics: Some(MetricsSettings::default()),
            access_log: None,
            conn: ConnSettings::default(),
            pool: PoolSettings::default(),
            drain_timeout: Duration::from_secs(30),
            workers: 1,
            mirror: crate::mirror::MirrorSettings::default(),
        }
    }
}

/// Why weir could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot serve the admin API on the Unix socket {}: {source}", path.display())]
    AdminSocket {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the access log {target:?}: {source}")]
    AccessLog {
        target: AccessLogTarget,
        #[source]
        source: std::io::Error,
    },
    #[error("the initial route table is invalid: {0}")]
    Config(#[source] ConfigError),
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] rustls::Error),
    #[error("cannot start data-plane worker {index}: {source}")]
    Worker {
        index: usize,
        #[source]
        source: std::io::Error,
    },
}

/// A started weir: its bound addresses, its route table, and its shutdown switch.
pub struct Running {
    pub data_addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    /// The admin API's Unix socket, when it has one (removed at shutdown).
    pub admin_socket: Option<std::path::PathBuf>,
    pub metrics_addr: Option<SocketAddr>,
    pub routes: Arc<Routes>,
    /// The metrics registry, when metrics are on.
    pub metrics: Option<Arc<Metrics>>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// Each worker thread's end (workers > 1).
    workers: Vec<tokio::sync::oneshot::Receiver<()>>,
}

impl Running {
    /// Stop accepting, drain in-flight requests (up to the drain timeout), and return.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        for done in self.workers {
            let _ = done.await;
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })
}

/// `n` listening sockets on `addr`, sharing its port (`SO_REUSEPORT`), as std listeners to
/// be registered by the runtime that will serve each. Port 0 is resolved by the first.
fn bind_shared(addr: SocketAddr, n: usize) -> Result<Vec<std::net::TcpListener>, StartError> {
    let mut at = addr;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let one = || -> std::io::Result<std::net::TcpListener> {
            let socket = if at.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.bind(at)?;
            socket.listen(LISTEN_BACKLOG)?.into_std()
        };
        let listener = one().map_err(|source| StartError::Bind { addr, source })?;
        at = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
        out.push(listener);
    }
    Ok(out)
}

/// What one worker thread serves: its listening sockets and how to serve them.
struct WorkerJob {
    plain: (std::net::TcpListener, Arc<Proxy>),
    tls: Option<(std::net::TcpListener, TlsAcceptor, Arc<Proxy>)>,
    conn: server::ConnSettings,
    limit: Arc<Semaphore>,
    stopped: watch::Receiver<bool>,
    drain_timeout: Duration,
}

impl WorkerJob {
    /// Register the listeners with the current runtime and serve each in a task of `set`.
    fn spawn_into(self, set: &mut JoinSet<()>) -> std::io::Result<()> {
        let WorkerJob { plain, tls, conn, limit, stopped, drain_timeout } = self;
        let listeners = std::iter::once((plain.0, None, plain.1))
            .chain(tls.map(|(tcp, acceptor, proxy)| (tcp, Some(acceptor), proxy)));
        for (tcp, tls, proxy) in listeners {
            let listener = DataListener { tcp: TcpListener::from_std(tcp)?, tls, proxy };
            set.spawn(server::serve_data(listener, conn, limit.clone(), stopped.clone(), drain_timeout));
        }
        Ok(())
    }
}

/// Start worker thread `index` serving `job` on its own current-thread runtime; the
/// receiver completes when the worker has drained and ended.
fn spawn_worker(index: usize, job: WorkerJob) -> Result<tokio::sync::oneshot::Receiver<()>, StartError> {
    let failed = |source| StartError::Worker { index, source };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(failed)?;
    let (done, ended) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("weir-worker-{index}"))
        .spawn(move || {
            pool::set_worker(index);
            runtime.block_on(async move {
                let mut serving = JoinSet::new();
                if let Err(e) = job.spawn_into(&mut serving) {
                    tracing::error!(worker = index, error = %e, "cannot register a listener");
                }
                while serving.join_next().await.is_some() {}
            });
            let _ = done.send(());
        })
        .map_err(failed)?;
    Ok(ended)
}

/// Bind the listeners and start serving, with `initial` as the table if given.
pub async fn start(settings: Settings, initial: Option<TableDoc>) -> Result<Running, StartError> {
    let upstream_tls = UpstreamTls::new().map_err(StartError::Tls)?;
    let auth = crate::access::AuthClient::new(upstream_tls.http1.clone());
    let metrics = settings.metrics.clone().map(|m| Arc::new(Metrics::new(m)));
    let mirror_stats = metrics.as_ref().map(|m| m.mirror.clone()).unwrap_or_default();
    let mirror = crate::mirror::Mirror::new(settings.mirror, mirror_stats);
    let ejections = metrics.as_ref().map(|m| m.upstream_ejections.clone()).unwrap_or_default();
    let pools = Pools::with_ejections(settings.pool, settings.workers, upstream_tls, ejections);
    pools.spawn_sweeper();
    let routes = Arc::new(Routes::with_metrics(pools, metrics.clone()));
    if let Some(doc) = initial {
        routes.install(doc).map_err(StartError::Config)?;
    }
    let workers = settings.workers.max(1);
    let data = bind_shared(settings.listen, workers)?;
    let tls_data = match settings.tls_listen {
        Some(addr) => bind_shared(addr, workers)?,
        None => Vec::new(),
    };
    let admin = match settings.admin_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let admin_unix = match &settings.admin_socket {
        Some(path) => Some(
            admin_socket::bind(path)
                .map_err(|source| StartError::AdminSocket { path: path.clone(), source })?,
        ),
        None => None,
    };
    let metrics_listener = match (settings.metrics_listen, &metrics) {
        (Some(addr), Some(_)) => Some(bind(addr).await?),
        _ => None,
    };
    let data_addr =
        data[0].local_addr().map_err(|source| StartError::Bind { addr: settings.listen, source })?;
    let tls_addr = tls_data.first().and_then(|l| l.local_addr().ok());
    let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let access_log = match &settings.access_log {
        Some(target) => {
            let dropped = metrics.as_ref().map(|m| m.access_log_dropped.clone()).unwrap_or_default();
            let log = AccessLog::spawn(target, dropped)
                .map_err(|source| StartError::AccessLog { target: target.clone(), source })?;
            Some(log)
        }
        None => None,
    };
    let telemetry = Arc::new(Telemetry { metrics: metrics.clone(), access_log });

    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let limit = Arc::new(Semaphore::new(settings.conn.max_connections.max(1)));
    let proxy = |scheme| {
        Arc::new(Proxy {
            routes: routes.clone(),
            telemetry: telemetry.clone(),
            scheme,
            https_port: tls_addr.map(|a| a.port()),
            auth: auth.clone(),
            mirror: mirror.clone(),
        })
    };
    let tls_acceptor = match tls_data.is_empty() {
        true => None,
        false => Some(TlsAcceptor::from(tls::server_config(routes.clone()).map_err(StartError::Tls)?)),
    };
    let mut worker_ends = Vec::new();
    let (plain_proxy, secure_proxy) = (proxy("http"), proxy("https"));
    let mut tls_sockets = tls_data.into_iter();
    for (index, tcp) in data.into_iter().enumerate() {
        let job = WorkerJob {
            plain: (tcp, plain_proxy.clone()),
            tls: tls_sockets
                .next()
                .zip(tls_acceptor.clone())
                .map(|(tcp, acceptor)| (tcp, acceptor, secure_proxy.clone())),
            conn: settings.conn,
            limit: limit.clone(),
            stopped: stopped.clone(),
            drain_timeout: settings.drain_timeout,
        };
        if workers == 1 {
            // One worker serves on the caller's runtime.
            let bind_error = |source| StartError::Bind { addr: settings.listen, source };
            job.spawn_into(&mut tasks).map_err(bind_error)?;
        } else {
            worker_ends.push(spawn_worker(index, job)?);
        }
    }
    if let Some(admin) = admin {
        let r = routes.clone();
        tasks.spawn(server::serve_internal(admin, move |req| admin::handle(r.clone(), req), stopped.clone()));
    }
    if let (Some(listener), Some(path)) = (admin_unix, settings.admin_socket.clone()) {
        let (r, stopped) = (routes.clone(), stopped.clone());
        tasks.spawn(async move {
            server::serve_internal(listener, move |req| admin::handle(r.clone(), req), stopped).await;
            admin_socket::remove(&path);
        });
    }
    if let (Some(listener), Some(m)) = (metrics_listener, &metrics) {
        let (r, m) = (routes.clone(), m.clone());
        tasks.spawn(server::serve_internal(
            listener,
            move |req| metrics::endpoint::handle(m.clone(), r.clone(), req),
            stopped.clone(),
        ));
    }
    let admin_socket = settings.admin_socket.clone();
    tracing::info!(%data_addr, tls = ?tls_addr, admin = ?admin_addr, ?admin_socket, metrics = ?metrics_addr, "weir is serving");
    Ok(Running {
        data_addr,
        tls_addr,
        admin_addr,
        admin_socket,
        metrics_addr,
        routes,
        metrics,
        stop,
        tasks,
        workers: worker_ends,
    })
}
