//! Upstream connections: one pool per endpoint and protocol, shared across swaps.
//!
//! A pool is found through the route snapshot (each backend holds its endpoints' pools), so
//! the request path never searches a global map. [`Pools`] remembers every live pool so a
//! new table reuses the pools (and warm connections) of endpoints still present, and so a
//! sweeper can close connections idle for too long.
//! HTTP/1.1 pools keep idle keep-alive connections (LIFO, the warmest first); HTTP/2 pools
//! keep one multiplexed connection. Connections are made before a request is handed over,
//! so a connect failure never consumes the request body and can be retried elsewhere.
//!
//! **Size.** At most `max_idle_per_endpoint` idle HTTP/1.1 connections per endpoint and kind
//! (over all workers; ingress-nginx's `upstream-keepalive-connections`, 320), each closed
//! once idle for `idle_timeout` (`upstream-keepalive-timeout`, 60 s). Beyond that the pool
//! shrinks after a burst: a connection that stayed idle through a whole sweep period (1 s)
//! was not needed, and each sweep closes half of those above [`WARM_FLOOR`] per list, the
//! coldest first. A steady load keeps its working set (LIFO: the connections it uses are
//! always the recent ones); a burst's surplus is gone within seconds, not a minute.
//!
//! **Passive health.** An endpoint an attempt failed on (connect refused, reset or timed out,
//! no response head in time) is ejected for [`EJECT_FOR`] (ingress-nginx's nginx defaults
//! `max_fails=1 fail_timeout=10s`): `forward.rs` skips it while another endpoint is live,
//! and counts each ejection (`weir_upstream_ejections_total`).

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2, TrySendError};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use weir_config::Protocol;

use crate::exchange::RawConn;
use crate::metrics::histogram::Counter;
use crate::upstream_body::UpstreamBody;
use crate::upstream_tls::UpstreamTls;

/// The sweeper runs this often (or four times per idle timeout, if that is more often), but
/// never more often than [`MIN_SWEEP_PERIOD`].
const SWEEP_PERIOD: Duration = Duration::from_secs(1);
const MIN_SWEEP_PERIOD: Duration = Duration::from_millis(250);
/// Idle connections per list (per endpoint and kind, per worker for weir's exchange) that
/// the shrinking leaves alone: only the idle timeout closes these.
pub const WARM_FLOOR: usize = 8;
/// How long an endpoint that failed is skipped (nginx's `fail_timeout` default).
pub const EJECT_FOR: Duration = Duration::from_secs(10);
/// HTTP/2 upstream connections are pinged this often to find dead ones.
const H2_UPSTREAM_PING_INTERVAL: Duration = Duration::from_secs(30);

/// Pool limits: ingress-nginx's `upstream-keepalive-connections` and `-timeout`.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_idle_per_endpoint: usize,
    pub idle_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings { max_idle_per_endpoint: 320, idle_timeout: Duration::from_secs(60) }
    }
}

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Mark this thread as data-plane worker `index`: connections it opens for weir's exchange
/// are pooled for it alone.
pub fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// Every live endpoint pool, by address and protocol.
pub struct Pools {
    settings: PoolSettings,
    /// Data-plane workers: each has its own idle connections for weir's exchange (a
    /// connection is driven by the runtime that opened it).
    workers: usize,
    tls: UpstreamTls,
    by_key: Mutex<HashMap<(SocketAddr, Protocol), Weak<EndpointPool>>>,
    /// Endpoints ejected after a failure, over all pools.
    ejections: Arc<Counter>,
}

impl Pools {
    pub fn new(settings: PoolSettings, workers: usize, tls: UpstreamTls) -> Arc<Self> {
        Self::with_ejections(settings, workers, tls, Arc::default())
    }

    /// [`Pools::new`], counting ejections in `ejections` (the metrics registry's counter).
    pub fn with_ejections(
        settings: PoolSettings,
        workers: usize,
        tls: UpstreamTls,
        ejections: Arc<Counter>,
    ) -> Arc<Self> {
        let by_key = Mutex::new(HashMap::new());
        Arc::new(Pools { settings, workers: workers.max(1), tls, by_key, ejections })
    }

