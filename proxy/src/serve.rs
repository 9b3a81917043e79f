//! The request path, one named step at a time: [`Proxy::serve`] takes the snapshot, then
//! check_request → match_route → check_access → pick_backend → rewrite_request → send upstream →
//! rewrite_response → record. Each step is a function of that name; a step that answers
//! the request itself returns a [`Local`] answer and the steps after it do not run.
//!
//! check_access (`access.rs`: deny rules, allow/deny lists on the table's client address,
//! basic and external auth) runs between match_route and pick_backend for the rules that
//! have any, answering [`Local`]. Where later steps go: rewrites (rewrite-target, upstream-vhost) in rewrite_request; retries, mirroring and
//! endpoint ejection behind the one upstream seam (`forward.rs`).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper::body::{Body as _, Incoming};
use hyper::upgrade::OnUpgrade;
use tracing::Instrument;
use weir_config::access::ClientAddress;
use weir_config::matching::RouteHost;
use weir_config::{Protocol, Route, Side};

use crate::access::{check_access, Asking, AuthClient};
use crate::answer::{answer, https_location, response_head_size, Asked, Local};
use crate::body::ResponseBody;
use crate::conn::Activity;
use crate::error::ProxyError;
use crate::exchange::RawBody;
use crate::forward::{send_upstream, OwnExchange, Pooled, Upgrade};
use crate::forwarding::{ClientInfo, RequestHeaders, X_FORWARDED_FOR};
use crate::headers;
use crate::mirror::{Mirror, MirrorCopy};
use crate::pool::{Conn, EndpointPool};
use crate::record::{Fault, Record};
use crate::request::{self, Target};
use crate::routes::Routes;
use crate::snapshot::{BackendState, Snapshot};
use crate::sticky::Sticky;
use crate::telemetry::{Recording, Telemetry};
use crate::upstream_body::UpstreamBody;

/// What the data plane needs to serve requests.
pub struct Proxy {
    pub routes: Arc<Routes>,
    pub telemetry: Arc<Telemetry>,
    /// `http` or `https`: the listener this proxy serves, for X-Forwarded-Proto.
    pub scheme: &'static str,
    /// Port of the TLS listener, if any: where ssl-redirect sends plain-HTTP requests.
    pub https_port: Option<u16>,
    /// Sends external-auth subrequests.
    pub auth: AuthClient,
    /// Sends mirror copies (`mirror.rs`).
    pub mirror: Mirror,
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

/// Which carrier takes a request (`forward.rs`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// Bodyless, to a plain-HTTP upstream: weir's own exchange writes its head.
    Own,
    /// Everything else but upgrades: hyper's client.
    Pooled,
    /// An HTTP/1.1 `Upgrade` request.
    Upgrade,
}

/// What send upstream brought back: the response head, and what relays its body.
enum Relayed {
    Own(Response<()>, RawBody, Arc<EndpointPool>),
    Pooled(Response<Incoming>, Conn),
    Upgraded(Response<Incoming>),
}

