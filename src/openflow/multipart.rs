//! MULTIPART_REQUEST / MULTIPART_REPLY (OF1.3.5 §7.3.5): the multipart header,
//! the request bodies and the reply bodies, dispatched on OFPMP_* type. The
//! entries themselves live with their structures (flow, port, group, meter,
//! table); splitting long replies into several messages is [`super::mp_writer`].

use super::controller::{emit_experimenter, parse_experimenter};
use super::error::OfpError;
use super::framing::Version;
use super::message::{DescStats, MpReplyBody, MpRequestBody, MultipartReply, MultipartRequest};
use super::wire::{next_entry, Field, FieldsMut, Reader};
use super::{flow, group, meter, monitor, port, table};
use crate::types::{GroupId, MeterId, PortNo};

/// OFPMP_* multipart type numbers.
#[allow(missing_docs)]
pub mod mp_type {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const QUEUE: u16 = 5;
    pub const GROUP: u16 = 6;
    pub const GROUP_DESC: u16 = 7;
    pub const GROUP_FEATURES: u16 = 8;
    pub const METER: u16 = 9;
    pub const METER_CONFIG: u16 = 10;
    pub const METER_FEATURES: u16 = 11;
    pub const TABLE_FEATURES: u16 = 12;
    pub const PORT_DESC: u16 = 13;
    /// OpenFlow 1.4+.
    pub const FLOW_MONITOR: u16 = 16;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// The multipart header after `ofp_header`: type, flags, 4 bytes of padding.
pub(crate) mod header {
    use super::Field;
    pub(crate) const TYPE: Field = 0..2;
    pub(crate) const FLAGS: Field = 2..4;
    pub(crate) const LEN: usize = 8;
}

/// Size of `ofp_header` plus the multipart header.
pub(crate) const MP_HEADER_LEN: usize = super::framing::HEADER_LEN + header::LEN;

/// `(type, flags)` of a multipart message body.
fn parse_header(r: &mut Reader<'_>) -> Result<(u16, u16), OfpError> {
    let b = r.fixed(header::LEN)?;
    Ok((b.u16(header::TYPE), b.u16(header::FLAGS)))
}

pub(crate) fn emit_header(out: &mut Vec<u8>, t: u16, flags: u16) {
    let mut b = FieldsMut::<{ header::LEN }>::new();
    b.set_u16(header::TYPE, t).set_u16(header::FLAGS, flags);
    b.emit(out);
}

/// Decodes every entry of a variable-length list.
fn entries<'a, T>(
    mut r: Reader<'a>,
    len_off: usize,
    min: usize,
    one: impl Fn(Reader<'a>) -> Result<T, OfpError>,
) -> Result<Vec<T>, OfpError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(one(next_entry(&mut r, len_off, min)?)?);
    }
    Ok(v)
}

/// A request body that is a 32-bit id followed by 4 bytes of padding.
mod id_pad {
    use super::Field;
    pub(super) const ID: Field = 0..4;
    pub(super) const LEN: usize = 8;
}

fn parse_id_pad(mut r: Reader<'_>) -> Result<u32, OfpError> {
    Ok(r.exact(id_pad::LEN)?.u32(id_pad::ID))
}

fn emit_id_pad(out: &mut Vec<u8>, id: u32) {
    let mut b = FieldsMut::<{ id_pad::LEN }>::new();
    b.set_u32(id_pad::ID, id);
    b.emit(out);
}

/// `ofp_queue_stats_request`.
mod queue_request {
    use super::Field;
    pub(super) const PORT_NO: Field = 0..4;
    pub(super) const QUEUE_ID: Field = 4..8;
    pub(super) const LEN: usize = 8;
}