    /// Ejections so far, over all endpoints.
    pub fn ejections(&self) -> u64 {
        self.ejections.get()
    }

    /// The pool for `addr` spoken to with `protocol`, reusing the live one if any.
    pub fn get(&self, addr: SocketAddr, protocol: Protocol) -> Arc<EndpointPool> {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = map.get(&(addr, protocol)).and_then(Weak::upgrade) {
            return pool;
        }
        let tls = match protocol {
            Protocol::Http | Protocol::Grpc => None,
            Protocol::Https => Some(self.tls.http1.clone()),
            Protocol::Grpcs => Some(self.tls.h2.clone()),
        };
        let pool = Arc::new(EndpointPool {
            addr,
            protocol,
            tls,
            settings: self.settings,
            idle: Mutex::new(Vec::new()),
            shared: Mutex::new(None),
            raw: (0..self.workers).map(|_| Mutex::new(Vec::new())).collect(),
            raw_idle: AtomicUsize::new(0),
            ejected_until: AtomicU64::new(0),
            ejections: self.ejections.clone(),
        });
        map.insert((addr, protocol), Arc::downgrade(&pool));
        pool
    }

    /// Close connections idle longer than the idle timeout, shrink pools whose connections
    /// were not needed for `period` (see the module docs), and forget dead pools.
    pub fn sweep(&self, period: Duration) {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, weak| match weak.upgrade() {
            Some(pool) => {
                pool.evict(period);
                true
            }
            None => false,
        });
    }

    /// How often the sweeper runs.
    pub fn sweep_period(&self) -> Duration {
        (self.settings.idle_timeout / 4).min(SWEEP_PERIOD).max(MIN_SWEEP_PERIOD)
    }

    /// Run [`Pools::sweep`] periodically until the pools are dropped.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = self.sweep_period();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(pools) => pools.sweep(every),
                    None => return,
                }
            }
        });
    }
}

