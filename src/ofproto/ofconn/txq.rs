//! The outbound queue of one connection, bounded in bytes.
//!
//! Messages are appended into segments of at most [`SEGMENT_MAX`] bytes (so
//! many small replies cost one allocation, not one each); the shell takes
//! whole segments with [`TxQueue::pop`] and acknowledges each once it has
//! been written. Until then its bytes count against the budget, so the
//! budget covers both what waits here and what the writer still holds.
//!
//! How this compares with Open vSwitch: `rconn.c` keeps a `txq` of `ofpbuf`s
//! and `connmgr.c` counts what is queued in *packets* — replies with
//! `reply_counter` (`ofconn_may_recv()` stops reading requests at
//! `OFCONN_REPLY_MAX` = 100 queued replies) and packet-ins with
//! `packet_in_counter` (`rconn_send_with_limit()` drops beyond
//! `packet_in_queue_size`, 100 by default); flow-removed and port-status
//! messages are not limited at all. A count of packets bounds memory only
//! as far as the messages are small: 100 multipart replies can be 6.5 MB.
//! Here everything is counted in bytes (plus a fixed overhead per segment,
//! so a flood of tiny messages is charged for its allocations too), the
//! input stops when the whole queue reaches the budget, and asynchronous
//! messages of every kind may use at most half of it.

use std::collections::VecDeque;

/// Largest segment handed to the writer.
pub const SEGMENT_MAX: usize = 64 * 1024;
/// Bytes charged per segment for its allocation and queue entry.
pub const SEGMENT_OVERHEAD: usize = 64;

/// The queue.
#[derive(Debug)]
pub struct TxQueue {
    /// Full segments not yet taken.
    ready: VecDeque<Vec<u8>>,
    /// The segment being filled.
    cur: Vec<u8>,
    /// Bytes (with overheads) queued here or taken and not yet acknowledged.
    unacked: usize,
    /// Segments taken and not yet acknowledged.
    in_flight: usize,
    budget: usize,
}

impl TxQueue {
    /// An empty queue with a budget in bytes.
    pub fn new(budget: usize) -> TxQueue {
        TxQueue {
            ready: VecDeque::new(),
            cur: Vec::new(),
            unacked: 0,
            in_flight: 0,
            budget,
        }
    }

    /// Appends one encoded message.
    pub fn push(&mut self, msg: &[u8]) {
        if !self.cur.is_empty() && self.cur.len() + msg.len() > SEGMENT_MAX {
            let full = std::mem::take(&mut self.cur);
            self.ready.push_back(full);
        }
        if self.cur.is_empty() {
            self.unacked += SEGMENT_OVERHEAD;
        }
        self.cur.extend_from_slice(msg);
        self.unacked += msg.len();
    }

    /// Takes the next segment to write.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        let seg = match self.ready.pop_front() {
            Some(s) => s,
            None if !self.cur.is_empty() => std::mem::take(&mut self.cur),
            None => return None,
        };
        self.in_flight += 1;
        Some(seg)
    }

    /// A segment of `len` bytes taken with [`TxQueue::pop`] was written.
    /// Returns false (and changes nothing) when no segment was in flight.
    pub fn ack(&mut self, len: usize) -> bool {
        if self.in_flight == 0 {
            return false;
        }
        self.in_flight -= 1;
        self.unacked = self.unacked.saturating_sub(len + SEGMENT_OVERHEAD);
        true
    }

    /// Bytes counted against the budget.
    pub fn queued(&self) -> usize {
        self.unacked
    }

    /// The budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// True when the queue holds at least its budget.
    pub fn over_budget(&self) -> bool {
        self.unacked >= self.budget
    }

    /// True when `len` more bytes of asynchronous messages fit in their half
    /// of the budget.
    pub fn async_fits(&self, len: usize) -> bool {
        self.unacked + len + SEGMENT_OVERHEAD <= self.budget / 2
    }

    /// Nothing queued and nothing in flight.
    pub fn is_idle(&self) -> bool {
        self.unacked == 0 && self.in_flight == 0
    }

    /// Frees what has not been taken yet (the connection is gone).
    pub fn clear_pending(&mut self) {
        let pending: usize = self.ready.iter().map(Vec::len).sum::<usize>() + self.cur.len();
        let segs = self.ready.len() + usize::from(!self.cur.is_empty());
        self.unacked = self
            .unacked
            .saturating_sub(pending + segs * SEGMENT_OVERHEAD);
        self.ready = VecDeque::new();
        self.cur = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_messages_share_segments_and_acks_return_the_budget() {
        let mut q = TxQueue::new(1000);
        for _ in 0..10 {
            q.push(&[0; 8]);
        }
        assert_eq!(q.queued(), 80 + SEGMENT_OVERHEAD);
        let s = q.pop().expect("segment");
        assert_eq!(s.len(), 80);
        assert!(q.pop().is_none());
        assert!(q.ack(s.len()));
        assert!(q.is_idle());
        assert!(!q.ack(1), "nothing in flight");
    }

    #[test]
    fn segments_are_cut_at_the_maximum_and_the_budget_is_in_bytes() {
        let mut q = TxQueue::new(3 * SEGMENT_MAX);
        let big = vec![1u8; SEGMENT_MAX / 2 + 1];
        q.push(&big);
        q.push(&big);
        q.push(&big);
        assert_eq!(q.pop().map(|s| s.len()), Some(big.len()));
        assert_eq!(q.pop().map(|s| s.len()), Some(big.len()));
        assert!(!q.over_budget());
        for _ in 0..4 {
            q.push(&big);
        }
        assert!(q.over_budget());
        assert!(!q.async_fits(1));
        q.clear_pending();
        // Two segments still in flight.
        assert_eq!(q.queued(), 2 * (big.len() + SEGMENT_OVERHEAD));
        q.ack(big.len());
        q.ack(big.len());
        assert!(q.is_idle());
    }
}