impl Proxy {
    /// Serve one request. Never fails: every error becomes a response here. The request
    /// sees one table version, the snapshot taken first, from start to end.
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
            fault: Fault::None,
            request_size: request::head_size(&req),
            request_body_counted: None,
            response_head_size: 0,
            upstream: None,
            cors: None,
            limit_slot: None,
            sticky: None,
            preferred_endpoint: None,
        });
        let asked = Asked { grpc: request::is_grpc(&req), http1: req.version() <= Version::HTTP_11 };
        let span = tracing::debug_span!("request", method = %record.method, uri = %record.uri);
        // Entered only when enabled: wrapping the steps' future moves all of it (kilobytes)
        // once more per request.
        let relayed = match span.is_disabled() {
            true => self.steps(req, peer, &snapshot, &mut record).await,
            false => self.steps(req, peer, &snapshot, &mut record).instrument(span).await,
        };
        let cors = record.cors.take().map(|origin| (origin, record.route));
        let sticky = record.sticky.take().map(|s| {
            let answered = record.upstream.as_ref().map(|u| u.addr);
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            s.cookies(answered, now)
        });
        let recording = Recording::new(record, self.telemetry.clone());
        let mut resp = match relayed {
            Ok(relayed) => {
                let mut resp = rewrite_response(relayed, recording);
                if !asked.http1 {
                    headers::own_values(resp.headers_mut());
                }
                resp
            }
            Err(local) => answer(local, recording, asked),
        };
        if let Some((origin, route)) = cors {
            add_cors(&mut resp, origin, route.and_then(|i| snapshot.table.routes().get(i)));
        }
        for cookie in sticky.into_iter().flatten() {
            resp.headers_mut().append(header::SET_COOKIE, cookie);
        }
        resp
    }

    /// The steps between taking the snapshot and answering.
    async fn steps(
        &self,
        mut req: Request<Incoming>,
        peer: &Peer,
        snapshot: &Arc<Snapshot>,
        record: &mut Record,
    ) -> Result<Relayed, Local> {
        let mut target = check_request(&req, peer)?;
        let route = match_route(snapshot, &req, std::mem::take(&mut target.host), record)?;
        self.answer_early(route, &req, &target, record)?;
        let (client, info) = client_of(snapshot, peer, &req, record);
        let info = info.as_deref().unwrap_or(&peer.info);
        if let Some(limit) = &route.rate_limit {
            admit(snapshot, route, limit, client.unwrap_or(peer.client.ip()), record)?;
        }
        if route.deny.is_some() || route.access.is_some() {
            let asking = Asking {
                route,
                state: snapshot.access.get(route.index()).and_then(Option::as_ref),
                client,
                info,
                target: &target,
                host: &record.host,
                scheme: self.scheme,
                auth: &self.auth,
            };
            // Boxed, as every path off the common one (see below).
            let span = tracing::debug_span!("check_access");
            Box::pin(check_access(asking, &mut req).instrument(span)).await?;
        }
        if let Some(rw) = &route.rewrite {
            rewrite_path(&mut req, rw)?;
        }
        let backend = pick_backend(snapshot, route, &req, self.scheme == "https", record)?;
        let (headers, via) = rewrite_request(&req, route, info, &target, self.wants_request_id(), record);
        // A mirror route's copy for the canary (`mirror.rs`): never of an upgrade.
        let copy = match (&route.canary, record.side) {
            (Some(c), Some(side)) if !c.mirrors.is_empty() && via != Via::Upgrade => {
                self.mirror.copy_for(snapshot, route, &req, side, &headers, &target)
            }
            _ => None,
        };
        // send upstream: through the one seam (`forward.rs`), with the carrier the request
        // needs. Awaited here rather than in a function of its own, and the common request
        // only borrowed: each level of future, and each value moved into one, is copied
        // whole when it starts.
        let relayed = match via {
            Via::Own => {
                if let Some(copy) = copy {
                    copy.send(bytes::Bytes::new());
                }
                let own = OwnExchange { req: &req, headers: &headers };
                let (resp, body, pool) = send_upstream(own, route, backend, record).await?;
                Relayed::Own(resp, body, pool)
            }
            // Boxed, like every path off the common one: hyper keeps the service future of
            // each connection in an allocation of its full size for the connection's life,
            // so a rare path's large state (TLS and HTTP/2 handshakes) would cost every
            // connection.
            Via::Pooled => {
                let (req, _) = for_hyper(req, headers, route, &target, false, copy, record)?;
                let (resp, conn) = Box::pin(send_upstream(
                    Pooled::new(req, route.retry.on.contains(weir_config::retry::RetryOn::NON_IDEMPOTENT)),
                    route,
                    backend,
                    record,
                ))
                .await?;
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                    // Only an upgrade weir forwarded may switch: never tunnel an h2c (or any)
                    // switch the client's request was not allowed to ask for.
                    return Err(ProxyError::UnaskedUpgrade.into());
                }
                Relayed::Pooled(resp, conn)
            }
            Via::Upgrade => {
                let (req, on_upgrade) = for_hyper(req, headers, route, &target, true, None, record)?;
                let upgrade = Upgrade::new(req, on_upgrade.ok_or(ProxyError::BadRequest("not an upgrade"))?);
                Relayed::Upgraded(Box::pin(send_upstream(upgrade, route, backend, record)).await?)
            }
        };
        Ok(relayed)
    }

    /// Whether a request id is worth rendering for the record (only the access log shows it).
    fn wants_request_id(&self) -> bool {
        self.telemetry.access_log.is_some()
    }

    /// Answers given once the route is known, before any backend is chosen, in nginx's
    /// order: `appRoot` (a server-level rewrite), a CORS preflight and the rule's
    /// `redirect` (a location's rewrite-phase `if` and `return`), ssl-redirect, and a
    /// declared body over the rule's limit. A CORS request is marked in the record here.
    fn answer_early(
        &self,
        route: &Route,
        req: &Request<Incoming>,
        target: &Target,
        record: &mut Record,
    ) -> Result<(), Local> {
        let bad = || ProxyError::BadRequest("the request cannot be redirected");
        if let Some(root) = &route.app_root {
            if req.uri().path() == "/" {
                let host = target.value.to_str().map_err(|_| bad())?;
                let location =
                    HeaderValue::from_str(&format!("{}://{host}{root}", self.scheme)).map_err(|_| bad())?;
                return Err(Local::Redirect(StatusCode::FOUND, location));
            }
        }
        if let Some(cors) = &route.cors {
            record.cors = cors.allow_origin(req.headers().get(header::ORIGIN));
            if record.cors.is_some() && req.method() == http::Method::OPTIONS {
                return Err(Local::Preflight);
            }
        }
        if let Some(r) = &route.redirect {
            let parts = weir_config::RequestParts {
                scheme: self.scheme,
                host: &record.host,
                path: req.uri().path(),
                query: req.uri().query(),
            };
            let location = HeaderValue::from_str(&r.location(&parts)).map_err(|_| bad())?;
            return Err(Local::Redirect(r.code, location));
        }
        if route.ssl_redirect && self.scheme == "http" {
            if let Some(port) = self.https_port {
                let location = https_location(&record.host, port, record.uri.as_str())?;
                return Err(Local::Redirect(StatusCode::PERMANENT_REDIRECT, location));
            }
        }
        if let Some(limit) = route.max_body_size {
            if request::declared_length(req.headers()).is_some_and(|len| len > limit) {
                return Err(ProxyError::BodyTooLarge { limit }.into());
            }
        }
        Ok(())
    }
}

