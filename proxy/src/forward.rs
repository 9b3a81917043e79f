//! The send-upstream step: the one seam between a request and its backend's endpoints.
//!
//! One endpoint-trying loop, [`send_upstream`], carries every request, with ingress-nginx's
//! defaults (`proxy-next-upstream: error timeout`, `proxy-next-upstream-tries: 3`,
//! `proxy-next-upstream-timeout: 0`): round robin from this request's start over the
//! backend's endpoints, skipping ejected ones while another is live, and moving to the next
//! endpoint (at most [`MAX_TRIES`] of them) when connecting fails, when sending fails, when
//! the connection fails before a response head arrived, or when no head came within the
//! route's response timeout. A request that may have reached the upstream is sent again only
//! when its method is idempotent (nginx ≥ 1.9.13: never POST, LOCK, PATCH) and the carrier
//! still has it; otherwise the client gets 502 (504 after a timeout). A reused connection
//! found closed before the request was seen is skipped and the request sent again on the
//! same endpoint (at most [`MAX_STALE_RETRIES`] times). An endpoint that failed is ejected
//! (passive health, `pool.rs`); a failure on a connection that served before is not the
//! endpoint's (it may have closed the idle connection). A malformed response head is the client's 502 at once.
//! What differs is how a request is carried, a [`Carrier`]:
//! - [`OwnExchange`]: weir's own HTTP/1.1 exchange (`exchange.rs`), for a bodyless request
//!   to a plain-HTTP upstream: most traffic, and the measured fast path;
//! - [`Pooled`]: hyper's client on a pooled connection, for request bodies, HTTP/2 and TLS
//!   upstreams (a request with a body is not kept, so it is never sent twice);
//! - [`Upgrade`]: a dedicated HTTP/1.1 connection for an `Upgrade` request, tunnelled after 101.
//!
//! A carrier returns once the response head arrived, before any response byte reaches the
//! client: nothing is ever resent after the client saw bytes.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use weir_config::Route;

use crate::error::ProxyError;
use crate::exchange::{ExchangeError, RawBody, RawConn};
use crate::forwarding::RequestHeaders;
use crate::headers;
use crate::pool::{Checkout, Conn, EndpointPool};
use crate::record::{Record, UpstreamExchange};
use crate::snapshot::BackendState;
use crate::upstream_body::{BodyTooLarge, ClientBodyError, SendProgress, UpstreamBody};
use weir_config::retry::RetryOn;

/// Reused connections found closed just before use are skipped, at most this many times.
pub const MAX_STALE_RETRIES: usize = 4;

/// Endpoints tried per request at most, whatever the rule allows.
const MAX_TRIES: usize = weir_config::retry::MAX_TRIES as usize;

/// Why an attempt failed.
pub enum Failed {
    /// The connection was closed before the request was seen: the carrier can send it again
    /// on another connection, or fail with this error if it may not.
    Stale(ProxyError),
    /// The endpoint failed before a response head arrived, after the request may have
    /// reached it (nginx's `error`): another endpoint is tried if the rule retries on
    /// errors and the carrier can resend the request.
    Endpoint(ProxyError),
    /// The endpoint's answer was not HTTP (nginx's `invalid_header`).
    Invalid(ProxyError),
    /// The request failed; no other attempt is made.
    Error(ProxyError),
}

/// How one kind of request reaches an endpoint: check out a connection, send on it.
pub trait Carrier {
    type Conn;
    /// What a successful attempt yields: the response head and what relays its body.
    type Relayed;

    fn checkout(
        &mut self,
        pool: &Arc<EndpointPool>,
        connect_timeout: Duration,
    ) -> impl Future<Output = io::Result<Checkout<Self::Conn>>> + Send;

    fn send(
        &mut self,
        checkout: Checkout<Self::Conn>,
        pool: &Arc<EndpointPool>,
        route: &Route,
    ) -> impl Future<Output = Result<Self::Relayed, Failed>> + Send;

    /// Whether the request may be sent again after an attempt that may have reached an
    /// upstream: the request still at hand, and its method idempotent unless the rule
    /// retries `non_idempotent` ones.
    fn can_resend(&self, non_idempotent: bool) -> bool;

    fn status(relayed: &Self::Relayed) -> StatusCode;

    /// How the upstream takes a streamed request body, for the send timeout.
    fn progress(&self) -> Option<Arc<SendProgress>> {
        None
    }
}

