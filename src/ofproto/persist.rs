//! The bridge state file, with no I/O: a bridge's OpenFlow rules, groups and
//! meters as bytes ([`encode`]), the checks a file must pass before anything
//! in it is believed ([`decode`]), and its restoration through the same
//! request path a controller's FLOW_MOD, GROUP_MOD and METER_MOD take
//! ([`restore`]), so a restored table holds nothing a controller could not
//! have installed.
//!
//! Open vSwitch has no such file: its tables die with `ovs-vswitchd`, and
//! upgrades use the `ovs-save` script, which dumps the flows with `ovs-ofctl`
//! and re-adds them after start. Here the daemon keeps the file itself, so a
//! restart of a `fail_mode = "secure"` bridge forwards as the controller
//! left it before any controller is back.
//!
//! Layout (all integers big-endian):
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `RVSWSTAT` |
//! | 4 | format ([`FORMAT`]) |
//! | 2 + n | length and text of the daemon version that wrote it |
//! | 8 | fingerprint of the bridge's configuration (the caller's) |
//! | 8 | wall-clock seconds at save (for the log) |
//! | 4 × 3 | number of meters, groups, rules |
//! | … | the entries: OpenFlow 1.3 METER_MOD, GROUP_MOD, FLOW_MOD (ADD) messages, in that order, each framed by its own header |
//! | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! The entries are our own wire codec's messages, so the file needs no second
//! encoding of matches, instructions, buckets and bands, and decoding a
//! hostile file is the decoder a hostile controller already meets.
//!
//! What is kept and what is not: match, priority, cookie, flags, idle and
//! hard timeouts and instructions of every rule in every table; type and
//! buckets of every group; flags and bands of every meter. Counters and
//! durations start again from zero. Timeouts restart when the file is
//! restored: an idle timeout runs in full, a hard timeout runs for what was
//! left of it when the file was written (so the restored rule reports that
//! remainder as its hard timeout); a rule whose hard timeout had already
//! passed is not written.
//!
//! Order, so that every entry passes the checks a controller's would: meters
//! and groups before the rules that use them, a group after the groups its
//! buckets name, and in each table the rules with OFPFF_CHECK_OVERLAP first
//! (two such rules never overlap each other, since the later one was checked
//! against the earlier; a rule without the flag was never checked).

use super::request::{Answer, Effects, OfReply, Requests};
use super::{validate, TablesSnapshot};
use crate::openflow::action::Instruction;
use crate::openflow::message::{
    FlowMod, FlowModCommand, GroupMod, GroupModCommand, Message, MeterMod, MeterModCommand, OfpMsg,
    FF_CHECK_OVERLAP,
};
use crate::openflow::{decode_in, encode_in, frame_len, Version};
use crate::types::GroupId;

/// First bytes of every state file.
pub const MAGIC: [u8; 8] = *b"RVSWSTAT";
/// Layout version this daemon writes and reads.
pub const FORMAT: u32 = 1;
/// Largest state file read or written. A rule takes about a hundred bytes,
/// so a million rules fit; a larger file is refused unread (hostile input:
/// the file decides how much memory and time restoring costs).
pub const MAX_STATE_BYTES: u64 = 256 << 20;
/// Longest daemon version string in a header.
const MAX_VERSION_LEN: usize = 64;
/// Fixed part of the header after the version string.
const FIXED_AFTER_VERSION: usize = 8 + 8 + 4 * 3;
/// The smallest possible file: magic, format, empty version, fixed part, CRC.
const MIN_LEN: usize = 8 + 4 + 2 + FIXED_AFTER_VERSION + 4;
/// Refusals of restored entries named in the log, at most.
const MAX_REFUSALS_KEPT: usize = 8;

/// Who wrote a file and for what: written into the header, and what a file
/// must match to be restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateMeta {
    /// The daemon's version (`CARGO_PKG_VERSION`).
    pub daemon_version: String,
    /// A hash of the bridge's configuration that the rules depend on (name,
    /// datapath id, port set); computed by the caller.
    pub fingerprint: u64,
}

