//! Datagrams on their way from a participant's socket to its mixer thread: a bounded queue
//! of preallocated buffers, recycled through a free list, so neither side allocates.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    /// It pinned the caller's stream to its source (see [`crate::source`]).
    pub pinned: bool,
    /// The bytes.
    pub data: [u8; MAX_DATAGRAM],
}

impl Datagram {
    /// The received bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// Why a datagram a participant's port received was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// From an address other than the source the signalling proved.
    ForeignSource,
    /// Not RTP or RTCP, or malformed.
    Malformed,
    /// RTP with a payload type the call did not negotiate.
    UnexpectedPayloadType,
    /// The participant's queue was full (the mixer fell behind).
    Overflow,
}

impl DropReason {
    /// Every reason, in a fixed order.
    pub const ALL: [DropReason; 4] = [
        Self::ForeignSource,
        Self::Malformed,
        Self::UnexpectedPayloadType,
        Self::Overflow,
    ];

    /// A short name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ForeignSource => "foreign_source",
            Self::Malformed => "malformed",
            Self::UnexpectedPayloadType => "unexpected_payload_type",
            Self::Overflow => "overflow",
        }
    }
}

/// Dropped datagrams by reason.
#[derive(Debug, Default)]
pub struct DropCounters([AtomicU64; 4]);

impl DropCounters {
    /// Counts one drop.
    pub fn count(&self, reason: DropReason) {
        self.0[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Drops so far for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason as usize].load(Ordering::Relaxed)
    }
}

/// The queue between a socket's receiver and the mixer thread.
pub struct Inbox {
    full: ArrayQueue<Box<Datagram>>,
    free: ArrayQueue<Box<Datagram>>,
    /// This participant's drops.
    pub drops: DropCounters,
    /// The engine's drops, all participants together, past and present.
    totals: Arc<DropCounters>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("queued", &self.full.len())
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// An empty inbox with its buffers allocated, counting its drops into `totals` too.
    pub fn new(totals: Arc<DropCounters>) -> Self {
        let free = ArrayQueue::new(INBOX_CAPACITY);
        for _ in 0..INBOX_CAPACITY {
            let _ = free.push(Box::new(Datagram {
                len: 0,
                from: SocketAddr::from(([0, 0, 0, 0], 0)),
                at: Instant::now(),
                pinned: false,
                data: [0; MAX_DATAGRAM],
            }));
        }
        Self {
            full: ArrayQueue::new(INBOX_CAPACITY),
            free,
            drops: DropCounters::default(),
            totals,
        }
    }

    /// Counts a dropped datagram, here and in the engine's totals.
    pub fn count_drop(&self, reason: DropReason) {
        self.drops.count(reason);
        self.totals.count(reason);
    }

    /// A buffer to receive into, or `None` when all are queued (the datagram is then dropped
    /// and counted).
    pub fn take_free(&self) -> Option<Box<Datagram>> {
        let buffer = self.free.pop();
        if buffer.is_none() {
            self.count_drop(DropReason::Overflow);
        }
        buffer
    }

    /// Queues a filled buffer for the mixer.
    pub fn deliver(&self, datagram: Box<Datagram>) {
        if let Err(datagram) = self.full.push(datagram) {
            self.count_drop(DropReason::Overflow);
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
