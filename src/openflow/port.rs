//! Ports on the wire: `ofp_port` (OF1.3.5 §7.2.1), PORT_STATUS (§7.4.3),
//! PORT_MOD (§7.3.4) and the OFPMP_PORT_STATS entry (§7.3.5.6), in the OF1.3
//! layouts and the property-based OF1.4+ ones (OF1.4.1 §7.2.1, §7.3.4.3,
//! §7.3.5.7), where the Ethernet features and the error counters moved into
//! an OFPPDPT_ETHERNET / OFPPMPT_ETHERNET / OFPPSPT_ETHERNET property.

use super::error::OfpError;
use super::framing::Version;
use super::message::{PortDesc, PortMod, PortStats, PortStatus};
use super::prop;
use super::wire::{Field, FieldsMut, Reader};
use crate::types::{MacAddr, PortNo};

/// `ofp_port` (the name is OFP_MAX_PORT_NAME_LEN = 16 bytes).
pub(crate) mod desc {
    use super::Field;
    pub(crate) const PORT_NO: Field = 0..4;
    pub(crate) const HW_ADDR: Field = 8..14;
    pub(crate) const NAME: Field = 16..32;
    pub(crate) const CONFIG: Field = 32..36;
    pub(crate) const STATE: Field = 36..40;
    pub(crate) const CURR: Field = 40..44;
    pub(crate) const ADVERTISED: Field = 44..48;
    pub(crate) const SUPPORTED: Field = 48..52;
    pub(crate) const PEER: Field = 52..56;
    pub(crate) const CURR_SPEED: Field = 56..60;
    pub(crate) const MAX_SPEED: Field = 60..64;
    pub(crate) const LEN: usize = 64;
}

/// One `ofp_port` from `r`.
pub(crate) fn parse_desc(r: &mut Reader<'_>) -> Result<PortDesc, OfpError> {
    use desc as F;
    let b = r.fixed(F::LEN)?;
    Ok(PortDesc {
        port_no: PortNo(b.u32(F::PORT_NO)),
        hw_addr: MacAddr(b.mac(F::HW_ADDR)),
        name: b.string(F::NAME),
        config: b.u32(F::CONFIG),
        state: b.u32(F::STATE),
        curr: b.u32(F::CURR),
        advertised: b.u32(F::ADVERTISED),
        supported: b.u32(F::SUPPORTED),
        peer: b.u32(F::PEER),
        curr_speed: b.u32(F::CURR_SPEED),
        max_speed: b.u32(F::MAX_SPEED),
    })
}

pub(crate) fn emit_desc(out: &mut Vec<u8>, p: &PortDesc) {
    use desc as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::PORT_NO, p.port_no.0)
        .set_bytes(F::HW_ADDR, &p.hw_addr.0)
        .set_string(F::NAME, &p.name)
        .set_u32(F::CONFIG, p.config)
        .set_u32(F::STATE, p.state)
        .set_u32(F::CURR, p.curr)
        .set_u32(F::ADVERTISED, p.advertised)
        .set_u32(F::SUPPORTED, p.supported)
        .set_u32(F::PEER, p.peer)
        .set_u32(F::CURR_SPEED, p.curr_speed)
        .set_u32(F::MAX_SPEED, p.max_speed);
    b.emit(out);
}

/// `ofp14_port` before its properties.
pub(crate) mod desc14 {
    use super::Field;
    pub(crate) const PORT_NO: Field = 0..4;
    pub(crate) const LENGTH: Field = 4..6;
    pub(crate) const HW_ADDR: Field = 8..14;
    pub(crate) const NAME: Field = 16..32;
    pub(crate) const CONFIG: Field = 32..36;
    pub(crate) const STATE: Field = 36..40;
    pub(crate) const LEN: usize = 40;
}

/// OFPPDPT_ETHERNET: the Ethernet features of an OF1.4+ port.
mod eth_prop {
    use super::Field;
    pub(super) const TYPE: u16 = 0;
    pub(super) const CURR: Field = 8..12;
    pub(super) const ADVERTISED: Field = 12..16;
    pub(super) const SUPPORTED: Field = 16..20;
    pub(super) const PEER: Field = 20..24;
    pub(super) const CURR_SPEED: Field = 24..28;
    pub(super) const MAX_SPEED: Field = 28..32;
    /// The property's length, header included (4 bytes of padding after
    /// the header).
    pub(super) const LEN: usize = 32;
}

