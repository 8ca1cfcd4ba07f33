//! Participants whose packets pass through another endpoint of this process (the WebRTC
//! endpoint: ICE, DTLS and SRTP happen there) instead of a UDP port of their own. The engine
//! does everything else as for any caller: jitter buffer, decoding, RFC 6464 levels, mixing,
//! encoding, mute, deaf, kick.
//!
//! The endpoint hands each plain RTP packet it received to [`RelayLink::deliver`] (into the
//! participant's inbox, as the receive thread does for a UDP caller) and takes what the mixer
//! wrote with [`RelayLink::take`] when its [`RelayWaker`] is woken. Both directions are bounded
//! queues of buffers allocated at join: neither the mixer thread nor the endpoint allocates per
//! packet, and neither blocks the other.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;

use crate::inbox::{Inbox, MAX_DATAGRAM};

/// Packets the mixer may have written for a relayed participant before the endpoint takes
/// them (≈ 0.6 s of 20 ms packets).
const OUTBOX_CAPACITY: usize = 32;

/// Wakes the endpoint that carries relayed participants.
pub trait RelayWaker: Send + Sync + std::fmt::Debug {
    /// The participant joined with `token` has packets to take or has left. Called from mixer
    /// threads, at most once per participant and tick; must neither block nor allocate.
    fn wake(&self, token: u64);
}

/// One outgoing packet.
struct Packet {
    len: usize,
    data: [u8; MAX_DATAGRAM],
}

/// What both sides of one relayed participant share.
struct Shared {
    inbox: Arc<Inbox>,
    full: ArrayQueue<Box<Packet>>,
    free: ArrayQueue<Box<Packet>>,
    closed: AtomicBool,
    /// Packets the mixer wrote that the endpoint had no room for.
    overflow: AtomicU64,
    waker: Arc<dyn RelayWaker>,
    token: u64,
}

/// The endpoint's side of one relayed participant (cheap to clone).
#[derive(Clone)]
pub struct RelayLink(Arc<Shared>);

impl PartialEq for RelayLink {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for RelayLink {}

impl std::fmt::Debug for RelayLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayLink")
            .field("token", &self.0.token)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// Any address: relayed packets have no source of their own worth latching onto.
const NO_SOURCE: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

impl RelayLink {
    /// Gives the participant one plain (decrypted) RTP packet it sent, received at `at`.
    /// Returns `false` when it was not queued: the participant's queue is full (the mixer fell
    /// behind; counted as an `overflow` drop), the packet is larger than any RTP packet tutti
    /// takes (a `malformed` drop), or the participant has left.
    pub fn deliver(&self, rtp: &[u8], at: Instant) -> bool {
        if self.is_closed() {
            return false;
        }
        let inbox = &self.0.inbox;
        if rtp.len() > MAX_DATAGRAM {
            inbox.count_drop(crate::DropReason::Malformed);
            return false;
        }
        let Some(mut datagram) = inbox.take_free() else {
            return false;
        };
        datagram.data[..rtp.len()].copy_from_slice(rtp);
        datagram.len = rtp.len();
        datagram.from = NO_SOURCE;
        datagram.at = at;
        datagram.pinned = false;
        inbox.deliver(datagram);
        true
    }

    /// Takes, oldest first, each plain RTP packet the mixer wrote for the participant.
    pub fn take(&self, mut each: impl FnMut(&[u8])) {
        while let Some(packet) = self.0.full.pop() {
            each(&packet.data[..packet.len]);
            let _ = self.0.free.push(packet);
        }
    }

    /// Whether the participant has left its room (kick, hang-up, the room ended): the endpoint
    /// should close its peer.
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }

    /// Packets the mixer wrote that were lost because the endpoint did not take them in time.
    pub fn overflow(&self) -> u64 {
        self.0.overflow.load(Ordering::Relaxed)
    }
}

/// The engine's side of a relayed participant: where its leg writes, and how it is closed.
#[derive(Clone)]
pub(crate) struct RelayPort(Arc<Shared>);

impl RelayPort {
    /// Both sides of a new relayed participant whose packets arrive in `inbox`; everything is
    /// allocated here, off the mixer thread.
    pub(crate) fn new(
        inbox: Arc<Inbox>,
        waker: Arc<dyn RelayWaker>,
        token: u64,
    ) -> (RelayPort, RelayLink) {
        let free = ArrayQueue::new(OUTBOX_CAPACITY);
        for _ in 0..OUTBOX_CAPACITY {
            let _ = free.push(Box::new(Packet {
                len: 0,
                data: [0; MAX_DATAGRAM],
            }));
        }
        let shared = Arc::new(Shared {
            inbox,
            full: ArrayQueue::new(OUTBOX_CAPACITY),
            free,
            closed: AtomicBool::new(false),
            overflow: AtomicU64::new(0),
            waker,
            token,
        });
        (RelayPort(shared.clone()), RelayLink(shared))
    }

    /// Queues a packet the leg wrote with `write` (which returns its length, or `None`) for
    /// the endpoint and wakes it. Returns whether it was queued.
    pub(crate) fn send(&self, write: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        let shared = &self.0;
        let Some(mut packet) = shared.free.pop() else {
            shared.overflow.fetch_add(1, Ordering::Relaxed);
            shared.waker.wake(shared.token);
            return false;
        };
        let Some(len) = write(&mut packet.data[..]) else {
            let _ = shared.free.push(packet);
            return false;
        };
        packet.len = len;
        // Cannot fail: there are as many buffers as queue slots.
        let _ = shared.full.push(packet);
        shared.waker.wake(shared.token);
        true
    }

    /// The participant left: the endpoint is told to close its peer.
    pub(crate) fn close(&self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.waker.wake(self.0.token);
    }
}
