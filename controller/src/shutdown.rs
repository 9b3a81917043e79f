//! The shutdown signal shared by the controller's long-running loops.

/// Resolves once the shutdown flag turns true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