/// One `ofp14_port` (length field first, properties after): an Ethernet
/// property fills the features; unknown properties (optical, experimenter)
/// are skipped, as Open vSwitch does.
pub(crate) fn parse_desc14(r: &mut Reader<'_>) -> Result<PortDesc, OfpError> {
    use desc14 as F;
    let len = r.peek_u16(F::LENGTH.start)? as usize;
    if len < F::LEN {
        return Err(OfpError::BadLen);
    }
    let mut e = r.sub(len, OfpError::BadLen)?;
    let b = e.fixed(F::LEN)?;
    let mut p = PortDesc {
        port_no: PortNo(b.u32(F::PORT_NO)),
        hw_addr: MacAddr(b.mac(F::HW_ADDR)),
        name: b.string(F::NAME),
        config: b.u32(F::CONFIG),
        state: b.u32(F::STATE),
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 0,
        max_speed: 0,
    };
    prop::for_each(e, |t, body| {
        if t == eth_prop::TYPE {
            let b = prop::fixed(body, eth_prop::LEN)?;
            p.curr = b.u32(eth_prop::CURR);
            p.advertised = b.u32(eth_prop::ADVERTISED);
            p.supported = b.u32(eth_prop::SUPPORTED);
            p.peer = b.u32(eth_prop::PEER);
            p.curr_speed = b.u32(eth_prop::CURR_SPEED);
            p.max_speed = b.u32(eth_prop::MAX_SPEED);
        }
        Ok(())
    })?;
    Ok(p)
}

pub(crate) fn emit_desc14(out: &mut Vec<u8>, p: &PortDesc) {
    use desc14 as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::PORT_NO, p.port_no.0)
        .set_u16(F::LENGTH, (F::LEN + eth_prop::LEN) as u16)
        .set_bytes(F::HW_ADDR, &p.hw_addr.0)
        .set_string(F::NAME, &p.name)
        .set_u32(F::CONFIG, p.config)
        .set_u32(F::STATE, p.state);
    b.emit(out);
    let mut e = FieldsMut::<{ eth_prop::LEN }>::new();
    e.set_u16(prop::TYPE, eth_prop::TYPE)
        .set_u16(prop::LENGTH, eth_prop::LEN as u16)
        .set_u32(eth_prop::CURR, p.curr)
        .set_u32(eth_prop::ADVERTISED, p.advertised)
        .set_u32(eth_prop::SUPPORTED, p.supported)
        .set_u32(eth_prop::PEER, p.peer)
        .set_u32(eth_prop::CURR_SPEED, p.curr_speed)
        .set_u32(eth_prop::MAX_SPEED, p.max_speed);
    e.emit(out);
}

/// One port description in version `v`'s layout.
pub(crate) fn parse_desc_in(v: Version, r: &mut Reader<'_>) -> Result<PortDesc, OfpError> {
    if v >= Version::V1_4 {
        parse_desc14(r)
    } else {
        parse_desc(r)
    }
}

pub(crate) fn emit_desc_in(v: Version, out: &mut Vec<u8>, p: &PortDesc) {
    if v >= Version::V1_4 {
        emit_desc14(out, p)
    } else {
        emit_desc(out, p)
    }
}

/// A list of port descriptions filling all of `r`.
pub(crate) fn parse_desc_list(v: Version, mut r: Reader<'_>) -> Result<Vec<PortDesc>, OfpError> {
    if v < Version::V1_4 {
        return r.fixed_entries(desc::LEN, parse_desc);
    }
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(parse_desc14(&mut r)?);
    }
    Ok(out)
}

/// `ofp_port_status` after the header: reason, 7 bytes of padding, the port.
mod status {
    pub(super) const REASON: usize = 0;
    pub(super) const HEAD_LEN: usize = 8;
}

