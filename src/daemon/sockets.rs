//! Unix socket files created with an exact mode, never under the umask's:
//! the control socket here, and (for the Connmgr) `punix:` OpenFlow
//! listeners. Any thread may call these; they only touch the file system.

use std::path::Path;

/// Creates `path`'s directory if needed, mode 0755 (root writes, others may
/// reach the sockets their own modes allow), and warns when an existing one
/// lets others replace our sockets (group or world writable without sticky bit).
pub fn ensure_run_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        tracing::warn!(
            "{}: mode {:o} lets other users replace sockets in it",
            dir.display(),
            mode & 0o7777
        );
    }
    Ok(())
}

/// Backlog of unix listening sockets (OpenFlow `punix:` and the control
/// socket): the kernel's maximum (`net.core.somaxconn` caps it), as Rust's
/// own `UnixListener::bind` uses, so a burst of clients waits in the queue
/// rather than being refused while we accept.
const UNIX_BACKLOG: i32 = libc::SOMAXCONN;

/// Resolves a group given by name or number; empty = keep root's group.
fn resolve_group(g: &str) -> std::io::Result<Option<nix::unistd::Gid>> {
    if g.is_empty() {
        return Ok(None);
    }
    if let Ok(n) = g.parse::<u32>() {
        return Ok(Some(nix::unistd::Gid::from_raw(n)));
    }
    match nix::unistd::Group::from_name(g) {
        Ok(Some(gr)) => Ok(Some(gr.gid)),
        Ok(None) => Err(std::io::Error::other(format!("no group named {g:?}"))),
        Err(e) => Err(std::io::Error::from(e)),
    }
}

/// Binds a unix listening socket at `path` whose file has exactly `mode`
/// (and `group`, when not empty), never the umask's idea of it and never
/// briefly more open than that: the socket's own inode is made mode 0 before
/// `bind` (Linux creates the file with the socket inode's mode less the
/// umask, `af_unix.c: unix_bind()`), the owner and mode are set on the file,
/// and only then does it `listen` (before that a `connect` is refused). The
/// directory is made as [`ensure_run_dir`] says. A stale socket nobody
/// answers on is replaced; one that answers belongs to a running daemon and
/// is refused (`AddrInUse`).
pub fn bind_private(
    path: &Path,
    mode: u32,
    group: &str,
) -> std::io::Result<std::os::unix::net::UnixListener> {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    use nix::sys::stat::{fchmod, Mode};
    use std::os::unix::fs::PermissionsExt;
    let gid = resolve_group(group)?;
    // Handed over by the daemon we replace (`--takeover`): the same socket,
    // which never stopped listening; its file, mode and group are as that
    // daemon made them.
    if let Some(l) = crate::util::inherit::take_unix(path) {
        return Ok(l);
    }
    ensure_run_dir(path)?;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a running daemon", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    fchmod(&fd, Mode::empty())?;
    socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &UnixAddr::new(path)?)?;
    if gid.is_some() {
        nix::unistd::chown(path, None, gid)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    socket::listen(
        &fd,
        Backlog::new(UNIX_BACKLOG).map_err(std::io::Error::from)?,
    )?;
    Ok(std::os::unix::net::UnixListener::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn binds_with_the_mode_replaces_stale_refuses_live() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/s.sock");
        let l = bind_private(&p, 0o640, "").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let e = bind_private(&p, 0o600, "").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        drop(l);
        // Stale now (nobody listens): replaced.
        let _l = bind_private(&p, 0o600, "").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["s.sock".to_string()]);
    }
}