/// Send what `carrier` carries to one of `backend`'s endpoints (see the module docs), and
/// note the upstream exchange in `record`.
pub async fn send_upstream<C: Carrier>(
    mut carrier: C,
    route: &Route,
    backend: &BackendState,
    record: &mut Record,
) -> Result<C::Relayed, ProxyError> {
    let retry = &route.retry;
    let mut walk = Walk::new(backend, retry.tries, record.preferred_endpoint)?;
    let first_at = Instant::now();
    let mut stale = 0;
    let progress = carrier.progress();
    while let Some(pool) = walk.current() {
        if walk.attempt() > 0 && retry.timeout.is_some_and(|t| first_at.elapsed() >= t) {
            break;
        }
        let checkout = match carrier.checkout(pool, route.connect_timeout).await {
            Ok(c) => c,
            Err(source) => {
                let on = match source.kind() {
                    io::ErrorKind::TimedOut => RetryOn::TIMEOUT,
                    _ => RetryOn::ERROR,
                };
                let error = ProxyError::Connect { addr: pool.addr(), source };
                // Nothing was sent: any method may go to the next endpoint.
                if !retry.on.contains(on) {
                    pool.eject();
                    return Err(error);
                }
                walk.failed(error, true);
                continue;
            }
        };
        let (connect_time, reused) = (checkout.connect_time, checkout.reused);
        let sent_at = Instant::now();
        let deadline = tokio::time::Instant::from_std(sent_at) + route.response_timeout;
        let sent = carrier.send(checkout, pool, route);
        let outcome = match &progress {
            None => tokio::time::timeout_at(deadline, sent).await.map_err(|_| Late::Response),
            Some(p) => Box::pin(watch_send(sent, deadline, p, route.send_timeout)).await,
        };
        // What failed, the retry condition it is, and whether it tells about the endpoint (a
        // connection that served before may just have been closed by it as idle: not a
        // reason to eject it).
        let (failure, on, endpoint_failed) = match outcome {
            Ok(Ok(relayed)) => {
                let status = C::status(&relayed);
                if retry.on.any_status()
                    && retry.on.status(status)
                    && walk.has_next()
                    && carrier.can_resend(retry.on.contains(RetryOn::NON_IDEMPOTENT))
                    && retry.timeout.is_none_or(|t| first_at.elapsed() < t)
                {
                    // nginx counts 500, 502, 503 and 504 against the endpoint, never 403, 404, 429.
                    let eject = matches!(status.as_u16(), 500 | 502..=504);
                    walk.answered(pool, status, eject);
                    continue;
                }
                let exchange = UpstreamExchange::headers_received(
                    pool.addr(),
                    status.as_u16(),
                    connect_time,
                    walk.attempt(),
                    sent_at,
                );
                record.upstream = Some(exchange);
                return Ok(relayed);
            }
            Ok(Err(Failed::Stale(_))) if stale < MAX_STALE_RETRIES => {
                stale += 1;
                continue;
            }
            // Stale every time: the endpoint is failing, and the request was never seen.
            Ok(Err(Failed::Stale(e))) => {
                walk.failed(e, true);
                continue;
            }
            Ok(Err(Failed::Error(e))) => return Err(e),
            Ok(Err(Failed::Endpoint(e))) => (e, RetryOn::ERROR, !reused),
            Ok(Err(Failed::Invalid(e))) => (e, RetryOn::INVALID_HEADER, true),
            Err(Late::Response) => {
                (ProxyError::ResponseTimeout(route.response_timeout), RetryOn::TIMEOUT, true)
            }
            Err(Late::Send) => (ProxyError::SendTimeout(route.send_timeout), RetryOn::TIMEOUT, true),
        };
        if !retry.on.contains(on) || !carrier.can_resend(retry.on.contains(RetryOn::NON_IDEMPOTENT)) {
            if endpoint_failed {
                pool.eject();
            }
            return Err(failure);
        }
        walk.failed(failure, endpoint_failed);
    }
    Err(walk.exhausted())
}

/// Which timeout an attempt ran out of.
enum Late {
    /// No response head within the rule's response timeout.
    Response,
    /// The upstream took no more of a streamed request body within the send timeout.
    Send,
}

/// `sent` within the response deadline, and without the upstream holding a chunk of the
/// request body for longer than `send_timeout` (nginx's `proxy_send_timeout`, between two
/// successive writes). Only requests with a streamed body come here.
async fn watch_send<F: Future>(
    sent: F,
    deadline: tokio::time::Instant,
    progress: &SendProgress,
    send_timeout: Duration,
) -> Result<F::Output, Late> {
    let mut sent = std::pin::pin!(sent);
    loop {
        let now = tokio::time::Instant::now();
        let stalled = progress.stalled_since().map(tokio::time::Instant::from_std);
        if stalled.is_some_and(|at| now >= at + send_timeout) {
            return Err(Late::Send);
        }
        let check = stalled.map_or(now + send_timeout, |at| at + send_timeout).min(deadline);
        tokio::select! {
            out = &mut sent => return Ok(out),
            () = tokio::time::sleep_until(check) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(Late::Response);
                }
            }
        }
    }
}