/// A request sender on one upstream connection.
pub enum Sender {
    H1(http1::SendRequest<UpstreamBody>),
    H2(http2::SendRequest<UpstreamBody>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    /// Send `req`; if the connection could not take it, the error gives the request back.
    pub async fn try_send(
        &mut self,
        req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, TrySendError<Request<UpstreamBody>>> {
        match self {
            Sender::H1(s) => s.try_send_request(req).await,
            Sender::H2(s) => s.try_send_request(req).await,
        }
    }
}

struct Idle {
    sender: http1::SendRequest<UpstreamBody>,
    since: Instant,
}

struct IdleRaw {
    conn: RawConn,
    since: Instant,
}

/// Connections to one endpoint with one protocol.
pub struct EndpointPool {
    addr: SocketAddr,
    protocol: Protocol,
    tls: Option<Arc<rustls::ClientConfig>>,
    settings: PoolSettings,
    /// HTTP/1.1: idle keep-alive connections, most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// HTTP/2: the one multiplexed connection.
    shared: Mutex<Option<http2::SendRequest<UpstreamBody>>>,
    /// Plain HTTP/1.1 connections for weir's own exchange (bodyless requests, see
    /// `exchange.rs`), one list per worker, most recently used last.
    raw: Box<[Mutex<Vec<IdleRaw>>]>,
    /// Idle connections in `raw`, over all workers (the cap is per endpoint).
    raw_idle: AtomicUsize,
    /// Milliseconds after [`origin`] until which the endpoint is ejected; 0 when it is not.
    ejected_until: AtomicU64,
    ejections: Arc<Counter>,
}

/// The clock origin of ejection deadlines.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn ms_since_origin(at: Instant) -> u64 {
    // At least 1: 0 means "not ejected".
    (at.saturating_duration_since(origin()).as_millis() as u64).max(1)
}

/// A connection one attempt checked out.
pub struct Checkout<C> {
    pub conn: C,
    /// Whether the connection served a request before (so it may have gone stale).
    pub reused: bool,
    /// Time spent connecting; zero for a reused connection.
    pub connect_time: Duration,
}

/// A connection checked out of a pool; give it back with [`Conn::release`].
pub struct Conn {
    pub sender: Sender,
    pub pool: Arc<EndpointPool>,
    /// Time spent connecting; zero for a reused connection.
    pub connect_time: Duration,
}

impl EndpointPool {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the endpoint is ejected now (a failure within [`EJECT_FOR`]). One atomic load
    /// while it is not.
    pub fn is_ejected(&self) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until == 0 {
            return false;
        }
        if ms_since_origin(Instant::now()) < until {
            return true;
        }
        // Back in rotation; a concurrent new ejection wins.
        let _ = self.ejected_until.compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed);
        false
    }

    /// An attempt on this endpoint failed: skip it for `EJECT_FOR` from now. Counted once per
    /// ejection (a failure while already ejected only extends it).
    pub fn eject(&self) {
        let was_ejected = self.is_ejected();
        self.ejected_until.store(ms_since_origin(Instant::now() + EJECT_FOR), Ordering::Relaxed);
        if !was_ejected {
            self.ejections.inc();
            tracing::warn!(upstream = %self.addr, backoff = ?EJECT_FOR, "endpoint failed; ejected");
        }
    }

    /// A ready connection: a pooled one, else a new one.
    pub async fn checkout(self: &Arc<Self>, connect_timeout: Duration) -> io::Result<Conn> {
        let reused = match self.protocol.is_http2() {
            true => self.shared_h2().map(Sender::H2),
            false => self.take_idle().map(Sender::H1),
        };
        if let Some(sender) = reused {
            return Ok(Conn { sender, pool: self.clone(), connect_time: Duration::ZERO });
        }
        let started = Instant::now();
        let sender = if self.protocol.is_http2() {
            let sender = self.connect_h2(connect_timeout).await?;
            *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender.clone());
            Sender::H2(sender)
        } else {
            Sender::H1(self.connect_h1(connect_timeout, false).await?)
        };
        Ok(Conn { sender, pool: self.clone(), connect_time: started.elapsed() })
    }

    /// A plain HTTP/1.1 connection for weir's own exchange: a pooled one that is still
    /// open, else a new one.
    pub async fn checkout_raw(&self, connect_timeout: Duration) -> io::Result<Checkout<RawConn>> {
        {
            let mut raw = self.raw_here().lock().unwrap_or_else(|e| e.into_inner());
            while let Some(IdleRaw { conn, since }) = raw.pop() {
                self.raw_idle.fetch_sub(1, Ordering::Relaxed);
                if since.elapsed() < self.settings.idle_timeout && conn.is_reusable() {
                    return Ok(Checkout { conn, reused: true, connect_time: Duration::ZERO });
                }
            }
        }
        let started = Instant::now();
        // Boxed: connecting is rare, and its state would otherwise enlarge every request's
        // future (see `forward.rs`).
        let conn = RawConn::new(Box::pin(self.tcp(connect_timeout)).await?);
        Ok(Checkout { conn, reused: false, connect_time: started.elapsed() })
    }

    /// Return a connection whose response was read to its end.
    pub fn put_raw(&self, conn: RawConn) {
        // Counted before the push, so concurrent workers never pass the cap together.
        if self.raw_idle.fetch_add(1, Ordering::Relaxed) >= self.settings.max_idle_per_endpoint {
            self.raw_idle.fetch_sub(1, Ordering::Relaxed);
            return; // closed: the pool is full
        }
        let mut raw = self.raw_here().lock().unwrap_or_else(|e| e.into_inner());
        raw.push(IdleRaw { conn, since: Instant::now() });
    }

    /// This worker's idle connections for weir's exchange.
    fn raw_here(&self) -> &Mutex<Vec<IdleRaw>> {
        &self.raw[WORKER.with(Cell::get) % self.raw.len()]
    }

    /// A fresh HTTP/1.1 connection that is never pooled, able to switch protocols.
    pub async fn connect_for_upgrade(
        &self,
        connect_timeout: Duration,
    ) -> io::Result<http1::SendRequest<UpstreamBody>> {
        self.connect_h1(connect_timeout, true).await
    }

    fn shared_h2(&self) -> Option<http2::SendRequest<UpstreamBody>> {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        match shared.as_ref() {
            Some(s) if !s.is_closed() => Some(s.clone()),
            Some(_) => {
                *shared = None;
                None
            }
            None => None,
        }
    }

    fn take_idle(self: &Arc<Self>) -> Option<http1::SendRequest<UpstreamBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(Idle { mut sender, since }) = idle.pop() {
            if sender.is_closed() || since.elapsed() >= self.settings.idle_timeout {
                continue;
            }
            // A connection whose previous response just ended may need a moment to
            // become ready again; let it finish off the request path.
            match sender.ready().now_or_never() {
                Some(Ok(())) => return Some(sender),
                Some(Err(_)) => continue,
                None => {
                    let pool = self.clone();
                    tokio::spawn(async move {
                        if sender.ready().await.is_ok() {
                            pool.put(Sender::H1(sender));
                        }
                    });
                }
            }
        }
        None
    }

    async fn tcp(&self, connect_timeout: Duration) -> io::Result<TcpStream> {
        let stream =
            tokio::time::timeout(connect_timeout, TcpStream::connect(self.addr)).await.map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect timed out after {connect_timeout:?}"),
                )
            })??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    async fn tls_stream(
        &self,
        config: &Arc<rustls::ClientConfig>,
        connect_timeout: Duration,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let stream = self.tcp(connect_timeout).await?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        let connector = tokio_rustls::TlsConnector::from(config.clone());
        tokio::time::timeout(connect_timeout, connector.connect(name, stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
    }

    async fn connect_h1(
        &self,
        connect_timeout: Duration,
        upgrades: bool,
    ) -> io::Result<http1::SendRequest<UpstreamBody>> {
        match &self.tls {
            None => h1_handshake(self.tcp(connect_timeout).await?, self.addr, upgrades).await,
            Some(config) => {
                h1_handshake(self.tls_stream(config, connect_timeout).await?, self.addr, upgrades).await
            }
        }
    }

    async fn connect_h2(&self, connect_timeout: Duration) -> io::Result<http2::SendRequest<UpstreamBody>> {
        match &self.tls {
            None => h2_handshake(self.tcp(connect_timeout).await?, self.addr).await,
            Some(config) => h2_handshake(self.tls_stream(config, connect_timeout).await?, self.addr).await,
        }
    }

    /// Return a connection whose response was read to the end.
    pub fn put(&self, sender: Sender) {
        let Sender::H1(sender) = sender else { return }; // HTTP/2: the shared one stays shared
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.settings.max_idle_per_endpoint {
            idle.push(Idle { sender, since: Instant::now() });
        }
    }

    /// Close idle connections that expired, are closed, or are surplus: idle through the
    /// whole last `period` beyond [`WARM_FLOOR`], half of them per call (coldest first).
    fn evict(&self, period: Duration) {
        let timeout = self.settings.idle_timeout;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|c| !c.sender.is_closed() && c.since.elapsed() < timeout);
        shrink(&mut idle, period, |c| c.since);
        drop(idle);
        for raw in &self.raw {
            let mut raw = raw.lock().unwrap_or_else(|e| e.into_inner());
            let before = raw.len();
            raw.retain(|c| c.since.elapsed() < timeout && c.conn.is_reusable());
            shrink(&mut raw, period, |c| c.since);
            self.raw_idle.fetch_sub(before - raw.len(), Ordering::Relaxed);
        }
    }

    /// Idle HTTP/1.1 connections held now.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
            + self.raw.iter().map(|r| r.lock().unwrap_or_else(|e| e.into_inner()).len()).sum::<usize>()
    }
}