/// A state file's bytes and what went into them.
#[derive(Debug)]
pub struct Encoded {
    /// The whole file.
    pub bytes: Vec<u8>,
    /// Rules written.
    pub rules: usize,
    /// Groups written.
    pub groups: usize,
    /// Meters written.
    pub meters: usize,
    /// Rules left out because their hard timeout had passed.
    pub expired: usize,
    /// Entries our encoder refused (none is expected: each was decoded from a
    /// controller's message once); the caller logs them.
    pub unencodable: usize,
}

/// Writes the snapshot's rules, groups and meters as a state file.
/// `now_ms` is [`crate::util::time::now_ms`] time, to compute what is left
/// of hard timeouts; `wall_secs` goes into the header.
pub fn encode(snap: &TablesSnapshot, meta: &StateMeta, now_ms: u64, wall_secs: u64) -> Encoded {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT.to_be_bytes());
    let v = meta.daemon_version.as_bytes();
    let v = &v[..v.len().min(MAX_VERSION_LEN)];
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
    out.extend_from_slice(&meta.fingerprint.to_be_bytes());
    out.extend_from_slice(&wall_secs.to_be_bytes());
    let counts_at = out.len();
    out.extend_from_slice(&[0; 12]);
    let mut e = Encoded {
        bytes: Vec::new(),
        rules: 0,
        groups: 0,
        meters: 0,
        expired: 0,
        unencodable: 0,
    };
    let mut meters: Vec<_> = snap.meters.values().collect();
    meters.sort_by_key(|m| m.id);
    for m in meters {
        let mm = MeterMod {
            command: MeterModCommand::Add,
            flags: m.flags,
            meter_id: m.id,
            bands: m.bands.clone(),
        };
        match put(&mut out, Message::MeterMod(mm)) {
            true => e.meters += 1,
            false => e.unencodable += 1,
        }
    }

    for id in groups_children_first(snap) {
        let Some(g) = snap.groups.get(&id) else {
            continue;
        };
        let gm = GroupMod {
            command: GroupModCommand::Add,
            group_type: g.group_type,
            group_id: g.id,
            buckets: g.buckets.clone(),
        };
        match put(&mut out, Message::GroupMod(gm)) {
            true => e.groups += 1,
            false => e.unencodable += 1,
        }
    }

    for t in &snap.tables {
        let mut rules = Vec::with_capacity(t.len());
        t.for_each(|r| rules.push(r.clone()));
        // Stable: otherwise the classifier's order.
        rules.sort_by_key(|r| r.flags & FF_CHECK_OVERLAP == 0);
        for r in rules {
            let hard_timeout = match remaining_hard_timeout(r.hard_timeout, r.created_ms, now_ms) {
                Some(h) => h,
                None => {
                    e.expired += 1;
                    continue;
                }
            };
            let fm = FlowMod {
                cookie: r.cookie,
                idle_timeout: r.idle_timeout,
                hard_timeout,
                flags: r.flags,
                ..FlowMod::new(
                    FlowModCommand::Add,
                    r.table_id,
                    r.priority,
                    r.match_(),
                    r.instructions.iter().cloned().collect::<Vec<Instruction>>(),
                )
            };
            match put(&mut out, Message::FlowMod(fm)) {
                true => e.rules += 1,
                false => e.unencodable += 1,
            }
        }
    }

    let counts = [e.meters, e.groups, e.rules].map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    for (i, n) in counts.iter().enumerate() {
        out[counts_at + 4 * i..counts_at + 4 * i + 4].copy_from_slice(&n.to_be_bytes());
    }
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    e.bytes = out;
    e
}

/// Appends one entry; false (and `out` unchanged) when it does not encode.
fn put(out: &mut Vec<u8>, body: Message) -> bool {
    encode_in(Version::V1_3, &OfpMsg { xid: 0, body }, out).is_ok()
}

