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

/// Read and parse (not validate) a table file, and read the certificate files it names
/// (relative paths are taken from the file's folder) into inline PEM.
pub fn read_doc(path: &Path) -> Result<TableDoc, FileError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| FileError::Read { path: path.into(), source })?;
    let mut doc: TableDoc =
        serde_yaml_ng::from_str(&text).map_err(|source| FileError::Parse { path: path.into(), source })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let read = |file: &str| {
        let p = base.join(file);
        std::fs::read_to_string(&p).map_err(|source| FileError::Read { path: p, source })
    };
    let tls_docs = doc.tls.iter_mut().filter_map(|t| t.default_certificate.as_mut());
    for tls in tls_docs.chain(doc.hosts.iter_mut().filter_map(|h| h.tls.as_mut())) {
        if let Some(file) = tls.certificate_file.take() {
            tls.certificate = Some(read(&file)?);
        }
        if let Some(file) = tls.key_file.take() {
            tls.key = Some(read(&file)?);
        }
    }
    Ok(doc)
}

/// Reload `path` into `routes` on SIGHUP and whenever it (or a certificate file it names)
/// changes. `loaded` is the document already in force.
pub async fn watch_file(path: PathBuf, routes: Arc<Routes>, mut loaded: TableDoc, poll: Duration) {
    #[cfg(unix)]
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reloading on file changes only");
            None
        }
    };
    // Said once the SIGHUP handler is installed: until then SIGHUP would end the process.
    tracing::info!(path = %path.display(), every = ?poll, "watching the config file; SIGHUP reloads it");
    // The first check is one period from now: the text in force was read just before.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What the last failed attempt read, so a bad file is reported once, not every tick.
    let mut rejected: Option<TableDoc> = None;
    let mut unreadable: Option<String> = None;
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
        let doc = match read_doc(&path) {
            Ok(doc) => {
                unreadable = None;
                doc
            }
            Err(e) => {
                // Reported (and counted as a rejected reload) once per distinct failure.
                let message = e.to_string();
                if forced || unreadable.as_deref() != Some(message.as_str()) {
                    tracing::error!("reload failed; keeping the table in force: {message}");
                    routes.count_rejected();
                    unreadable = Some(message);
                }
                continue;
            }
        };
        if !forced && (doc == loaded || rejected.as_ref() == Some(&doc)) {
            continue;
        }
        match routes.install(doc.clone()) {
            Ok(snap) => {
                tracing::info!(path = %path.display(), version = snap.table.version(), generation = snap.generation, "route table reloaded");
                loaded = doc;
                rejected = None;
            }
            Err(e) => {
                tracing::error!(path = %path.display(), "reload rejected; keeping the table in force: {e}");
                rejected = Some(doc);
            }
        }
    }
}
