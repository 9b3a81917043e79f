//! Listeners: accept → serve connection (HTTP/1.1 and h2c by prior knowledge) → drain.
//!
//! Both HTTP versions are served on the data port; hyper detects the HTTP/2 preface.
//! Shutdown stops accepting at once, asks every connection to finish its in-flight requests
//! (HTTP/1 closes after the current response, HTTP/2 sends GOAWAY), and waits up to the
//! drain timeout.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::forward::{Peer, Proxy};

/// Client-side connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnSettings {
    /// Time allowed for a request's headers to arrive. hyper starts this clock whenever it
    /// waits for a request head, so it also bounds the idle gap between keep-alive requests
    /// (slowloris clients are cut here).
    pub header_read_timeout: Duration,
    /// HTTP/2: ping an idle connection this often, close it if the ping is not answered.
    pub keep_alive_interval: Duration,
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
            keep_alive_interval: Duration::from_secs(75),
            max_header_bytes: 32 << 10,
            max_connections: 16_384,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

pub(crate) fn builder(settings: ConnSettings) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        // hyper answers 431 when a head does not fit its read buffer (8 KiB at least).
        .max_buf_size(settings.max_header_bytes.max(8192))
        .keep_alive(true)
        .half_close(false);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(settings.keep_alive_interval)
        .keep_alive_timeout(Duration::from_secs(20))
        .max_header_list_size(settings.max_header_bytes as u32);
    b
}

/// One data-plane listener: plain, or TLS-terminating.
pub struct DataListener {
    pub tcp: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub proxy: Arc<Proxy>,
}

/// Accept and serve data-plane connections until `shutdown` flips, then drain.
pub async fn serve_data(
    listener: DataListener,
    settings: ConnSettings,
    limit: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    let builder = Arc::new(builder(settings));
    let graceful = GracefulShutdown::new();
    let DataListener { tcp, tls, proxy } = listener;
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped(&mut shutdown) => break,
        };
        let (stream, client) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else { continue };
        let peer = Peer { client, local };
        let proxy = proxy.clone();
        let service = service_fn(move |req| {
            let proxy = proxy.clone();
            async move { Ok::<_, Infallible>(proxy.serve(req, peer).await) }
        });
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let result = match tls {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(settings.tls_handshake_timeout, acceptor.accept(stream));
                    let stream = match handshake.await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            return tracing::debug!(client = %client, error = %e, "TLS handshake failed")
                        }
                        Err(_) => return tracing::debug!(client = %client, "TLS handshake timed out"),
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(client = %client, error = %e, "client connection ended with an error");
            }
        });
    }
    drop(tcp);
    drain(graceful, drain_timeout).await;
}

/// Resolves once the shutdown switch is on (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Wait for watched connections to finish, at most `timeout`.
pub(crate) async fn drain(graceful: GracefulShutdown, timeout: Duration) {
    if tokio::time::timeout(timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(?timeout, "drain timeout reached; closing the remaining connections");
    }
}

/// Serve a small internal HTTP/1.1 service (admin, metrics) until shutdown.
pub(crate) async fn serve_internal<S, F>(
    listener: TcpListener,
    service: S,
    mut shutdown: watch::Receiver<bool>,
) where
    S: Fn(http::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = http::Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
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
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drain(graceful, Duration::from_secs(5)).await;
}
