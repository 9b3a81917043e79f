//! weir-controller: Kubernetes watches → a pure translation into weir's route table → push.
//!
//! The controller keeps reflector caches of Ingresses, IngressClasses, Services,
//! EndpointSlices, TLS Secrets and WeirRoutes; on any change (debounced) it runs the pure
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
//! - [`weirroute`]: the WeirRoute resource of the Argo Rollouts plugin (plugin/README.md);
//!   [`route_status`]: this replica's entry of each WeirRoute's status.
//! - [`events`]: diagnostics → Kubernetes Events (leader only, each once).
//! - [`status`]: `status.loadBalancer` of served Ingresses (leader only).
//! - [`lease`]: leader election on a `coordination.k8s.io/v1` Lease.
//! - [`metrics`]: Prometheus metrics and the `/healthz` `/readyz` `/metrics` listener.
//! - `testkit` (feature `testkit`): fixtures, a fake API server, a fake admin API.

pub mod analyze;
pub mod annotations;
mod error;
pub mod events;
pub mod guards;
pub mod lease;
pub mod metrics;
pub mod push;
pub mod route_status;
pub mod run;
mod shutdown;
pub mod status;
pub mod translate;
pub mod watch;
pub mod weirroute;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::Error;
pub use run::{run, Settings};
pub use translate::{translate, ClusterState, Diagnostic, Options, Reason, TlsBinding, Translation};
