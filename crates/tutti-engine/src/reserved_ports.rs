//! Media sockets held between calls' legs: bound by an offer that waits for its answer, or
//! kept by a participant that left one room to join another on the same port. A reservation
//! not taken within its time to live is closed, so none can leak.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use tutti_rtp::sdp::OfferConfig;

/// One held socket.
pub(crate) struct Reserved {
    pub(crate) socket: Arc<UdpSocket>,
    /// The offer tutti made on it, when it waits for an answer.
    pub(crate) offer: Option<OfferConfig>,
    since: Instant,
}

impl Reserved {
    /// A socket held from now.
    pub(crate) fn new(socket: Arc<UdpSocket>, offer: Option<OfferConfig>) -> Self {
        Self {
            socket,
            offer,
            since: Instant::now(),
        }
    }
}

/// The held sockets, by local port.
pub(crate) struct ReservedPorts {
    held: Mutex<HashMap<u16, Reserved>>,
    ttl: Duration,
}

impl ReservedPorts {
    /// Reservations that live for `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            held: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<u16, Reserved>> {
        // The map stays consistent whatever panicked while holding it.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `reserved` for `port` (closing expired reservations).
    pub(crate) fn insert(&self, port: u16, reserved: Reserved) {
        let mut held = self.held();
        self.expire(&mut held);
        held.insert(port, reserved);
    }

    /// Takes the reservation of `port`, with what arrived on the socket meanwhile discarded:
    /// a caller heard from its first fresh packet, not from a backlog.
    pub(crate) fn take(&self, port: u16) -> Option<Reserved> {
        let reserved = {
            let mut held = self.held();
            self.expire(&mut held);
            held.remove(&port)?
        };
        let mut buf = [0u8; 1500];
        // Bounded: a socket buffer holds far fewer datagrams than this.
        for _ in 0..4096 {
            match reserved.socket.recv_from(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // A datagram, or an ICMP error queued by an earlier send: keep draining.
                _ => {}
            }
        }
        Some(reserved)
    }

    /// Closes the reservation of `port`; returns whether there was one.
    pub(crate) fn release(&self, port: u16) -> bool {
        let mut held = self.held();
        self.expire(&mut held);
        held.remove(&port).is_some()
    }

    /// How many sockets are held (expired ones closed first).
    pub(crate) fn len(&self) -> usize {
        let mut held = self.held();
        self.expire(&mut held);
        held.len()
    }

    /// Closes the reservations whose time ran out.
    pub(crate) fn expire_now(&self) {
        let mut held = self.held();
        self.expire(&mut held);
    }

    fn expire(&self, held: &mut HashMap<u16, Reserved>) {
        let ttl = self.ttl;
        held.retain(|_, reserved| reserved.since.elapsed() < ttl);
    }
}
