//! The one timeout of the test kit, and awaiting within it.

use std::time::Duration;

/// The longest any single step of a test may wait.
pub const WAIT: Duration = Duration::from_secs(20);

/// Await `fut`, failing the test with `what` if it takes longer than [`WAIT`].
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}
