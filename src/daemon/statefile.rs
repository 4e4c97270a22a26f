//! Files the daemon keeps between runs (the bridges' state files, see
//! `ofproto::persist`): a private directory, atomic replacement, and a
//! bounded read that never blocks on or follows what a hostile hand put
//! there. Only the bytes: what they mean is the caller's.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Why a state file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// There is none (the usual case at first start).
    #[error("no such file")]
    Missing,
    /// Something other than a regular file is at the path (a symbolic link,
    /// a FIFO, a device, a directory): never read.
    #[error("not a regular file")]
    NotRegular,
    /// Larger than the caller's bound: never read.
    #[error("{size} bytes is larger than the {max}-byte limit")]
    TooLarge {
        /// Its size (at least).
        size: u64,
        /// The bound.
        max: u64,
    },
    /// The OS refused.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Creates `dir` (and its parents) if missing, mode 0700: state files hold
/// the whole OpenFlow configuration of a bridge. An existing path that is
/// not a directory is an error.
pub fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(md) if md.is_dir() => Ok(()),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", dir.display()),
        )),
        Err(_) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir),
    }
}

/// Replaces `path` with `bytes` atomically: written to a temporary file in
/// the same directory (mode 0600, never following a link there), flushed to
/// disk, renamed over `path`, and the directory flushed so the rename
/// survives a crash. A reader sees the old file or the new one, never a
/// part. Callers serialise writes to one path (the temporary name is fixed,
/// so a crashed writer's leftover is reused, not accumulated).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, bytes, 0o600)
}

/// [`write_atomic`] with the new file's permission bits `mode` (the
/// configuration editor keeps the mode the operator gave the file).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        // A leftover may have had another mode.
        f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads `path` if it is a regular file of at most `max` bytes: checked
/// before opening and again on the descriptor (opened without following a
/// link and non-blocking, so nothing swapped in between can stall us), and
/// the read stops at `max + 1` bytes whatever the file does meanwhile.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let check = |md: &std::fs::Metadata| -> Result<(), ReadError> {
        if !md.file_type().is_file() {
            return Err(ReadError::NotRegular);
        }
        if md.len() > max {
            return Err(ReadError::TooLarge {
                size: md.len(),
                max,
            });
        }
        Ok(())
    };
    match std::fs::symlink_metadata(path) {
        Ok(md) => check(&md)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(e.into()),
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    check(&f.metadata()?)?;
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(ReadError::TooLarge {
            size: buf.len() as u64,
            max,
        });
    }
    Ok(buf)
}

/// Removes `path`; true when there was a file. Missing is not an error.
pub fn remove(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_is_private_and_replaces() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a/state");
        ensure_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let p = dir.join("br0.state");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two!").unwrap();
        assert_eq!(read_bounded(&p, 100).unwrap(), b"two!");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("br0.state")]);
        assert!(remove(&p).unwrap());
        assert!(!remove(&p).unwrap());
        // A file where the directory should be is an error.
        let f = d.path().join("file");
        std::fs::write(&f, b"x").unwrap();
        assert!(ensure_dir(&f).is_err());
    }

    #[test]
    fn reads_refuse_missing_large_links_and_fifos() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        assert!(matches!(read_bounded(&p, 10), Err(ReadError::Missing)));
        // Sparse: the size is refused before a byte is read.
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(1 << 40).unwrap();
        assert!(matches!(
            read_bounded(&p, 1 << 20),
            Err(ReadError::TooLarge { .. })
        ));
        let l = d.path().join("link");
        std::os::unix::fs::symlink(&p, &l).unwrap();
        assert!(matches!(read_bounded(&l, 10), Err(ReadError::NotRegular)));
        assert!(matches!(
            read_bounded(d.path(), 10),
            Err(ReadError::NotRegular)
        ));
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            read_bounded(&fifo, 10),
            Err(ReadError::NotRegular)
        ));
        // A link at the temporary name is not followed by a write.
        let target = d.path().join("victim");
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, d.path().join(".x.tmp")).unwrap();
        assert!(write_atomic(&d.path().join("x"), b"new").is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }
}
