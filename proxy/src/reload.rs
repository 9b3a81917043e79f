//! File mode: load the table from a file, and reload it on SIGHUP or when the file changes.
//!
//! The file is polled (every second by default) rather than watched with inotify, because
//! Kubernetes ConfigMap volumes change by swapping a symlink, which inotify watches of the
//! file itself miss. A poll only `stat`s the table file and the certificate files it names;
//! they are read and parsed again (on a blocking-pool thread, not the data plane's) when one
//! of them changed, when a change is too recent for file times to tell apart, or on SIGHUP.
//! A reload that fails validation is logged with every error and changes nothing; the
//! table in force keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use weir_config::TableDoc;

use crate::routes::Routes;

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
    read_table(path).map(|table| table.doc)
}

/// A table file as read (see [`read_doc`]), with the stamp of every file read for it, each
/// taken just before that file was read: a watcher compares them to notice a change.
pub struct FileTable {
    pub doc: TableDoc,
    read: Vec<(PathBuf, Option<FileStamp>)>,
}

/// [`read_doc`], keeping what [`watch_file`] needs to notice a change.
pub fn read_table(path: &Path) -> Result<FileTable, FileError> {
    let stamped = |p: &Path| (p.to_path_buf(), stamp(p));
    let mut read = vec![stamped(path)];
    let text =
        std::fs::read_to_string(path).map_err(|source| FileError::Read { path: path.into(), source })?;
    let mut doc: TableDoc =
        serde_yaml_ng::from_str(&text).map_err(|source| FileError::Parse { path: path.into(), source })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut read_file = |file: &str| {
        let p = base.join(file);
        read.push(stamped(&p));
        std::fs::read_to_string(&p).map_err(|source| FileError::Read { path: p, source })
    };
    let tls_docs = doc.tls.iter_mut().filter_map(|t| t.default_certificate.as_mut());
    for tls in tls_docs.chain(doc.hosts.iter_mut().filter_map(|h| h.tls.as_mut())) {
        if let Some(file) = tls.certificate_file.take() {
            tls.certificate = Some(read_file(&file)?);
        }
        if let Some(file) = tls.key_file.take() {
            tls.key = Some(read_file(&file)?);
        }
    }
    Ok(FileTable { doc, read })
}

/// A file as `stat` shows it: enough to notice a change without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Device and inode: a ConfigMap update swaps a symlink to a new file.
    #[cfg(unix)]
    inode: (u64, u64),
}

/// How recent a change must be for file times to be ambiguous: they come from a coarse
/// clock, so two writes of the same length within one tick leave the same stamp. A file
/// changed this recently is read again, whatever its stamp says (as git does for "racy"
/// index entries).
const RACY: Duration = Duration::from_secs(2);

/// The stamps of a set of files (`None` for one that cannot be `stat`ed).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamps(Vec<Option<FileStamp>>);

impl Stamps {
    fn of(files: &[PathBuf]) -> Stamps {
        Stamps(files.iter().map(|f| stamp(f)).collect())
    }

    /// Whether a file changed so recently that a later write could leave the same stamp.
    fn racy(&self) -> bool {
        self.0.iter().flatten().any(|s| s.modified.is_none_or(|t| t.elapsed().map_or(true, |age| age < RACY)))
    }
}

/// `path`'s stamp, `None` when it cannot be `stat`ed.
fn stamp(path: &Path) -> Option<FileStamp> {
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        inode: (meta.dev(), meta.ino()),
    })
}

/// Reload `path` into `routes` on SIGHUP and whenever it (or a certificate file it names)
/// changes. `loaded` is the document already in force.
pub async fn watch_file(path: PathBuf, routes: Arc<Routes>, loaded: FileTable, poll: Duration) {
    let FileTable { doc: mut loaded, read } = loaded;
    // The files the table came from, and their stamps when they were read.
    let (mut files, stamps): (Vec<PathBuf>, _) = read.into_iter().unzip();
    let mut seen = Stamps(stamps);
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
        let now = Stamps::of(&files);
        if !forced && now == seen && !now.racy() {
            continue;
        }
        // Parsing a large table takes milliseconds: not on the data plane's thread.
        let reading = path.clone();
        let read = match tokio::task::spawn_blocking(move || read_table(&reading)).await {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(error = %e, "reading the config file failed; keeping the table in force");
                continue;
            }
        };
        let doc = match read {
            Ok(table) => {
                unreadable = None;
                (files, seen.0) = table.read.into_iter().unzip();
                table.doc
            }
            Err(e) => {
                // Not read again until something changes (or SIGHUP).
                seen = now;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("weir-reload-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn stamps_change_with_the_file_and_a_fresh_change_counts_as_racy() {
        let dir = Scratch::new("stamps");
        let (table, cert) = (dir.0.join("weir.yaml"), dir.0.join("tls.crt"));
        std::fs::write(&table, "one").expect("write");
        std::fs::write(&cert, "pem").expect("write");
        let files = [table.clone(), cert.clone()];
        let first = Stamps::of(&files);
        assert_eq!(Stamps::of(&files), first, "nothing changed");
        assert!(first.racy(), "just written: a same-length write in the same tick would look alike");

        // A certificate named by the table changes length.
        std::fs::write(&cert, "pem, renewed").expect("write");
        let second = Stamps::of(&files);
        assert_ne!(second, first);

        // A ConfigMap-style update: same length, a new file renamed over the old one.
        let staged = dir.0.join("weir.yaml.new");
        std::fs::write(&staged, "two").expect("write");
        std::fs::rename(&staged, &table).expect("rename");
        assert_ne!(Stamps::of(&files), second);

        // A missing file has no stamp, and is not racy.
        std::fs::remove_file(&cert).expect("remove");
        let gone = Stamps::of(&[cert]);
        assert_eq!(gone, Stamps(vec![None]));
        assert!(!gone.racy());
    }

    #[test]
    fn an_old_unchanged_file_is_not_racy() {
        let old = Stamps(vec![Some(FileStamp {
            len: 3,
            modified: Some(SystemTime::now() - Duration::from_secs(60)),
            #[cfg(unix)]
            inode: (1, 2),
        })]);
        assert!(!old.racy());
        let future = Stamps(vec![Some(FileStamp {
            len: 3,
            modified: Some(SystemTime::now() + Duration::from_secs(60)),
            #[cfg(unix)]
            inode: (1, 2),
        })]);
        assert!(future.racy(), "a time in the future says nothing: read it");
    }
}
