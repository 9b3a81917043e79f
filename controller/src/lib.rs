//! weir-controller: Kubernetes watches → a pure translation into weir's route table → push.
//!
//! The controller keeps reflector caches of Ingresses, IngressClasses, Services,
//! EndpointSlices and TLS Secrets; on any change (debounced) it runs the pure
//! [`translate()`] over the caches and hands the resulting [`weir_config::TableDoc`] to the
//! pusher, which `PUT`s it to the proxy's admin API whenever the proxy's version differs.
//!
//! # Layout
//! - [`annotations`]: ingress-nginx canary and per-rule annotations (body size, timeouts,
//!   backend protocol, TLS redirects), parsed leniently (Go semantics); the catalog of every
//!   ingress-nginx key (honoured / refused / ignored / unknown) and its value validators.
//! - [`analyze`]: the migration analyzer (`weir-controller analyze`): Ingresses from YAML or
//!   the cluster, judged against the catalog.
//! - [`translate`]: the pure step: cluster objects → table (certificates from TLS Secrets
//!   included, checked as the proxy loads them) + diagnostics.
//! - [`watch`]: reflectors for the watched kinds, and the change signal.
//! - [`run`]: the reconcile loop: debounce → translate → push, events, status.
//! - [`push`]: the admin API client and the push/poll/retry loop.
//! - [`events`]: diagnostics → Kubernetes Events (leader only, each once).
//! - [`status`]: `status.loadBalancer` of served Ingresses (leader only).
//! - [`lease`]: leader election on a `coordination.k8s.io/v1` Lease.
//! - [`metrics`]: Prometheus metrics and the `/healthz` `/readyz` `/metrics` listener.
//! - `testkit` (feature `testkit`): fixtures, a fake API server, a fake admin API.

pub mod analyze;
pub mod annotations;
pub mod events;
pub mod lease;
pub mod metrics;
pub mod push;
pub mod run;
pub mod status;
pub mod translate;
pub mod watch;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use run::{run, Settings};
pub use translate::{translate, ClusterState, Diagnostic, Options, Reason, TlsBinding, Translation};

/// What can go wrong in the controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    /// `--proxy-admin` is not an `http://host:port` URL.
    #[error("proxy admin URL {0:?} is not of the form http://host:port")]
    AdminUrl(String),
    #[error("could not build the admin API request")]
    AdminBuild(#[source] http::Error),
    /// The proxy's admin API could not be reached.
    #[error("admin API request failed")]
    AdminRequest(#[source] hyper_util::client::legacy::Error),
    #[error("reading the admin API response failed")]
    AdminBody(#[source] hyper::Error),
    #[error("admin API answered {0}")]
    AdminStatus(http::StatusCode),
    #[error("admin API response is not the expected JSON")]
    AdminJson(#[source] serde_json::Error),
    #[error("admin API did not answer in time")]
    AdminTimeout,
    #[error("could not register a metric")]
    Metrics(#[from] prometheus::Error),
    /// `--accept-annotation` names a key that is not refused (or not a key at all).
    #[error("--accept-annotation {key}: {problem}")]
    Waiver { key: String, problem: String },
    /// The analyzer could not read an input file or directory.
    #[error("cannot read {}", path.display())]
    AnalyzeRead {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An input file is not YAML, or a document in it is not a well-formed Ingress.
    #[error("{} is not readable as Kubernetes YAML", path.display())]
    AnalyzeParse {
        path: std::path::PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("could not listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Resolves once the shutdown flag turns true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
