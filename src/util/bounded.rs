//! A bounded multi-producer channel whose memory follows its contents.
//!
//! `crossbeam_channel::bounded(n)` allocates and writes all `n` slots up front:
//! a poll thread's op queue (65,536 slots of about 48 bytes) kept 3 MB
//! resident on an idle daemon. This channel enforces the same bound with a
//! counter in front of crossbeam's list flavour, which allocates blocks as
//! messages arrive and frees them as they are consumed, so an empty queue costs
//! a few hundred bytes whatever its capacity.
//!
//! Ownership: the counter is shared by every sender and the receiver; senders
//! reserve a place before sending and the receiver gives it back after each
//! message it takes. Any thread may send; one thread receives.

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Sending half; cheap to clone.
pub struct BoundedSender<T> {
    tx: Sender<T>,
    queued: Arc<AtomicUsize>,
    cap: usize,
}

impl<T> Clone for BoundedSender<T> {
    fn clone(&self) -> Self {
        BoundedSender {
            tx: self.tx.clone(),
            queued: self.queued.clone(),
            cap: self.cap,
        }
    }
}

/// Receiving half.
pub struct BoundedReceiver<T> {
    rx: Receiver<T>,
    queued: Arc<AtomicUsize>,
}

/// A channel holding at most `cap` messages (at least 1).
pub fn channel<T>(cap: usize) -> (BoundedSender<T>, BoundedReceiver<T>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        BoundedSender {
            tx,
            queued: queued.clone(),
            cap: cap.max(1),
        },
        BoundedReceiver { rx, queued },
    )
}

impl<T> BoundedSender<T> {
    /// Queues `msg` unless `cap` messages are already queued (`Full`) or the
    /// receiver is gone (`Disconnected`); either way the message comes back.
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        // Reserve a place first, so concurrent senders can never overshoot.
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.cap {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(TrySendError::Full(msg));
        }
        self.tx.try_send(msg).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            match e {
                TrySendError::Full(m) | TrySendError::Disconnected(m) => {
                    TrySendError::Disconnected(m)
                }
            }
        })
    }

    /// Queues a message that must not be refused for lack of room (a stop
    /// request: the receiver is draining, so the overshoot is one message).
    /// Fails only when the receiver is gone.
    pub fn send_over_bound(&self, msg: T) -> Result<(), T> {
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.tx.send(msg).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            e.0
        })
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> BoundedReceiver<T> {
    /// Takes the next message, if any, and frees its place.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let m = self.rx.try_recv()?;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_is_enforced_and_places_come_back() {
        let (tx, rx) = channel::<u32>(2);
        tx.try_send(1).unwrap();
        tx.clone().try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(tx.len(), 2);
        assert_eq!(rx.try_recv(), Ok(1));
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(tx.is_empty());
    }

    #[test]
    fn over_bound_send_and_disconnection() {
        let (tx, rx) = channel::<u32>(1);
        tx.try_send(1).unwrap();
        tx.send_over_bound(2).unwrap();
        assert_eq!(tx.len(), 2);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        drop(rx);
        assert!(matches!(tx.try_send(5), Err(TrySendError::Disconnected(5))));
        assert_eq!(tx.send_over_bound(6), Err(6));
        assert!(tx.is_empty(), "a refused message holds no place");
    }

    #[test]
    fn concurrent_senders_never_exceed_the_bound() {
        let (tx, rx) = channel::<usize>(64);
        let accepted: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|t| {
                    let tx = tx.clone();
                    s.spawn(move || {
                        (0..1000)
                            .filter(|i| tx.try_send(t * 1000 + i).is_ok())
                            .count()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(accepted, 64, "nothing was received, so exactly cap fit");
        let mut got = 0;
        while rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, 64);
    }
}
