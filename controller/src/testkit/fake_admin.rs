//! A fake proxy admin API on 127.0.0.1: validates pushed tables with weir-config, keeps the
//! current one, records every accepted push, and can restart empty on the same port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use weir_config::{RouteTable, TableDoc};

#[derive(Default)]
struct State {
    table: Option<TableDoc>,
    generation: u64,
    pushes: Vec<TableDoc>,
    rejected: usize,
    /// What `GET /guards` lists (the proxy's canary guards).
    guards: Vec<serde_json::Value>,
    guard_reads: usize,
}

/// The fake admin server. Dropping it stops it.
pub struct FakeAdmin {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: Option<JoinHandle<()>>,
}

impl FakeAdmin {
    pub async fn start() -> std::io::Result<FakeAdmin> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let task = Some(tokio::spawn(serve(listener, state.clone())));
        Ok(FakeAdmin { addr, state, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    }

    /// The table the "proxy" serves now.
    pub fn table(&self) -> Option<TableDoc> {
        self.with(|s| s.table.clone())
    }

    /// Every accepted push since start, in order.
    pub fn pushes(&self) -> Vec<TableDoc> {
        self.with(|s| s.pushes.clone())
    }

    pub fn push_count(&self) -> usize {
        self.with(|s| s.pushes.len())
    }

    pub fn rejected_count(&self) -> usize {
        self.with(|s| s.rejected)
    }

    /// The canary guards `GET /guards` lists from now on (each as the proxy writes one).
    pub fn set_guards(&self, guards: Vec<serde_json::Value>) {
        self.with(|s| s.guards = guards);
    }

    /// `GET /guards` requests answered so far.
    pub fn guard_reads(&self) -> usize {
        self.with(|s| s.guard_reads)
    }

    /// Stop serving (connections refused) until [`FakeAdmin::restart`].
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// A proxy restart: stop, forget the table (not the push log), serve again on the
    /// same port.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await;
        self.with(|s| s.table = None);
        let listener = TcpListener::bind(self.addr).await?;
        self.task = Some(tokio::spawn(serve(listener, self.state.clone())));
        Ok(())
    }
}

impl Drop for FakeAdmin {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    // Connections live in this set, so aborting the task closes them all.
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let state = state.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(req, &state).await) }
            });
            let _ =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
        while conns.try_join_next().is_some() {}
    }
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(v.to_string())));
    *resp.status_mut() = status;
    resp
}

async fn answer(req: Request<Incoming>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    match (req.method().clone(), req.uri().path()) {
        (Method::GET, "/healthz") => json(StatusCode::OK, serde_json::json!({})),
        (Method::GET, "/guards") => {
            let mut s = lock();
            s.guard_reads += 1;
            let version = s.table.as_ref().and_then(|t| t.version.clone());
            json(StatusCode::OK, serde_json::json!({ "version": version, "guards": s.guards }))
        }
        (Method::GET, "/config") => {
            let s = lock();
            match &s.table {
                None => json(StatusCode::NOT_FOUND, serde_json::json!({ "version": null })),
                Some(t) => json(
                    StatusCode::OK,
                    serde_json::json!({ "version": t.version, "generation": s.generation, "table": t }),
                ),
            }
        }
        (Method::PUT, "/config") => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return json(StatusCode::BAD_REQUEST, serde_json::json!({ "errors": [] })),
            };
            let doc: TableDoc = match serde_json::from_slice(&body) {
                Ok(d) => d,
                Err(e) => {
                    lock().rejected += 1;
                    let errors = [serde_json::json!({ "field": "", "reason": e.to_string() })];
                    return json(StatusCode::BAD_REQUEST, serde_json::json!({ "errors": errors }));
                }
            };
            if let Err(weir_config::ConfigError::Invalid(errs)) = RouteTable::from_doc(&doc) {
                lock().rejected += 1;
                let errors: Vec<_> = errs
                    .iter()
                    .map(|e| serde_json::json!({ "field": e.field, "reason": e.reason }))
                    .collect();
                return json(StatusCode::BAD_REQUEST, serde_json::json!({ "errors": errors }));
            }
            let mut s = lock();
            s.generation += 1;
            s.table = Some(doc.clone());
            s.pushes.push(doc.clone());
            json(StatusCode::OK, serde_json::json!({ "version": doc.version, "generation": s.generation }))
        }
        _ => json(StatusCode::NOT_FOUND, serde_json::json!({ "error": "not found" })),
    }
}