pub(crate) fn parse_request(v: Version, mut r: Reader<'_>) -> Result<MultipartRequest, OfpError> {
    use mp_type as M;
    let (t, flags) = parse_header(&mut r)?;
    let empty = |r: &Reader<'_>, b: MpRequestBody| {
        if r.is_empty() {
            Ok(b)
        } else {
            Err(OfpError::BadLen)
        }
    };
    let body = match t {
        M::DESC => empty(&r, MpRequestBody::Desc)?,
        M::FLOW => MpRequestBody::Flow(flow::parse_stats_request(r)?),
        M::AGGREGATE => MpRequestBody::Aggregate(flow::parse_stats_request(r)?),
        M::TABLE => empty(&r, MpRequestBody::Table)?,
        M::PORT_STATS => MpRequestBody::PortStats(PortNo(parse_id_pad(r)?)),
        M::QUEUE => {
            let b = r.exact(queue_request::LEN)?;
            MpRequestBody::Queue {
                port: PortNo(b.u32(queue_request::PORT_NO)),
                queue_id: b.u32(queue_request::QUEUE_ID),
            }
        }
        M::GROUP => MpRequestBody::Group(GroupId(parse_id_pad(r)?)),
        // OF1.5 names a group (OVS's `dump-groups` asks for OFPG_ALL); the
        // model has no filter, so only ALL is accepted.
        M::GROUP_DESC if v >= Version::V1_5 => match GroupId(parse_id_pad(r)?) {
            GroupId::ALL => MpRequestBody::GroupDesc,
            _ => return Err(OfpError::UnknownGroup),
        },
        M::GROUP_DESC => empty(&r, MpRequestBody::GroupDesc)?,
        M::GROUP_FEATURES => empty(&r, MpRequestBody::GroupFeatures)?,
        M::METER => MpRequestBody::Meter(MeterId(parse_id_pad(r)?)),
        M::METER_CONFIG => MpRequestBody::MeterConfig(MeterId(parse_id_pad(r)?)),
        M::METER_FEATURES => empty(&r, MpRequestBody::MeterFeatures)?,
        M::TABLE_FEATURES => MpRequestBody::TableFeatures(table::parse_features_list(r)?),
        // OF1.5 names a port; the model answers for all ports, so only ANY
        // is accepted (a single port is BAD_PORT rather than a wrong reply).
        M::PORT_DESC if v >= Version::V1_5 => match PortNo(parse_id_pad(r)?) {
            PortNo::ANY => MpRequestBody::PortDesc,
            _ => return Err(OfpError::BadRequestPort),
        },
        M::PORT_DESC => empty(&r, MpRequestBody::PortDesc)?,
        M::FLOW_MONITOR if v >= Version::V1_4 => {
            MpRequestBody::FlowMonitor(monitor::parse_requests14(r)?)
        }
        M::EXPERIMENTER => {
            let (experimenter, exp_type, data) = parse_experimenter(r)?;
            if is_onf_monitor(v, experimenter, exp_type) {
                let r = Reader::new(&data, OfpError::BadLen);
                return Ok(MultipartRequest {
                    flags,
                    body: MpRequestBody::FlowMonitor(monitor::parse_requests_onf(r)?),
                });
            }
            MpRequestBody::Experimenter {
                experimenter,
                exp_type,
                data,
            }
        }
        _ => return Err(OfpError::BadMultipart),
    };
    Ok(MultipartRequest { flags, body })
}

/// ONFST_FLOW_MONITOR: OF1.4's flow monitor as an ONF experimenter
/// multipart in OpenFlow 1.3.
fn is_onf_monitor(v: Version, experimenter: u32, exp_type: u32) -> bool {
    v == Version::V1_3
        && experimenter == super::error::ONF_VENDOR_ID
        && exp_type == monitor::ONF_FLOW_MONITOR
}

/// The ONF experimenter header of an OF1.3 flow-monitor multipart (after
/// the multipart header, in every message of a reply).
pub(crate) fn onf_monitor_prefix(out: &mut Vec<u8>) {
    emit_experimenter(
        out,
        super::error::ONF_VENDOR_ID,
        monitor::ONF_FLOW_MONITOR,
        &[],
    );
}

