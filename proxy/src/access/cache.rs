//! The caches of a rule's access checks: plain data, one [`AccessState`] per rule and table
//! version, held by the table's snapshot and used by the check_access step (`access.rs`).

use std::sync::Arc;
use std::time::Instant;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use quick_cache::sync::Cache;
use weir_config::Route;

/// Entries each cache of a rule keeps at most.
const CACHE_ENTRIES: usize = 4096;

/// One external-auth answer remembered for the duration the rule gives its status: until
/// when, the status (2xx lets requests through, 401 and 403 refuse them), and the headers it
/// brings (copied onto the request when allowed, passed to the client when refused).
#[derive(Clone)]
pub(super) struct Remembered {
    pub(super) until: Instant,
    pub(super) status: StatusCode,
    pub(super) headers: Arc<[(HeaderName, HeaderValue)]>,
}

/// A rule's remembered access answers (see the module docs).
pub struct AccessState {
    pub(super) basic: Option<Cache<[u8; 32], ()>>,
    pub(super) external: Option<Cache<[u8; 32], Remembered>>,
}

impl AccessState {
    /// The caches `route`'s checks use; `None` for a rule without access checks.
    pub fn for_route(route: &Route) -> Option<AccessState> {
        let access = route.access.as_deref()?;
        let cached = access.external.as_ref().is_some_and(|e| e.cache.is_some());
        Some(AccessState {
            basic: access.basic.as_ref().map(|_| Cache::new(CACHE_ENTRIES)),
            external: cached.then(|| Cache::new(CACHE_ENTRIES)),
        })
    }
}
