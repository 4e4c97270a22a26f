//! The XDP side of an `afxdp` port: an XSKMAP and a five-instruction XDP
//! program that redirects every frame of a receive queue to the AF_XDP
//! socket registered for that queue, assembled from raw `bpf_insn`s at run
//! time (no C toolchain, no clang BPF target, no object file).
//!
//! The program is the one libxdp and OVS load by default:
//!
//! ```c
//! return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
//! ```
//!
//! A queue with no socket in the map passes its frames to the kernel stack.
//!
//! Ownership: an [`XdpAttachment`] owns the map, the program and the BPF link
//! that attaches the program to the interface (`BPF_LINK_CREATE`, kernel
//! 5.9+). Closing the link's descriptor detaches the program, so it goes away
//! with the port's device handle and with the daemon, even when it is killed:
//! no program is left behind on the interface. It is created by the Port
//! actor's open and then owned (never touched again) by the device the poll
//! thread holds.

use super::NetdevError;
use crate::types::XdpMode;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

// bpf(2) commands.
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
/// `BPF_MAP_TYPE_XSKMAP`.
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
/// `BPF_PROG_TYPE_XDP`.
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type` `BPF_XDP`.
const BPF_XDP: u32 = 37;
/// `src_reg` of an `LD_IMM64` whose immediate is a map file descriptor.
const BPF_PSEUDO_MAP_FD: u8 = 1;
/// Helper `bpf_redirect_map` (`enum bpf_func_id`).
const FN_REDIRECT_MAP: i32 = 51;
/// `XDP_PASS`, the redirect's fallback action.
const XDP_PASS: i32 = 2;
/// Offset of `rx_queue_index` in `struct xdp_md`
/// (data, data_end, data_meta, ingress_ifindex, rx_queue_index).
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;
/// `XDP_FLAGS_SKB_MODE`: generic XDP, run on the kernel's socket buffers.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, run by the driver.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// Bytes of verifier log kept for an error message.
const LOG_BYTES: usize = 16 * 1024;

// Instruction classes, sizes, modes and operations (linux/bpf_common.h).
const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_DW: u8 = 0x18;
const BPF_IMM: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_MOV: u8 = 0xb0;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;

/// One `struct bpf_insn`: opcode, destination and source registers (4 bits
/// each, destination in the low nibble), 16-bit offset, 32-bit immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }

    /// `dst = *(u32 *)(src + off)`.
    pub const fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }

    /// `dst = imm` (64-bit move of a sign-extended 32-bit immediate).
    pub const fn mov64_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }

    /// `dst = map` (the two-slot `LD_IMM64` whose immediate the verifier
    /// replaces with the map's address).
    pub const fn ld_map_fd(dst: u8, fd: i32) -> [Insn; 2] {
        [
            Insn::new(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd),
            Insn::new(0, 0, 0, 0, 0),
        ]
    }

    /// Calls helper `func` (arguments in r1..r5, result in r0).
    pub const fn call(func: i32) -> Insn {
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, func)
    }

    /// Returns r0.
    pub const fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    /// The instruction as the kernel reads it (little-endian host).
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_ne_bytes());
        b[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        b
    }
}

/// The redirect program for the XSKMAP `map_fd`.
pub fn redirect_program(map_fd: i32) -> [Insn; 6] {
    let [ld0, ld1] = Insn::ld_map_fd(1, map_fd);
    [
        // r2 = ctx->rx_queue_index (r1 holds the context on entry).
        Insn::ldx_w(2, 1, XDP_MD_RX_QUEUE_INDEX),
        // r1 = &xsks_map
        ld0,
        ld1,
        // r3 = XDP_PASS: what happens when the queue has no socket.
        Insn::mov64_imm(3, XDP_PASS),
        // r0 = bpf_redirect_map(r1, r2, r3)
        Insn::call(FN_REDIRECT_MAP),
        Insn::exit(),
    ]
}

/// `union bpf_attr` for `BPF_MAP_CREATE` (the leading fields we set; the
/// kernel treats a shorter attribute as zero-extended).
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// `union bpf_attr` for `BPF_MAP_UPDATE_ELEM`.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_LINK_CREATE` (an XDP link needs no more).
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// Calls bpf(2) with `attr`; returns the non-negative result.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised `#[repr(C)]` prefix of `union
    // bpf_attr` of the size passed; the kernel reads (and for some commands
    // writes) only that many bytes, and every pointer stored in it refers to
    // memory the caller keeps alive across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            (attr as *mut T).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A descriptor bpf(2) just returned, owned.
