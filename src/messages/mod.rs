//! Every message the actors exchange, one module per receiving actor.
//!
//! Actors talk *only* through these types. A message that can arrive in floods
//! (packet-ins, upcalls) never travels through an actix mailbox with `do_send`:
//! it goes through a bounded channel the actor consumes as a stream, and a full
//! channel drops and counts. Request/response messages use [`Mailbox::ask`],
//! which respects the mailbox capacity and applies back-pressure.
//!
//! Messages name no actor types: where a message carries a way to reach an
//! actor (a reply path, a list of members), it carries an [`Inbox`] — a
//! `Recipient` of exactly the message that will be sent there, with the
//! receiver's meter — so this layer sits below `actors` and does not import it
//! (its one dependency there is `util::metrics`, a leaf with no crate imports
//! that holds the meters).

pub mod bridge;
pub mod connmgr;
pub mod daemon;
pub mod port;
pub mod revalidator;
pub mod upcall;

use crate::util::metrics::{ActorMeter, MsgName};
use actix::dev::ToEnvelope;
use actix::prelude::*;
use std::sync::Arc;

/// An actor's address together with its meter, so every send is counted
/// against the receiver (its mailbox depth is `received - handled`).
pub struct Mailbox<A: Actor> {
    /// The address.
    pub addr: Addr<A>,
    /// The receiver's counters.
    pub meter: Arc<ActorMeter>,
}

impl<A: Actor> Clone for Mailbox<A> {
    fn clone(&self) -> Self {
        Mailbox {
            addr: self.addr.clone(),
            meter: self.meter.clone(),
        }
    }
}

impl<A: Actor> Mailbox<A> {
    /// Wraps an address.
    pub fn new(addr: Addr<A>, meter: Arc<ActorMeter>) -> Self {
        Mailbox { addr, meter }
    }

    /// Sends and awaits the reply; waits for mailbox space (back-pressure).
    pub async fn ask<M>(&self, msg: M) -> Result<M::Result, MailboxError>
    where
        M: Message + MsgName + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.meter.enqueued(M::NAME);
        counted_reply(&self.meter, M::NAME, self.addr.send(msg).await)
    }

    /// Enqueues without waiting; a full or closed mailbox refuses (and counts).
    pub fn tell<M>(&self, msg: M) -> bool
    where
        M: Message + MsgName + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.meter.enqueued(M::NAME);
        counted_try(&self.meter, M::NAME, self.addr.try_send(msg).is_ok())
    }

    /// Whether the actor is still running.
    pub fn connected(&self) -> bool {
        self.addr.connected()
    }
}

/// Counts a refused `send` against the receiver.
fn counted_reply<T>(
    meter: &ActorMeter,
    name: &'static str,
    r: Result<T, MailboxError>,
) -> Result<T, MailboxError> {
    if r.is_err() {
        meter.rejected(name);
    }
    r
}

/// Counts a refused `try_send`, undoing the enqueue count so depth stays honest.
fn counted_try(meter: &ActorMeter, name: &'static str, sent: bool) -> bool {
    if !sent {
        meter.rejected(name);
        meter.handling(name).forget();
    }
    sent
}

/// One message type's way into an actor, counted against the actor's meter
/// like a [`Mailbox`] send (the type-erased form messages carry).
pub struct Inbox<M>
where
    M: Message + Send,
    M::Result: Send,
{
    /// Where the message goes.
    pub rcpt: Recipient<M>,
    /// The receiver's counters.
    pub meter: Arc<ActorMeter>,
}

impl<M> Clone for Inbox<M>
where
    M: Message + Send,
    M::Result: Send,
{
    fn clone(&self) -> Self {
        Inbox {
            rcpt: self.rcpt.clone(),
            meter: self.meter.clone(),
        }
    }
}

impl<M> Inbox<M>
where
    M: Message + MsgName + Send + 'static,
    M::Result: Send,
{
    /// Sends and awaits the reply; waits for mailbox space (back-pressure).
    pub async fn ask(&self, msg: M) -> Result<M::Result, MailboxError> {
        self.meter.enqueued(M::NAME);
        counted_reply(&self.meter, M::NAME, self.rcpt.send(msg).await)
    }

    /// Enqueues without waiting; a full or closed mailbox refuses (and counts).
    pub fn tell(&self, msg: M) -> bool {
        self.meter.enqueued(M::NAME);
        counted_try(&self.meter, M::NAME, self.rcpt.try_send(msg).is_ok())
    }

    /// Whether the receiver is still running.
    pub fn connected(&self) -> bool {
        self.rcpt.connected()
    }
}

impl<A: Actor> Mailbox<A> {
    /// The way into this actor for one message type.
    pub fn inbox<M>(&self) -> Inbox<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        Inbox {
            rcpt: self.addr.clone().recipient(),
            meter: self.meter.clone(),
        }
    }
}

/// Declares `MsgName` for message types: `names!(A, B, C);`.
#[macro_export]
macro_rules! msg_names {
    ($($t:ident),* $(,)?) => {
        $(impl $crate::util::metrics::MsgName for $t {
            const NAME: &'static str = stringify!($t);
        })*
    };
}
