//! The proxy's canary guards (`GET /guards` on its admin API), read for each WeirRoute's
//! status entry: while the table the translation made arms any guard, they are polled every
//! `poll` (1 s), and what changed goes to the status loop, which writes the guard into this
//! replica's entry (so the plugin's VerifyWeight sees a trip) and publishes an Event when one
//! trips.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::push::{AdminClient, ProxyGuards};
use crate::route_status::RouteReports;

/// How often the proxy's guards are read while any is armed.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// Read the proxy's guards while the latest translation arms any, until `shutdown`.
pub async fn guard_loop(
    admin: AdminClient,
    mut reports: watch::Receiver<Option<Arc<RouteReports>>>,
    out: watch::Sender<Arc<ProxyGuards>>,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let armed =
            reports.borrow_and_update().as_ref().is_some_and(|r| r.routes.iter().any(|o| o.guard.is_some()));
        if armed {
            match admin.guards().await {
                Ok(guards) => {
                    out.send_if_modified(|g| {
                        let changed = **g != guards;
                        if changed {
                            *g = Arc::new(guards);
                        }
                        changed
                    });
                }
                Err(error) => tracing::debug!(%error, "could not read the proxy's canary guards"),
            }
        }
        tokio::select! {
            _ = crate::shutdown::stopped(&mut shutdown) => break,
            r = reports.changed() => if r.is_err() { break },
            _ = tokio::time::sleep(poll), if armed => {}
        }
    }
}
