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

/// Binds a unix socket at `path` with exactly `mode`, never exposed with the
/// umask's mode: it is bound inside a fresh private directory (0700) next to
/// `path`, chmod-ed there, and renamed into place. A stale socket nobody
/// answers on is replaced; one that answers belongs to a running daemon.
pub fn bind_private(path: &Path, mode: u32) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
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
    let parent = path.parent().filter(|d| !d.as_os_str().is_empty());
    let parent = parent.unwrap_or_else(|| Path::new("."));
    let tmpdir = parent.join(format!(".rvswitchd-bind-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmpdir);
    std::fs::DirBuilder::new().mode(0o700).create(&tmpdir)?;
    let tmp = tmpdir.join("s");
    let result = (|| {
        let l = std::os::unix::net::UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)?;
        Ok(l)
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&tmpdir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn binds_with_the_mode_replaces_stale_refuses_live() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/s.sock");
        let l = bind_private(&p, 0o640).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let e = bind_private(&p, 0o600).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        drop(l);
        // Stale now (nobody listens): replaced.
        let _l = bind_private(&p, 0o600).unwrap();
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