fn owned(r: libc::c_long) -> OwnedFd {
    // SAFETY: a successful BPF_MAP_CREATE, BPF_PROG_LOAD or BPF_LINK_CREATE
    // returns a fresh descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(r as RawFd) }
}

fn io(op: &'static str, dev: &str, e: std::io::Error) -> NetdevError {
    super::sys::io_err(op, dev, e)
}

fn name16(s: &str) -> [u8; 16] {
    let mut n = [0u8; 16];
    for (d, c) in n.iter_mut().zip(s.bytes().take(15)) {
        *d = c;
    }
    n
}

/// The XDP program on an interface, with its map; detached on drop.
pub struct XdpAttachment {
    map: OwnedFd,
    // Held for their lifetime: the link keeps the program attached.
    _prog: OwnedFd,
    _link: OwnedFd,
    /// True when attached in driver (native) mode, false for generic.
    native: bool,
    /// Map entries (the interface's receive queues).
    queues: u32,
}

impl XdpAttachment {
    /// Creates an XSKMAP of `queues` entries, loads the redirect program and
    /// attaches it to `ifindex` as `mode` says: `Native`/`NativeWithZerocopy`
    /// in driver mode only, `Generic` in generic mode only, `BestEffort`
    /// native first, then generic.
    pub fn attach(
        dev: &str,
        ifindex: u32,
        queues: u32,
        mode: XdpMode,
    ) -> Result<XdpAttachment, NetdevError> {
        let queues = queues.max(1);
        let mut m = MapCreateAttr {
            map_type: BPF_MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries: queues,
            map_name: name16("rvsw_xsks"),
            ..MapCreateAttr::default()
        };
        let map = owned(
            bpf(BPF_MAP_CREATE, &mut m).map_err(|e| io("bpf(BPF_MAP_CREATE, XSKMAP)", dev, e))?,
        );
        let prog = load(dev, map.as_raw_fd())?;
        let tries: &[u32] = match mode {
            XdpMode::Native | XdpMode::NativeWithZerocopy => &[XDP_FLAGS_DRV_MODE],
            XdpMode::Generic => &[XDP_FLAGS_SKB_MODE],
            XdpMode::BestEffort => &[XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE],
        };
        let mut last = None;
        for &flags in tries {
            let mut l = LinkCreateAttr {
                prog_fd: prog.as_raw_fd() as u32,
                target_ifindex: ifindex,
                attach_type: BPF_XDP,
                flags,
            };
            match bpf(BPF_LINK_CREATE, &mut l) {
                Ok(fd) => {
                    return Ok(XdpAttachment {
                        map,
                        _prog: prog,
                        _link: owned(fd),
                        native: flags == XDP_FLAGS_DRV_MODE,
                        queues,
                    })
                }
                Err(e) => {
                    tracing::debug!(dev, flags, error = %e, "XDP attach failed");
                    last = Some(e);
                }
            }
        }
        let e = last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL));
        Err(match e.raw_os_error() {
            Some(libc::EBUSY | libc::EEXIST) => NetdevError::Options {
                dev: dev.to_string(),
                msg: format!(
                    "cannot attach the AF_XDP redirect program ({e}): the interface already \
                     has an XDP program"
                ),
            },
            _ => io("bpf(BPF_LINK_CREATE, BPF_XDP)", dev, e),
        })
    }

    /// True when the program runs in the driver (native XDP).
    pub fn native(&self) -> bool {
        self.native
    }

    /// Makes receive queue `queue` redirect to the AF_XDP socket `xsk`.
    pub fn set_socket(&self, dev: &str, queue: u32, xsk: RawFd) -> Result<(), NetdevError> {
        if queue >= self.queues {
            return Err(NetdevError::Options {
                dev: dev.to_string(),
                msg: format!(
                    "receive queue {queue} is past the {} of the map",
                    self.queues
                ),
            });
        }
        let key: u32 = queue;
        let value: u32 = xsk as u32;
        let mut a = MapElemAttr {
            map_fd: self.map.as_raw_fd() as u32,
            key: (&key as *const u32) as u64,
            value: (&value as *const u32) as u64,
            flags: 0, // BPF_ANY
            ..MapElemAttr::default()
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut a).map_err(|e| io("bpf(BPF_MAP_UPDATE_ELEM)", dev, e))?;
        Ok(())
    }
}

