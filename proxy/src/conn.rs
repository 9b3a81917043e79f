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
//! An idle HTTP/1.1 connection is also *released* (`h1.rs`): once it has been idle for
//! [`RELEASE_AFTER`] with every byte of its last response flushed, the watchdog sets
//! `releasing`, the stream answers hyper's next read with end-of-file (and its shutdown with
//! nothing done), hyper ends its connection at the message boundary and hands the socket
//! back, and its buffers are freed until the client sends again.
//!
//! The same record keeps the listener's [`ConnStats`] (nginx's stub_status numbers, for
//! ingress-nginx's `nginx_process_connections` families) when metrics are on: a connection
//! is *reading* from the first byte of a request head until hyper parsed it, *writing*
//! while at least one of its requests has a response not yet ended, and *waiting*
//! otherwise (idle keep-alive, a TLS handshake). Relaxed counters, changed only on those
//! transitions: one or two atomic adds per request, no lock.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;

/// How long an HTTP/1.1 connection stays idle, its last response flushed, before hyper's
/// buffers for it are released (`h1.rs`). A client that sends its next request sooner keeps
/// them (no cost to a busy keep-alive connection); one that sends later gets fresh ones.
pub const RELEASE_AFTER: Duration = Duration::from_secs(1);

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
    /// HTTP/1.1 connections released now: idle, holding no buffer (`h1.rs`); among the
    /// waiting ones.
    pub released: AtomicI64,
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
    pub released: u64,
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
            released: gauge(&self.released).min(active),
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
    /// The stream has taken bytes to write that it has not flushed since.
    unflushed: AtomicBool,
    /// The watchdog is releasing the connection: reads see end-of-file, shutdown does
    /// nothing (`h1.rs`).
    releasing: AtomicBool,
    /// Released: hyper's connection is gone until the client sends again.
    released: AtomicBool,
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
            unflushed: AtomicBool::new(false),
            releasing: AtomicBool::new(false),
            released: AtomicBool::new(false),
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

impl Activity {
    /// When the connection may be released if nothing changes: `after` from when it became
    /// idle, if no request is in flight, no byte of a next one arrived, and everything
    /// written was flushed; else `None`.
    pub fn release_at(&self, after: Duration) -> Option<Instant> {
        let busy = self.inflight.load(Ordering::Acquire) > 0
            || self.head_started.load(Ordering::Acquire)
            || self.unflushed.load(Ordering::Acquire)
            || self.http2.load(Ordering::Relaxed);
        let idle = Duration::from_millis(self.idle_since.load(Ordering::Acquire));
        (!busy).then(|| self.origin + idle + after)
    }

    /// Start (`true`) or end (`false`) releasing the connection's stream.
    pub fn set_releasing(&self, on: bool) {
        self.releasing.store(on, Ordering::Release);
    }

    pub fn releasing(&self) -> bool {
        self.releasing.load(Ordering::Acquire)
    }

    /// The connection was released (`true`), or is served again (`false`). Released, it
    /// keeps no copy of its last request head either.
    pub fn set_released(&self, on: bool) {
        if on {
            *self.head.lock().unwrap_or_else(|e| e.into_inner()) = Vec::new();
        }
        if self.released.swap(on, Ordering::AcqRel) != on {
            add(&self.stats, |s| &s.released, if on { 1 } else { -1 });
        }
    }
}

/// How a watched connection ended.
pub enum Ended<T> {
    /// Its future finished on its own (the client closed, an error, an upgrade, a drain).
    Finished(T),
    /// Its future finished because the watchdog released it (HTTP/1.1 between requests).
    Released(T),
    /// The watchdog closed it: idle or header-read timeout.
    Expired,
}

/// Drive one connection's future while watching its clocks: the keep-alive idle and header
/// read timeouts close it, shutdown asks it to drain (`drain`), and with `release_after`
/// an idle one is released (HTTP/1.1 only; never while draining).
pub async fn watch<F: Future>(
    mut conn: Pin<&mut F>,
    drain: impl Fn(Pin<&mut F>),
    activity: &Activity,
    (idle, header): (Duration, Duration),
    release_after: Option<Duration>,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended<F::Output> {
    // Never longer than a release takes to be due either: an active connection that goes
    // quiet is looked at again within that (one timer wake a second while busy).
    let period = release_after.map_or(idle.min(header), |after| idle.min(header).min(after));
    let mut draining = false;
    // One timer for the connection's life, re-armed only when it fires.
    let next_wake = |now: Instant, draining: bool| {
        let expiry = activity.deadline(idle, header).map_or(now + period, |(at, _)| at.min(now + period));
        match release_after.filter(|_| !draining).and_then(|after| activity.release_at(after)) {
            Some(release) => expiry.min(release.max(now)),
            None => expiry,
        }
    };
    let timer = tokio::time::sleep_until(next_wake(Instant::now(), false));
    tokio::pin!(timer);
    // Made once and kept registered: a new one per wake-up (two per request) cost a waiter
    // registration and removal each time.
    let stop = stopped(shutdown);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased; // the connection first: it is what wakes this task nearly every time
            out = conn.as_mut() => {
                return match activity.releasing() {
                    true => Ended::Released(out),
                    false => Ended::Finished(out),
                };
            }
            _ = stop.as_mut(), if !draining => {
                drain(conn.as_mut());
                draining = true;
            }
            _ = timer.as_mut() => {
                let now = Instant::now();
                if let Some((at, why)) = activity.deadline(idle, header) {
                    if at <= now {
                        tracing::debug!(?why, "closing a client connection");
                        return Ended::Expired;
                    }
                }
                let due = |after| activity.release_at(after).is_some_and(|at| at <= now);
                if !draining && release_after.is_some_and(due) {
                    // The connection is polled again next (biased): hyper reads end-of-file.
                    activity.set_releasing(true);
                }
                timer.as_mut().reset(next_wake(now, draining));
            }
        }
    }
}

/// Resolves once the shutdown switch is on (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
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
        self.set_released(false);
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

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Bytes are being written (even a write that is not taken yet: the writer holds them):
    /// unflushed until the next flush completes. (hyper flushes only with its own buffer
    /// empty.)
    fn wrote(&self) {
        if !self.activity.unflushed.load(Ordering::Relaxed) {
            self.activity.unflushed.store(true, Ordering::Release);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.activity.releasing() {
            return Poll::Ready(Ok(())); // end-of-file: hyper ends the idle connection
        }
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
        self.wrote();
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.wrote();
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.activity.unflushed.store(false, Ordering::Release);
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.activity.releasing() {
            return Poll::Ready(Ok(())); // the socket lives on after hyper's connection
        }
        self.wrote(); // a connection being closed is never released
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
