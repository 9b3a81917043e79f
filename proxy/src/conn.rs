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
//!
//! The same record keeps the listener's [`ConnStats`] (nginx's stub_status numbers, for
//! ingress-nginx's `nginx_process_connections` families) when metrics are on: a connection
//! is *reading* from the first byte of a request head until hyper parsed it, *writing*
//! while at least one of its requests has a response not yet ended, and *waiting*
//! otherwise (idle keep-alive, a TLS handshake). Relaxed counters, changed only on those
//! transitions: one or two atomic adds per request, no lock.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Client connections by state, over every data listener of one weir (nginx's
/// stub_status). Gauges are signed so a scrape racing a transition never sees a wrapped
/// value; readers clamp at 0.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Connections accepted by a data listener.
    pub accepted: AtomicU64,
    /// Accepted connections given a slot under `--max-connections` (weir makes the others
    /// wait; it does not refuse them).
    pub handled: AtomicU64,
    /// Request heads parsed (HTTP/1 requests and HTTP/2 streams), routed or not.
    pub requests: AtomicU64,
    /// Connections open now.
    pub active: AtomicI64,
    /// Connections reading a request head now.
    pub reading: AtomicI64,
    /// Connections with a request in flight now.
    pub writing: AtomicI64,
}

/// One reading of [`ConnStats`]: `active = reading + writing + waiting`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnCounts {
    pub accepted: u64,
    pub handled: u64,
    pub requests: u64,
    pub active: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
}

impl ConnStats {
    pub fn counts(&self) -> ConnCounts {
        let gauge = |g: &AtomicI64| u64::try_from(g.load(Ordering::Relaxed)).unwrap_or(0);
        let (active, reading, writing) = (gauge(&self.active), gauge(&self.reading), gauge(&self.writing));
        // Read apart from each other, the three can disagree by a transition in progress.
        let (reading, writing) = (reading.min(active), writing.min(active - reading.min(active)));
        ConnCounts {
            accepted: self.accepted.load(Ordering::Relaxed),
            handled: self.handled.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            active,
            reading,
            writing,
            waiting: active - reading - writing,
        }
    }
}

fn add(stats: &Option<Arc<ConnStats>>, pick: fn(&ConnStats) -> &AtomicI64, n: i64) {
    if let Some(s) = stats {
        pick(s).fetch_add(n, Ordering::Relaxed);
    }
}

/// What the watchdog of one connection knows.
pub struct Activity {
    origin: Instant,
    /// The listener's connection counters (`None`: metrics off).
    stats: Option<Arc<ConnStats>>,
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
    /// A connection just given its slot; counted in `stats` (if any) until dropped.
    pub fn new(stats: Option<Arc<ConnStats>>) -> Arc<Self> {
        add(&stats, |s| &s.active, 1);
        Arc::new(Activity {
            origin: Instant::now(),
            stats,
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
        let before = self.inflight.fetch_add(1, Ordering::AcqRel);
        // Only this connection's task sets or clears head_started: load, then store.
        let was_reading = self.head_started.load(Ordering::Acquire);
        self.head_started.store(false, Ordering::Release);
        if let Some(s) = &self.stats {
            s.requests.fetch_add(1, Ordering::Relaxed);
            if was_reading {
                s.reading.fetch_sub(1, Ordering::Relaxed);
            }
            if before == 0 {
                s.writing.fetch_add(1, Ordering::Relaxed);
            }
        }
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
            add(&self.stats, |s| &s.reading, 1);
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
        if a.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            add(&a.stats, |s| &s.writing, -1);
        }
    }
}

impl Drop for Activity {
    /// The connection is gone (every request guard holds the record, so none is in flight).
    fn drop(&mut self) {
        if self.head_started.load(Ordering::Acquire) {
            add(&self.stats, |s| &s.reading, -1);
        }
        add(&self.stats, |s| &s.active, -1);
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