/// The endpoints one request may try: round robin from this request's start, live ones
/// first (ejected ones only after every live one), at most the rule's `tries` of them.
/// Usually one atomic load: the first endpoint is live and answers.
struct Walk<'a> {
    endpoints: &'a [Arc<EndpointPool>],
    first: usize,
    /// The endpoint in use (an index into `endpoints`), `None` once every try is spent.
    current: Option<usize>,
    /// Where the search for the next endpoint goes on: offset from `first`, and the pass
    /// (0: live endpoints, 1: ejected ones).
    offset: usize,
    pass: u8,
    /// Endpoints tried so far, the current one included.
    tried: [usize; MAX_TRIES],
    attempts: usize,
    limit: usize,
    last_err: Option<ProxyError>,
}

impl<'a> Walk<'a> {
    /// `NoEndpoints` when the backend has none. `preferred`: the endpoint to start at (a
    /// session affinity cookie's), if live; round robin goes on after it.
    fn new(backend: &'a BackendState, tries: u8, preferred: Option<usize>) -> Result<Self, ProxyError> {
        let endpoints = &backend.endpoints[..];
        if endpoints.is_empty() {
            return Err(ProxyError::NoEndpoints);
        }
        let mut walk = Walk {
            endpoints,
            first: match preferred {
                Some(i) if i < endpoints.len() => i,
                _ => backend.next_start(),
            },
            current: None,
            offset: 0,
            pass: 0,
            tried: [usize::MAX; MAX_TRIES],
            attempts: 0,
            limit: usize::from(tries).clamp(1, MAX_TRIES).min(endpoints.len()),
            last_err: None,
        };
        walk.advance();
        Ok(walk)
    }

    /// The next endpoint to try, and where the search stopped: `(index, offset, pass)`.
    fn next(&self) -> Option<(usize, usize, u8)> {
        if self.attempts >= self.limit {
            return None;
        }
        let n = self.endpoints.len();
        let (mut offset, mut pass) = (self.offset, self.pass);
        while pass < 2 {
            while offset < n {
                let index = (self.first.wrapping_add(offset)) % n;
                offset += 1;
                if self.tried[..self.attempts].contains(&index) {
                    continue;
                }
                if self.endpoints[index].is_ejected() == (pass == 1) {
                    return Some((index, offset, pass));
                }
            }
            pass += 1;
            offset = 0;
        }
        None
    }

    /// Pick the next endpoint to try, if any try is left.
    fn advance(&mut self) {
        self.current = None;
        if let Some((index, offset, pass)) = self.next() {
            (self.offset, self.pass) = (offset, pass);
            self.tried[self.attempts] = index;
            self.attempts += 1;
            self.current = Some(index);
        }
    }

    /// Whether another endpoint is left to try.
    fn has_next(&self) -> bool {
        self.next().is_some()
    }

    /// The endpoint to use now, or `None` when every allowed attempt failed.
    fn current(&self) -> Option<&'a Arc<EndpointPool>> {
        self.current.map(|i| &self.endpoints[i])
    }

    /// The attempt on the current endpoint failed with `error`: remember why, eject the
    /// endpoint if the failure was its own, and move to the next.
    fn failed(&mut self, error: ProxyError, eject: bool) {
        if let Some(pool) = self.current() {
            tracing::debug!(upstream = %pool.addr(), %error, "attempt failed; trying the next endpoint");
            if eject {
                pool.eject();
            }
        }
        self.last_err = Some(error);
        self.advance();
    }

    /// The current endpoint answered a status the rule retries on: move to the next (the
    /// caller checked there is one).
    fn answered(&mut self, pool: &EndpointPool, status: StatusCode, eject: bool) {
        tracing::debug!(upstream = %pool.addr(), %status, "answer retried on the next endpoint");
        if eject {
            pool.eject();
        }
        self.advance();
    }

    /// How many endpoints failed before the current one.
    fn attempt(&self) -> usize {
        self.attempts.saturating_sub(1)
    }

    /// Why no endpoint could be used: the last failure.
    fn exhausted(self) -> ProxyError {
        self.last_err.unwrap_or(ProxyError::NoEndpoints)
    }
}

