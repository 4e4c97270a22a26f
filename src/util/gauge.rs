//! One owner's share of a total that several owners add to.
//!
//! A resource bounded per connection and again over all connections of a
//! bridge (flow monitors, bytes held in open bundles) is counted twice: by the
//! connection, for its own limit, and in a shared total, for the bridge's.
//! [`GaugeShare`] keeps the two in step and gives its share back when the
//! owner goes away, however it goes (close, error, drop), so the total can
//! never leak.
//!
//! Thread-safety: the total is an atomic any thread may read; each share is
//! owned by one connection's state machine.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// This owner's part of a shared total.
#[derive(Debug)]
pub struct GaugeShare {
    total: Arc<AtomicUsize>,
    mine: usize,
}

impl GaugeShare {
    /// A share of nothing yet, counting into `total`.
    pub fn new(total: Arc<AtomicUsize>) -> GaugeShare {
        GaugeShare { total, mine: 0 }
    }

    /// Sets this owner's part to `n`.
    pub fn set(&mut self, n: usize) {
        if n > self.mine {
            self.total.fetch_add(n - self.mine, Relaxed);
        } else {
            self.total.fetch_sub(self.mine - n, Relaxed);
        }
        self.mine = n;
    }

    /// This owner's part.
    pub fn mine(&self) -> usize {
        self.mine
    }

    /// Everyone's parts together.
    pub fn total(&self) -> usize {
        self.total.load(Relaxed)
    }
}

impl Drop for GaugeShare {
    fn drop(&mut self) {
        self.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_are_returned_on_drop() {
        let total = Arc::new(AtomicUsize::new(0));
        let mut a = GaugeShare::new(total.clone());
        let mut b = GaugeShare::new(total.clone());
        a.set(10);
        b.set(5);
        assert_eq!((a.mine(), b.total()), (10, 15));
        a.set(3);
        assert_eq!(total.load(Relaxed), 8);
        drop(b);
        assert_eq!(total.load(Relaxed), 3);
        a.set(0);
        drop(a);
        assert_eq!(total.load(Relaxed), 0);
    }
}
