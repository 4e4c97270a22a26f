//! Small system-call helpers shared by the backends: errno mapping, interface
//! name checks, socket options. Nothing here keeps state.

use super::{LinkLoss, NetdevError};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub(crate) const IFNAME_MAX: usize = libc::IFNAMSIZ - 1;

/// Turns an OS error into a [`NetdevError`], recognising a missing device so
/// that callers can report it the way OVS does.
pub(crate) fn io_err(op: &'static str, dev: &str, source: io::Error) -> NetdevError {
    match source.raw_os_error() {
        Some(libc::ENODEV) => NetdevError::NoSuchDevice(dev.to_string()),
        _ => NetdevError::Io {
            op,
            dev: dev.to_string(),
            source,
        },
    }
}

/// The last OS error as a [`NetdevError`].
pub(crate) fn last_err(op: &'static str, dev: &str) -> NetdevError {
    io_err(op, dev, io::Error::last_os_error())
}

/// A new non-blocking, close-on-exec socket of `domain` and `ty`, owned, for
/// device `dev`; `op` names the call in the error ("socket(AF_PACKET)").
pub(crate) fn socket(
    domain: libc::c_int,
    ty: libc::c_int,
    op: &'static str,
    dev: &str,
) -> Result<std::os::fd::OwnedFd, NetdevError> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(last_err(op, dev));
    }
    // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}

impl NetdevError {
    /// What the error says about the device, if it says it went away or
    /// down: the one place that reads errnos for that (the poll threads
    /// decide from it whether to retry a port).
    ///
    /// - [`LinkLoss::Gone`]: the device no longer exists for this handle
    ///   (ENODEV, ENXIO, a name that cannot exist, or EBADFD from a TAP whose
    ///   device was deleted): polling it again can only fail; the Port actor
    ///   detaches it when rtnetlink reports the deletion.
    /// - [`LinkLoss::Down`]: the interface went down (ENETDOWN): reported
    ///   once per event, and traffic resumes on the same handle when it comes
    ///   back up.
    pub fn link_loss(&self) -> Option<LinkLoss> {
        match self {
            NetdevError::NoSuchDevice(_) => Some(LinkLoss::Gone),
            NetdevError::Io { source, .. } => match source.raw_os_error() {
                Some(libc::ENXIO | libc::ENODEV | libc::EBADFD) => Some(LinkLoss::Gone),
                Some(libc::ENETDOWN) => Some(LinkLoss::Down),
                _ => None,
            },
            NetdevError::UnknownType(_) | NetdevError::Options { .. } => None,
        }
    }

    /// True when the error means the interface went down or away (see
    /// [`NetdevError::link_loss`]). Such errors are reported once per event
    /// (a receive socket stays quiet afterwards), so they never make a poll
    /// loop spin.
    pub fn is_link_down(&self) -> bool {
        self.link_loss().is_some()
    }
}

/// Checks that `name` could be a kernel interface name and returns it as a C
/// string. Names that cannot exist are reported as a missing device.
pub(crate) fn ifname(name: &str) -> Result<CString, NetdevError> {
    if name.is_empty()
        || name.len() > IFNAME_MAX
        || name.contains('/')
        || name.chars().any(char::is_whitespace)
        || name == "."
        || name == ".."
    {
        return Err(NetdevError::NoSuchDevice(name.to_string()));
    }
    CString::new(name).map_err(|_| NetdevError::NoSuchDevice(name.to_string()))
}

/// Looks up the kernel index of an interface.
pub(crate) fn ifindex(name: &str) -> Result<u32, NetdevError> {
    let c = ifname(name)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(last_err("if_nametoindex", name));
    }
    Ok(idx)
}