/// A bodyless request through weir's own HTTP/1.1 exchange: its head is written straight
/// from the client's headers on every attempt.
pub struct OwnExchange<'a> {
    pub req: &'a Request<Incoming>,
    pub headers: &'a RequestHeaders,
}

impl Carrier for OwnExchange<'_> {
    type Conn = RawConn;
    /// The response head, its body read from the connection as the client takes it, and
    /// the pool the connection goes back to at its end.
    type Relayed = (Response<()>, RawBody, Arc<EndpointPool>);

    fn checkout(
        &mut self,
        pool: &Arc<EndpointPool>,
        connect_timeout: Duration,
    ) -> impl Future<Output = io::Result<Checkout<RawConn>>> + Send {
        // The pool's future itself, not one around it: a level less to move per request.
        pool.checkout_raw(connect_timeout)
    }

    async fn send(
        &mut self,
        checkout: Checkout<RawConn>,
        pool: &Arc<EndpointPool>,
        route: &Route,
    ) -> Result<Self::Relayed, Failed> {
        let (req, headers) = (self.req, self.headers);
        let resendable = req.method().is_idempotent() || route.retry.on.contains(RetryOn::NON_IDEMPOTENT);
        let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let write_head = |out: &mut Vec<u8>| headers.write_head(out, req.method(), pq, req.headers());
        match checkout.conn.exchange(&write_head, req.method()).await {
            Ok((resp, body)) => Ok((resp, body, pool.clone())),
            // Sent again only when doing so twice is harmless.
            Err(e @ ExchangeError::Closed(_)) if checkout.reused && resendable => {
                Err(Failed::Stale(ProxyError::Exchange(e)))
            }
            // A keep-alive race (the upstream closed the idle connection as the request went
            // out) for a request that may not be sent twice: the client's 502, as before.
            Err(e @ ExchangeError::Closed(_)) if checkout.reused => {
                Err(Failed::Error(ProxyError::Exchange(e)))
            }
            // A response that is not HTTP: nginx's `invalid_header`, not retried by default.
            Err(e @ ExchangeError::Malformed(_)) => Err(Failed::Invalid(ProxyError::Exchange(e))),
            Err(e) => Err(Failed::Endpoint(ProxyError::Exchange(e))),
        }
    }

    fn can_resend(&self, non_idempotent: bool) -> bool {
        non_idempotent || self.req.method().is_idempotent()
    }

    fn status(relayed: &Self::Relayed) -> StatusCode {
        relayed.0.status()
    }
}

/// A request through hyper's client on a pooled connection (HTTP/1.1 with a body, HTTP/2,
/// TLS upstreams). hyper gives the request back when a connection could not take it; a
/// bodyless idempotent request keeps its head, to be sent again to another endpoint.
pub struct Pooled {
    req: Option<Request<UpstreamBody>>,
    spare: Option<Head>,
    progress: Option<Arc<SendProgress>>,
}

