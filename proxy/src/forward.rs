//! The request path, one named step at a time (see the crate docs for the whole picture):
//! take a snapshot → match route → pick backend → rewrite request headers → forward through
//! the pool → rewrite response headers → record.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::TokioIo;
use weir_config::matching::RouteHost;
use weir_config::{pick_backend, Protocol, Route, Side};

use crate::body::ResponseBody;
use crate::conn::Activity;
use crate::error::ProxyError;
use crate::exchange::{ExchangeError, RawBody};
use crate::headers::{self, ClientInfo, Forwarding};
use crate::pool::{Conn, EndpointPool};
use crate::record::{Record, UpstreamExchange};
use crate::routes::Routes;
use crate::snapshot::{BackendState, Snapshot};
use crate::telemetry::{Recording, Telemetry};
use crate::upstream_body::{BodyTooLarge, UpstreamBody};

/// At most this many connection attempts per request (over distinct endpoints).
const MAX_CONNECT_ATTEMPTS: usize = 3;
/// Pooled connections found closed just before use are skipped, at most this many times.
const MAX_STALE_SKIPS: usize = 4;

/// What the data plane needs to serve requests.
pub struct Proxy {
    pub routes: Arc<Routes>,
    pub telemetry: Arc<Telemetry>,
    /// `http` or `https`: the listener this proxy serves, for X-Forwarded-Proto.
    pub scheme: &'static str,
    /// Port of the TLS listener, if any: where ssl-redirect sends plain-HTTP requests.
    pub https_port: Option<u16>,
}

/// How a request that passed the checks is answered.
enum Relayed {
    /// The upstream's response (and the pooled connection to release at its end).
    Upstream(Response<Incoming>, Option<Conn>),
    /// The response of weir's own exchange: its body is read from the connection as the
    /// client takes it, and the connection goes back to this pool at its end.
    Raw(Response<()>, RawBody, Arc<EndpointPool>),
    /// ssl-redirect: 308 to this location.
    Redirect(HeaderValue),
}

/// One accepted client connection.
#[derive(Clone)]
pub struct Peer {
    pub client: SocketAddr,
    pub local: SocketAddr,
    /// The forwarding headers' values for this connection, rendered once.
    pub info: ClientInfo,
    /// The connection's activity record (the raw request head, for framing checks).
    pub activity: Arc<Activity>,
}

