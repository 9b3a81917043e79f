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
use tokio::sync::watch;

use crate::forward::{Peer, Proxy};

/// Client-side connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnSettings {
    /// Time allowed for a request's headers to arrive. hyper starts this clock whenever it
    /// waits for a request head, so it also bounds the idle gap between keep-alive requests.
    pub header_read_timeout: Duration,
    /// HTTP/2: ping an idle connection this often, close it if the ping is not answered.
    pub keep_alive_interval: Duration,
}

impl Default for ConnSettings {
    fn default() -> Self {
        ConnSettings {
            header_read_timeout: Duration::from_secs(60),
            keep_alive_interval: Duration::from_secs(75),
        }
    }
}

pub(crate) fn builder(settings: ConnSettings) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .keep_alive(true)
        .half_close(false);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(settings.keep_alive_interval)
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// Accept and serve data-plane connections until `shutdown` flips, then drain.
pub async fn serve_data(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    settings: ConnSettings,
    mut shutdown: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    let builder = builder(settings);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
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
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(_) => continue,
        };
        let peer = Peer { client, local };
        let proxy = proxy.clone();
        let service = service_fn(move |req| {
            let proxy = proxy.clone();
            async move { Ok::<_, Infallible>(proxy.serve(req, peer).await) }
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(client = %client, error = %e, "client connection ended with an error");
            }
        });
    }
    drop(listener);
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