pub(crate) fn request_type(b: &MpRequestBody) -> u16 {
    use mp_type as M;
    match b {
        MpRequestBody::Desc => M::DESC,
        MpRequestBody::Flow(_) => M::FLOW,
        MpRequestBody::Aggregate(_) => M::AGGREGATE,
        MpRequestBody::Table => M::TABLE,
        MpRequestBody::PortStats(_) => M::PORT_STATS,
        MpRequestBody::Queue { .. } => M::QUEUE,
        MpRequestBody::Group(_) => M::GROUP,
        MpRequestBody::GroupDesc => M::GROUP_DESC,
        MpRequestBody::GroupFeatures => M::GROUP_FEATURES,
        MpRequestBody::Meter(_) => M::METER,
        MpRequestBody::MeterConfig(_) => M::METER_CONFIG,
        MpRequestBody::MeterFeatures => M::METER_FEATURES,
        MpRequestBody::TableFeatures(_) => M::TABLE_FEATURES,
        MpRequestBody::PortDesc => M::PORT_DESC,
        MpRequestBody::Experimenter { .. } => M::EXPERIMENTER,
        MpRequestBody::FlowMonitor(_) => M::FLOW_MONITOR,
    }
}

pub(crate) fn emit_request(
    v: Version,
    out: &mut Vec<u8>,
    req: &MultipartRequest,
) -> Result<(), super::framing::EncodeError> {
    if let MpRequestBody::FlowMonitor(reqs) = &req.body {
        if v >= Version::V1_4 {
            emit_header(out, mp_type::FLOW_MONITOR, req.flags);
            monitor::emit_requests14(out, reqs);
            return Ok(());
        }
        emit_header(out, mp_type::EXPERIMENTER, req.flags);
        onf_monitor_prefix(out);
        return monitor::emit_requests_onf(out, reqs);
    }
    emit_header(out, request_type(&req.body), req.flags);
    match &req.body {
        MpRequestBody::GroupDesc if v >= Version::V1_5 => emit_id_pad(out, GroupId::ALL.0),
        MpRequestBody::PortDesc if v >= Version::V1_5 => emit_id_pad(out, PortNo::ANY.0),
        MpRequestBody::Desc
        | MpRequestBody::Table
        | MpRequestBody::GroupDesc
        | MpRequestBody::GroupFeatures
        | MpRequestBody::MeterFeatures
        | MpRequestBody::PortDesc => {}
        MpRequestBody::Flow(f) | MpRequestBody::Aggregate(f) => flow::emit_stats_request(out, f),
        MpRequestBody::PortStats(p) => emit_id_pad(out, p.0),
        MpRequestBody::Queue { port, queue_id } => {
            let mut b = FieldsMut::<{ queue_request::LEN }>::new();
            b.set_u32(queue_request::PORT_NO, port.0)
                .set_u32(queue_request::QUEUE_ID, *queue_id);
            b.emit(out);
        }
        MpRequestBody::Group(g) => emit_id_pad(out, g.0),
        MpRequestBody::Meter(m) | MpRequestBody::MeterConfig(m) => emit_id_pad(out, m.0),
        MpRequestBody::TableFeatures(tfs) => tfs.iter().for_each(|t| table::emit_features(out, t)),
        MpRequestBody::Experimenter {
            experimenter,
            exp_type,
            data,
        } => emit_experimenter(out, *experimenter, *exp_type, data),
        MpRequestBody::FlowMonitor(_) => {}
    }
    Ok(())
}

/// DESC_STR_LEN.
const DESC_STR_LEN: usize = 256;
/// SERIAL_NUM_LEN.
const SERIAL_NUM_LEN: usize = 32;

/// `ofp_desc`.
mod desc {
    use super::Field;
    pub(super) const MFR_DESC: Field = 0..256;
    pub(super) const HW_DESC: Field = 256..512;
    pub(super) const SW_DESC: Field = 512..768;
    pub(super) const SERIAL_NUM: Field = 768..800;
    pub(super) const DP_DESC: Field = 800..1056;
    pub(super) const LEN: usize = 4 * super::DESC_STR_LEN + super::SERIAL_NUM_LEN;
}

