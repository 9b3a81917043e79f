//! Upstream connections: one keep-alive pool per endpoint address, shared across swaps.
//!
//! A pool is found through the route snapshot (each backend holds its endpoints' pools), so
//! the request path never searches a global map. [`Pools`] remembers every live pool by
//! address so that a new table reuses the pools (and warm connections) of endpoints that are
//! still present, and so that a sweeper can close connections idle for too long.
//! Connections are made before a request is handed over, so a connect failure never
//! consumes the request body and can be retried on another endpoint.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::UpstreamBody;

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

/// Every live endpoint pool, by address.
pub struct Pools {
    settings: PoolSettings,
    by_addr: Mutex<HashMap<SocketAddr, Weak<EndpointPool>>>,
}

impl Pools {
    pub fn new(settings: PoolSettings) -> Arc<Self> {
        Arc::new(Pools { settings, by_addr: Mutex::new(HashMap::new()) })
    }

    /// The pool for `addr`, reusing the live one if any (called when a table is installed).
    pub fn get(&self, addr: SocketAddr) -> Arc<EndpointPool> {
        let mut map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = map.get(&addr).and_then(Weak::upgrade) {
            return pool;
        }
        let pool = Arc::new(EndpointPool { addr, settings: self.settings, idle: Mutex::new(Vec::new()) });
        map.insert(addr, Arc::downgrade(&pool));
        pool
    }

    /// Close connections idle longer than the idle timeout and forget dead pools.
    pub fn sweep(&self) {
        let mut map = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, weak| match weak.upgrade() {
            Some(pool) => {
                pool.evict_expired();
                true
            }
            None => false,
        });
    }

    /// Run [`Pools::sweep`] periodically until the pools are dropped.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = (self.settings.idle_timeout / 4).max(Duration::from_millis(250));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(pools) => pools.sweep(),
                    None => return,
                }
            }
        });
    }
}

struct Idle {
    sender: http1::SendRequest<UpstreamBody>,
    since: Instant,
}

/// Keep-alive connections to one endpoint.
pub struct EndpointPool {
    addr: SocketAddr,
    settings: PoolSettings,
    idle: Mutex<Vec<Idle>>,
}

/// A connection checked out of a pool; give it back with [`Conn::release`].
pub struct Conn {
    pub sender: http1::SendRequest<UpstreamBody>,
    pub pool: Arc<EndpointPool>,
    /// Time spent connecting; zero for a reused connection.
    pub connect_time: Duration,
}

impl EndpointPool {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A ready connection: the most recently used idle one, else a new one.
    pub async fn checkout(self: &Arc<Self>, connect_timeout: Duration) -> io::Result<Conn> {
        if let Some(sender) = self.take_idle() {
            return Ok(Conn { sender, pool: self.clone(), connect_time: Duration::ZERO });
        }
        let started = Instant::now();
        let sender = self.connect(connect_timeout, false).await?;
        Ok(Conn { sender, pool: self.clone(), connect_time: started.elapsed() })
    }

    /// A fresh connection that is never pooled, able to switch protocols (WebSocket).
    pub async fn connect_for_upgrade(
        &self,
        connect_timeout: Duration,
    ) -> io::Result<http1::SendRequest<UpstreamBody>> {
        self.connect(connect_timeout, true).await
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
                            pool.put(sender);
                        }
                    });
                }
            }
        }
        None
    }

    async fn connect(
        &self,
        connect_timeout: Duration,
        upgrades: bool,
    ) -> io::Result<http1::SendRequest<UpstreamBody>> {
        let stream =
            tokio::time::timeout(connect_timeout, TcpStream::connect(self.addr)).await.map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect timed out after {connect_timeout:?}"),
                )
            })??;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            http1::Builder::new().handshake(TokioIo::new(stream)).await.map_err(io::Error::other)?;
        let addr = self.addr;
        tokio::spawn(async move {
            let result = if upgrades { conn.with_upgrades().await } else { conn.await };
            if let Err(e) = result {
                tracing::debug!(upstream = %addr, error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Return a connection whose response was read to the end.
    pub fn put(&self, sender: http1::SendRequest<UpstreamBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.settings.max_idle_per_endpoint {
            idle.push(Idle { sender, since: Instant::now() });
        }
    }

    fn evict_expired(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let timeout = self.settings.idle_timeout;
        idle.retain(|c| !c.sender.is_closed() && c.since.elapsed() < timeout);
    }

    /// Idle connections held now (for tests and metrics).
    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Conn {
    /// Put the connection back for reuse.
    pub fn release(self) {
        self.pool.put(self.sender);
    }
}