pub(crate) fn parse_status(v: Version, mut r: Reader<'_>) -> Result<PortStatus, OfpError> {
    if v < Version::V1_4 && r.remaining() != status::HEAD_LEN + desc::LEN {
        return Err(OfpError::BadLen);
    }
    let head = r.fixed(status::HEAD_LEN)?;
    let desc = parse_desc_in(v, &mut r)?;
    if !r.is_empty() {
        return Err(OfpError::BadLen);
    }
    Ok(PortStatus {
        reason: head.u8(status::REASON),
        desc,
    })
}

pub(crate) fn emit_status(v: Version, out: &mut Vec<u8>, p: &PortStatus) {
    let mut b = FieldsMut::<{ status::HEAD_LEN }>::new();
    b.set_u8(status::REASON, p.reason);
    b.emit(out);
    emit_desc_in(v, out, &p.desc);
}

/// `ofp_port_mod` after the header.
mod port_mod {
    use super::Field;
    pub(super) const PORT_NO: Field = 0..4;
    pub(super) const HW_ADDR: Field = 8..14;
    pub(super) const CONFIG: Field = 16..20;
    pub(super) const MASK: Field = 20..24;
    pub(super) const ADVERTISE: Field = 24..28;
    pub(super) const LEN: usize = 32;
}

/// `ofp14_port_mod` before its properties (the OF1.3 layout minus
/// `advertise`, which moved into an Ethernet property).
mod port_mod14 {
    pub(super) const LEN: usize = 24;
    /// OFPPMPT_ETHERNET: type, length, advertise.
    pub(super) const ETH_TYPE: u16 = 0;
    pub(super) const ETH_ADVERTISE: super::Field = 4..8;
    pub(super) const ETH_LEN: usize = 8;
}

pub(crate) fn parse_mod(v: Version, mut r: Reader<'_>) -> Result<PortMod, OfpError> {
    use port_mod as F;
    if v >= Version::V1_4 {
        let b = r.fixed(port_mod14::LEN)?;
        let mut advertise = 0;
        prop::for_each(r, |t, body| match t {
            port_mod14::ETH_TYPE => {
                advertise = prop::fixed(body, port_mod14::ETH_LEN)?.u32(port_mod14::ETH_ADVERTISE);
                Ok(())
            }
            _ => Err(OfpError::BadPropertyType),
        })?;
        return Ok(PortMod {
            port_no: PortNo(b.u32(F::PORT_NO)),
            hw_addr: MacAddr(b.mac(F::HW_ADDR)),
            config: b.u32(F::CONFIG),
            mask: b.u32(F::MASK),
            advertise,
        });
    }
    let b = r.exact(F::LEN)?;
    Ok(PortMod {
        port_no: PortNo(b.u32(F::PORT_NO)),
        hw_addr: MacAddr(b.mac(F::HW_ADDR)),
        config: b.u32(F::CONFIG),
        mask: b.u32(F::MASK),
        advertise: b.u32(F::ADVERTISE),
    })
}

pub(crate) fn emit_mod(v: Version, out: &mut Vec<u8>, p: &PortMod) {
    use port_mod as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::PORT_NO, p.port_no.0)
        .set_bytes(F::HW_ADDR, &p.hw_addr.0)
        .set_u32(F::CONFIG, p.config)
        .set_u32(F::MASK, p.mask);
    if v >= Version::V1_4 {
        out.extend_from_slice(&b.0[..port_mod14::LEN]);
        let mut e = FieldsMut::<{ port_mod14::ETH_LEN }>::new();
        e.set_u16(prop::TYPE, port_mod14::ETH_TYPE)
            .set_u16(prop::LENGTH, port_mod14::ETH_LEN as u16)
            .set_u32(port_mod14::ETH_ADVERTISE, p.advertise);
        e.emit(out);
        return;
    }
    b.set_u32(F::ADVERTISE, p.advertise);
    b.emit(out);
}

/// `ofp_port_stats`: port, pad 4, twelve 64-bit counters, duration.
pub(crate) mod stats {
    use super::Field;
    pub(crate) const PORT_NO: Field = 0..4;
    /// rx_packets .. collisions, in wire order, 8 bytes each from here.
    pub(crate) const COUNTERS: usize = 8;
    pub(crate) const DURATION_SEC: Field = 104..108;
    pub(crate) const DURATION_NSEC: Field = 108..112;
    pub(crate) const LEN: usize = 112;
}