/// What is left of a hard timeout of `hard` seconds on a rule created at
/// `created_ms`, in whole seconds rounded up (0 = none); `None` once it has
/// passed.
fn remaining_hard_timeout(hard: u16, created_ms: u64, now_ms: u64) -> Option<u16> {
    if hard == 0 {
        return Some(0);
    }
    let left_ms = (u64::from(hard) * 1000).checked_sub(now_ms.saturating_sub(created_ms))?;
    if left_ms == 0 {
        return None;
    }
    Some(u16::try_from(left_ms.div_ceil(1000)).unwrap_or(hard))
}

/// Every group id, each after the groups its buckets name (group actions and
/// `watch_group`), so that GROUP_MOD ADD finds them (a group action must
/// name an existing group). The graph has no loop (GROUP_MOD refuses one);
/// the visited set keeps a walk finite whatever it holds.
fn groups_children_first(snap: &TablesSnapshot) -> Vec<GroupId> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mark {
        OnPath,
        Done,
    }
    let mut ids: Vec<GroupId> = snap.groups.keys().copied().collect();
    ids.sort();
    let mut mark: hashbrown::HashMap<GroupId, Mark> = hashbrown::HashMap::new();
    let mut order = Vec::with_capacity(ids.len());
    for root in ids {
        // Iterative post-order: `(group, children already pushed)`. A child
        // on the current path (a loop) or already done is not pushed again;
        // one pushed twice before its first visit is skipped the second time.
        let mut stack = vec![(root, false)];
        while let Some((g, expanded)) = stack.pop() {
            if expanded {
                mark.insert(g, Mark::Done);
                order.push(g);
                continue;
            }
            if mark.contains_key(&g) {
                continue;
            }
            let Some(group) = snap.groups.get(&g) else {
                continue;
            };
            mark.insert(g, Mark::OnPath);
            stack.push((g, true));
            for c in validate::group_children(&group.buckets) {
                if snap.groups.contains_key(&c) && !mark.contains_key(&c) {
                    stack.push((c, false));
                }
            }
        }
    }
    debug_assert!(mark.values().all(|m| *m == Mark::Done));
    order
}

/// Why a state file was not restored. Each is logged as a warning and counted
/// by [`Refused::reason`]; the bridge then starts with empty tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Larger than [`MAX_STATE_BYTES`].
    #[error("{0} bytes is larger than the {MAX_STATE_BYTES}-byte limit for a state file")]
    TooLarge(u64),
    /// Does not start with [`MAGIC`].
    #[error("not an rvswitchd state file (bad magic)")]
    NotStateFile,
    /// Ends before its header or checksum does.
    #[error("truncated ({0} bytes)")]
    Truncated(usize),
    /// The checksum does not match (a torn or damaged file).
    #[error("checksum mismatch (damaged or truncated)")]
    Checksum,
    /// Another layout version.
    #[error("format {found}; this daemon reads format {FORMAT}")]
    Format {
        /// What the file says.
        found: u32,
    },
    /// Written by another daemon version.
    #[error("written by rvswitchd {found:?}; this is rvswitchd {ours:?}")]
    Version {
        /// What the file says.
        found: String,
        /// Ours.
        ours: String,
    },
    /// Written for another configuration of the bridge.
    #[error(
        "written for another configuration of the bridge (its name, datapath id or ports \
         changed)"
    )]
    Config,
    /// Checksummed but not what we write (a bug, or a file forged to pass).
    #[error("corrupt: {0}")]
    Corrupt(String),
}

/// [`Refused`] grouped for counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedReason {
    /// Bad magic, truncated, checksum, undecodable entries, too large.
    Corrupt,
    /// Another format or daemon version.
    Version,
    /// Another configuration of the bridge.
    Config,
}

impl Refused {
    /// The counter this refusal goes to.
    pub fn reason(&self) -> RefusedReason {
        match self {
            Refused::Format { .. } | Refused::Version { .. } => RefusedReason::Version,
            Refused::Config => RefusedReason::Config,
            _ => RefusedReason::Corrupt,
        }
    }
}

