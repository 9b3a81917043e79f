//! One client connection's life: serve it, watch its idle and header clocks, drain it.
//!
//! hyper has one clock for HTTP/1 (`header_read_timeout`, which also runs while a
//! keep-alive connection waits idle) and none for an idle HTTP/2 connection. weir keeps
//! nginx's two: **keep-alive idle** (no request in flight and no byte of a next request
//! received, default 75 s) and **client header read** (a request head started and not
//! finished, default 60 s — slowloris clients are cut here). A small [`Activity`] record
//! per connection is updated by the stream wrapper ([`Watched`]), by each request, and by
//! the end of each response (an [`ActivityGuard`] the response body carries); a watchdog
//! in the connection task reads it.
//!
//! The request path never wakes the watchdog. It sleeps until the nearest deadline, but
//! never longer than the shorter of the two timeouts from when it last looked: any
//! deadline set since then (a head started, a response ended) is at least that far away,
//! so it is never missed, and an active connection costs one timer wake per period.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// What the watchdog of one connection knows.
pub struct Activity {
    origin: Instant,
    /// Requests whose response has not ended.
    inflight: AtomicUsize,
    /// Milliseconds since `origin` when the connection last became idle.
    idle_since: AtomicU64,
    /// A byte arrived while idle: a request head has started.
    head_started: AtomicBool,
    head_started_at: AtomicU64,
    /// HTTP/2 reads frames (pings, window updates) at any time: only the idle clock applies.
    http2: AtomicBool,
    /// The bytes received from the start of the current HTTP/1 request head until hyper
    /// parsed it (the first read may carry some body too). hyper silently drops a
    /// Content-Length that comes with Transfer-Encoding (RFC 9112 §6.3); weir refuses such
    /// requests (400), so it needs to see the head as sent. Only this connection's task
    /// touches it, so the lock is never contended.
    head: Mutex<Vec<u8>>,
}

/// A head buffer grown past this is freed rather than kept for the next head.
const HEAD_KEEP_CAPACITY: usize = 4096;
/// At most this much of a head is kept (above the largest head weir accepts).
const HEAD_CAPTURE_LIMIT: usize = 64 << 10;

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Idle,
    HeaderRead,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            origin: Instant::now(),
            inflight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicBool::new(false),
            head_started_at: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            head: Mutex::new(Vec::new()),
        })
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn ms_at(&self, at: std::time::Instant) -> u64 {
        Instant::from_std(at).saturating_duration_since(self.origin).as_millis() as u64
    }

    /// A request head was parsed; the response will end with the returned guard's drop.
    pub fn begin(self: &Arc<Self>, version: http::Version) -> ActivityGuard {
        if version == http::Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        self.inflight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(false, Ordering::Release);
        ActivityGuard { activity: self.clone(), ended: None }
    }

    fn bytes_received(&self, data: &[u8]) {
        if self.inflight.load(Ordering::Acquire) != 0 || self.http2.load(Ordering::Relaxed) {
            return;
        }
        let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        if !self.head_started.load(Ordering::Acquire) {
            self.head_started_at.store(self.now_ms(), Ordering::Release);
            self.head_started.store(true, Ordering::Release);
            // A new head: forget the last one (and its memory, if it was a big one).
            if head.capacity() > HEAD_KEEP_CAPACITY {
                *head = Vec::new();
            } else {
                head.clear();
            }
        }
        let room = HEAD_CAPTURE_LIMIT.saturating_sub(head.len());
        head.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Whether the head of the request being served carried a Content-Length line. Looked
    /// at only for requests with Transfer-Encoding (hyper removed the length from them).
    pub fn head_had_content_length(&self) -> bool {
        let head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(head.len());
        head[..end]
            .split(|&b| b == b'\n')
            .skip(1)
            .any(|line| line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:"))
    }

    /// When the connection expires if nothing changes, or `None` while a request is in
    /// flight (then check again later).
    pub fn deadline(&self, idle: Duration, header: Duration) -> Option<(Instant, Expiry)> {
        if self.inflight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let ms = |d: Duration| d.as_millis() as u64;
        let (at, why) = match self.head_started.load(Ordering::Acquire) {
            true => (self.head_started_at.load(Ordering::Acquire) + ms(header), Expiry::HeaderRead),
            false => (self.idle_since.load(Ordering::Acquire) + ms(idle), Expiry::Idle),
        };
        // +1 ms: the clock above truncates to whole milliseconds; never expire early.
        Some((self.origin + Duration::from_millis(at + 1), why))
    }
}

/// Marks the end of one request's response when dropped.
pub struct ActivityGuard {
    activity: Arc<Activity>,
    /// When the response ended, if the caller already read the clock.
    ended: Option<std::time::Instant>,
}

impl ActivityGuard {
    /// The response ended `at` (saves a clock read when the caller has one).
    pub fn end_at(mut self, at: std::time::Instant) {
        self.ended = Some(at);
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        let a = &self.activity;
        let ms = self.ended.map_or_else(|| a.now_ms(), |at| a.ms_at(at));
        a.idle_since.store(ms, Ordering::Release);
        a.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A client stream that reports received bytes to its connection's [`Activity`].
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_received(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
