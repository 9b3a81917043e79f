//! Mirror routes (a WeirRoute's `setMirrorRoute`; the decision is
//! `weir_config::mirror_route`): a copy of a request that goes to stable, sent to the
//! rule's canary, its answer read and discarded.
//!
//! A copy never delays, fails or changes the primary request. It is sent from a task of its
//! own: a bodyless request's copy as soon as the primary's head is decided, a copy with a
//! body once the primary has streamed all of it upstream, from the chunks the primary's
//! body passed on ([`Tee`]: `Bytes` handles, not copies of the bytes). Its failures are
//! counted and never seen by the client; it is tried on one endpoint, once, and never
//! ejects one (the canary's passive health stays what its own traffic shows). Copies in
//! flight are bounded ([`MirrorSettings::max_in_flight`], which also bounds the memory their
//! bodies hold): when every slot is taken a copy is dropped and counted, as is one whose body
//! goes past [`MirrorSettings::body_limit`] or whose primary body did not complete.
//!
//! Copies are not requests of the rule in ingress-nginx's families (they would count the
//! canary's traffic twice, and Argo's analysis reads those): `weir_mirror_requests_total`
//! counts the requests selected, `weir_mirror_copies_total{result}` what became of them.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{Request, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use weir_config::{Route, Side};

use crate::forwarding::RequestHeaders;
use crate::metrics::histogram::Counter;
use crate::request::{self, Target};
use crate::snapshot::Snapshot;
use crate::upstream_body::{BodyTap, UpstreamBody};

/// Bounds on mirroring, for the whole process.
#[derive(Debug, Clone, Copy)]
pub struct MirrorSettings {
    /// Copies being buffered or sent at once; more are dropped.
    pub max_in_flight: usize,
    /// Largest request body a copy carries; a copy of a larger one is dropped.
    pub body_limit: u64,
}

impl Default for MirrorSettings {
    fn default() -> Self {
        MirrorSettings { max_in_flight: 256, body_limit: 64 * 1024 }
    }
}

/// Requests a mirror route selected (`weir_mirror_requests_total`), and what became of
/// their copies (`weir_mirror_copies_total{result}`; once every copy is done, the results
/// add up to the requests).
#[derive(Default)]
pub struct MirrorStats {
    /// Requests a mirror route selected (its percentage drawn).
    pub requests: Counter,
    /// The canary answered (any status).
    pub answered: Counter,
    /// No answer: no endpoint, connecting failed, the exchange broke or timed out.
    pub failed: Counter,
    /// Dropped: every slot was taken.
    pub full: Counter,
    /// Dropped: the body went past the limit.
    pub too_large: Counter,
    /// Dropped: the primary's body did not complete (the client's stream failed).
    pub incomplete: Counter,
}

impl MirrorStats {
    /// `(result label, count)` for every result, in a fixed order.
    pub fn results(&self) -> [(&'static str, u64); 5] {
        [
            ("answered", self.answered.get()),
            ("failed", self.failed.get()),
            ("full", self.full.get()),
            ("too_large", self.too_large.get()),
            ("incomplete", self.incomplete.get()),
        ]
    }
}

/// The mirroring of one weir process: its slots and counters.
#[derive(Clone)]
pub struct Mirror {
    slots: Arc<Semaphore>,
    body_limit: u64,
    pub stats: Arc<MirrorStats>,
}

impl Mirror {
    pub fn new(settings: MirrorSettings, stats: Arc<MirrorStats>) -> Self {
        Mirror {
            slots: Arc::new(Semaphore::new(settings.max_in_flight)),
            body_limit: settings.body_limit,
            stats,
        }
    }

