//! The fake API server's HTTP side: routing, LIST, WATCH streams, and writes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::{Method, Request, Response, StatusCode};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

use super::store::{Change, Inner};

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

pub(super) async fn serve(listener: TcpListener, inner: Arc<Inner>) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let inner = inner.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req| {
                let inner = inner.clone();
                async move { Ok::<_, Infallible>(route(req, inner).await) }
            });
            let _ =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
        while conns.try_join_next().is_some() {}
    }
}

/// A request path split into what names the resource.
struct Target {
    resource: String,
    namespace: String,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (format!("/{v}"), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (ns.to_string(), rest),
        _ => (String::new(), rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => return None,
    };
    Some(Target { resource: format!("{gv}/{plural}"), namespace, name, subresource: sub })
}

fn kind_of(resource: &str) -> (&str, &'static str) {
    let (gv, plural) = resource.rsplit_once('/').unwrap_or(("", resource));
    let kind = match plural {
        "ingresses" => "Ingress",
        "ingressclasses" => "IngressClass",
        "services" => "Service",
        "endpointslices" => "EndpointSlice",
        "secrets" => "Secret",
        "leases" => "Lease",
        "weirroutes" => "WeirRoute",
        "events" => "Event",
        _ => "Unknown",
    };
    (gv.trim_start_matches('/'), kind)
}

fn query(uri: &::http::Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=b,c!=d` over dotted JSON fields (fieldSelector) or labels (labelSelector).
fn selected(obj: &Value, q: &HashMap<String, String>) -> bool {
    let check = |sel: &str, get: &dyn Fn(&str) -> Option<String>| {
        sel.split(',').filter(|s| !s.is_empty()).all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                get(k).as_deref() != Some(v)
            } else if let Some((k, v)) = term.split_once('=') {
                get(k.trim_end_matches('=')).as_deref() == Some(v)
            } else {
                get(term).is_some()
            }
        })
    };
    let field = |path: &str| {
        let mut v = obj;
        for p in path.split('.') {
            v = v.get(p)?;
        }
        v.as_str().map(String::from)
    };
    let label = |k: &str| obj["metadata"]["labels"].get(k).and_then(Value::as_str).map(String::from);
    q.get("fieldSelector").is_none_or(|s| check(s, &field))
        && q.get("labelSelector").is_none_or(|s| check(s, &label))
}

fn respond(status: StatusCode, v: Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(::http::header::CONTENT_TYPE, ::http::HeaderValue::from_static("application/json"));
    resp
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    respond(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "reason": reason, "message": message, "code": code.as_u16()}),
    )
}

async fn route(req: Request<Incoming>, inner: Arc<Inner>) -> Response<Body> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    inner.lock().requests.push((method.to_string(), uri.to_string()));
    let Some(t) = parse_path(uri.path()) else {
        return status(StatusCode::NOT_FOUND, "NotFound", "no such path");
    };
    if inner.lock().missing.contains(&t.resource) {
        return status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource");
    }
    let q = query(&uri);
    let is_apply = req
        .headers()
        .get(::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("apply-patch+yaml"));
    let is_patch_merge = req
        .headers()
        .get(::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("merge-patch+json"));
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return status(StatusCode::BAD_REQUEST, "BadRequest", "unreadable body"),
    };
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    match (method, &t.name) {
        (Method::GET, None) if q.get("watch").is_some_and(|w| w == "1" || w == "true") => {
            watch(&inner, &t, &q)
        }
        (Method::GET, None) => list(&inner, &t, &q),
        (Method::GET, Some(name)) => {
            match inner.lock().objects.get(&(t.resource.clone(), t.namespace.clone(), name.clone())) {
                Some(obj) => respond(StatusCode::OK, obj.clone()),
                None => status(StatusCode::NOT_FOUND, "NotFound", &format!("{name} not found")),
            }
        }
        (Method::POST, None) => create(&inner, &t, parsed),
        (Method::PUT, Some(name)) => replace(&inner, &t, name, parsed),
        (Method::PATCH, Some(name)) if is_patch_merge => patch(&inner, &t, name, parsed),
        (Method::PATCH, Some(name)) if is_apply && t.subresource.as_deref() == Some("status") => {
            apply_replicas(&inner, &t, name, parsed, q.get("fieldManager").cloned())
        }
        (Method::PATCH, Some(_)) => {
            status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", "merge patches only")
        }
        (Method::DELETE, Some(name)) => {
            let old =
                inner.lock().objects.get(&(t.resource.clone(), t.namespace.clone(), name.clone())).cloned();
            match old {
                Some(obj) => respond(StatusCode::OK, inner.write(&t.resource, &t.namespace, "DELETED", obj)),
                None => status(StatusCode::NOT_FOUND, "NotFound", &format!("{name} not found")),
            }
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "not supported by the fake"),
    }
}

fn list(inner: &Inner, t: &Target, q: &HashMap<String, String>) -> Response<Body> {
    let db = inner.lock();
    let items: Vec<Value> = db
        .objects
        .iter()
        .filter(|((r, ns, _), _)| *r == t.resource && (t.namespace.is_empty() || *ns == t.namespace))
        .map(|(_, v)| v.clone())
        .filter(|v| selected(v, q))
        .collect();
    let (gv, kind) = kind_of(&t.resource);
    respond(
        StatusCode::OK,
        json!({"apiVersion": gv, "kind": format!("{kind}List"),
               "metadata": {"resourceVersion": db.rv.to_string()}, "items": items}),
    )
}

fn event_line(type_: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": type_, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch(inner: &Arc<Inner>, t: &Target, q: &HashMap<String, String>) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let (gv, kind) = kind_of(&t.resource);
    let matches = {
        let (resource, ns, q) = (t.resource.clone(), t.namespace.clone(), q.clone());
        move |c: &Change| {
            c.resource == resource && (ns.is_empty() || c.namespace == ns) && selected(&c.object, &q)
        }
    };
    let since: Option<u64> = q.get("resourceVersion").and_then(|v| v.parse().ok()).filter(|v| *v != 0);
    let timeout = q.get("timeoutSeconds").and_then(|v| v.parse().ok()).unwrap_or(290u64).min(290);
    let mut backlog = Vec::new();
    let mut live;
    let mut closed = inner.close_watches.subscribe();
    {
        let mut db = inner.lock();
        live = inner.changes.subscribe();
        match since {
            Some(rv) if rv < db.compacted_below => {
                db.gone_sent += 1;
                let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "reason": "Expired", "message": format!("too old resource version: {rv}"), "code": 410});
                backlog.push(event_line("ERROR", &gone));
                let _ = tx.try_send(backlog.remove(0));
                return stream_response(rx);
            }
            Some(rv) => backlog.extend(
                db.history.iter().filter(|c| c.rv > rv && matches(c)).map(|c| event_line(c.type_, &c.object)),
            ),
            None => backlog.extend(
                db.objects
                    .iter()
                    .filter(|((r, ns, _), v)| {
                        *r == t.resource && (t.namespace.is_empty() || *ns == t.namespace) && selected(v, q)
                    })
                    .map(|(_, v)| event_line("ADDED", v)),
            ),
        }
        if q.get("allowWatchBookmarks").is_some_and(|v| v == "true" || v == "1") {
            let bm =
                json!({"apiVersion": gv, "kind": kind, "metadata": {"resourceVersion": db.rv.to_string()}});
            backlog.push(event_line("BOOKMARK", &bm));
        }
    }
    tokio::spawn(async move {
        for line in backlog {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = closed.changed() => return,
                _ = tx.closed() => return,
                change = live.recv() => match change {
                    Ok(c) if matches(&c) => if tx.send(event_line(c.type_, &c.object)).await.is_err() { return },
                    Ok(_) => {}
                    // Too slow to keep up: end the watch; the client resumes or relists.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    stream_response(rx)
}

/// A body fed by a channel: one watch event per frame.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut resp = Response::new(ChannelBody(rx).boxed());
    resp.headers_mut()
        .insert(::http::header::CONTENT_TYPE, ::http::HeaderValue::from_static("application/json"));
    resp
}

fn create(inner: &Inner, t: &Target, body: Option<Value>) -> Response<Body> {
    let Some(mut obj) = body.filter(Value::is_object) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "body is not an object");
    };
    if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        let Some(prefix) = obj["metadata"]["generateName"].as_str().map(String::from) else {
            return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", "name or generateName is required");
        };
        obj["metadata"]["name"] = json!(format!("{prefix}{:05x}", inner.lock().rv + 1));
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
    if inner.lock().objects.contains_key(&(t.resource.clone(), t.namespace.clone(), name.clone())) {
        return status(StatusCode::CONFLICT, "AlreadyExists", &format!("{name} already exists"));
    }
    respond(StatusCode::CREATED, inner.write(&t.resource, &t.namespace, "ADDED", obj))
}

fn replace(inner: &Inner, t: &Target, name: &str, body: Option<Value>) -> Response<Body> {
    let Some(mut obj) = body.filter(Value::is_object) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "body is not an object");
    };
    let Some(old) =
        inner.lock().objects.get(&(t.resource.clone(), t.namespace.clone(), name.to_string())).cloned()
    else {
        return status(StatusCode::NOT_FOUND, "NotFound", &format!("{name} not found"));
    };
    if let Some(rv) = obj["metadata"]["resourceVersion"].as_str() {
        if Some(rv) != old["metadata"]["resourceVersion"].as_str() {
            return status(StatusCode::CONFLICT, "Conflict", "the object has been modified; please retry");
        }
    }
    if t.subresource.as_deref() == Some("status") {
        let mut new = old.clone();
        new["status"] = obj["status"].take();
        obj = new;
    }
    obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
    obj["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
    respond(StatusCode::OK, inner.write(&t.resource, &t.namespace, "MODIFIED", obj))
}

fn patch(inner: &Inner, t: &Target, name: &str, body: Option<Value>) -> Response<Body> {
    let Some(mut patch_doc) = body else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
    };
    let Some(mut obj) =
        inner.lock().objects.get(&(t.resource.clone(), t.namespace.clone(), name.to_string())).cloned()
    else {
        return status(StatusCode::NOT_FOUND, "NotFound", &format!("{name} not found"));
    };
    if t.subresource.as_deref() == Some("status") {
        patch_doc = json!({"status": patch_doc["status"].take()});
    }
    let before = obj.clone();
    merge_patch(&mut obj, &patch_doc);
    if obj == before {
        return respond(StatusCode::OK, obj);
    }
    respond(StatusCode::OK, inner.write(&t.resource, &t.namespace, "MODIFIED", obj))
}

/// Server-side apply of `status.replicas` entries (JSON is YAML): the entries this field
/// manager owned and did not send again are removed, the ones it sent replace any entry of
/// that name (force), the others' entries stay. Any other status field is refused.
fn apply_replicas(
    inner: &Inner,
    t: &Target,
    name: &str,
    body: Option<Value>,
    manager: Option<String>,
) -> Response<Body> {
    let Some(manager) = manager.filter(|m| !m.is_empty()) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "fieldManager is required for apply patch");
    };
    let Some(body) = body else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
    };
    let status_doc = body.get("status").cloned().unwrap_or(Value::Null);
    let Some(sent) = status_doc.get("replicas").and_then(Value::as_array).cloned() else {
        return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", "the fake applies status.replicas only");
    };
    if status_doc.as_object().is_some_and(|o| o.len() != 1) {
        return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", "the fake applies status.replicas only");
    }
    let key = (t.resource.clone(), t.namespace.clone(), name.to_string());
    let Some(mut obj) = inner.lock().objects.get(&key).cloned() else {
        return status(StatusCode::NOT_FOUND, "NotFound", &format!("{name} not found"));
    };
    let entry_name = |e: &Value| e["name"].as_str().unwrap_or_default().to_string();
    let sent_names: Vec<String> = sent.iter().map(entry_name).collect();
    let mut replicas: Vec<Value> = {
        let db = inner.lock();
        obj["status"]["replicas"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                let n = entry_name(e);
                let owner = db.replica_owners.get(&(key.0.clone(), key.1.clone(), key.2.clone(), n.clone()));
                !sent_names.contains(&n) && owner != Some(&manager)
            })
            .collect()
    };
    {
        let mut db = inner.lock();
        db.replica_owners
            .retain(|(r, ns, n, _), m| !(*r == key.0 && *ns == key.1 && *n == key.2 && *m == manager));
        for n in &sent_names {
            db.replica_owners
                .insert((key.0.clone(), key.1.clone(), key.2.clone(), n.clone()), manager.clone());
        }
    }
    replicas.extend(sent);
    replicas.sort_by_key(entry_name);
    let before = obj.clone();
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    obj["status"]["replicas"] = Value::Array(replicas);
    if obj == before {
        return respond(StatusCode::OK, obj);
    }
    respond(StatusCode::OK, inner.write(&t.resource, &t.namespace, "MODIFIED", obj))
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}
