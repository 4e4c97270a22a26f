//! Inbox of a Port actor.

use crate::netdev::netlink::LinkInfo;
use actix::prelude::*;

/// rtnetlink says the device appeared or changed (flags, carrier, MAC, MTU).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LinkChanged(pub LinkInfo);

/// rtnetlink says the device was deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LinkDeleted;

crate::msg_names!(LinkChanged, LinkDeleted);

/// Bridge → Port: the port is being removed; close the device and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopPort;

crate::msg_names!(StopPort);

/// Bridge → Port: is the device open? `Some(error)` when it is not (the
/// first attempt runs when the Port starts, so asking right after starting
/// it gets that attempt's outcome; a missing device is retried meanwhile).
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct OpenStatus;

crate::msg_names!(OpenStatus);