/// A state file that passed every check, borrowed from its bytes: the entries
/// are decoded again, one at a time, while they are restored (so restoring a
/// large file holds one decoded entry at a time, not all of them).
#[derive(Debug)]
pub struct Saved<'a> {
    /// Meters in the file.
    pub meters: usize,
    /// Groups in the file.
    pub groups: usize,
    /// Rules in the file.
    pub rules: usize,
    /// Wall-clock seconds when it was written.
    pub saved_wall_secs: u64,
    entries: &'a [u8],
}

/// Reads big-endian integers off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Refused> {
        if self.0.len() < n {
            return Err(Refused::Corrupt("header runs past the end".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u16(&mut self) -> Result<u16, Refused> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, Refused> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Refused> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
}

/// What kind of entry comes where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Meter,
    Group,
    Rule,
}

/// Iterates the entries of a checked body: `(kind, message)`, or an error at
/// the first entry that does not decode as what the counts say it must be.
fn entries<'a>(
    body: &'a [u8],
    counts: [usize; 3],
) -> impl Iterator<Item = Result<(Kind, OfpMsg), Refused>> + 'a {
    let kinds = [Kind::Meter, Kind::Group, Kind::Rule];
    let mut rest = body;
    let mut kind_i = 0;
    let mut left = counts[0];
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        while kind_i < 3 && left == 0 {
            kind_i += 1;
            left = counts.get(kind_i).copied().unwrap_or(0);
        }
        let mut fail = |m: String| {
            failed = true;
            Some(Err(Refused::Corrupt(m)))
        };
        if kind_i >= 3 {
            if rest.is_empty() {
                return None;
            }
            return fail(format!("{} bytes after the last entry", rest.len()));
        }
        let kind = kinds[kind_i];
        let n = match frame_len(rest) {
            Ok(Some(n)) if n <= rest.len() => n,
            Ok(_) => return fail(format!("{kind:?} entry runs past the end")),
            Err(e) => return fail(format!("{kind:?} entry: {e}")),
        };
        let (msg, tail) = rest.split_at(n);
        rest = tail;
        left -= 1;
        let m = match decode_in(Version::V1_3, msg) {
            Ok(m) => m,
            Err(e) => return fail(format!("{kind:?} entry does not decode: {:?}", e.error)),
        };
        let ok = match (&m.body, kind) {
            (Message::MeterMod(mm), Kind::Meter) => mm.command == MeterModCommand::Add,
            (Message::GroupMod(gm), Kind::Group) => gm.command == GroupModCommand::Add,
            (Message::FlowMod(fm), Kind::Rule) => fm.command == FlowModCommand::Add,
            _ => false,
        };
        if !ok {
            return fail(format!("a {kind:?} entry is another message"));
        }
        Some(Ok((kind, m)))
    })
}

/// Checks a state file: size, magic, format, checksum, daemon version,
/// configuration fingerprint, then every entry (each must decode as the ADD
/// message its place says). Nothing is applied here.
pub fn decode<'a>(bytes: &'a [u8], expect: &StateMeta) -> Result<Saved<'a>, Refused> {
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(Refused::TooLarge(bytes.len() as u64));
    }
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(Refused::NotStateFile);
    }
    let mut r = Reader(&bytes[MAGIC.len()..]);
    let format = r.u32().map_err(|_| Refused::Truncated(bytes.len()))?;
    if format != FORMAT {
        return Err(Refused::Format { found: format });
    }
    if bytes.len() < MIN_LEN {
        return Err(Refused::Truncated(bytes.len()));
    }
    let (content, crc) = bytes.split_at(bytes.len() - 4);
    if crc32(content) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(Refused::Checksum);
    }
    let mut r = Reader(&content[MAGIC.len() + 4..]);
    let vlen = usize::from(r.u16()?);
    if vlen > MAX_VERSION_LEN {
        return Err(Refused::Corrupt(format!("version string of {vlen} bytes")));
    }
    let found = String::from_utf8_lossy(r.take(vlen)?).into_owned();
    if found != expect.daemon_version {
        return Err(Refused::Version {
            found,
            ours: expect.daemon_version.clone(),
        });
    }
    if r.u64()? != expect.fingerprint {
        return Err(Refused::Config);
    }
    let saved_wall_secs = r.u64()?;
    let counts = [r.u32()?, r.u32()?, r.u32()?].map(|n| n as usize);
    let body = r.0;
    // Each entry has at least an 8-byte header: counts the body cannot hold
    // are refused before any decoding.
    if counts.iter().sum::<usize>() > body.len() / 8 {
        return Err(Refused::Corrupt(format!(
            "{counts:?} entries cannot fit in {} bytes",
            body.len()
        )));
    }
    for e in entries(body, counts) {
        e?;
    }
    Ok(Saved {
        meters: counts[0],
        groups: counts[1],
        rules: counts[2],
        saved_wall_secs,
        entries: body,
    })
}

