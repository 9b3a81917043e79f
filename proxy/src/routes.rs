//! The route table in force: the store that swaps one immutable [`Snapshot`] whole.
//!
//! A swap builds the next snapshot off the request path — validating the document,
//! resolving endpoint pools (reusing those of endpoints still present), preparing metric
//! handles (carrying the series of rules still present from the snapshot it replaces) —
//! and then replaces the pointer in one store. Nothing is rebuilt or re-bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use weir_config::{ConfigError, Protocol, RouteTable, TableDoc};

use crate::access::cache::AccessState;
use crate::certs::CertStore;
use crate::guard::Guards;
use crate::metrics::health::TableHealth;
use crate::metrics::Metrics;
use crate::pool::Pools;
use crate::snapshot::{BackendState, Snapshot};

/// The swappable route table and what survives swaps (pools).
pub struct Routes {
    current: ArcSwap<Snapshot>,
    pools: Arc<Pools>,
    generation: AtomicU64,
    /// Serializes installs so generations are applied in order.
    install_lock: Mutex<()>,
    /// Where installs are counted and rule handles resolved; `None` records nothing.
    metrics: Option<Arc<Metrics>>,
    /// The canary guards tables in force have, so a swap keeps those it keeps.
    guards: Guards,
    /// The rate-limit zones of the tables in force, kept across swaps likewise.
    limits: crate::ratelimit::RateLimits,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snap = self.load();
        f.debug_struct("Routes")
            .field("version", &snap.table.version())
            .field("generation", &snap.generation)
            .field("routes", &snap.table.routes().len())
            .finish()
    }
}

impl Routes {
    pub fn new(pools: Arc<Pools>) -> Self {
        Self::with_metrics(pools, None)
    }

    /// Routes whose installs prepare `metrics` handles and count accepted/rejected tables.
    pub fn with_metrics(pools: Arc<Pools>, metrics: Option<Arc<Metrics>>) -> Self {
        Routes {
            current: ArcSwap::from_pointee(Snapshot::empty()),
            pools,
            generation: AtomicU64::new(0),
            install_lock: Mutex::new(()),
            metrics,
            guards: Guards::default(),
            limits: Default::default(),
        }
    }

    /// The snapshot in force. Hold it for the whole request.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Validate `doc` and, if valid, make it the table in force. On error nothing changes.
    pub fn install(&self, doc: TableDoc) -> Result<Arc<Snapshot>, ConfigError> {
        let table = RouteTable::from_doc(&doc).inspect_err(|_| self.count_rejected())?;
        let certs =
            CertStore::build(&table).map_err(ConfigError::Invalid).inspect_err(|_| self.count_rejected())?;
        // A backend is spoken to with the protocol of the rule it serves (the canary too).
        let mut protocols = vec![Protocol::Http; table.backends().len()];
        for route in table.routes() {
            protocols[route.stable.index()] = route.protocol;
            if let Some(c) = &route.canary {
                protocols[c.backend.index()] = route.protocol;
                for d in &c.destinations {
                    protocols[d.backend.index()] = route.protocol;
                }
            }
        }
        // Certificates parsed and the document hashed outside the install lock.
        let health = match &self.metrics {
            Some(_) => TableHealth::of(&doc, &table),
            None => TableHealth::default(),
        };
        let _serial = self.install_lock.lock().unwrap_or_else(|e| e.into_inner());
        let backends = table
            .backends()
            .iter()
            .zip(protocols)
            .map(|(b, protocol)| {
                BackendState::new(b.endpoints.iter().map(|&addr| self.pools.get(addr, protocol)).collect())
            })
            .collect();
        let metrics = self.metrics.as_ref().map_or_else(Vec::new, |m| m.prepare(&table, &self.load()));
        let access = table.routes().iter().map(|r| AccessState::for_route(r)).collect();
        let guards = self.guards.for_table(&table);
        let limits = self.limits.for_table(&table);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot = Arc::new(Snapshot {
            table,
            doc: Some(doc),
            generation,
            applied_at: SystemTime::now(),
            backends,
            certs,
            metrics,
            health,
            access,
            guards,
            limits,
        });
        self.current.store(snapshot.clone());
        if let Some(m) = &self.metrics {
            m.config_applied();
        }
        Ok(snapshot)
    }

    /// Count a pushed or reloaded document refused before it reached [`Routes::install`]
    /// (it did not parse); `install` counts its own refusals.
    pub fn count_rejected(&self) {
        if let Some(m) = &self.metrics {
            m.config_rejected();
        }
    }
}
