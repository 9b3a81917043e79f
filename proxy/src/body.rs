//! Bodies that stream through weir without being buffered.
//!
//! [`ResponseBody`] carries the answer to the client, counts the
//! bytes sent, gives the upstream connection back to its pool once the upstream response
//! has been read to the end, and finishes the request's record when it is dropped —
//! after the last byte, or early when the client goes away — so every request is recorded
//! exactly once, on success and error alike.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::conn::ActivityGuard;
use crate::exchange::RawBody;
use crate::pool::{Conn, EndpointPool};
use crate::telemetry::Recording;
use crate::upstream_body::BoxError;

enum Source {
    /// Relaying an upstream response; the connection goes back to the pool at its end.
    Upstream { body: Incoming, conn: Option<Conn> },
    /// Relaying a response of weir's own exchange, read from the connection as it is polled.
    /// The pool is taken when the body's end has been handled.
    Raw { body: RawBody, pool: Option<Arc<EndpointPool>> },
    /// An answer weir makes itself.
    Local(Option<Bytes>),
}

/// The body sent to the client.
pub struct ResponseBody {
    source: Source,
    sent: u64,
    record: Option<Recording>,
    /// When the upstream body ended (the request usually ends at the same moment).
    upstream_ended: Option<Instant>,
    /// The client connection's activity, told when this response ends.
    activity: Option<ActivityGuard>,
}

impl ResponseBody {
    fn new(source: Source, record: Option<Recording>) -> Self {
        ResponseBody { source, sent: 0, record, upstream_ended: None, activity: None }
    }

    /// End `guard`'s request when this response ends.
    pub fn with_activity(mut self, guard: ActivityGuard) -> Self {
        self.activity = Some(guard);
        self
    }

    pub fn upstream(body: Incoming, conn: Option<Conn>, record: Option<Recording>) -> Self {
        ResponseBody::new(Source::Upstream { body, conn }, record)
    }

    pub fn raw(body: RawBody, pool: Arc<EndpointPool>, record: Option<Recording>) -> Self {
        ResponseBody::new(Source::Raw { body, pool: Some(pool) }, record)
    }

    pub fn local(data: impl Into<Bytes>, record: Option<Recording>) -> Self {
        let data: Bytes = data.into();
        ResponseBody::new(Source::Local((!data.is_empty()).then_some(data)), record)
    }

    pub fn empty() -> Self {
        ResponseBody::new(Source::Local(None), None)
    }

    fn upstream_finished(&mut self) {
        match &mut self.source {
            Source::Upstream { conn, .. } => {
                if let Some(conn) = conn.take() {
                    conn.release();
                }
            }
            Source::Raw { body, pool } => {
                let Some(pool) = pool.take() else { return };
                if let Some(conn) = body.take_reusable() {
                    pool.put_raw(conn);
                }
            }
            Source::Local(_) => return,
        }
        let now = Instant::now();
        self.upstream_ended = Some(now);
        if let Some(recording) = self.record.as_mut() {
            recording.record.upstream_done(now);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = match &mut this.source {
            Source::Local(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Source::Upstream { body, .. } => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Err(e))) => {
                    // The upstream broke off mid-body: the client's response is cut short too.
                    if let Source::Upstream { conn, .. } = &mut this.source {
                        conn.take();
                    }
                    Poll::Ready(Some(Err(e.into())))
                }
                // Trailers (gRPC's status) are indexed by an HTTP/2 client's encoder like
                // headers: their values get their own allocation (`headers::own_values`).
                Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(match f.into_trailers() {
                    Ok(mut trailers) => {
                        crate::headers::own_values(&mut trailers);
                        Frame::trailers(trailers)
                    }
                    Err(f) => f,
                }))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            Source::Raw { body, .. } => match body.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.sent += d.len() as u64;
                }
                if this.is_end_stream() {
                    this.upstream_finished();
                }
            }
            Poll::Ready(None) => this.upstream_finished(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Local(data) => data.is_none(),
            Source::Upstream { body, .. } => body.is_end_stream(),
            Source::Raw { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Local(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Source::Upstream { body, .. } => body.size_hint(),
            Source::Raw { body, .. } => body.exact_len().map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // hyper never polls a body that is empty from the start (HEAD, 204, 304,
        // Content-Length: 0), so poll_frame never saw its end: give its connection back here
        // instead of closing it.
        let unreturned =
            matches!(self.source, Source::Upstream { conn: Some(_), .. } | Source::Raw { pool: Some(_), .. });
        if unreturned && self.is_end_stream() {
            self.upstream_finished();
        }
        let ended = self.upstream_ended.unwrap_or_else(Instant::now);
        if let Some(record) = self.record.take() {
            record.finish(self.sent, ended);
        }
        if let Some(activity) = self.activity.take() {
            activity.end_at(ended);
        }
    }
}
