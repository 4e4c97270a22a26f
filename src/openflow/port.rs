//! Ports on the wire (OF1.3 layouts): `ofp_port` (OF1.3.5 §7.2.1), PORT_STATUS
//! (§7.4.3), PORT_MOD (§7.3.4) and the OFPMP_PORT_STATS entry (§7.3.5.6).

use super::error::OfpError;
use super::message::{PortDesc, PortMod, PortStats, PortStatus};
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

/// `ofp_port_status` after the header: reason, 7 bytes of padding, the port.
mod status {
    pub(super) const REASON: usize = 0;
    pub(super) const HEAD_LEN: usize = 8;
}

pub(crate) fn parse_status(mut r: Reader<'_>) -> Result<PortStatus, OfpError> {
    let head = r.exact(status::HEAD_LEN + desc::LEN)?;
    let mut rest = Reader::new(head.0, OfpError::BadLen);
    rest.skip(status::HEAD_LEN)?;
    Ok(PortStatus {
        reason: head.u8(status::REASON),
        desc: parse_desc(&mut rest)?,
    })
}

pub(crate) fn emit_status(out: &mut Vec<u8>, p: &PortStatus) {
    let mut b = FieldsMut::<{ status::HEAD_LEN }>::new();
    b.set_u8(status::REASON, p.reason);
    b.emit(out);
    emit_desc(out, &p.desc);
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

pub(crate) fn parse_mod(mut r: Reader<'_>) -> Result<PortMod, OfpError> {
    use port_mod as F;
    let b = r.exact(F::LEN)?;
    Ok(PortMod {
        port_no: PortNo(b.u32(F::PORT_NO)),
        hw_addr: MacAddr(b.mac(F::HW_ADDR)),
        config: b.u32(F::CONFIG),
        mask: b.u32(F::MASK),
        advertise: b.u32(F::ADVERTISE),
    })
}

pub(crate) fn emit_mod(out: &mut Vec<u8>, p: &PortMod) {
    use port_mod as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::PORT_NO, p.port_no.0)
        .set_bytes(F::HW_ADDR, &p.hw_addr.0)
        .set_u32(F::CONFIG, p.config)
        .set_u32(F::MASK, p.mask)
        .set_u32(F::ADVERTISE, p.advertise);
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

/// The twelve counters of a port-stats entry in their OF1.3 wire order.
pub(crate) fn counters(p: &PortStats) -> [u64; 12] {
    [
        p.rx_packets,
        p.tx_packets,
        p.rx_bytes,
        p.tx_bytes,
        p.rx_dropped,
        p.tx_dropped,
        p.rx_errors,
        p.tx_errors,
        p.rx_frame_err,
        p.rx_over_err,
        p.rx_crc_err,
        p.collisions,
    ]
}

/// Fills the counters of `p` from their OF1.3 wire order.
pub(crate) fn set_counters(p: &mut PortStats, c: [u64; 12]) {
    [
        p.rx_packets,
        p.tx_packets,
        p.rx_bytes,
        p.tx_bytes,
        p.rx_dropped,
        p.tx_dropped,
        p.rx_errors,
        p.tx_errors,
        p.rx_frame_err,
        p.rx_over_err,
        p.rx_crc_err,
        p.collisions,
    ] = c;
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

        let s = PortStatus { reason: 2, desc: d };
        let mut out = Vec::new();
        emit_status(&mut out, &s);
        assert_eq!(
            parse_status(Reader::new(&out, OfpError::BadLen)).unwrap(),
            s
        );

        let m = PortMod {
            port_no: PortNo(5),
            hw_addr: MacAddr([1, 2, 3, 4, 5, 6]),
            config: 0x41,
            mask: 0x45,
            advertise: 0x20,
        };
        let mut out = Vec::new();
        emit_mod(&mut out, &m);
        assert_eq!(parse_mod(Reader::new(&out, OfpError::BadLen)).unwrap(), m);

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
