//! Test support (feature `testkit`): builder fixtures, a fake Kubernetes API server, and a
//! fake proxy admin API. Used by the integration tests, the bench and the memory example.
//!
//! - [`fixtures`]: `ingress("app").host(..).path(..)`, `canary_ingress(..).weight(20)`, …
//! - [`fake_api`]: LIST/WATCH/GET/POST/PUT/PATCH from memory, with a global resourceVersion.
//! - [`fake_admin`]: `PUT`/`GET /config` that validates and records every push.
//! - [`world`]: a small cluster for translation tests, and lookups into a translation.
//! - [`wait_for`]: a bounded poll for a condition.

pub mod fake_admin;
pub mod fake_api;
pub mod fixtures;
pub mod synthetic;
pub mod world;

use std::time::{Duration, Instant};

/// Poll `cond` every 10 ms until it returns `Some`, or give up after `limit`.
pub async fn wait_for<T>(limit: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