/// The twelve counters of a port-stats entry, in their OF1.3 wire order.
fn counter_refs(p: &mut PortStats) -> [&mut u64; 12] {
    [
        &mut p.rx_packets,
        &mut p.tx_packets,
        &mut p.rx_bytes,
        &mut p.tx_bytes,
        &mut p.rx_dropped,
        &mut p.tx_dropped,
        &mut p.rx_errors,
        &mut p.tx_errors,
        &mut p.rx_frame_err,
        &mut p.rx_over_err,
        &mut p.rx_crc_err,
        &mut p.collisions,
    ]
}

/// The counters of `p` in wire order.
pub(crate) fn counters(p: &PortStats) -> [u64; 12] {
    let mut copy = *p;
    counter_refs(&mut copy).map(|c| *c)
}

/// Fills the counters of `p` from wire order.
pub(crate) fn set_counters(p: &mut PortStats, c: [u64; 12]) {
    for (dst, v) in counter_refs(p).into_iter().zip(c) {
        *dst = v;
    }
}

/// The 8-byte counter field `i` starting at `base`.
pub(crate) const fn counter(base: usize, i: usize) -> Field {
    base + 8 * i..base + 8 * i + 8
}

pub(crate) fn parse_stats(r: &mut Reader<'_>) -> Result<PortStats, OfpError> {
    use stats as F;
    let b = r.fixed(F::LEN)?;
    let mut p = PortStats {
        port_no: PortNo(b.u32(F::PORT_NO)),
        duration_sec: b.u32(F::DURATION_SEC),
        duration_nsec: b.u32(F::DURATION_NSEC),
        ..PortStats::default()
    };
    set_counters(
        &mut p,
        std::array::from_fn(|i| b.u64(counter(F::COUNTERS, i))),
    );
    Ok(p)
}

pub(crate) fn emit_stats(out: &mut Vec<u8>, p: &PortStats) {
    use stats as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::PORT_NO, p.port_no.0)
        .set_u32(F::DURATION_SEC, p.duration_sec)
        .set_u32(F::DURATION_NSEC, p.duration_nsec);
    for (i, v) in counters(p).into_iter().enumerate() {
        b.set_u64(counter(F::COUNTERS, i), v);
    }
    b.emit(out);
}

/// `ofp14_port_stats` before its properties.
mod stats14 {
    use super::Field;
    pub(super) const LENGTH: Field = 0..2;
    pub(super) const PORT_NO: Field = 4..8;
    pub(super) const DURATION_SEC: Field = 8..12;
    pub(super) const DURATION_NSEC: Field = 12..16;
    /// rx_packets .. tx_errors (the first eight OF1.3 counters).
    pub(super) const COUNTERS: usize = 16;
    pub(super) const N_COUNTERS: usize = 8;
    pub(super) const LEN: usize = 80;
    /// OFPPSPT_ETHERNET: rx_frame_err, rx_over_err, rx_crc_err, collisions.
    pub(super) const ETH_TYPE: u16 = 0;
    pub(super) const ETH_COUNTERS: usize = 8;
    pub(super) const ETH_LEN: usize = 40;
}

/// One OF1.4+ port-stats entry from `r`.
fn parse_stats14(r: &mut Reader<'_>) -> Result<PortStats, OfpError> {
    use stats14 as F;
    let len = r.peek_u16(F::LENGTH.start)? as usize;
    if len < F::LEN {
        return Err(OfpError::BadLen);
    }
    let mut e = r.sub(len, OfpError::BadLen)?;
    let b = e.fixed(F::LEN)?;
    let mut c = [0u64; 12];
    for (i, v) in c.iter_mut().enumerate().take(F::N_COUNTERS) {
        *v = b.u64(counter(F::COUNTERS, i));
    }
    prop::for_each(e, |t, body| {
        if t == F::ETH_TYPE {
            let b = prop::fixed(body, F::ETH_LEN)?;
            for i in 0..4 {
                c[F::N_COUNTERS + i] = b.u64(counter(F::ETH_COUNTERS, i));
            }
        }
        Ok(())
    })?;
    let mut p = PortStats {
        port_no: PortNo(b.u32(F::PORT_NO)),
        duration_sec: b.u32(F::DURATION_SEC),
        duration_nsec: b.u32(F::DURATION_NSEC),
        ..PortStats::default()
    };
    set_counters(&mut p, c);
    Ok(p)
}