    /// A copy of `req` for `route`'s canary when one of its mirror routes selects the
    /// request (which goes to `side`); `rules` are the primary's forwarding headers, so the
    /// copy carries the same X-Forwarded-* and X-Request-ID. `None` when nothing is to be
    /// copied, or when the copy is dropped (counted).
    pub fn copy_for(
        &self,
        snapshot: &Arc<Snapshot>,
        route: &Arc<Route>,
        req: &Request<Incoming>,
        side: Side,
        rules: &RequestHeaders,
        target: &Target,
    ) -> Option<Box<MirrorCopy>> {
        let canary = route.canary.as_ref()?;
        let path = req.uri().path();
        weir_config::mirror_route(canary, side, req.method(), path, req.headers(), |n| fastrand::u32(1..=n))?;
        self.stats.requests.inc();
        if request::declared_length(req.headers()).is_some_and(|len| len > self.body_limit) {
            self.stats.too_large.inc();
            return None;
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.stats.full.inc();
            return None;
        };
        let head = copy_head(route, req, rules.clone(), target)?;
        Some(Box::new(MirrorCopy {
            head,
            snapshot: snapshot.clone(),
            route: route.clone(),
            backend: canary.backend.index(),
            _permit: permit,
            stats: self.stats.clone(),
            body_limit: self.body_limit,
        }))
    }
}

/// The copy's head: the primary's, with the headers the primary gets upstream.
fn copy_head(
    route: &Route,
    req: &Request<Incoming>,
    rules: RequestHeaders,
    target: &Target,
) -> Option<Request<()>> {
    let mut head = Request::new(());
    *head.method_mut() = req.method().clone();
    let mut headers = req.headers().clone();
    if route.protocol.is_http2() {
        rules.apply_http2(&mut headers);
        let scheme = if route.protocol.is_tls() { "https" } else { "http" };
        *head.uri_mut() = request::absolute_form(scheme, target.value.to_str().ok()?, req.uri()).ok()?;
        *head.version_mut() = Version::HTTP_2;
    } else {
        rules.apply_http1(&mut headers);
        *head.uri_mut() = request::origin_form(req.uri()).ok()?;
        *head.version_mut() = Version::HTTP_11;
    }
    *head.headers_mut() = headers;
    Some(head)
}

/// A copy about to be sent; it holds its slot until it is done.
pub struct MirrorCopy {
    head: Request<()>,
    snapshot: Arc<Snapshot>,
    route: Arc<Route>,
    backend: usize,
    _permit: OwnedSemaphorePermit,
    stats: Arc<MirrorStats>,
    body_limit: u64,
}

impl MirrorCopy {
    /// Send the copy with `body` from a task of its own.
    pub fn send(self: Box<Self>, body: Bytes) {
        tokio::spawn(async move {
            let MirrorCopy { head, snapshot, route, backend, _permit, stats, .. } = *self;
            let answered = exchange(head, body, &snapshot, &route, backend).await.is_some();
            match answered {
                true => stats.answered.inc(),
                false => stats.failed.inc(),
            }
        });
    }

    /// What collects the primary's body for the copy, as the primary streams it.
    pub fn tee(self: Box<Self>) -> Box<Tee> {
        Box::new(Tee { copy: Some(self), chunks: Vec::new(), len: 0 })
    }
}

/// One endpoint of the canary, once: the answer's head within the rule's response timeout,
/// then its body read (and dropped) with the same bound per read. `None`: no answer.
async fn exchange(
    head: Request<()>,
    body: Bytes,
    snapshot: &Snapshot,
    route: &Route,
    backend: usize,
) -> Option<()> {
    let backend = snapshot.backends.get(backend)?;
    let n = backend.endpoints.len();
    if n == 0 {
        return None;
    }
    let start = backend.next_start();
    let pool = (0..n)
        .map(|i| &backend.endpoints[start.wrapping_add(i) % n])
        .find(|p| !p.is_ejected())
        .unwrap_or(&backend.endpoints[start % n]);
    let mut conn = pool.checkout(route.connect_timeout).await.ok()?;
    let (parts, ()) = head.into_parts();
    let req = Request::from_parts(parts, UpstreamBody::full(body));
    let wait = route.response_timeout;
    let resp = tokio::time::timeout(wait, conn.sender.try_send(req)).await.ok()?.ok()?;
    let mut body = resp.into_body();
    loop {
        match tokio::time::timeout(wait, body.frame()).await.ok()? {
            None => break,
            Some(Ok(_)) => {}
            Some(Err(_)) => return None,
        }
    }
    conn.release();
    Some(())
}

/// A copy's body, collected from the primary's as it streams ([`UpstreamBody`] feeds it):
/// sent when the primary's body ends, dropped (and counted) past the limit or when the
/// primary's body does not end.
pub struct Tee {
    copy: Option<Box<MirrorCopy>>,
    chunks: Vec<Bytes>,
    len: u64,
}

impl BodyTap for Tee {
    /// A chunk of the primary's body.
    fn data(&mut self, chunk: &Bytes) {
        let Some(copy) = &self.copy else { return };
        self.len += chunk.len() as u64;
        if self.len > copy.body_limit {
            copy.stats.too_large.inc();
            self.copy = None;
            self.chunks = Vec::new();
            return;
        }
        self.chunks.push(chunk.clone());
    }

    /// The primary's body ended: send the copy.
    fn end(&mut self) {
        let Some(copy) = self.copy.take() else { return };
        let body = match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.pop().unwrap_or_default(),
            _ => {
                let mut all = BytesMut::with_capacity(self.len as usize);
                for c in self.chunks.drain(..) {
                    all.extend_from_slice(&c);
                }
                all.freeze()
            }
        };
        copy.send(body);
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        if let Some(copy) = self.copy.take() {
            copy.stats.incomplete.inc();
        }
    }
}