fn parse_desc(mut r: Reader<'_>) -> Result<DescStats, OfpError> {
    use desc as F;
    let b = r.exact(F::LEN)?;
    Ok(DescStats {
        mfr_desc: b.string(F::MFR_DESC),
        hw_desc: b.string(F::HW_DESC),
        sw_desc: b.string(F::SW_DESC),
        serial_num: b.string(F::SERIAL_NUM),
        dp_desc: b.string(F::DP_DESC),
    })
}

fn emit_desc(out: &mut Vec<u8>, d: &DescStats) {
    use desc as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_string(F::MFR_DESC, &d.mfr_desc)
        .set_string(F::HW_DESC, &d.hw_desc)
        .set_string(F::SW_DESC, &d.sw_desc)
        .set_string(F::SERIAL_NUM, &d.serial_num)
        .set_string(F::DP_DESC, &d.dp_desc);
    b.emit(out);
}

pub(crate) fn parse_reply(v: Version, mut r: Reader<'_>) -> Result<MultipartReply, OfpError> {
    use mp_type as M;
    let (t, flags) = parse_header(&mut r)?;
    let body = match t {
        M::DESC => MpReplyBody::Desc(parse_desc(r)?),
        M::FLOW if v >= Version::V1_5 => MpReplyBody::Flow(entries(
            r,
            flow::STATS_LENGTH_AT,
            flow::DESC15_MIN_LEN,
            flow::parse_desc15,
        )?),
        M::FLOW => MpReplyBody::Flow(entries(
            r,
            flow::STATS_LENGTH_AT,
            flow::STATS_MIN_LEN,
            flow::parse_stats,
        )?),
        M::AGGREGATE if v >= Version::V1_5 => MpReplyBody::Aggregate(flow::parse_aggregate15(r)?),
        M::AGGREGATE => MpReplyBody::Aggregate(flow::parse_aggregate(r)?),
        M::TABLE => MpReplyBody::Table(r.fixed_entries(table::STATS_LEN, table::parse_stats)?),
        M::PORT_STATS => MpReplyBody::PortStats(port::parse_stats_list(v, r)?),
        M::QUEUE if r.is_empty() => MpReplyBody::Queue,
        M::QUEUE => return Err(OfpError::BadLen),
        M::GROUP => MpReplyBody::Group(entries(
            r,
            group::stats::LENGTH.start,
            group::stats::LEN,
            group::parse_stats,
        )?),
        M::GROUP_DESC if v >= Version::V1_5 => MpReplyBody::GroupDesc(entries(
            r,
            group::desc::LENGTH.start,
            group::DESC15_LEN,
            group::parse_desc15,
        )?),
        M::GROUP_DESC => MpReplyBody::GroupDesc(entries(
            r,
            group::desc::LENGTH.start,
            group::desc::LEN,
            group::parse_desc,
        )?),
        M::GROUP_FEATURES => MpReplyBody::GroupFeatures(group::parse_features(r)?),
        M::METER => MpReplyBody::Meter(entries(
            r,
            meter::stats::LENGTH.start,
            meter::stats::LEN,
            meter::parse_stats,
        )?),
        M::METER_CONFIG => MpReplyBody::MeterConfig(entries(
            r,
            meter::config::LENGTH.start,
            meter::config::LEN,
            meter::parse_config,
        )?),
        M::METER_FEATURES => MpReplyBody::MeterFeatures(meter::parse_features(r)?),
        M::TABLE_FEATURES => MpReplyBody::TableFeatures(table::parse_features_list(r)?),
        M::PORT_DESC => MpReplyBody::PortDesc(port::parse_desc_list(v, r)?),
        M::FLOW_MONITOR if v >= Version::V1_4 => {
            MpReplyBody::FlowMonitor(monitor::parse_updates14(r)?)
        }
        M::EXPERIMENTER => {
            let (experimenter, exp_type, data) = parse_experimenter(r)?;
            if !is_onf_monitor(v, experimenter, exp_type) {
                // We ask for no other experimenter statistics.
                return Err(OfpError::BadExperimenter);
            }
            let r = Reader::new(&data, OfpError::BadLen);
            MpReplyBody::FlowMonitor(monitor::parse_updates_nx(v, r)?)
        }
        _ => return Err(OfpError::BadMultipart),
    };
    Ok(MultipartReply { flags, body })
}

