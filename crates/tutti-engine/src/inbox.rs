//! Datagrams on their way from a participant's socket to its mixer thread: a bounded queue
//! of preallocated buffers, recycled through a free list, so neither side allocates.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_queue::ArrayQueue;

/// Largest datagram kept.
pub const MAX_DATAGRAM: usize = 1500;
/// Datagrams buffered per participant (≈ 1.3 s of 20 ms packets).
pub const INBOX_CAPACITY: usize = 64;

/// One received datagram.
pub struct Datagram {
    /// Bytes used in `data`.
    pub len: usize,
    /// Sender.
    pub from: SocketAddr,
    /// When it was read from the socket.
    pub at: Instant,
    /// The bytes.
    pub data: [u8; MAX_DATAGRAM],
}

impl Datagram {
    /// The received bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// The queue between a socket's receiver and the mixer thread.
pub struct Inbox {
    full: ArrayQueue<Box<Datagram>>,
    free: ArrayQueue<Box<Datagram>>,
    /// Datagrams dropped because the mixer fell behind.
    pub overflow: AtomicU64,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("queued", &self.full.len())
            .finish_non_exhaustive()
    }
}

impl Default for Inbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Inbox {
    /// An empty inbox with its buffers allocated.
    pub fn new() -> Self {
        let free = ArrayQueue::new(INBOX_CAPACITY);
        for _ in 0..INBOX_CAPACITY {
            let _ = free.push(Box::new(Datagram {
                len: 0,
                from: SocketAddr::from(([0, 0, 0, 0], 0)),
                at: Instant::now(),
                data: [0; MAX_DATAGRAM],
            }));
        }
        Self {
            full: ArrayQueue::new(INBOX_CAPACITY),
            free,
            overflow: AtomicU64::new(0),
        }
    }

    /// A buffer to receive into, or `None` when all are queued (the datagram is then dropped
    /// and counted).
    pub fn take_free(&self) -> Option<Box<Datagram>> {
        let buffer = self.free.pop();
        if buffer.is_none() {
            self.overflow.fetch_add(1, Ordering::Relaxed);
        }
        buffer
    }

    /// Queues a filled buffer for the mixer.
    pub fn deliver(&self, datagram: Box<Datagram>) {
        if let Err(datagram) = self.full.push(datagram) {
            self.overflow.fetch_add(1, Ordering::Relaxed);
            let _ = self.free.push(datagram);
        }
    }

    /// The oldest queued datagram.
    pub fn next(&self) -> Option<Box<Datagram>> {
        self.full.pop()
    }

    /// Returns a buffer for reuse.
    pub fn recycle(&self, datagram: Box<Datagram>) {
        let _ = self.free.push(datagram);
    }
}
