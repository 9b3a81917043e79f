//! HTTP/1.1 client connections: served by hyper while active, released between requests.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for every HTTP/1.1 connection
//! for as long as it lives, so each idle keep-alive connection held about 21 KiB. weir lets
//! hyper's connection go once the client has been quiet for [`RELEASE_AFTER`] with its last
//! response flushed (`conn.rs` watches for that): the stream answers hyper's next read with
//! end-of-file, hyper ends the connection at the message boundary and hands back the socket
//! and any bytes it read but did not parse, and the task waits on the bare socket. When the
//! client sends again, a new hyper connection serves it, those bytes read first. Released,
//! a connection keeps its socket, its task and its activity record: no buffer.
//!
//! Nothing a client can see changes across a release. Its clocks (keep-alive idle, header
//! read) and its `nginx_process_connections` state live in the activity record; a request
//! that upgrades the connection is in flight until hyper hands the socket to the tunnel, so
//! such a connection is never released. A next request that arrived in part and then
//! stalled ends hyper's connection with an error, and hyper hands its bytes back: they are
//! read again first. A connection whose request body is still coming after its answer
//! (hyper is draining it) is closed, as nginx's lingering close would.

use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::body::ResponseBody;
use crate::conn::{self, Activity, Ended, Watched, RELEASE_AFTER};
use crate::rewind::Rewound;

/// How long a released connection's TLS close_notify may take when a drain closes it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A stream whose readability can be awaited without reading it (and so without a buffer).
pub(crate) trait ReadReady {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

impl ReadReady for TcpStream {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }
}

/// A stream with bytes to read again is ready (the PROXY protocol's `Rewound`: the bytes
/// past its header).
impl<S: ReadReady> ReadReady for Rewound<S> {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.prefix().is_empty() {
            true => self.get_mut().poll_read_ready(cx),
            false => Poll::Ready(Ok(())),
        }
    }
}

impl<S: ReadReady> ReadReady for Watched<S> {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_ready(cx)
    }
}

impl<S: ReadReady + ?Sized> ReadReady for Box<S> {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_read_ready(cx)
    }
}

impl<S: ReadReady> ReadReady for tokio_rustls::server::TlsStream<S> {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (io, tls) = self.get_mut();
        // Records already received may hold plaintext, or the client's close_notify, that
        // no read has asked for yet: then there is something to read now. (An error is
        // kept by rustls, and the next read reports it.)
        match tls.process_new_packets() {
            Ok(state) if state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() => {
                io.poll_read_ready(cx)
            }
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// The request service a client connection is served with (HTTP/1.1 and HTTP/2 alike).
pub(crate) trait ClientService:
    hyper::service::Service<
        http::Request<hyper::body::Incoming>,
        Response = http::Response<ResponseBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Unpin
    + Send
    + 'static
{
}

impl<T> ClientService for T where
    T: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<ResponseBody>,
            Error = Infallible,
            Future: Send + 'static,
        > + Unpin
        + Send
        + 'static
{
}

/// One hyper connection on `io`, until it is released (then the stream, with the bytes
/// hyper read but did not parse put back, and the service) or ends (`None`). `server.rs`
/// alternates this (boxed) with [`next_bytes`] for the connection's life. A function of its
/// own, so that everything of hyper's — the connection's allocation and its read buffer —
/// is freed when it returns, not kept while the connection waits released.
pub(crate) async fn serve_until_released<S, Svc>(
    h1: &http1::Builder,
    io: Rewound<S>,
    service: Svc,
    activity: &Activity,
    clocks: (Duration, Duration),
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(Rewound<S>, Svc)>
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static,
    Svc: ClientService,
{
    // Boxed, so that while released the task keeps no room for it.
    let mut conn = Box::new(h1.serve_connection(TokioIo::new(io), service).with_upgrades());
    let ended = conn::watch(
        Pin::new(&mut *conn),
        |c| c.graceful_shutdown(),
        activity,
        clocks,
        Some(RELEASE_AFTER),
        shutdown,
    )
    .await;
    let http1::Parts { io, read_buf, service, .. } = match ended {
        Ended::Finished(Err(e)) => {
            tracing::debug!(error = %e, "client connection ended with an error");
            return None;
        }
        Ended::Finished(Ok(())) | Ended::Expired => return None,
        Ended::Released(result) => match (result, conn.into_parts()) {
            (Ok(()), Some(parts)) => parts,
            // A next request partly received, then stalled: hyper's error ended the
            // connection, and its bytes are read again by the next one.
            (Err(_), Some(parts)) if !parts.read_buf.is_empty() => parts,
            (result, _) => {
                tracing::debug!(?result, "closing a client connection that stalled mid-request");
                return None;
            }
        },
    };
    activity.set_releasing(false);
    let mut io = io.into_inner();
    // A copy (none when empty): hyper's read buffer comes back frozen, and even a slice of
    // it would keep all of its 8 KiB.
    io.rewind(Bytes::copy_from_slice(&read_buf));
    Some((io, service))
}

/// Wait, holding no buffer, until a released connection's socket has something to read.
/// (Bytes hyper gave back are a next request's head in part, since hyper would have
/// parsed a whole one: they wait for the rest too.) `false`: close the connection (idle
/// timeout, drain, or a failed socket).
pub(crate) async fn next_bytes<S>(
    io: &mut Rewound<S>,
    activity: &Activity,
    (idle, header): (Duration, Duration),
    shutdown: &mut watch::Receiver<bool>,
) -> bool
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin,
{
    let Some((expires, _)) = activity.deadline(idle, header) else { return true };
    tokio::select! {
        ready = poll_fn(|cx| io.get_mut().poll_read_ready(cx)) => ready.is_ok(),
        _ = tokio::time::sleep_until(expires) => {
            tracing::debug!("closing an idle client connection");
            false
        }
        _ = conn::stopped(shutdown) => {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, io.shutdown()).await;
            false
        }
    }
}
