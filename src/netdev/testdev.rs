//! An in-memory [`Netdev`] for unit tests.
//!
//! Compiled only for tests (`#[cfg(test)]`), so that unit tests anywhere in the
//! crate can drive a real [`crate::datapath::pmd::Datapath`] without root
//! privileges or kernel interfaces, and no production build carries it. It uses
//! mutexes and allocates per packet, which is fine for tests and wrong for the
//! fast path.
//!
//! A [`TestNetdev`] is the half the datapath owns; its [`TestPeer`] is the "wire":
//! the test injects frames with [`TestPeer::inject`] and reads what the datapath
//! transmitted with [`TestPeer::recv_timeout`]. The receive descriptor is an
//! eventfd that stays readable while injected frames wait, so epoll behaves as with
//! a socket. [`TestPeer::fail_rx`] makes receives fail with a chosen errno to test
//! error handling.

use super::packet::{PacketBatch, VnetHdr};
use super::poll::EventFd;
use crate::netdev::{Netdev, NetdevError, NetdevTx, TxResult};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Shared {
    name: String,
    rx: Mutex<VecDeque<(Vec<u8>, VnetHdr)>>,
    rx_fd: EventFd,
    tx: Mutex<VecDeque<(Vec<u8>, VnetHdr)>>,
    tx_cv: Condvar,
    fail_rx: Mutex<Option<i32>>,
    recv_calls: AtomicU64,
    /// While true, `recv_batch` blocks (a stalled poll thread).
    hold: Mutex<bool>,
    hold_cv: Condvar,
}

/// The datapath side of an in-memory port.
pub struct TestNetdev {
    shared: Arc<Shared>,
    ifindex: u32,
}

/// The test side of an in-memory port (cheap to clone).
#[derive(Clone)]
pub struct TestPeer {
    shared: Arc<Shared>,
}

/// An extra transmit handle on a [`TestNetdev`].
pub struct TestNetdevTx {
    shared: Arc<Shared>,
}

impl TestNetdev {
    /// Creates a port named `name` and the peer that feeds and drains it.
    pub fn pair(name: &str, ifindex: u32) -> std::io::Result<(TestNetdev, TestPeer)> {
        let shared = Arc::new(Shared {
            name: name.to_string(),
            rx: Mutex::new(VecDeque::new()),
            rx_fd: EventFd::new()?,
            tx: Mutex::new(VecDeque::new()),
            tx_cv: Condvar::new(),
            fail_rx: Mutex::new(None),
            recv_calls: AtomicU64::new(0),
            hold: Mutex::new(false),
            hold_cv: Condvar::new(),
        });
        Ok((
            TestNetdev {
                shared: shared.clone(),
                ifindex,
            },
            TestPeer { shared },
        ))
    }
}

impl TestPeer {
    /// Queues a frame for the datapath to receive.
    pub fn inject(&self, frame: &[u8]) {
        self.inject_with_vnet(frame, VnetHdr::default());
    }

    /// Queues a frame with offload metadata.
    pub fn inject_with_vnet(&self, frame: &[u8], vnet: VnetHdr) {
        let mut q = self.shared.rx.lock();
        q.push_back((frame.to_vec(), vnet));
        self.shared.rx_fd.signal();
    }

    /// Waits up to `timeout` for the next transmitted frame.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.recv_with_vnet(timeout).map(|(f, _)| f)
    }

    /// Like [`TestPeer::recv_timeout`], with the frame's offload metadata.
    pub fn recv_with_vnet(&self, timeout: Duration) -> Option<(Vec<u8>, VnetHdr)> {
        let deadline = Instant::now() + timeout;
        let mut q = self.shared.tx.lock();
        loop {
            if let Some(f) = q.pop_front() {
                return Some(f);
            }
            if self.shared.tx_cv.wait_until(&mut q, deadline).timed_out() {
                return q.pop_front();
            }
        }
    }

    /// Transmitted frames not yet read.
    pub fn pending_tx(&self) -> usize {
        self.shared.tx.lock().len()
    }

    /// Makes every receive fail with `errno` (or succeed again with `None`).
    pub fn fail_rx(&self, errno: Option<i32>) {
        *self.shared.fail_rx.lock() = errno;
        if errno.is_some() {
            // Make the descriptor readable so the poll thread notices.
            self.shared.rx_fd.signal();
        }
    }

    /// While `on`, the poll thread that receives from this port blocks in
    /// its next receive (a frame is queued to wake it), so its op queue
    /// fills: the way to test what happens when a thread falls behind.
    pub fn hold_rx(&self, on: bool) {
        *self.shared.hold.lock() = on;
        self.shared.hold_cv.notify_all();
        if on {
            // A runt: it wakes the thread and is then dropped as invalid.
            self.inject(&[0; 5]);
        }
    }

    /// How many times the datapath called `recv_batch`.
    pub fn recv_calls(&self) -> u64 {
        self.shared.recv_calls.load(Ordering::Relaxed)
    }
}

fn send(shared: &Shared, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
    let n = batch.len();
    {
        let mut q = shared.tx.lock();
        for p in batch.packets() {
            q.push_back((p.data().to_vec(), p.vnet));
        }
    }
    shared.tx_cv.notify_all();
    batch.clear();
    Ok(TxResult {
        sent: n,
        dropped: 0,
    })
}

impl Netdev for TestNetdev {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn ifindex(&self) -> u32 {
        self.ifindex
    }

    fn rx_fd(&self) -> RawFd {
        self.shared.rx_fd.fd()
    }

    fn recv_batch(&mut self, batch: &mut PacketBatch) -> Result<usize, NetdevError> {
        self.shared.recv_calls.fetch_add(1, Ordering::Relaxed);
        {
            let mut held = self.shared.hold.lock();
            while *held {
                self.shared.hold_cv.wait(&mut held);
            }
        }
        if let Some(errno) = *self.shared.fail_rx.lock() {
            return Err(NetdevError::Io {
                op: "recv",
                dev: self.shared.name.clone(),
                source: std::io::Error::from_raw_os_error(errno),
            });
        }
        let mut q = self.shared.rx.lock();
        let mut n = 0;
        while !batch.is_full() {
            let Some((frame, vnet)) = q.pop_front() else {
                break;
            };
            if let Some(slot) = batch.next_slot() {
                let area = slot.rx_area();
                let len = frame.len().min(area.len());
                area[..len].copy_from_slice(&frame[..len]);
                slot.set_len(len);
                slot.vnet = vnet;
                n += 1;
            }
        }
        if q.is_empty() {
            // Under the queue lock, so an inject cannot slip between the check
            // and the reset and leave frames behind an unreadable fd.
            self.shared.rx_fd.drain();
        }
        Ok(n)
    }

    fn send_batch(&mut self, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
        send(&self.shared, batch)
    }

    fn rx_errors(&self) -> u64 {
        0
    }

    fn open_tx(&self) -> Result<Box<dyn NetdevTx>, NetdevError> {
        Ok(Box::new(TestNetdevTx {
            shared: self.shared.clone(),
        }))
    }
}

impl NetdevTx for TestNetdevTx {
    fn send_batch(&mut self, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
        send(&self.shared, batch)
    }
}