/// Close half (rounded up) of the connections of `list` (oldest first) that have been idle
/// for at least `period`, keeping at least [`WARM_FLOOR`] connections.
fn shrink<T>(list: &mut Vec<T>, period: Duration, since: impl Fn(&T) -> Instant) {
    // Most recently used last: the cold ones are a prefix.
    let cold = list.iter().take_while(|c| since(c).elapsed() >= period).count();
    let surplus = cold.min(list.len().saturating_sub(WARM_FLOOR));
    list.drain(..surplus.div_ceil(2));
}

async fn h1_handshake<S>(
    stream: S,
    addr: SocketAddr,
    upgrades: bool,
) -> io::Result<http1::SendRequest<UpstreamBody>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        http1::Builder::new().handshake(TokioIo::new(stream)).await.map_err(io::Error::other)?;
    tokio::spawn(async move {
        let done = if upgrades { conn.with_upgrades().await } else { conn.await };
        if let Err(e) = done {
            tracing::debug!(upstream = %addr, error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

async fn h2_handshake<S>(stream: S, addr: SocketAddr) -> io::Result<http2::SendRequest<UpstreamBody>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_UPSTREAM_PING_INTERVAL)
        .adaptive_window(true)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(upstream = %addr, error = %e, "upstream HTTP/2 connection ended with an error");
        }
    });
    Ok(sender)
}