impl Proxy {
    /// Serve one request. Never fails: every error becomes a response here.
    pub async fn serve(&self, req: Request<Incoming>, peer: &Peer) -> Response<ResponseBody> {
        let snapshot = self.routes.load();
        let mut record = Box::new(Record {
            started: Instant::now(),
            snapshot: snapshot.clone(),
            route: None,
            side: None,
            fell_back: false,
            client: peer.client,
            host: String::new(),
            method: req.method().clone(),
            uri: req
                .uri()
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
            request_id: None,
            status: 0,
            request_size: head_size(&req),
            request_body_counted: None,
            response_head_size: 0,
            upstream: None,
        });
        let asked = Asked { grpc: is_grpc(&req), http1: req.version() <= Version::HTTP_11 };
        match self.forward(req, peer, &snapshot, &mut record).await {
            Ok(Relayed::Redirect(location)) => {
                record.status = 308;
                record.response_head_size = 17 + 64 + location.len() as u64;
                let mut resp = Response::new(ResponseBody::local(
                    Bytes::new(),
                    Some(Recording::new(record, self.telemetry.clone())),
                ));
                *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
                resp.headers_mut().insert(header::LOCATION, location);
                resp
            }
            Ok(Relayed::Upstream(resp, conn)) => {
                let (mut parts, body) = resp.into_parts();
                // A 101 was rewritten by forward_upgrade, which put Connection and Upgrade
                // back: stripping again would break the client's handshake.
                if parts.status != StatusCode::SWITCHING_PROTOCOLS {
                    headers::strip_hop_by_hop(&mut parts.headers);
                }
                record.status = parts.status.as_u16();
                record.response_head_size = response_head_size(&parts.headers);
                let mut resp = Response::from_parts(
                    parts,
                    ResponseBody::upstream(body, conn, Some(Recording::new(record, self.telemetry.clone()))),
                );
                *resp.version_mut() = Version::HTTP_11;
                resp
            }
            Ok(Relayed::Raw(resp, body, pool)) => {
                // The exchange left the hop-by-hop headers out as it parsed the head.
                let (parts, ()) = resp.into_parts();
                record.status = parts.status.as_u16();
                record.response_head_size = response_head_size(&parts.headers);
                let mut resp = Response::from_parts(
                    parts,
                    ResponseBody::raw(body, pool, Some(Recording::new(record, self.telemetry.clone()))),
                );
                *resp.version_mut() = Version::HTTP_11;
                resp
            }
            Err(e) => error_response(e, Recording::new(record, self.telemetry.clone()), asked),
        }
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        peer: &Peer,
        snapshot: &Arc<Snapshot>,
        record: &mut Record,
    ) -> Result<Relayed, ProxyError> {
        refuse_unsafe_framing(&req, &peer.activity)?;
        // match route
        let host_value = request_host(&req)?;
        let host = host_value
            .to_str()
            .map_err(|_| ProxyError::BadRequest("the Host header is not visible ASCII"))?;
        let route_host = RouteHost::new(host);
        // X-Forwarded-Host is the host as sent, without its port: this long.
        let bare_len = route_host.as_str().len();
        record.host = route_host.as_str().to_owned();
        let route = snapshot
            .table
            .route_for(&route_host, req.uri().path())
            .map_err(ProxyError::BadPath)?
            .ok_or(ProxyError::NoRoute)?;
        if req.version() <= Version::HTTP_11
            && req.uri().authority().is_some()
            && !snapshot.table.names(&route_host)
        {
            // Absolute-form (`GET http://other/ HTTP/1.1`) for a host no rule names: a
            // forward-proxy request, not ours to serve through the default server (nor to
            // record under its rule).
            return Err(ProxyError::BadRequest("absolute-form request for a host weir does not serve"));
        }
        record.route = Some(route.index());
        if route.ssl_redirect && self.scheme == "http" {
            if let Some(port) = self.https_port {
                return Ok(Relayed::Redirect(https_location(&record.host, port, record.uri.as_str())?));
            }
        }
        if let Some(limit) = route.max_body_size {
            if declared_length(req.headers()).is_some_and(|len| len > limit) {
                return Err(ProxyError::BodyTooLarge { limit });
            }
        }

        // pick backend
        let decision = pick_backend(route, req.headers(), |total| fastrand::u32(1..=total));
        let side = decision.side.ok_or(ProxyError::NoEndpoints)?;
        record.side = Some(side);
        record.fell_back = decision.fell_back;
        let backend = match (side, &route.canary) {
            (Side::Canary, Some(c)) => &c.backend,
            _ => &route.main,
        };
        let state = snapshot.backends.get(backend.index()).ok_or(ProxyError::NoEndpoints)?;

        // rewrite request headers
        let upgrade = req.version() == Version::HTTP_11 && headers::is_upgrade(req.headers());
        if !upgrade && route.protocol == Protocol::Http && req.body().is_end_stream() {
            // The common request: its head written straight from the client's headers, sent
            // by weir's own exchange (exchange.rs) instead of hyper's client.
            let forwarding = Forwarding::new(req.headers(), &peer.info, bare_len, host_value.clone());
            if self.telemetry.access_log.is_some() {
                record.request_id = Some(forwarding.request_id());
            }
            let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
            let write_head = |out: &mut Vec<u8>| {
                headers::write_request_head(out, req.method(), pq, req.headers(), &forwarding, &host_value)
            };
            let (resp, body, pool) = send_raw(&write_head, req.method(), route, state, record).await?;
            return Ok(Relayed::Raw(resp, body, pool));
        }
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let upgrade_proto = req.headers().get(header::UPGRADE).cloned();
        let wants_trailers = accepts_trailers(req.headers());
        let (mut parts, body) = req.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        // Expect is answered by weir when the body is read.
        parts.headers.remove(header::EXPECT);
        // Room for the forwarding headers: one growth now instead of one or two later.
        parts.headers.reserve(headers::ADDED_PER_REQUEST);
        record.request_id =
            Some(headers::add_forwarding(&mut parts.headers, &peer.info, bare_len, host_value.clone()));
        if let Some(proto) = upgrade_proto.filter(|_| upgrade) {
            parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, proto);
        }
        if route.protocol.is_http2() {
            // HTTP/2 carries the host in :authority; gRPC servers want `te: trailers`.
            parts.headers.remove(header::HOST);
            if wants_trailers {
                parts.headers.insert(header::TE, HeaderValue::from_static("trailers"));
            }
            let scheme = if route.protocol.is_tls() { "https" } else { "http" };
            parts.uri = absolute_form(scheme, host, &parts.uri)?;
            parts.version = Version::HTTP_2;
        } else {
            if !parts.headers.contains_key(header::HOST) {
                parts.headers.insert(header::HOST, host_value);
            }
            headers::join_cookies(&mut parts.headers);
            parts.uri = origin_form(&parts.uri)?;
            parts.version = Version::HTTP_11;
        }
        let counted = (!body.is_end_stream() && declared_length(&parts.headers).is_none())
            .then(|| Arc::new(AtomicU64::new(0)));
        record.request_body_counted = counted.clone();
        let upstream_req = Request::from_parts(parts, UpstreamBody::new(body, counted, route.max_body_size));