/// check_request: framing that must be unambiguous, and the one host the request is for.
fn check_request(req: &Request<Incoming>, peer: &Peer) -> Result<Target, ProxyError> {
    request::refuse_unsafe_framing(req, &peer.activity)?;
    Target::of(req)
}

/// match_route: the rule for the request's host and path (`weir_config::matching`).
fn match_route<'s>(
    snapshot: &'s Snapshot,
    req: &Request<Incoming>,
    host: String,
    record: &mut Record,
) -> Result<&'s Arc<Route>, ProxyError> {
    record.host = host;
    let host = RouteHost::normalized(&record.host);
    let route = snapshot
        .table
        .route_for(&host, req.uri().path())
        .map_err(ProxyError::BadPath)?
        .ok_or(ProxyError::NoRoute)?;
    if req.version() <= Version::HTTP_11 && req.uri().authority().is_some() && !snapshot.table.names(&host) {
        // Absolute-form (`GET http://other/ HTTP/1.1`) for a host no rule names: a
        // forward-proxy request, not ours to serve through the default server (nor to
        // record under its rule).
        return Err(ProxyError::BadRequest("absolute-form request for a host weir does not serve"));
    }
    record.route = Some(route.index());
    Ok(route)
}

/// The request's client address, as the table defines it (`ClientAddress`): the
/// connection's (the TCP peer, or the PROXY protocol's source, set at accept), or the
/// client trusted proxies name in X-Forwarded-For. `None` when that list is malformed (IP
/// rules then refuse). A client found in X-Forwarded-For is what the record (access log)
/// and X-Real-IP show too; the returned [`ClientInfo`] carries it.
fn client_of(
    snapshot: &Snapshot,
    peer: &Peer,
    req: &Request<Incoming>,
    record: &mut Record,
) -> (Option<IpAddr>, Option<Box<ClientInfo>>) {
    let from = snapshot.table.client_address();
    if !matches!(from, ClientAddress::ForwardedFor { .. }) {
        return (Some(peer.client.ip()), None);
    }
    let lines = req.headers().get_all(&X_FORWARDED_FOR).iter().map(|v| v.as_bytes());
    match from.forwarded_client(peer.client.ip(), lines) {
        Some(ip) if ip != peer.client.ip() => {
            record.client = SocketAddr::new(ip, peer.client.port());
            // Boxed: the steps' future keeps it across the upstream exchange.
            (Some(ip), Some(Box::new(peer.info.with_real_ip(ip))))
        }
        found => (found, None),
    }
}

