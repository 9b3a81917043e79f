//! Listeners: accept → serve connection (HTTP/1.1 and h2c by prior knowledge) → drain.
//!
//! Both HTTP versions are served on the data port, the first bytes deciding which; on the
//! TLS port, the one ALPN agreed on (`preface.rs`). An HTTP/1.1 connection gives hyper's
//! buffers back whenever its client goes quiet (`h1.rs`).
//! Shutdown stops accepting at once, asks every connection to finish its in-flight requests
//! (HTTP/1 closes after the current response, HTTP/2 sends GOAWAY), and waits up to the
//! drain timeout.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use weir_config::access::ClientAddress;

use crate::body::ResponseBody;
use crate::conn::{self, stopped, Activity, ConnStats, Ended, Watched};
use crate::forwarding::ClientInfo;
use crate::h1::{self, ClientService, ReadReady};
use crate::preface::{self, Allowed, Protocol};
use crate::proxy_protocol;
use crate::rewind::Rewound;
use crate::serve::{Peer, Proxy};

/// How long to wait after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// HTTP/2 clients are pinged this often, and dropped when a ping goes unanswered this long.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// The admin and metrics listeners' clocks: a request head within this, a drain within that.
const INTERNAL_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const INTERNAL_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection may take to send its PROXY protocol header (load balancers
/// send it with the connection's first bytes).
const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Client-side connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnSettings {
    /// Time allowed for a request head once its first byte arrived (slowloris clients are
    /// cut here), and for the first request of a new connection.
    pub header_read_timeout: Duration,
    /// How long a connection may stay idle (no request in flight) before weir closes it.
    pub keepalive_timeout: Duration,
    /// Largest request head (request line + headers) in bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// Client connections served at once, over both listeners; further ones wait in the
    /// kernel's accept queue.
    pub max_connections: usize,
    /// Time allowed for a TLS handshake.
    pub tls_handshake_timeout: Duration,
}

impl Default for ConnSettings {
    fn default() -> Self {
        ConnSettings {
            header_read_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(75),
            max_header_bytes: 32 << 10,
            max_connections: 16_384,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// hyper's connection builders for the data listeners, one per protocol.
pub(crate) struct Builders {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
}

pub(crate) fn builders(settings: ConnSettings) -> Builders {
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        // weir's own watchdog runs the header and idle clocks (see conn.rs).
        .header_read_timeout(None)
        // hyper answers 431 when a head does not fit its read buffer (8 KiB at least).
        .max_buf_size(settings.max_header_bytes.max(8192))
        .keep_alive(true)
        // A client's FIN after its request does not abandon the request (HAProxy's default,
        // nginx's proxy_ignore_client_abort): the answer is written, or fails if the client
        // has gone altogether. hyper's alternative probes the socket while each request is in
        // flight, which costs a fresh 8 KiB read buffer per request (the old one is still
        // shared with the request's header values), and that churn made glibc trim and regrow
        // the heap several hundred times a second at 20k rps.
        .half_close(true);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT)
        .max_header_list_size(settings.max_header_bytes as u32);
    Builders { h1, h2 }
}

/// One data-plane listener: plain, or TLS-terminating.
pub struct DataListener {
    pub tcp: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub proxy: Arc<Proxy>,
}

/// Accept and serve data-plane connections until `shutdown` flips, then drain: every
/// connection finishes its in-flight requests (HTTP/1 closes after the current response,
/// HTTP/2 sends GOAWAY), for at most `drain_timeout`.
pub async fn serve_data(
    listener: DataListener,
    settings: ConnSettings,
    limit: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    let builder = Arc::new(builders(settings));
    let DataListener { tcp, tls, proxy } = listener;
    // The connection counters of ingress-nginx's nginx_process_connections families.
    let stats: Option<Arc<ConnStats>> = proxy.telemetry.metrics.as_ref().map(|m| m.conns.clone());
    let count = |pick: fn(&ConnStats) -> &std::sync::atomic::AtomicU64| {
        if let Some(s) = &stats {
            pick(s).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    };
    loop {
        let (stream, client) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        count(|s| &s.accepted);
        // An IPv4 client of a dual-stack listener (`[::]:port`) arrives as `::ffff:a.b.c.d`:
        // it is the IPv4 client everywhere weir shows or judges it (X-Forwarded-For,
        // X-Real-IP, the access log, IP lists).
        let client = SocketAddr::new(client.ip().to_canonical(), client.port());
        // At the limit, this listener holds the one connection it accepted and accepts no
        // more until a slot frees; the rest wait in the kernel's queue. (A permit is taken
        // only for an accepted connection, so idle listeners do not hold slots.)
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped(&mut shutdown) => break,
        };
        count(|s| &s.handled);
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else { continue };
        let (builder, shutdown) = (builder.clone(), shutdown.clone());
        match proxy_protocol_from(&proxy, client) {
            ProxyHeader::None => {}
            ProxyHeader::Refused => {
                tracing::debug!(client = %client, "PROXY protocol peer not among the trusted proxies");
                continue;
            }
            ProxyHeader::Expected => {
                let (proxy, tls, stats) = (proxy.clone(), tls.clone(), stats.clone());
                tokio::spawn(serve_proxied(
                    stream, client, local, proxy, stats, tls, builder, settings, shutdown, permit,
                ));
                continue;
            }
        }
        let (activity, service) = connection_service(&proxy, client, local, &stats);
        // The task's future is the connection's own (`serve_conn`, after `serve_tls`'s
        // handshake), with nothing around it: a task's allocation is as large as the largest
        // state its future can be in, and every idle connection keeps its task.
        match tls.clone() {
            None => {
                let io = Watched::new(stream, activity.clone());
                let conn = Conn { builder, activity, settings, shutdown, permit };
                tokio::spawn(serve_conn(conn, io, Allowed::Either, service));
            }
            Some(acceptor) => {
                let conn = Conn { builder, activity, settings, shutdown, permit };
                tokio::spawn(serve_tls(conn, stream, client, acceptor, service));
            }
        }
    }
    drop(tcp);
    // Every connection task holds a permit: all permits back means all connections done.
    let all = u32::try_from(settings.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(drain_timeout, limit.acquire_many(all)).await.is_err() {
        tracing::warn!(?drain_timeout, "drain timeout reached; leaving the remaining connections");
    }
}

/// What a new connection on a data listener must start with, by the table in force.
enum ProxyHeader {
    /// Nothing: the TCP peer is the client.
    None,
    /// A PROXY protocol header naming the client.
    Expected,
    /// A PROXY protocol listener, and this peer is not among its trusted proxies.
    Refused,
}

fn proxy_protocol_from(proxy: &Proxy, peer: SocketAddr) -> ProxyHeader {
    match proxy.routes.load().table.client_address() {
        ClientAddress::ProxyProtocol { trusted } => match trusted {
            Some(t) if !t.contains(peer.ip()) => ProxyHeader::Refused,
            _ => ProxyHeader::Expected,
        },
        _ => ProxyHeader::None,
    }
}

/// The request service of one connection from `client` (the client address the request
/// path uses) to `local`, and its activity record. (The service's type is spelled out
/// because both connection paths use it.) Its future is boxed: hyper's HTTP/1 connection
/// keeps a slot the size of the service's future for its whole life, and the request path's
/// future is large, so unboxed every idle keep-alive connection would hold it; boxed, the
/// slot is a pointer and the request's state lives only while the request does.
#[allow(clippy::type_complexity)]
fn connection_service(
    proxy: &Arc<Proxy>,
    client: SocketAddr,
    local: SocketAddr,
    stats: &Option<Arc<ConnStats>>,
) -> (
    Arc<Activity>,
    impl hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<ResponseBody>,
            Error = Infallible,
            Future = BoxFuture<'static, Result<http::Response<ResponseBody>, Infallible>>,
        > + Send
        + 'static,
) {
    let info = ClientInfo::new(client.ip(), proxy.scheme, local.port());
    let activity = Activity::new(stats.clone());
    let peer = Arc::new(Peer { client, local, info, activity: activity.clone() });
    let proxy = proxy.clone();
    let tracked = activity.clone();
    let service = service_fn(move |req| {
        let proxy = proxy.clone();
        let guard = tracked.begin(req.version());
        let peer = peer.clone();
        let serving: BoxFuture<'static, _> = Box::pin(async move {
            Ok::<_, Infallible>(proxy.serve(req, &peer).await.map(|b| b.with_activity(guard)))
        });
        serving
    });
    (activity, service)
}

/// A TLS connection: the handshake within its timeout, then served. (Not an `async fn`,
/// like [`serve_conn`].)
#[allow(clippy::manual_async_fn)]
fn serve_tls<S, Svc>(
    conn: Conn,
    stream: S,
    client: SocketAddr,
    acceptor: TlsAcceptor,
    service: Svc,
) -> impl Future<Output = ()> + Send
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + ReadReady + Unpin + Send + 'static,
    Svc: ClientService,
{
    async move {
        // The handshake and the session are boxed: inline, a rustls session would add its
        // size (twice over, as the handshake's and as the stream's) to the task.
        let timeout = conn.settings.tls_handshake_timeout;
        let handshake = Box::pin(tokio::time::timeout(timeout, acceptor.accept(stream)));
        let session = match handshake.await {
            Ok(Ok(s)) => Box::new(s),
            Ok(Err(e)) => return tracing::debug!(client = %client, error = %e, "TLS handshake failed"),
            Err(_) => return tracing::debug!(client = %client, "TLS handshake timed out"),
        };
        // ALPN decides the protocol: h2 agreed means HTTP/2 only, else HTTP/1 only
        // (preface.rs).
        let allowed = Allowed::after_alpn(session.get_ref().1.alpn_protocol());
        let io = Watched::new(session, conn.activity.clone());
        serve_conn(conn, io, allowed, service).await
    }
}

/// A connection that starts with a PROXY protocol header (`proxy_protocol.rs`): the header
/// within the header-read timeout (at most [`PROXY_HEADER_TIMEOUT`]), then served as
/// coming from the client it names. A missing or malformed header: 400 (plain listener)
/// and closed.
#[allow(clippy::too_many_arguments)]
async fn serve_proxied(
    mut stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    proxy: Arc<Proxy>,
    stats: Option<Arc<ConnStats>>,
    tls: Option<TlsAcceptor>,
    builder: Arc<Builders>,
    settings: ConnSettings,
    shutdown: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    let timeout = settings.header_read_timeout.min(PROXY_HEADER_TIMEOUT);
    let (source, rest) = match proxy_protocol::read_header(&mut stream, timeout).await {
        Ok(read) => read,
        Err(e) => {
            tracing::debug!(client = %peer, error = %e, "PROXY protocol header refused");
            if e.is_malformed() && tls.is_none() {
                let _ = stream.write_all(proxy_protocol::BAD_REQUEST).await;
                let _ = stream.shutdown().await;
            }
            return;
        }
    };
    let client = source.unwrap_or(peer);
    let (activity, service) = connection_service(&proxy, client, local, &stats);
    let stream = Rewound::new(rest, stream);
    let conn = Conn { builder, activity, settings, shutdown, permit };
    match tls {
        None => {
            let io = Watched::new(stream, conn.activity.clone());
            Box::pin(serve_conn(conn, io, Allowed::Either, service)).await
        }
        Some(acceptor) => Box::pin(serve_tls(conn, stream, client, acceptor, service)).await,
    }
}

/// What every connection's task holds besides its stream and service.
struct Conn {
    builder: Arc<Builders>,
    activity: Arc<Activity>,
    settings: ConnSettings,
    shutdown: watch::Receiver<bool>,
    /// The connection's slot under `max_connections`, given back when the task ends.
    permit: OwnedSemaphorePermit,
}

/// Serve one connection until it ends, its watchdog expires it, or shutdown drains it. Its
/// first bytes decide what it speaks, within `allowed` (`preface.rs`); they must come within
/// the header read timeout. An HTTP/1.1 connection alternates between hyper's connection
/// while the client is active and a released wait between requests (`h1.rs`).
///
/// This future is most of every connection's task, and an idle connection keeps its task:
/// each phase but the released wait is boxed, so the task is sized by that wait (a timer, a
/// drain listener). Not an `async fn`, which would keep its arguments twice (as received and
/// as its body's locals): the block uses what it captured in place.
fn serve_conn<S, Svc>(
    conn: Conn,
    io: S,
    allowed: Allowed,
    mut service: Svc,
) -> impl Future<Output = ()> + Send
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + ReadReady + Unpin + Send + 'static,
    Svc: ClientService,
{
    let Conn { builder, activity, settings, mut shutdown, permit } = conn;
    async move {
        // Named, so the block owns the permit: the slot is held until the task ends.
        let _slot = &permit;
        let clocks = (settings.keepalive_timeout, settings.header_read_timeout);
        let Some((protocol, mut io)) = Box::pin(open(io, allowed, settings, &mut shutdown)).await else {
            return;
        };
        if protocol == Protocol::Http2 {
            return Box::pin(serve_h2(&builder.h2, io, service, &activity, clocks, &mut shutdown)).await;
        }
        loop {
            let serving =
                h1::serve_until_released(&builder.h1, io, service, &activity, clocks, &mut shutdown);
            // Assigned straight from the match: a binding of the pair would keep its room
            // through the wait below.
            (io, service) = match Box::pin(serving).await {
                Some(released) => released,
                None => return,
            };
            activity.set_released(true);
            let more = h1::next_bytes(&mut io, &activity, clocks, &mut shutdown).await;
            activity.set_released(false);
            if !more {
                return;
            }
        }
    }
}

/// A new connection's first bytes, within the header read timeout: what it speaks, and the
/// stream with those bytes to be read again. `None`: closed (nothing it may speak, too slow,
/// or a drain).
async fn open<S>(
    io: S,
    allowed: Allowed,
    settings: ConnSettings,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(Protocol, Rewound<S>)>
where
    S: tokio::io::AsyncRead + Unpin,
{
    let limit = settings.max_header_bytes.max(8192);
    let opening = tokio::time::timeout(settings.header_read_timeout, preface::open(io, allowed, limit));
    tokio::select! {
        opened = opening => match opened {
            Ok(Some(opened)) => Some(opened),
            Ok(None) => {
                tracing::debug!(?allowed, "closing a client connection that speaks no protocol it may");
                None
            }
            Err(_) => None,
        },
        _ = stopped(shutdown) => None,
    }
}

/// An HTTP/2 connection, until it ends, expires or is drained.
async fn serve_h2<S, Svc>(
    h2: &http2::Builder<TokioExecutor>,
    io: Rewound<S>,
    service: Svc,
    activity: &Activity,
    clocks: (Duration, Duration),
    shutdown: &mut watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    Svc: ClientService,
{
    let conn = h2.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let drain = |c: Pin<&mut _>| http2::Connection::graceful_shutdown(c);
    if let Ended::Finished(Err(e)) = conn::watch(conn.as_mut(), drain, activity, clocks, None, shutdown).await
    {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}

/// Wait for connections watched by `graceful` to finish, at most `timeout`.
pub(crate) async fn drain(graceful: GracefulShutdown, timeout: Duration) {
    if tokio::time::timeout(timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(?timeout, "drain timeout reached; closing the remaining connections");
    }
}

/// A listener of an internal service: TCP (loopback by default), or a Unix domain socket.
pub(crate) trait InternalListener: Send + 'static {
    type Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl InternalListener for TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        TcpListener::accept(self).await.map(|(s, _)| s)
    }
}

#[cfg(unix)]
impl InternalListener for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

/// Serve a small internal HTTP/1.1 service (admin, metrics) until shutdown.
pub(crate) async fn serve_internal<L, S, F>(listener: L, service: S, mut shutdown: watch::Receiver<bool>)
where
    L: InternalListener,
    S: Fn(http::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = http::Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        let service = service.clone();
        let svc = service_fn(move |req| {
            let fut = service(req);
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(INTERNAL_HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drain(graceful, INTERNAL_DRAIN_TIMEOUT).await;
}