        // forward
        if let Some(on_client_upgrade) = client_upgrade {
            let upgrading = forward_upgrade(upstream_req, route, state, on_client_upgrade, record);
            let resp = Box::pin(upgrading).await?;
            return Ok(Relayed::Upstream(resp, None));
        }
        // Boxed, like every path off the common one: hyper keeps the service future of each
        // connection in an allocation of its full size for the connection's life, so a
        // rare path's large state (TLS and HTTP/2 handshakes) would cost every connection.
        let (resp, conn) = Box::pin(send(upstream_req, route, state, record)).await?;
        Ok(Relayed::Upstream(resp, Some(conn)))
    }
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
    fn connect_failed(&mut self, source: std::io::Error) {
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

/// Send on a pooled connection, trying further endpoints when connecting fails.
async fn send(
    mut req: Request<UpstreamBody>,
    route: &Route,
    backend: &BackendState,
    record: &mut Record,
) -> Result<(Response<Incoming>, Conn), ProxyError> {
    let mut walk = Walk::new(backend)?;
    let mut stale = 0;
    while let Some(pool) = walk.current() {
        let mut conn = match pool.checkout(route.connect_timeout).await {
            Ok(conn) => conn,
            Err(source) => {
                walk.connect_failed(source);
                continue;
            }
        };
        let sent_at = Instant::now();
        let deadline = tokio::time::Instant::from_std(sent_at) + route.response_timeout;
        match tokio::time::timeout_at(deadline, conn.sender.try_send(req)).await {
            Err(_) => return Err(ProxyError::ResponseTimeout(route.response_timeout)),
            Ok(Ok(resp)) => {
                record.upstream = Some(UpstreamExchange::headers_received(
                    pool.addr(),
                    &resp,
                    conn.connect_time,
                    walk.attempt(),
                    sent_at,
                ));
                return Ok((resp, conn));
            }
            Ok(Err(mut e)) => match e.take_message() {
                // The connection closed before anything was written: the request is intact.
                Some(back) if stale < MAX_STALE_SKIPS => {
                    req = back;
                    stale += 1;
                }
                _ => return Err(upstream_error(e.into_error(), route)),
            },
        }
    }
    Err(walk.exhausted())
}

/// Send a bodyless request through weir's own exchange, trying further endpoints when
/// connecting fails. A reused connection the upstream had closed before answering is
/// skipped, and the request sent again, when its method is idempotent.
async fn send_raw(
    write_head: &impl Fn(&mut Vec<u8>),
    method: &Method,
    route: &Route,
    backend: &BackendState,
    record: &mut Record,
) -> Result<(Response<()>, RawBody, Arc<EndpointPool>), ProxyError> {
    let mut walk = Walk::new(backend)?;
    let mut stale = 0;
    while let Some(pool) = walk.current() {
        let (conn, reused, connect_time) = match pool.checkout_raw(route.connect_timeout).await {
            Ok(checked_out) => checked_out,
            Err(source) => {
                walk.connect_failed(source);
                continue;
            }
        };
        let sent_at = Instant::now();
        let deadline = tokio::time::Instant::from_std(sent_at) + route.response_timeout;
        match tokio::time::timeout_at(deadline, conn.exchange(write_head, method)).await {
            Err(_) => return Err(ProxyError::ResponseTimeout(route.response_timeout)),
            Ok(Ok((resp, body))) => {
                record.upstream = Some(UpstreamExchange::headers_received(
                    pool.addr(),
                    &resp,
                    connect_time,
                    walk.attempt(),
                    sent_at,
                ));
                return Ok((resp, body, pool.clone()));
            }
            Ok(Err(ExchangeError::Closed(_)))
                if reused && stale < MAX_STALE_SKIPS && method.is_idempotent() =>
            {
                stale += 1;
            }
            Ok(Err(e)) => return Err(ProxyError::Exchange(e)),
        }
    }
    Err(walk.exhausted())
}

/// An `Upgrade` request (WebSocket): a dedicated connection, then a byte tunnel after 101.
async fn forward_upgrade(
    req: Request<UpstreamBody>,
    route: &Route,
    backend: &BackendState,
    on_client_upgrade: hyper::upgrade::OnUpgrade,
    record: &mut Record,
) -> Result<Response<Incoming>, ProxyError> {
    let mut walk = Walk::new(backend)?;
    while let Some(pool) = walk.current() {
        let started = Instant::now();
        let mut sender = match pool.connect_for_upgrade(route.connect_timeout).await {
            Ok(s) => s,
            Err(source) => {
                walk.connect_failed(source);
                continue;
            }
        };
        let connect = started.elapsed();
        let sent_at = Instant::now();
        let mut resp = tokio::time::timeout(route.response_timeout, sender.send_request(req))
            .await
            .map_err(|_| ProxyError::ResponseTimeout(route.response_timeout))?
            .map_err(|e| upstream_error(e, route))?;
        record.upstream =
            Some(UpstreamExchange::headers_received(pool.addr(), &resp, connect, walk.attempt(), sent_at));
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
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
            // Put back what strip_hop_by_hop would remove: the client must see the switch.
            let proto = resp.headers().get(header::UPGRADE).cloned();
            let (mut parts, body) = resp.into_parts();
            headers::strip_hop_by_hop(&mut parts.headers);
            parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            if let Some(proto) = proto {
                parts.headers.insert(header::UPGRADE, proto);
            }
            return Ok(Response::from_parts(parts, body));
        }
        return Ok(resp);
    }
    Err(walk.exhausted())
}