impl Conn {
    /// Put the connection back for reuse.
    pub fn release(self) {
        if !self.sender.is_closed() {
            self.pool.put(self.sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_closes_half_the_cold_surplus_per_sweep_down_to_the_floor() {
        let period = Duration::from_secs(1);
        let now = Instant::now();
        let cold = now.checked_sub(Duration::from_secs(5)).expect("an instant 5 s ago");
        // 40 idle through the last period (oldest first), 10 used just now.
        let mut list: Vec<Instant> =
            std::iter::repeat_n(cold, 40).chain(std::iter::repeat_n(now, 10)).collect();
        let mut sizes = vec![list.len()];
        for _ in 0..8 {
            shrink(&mut list, period, |t| *t);
            sizes.push(list.len());
        }
        assert_eq!(sizes, [50, 30, 20, 15, 12, 11, 10, 10, 10], "the 10 in use stay");
        assert!(list.iter().all(|t| *t == now));

        let mut all_cold: Vec<Instant> = std::iter::repeat_n(cold, 12).collect();
        let mut sizes = Vec::new();
        for _ in 0..4 {
            shrink(&mut all_cold, period, |t| *t);
            sizes.push(all_cold.len());
        }
        assert_eq!(sizes, [10, 9, 8, 8], "never below the floor of {WARM_FLOOR}");

        let mut warm: Vec<Instant> = std::iter::repeat_n(now, 100).collect();
        shrink(&mut warm, period, |t| *t);
        assert_eq!(warm.len(), 100, "connections used within the period stay");
    }

    #[test]
    fn an_ejection_is_counted_once_and_skipped_until_it_expires() {
        let counter = Arc::new(Counter::default());
        let tls = UpstreamTls::new().expect("tls config");
        let pools = Pools::with_ejections(PoolSettings::default(), 1, tls, counter.clone());
        let pool = pools.get(SocketAddr::from(([127, 0, 0, 1], 9)), Protocol::Http);
        assert!(!pool.is_ejected());
        pool.eject();
        assert!(pool.is_ejected());
        pool.eject();
        assert_eq!((counter.get(), pools.ejections()), (1, 1), "one ejection, extended");
        // Expired: back in rotation, and a later failure is a new ejection.
        pool.ejected_until.store(1, Ordering::Relaxed);
        assert!(!pool.is_ejected());
        assert_eq!(pool.ejected_until.load(Ordering::Relaxed), 0);
        pool.eject();
        assert_eq!(counter.get(), 2);
    }
}
