//! One table version as the request path sees it: the [`Snapshot`], plain data built by
//! `routes.rs` and never changed after.
//!
//! A request loads the snapshot once and keeps it (an `Arc`) until its response ends, so it
//! sees one table version from start to end however many swaps happen meanwhile.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use weir_config::{RouteTable, TableDoc};

use crate::access::cache::AccessState;
use crate::certs::CertStore;
use crate::guard::GuardState;
use crate::metrics::health::TableHealth;
use crate::metrics::series::RuleHandles;
use crate::pool::EndpointPool;

/// Everything the request path needs from one table version.
pub struct Snapshot {
    pub table: RouteTable,
    /// The document it was built from, for `GET /config`; `None` before the first load.
    pub doc: Option<TableDoc>,
    /// Counts installs since start: 0 is the empty start-up table.
    pub generation: u64,
    pub applied_at: SystemTime,
    /// Per backend, aligned with `table.backends()`.
    pub backends: Vec<BackendState>,
    /// Certificates for the TLS listener's handshakes.
    pub certs: CertStore,
    /// Per route, aligned with `table.routes()`: its metric handles (empty without metrics).
    pub metrics: Vec<RuleHandles>,
    /// The table's hash and certificate expiry for the controller-health families
    /// (default without metrics).
    pub health: TableHealth,
    /// Per route, aligned with `table.routes()`: the caches of its access checks (`None`
    /// for a rule without any). Made anew with each table, so a changed Secret or rule
    /// never meets an answer remembered under the old one.
    pub(crate) access: Vec<Option<AccessState>>,
    /// Per route, aligned with `table.routes()`: its canary guard (`None` without one).
    /// Carried across tables while they keep the guard (`guard.rs`).
    pub guards: Vec<Option<Arc<GuardState>>>,
    /// Each route's rate-limit zone, by route index (`ratelimit.rs`).
    pub limits: Vec<Option<Arc<crate::ratelimit::Zone>>>,
}

/// A backend's endpoints as live pools, with its round-robin cursor.
pub struct BackendState {
    pub endpoints: Vec<Arc<EndpointPool>>,
    next: AtomicUsize,
}

impl BackendState {
    /// Where round-robin starts for this request; successive calls walk the endpoints.
    pub fn next_start(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

impl BackendState {
    /// `endpoints`, round robin starting at a random one.
    pub fn new(endpoints: Vec<Arc<EndpointPool>>) -> Self {
        BackendState { endpoints, next: AtomicUsize::new(fastrand::usize(..)) }
    }
}

impl Snapshot {
    /// The empty start-up table: no rule, no certificate.
    pub fn empty() -> Self {
        Snapshot {
            table: RouteTable::empty(),
            doc: None,
            generation: 0,
            applied_at: SystemTime::now(),
            backends: Vec::new(),
            certs: CertStore::default(),
            metrics: Vec::new(),
            health: TableHealth::default(),
            access: Vec::new(),
            guards: Vec::new(),
            limits: Vec::new(),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.doc.is_some()
    }

    /// Whether `route`'s canary guard has tripped (false without a guard).
    pub fn guard_tripped(&self, route: usize) -> bool {
        self.guards.get(route).and_then(Option::as_ref).is_some_and(|g| g.is_tripped())
    }
}
