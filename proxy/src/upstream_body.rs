//! The client's request body on its way upstream: streamed, counted when its length was not
//! declared, and cut at the rule's `maxBodySize`.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body went past the rule's `maxBodySize` while streaming (→ 413).
#[derive(Debug, thiserror::Error)]
#[error("the request body exceeds the limit of {0} bytes")]
pub struct BodyTooLarge(pub u64);

/// The client's request body failed while weir streamed it upstream: the client's fault,
/// never the backend's (`forward.rs` maps it to 400, or 499 when the client went away).
#[derive(Debug, thiserror::Error)]
#[error("the client's request body failed: {source}")]
pub struct ClientBodyError {
    /// The client stopped sending (its connection ended mid-body) rather than sending
    /// malformed framing (a bad chunk size, say).
    pub closed: bool,
    #[source]
    pub source: hyper::Error,
}

impl ClientBodyError {
    fn new(source: hyper::Error) -> Self {
        let closed = {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&source);
            let mut closed = false;
            while let Some(err) = cause {
                if let Some(io) = err.downcast_ref::<std::io::Error>() {
                    use std::io::ErrorKind::*;
                    closed |=
                        matches!(io.kind(), UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe);
                }
                cause = err.source();
            }
            closed || source.is_incomplete_message() || source.is_canceled()
        };
        ClientBodyError { closed, source }
    }
}

/// Whether the upstream is taking the request body: when weir handed it a chunk and it
/// has not asked for the next since (`forward.rs` times that against `sendTimeout`).
#[derive(Debug, Default)]
pub struct SendProgress {
    /// Milliseconds since `origin` when the last chunk was handed over; 0 while the upstream
    /// side is asking for more (waiting on the client) or the body ended.
    handed_ms: AtomicU64,
    origin: std::sync::OnceLock<std::time::Instant>,
}

impl SendProgress {
    fn origin(&self) -> std::time::Instant {
        *self.origin.get_or_init(std::time::Instant::now)
    }

    fn handed(&self) {
        let ms = self.origin().elapsed().as_millis() as u64;
        self.handed_ms.store(ms.max(1), Ordering::Relaxed);
    }

    fn asked(&self) {
        self.handed_ms.store(0, Ordering::Relaxed);
    }

    /// Since when the upstream has held a chunk without asking for the next, if it does.
    pub fn stalled_since(&self) -> Option<std::time::Instant> {
        match self.handed_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.origin() + std::time::Duration::from_millis(ms)),
        }
    }
}

/// What sees a body's chunks as they pass upstream, and its end (a mirror copy collecting
/// its body: `mirror::Tee`). Dropped without `end` when the body fails or is cut.
pub trait BodyTap: Send {
    fn data(&mut self, chunk: &Bytes);
    fn end(&mut self);
}

/// The client's request body on its way upstream (or a body weir has whole: a mirror
/// copy's).
pub struct UpstreamBody {
    inner: Option<Incoming>,
    /// A body weir has whole, sent as one frame.
    full: Option<Bytes>,
    /// Bytes passed through, when the client did not declare a length.
    counted: Option<Arc<AtomicU64>>,
    /// Largest body allowed (a declared length is checked before forwarding).
    limit: Option<u64>,
    seen: u64,
    /// A mirror copy collecting the body as it passes (`mirror.rs`).
    tap: Option<Box<dyn BodyTap>>,
    /// Watched for the send timeout.
    progress: Option<Arc<SendProgress>>,
}

impl UpstreamBody {
    pub fn new(inner: Incoming, counted: Option<Arc<AtomicU64>>, limit: Option<u64>) -> Self {
        UpstreamBody { inner: Some(inner), full: None, counted, limit, seen: 0, tap: None, progress: None }
    }

    /// No body (for requests weir makes itself).
    pub fn empty() -> Self {
        UpstreamBody {
            inner: None,
            full: None,
            counted: None,
            limit: None,
            seen: 0,
            tap: None,
            progress: None,
        }
    }

    /// `body`, whole (an empty one is no body).
    pub fn full(body: Bytes) -> Self {
        let full = (!body.is_empty()).then_some(body);
        UpstreamBody { full, ..UpstreamBody::empty() }
    }

    /// Let `tap` see every chunk of this body, and its end.
    pub fn with_tap(mut self, tap: Box<dyn BodyTap>) -> Self {
        self.tap = Some(tap);
        self
    }

    /// Report to a [`SendProgress`] how the upstream takes this body (a streamed one only).
    pub fn watched(&mut self) -> Option<Arc<SendProgress>> {
        use http_body::Body as _;
        if self.inner.is_none() || self.is_end_stream() {
            return None;
        }
        let progress = Arc::new(SendProgress::default());
        progress.origin();
        self.progress = Some(progress.clone());
        Some(progress)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(p) = &this.progress {
            p.asked();
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(this.full.take().map(|b| Ok(Frame::data(b))));
        };
        let frame = match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => {
                this.inner = None;
                // The copy's body is incomplete: dropped with the tap.
                this.tap = None;
                return Poll::Ready(Some(Err(Box::new(ClientBodyError::new(e)))));
            }
            Poll::Ready(None) => {
                if let Some(tap) = &mut this.tap {
                    tap.end();
                }
                return Poll::Ready(None);
            }
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let n = data.len() as u64;
            this.seen += n;
            if let Some(counted) = &this.counted {
                counted.fetch_add(n, Ordering::Relaxed);
            }
            if let Some(limit) = this.limit.filter(|&l| this.seen > l) {
                this.inner = None;
                this.tap = None;
                return Poll::Ready(Some(Err(Box::new(BodyTooLarge(limit)))));
            }
            if let Some(tap) = &mut this.tap {
                tap.data(data);
                // hyper's client may stop polling once the body says it ended.
                if this.inner.as_ref().is_some_and(|b| b.is_end_stream()) {
                    tap.end();
                }
            }
            // The last chunk is not watched: nothing tells when it was written, and the
            // wait that follows is the response's.
            if let Some(p) =
                this.progress.as_ref().filter(|_| !this.inner.as_ref().is_none_or(|b| b.is_end_stream()))
            {
                p.handed();
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.full.is_none() && self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.inner, &self.full) {
            (Some(b), _) => b.size_hint(),
            (None, Some(full)) => SizeHint::with_exact(full.len() as u64),
            (None, None) => SizeHint::with_exact(0),
        }
    }
}
