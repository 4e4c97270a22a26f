//! The TAP backend, used for `internal` ports (the bridge's own interface) and
//! `tap` ports: a device we create through `/dev/net/tun`.
//!
//! Direction: frames the host stack transmits on the TAP device are what we
//! *receive*; frames we *send* appear to the host as received on it.
//!
//! Lifetime: the device is not persistent, so the kernel deletes it when the
//! last descriptor on it closes — the [`TapNetdev`] and any [`TapTx`] opened
//! from it (a `dup` of the same descriptor). Administrative state (up/down) is
//! left to the administrator, as OVS does for internal ports; tests and
//! callers can use [`super::netlink::set_link_up`].
//!
//! Ownership: one poll thread owns the [`TapNetdev`]; each [`TapTx`] belongs to
//! one other poll thread. No lock or allocation per packet.

use super::sys::{self, errno, io_err, last_err};
use super::vnet::{self, VNET_HDR_LEN};
use super::{Netdev, NetdevError, NetdevTx, TxResult};
use crate::netdev::packet::PacketBatch;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A TAP device we created and own.
pub struct TapNetdev {
    name: String,
    ifindex: u32,
    fd: OwnedFd,
    rx_errors: u64,
}

/// A transmit handle on a TAP device (a duplicate of its descriptor).
pub struct TapTx {
    name: String,
    fd: OwnedFd,
}

impl TapNetdev {
    /// Creates (or attaches to an existing persistent) TAP device `name` with
    /// virtio-net headers and checksum/TSO offloads enabled, non-blocking.
    pub fn open(name: &str) -> Result<TapNetdev, NetdevError> {
        let cname = sys::ifname(name).map_err(|_| NetdevError::Io {
            op: "create tap",
            dev: name.to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a valid interface name",
            ),
        })?;
        // A device handed over by the daemon we replace (`--takeover`) is
        // kept, not recreated: it never lost its last descriptor, so the
        // VM's or container's link on it never went away. The ioctls below
        // set what the predecessor set, and setting them again is harmless.
        if let Some(fd) = crate::util::inherit::take_tap(name) {
            return Self::configure(name, fd);
        }
        // SAFETY: the path is a NUL-terminated literal; the result is checked.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(last_err("open /dev/net/tun", name));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ifreq is a plain C struct (with a union) for which all-zero
        // is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in ifr.ifr_name.iter_mut().zip(cname.as_bytes()) {
            *dst = *src as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as _;
        // SAFETY: TUNSETIFF reads and writes one ifreq, which `ifr` is.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut ifr) } < 0 {
            return Err(last_err("ioctl(TUNSETIFF)", name));
        }
        Self::configure(name, fd)
    }

    /// Virtio-net headers and offloads on an attached TAP descriptor.
    fn configure(name: &str, fd: OwnedFd) -> Result<TapNetdev, NetdevError> {
        let hdr_sz = VNET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, &hdr_sz) } < 0 {
            return Err(last_err("ioctl(TUNSETVNETHDRSZ)", name));
        }
        let offloads = (libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6) as libc::c_ulong;
        // SAFETY: TUNSETOFFLOAD takes its flags by value.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, offloads) } < 0 {
            return Err(last_err("ioctl(TUNSETOFFLOAD)", name));
        }
        let ifindex = sys::ifindex(name)?;
        Ok(TapNetdev {
            name: name.to_string(),
            ifindex,
            fd,
            rx_errors: 0,
        })
    }
}

impl Netdev for TapNetdev {
    fn name(&self) -> &str {
        &self.name
    }

    fn ifindex(&self) -> u32 {
        self.ifindex
    }

    fn rx_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn recv_batch(&mut self, batch: &mut PacketBatch) -> Result<usize, NetdevError> {
        let mut got = 0;
        // Each failed read consumes one frame, so this ends; the bound keeps a
        // misbehaving device from holding the poll thread.
        let mut attempts = 0;
        while attempts < 2 * batch.capacity() {
            attempts += 1;
            let Some(p) = batch.next_slot() else { break };
            let mut hdr = [0u8; VNET_HDR_LEN];
            let area = p.rx_area();
            let cap = area.len();
            let iov = [
                libc::iovec {
                    iov_base: hdr.as_mut_ptr().cast(),
                    iov_len: VNET_HDR_LEN,
                },
                libc::iovec {
                    iov_base: area.as_mut_ptr().cast(),
                    iov_len: cap,
                },
            ];
            // SAFETY: both iovecs point at writable buffers (a stack array and
            // the packet's rx area) that live until readv returns.
            let r = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
            if r < 0 {
                batch.unclaim_last();
                match errno() {
                    libc::EAGAIN | libc::EINTR => break,
                    // The kernel could not describe the frame with a vnet
                    // header and dropped it.
                    libc::EINVAL => {
                        self.rx_errors += 1;
                        continue;
                    }
                    e => {
                        return Err(io_err(
                            "read",
                            &self.name,
                            std::io::Error::from_raw_os_error(e),
                        ))
                    }
                }
            }
            let total = r as usize;
            if total == 0 {
                batch.unclaim_last();
                break;
            }
            // The kernel reports the full length even when it could not copy
            // all of it.
            if total < VNET_HDR_LEN || total - VNET_HDR_LEN > cap {
                batch.unclaim_last();
                self.rx_errors += 1;
                continue;
            }
            let len = total - VNET_HDR_LEN;
            let h = vnet::parse(&hdr);
            if vnet::validate(&h, len).is_err() {
                batch.unclaim_last();
                self.rx_errors += 1;
                continue;
            }
            p.set_len(len);
            p.vnet = h;
            got += 1;
        }
        Ok(got)
    }

    fn send_batch(&mut self, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
        send_batch_on(self.fd.as_raw_fd(), &self.name, batch)
    }

    fn rx_errors(&self) -> u64 {
        self.rx_errors
    }

    fn open_tx(&self) -> Result<Box<dyn NetdevTx>, NetdevError> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| io_err("dup", &self.name, e))?;
        Ok(Box::new(TapTx {
            name: self.name.clone(),
            fd,
        }))
    }
}

impl NetdevTx for TapTx {
    fn send_batch(&mut self, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
        send_batch_on(self.fd.as_raw_fd(), &self.name, batch)
    }
}

/// Writes each live packet (vnet header + frame) with `writev`, then clears
/// the batch. A full queue or a device that is administratively down (EIO)
/// drops frames; a descriptor that lost its device (EBADFD) is an error.
fn send_batch_on(fd: RawFd, name: &str, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
    let mut res = TxResult::default();
    for p in batch.packets() {
        let mut hdr = vnet::emit(&p.vnet);
        let d = p.data();
        let iov = [
            libc::iovec {
                iov_base: hdr.as_mut_ptr().cast(),
                iov_len: VNET_HDR_LEN,
            },
            libc::iovec {
                // The kernel only reads transmit buffers.
                iov_base: d.as_ptr() as *mut libc::c_void,
                iov_len: d.len(),
            },
        ];
        let mut tries = 0;
        loop {
            tries += 1;
            // SAFETY: both iovecs point at live buffers for the whole call.
            let r = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
            if r >= 0 {
                res.sent += 1;
                break;
            }
            match errno() {
                libc::EINTR if tries < 3 => continue,
                e @ (libc::EBADFD | libc::ENXIO | libc::ENODEV) => {
                    batch.clear();
                    return Err(io_err("write", name, std::io::Error::from_raw_os_error(e)));
                }
                _ => {
                    res.dropped += 1;
                    break;
                }
            }
        }
    }
    batch.clear();
    Ok(res)
}