/// A failed upstream exchange; a request body cut at the rule's limit is the client's 413.
fn upstream_error(e: hyper::Error, route: &Route) -> ProxyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if err.is::<BodyTooLarge>() {
            return ProxyError::BodyTooLarge { limit: route.max_body_size.unwrap_or(0) };
        }
        source = err.source();
    }
    ProxyError::Upstream(e)
}

/// Request smuggling guards hyper does not already apply: HTTP/1 framing must be
/// unambiguous, and CONNECT (forward-proxy tunnelling) is not served.
fn refuse_unsafe_framing(req: &Request<Incoming>, activity: &Activity) -> Result<(), ProxyError> {
    if req.method() == Method::CONNECT {
        return Err(ProxyError::MethodNotAllowed(Method::CONNECT));
    }
    let h = req.headers();
    // hyper removes a Content-Length sent beside Transfer-Encoding before weir sees the
    // request; the connection's copy of the raw head shows it.
    if h.contains_key(header::TRANSFER_ENCODING)
        && (h.contains_key(header::CONTENT_LENGTH) || activity.head_had_content_length())
    {
        return Err(ProxyError::BadRequest("both Transfer-Encoding and Content-Length are present"));
    }
    let mut lengths = h.get_all(header::CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        if lengths.any(|v| v != first) || first.as_bytes().contains(&b',') {
            return Err(ProxyError::BadRequest("several different Content-Length values"));
        }
    }
    Ok(())
}

/// The body length the client declared, if any.
fn declared_length(h: &http::HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

fn accepts_trailers(h: &http::HeaderMap) -> bool {
    h.get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim() == "trailers"))
}

fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Where ssl-redirect sends a plain-HTTP request: same host and URI, on the TLS port.
fn https_location(host: &str, port: u16, uri: &str) -> Result<HeaderValue, ProxyError> {
    let location = match port {
        443 => format!("https://{host}{uri}"),
        p => format!("https://{host}:{p}{uri}"),
    };
    HeaderValue::from_str(&location)
        .map_err(|_| ProxyError::BadRequest("the request host cannot be redirected"))
}

/// `scheme://host/path?query`, for HTTP/2 upstreams (:scheme, :authority, :path).
fn absolute_form(scheme: &str, host: &str, uri: &Uri) -> Result<Uri, ProxyError> {
    let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
    Uri::builder().scheme(scheme).authority(host).path_and_query(pq).build().map_err(ProxyError::Internal)
}

/// The host the request is for: the URI authority (HTTP/2, absolute-form) or Host header.
/// Shared bytes, not a copy: a Host header is cloned by reference count.
fn request_host(req: &Request<Incoming>) -> Result<HeaderValue, ProxyError> {
    if let Some(auth) = req.uri().authority() {
        // Userinfo is no part of the host (RFC 9110 §4.2.4 forbids sending it): it must not
        // reach the upstream's Host nor X-Forwarded-Host.
        let host = auth.as_str().rsplit_once('@').map_or(auth.as_str(), |(_, host)| host);
        return HeaderValue::from_str(host).map_err(|_| ProxyError::MissingHost);
    }
    match req.headers().get(header::HOST) {
        Some(v) => Ok(v.clone()),
        None if req.version() == Version::HTTP_10 => Ok(HeaderValue::from_static("")),
        None => Err(ProxyError::MissingHost),
    }
}

/// The URI as sent upstream: path and query only.
fn origin_form(uri: &Uri) -> Result<Uri, ProxyError> {
    match uri.path_and_query() {
        Some(pq) if uri.authority().is_none() && uri.scheme().is_none() => Ok(Uri::from(pq.clone())),
        Some(pq) => Uri::builder().path_and_query(pq.clone()).build().map_err(ProxyError::Internal),
        None => Ok(Uri::from_static("/")),
    }
}

/// Request line + headers, in bytes, plus a declared body length.
fn head_size<B>(req: &Request<B>) -> u64 {
    let line =
        req.method().as_str().len() + req.uri().path_and_query().map_or(1, |pq| pq.as_str().len()) + 12;
    let body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    (line + header_bytes(req.headers())) as u64 + body
}

fn response_head_size(headers: &http::HeaderMap) -> u64 {
    // "HTTP/1.1 200 OK\r\n" + headers + final CRLF
    (17 + header_bytes(headers) + 2) as u64
}

fn header_bytes(headers: &http::HeaderMap) -> usize {
    headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum()
}

/// What the client can understand of an error answer.
#[derive(Clone, Copy)]
struct Asked {
    grpc: bool,
    http1: bool,
}

/// weir's own answer for a request it could not relay. A gRPC client gets a gRPC status
/// (HTTP 200, `grpc-status`, no body) so its library reports the real cause.
fn error_response(err: ProxyError, mut recording: Recording, asked: Asked) -> Response<ResponseBody> {
    let record = &mut recording.record;
    let status = err.status();
    match status.as_u16() {
        500..=599 => tracing::warn!(error = %err, host = %record.host, uri = %record.uri, "request failed"),
        _ => tracing::debug!(error = %err, host = %record.host, uri = %record.uri, "request refused"),
    }
    if asked.grpc {
        record.status = 200;
        record.response_head_size = 17 + 80;
        let mut resp = Response::new(ResponseBody::local(Bytes::new(), Some(recording)));
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert("grpc-status", HeaderValue::from(u16::from(err.grpc_status())));
        if let Ok(message) = HeaderValue::from_str(&err.to_string()) {
            h.insert("grpc-message", message);
        }
        return resp;
    }
    record.status = status.as_u16();
    let body = format!("{} {}\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    record.response_head_size = 17 + 60;
    let mut resp = Response::new(ResponseBody::local(body, Some(recording)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if asked.http1 && matches!(status.as_u16(), 400 | 405 | 413) {
        // The connection may hold an unread body or ambiguous framing: do not reuse it.
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