/// Reads a socket option of plain-C type `T` (all-zero must be a valid `T`).
pub(crate) fn getsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    opt: libc::c_int,
) -> io::Result<T> {
    // SAFETY: callers use plain C structs, for which all-zero is valid.
    let mut val: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` has `len` writable bytes for the duration of the call and
    // `fd` is an open socket borrowed from its owner.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&mut val as *mut T).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(val)
    }
}

/// Sets a socket option whose value is a plain C struct or integer.
pub(crate) fn setsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    opt: libc::c_int,
    val: &T,
) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` points to `len` readable bytes for the duration of the
    // call and `fd` is an open socket borrowed from its owner.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (val as *const T).cast::<libc::c_void>(),
            len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets a socket buffer size, forcing past `rmem_max`/`wmem_max` when we are
/// privileged and falling back to the capped option otherwise.
pub(crate) fn set_buf_size(
    fd: BorrowedFd<'_>,
    force: libc::c_int,
    plain: libc::c_int,
    bytes: libc::c_int,
) -> io::Result<()> {
    setsockopt(fd, libc::SOL_SOCKET, force, &bytes)
        .or_else(|_| setsockopt(fd, libc::SOL_SOCKET, plain, &bytes))
}

/// Maps `len` bytes read-write: of `fd` at `offset`, shared (the rings a
/// socket shares with the kernel), or, without `fd`, fresh anonymous private
/// memory. `populate` maps every page at once (`MAP_POPULATE`). The caller
/// owns the mapping and unmaps it with `munmap(ptr, len)`.
pub(crate) fn mmap(
    fd: Option<BorrowedFd<'_>>,
    len: usize,
    offset: i64,
    populate: bool,
) -> io::Result<std::ptr::NonNull<u8>> {
    let (flags, raw) = match fd {
        Some(f) => (libc::MAP_SHARED, f.as_raw_fd()),
        None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
    };
    let flags = if populate {
        flags | libc::MAP_POPULATE
    } else {
        flags
    };
    // SAFETY: a new mapping at an address of the kernel's choosing, so no
    // existing memory is affected; `fd`, when given, is borrowed open for the
    // call; the result is checked before use.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            raw,
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    std::ptr::NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// The errno of the last failed call.
#[inline]
pub(crate) fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enodev_maps_to_no_such_device() {
        let e = io_err("bind", "eth9", io::Error::from_raw_os_error(libc::ENODEV));
        assert!(matches!(&e, NetdevError::NoSuchDevice(n) if n == "eth9"));
        assert!(e.is_link_down());
        assert_eq!(
            e.to_string(),
            "could not open network device eth9 (No such device)"
        );
    }

    #[test]
    fn other_errors_keep_their_errno_and_context() {
        let e = io_err("send", "veth0", io::Error::from_raw_os_error(libc::EPERM));
        match &e {
            NetdevError::Io { op, dev, source } => {
                assert_eq!(*op, "send");
                assert_eq!(dev, "veth0");
                assert_eq!(source.raw_os_error(), Some(libc::EPERM));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!e.is_link_down());
        for errno in [libc::ENETDOWN, libc::ENXIO] {
            assert!(io_err("send", "x", io::Error::from_raw_os_error(errno)).is_link_down());
        }
        assert!(!NetdevError::UnknownType("vxlan".into()).is_link_down());
    }

    #[test]
    fn impossible_names_are_missing_devices() {
        for bad in ["", "a/b", "..", "sixteen-chars-xx", "a b", "nul\0x"] {
            assert!(
                matches!(ifname(bad), Err(NetdevError::NoSuchDevice(_))),
                "{bad:?}"
            );
        }
        assert!(ifname("fifteen-chars-x").is_ok());
        assert!(matches!(
            ifindex("rvnosuchdev0"),
            Err(NetdevError::NoSuchDevice(_))
        ));
        assert_eq!(ifindex("lo").unwrap(), 1);
    }
}

#[cfg(test)]
mod port_type_tests {
    use super::super::{parse_port_type, PortType};
    use super::NetdevError;

    #[test]
    fn config_type_names() {
        assert_eq!(parse_port_type("system").unwrap(), PortType::System);
        assert_eq!(parse_port_type("internal").unwrap(), PortType::Internal);
        assert_eq!(parse_port_type("tap").unwrap(), PortType::Tap);
        assert_eq!(parse_port_type("afxdp").unwrap(), PortType::Afxdp);
        assert!(matches!(
            parse_port_type("vxlan"),
            Err(NetdevError::UnknownType(t)) if t == "vxlan"
        ));
    }
}

/// Returns the allocator's free memory to the kernel (glibc `malloc_trim`):
/// after a connection that held megabytes of queued replies goes away, its
/// freed segments sit in the thread's arena between live allocations, where
/// glibc keeps them resident until asked. Returns true when memory was
/// released. A no-op on other C libraries.
pub fn trim_heap() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists; it
        // takes no pointers from us and is thread-safe.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// A zero-filled buffer of its own anonymous pages, which the kernel backs
/// only as they are written.
///
/// Why not `vec![0; n]`: a packet slot is 64 KiB so that a GSO super-frame
/// fits, yet most frames touch its first page only. The allocator hands out
/// such slots from a thread arena and has to clear them with `memset`, which
/// made every slot resident at thread start (2 MB per batch of 32). Here the
/// untouched pages cost nothing until a big frame actually lands in them.
///
/// Ownership: the buffer owns its mapping (or, if `mmap` failed, a heap
/// allocation of the same size) and releases it on drop; it moves between
/// threads like a `Box<[u8]>`.
pub struct ZeroedPages {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    /// False when the memory came from the heap fallback.
    mapped: bool,
}

// SAFETY: the buffer is uniquely owned memory with no thread affinity, exactly
// like a `Box<[u8]>`; shared access is read-only through `&[u8]`.
unsafe impl Send for ZeroedPages {}
// SAFETY: as above; `&ZeroedPages` only gives out `&[u8]`.
unsafe impl Sync for ZeroedPages {}

impl ZeroedPages {
    /// `len` zero bytes (at least one).
    pub fn new(len: usize) -> ZeroedPages {
        let len = len.max(1);
        if let Ok(ptr) = mmap(None, len, 0, false) {
            return ZeroedPages {
                ptr,
                len,
                mapped: true,
            };
        }
        // Out of mappings: the heap is still correct, only eager.
        let heap = Box::into_raw(vec![0u8; len].into_boxed_slice());
        ZeroedPages {
            // SAFETY: `Box::into_raw` never returns null.
            ptr: unsafe { std::ptr::NonNull::new_unchecked(heap.cast::<u8>()) },
            len,
            mapped: false,
        }
    }
}

impl std::ops::Deref for ZeroedPages {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` points at `len` initialised (zero-filled or written)
        // bytes that this value owns for its whole life.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for ZeroedPages {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for ZeroedPages {
    fn drop(&mut self) {
        if self.mapped {
            // SAFETY: the mapping was created in `new` with this length and is
            // unmapped once, here; no reference to it outlives `self`.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        } else {
            // SAFETY: the pointer came from `Box::into_raw` of a boxed slice
            // of exactly `len` bytes and is reclaimed once, here.
            drop(unsafe {
                Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.ptr.as_ptr(),
                    self.len,
                ))
            });
        }
    }
}

#[cfg(test)]
mod zeroed_pages_tests {
    use super::ZeroedPages;

    #[test]
    fn zero_filled_writable_and_sized() {
        let mut b = ZeroedPages::new(70_000);
        assert_eq!(b.len(), 70_000);
        assert!(b.iter().all(|&x| x == 0));
        b[69_999] = 7;
        b[0] = 1;
        assert_eq!((b[0], b[69_999]), (1, 7));
        let moved = std::thread::spawn(move || b[69_999]).join().unwrap();
        assert_eq!(moved, 7);
        assert_eq!(ZeroedPages::new(0).len(), 1);
    }
}
