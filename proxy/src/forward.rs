//! The send-upstream step: the one seam between a request and its backend's endpoints.
//!
//! One endpoint-trying loop, [`send_upstream`], carries every request: round robin from
//! this request's start over the backend's endpoints, moving to the next only when
//! connecting fails (at most [`MAX_CONNECT_ATTEMPTS`] endpoints); a reused connection found
//! closed before the request was seen is skipped and the request sent again (at most
//! [`MAX_STALE_RETRIES`] times); the connect and response-header timeouts are the route's.
//! What differs is how a request is carried, a [`Carrier`]:
//! - [`OwnExchange`]: weir's own HTTP/1.1 exchange (`exchange.rs`), for a bodyless request
//!   to a plain-HTTP upstream: most traffic, and the measured fast path;
//! - [`Pooled`]: hyper's client on a pooled connection, for request bodies, HTTP/2 and TLS
//!   upstreams;
//! - [`Upgrade`]: a dedicated HTTP/1.1 connection for an `Upgrade` request, tunnelled after 101.
//!
//! A carrier returns once the response head arrived, before any response byte reaches the
//! client: a retry policy on another endpoint (proxy-next-upstream) or passive ejection of
//! a failing endpoint belongs in this loop, and can never resend after the client saw bytes.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
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
use crate::upstream_body::{BodyTooLarge, ClientBodyError, UpstreamBody};

/// At most this many connection attempts per request (over distinct endpoints).
pub const MAX_CONNECT_ATTEMPTS: usize = 3;
/// Reused connections found closed just before use are skipped, at most this many times.
pub const MAX_STALE_RETRIES: usize = 4;

/// Why an attempt failed.
pub enum Failed {
    /// The connection was closed before the request was seen: the carrier can send it again
    /// on another connection, or fail with this error if it may not.
    Stale(ProxyError),
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

    fn status(relayed: &Self::Relayed) -> StatusCode;
}

/// Send what `carrier` carries to one of `backend`'s endpoints (see the module docs), and
/// note the upstream exchange in `record`.
pub async fn send_upstream<C: Carrier>(
    mut carrier: C,
    route: &Route,
    backend: &BackendState,
    record: &mut Record,
) -> Result<C::Relayed, ProxyError> {
    let mut walk = Walk::new(backend)?;
    let mut stale = 0;
    while let Some(pool) = walk.current() {
        let checkout = match carrier.checkout(pool, route.connect_timeout).await {
            Ok(c) => c,
            Err(source) => {
                walk.connect_failed(source);
                continue;
            }
        };
        let connect_time = checkout.connect_time;
        let sent_at = Instant::now();
        let deadline = tokio::time::Instant::from_std(sent_at) + route.response_timeout;
        match tokio::time::timeout_at(deadline, carrier.send(checkout, pool, route)).await {
            Err(_) => return Err(ProxyError::ResponseTimeout(route.response_timeout)),
            Ok(Ok(relayed)) => {
                let status = C::status(&relayed).as_u16();
                let exchange = UpstreamExchange::headers_received(
                    pool.addr(),
                    status,
                    connect_time,
                    walk.attempt(),
                    sent_at,
                );
                record.upstream = Some(exchange);
                return Ok(relayed);
            }
            Ok(Err(Failed::Stale(_))) if stale < MAX_STALE_RETRIES => stale += 1,
            Ok(Err(Failed::Stale(e) | Failed::Error(e))) => return Err(e),
        }
    }
    Err(walk.exhausted())
}

/// The endpoints one request may try: round robin from this request's start, moving to the
/// next endpoint only when connecting fails, at most [`MAX_CONNECT_ATTEMPTS`] of them.
struct Walk<'a> {
    endpoints: &'a [Arc<EndpointPool>],
    first: usize,
    /// Connection attempts that failed so far (0-based index of the current one).
    attempt: usize,
    tries: usize,
    last_err: Option<ProxyError>,
}

impl<'a> Walk<'a> {
    /// `NoEndpoints` when the backend has none.
    fn new(backend: &'a BackendState) -> Result<Self, ProxyError> {
        let endpoints = &backend.endpoints[..];
        if endpoints.is_empty() {
            return Err(ProxyError::NoEndpoints);
        }
        let tries = endpoints.len().min(MAX_CONNECT_ATTEMPTS);
        Ok(Walk { endpoints, first: backend.next_start(), attempt: 0, tries, last_err: None })
    }

    /// The endpoint to use now, or `None` when every allowed attempt failed.
    fn current(&self) -> Option<&'a Arc<EndpointPool>> {
        (self.attempt < self.tries)
            .then(|| &self.endpoints[(self.first + self.attempt) % self.endpoints.len()])
    }

    /// Connecting to the current endpoint failed: remember why, and move to the next.
    fn connect_failed(&mut self, source: io::Error) {
        if let Some(pool) = self.current() {
            tracing::debug!(upstream = %pool.addr(), error = %source, "connect failed; trying the next endpoint");
            self.last_err = Some(ProxyError::Connect { addr: pool.addr(), source });
        }
        self.attempt += 1;
    }

    /// How many connection attempts failed before the current one.
    fn attempt(&self) -> usize {
        self.attempt
    }

    /// Why no endpoint could be used: the last connect failure.
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
        _route: &Route,
    ) -> Result<Self::Relayed, Failed> {
        let (req, headers) = (self.req, self.headers);
        let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let write_head = |out: &mut Vec<u8>| headers.write_head(out, req.method(), pq, req.headers());
        match checkout.conn.exchange(&write_head, req.method()).await {
            Ok((resp, body)) => Ok((resp, body, pool.clone())),
            // Sent again only when doing so twice is harmless.
            Err(e @ ExchangeError::Closed(_)) if checkout.reused && req.method().is_idempotent() => {
                Err(Failed::Stale(ProxyError::Exchange(e)))
            }
            Err(e) => Err(Failed::Error(ProxyError::Exchange(e))),
        }
    }

    fn status(relayed: &Self::Relayed) -> StatusCode {
        relayed.0.status()
    }
}

/// A request through hyper's client on a pooled connection (HTTP/1.1 with a body, HTTP/2,
/// TLS upstreams). hyper gives the request back when a connection could not take it.
pub struct Pooled {
    req: Option<Request<UpstreamBody>>,
}

impl Pooled {
    pub fn new(req: Request<UpstreamBody>) -> Self {
        Pooled { req: Some(req) }
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
        // Present on every attempt: only a stale failure ends one without ending the loop,
        // and it puts the request back.
        let Some(req) = self.req.take() else { return Err(Failed::Error(ProxyError::NoEndpoints)) };
        let mut conn = checkout.conn;
        match conn.sender.try_send(req).await {
            Ok(resp) => Ok((resp, conn)),
            Err(mut e) => match e.take_message() {
                // The connection closed before anything was written: the request is intact.
                Some(back) => {
                    self.req = Some(back);
                    Err(Failed::Stale(upstream_error(e.into_error(), route)))
                }
                None => Err(Failed::Error(upstream_error(e.into_error(), route))),
            },
        }
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
        let mut resp = sender.send_request(req).await.map_err(|e| Failed::Error(upstream_error(e, route)))?;
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