pub(crate) fn reply_type(b: &MpReplyBody) -> u16 {
    use mp_type as M;
    match b {
        MpReplyBody::Desc(_) => M::DESC,
        MpReplyBody::Flow(_) => M::FLOW,
        MpReplyBody::Aggregate(_) => M::AGGREGATE,
        MpReplyBody::Table(_) => M::TABLE,
        MpReplyBody::PortStats(_) => M::PORT_STATS,
        MpReplyBody::Queue => M::QUEUE,
        MpReplyBody::Group(_) => M::GROUP,
        MpReplyBody::GroupDesc(_) => M::GROUP_DESC,
        MpReplyBody::GroupFeatures(_) => M::GROUP_FEATURES,
        MpReplyBody::Meter(_) => M::METER,
        MpReplyBody::MeterConfig(_) => M::METER_CONFIG,
        MpReplyBody::MeterFeatures(_) => M::METER_FEATURES,
        MpReplyBody::TableFeatures(_) => M::TABLE_FEATURES,
        MpReplyBody::PortDesc(_) => M::PORT_DESC,
        MpReplyBody::FlowMonitor(_) => M::FLOW_MONITOR,
    }
}

/// The multipart type of a reply in `v` (OF1.3 flow monitors are ONF
/// experimenter multiparts).
pub(crate) fn reply_type_in(v: Version, b: &MpReplyBody) -> u16 {
    match b {
        MpReplyBody::FlowMonitor(_) if v < Version::V1_4 => mp_type::EXPERIMENTER,
        _ => reply_type(b),
    }
}

/// What follows the multipart header in every message of a reply in `v`
/// (the ONF experimenter header of OF1.3 flow monitors).
pub(crate) fn emit_reply_prefix(v: Version, out: &mut Vec<u8>, b: &MpReplyBody) {
    if matches!(b, MpReplyBody::FlowMonitor(_)) && v < Version::V1_4 {
        onf_monitor_prefix(out);
    }
}

/// Appends a whole multipart reply body (header and all entries).
pub(crate) fn emit_reply(
    v: Version,
    out: &mut Vec<u8>,
    rep: &MultipartReply,
) -> Result<(), super::framing::EncodeError> {
    emit_header(out, reply_type_in(v, &rep.body), rep.flags);
    emit_reply_prefix(v, out, &rep.body);
    emit_single_body(out, &rep.body);
    for i in 0..n_entries(&rep.body) {
        emit_entry(v, out, &rep.body, i)?;
    }
    Ok(())
}

/// Appends the body of a reply that is one structure rather than a list
/// (nothing for list replies).
pub(crate) fn emit_single_body(out: &mut Vec<u8>, b: &MpReplyBody) {
    match b {
        MpReplyBody::Desc(d) => emit_desc(out, d),
        MpReplyBody::GroupFeatures(g) => group::emit_features(out, g),
        MpReplyBody::MeterFeatures(m) => meter::emit_features(out, m),
        _ => {}
    }
}