/// pick_backend: the canary decision (`weir_config::canary`, with D3 fallbacks) and the
/// chosen side's endpoints.
fn pick_backend<'s>(
    snapshot: &'s Snapshot,
    route: &Route,
    req: &Request<Incoming>,
    https: bool,
    record: &mut Record,
) -> Result<&'s BackendState, ProxyError> {
    let tripped = snapshot.guard_tripped(route.index());
    let roll = |total| fastrand::u32(1..=total);
    let (decision, mut sticky) = match Sticky::begin(route, req.headers(), https) {
        None => (weir_config::pick_backend_guarded(route, req.headers(), tripped, roll), None),
        Some((sticky, pinned, point)) => {
            let roll = |total| point.unwrap_or_else(|| roll(total));
            (weir_config::pick_backend_pinned(route, req.headers(), tripped, pinned, roll), Some(sticky))
        }
    };
    let side = decision.side.ok_or(ProxyError::NoEndpoints)?;
    record.side = Some(side);
    record.fell_back = decision.fell_back;
    let backend = match (side, &route.canary) {
        (Side::Canary, Some(c)) => &c.backend,
        (Side::Destination(i), Some(c)) => {
            &c.destinations.get(usize::from(i)).ok_or(ProxyError::NoEndpoints)?.backend
        }
        _ => &route.stable,
    };
    if let Some(s) = sticky.as_mut() {
        record.preferred_endpoint = s.choose_endpoint(route, side, backend);
    }
    record.sticky = sticky;
    snapshot.backends.get(backend.index()).ok_or(ProxyError::NoEndpoints)
}

/// A rule's rate limits (nginx's preaccess phase: after redirects and CORS preflights,
/// before access checks): a limited request gets the rule's status; a request in progress
/// holds its `limit-connections` slot in the record until its answer ends.
fn admit(
    snapshot: &Snapshot,
    route: &Route,
    limit: &weir_config::ratelimit::RateLimit,
    client: IpAddr,
    record: &mut Record,
) -> Result<(), Local> {
    if !limit.applies_to(client) {
        return Ok(());
    }
    let Some(zone) = snapshot.limits.get(route.index()).and_then(Option::as_ref) else { return Ok(()) };
    match zone.admit(limit, client) {
        Ok(slot) => {
            record.limit_slot = slot;
            Ok(())
        }
        Err(which) => {
            tracing::debug!(zone = zone.name(), limit = which.as_str(), client = %client, "rate limited");
            Err(Local::Refused(limit.status, Vec::new()))
        }
    }
}

/// A CORS request's headers on its answer, replacing any the upstream sent (nginx's
/// `more_set_headers`).
fn add_cors(resp: &mut Response<ResponseBody>, origin: HeaderValue, route: Option<&Arc<Route>>) {
    let Some(cors) = route.and_then(|r| r.cors.as_ref()) else { return };
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    for (name, value) in cors.headers() {
        h.insert(name, value.clone());
    }
}

/// A rule's `rewrite` (ingress-nginx's rewrite-target): the upstream (and a mirror's copy)
/// gets the new path with the request's query, and `X-Forwarded-Prefix` when the rule sets
/// one (replacing the client's). After the access checks, which judge the request as sent.
fn rewrite_path(req: &mut Request<Incoming>, rewrite: &weir_config::Rewrite) -> Result<(), ProxyError> {
    let bad = || ProxyError::BadRequest("the request's path cannot be rewritten");
    let normalized =
        weir_config::matching::normalize_request_path(req.uri().path()).map_err(ProxyError::BadPath)?;
    let Some(new) = rewrite.apply(&normalized, req.uri().query()) else {
        return Ok(());
    };
    let pq = http::uri::PathAndQuery::try_from(new.path_and_query).map_err(|_| bad())?;
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(pq);
    *req.uri_mut() = http::Uri::from_parts(parts).map_err(|_| bad())?;
    if let Some(prefix) = new.prefix {
        let value = HeaderValue::try_from(prefix).map_err(|_| bad())?;
        req.headers_mut().insert(header::HeaderName::from_static("x-forwarded-prefix"), value);
    }
    Ok(())
}

/// rewrite_request: the header rules (`forwarding.rs`) for the request, and which carrier
/// takes it. The common request goes as it is, its head written from these rules; the
/// others are made into hyper requests by [`for_hyper`].
fn rewrite_request(
    req: &Request<Incoming>,
    route: &Route,
    info: &ClientInfo,
    target: &Target,
    wants_request_id: bool,
    record: &mut Record,
) -> (RequestHeaders, Via) {
    let rules = RequestHeaders::new(req.headers(), info, target.bare_len, target.value.clone())
        .with_upstream_host(route.upstream_host.as_ref());
    let upgrade = req.version() == Version::HTTP_11 && headers::is_upgrade(req.headers());
    let via = match upgrade {
        true => Via::Upgrade,
        false if route.protocol == Protocol::Http && req.body().is_end_stream() => Via::Own,
        false => Via::Pooled,
    };
    if via == Via::Own && wants_request_id {
        record.request_id = Some(rules.request_id());
    }
    (rules, via)
}

