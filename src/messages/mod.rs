//! Every message the actors exchange, one module per receiving actor.
//!
//! Actors talk *only* through these types. A message that can arrive in floods
//! (packet-ins, upcalls) never travels through an actix mailbox with `do_send`:
//! it goes through a bounded channel the actor consumes as a stream, and a full
//! channel drops and counts. Request/response messages use [`Mailbox::ask`],
//! which respects the mailbox capacity and applies back-pressure.

pub mod bridge;
pub mod connmgr;
pub mod daemon;
pub mod port;
pub mod revalidator;
pub mod upcall;

use crate::actors::metrics::{ActorMeter, MsgName};
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
        let r = self.addr.send(msg).await;
        if r.is_err() {
            self.meter.rejected(M::NAME);
        }
        r
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
        match self.addr.try_send(msg) {
            Ok(()) => true,
            Err(_) => {
                self.meter.rejected(M::NAME);
                // Undo the enqueue count so depth stays honest.
                self.meter.handling(M::NAME).forget();
                false
            }
        }
    }

    /// Whether the actor is still running.
    pub fn connected(&self) -> bool {
        self.addr.connected()
    }
}

/// Declares `MsgName` for message types: `names!(A, B, C);`.
#[macro_export]
macro_rules! msg_names {
    ($($t:ident),* $(,)?) => {
        $(impl $crate::actors::metrics::MsgName for $t {
            const NAME: &'static str = stringify!($t);
        })*
    };
}