/// Number of entries of a list reply (0 for single-structure replies).
pub(crate) fn n_entries(b: &MpReplyBody) -> usize {
    match b {
        MpReplyBody::Flow(v) => v.len(),
        MpReplyBody::Table(v) => v.len(),
        MpReplyBody::PortStats(v) => v.len(),
        MpReplyBody::Group(v) => v.len(),
        MpReplyBody::GroupDesc(v) => v.len(),
        MpReplyBody::Meter(v) => v.len(),
        MpReplyBody::MeterConfig(v) => v.len(),
        MpReplyBody::TableFeatures(v) => v.len(),
        MpReplyBody::PortDesc(v) => v.len(),
        MpReplyBody::FlowMonitor(v) => v.len(),
        // The aggregate reply is written as one "entry" so that its
        // per-version layout lives in one place.
        MpReplyBody::Aggregate(_) => 1,
        MpReplyBody::Desc(_)
        | MpReplyBody::Queue
        | MpReplyBody::GroupFeatures(_)
        | MpReplyBody::MeterFeatures(_) => 0,
    }
}

/// Appends entry `i` of a list reply in version `v`'s layout.
pub(crate) fn emit_entry(
    v: Version,
    out: &mut Vec<u8>,
    b: &MpReplyBody,
    i: usize,
) -> Result<(), super::framing::EncodeError> {
    let v15 = v >= Version::V1_5;
    match b {
        MpReplyBody::FlowMonitor(e) if v >= Version::V1_4 => monitor::emit_update14(out, &e[i]),
        MpReplyBody::FlowMonitor(e) => monitor::emit_update_nx(v, out, &e[i])?,
        MpReplyBody::Flow(e) if v15 => flow::emit_desc15(out, &e[i]),
        MpReplyBody::Flow(e) => flow::emit_stats(out, &e[i]),
        MpReplyBody::Aggregate(a) if v15 => flow::emit_aggregate15(out, a),
        MpReplyBody::Aggregate(a) => flow::emit_aggregate(out, a),
        MpReplyBody::Table(e) => table::emit_stats(out, &e[i]),
        MpReplyBody::PortStats(e) => port::emit_stats_in(v, out, &e[i]),
        MpReplyBody::Group(e) => group::emit_stats(out, &e[i]),
        MpReplyBody::GroupDesc(e) if v15 => group::emit_desc15(out, &e[i]),
        MpReplyBody::GroupDesc(e) => group::emit_desc(out, &e[i]),
        MpReplyBody::Meter(e) => meter::emit_stats(out, &e[i]),
        MpReplyBody::MeterConfig(e) => meter::emit_config(out, &e[i]),
        MpReplyBody::TableFeatures(e) => table::emit_features(out, &e[i]),
        MpReplyBody::PortDesc(e) => port::emit_desc_in(v, out, &e[i]),
        MpReplyBody::Desc(_)
        | MpReplyBody::Queue
        | MpReplyBody::GroupFeatures(_)
        | MpReplyBody::MeterFeatures(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desc_and_id_bodies_round_trip() {
        let d = DescStats {
            mfr_desc: "m".into(),
            hw_desc: "h".into(),
            sw_desc: "s".into(),
            serial_num: "n".into(),
            dp_desc: "d".into(),
        };
        let rep = MultipartReply {
            flags: 0,
            body: MpReplyBody::Desc(d),
        };
        let mut out = Vec::new();
        emit_reply(Version::V1_3, &mut out, &rep).unwrap();
        assert_eq!(out.len(), header::LEN + desc::LEN);
        assert_eq!(
            parse_reply(Version::V1_3, Reader::new(&out, OfpError::BadLen)).unwrap(),
            rep
        );
        for body in [
            MpRequestBody::PortStats(PortNo(3)),
            MpRequestBody::Queue {
                port: PortNo(1),
                queue_id: 2,
            },
            MpRequestBody::Meter(MeterId(4)),
            MpRequestBody::GroupDesc,
        ] {
            let req = MultipartRequest { flags: 1, body };
            for v in [Version::V1_3, Version::V1_4, Version::V1_5] {
                let mut out = Vec::new();
                emit_request(v, &mut out, &req).unwrap();
                assert_eq!(
                    parse_request(v, Reader::new(&out, OfpError::BadLen)).unwrap(),
                    req
                );
            }
        }
    }
}