/// The rest of rewrite_request for hyper's client: the header map edited by `rules`, the
/// URI form and version the upstream expects, the body wrapped to count and limit it (and
/// to give a mirror `copy` its chunks); for an upgrade, the client side of the switch too.
fn for_hyper(
    mut req: Request<Incoming>,
    rules: RequestHeaders,
    route: &Route,
    target: &Target,
    upgrade: bool,
    copy: Option<Box<MirrorCopy>>,
    record: &mut Record,
) -> Result<(Request<UpstreamBody>, Option<OnUpgrade>), ProxyError> {
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let wants_trailers = request::accepts_trailers(req.headers());
    let (mut parts, body) = req.into_parts();
    if route.protocol.is_http2() {
        // The pooled HTTP/2 upstream connection's encoder would keep slices of the client
        // connection's read buffer (`headers::own_values`), past the client's release.
        headers::own_values(&mut parts.headers);
        record.request_id = Some(rules.apply_http2(&mut parts.headers));
        // gRPC servers want `te: trailers`.
        if wants_trailers {
            parts.headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
        let scheme = if route.protocol.is_tls() { "https" } else { "http" };
        let authority = route
            .upstream_host
            .as_ref()
            .unwrap_or(&target.value)
            .to_str()
            .map_err(|_| ProxyError::BadRequest("the Host header is not visible ASCII"))?;
        parts.uri = request::absolute_form(scheme, authority, &parts.uri)?;
        parts.version = Version::HTTP_2;
    } else {
        record.request_id = Some(rules.apply_http1(&mut parts.headers));
        parts.uri = request::origin_form(&parts.uri)?;
        parts.version = Version::HTTP_11;
    }
    if upgrade {
        // The one protocol weir tunnels (`headers::is_upgrade`), whatever else was listed.
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    let counted = (!body.is_end_stream() && request::declared_length(&parts.headers).is_none())
        .then(|| Arc::new(AtomicU64::new(0)));
    record.request_body_counted = counted.clone();
    let end = body.is_end_stream();
    let mut body = UpstreamBody::new(body, counted, route.max_body_size);
    match copy {
        Some(copy) if end => copy.send(bytes::Bytes::new()),
        Some(copy) => body = body.with_tap(copy.tee()),
        None => {}
    }
    Ok((Request::from_parts(parts, body), client_upgrade))
}

/// rewrite_response: hop-by-hop headers stay behind, and the body that relays the rest
/// carries the record to its end.
fn rewrite_response(relayed: Relayed, recording: Recording) -> Response<ResponseBody> {
    match relayed {
        Relayed::Own(resp, body, pool) => {
            // The exchange left the hop-by-hop headers out as it parsed the head.
            let (parts, ()) = resp.into_parts();
            let recording = note_response(&parts, recording);
            relay(parts, ResponseBody::raw(body, pool, Some(recording)))
        }
        Relayed::Pooled(resp, conn) => {
            let (mut parts, body) = resp.into_parts();
            headers::strip_hop_by_hop(&mut parts.headers);
            let recording = note_response(&parts, recording);
            relay(parts, ResponseBody::upstream(body, Some(conn), Some(recording)))
        }
        // A 101 had its Connection and Upgrade put back by the upgrade carrier: stripping
        // again would break the client's handshake.
        Relayed::Upgraded(resp) => {
            let (mut parts, body) = resp.into_parts();
            if parts.status != StatusCode::SWITCHING_PROTOCOLS {
                headers::strip_hop_by_hop(&mut parts.headers);
            }
            let recording = note_response(&parts, recording);
            relay(parts, ResponseBody::upstream(body, None, Some(recording)))
        }
    }
}

/// The response's status and head size, in the record.
fn note_response(parts: &http::response::Parts, mut recording: Recording) -> Recording {
    recording.record.status = parts.status.as_u16();
    recording.record.fault = Fault::of_relayed(recording.record.status);
    recording.record.response_head_size = response_head_size(&parts.headers);
    recording
}

/// The response the client gets, always HTTP/1.1 framing from weir's side.
fn relay(mut parts: http::response::Parts, body: ResponseBody) -> Response<ResponseBody> {
    parts.version = Version::HTTP_11;
    Response::from_parts(parts, body)
}