/// What [`restore`] installed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Rules installed.
    pub rules: usize,
    /// Groups installed.
    pub groups: usize,
    /// Meters installed.
    pub meters: usize,
    /// Entries the request path refused (with the first few reasons).
    pub refused: usize,
    /// Up to a few `"{kind} {n}: {error}"` for the log.
    pub refusals: Vec<String>,
}

/// Applies a checked file through [`Requests::handle`], exactly as if a
/// controller had sent its entries (the same validation, the same effects:
/// meters reach the datapath through `fx.ops`). An entry the switch refuses
/// now (it cannot, unless the rules of validation changed, which a new
/// daemon version would do, and that is refused earlier) is counted and
/// skipped; the others are installed. The flow tables are emptied first
/// (a standalone bridge starts with a NORMAL rule: the file says whether the
/// controller kept it); groups and meters are expected empty, as they are
/// when a bridge starts.
pub fn restore(
    rq: &mut Requests<'_>,
    saved: &Saved<'_>,
    now_ms: u64,
    fx: &mut Effects,
) -> Restored {
    let mut out = Restored::default();
    let clear = FlowMod::new(
        FlowModCommand::Delete,
        crate::types::TableId::ALL,
        0,
        crate::openflow::oxm::Match::default(),
        Vec::new(),
    );
    let before = fx.answers.len();
    rq.handle(
        OfpMsg {
            xid: 0,
            body: Message::FlowMod(clear),
        },
        &[],
        now_ms,
        fx,
    );
    fx.answers.truncate(before);
    // Nobody is connected yet to hear about the rules just cleared.
    fx.events.clear();
    let counts = [saved.meters, saved.groups, saved.rules];
    for (i, e) in entries(saved.entries, counts).enumerate() {
        // `decode` checked every entry: an error cannot occur here, but if it
        // did the rest would be skipped, counted.
        let (kind, mut msg) = match e {
            Ok(x) => x,
            Err(err) => {
                out.refused += 1;
                out.refusals.push(err.to_string());
                break;
            }
        };
        msg.xid = u32::try_from(i).unwrap_or(u32::MAX);
        let before = fx.answers.len();
        rq.handle(msg, &[], now_ms, fx);
        // FLOW_MOD, GROUP_MOD and METER_MOD answer only with an error.
        let errors: Vec<Answer> = fx.answers.drain(before..).collect();
        if errors.is_empty() {
            match kind {
                Kind::Meter => out.meters += 1,
                Kind::Group => out.groups += 1,
                Kind::Rule => out.rules += 1,
            }
            continue;
        }
        out.refused += 1;
        if out.refusals.len() < MAX_REFUSALS_KEPT {
            for a in errors {
                if let Answer::Reply(OfReply::Error { error, .. }) = a {
                    out.refusals.push(format!("{kind:?} entry {i}: {error}"));
                }
            }
        }
    }
    out
}

pub use crate::util::crc::crc32;

#[cfg(test)]
mod tests;
