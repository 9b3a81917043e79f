//! The check_access step, between match_route and pick_backend: a rule's `deny` and
//! `access` (`weir_config::access`) enforced on the request, answering [`Local::Refused`]
//! or, when an auth service cannot answer, [`ProxyError::AuthService`] (500).
//!
//! In order: a deny rule answers its status; IP rules (on the table's client address)
//! answer 403; basic auth answers 401 with `WWW-Authenticate: Basic realm="…"`; external
//! auth sends a subrequest and lets a 2xx through (copying the named response headers onto
//! the request), gives 401/403 back to the client (401 becomes a 302 to the signin page
//! when the rule has one), and answers 500 for anything else, a connect failure or a
//! timeout. The headers external auth copies are removed from the client's request first,
//! whatever happens next, so a client can never send them itself.
//!
//! Rules without any of this never reach here (serve.rs checks two fields).
//!
//! Caches, per rule and per table version (in the [`Snapshot`](crate::snapshot::Snapshot),
//! so a changed Secret or rule starts afresh): successful basic-auth credentials, keyed by
//! a SHA-256 of the `Authorization` value (bcrypt costs milliseconds, and a client sends the
//! same value on every request), and external-auth answers (2xx, 401 and 403) under the
//! rule's cache key, for the duration its settings give the status; a status they do not
//! name is asked again each time. Both hold digests, never credentials, and are bounded
//! (`access/cache.rs`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use weir_config::access::{Access, ExternalAuth, Template, Variable};
use weir_config::Route;

pub(crate) mod cache;

use cache::{AccessState, Remembered};

use crate::answer::Local;
use crate::error::ProxyError;
use crate::forwarding::{ClientInfo, RequestHeaders, X_REQUEST_ID};
use crate::request::Target;

/// Idle connections kept to auth services, per host.
const AUTH_POOL_IDLE: usize = 32;

static X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
static X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
static X_AUTH_REQUEST_REDIRECT: HeaderName = HeaderName::from_static("x-auth-request-redirect");
static X_SENT_FROM: HeaderName = HeaderName::from_static("x-sent-from");

/// The client that sends external-auth subrequests: pooled, HTTP/1.1, `http` or `https`
/// (the certificate is not verified, as for HTTPS upstreams: `upstream_tls.rs`).
#[derive(Clone)]
pub struct AuthClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl AuthClient {
    pub fn new(tls: Arc<rustls::ClientConfig>) -> AuthClient {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        // hyper-rustls sets the ALPN offer itself (http/1.1), and refuses a preset one.
        let mut tls = (*tls).clone();
        tls.alpn_protocols.clear();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(AUTH_POOL_IDLE)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        AuthClient { client }
    }
}

/// What the access step knows of the request besides its head.
pub struct Asking<'a> {
    pub route: &'a Arc<Route>,
    pub state: Option<&'a AccessState>,
    /// The client address IP rules judge; `None` when it could not be determined.
    pub client: Option<IpAddr>,
    /// The forwarding headers' values for this request (X-Real-IP is `client`).
    pub info: &'a ClientInfo,
    pub target: &'a Target,
    /// Lower-case, without port (`$host`).
    pub host: &'a str,
    /// `http` or `https`.
    pub scheme: &'static str,
    pub auth: &'a AuthClient,
}