/// A bodyless request's head, to rebuild it for another attempt.
struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Head {
    fn request(&self) -> Request<UpstreamBody> {
        let mut req = Request::new(UpstreamBody::empty());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

impl Pooled {
    /// `non_idempotent`: the rule resends requests of any method (a bodyless one only).
    pub fn new(mut req: Request<UpstreamBody>, non_idempotent: bool) -> Self {
        use http_body::Body as _;
        let progress = req.body_mut().watched();
        let resendable = non_idempotent || req.method().is_idempotent();
        let spare = (resendable && req.body().is_end_stream()).then(|| Head {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        });
        Pooled { req: Some(req), spare, progress }
    }
}

impl Carrier for Pooled {
    type Conn = Conn;
    /// The response, and the pooled connection to release at its end.
    type Relayed = (Response<Incoming>, Conn);

    async fn checkout(
        &mut self,
        pool: &Arc<EndpointPool>,
        connect_timeout: Duration,
    ) -> io::Result<Checkout<Conn>> {
        let conn = pool.checkout(connect_timeout).await?;
        let (reused, connect_time) = (conn.connect_time.is_zero(), conn.connect_time);
        Ok(Checkout { conn, reused, connect_time })
    }

    async fn send(
        &mut self,
        checkout: Checkout<Conn>,
        _pool: &Arc<EndpointPool>,
        route: &Route,
    ) -> Result<Self::Relayed, Failed> {
        // Present on every attempt: a stale failure puts the request back, and only a kept
        // head lets the loop go on after another failure.
        let Some(req) = self.req.take().or_else(|| self.spare.as_ref().map(Head::request)) else {
            return Err(Failed::Error(ProxyError::NoEndpoints));
        };
        let mut conn = checkout.conn;
        match conn.sender.try_send(req).await {
            Ok(resp) => Ok((resp, conn)),
            Err(mut e) => match e.take_message() {
                // The connection closed before anything was written: the request is intact.
                Some(back) => {
                    self.req = Some(back);
                    Err(Failed::Stale(upstream_error(e.into_error(), route)))
                }
                None => match upstream_error(e.into_error(), route) {
                    // The client's fault (its body), never the endpoint's.
                    e @ (ProxyError::BodyTooLarge { .. }
                    | ProxyError::ClientClosed(_)
                    | ProxyError::BadBody(_)) => Err(Failed::Error(e)),
                    ProxyError::Upstream(e) if e.is_parse() => Err(Failed::Invalid(ProxyError::Upstream(e))),
                    e => Err(Failed::Endpoint(e)),
                },
            },
        }
    }

    /// The method was judged when the head was kept.
    fn can_resend(&self, _non_idempotent: bool) -> bool {
        self.req.is_some() || self.spare.is_some()
    }

    fn progress(&self) -> Option<Arc<SendProgress>> {
        self.progress.clone()
    }

    fn status(relayed: &Self::Relayed) -> StatusCode {
        relayed.0.status()
    }
}

/// An `Upgrade` request (WebSocket): a dedicated connection, then a byte tunnel after 101.
pub struct Upgrade {
    req: Option<Request<UpstreamBody>>,
    on_client_upgrade: Option<OnUpgrade>,
}

impl Upgrade {
    pub fn new(req: Request<UpstreamBody>, on_client_upgrade: OnUpgrade) -> Self {
        Upgrade { req: Some(req), on_client_upgrade: Some(on_client_upgrade) }
    }
}

impl Carrier for Upgrade {
    type Conn = hyper::client::conn::http1::SendRequest<UpstreamBody>;
    /// The response; after a 101 its Connection and Upgrade are put back.
    type Relayed = Response<Incoming>;

    async fn checkout(
        &mut self,
        pool: &Arc<EndpointPool>,
        connect_timeout: Duration,
    ) -> io::Result<Checkout<Self::Conn>> {
        let started = Instant::now();
        let conn = pool.connect_for_upgrade(connect_timeout).await?;
        Ok(Checkout { conn, reused: false, connect_time: started.elapsed() })
    }

    async fn send(
        &mut self,
        checkout: Checkout<Self::Conn>,
        _pool: &Arc<EndpointPool>,
        route: &Route,
    ) -> Result<Self::Relayed, Failed> {
        // Present on the one attempt that sends: a fresh connection is never stale.
        let (Some(req), Some(on_client_upgrade)) = (self.req.take(), self.on_client_upgrade.take()) else {
            return Err(Failed::Error(ProxyError::NoEndpoints));
        };
        let mut sender = checkout.conn;
        let mut resp =
            sender.send_request(req).await.map_err(|e| Failed::Endpoint(upstream_error(e, route)))?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Ok(resp);
        }
        let on_upstream_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match tokio::try_join!(on_client_upgrade, on_upstream_upgrade) {
                Ok((client, upstream)) => {
                    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                        tracing::debug!(error = %e, "upgraded tunnel ended with an error");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "upgrade did not complete"),
            }
        });
        // Put back what strip_hop_by_hop removes: the client must see the switch.
        let proto = resp.headers().get(header::UPGRADE).cloned();
        let (mut parts, body) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(proto) = proto {
            parts.headers.insert(header::UPGRADE, proto);
        }
        Ok(Response::from_parts(parts, body))
    }

    /// The client's upgrade is taken by the one attempt that sends.
    fn can_resend(&self, _non_idempotent: bool) -> bool {
        self.req.is_some()
    }

    fn status(relayed: &Self::Relayed) -> StatusCode {
        relayed.status()
    }
}

/// A failed upstream exchange, by who failed it: a request body cut at the rule's limit is
/// the client's 413, a client body that broke off or was malformed the client's 499 or 400;
/// the rest is the upstream's.
fn upstream_error(e: hyper::Error, route: &Route) -> ProxyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if err.is::<BodyTooLarge>() {
            return ProxyError::BodyTooLarge { limit: route.max_body_size.unwrap_or(0) };
        }
        if let Some(client) = err.downcast_ref::<ClientBodyError>() {
            return match client.closed {
                true => ProxyError::ClientClosed(e),
                false => ProxyError::BadBody(e),
            };
        }
        source = err.source();
    }
    ProxyError::Upstream(e)
}