/// Loads the redirect program for `map_fd`; the verifier's log is in the
/// error when it refuses.
fn load(dev: &str, map_fd: RawFd) -> Result<OwnedFd, NetdevError> {
    let insns = redirect_program(map_fd);
    let license = c"GPL";
    let mut log = vec![0u8; LOG_BYTES];
    let attr = |log_level: u32, log: &mut [u8]| ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level,
        log_size: if log_level == 0 { 0 } else { log.len() as u32 },
        log_buf: if log_level == 0 {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        prog_name: name16("rvsw_xsk_redir"),
        expected_attach_type: BPF_XDP,
        ..ProgLoadAttr::default()
    };
    // First without a log (cheaper); on refusal again with one, for the message.
    let mut a = attr(0, &mut log);
    match bpf(BPF_PROG_LOAD, &mut a) {
        Ok(fd) => Ok(owned(fd)),
        Err(first) => {
            let mut a = attr(1, &mut log);
            if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut a) {
                return Ok(owned(fd));
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
            Err(NetdevError::Io {
                op: "bpf(BPF_PROG_LOAD, XDP)",
                dev: dev.to_string(),
                source: std::io::Error::new(
                    first.kind(),
                    if text.is_empty() {
                        first.to_string()
                    } else {
                        format!("{first}; verifier log: {text}")
                    },
                ),
            })
        }
    }
}

/// Receive queues of `dev` (entries of `/sys/class/net/DEV/queues/rx-*`),
/// at least 1.
pub fn rx_queues(dev: &str) -> u32 {
    let n = std::fs::read_dir(format!("/sys/class/net/{dev}/queues"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(1);
    u32::try_from(n).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instruction_encodes_as_the_kernel_reads_it() {
        // Bytes as `llvm-objdump -d` prints them for the C program
        // (clang -O2 -target bpf), with the map fd (here 7) in the LD_IMM64.
        let want: [[u8; 8]; 6] = [
            [0x61, 0x12, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00], // r2 = *(u32 *)(r1 + 16)
            [0x18, 0x11, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00], // r1 = map fd 7 ll
            [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            [0xb7, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00], // r3 = 2
            [0x85, 0x00, 0x00, 0x00, 0x33, 0x00, 0x00, 0x00], // call 51
            [0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // exit
        ];
        let got: Vec<[u8; 8]> = redirect_program(7).iter().map(|i| i.to_bytes()).collect();
        assert_eq!(got, want);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn fields_land_in_their_nibbles_and_bytes() {
        let i = Insn::new(0xab, 0x3, 0x9, -2, -1);
        assert_eq!(
            i.to_bytes(),
            [0xab, 0x93, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        // A large fd fills the whole immediate.
        let [ld, zero] = Insn::ld_map_fd(1, 0x0102_0304);
        assert_eq!(&ld.to_bytes()[4..], &[4, 3, 2, 1]);
        assert_eq!(zero.to_bytes(), [0; 8]);
    }

    #[test]
    fn attribute_layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<MapCreateAttr>(), 44);
        assert_eq!(std::mem::size_of::<MapElemAttr>(), 32);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, log_buf), 32);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::size_of::<LinkCreateAttr>(), 16);
    }

    #[test]
    fn names_are_truncated_and_terminated() {
        assert_eq!(&name16("abc")[..4], b"abc\0");
        assert_eq!(name16("0123456789abcdefghij")[15], 0);
    }
}
