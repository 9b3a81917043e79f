//! File mode: load the table from a file, and reload it on SIGHUP or when the file changes.
//!
//! The file is polled (every second by default) rather than watched with inotify, because
//! Kubernetes ConfigMap volumes change by swapping a symlink, which inotify watches of the
//! file itself miss. A reload that fails validation is logged with every error and changes
//! nothing; the table in force keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weir_config::TableDoc;

use crate::snapshot::Routes;

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },
}

/// Read and parse (not validate) a table file.
pub fn read_doc(path: &Path) -> Result<(String, TableDoc), FileError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| FileError::Read { path: path.into(), source })?;
    let doc =
        serde_yaml_ng::from_str(&text).map_err(|source| FileError::Parse { path: path.into(), source })?;
    Ok((text, doc))
}

/// Reload `path` into `routes` on SIGHUP and whenever its content changes.
/// `loaded` is the text of the table already in force.
pub async fn watch_file(path: PathBuf, routes: Arc<Routes>, mut loaded: String, poll: Duration) {
    #[cfg(unix)]
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reloading on file changes only");
            None
        }
    };
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let forced = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        #[cfg(not(unix))]
        let forced = {
            tick.tick().await;
            false
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                if forced {
                    tracing::error!(path = %path.display(), error = %e, "reload failed; keeping the table in force");
                }
                continue;
            }
        };
        if text == loaded && !forced {
            continue;
        }
        let outcome = serde_yaml_ng::from_str::<TableDoc>(&text)
            .map_err(|e| {
                routes.count_rejected();
                e.to_string()
            })
            .and_then(|doc| routes.install(doc).map_err(|e| e.to_string()));
        match outcome {
            Ok(snap) => {
                tracing::info!(path = %path.display(), version = snap.table.version(), generation = snap.generation, "route table reloaded")
            }
            Err(e) => {
                tracing::error!(path = %path.display(), "reload rejected; keeping the table in force: {e}")
            }
        }
        loaded = text;
    }
}