/// check_access: the rule's deny and access checks, in order (see the module docs).
pub async fn check_access(asking: Asking<'_>, req: &mut Request<Incoming>) -> Result<(), Local> {
    let route = asking.route;
    if let Some(deny) = &route.deny {
        tracing::debug!(reason = %deny.reason, "deny rule");
        return Err(Local::Refused(deny.status, Vec::new()));
    }
    let Some(access) = route.access.as_deref() else { return Ok(()) };
    if let Some(ext) = &access.external {
        // First, whatever the other checks say: the client never supplies these.
        for name in &ext.response_headers {
            req.headers_mut().remove(name);
        }
    }
    if let Some(ip) = &access.ip {
        if !ip.permits(asking.client) {
            return Err(Local::Refused(StatusCode::FORBIDDEN, Vec::new()));
        }
    }
    if access.basic.is_some() {
        check_basic(&asking, access, req.headers()).await?;
    }
    if let Some(ext) = &access.external {
        check_external(&asking, ext, req).await?;
    }
    Ok(())
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

async fn check_basic(asking: &Asking<'_>, access: &Access, headers: &HeaderMap) -> Result<(), Local> {
    let Some(basic) = &access.basic else { return Ok(()) };
    let challenge = || {
        let value = HeaderValue::from_str(&basic.challenge()).unwrap_or(HeaderValue::from_static("Basic"));
        Local::Refused(StatusCode::UNAUTHORIZED, vec![(header::WWW_AUTHENTICATE, value)])
    };
    let Some(authorization) = headers.get(header::AUTHORIZATION) else { return Err(challenge()) };
    let cache = asking.state.and_then(|s| s.basic.as_ref());
    let key = digest(&[authorization.as_bytes()]);
    if cache.is_some_and(|c| c.get(&key).is_some()) {
        return Ok(());
    }
    // bcrypt takes milliseconds of CPU: off the connection's worker thread.
    let route = asking.route.clone();
    let value = authorization.clone();
    let checked = tokio::task::spawn_blocking(move || {
        route
            .access
            .as_deref()
            .and_then(|a| a.basic.as_ref())
            .is_some_and(|b| b.check(Some(value.as_bytes())))
    })
    .await
    .unwrap_or(false);
    if !checked {
        return Err(challenge());
    }
    if let Some(c) = cache {
        c.insert(key, ());
    }
    Ok(())
}

/// The value of `var` for this request, as the signin URL and cache key templates see it.
fn variable(asking: &Asking<'_>, req: &Request<Incoming>, var: &Variable) -> String {
    let uri = req.uri().path_and_query().map_or("/", |p| p.as_str());
    match var {
        Variable::Host => asking.host.to_string(),
        Variable::Scheme => asking.scheme.to_string(),
        Variable::RequestUri => uri.to_string(),
        Variable::EscapedRequestUri => escape(uri),
        Variable::Uri => req.uri().path().to_string(),
        Variable::Args => req.uri().query().unwrap_or("").to_string(),
        Variable::RemoteAddr => asking.client.map_or_else(String::new, |ip| ip.to_string()),
        Variable::Header(name) => {
            let values: Vec<&str> =
                req.headers().get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
            values.join(", ")
        }
        Variable::Cookie(name) => weir_config::canary::cookie_value(req.headers(), name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default(),
    }
}

/// Percent-encoding of everything but RFC 3986's unreserved characters, for a URL inside a
/// query value (nginx's `$escaped_request_uri` and the signin redirect's `rd=`).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn render(asking: &Asking<'_>, req: &Request<Incoming>, t: &Template) -> String {
    t.render(|v| variable(asking, req, v))
}

async fn check_external(
    asking: &Asking<'_>,
    ext: &ExternalAuth,
    req: &mut Request<Incoming>,
) -> Result<(), Local> {
    let cache = asking.state.and_then(|s| s.external.as_ref()).zip(ext.cache.as_ref());
    let key = cache.map(|(_, c)| digest(&[render(asking, req, &c.key).as_bytes()]));
    if let (Some((store, _)), Some(key)) = (cache, key) {
        if let Some(hit) = store.get(&key) {
            if hit.until > Instant::now() {
                if hit.status.is_success() {
                    copy_headers(req.headers_mut(), &hit.headers);
                    return Ok(());
                }
                return Err(refusal(asking, ext, req, hit.status, hit.headers.to_vec()));
            }
            store.remove(&key);
        }
    }
    let sub = subrequest(asking, ext, req)?;
    let answer = match tokio::time::timeout(ext.timeout, asking.auth.client.request(sub)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => return Err(auth_failed(format!("{}: {e}", ext.url))),
        Err(_) => return Err(auth_failed(format!("{} did not answer within {:?}", ext.url, ext.timeout))),
    };
    let status = answer.status();
    let names: &[HeaderName] = match status {
        s if s.is_success() => &ext.response_headers,
        StatusCode::UNAUTHORIZED => std::slice::from_ref(&header::WWW_AUTHENTICATE),
        StatusCode::FORBIDDEN => &REFUSAL_HEADERS,
        other => return Err(auth_failed(format!("{} answered {}", ext.url, other.as_u16()))),
    };
    let mut kept = Vec::new();
    for name in names {
        for value in answer.headers().get_all(name) {
            kept.push((name.clone(), value.clone()));
        }
    }
    // Remembered for the duration the rule gives this status (ingress-nginx caches 401s
    // too when auth-cache-duration names them: a refusal, never more access).
    if let (Some((store, settings)), Some(key)) = (cache, key) {
        if let Some(ttl) = settings.duration(status.as_u16()) {
            store.insert(
                key,
                Remembered { until: Instant::now() + ttl, status, headers: kept.clone().into() },
            );
        }
    }
    if status.is_success() {
        copy_headers(req.headers_mut(), &kept);
        return Ok(());
    }
    Err(refusal(asking, ext, req, status, kept))
}

/// The headers a 403 from the auth service passes to the client.
static REFUSAL_HEADERS: [HeaderName; 2] = [header::WWW_AUTHENTICATE, header::LOCATION];

/// The client's answer to the auth service's 401 or 403 (`headers`: those it passes on):
/// a 401 sends the client to the signin page when the rule has one (or is the failure to
/// make that redirect).
fn refusal(
    asking: &Asking<'_>,
    ext: &ExternalAuth,
    req: &Request<Incoming>,
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Local {
    match (&ext.signin, status) {
        (Some(signin), StatusCode::UNAUTHORIZED) => {
            signin_redirect(asking, ext, req, signin).unwrap_or_else(|failed| failed)
        }
        _ => Local::Refused(status, headers),
    }
}

fn auth_failed(why: String) -> Local {
    Local::Failed(ProxyError::AuthService(why))
}

/// Values an allowed answer brings: each name's values replace whatever the request had.
fn copy_headers(headers: &mut HeaderMap, copied: &[(HeaderName, HeaderValue)]) {
    for (name, _) in copied {
        headers.remove(name);
    }
    for (name, value) in copied {
        headers.append(name.clone(), value.clone());
    }
}

/// The original URL, as the signin redirect and X-Original-URL carry it.
fn original_url(asking: &Asking<'_>, req: &Request<Incoming>) -> String {
    let uri = req.uri().path_and_query().map_or("/", |p| p.as_str());
    format!("{}://{}{}", asking.scheme, asking.target.value.to_str().unwrap_or(asking.host), uri)
}

/// The auth subrequest: the client's end-to-end headers (no body), the forwarding headers,
/// X-Original-URL and -Method, then the rule's own headers; to the auth URL.
fn subrequest(
    asking: &Asking<'_>,
    ext: &ExternalAuth,
    req: &mut Request<Incoming>,
) -> Result<Request<Empty<Bytes>>, Local> {
    let target = asking.target;
    let rules = RequestHeaders::new(req.headers(), asking.info, target.bare_len, target.value.clone());
    let mut headers = req.headers().clone();
    let id = rules.apply_http1(&mut headers);
    if !req.headers().contains_key(&X_REQUEST_ID) {
        // One id for the subrequest and the forwarded request, as nginx's $req_id.
        req.headers_mut().insert(&X_REQUEST_ID, id);
    }
    // No body goes to the auth service (the rules above already left hop-by-hop headers
    // and Expect behind).
    headers.remove(header::CONTENT_LENGTH);
    let authority = ext.url.authority().map_or("", |a| a.as_str());
    let host = HeaderValue::from_str(authority).map_err(|_| auth_failed("the auth URL's host".into()))?;
    headers.insert(header::HOST, host);
    let original = HeaderValue::from_str(&original_url(asking, req)).map_err(|_| {
        Local::Failed(ProxyError::BadRequest("the request URL cannot be sent to the auth service"))
    })?;
    headers.insert(&X_ORIGINAL_URL, original);
    headers.insert(
        &X_ORIGINAL_METHOD,
        HeaderValue::from_str(req.method().as_str()).unwrap_or(HeaderValue::from_static("GET")),
    );
    if let Some(pq) = req.uri().path_and_query().and_then(|p| HeaderValue::from_str(p.as_str()).ok()) {
        headers.insert(&X_AUTH_REQUEST_REDIRECT, pq);
    }
    headers.insert(&X_SENT_FROM, HeaderValue::from_static("weir"));
    for (name, value) in &ext.proxy_set_headers {
        headers.insert(name, value.clone());
    }
    let mut sub = Request::new(Empty::new());
    *sub.method_mut() = ext.method.clone();
    *sub.uri_mut() = ext.url.clone();
    *sub.headers_mut() = headers;
    Ok(sub)
}

/// 401 with a signin page: 302 there, carrying the original URL in the redirect parameter
/// unless the rendered URL's query already has it (ingress-nginx's auth-signin).
fn signin_redirect(
    asking: &Asking<'_>,
    ext: &ExternalAuth,
    req: &Request<Incoming>,
    signin: &Template,
) -> Result<Local, Local> {
    let mut location = render(asking, req, signin);
    let param = &ext.signin_redirect_param;
    let query = location.split_once('?').map(|(_, q)| q.split('#').next().unwrap_or(q));
    let has_param =
        query.is_some_and(|q| q.split('&').any(|kv| kv.split_once('=').map_or(kv, |(k, _)| k) == param));
    if !has_param {
        let sep = if location.contains('?') { '&' } else { '?' };
        location = format!("{location}{sep}{param}={}", escape(&original_url(asking, req)));
    }
    let value = HeaderValue::from_str(&location).map_err(|_| {
        Local::Failed(ProxyError::BadRequest("the request cannot be sent to the signin page"))
    })?;
    Ok(Local::Refused(StatusCode::FOUND, vec![(header::LOCATION, value)]))
}
