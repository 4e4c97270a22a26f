//! Message classification: the one place that decides, for every message a
//! peer can send, who answers it and whether a slave controller may send it.
//!
//! Both the route and the role rule live here so that a new message type is
//! classified once (the shell used to repeat this table by hand).

use crate::openflow::message::{Message, MpRequestBody, MultipartRequest};

/// Where a message from the peer is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// HELLO after negotiation: nothing to do.
    Hello,
    /// Answered by the connection itself (echo, features, switch and async
    /// config, experimenter refusals, errors from the peer).
    Local,
    /// A ROLE_REQUEST: the connection manager owns the election.
    Role,
    /// BUNDLE_CONTROL and BUNDLE_ADD_MESSAGE: the connection keeps bundles
    /// and hands a committed one to the bridge.
    Bundle,
    /// A flow monitor request or cancel: the connection keeps its monitors
    /// and asks the bridge only for the rules they cover at the start.
    Monitor,
    /// The bridge's request handler (tables, groups, meters, ports, stats,
    /// packet-out, barrier).
    Bridge,
    /// A message only a switch sends (replies, asynchronous messages): a
    /// switch answers it with OFPBRC_BAD_TYPE.
    NotForSwitch,
}

/// How a message is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    /// Who handles it.
    pub route: Route,
    /// Refused with OFPBRC_IS_SLAVE when the connection's role is slave.
    pub slave_refused: bool,
}

/// `ofp_header.type` values this module needs to look at before or besides
/// decoding (OF1.3.5 §7.1, OF1.4.1 §7.1 for the bundle types).
mod wire {
    /// OFPT_EXPERIMENTER.
    pub const EXPERIMENTER: u8 = 4;
    /// OFPT_BUNDLE_CONTROL (OpenFlow 1.4+).
    pub const BUNDLE_CONTROL: u8 = 33;
    /// OFPT_BUNDLE_ADD_MESSAGE (OpenFlow 1.4+).
    pub const BUNDLE_ADD_MESSAGE: u8 = 34;
    /// ONF experimenter id (the OpenFlow 1.3 bundle extension, EXT-230).
    pub const ONF_EXPERIMENTER: u32 = 0x4f4e_4600;
    /// ONF_ET_BUNDLE_CONTROL.
    pub const ONF_ET_BUNDLE_CONTROL: u32 = 2300;
    /// ONF_ET_BUNDLE_ADD_MESSAGE.
    pub const ONF_ET_BUNDLE_ADD_MESSAGE: u32 = 2301;
    /// Nicira experimenter id.
    pub const NX_EXPERIMENTER: u32 = 0x0000_2320;
    /// NXT_TLV_TABLE_MOD.
    pub const NXT_TLV_TABLE_MOD: u32 = 24;
    /// Offset of the experimenter id and type in an experimenter message.
    pub const EXP_ID: std::ops::Range<usize> = 8..12;
    /// Offset of the experimenter-defined type.
    pub const EXP_TYPE: std::ops::Range<usize> = 12..16;
}

fn be32(head: &[u8], r: std::ops::Range<usize>) -> Option<u32> {
    head.get(r)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
}

/// True for messages OVS refuses from a slave (`ofproto.c:
/// reject_secondary_controller()` is called by the handlers of PACKET_OUT,
/// PORT_MOD, FLOW_MOD, METER_MOD, GROUP_MOD, TABLE_MOD, both bundle messages
/// and NXT_TLV_TABLE_MOD), plus a TABLE_FEATURES request with a body (a set
/// request), which OF1.3.5 §6.3.5 names explicitly. Decided on the raw header
/// as well as the decoded body, so that messages the codec does not decode
/// into their own variant (bundles on 1.3 arrive as experimenter messages)
/// are still refused before anything else looks at them.
fn slave_refused(body: &Message, head: &[u8]) -> bool {
    let by_body = match body {
        Message::FlowMod(_)
        | Message::GroupMod(_)
        | Message::PortMod(_)
        | Message::TableMod { .. }
        | Message::MeterMod(_)
        | Message::PacketOut(_) => true,
        Message::MultipartRequest(mp) => {
            matches!(mp.body, MpRequestBody::TableFeatures(ref v) if !v.is_empty())
        }
        _ => false,
    };
    by_body || slave_refused_wire(head)
}

/// The part of [`slave_refused`] that looks only at the wire header.
fn slave_refused_wire(head: &[u8]) -> bool {
    match head.get(1).copied() {
        Some(wire::BUNDLE_CONTROL | wire::BUNDLE_ADD_MESSAGE) => true,
        Some(wire::EXPERIMENTER) => matches!(
            (be32(head, wire::EXP_ID), be32(head, wire::EXP_TYPE)),
            (
                Some(wire::ONF_EXPERIMENTER),
                Some(wire::ONF_ET_BUNDLE_CONTROL | wire::ONF_ET_BUNDLE_ADD_MESSAGE)
            ) | (Some(wire::NX_EXPERIMENTER), Some(wire::NXT_TLV_TABLE_MOD))
        ),
        _ => false,
    }
}

