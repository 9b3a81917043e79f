//! The admin API's Unix domain socket: mode 0600 from the moment it can be connected to.
//!
//! The socket is bound under a temporary name beside `path`, made 0600, then renamed into
//! place, so no client ever finds it with the umask's mode. A socket file left at `path` by a
//! weir that died is replaced; a live one (something accepts on it) and anything that is not
//! a socket are refused, never deleted.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use tokio::net::UnixListener;

/// The socket's mode: read and write for weir's user only.
pub const MODE: u32 = 0o600;

/// Bind the admin socket at `path` (see the module docs).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, "another process serves on it"));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "the path exists and is not a socket"))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = Path::new(&tmp);
    let _ = std::fs::remove_file(tmp);
    let listener = std::os::unix::net::UnixListener::bind(tmp)?;
    let placed = std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(MODE))
        .and_then(|()| std::fs::rename(tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

/// Remove the socket file at shutdown.
pub fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::debug!(path = %path.display(), error = %e, "cannot remove the admin socket");
    }
}