fn emit_stats14(out: &mut Vec<u8>, p: &PortStats) {
    use stats14 as F;
    let c = counters(p);
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u16(F::LENGTH, (F::LEN + F::ETH_LEN) as u16)
        .set_u32(F::PORT_NO, p.port_no.0)
        .set_u32(F::DURATION_SEC, p.duration_sec)
        .set_u32(F::DURATION_NSEC, p.duration_nsec);
    for (i, v) in c.iter().take(F::N_COUNTERS).enumerate() {
        b.set_u64(counter(F::COUNTERS, i), *v);
    }
    b.emit(out);
    let mut e = FieldsMut::<{ F::ETH_LEN }>::new();
    e.set_u16(prop::TYPE, F::ETH_TYPE)
        .set_u16(prop::LENGTH, F::ETH_LEN as u16);
    for (i, v) in c[F::N_COUNTERS..].iter().enumerate() {
        e.set_u64(counter(F::ETH_COUNTERS, i), *v);
    }
    e.emit(out);
}

/// A list of port-stats entries filling all of `r`, in version `v`'s layout.
pub(crate) fn parse_stats_list(v: Version, mut r: Reader<'_>) -> Result<Vec<PortStats>, OfpError> {
    if v < Version::V1_4 {
        return r.fixed_entries(stats::LEN, parse_stats);
    }
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(parse_stats14(&mut r)?);
    }
    Ok(out)
}

pub(crate) fn emit_stats_in(v: Version, out: &mut Vec<u8>, p: &PortStats) {
    if v >= Version::V1_4 {
        emit_stats14(out, p)
    } else {
        emit_stats(out, p)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(n: u32) -> PortDesc {
        PortDesc {
            port_no: PortNo(n),
            hw_addr: MacAddr([2, 0, 0, 0, 0, n as u8]),
            name: format!("p{n}"),
            config: 1,
            state: 4,
            curr: 0x820,
            advertised: 0,
            supported: 0x820,
            peer: 0,
            curr_speed: 1_000_000,
            max_speed: 1_000_000,
        }
    }

    #[test]
    fn port_structures_round_trip() {
        let d = sample(3);
        let mut out = Vec::new();
        emit_desc(&mut out, &d);
        assert_eq!(out.len(), desc::LEN);
        assert_eq!(
            parse_desc(&mut Reader::new(&out, OfpError::BadLen)).unwrap(),
            d
        );

        for v in [Version::V1_3, Version::V1_4, Version::V1_5] {
            let s = PortStatus {
                reason: 2,
                desc: d.clone(),
            };
            let mut out = Vec::new();
            emit_status(v, &mut out, &s);
            assert_eq!(
                parse_status(v, Reader::new(&out, OfpError::BadLen)).unwrap(),
                s
            );
            let mut out = Vec::new();
            emit_desc_in(v, &mut out, &d);
            emit_desc_in(v, &mut out, &sample(4));
            assert_eq!(
                parse_desc_list(v, Reader::new(&out, OfpError::BadLen)).unwrap(),
                vec![d.clone(), sample(4)]
            );
        }

        let m = PortMod {
            port_no: PortNo(5),
            hw_addr: MacAddr([1, 2, 3, 4, 5, 6]),
            config: 0x41,
            mask: 0x45,
            advertise: 0x20,
        };
        for v in [Version::V1_3, Version::V1_4, Version::V1_5] {
            let mut out = Vec::new();
            emit_mod(v, &mut out, &m);
            assert_eq!(
                parse_mod(v, Reader::new(&out, OfpError::BadLen)).unwrap(),
                m
            );
        }

        let mut p = PortStats {
            port_no: PortNo(9),
            duration_sec: 3,
            duration_nsec: 4,
            ..PortStats::default()
        };
        set_counters(&mut p, std::array::from_fn(|i| i as u64 * 1000 + 1));
        let mut out = Vec::new();
        emit_stats(&mut out, &p);
        assert_eq!(out.len(), stats::LEN);
        assert_eq!(
            parse_stats(&mut Reader::new(&out, OfpError::BadLen)).unwrap(),
            p
        );
    }
}