/// Classifies a decoded message; `head` is its first bytes as received.
pub fn classify(body: &Message, head: &[u8]) -> Class {
    let route = match body {
        Message::Hello { .. } => Route::Hello,
        // OpenFlow 1.0's FEATURES_REPLY lists the ports (later versions
        // answer OFPMP_PORT_DESC instead), and only the bridge knows them.
        Message::FeaturesRequest if head.first() == Some(&1) => Route::Bridge,
        Message::EchoRequest(_)
        | Message::EchoReply(_)
        | Message::Error(_)
        | Message::Experimenter { .. }
        | Message::Nicira(_)
        | Message::FeaturesRequest
        | Message::GetConfigRequest
        | Message::SetConfig(_)
        | Message::GetAsyncRequest
        | Message::SetAsync(_)
        | Message::SetAsyncUpdate(_) => Route::Local,
        Message::RoleRequest(_) => Route::Role,
        Message::BundleControl(_) | Message::BundleAdd(_) => Route::Bundle,
        Message::MultipartRequest(MultipartRequest {
            body: MpRequestBody::FlowMonitor(_),
            ..
        })
        | Message::FlowMonitorCancel(_) => Route::Monitor,
        Message::FeaturesReply(_)
        | Message::GetConfigReply(_)
        | Message::PacketIn(_)
        | Message::FlowRemoved(_)
        | Message::PortStatus(_)
        | Message::MultipartReply(_)
        | Message::BarrierReply
        | Message::QueueGetConfigReply { .. }
        | Message::RoleReply(_)
        | Message::FlowMonitorPaused
        | Message::FlowMonitorResumed
        | Message::GetAsyncReply(_) => Route::NotForSwitch,
        // Everything else concerns the switch's state. New message types the
        // codec learns land here by default.
        _ => Route::Bridge,
    };
    Class {
        route,
        slave_refused: slave_refused(body, head),
    }
}

/// True when a message may produce a reply whose size depends on the switch's
/// state rather than on the request (multipart replies): the connection ends a
/// batch for the bridge after such a message, so that one batch can overshoot
/// the output budget by at most one such reply.
pub fn reply_may_be_large(body: &Message) -> bool {
    matches!(body, Message::MultipartRequest(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::message::SwitchConfig;

    #[test]
    fn every_route_and_the_slave_rule() {
        let c = classify(&Message::EchoRequest(vec![]), &[4, 2, 0, 8]);
        assert_eq!(c.route, Route::Local);
        assert!(!c.slave_refused);
        let c = classify(&Message::BarrierRequest, &[4, 20, 0, 8]);
        assert_eq!(c.route, Route::Bridge);
        assert!(!c.slave_refused);
        let c = classify(&Message::FeaturesRequest, &[4, 5, 0, 8]);
        assert_eq!(c.route, Route::Local);
        let c = classify(&Message::FeaturesRequest, &[1, 5, 0, 8]);
        assert_eq!(c.route, Route::Bridge, "OF1.0 features carry the ports");
        let c = classify(&Message::BarrierReply, &[4, 21, 0, 8]);
        assert_eq!(c.route, Route::NotForSwitch);
        let c = classify(
            &Message::TableMod {
                table_id: crate::types::TableId(0),
                config: 0,
            },
            &[4, 17, 0, 16],
        );
        assert_eq!(c.route, Route::Bridge);
        assert!(c.slave_refused);
        // SET_CONFIG from a slave is accepted (OVS applies miss_send_len).
        let c = classify(
            &Message::SetConfig(SwitchConfig {
                flags: 0,
                miss_send_len: 1,
            }),
            &[4, 9, 0, 12],
        );
        assert!(!c.slave_refused);
        // Table-features get vs set.
        let get = Message::MultipartRequest(MultipartRequest {
            flags: 0,
            body: MpRequestBody::TableFeatures(vec![]),
        });
        assert!(!classify(&get, &[4, 18, 0, 16]).slave_refused);
        assert!(reply_may_be_large(&get));
    }

    #[test]
    fn bundle_and_tlv_messages_are_refused_to_slaves_by_their_header() {
        let exp = |id: u32, t: u32| {
            let mut h = vec![4, 4, 0, 16, 0, 0, 0, 1];
            h.extend_from_slice(&id.to_be_bytes());
            h.extend_from_slice(&t.to_be_bytes());
            h
        };
        let body = Message::Experimenter {
            experimenter: 0,
            exp_type: 0,
            data: vec![],
        };
        assert!(classify(&body, &exp(0x4f4e_4600, 2300)).slave_refused);
        assert!(classify(&body, &exp(0x4f4e_4600, 2301)).slave_refused);
        assert!(classify(&body, &exp(0x2320, 24)).slave_refused);
        assert!(!classify(&body, &exp(0x2320, 25)).slave_refused);
        assert!(!classify(&body, &exp(0x4f4e_4600, 2302)).slave_refused);
        assert!(slave_refused_wire(&[5, 33, 0, 16]));
        assert!(slave_refused_wire(&[5, 34, 0, 16]));
        assert!(!slave_refused_wire(&[4, 4, 0, 9]));
        assert!(!slave_refused_wire(&[]));
    }
}
