//! Which peer a datagram on the shared port belongs to: by its source address once known, a
//! STUN binding request by the local ICE user name fragment in its USERNAME. Never a scan of
//! every peer.

use std::collections::HashMap;
use std::net::SocketAddr;

use str0m::ice::StunMessage;

/// A peer's handle inside the endpoint (the token the engine wakes it with).
pub type PeerToken = u64;

/// The most source addresses one peer is reached from (its ICE candidates that checked).
pub const MAX_ADDRESSES_PER_PEER: usize = 8;

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// DTLS or SRTP from an address no peer has checked from.
    UnknownSource,
    /// STUN whose user name names no peer (or has none, from an unknown address).
    StunUnmatched,
    /// Not STUN, DTLS, RTP or RTCP (RFC 7983), or a STUN message that does not parse.
    Malformed,
    /// The peer's stack did not take it (not from its checked pair, or it failed on it).
    PeerError,
    /// The socket could not send.
    SendFailed,
}

impl DropReason {
    /// Every reason, for metrics.
    pub const ALL: [Self; 5] = [
        Self::UnknownSource,
        Self::StunUnmatched,
        Self::Malformed,
        Self::PeerError,
        Self::SendFailed,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::UnknownSource => "unknown_source",
            Self::StunUnmatched => "stun_unmatched",
            Self::Malformed => "malformed",
            Self::PeerError => "peer_error",
            Self::SendFailed => "send_failed",
        }
    }
}

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To this peer's stack.
    Peer(PeerToken),
    /// Nowhere.
    Drop(DropReason),
}

/// The indexes of the shared port: peers by remote address and by local ICE ufrag.
#[derive(Debug, Default)]
pub struct Demux {
    by_addr: HashMap<SocketAddr, PeerToken>,
    by_ufrag: HashMap<String, PeerToken>,
    addresses: HashMap<PeerToken, Vec<SocketAddr>>,
}

impl Demux {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where a datagram from `source` goes.
    pub fn route(&self, source: SocketAddr, data: &[u8]) -> Route {
        let Some(&first) = data.first() else {
            return Route::Drop(DropReason::Malformed);
        };
        match first {
            // STUN (RFC 7983 §7).
            0..=3 => {
                let Ok(message) = StunMessage::parse(data) else {
                    return Route::Drop(DropReason::Malformed);
                };
                match message.split_username() {
                    Some((local, _remote)) => self
                        .by_ufrag
                        .get(local)
                        .map_or(Route::Drop(DropReason::StunUnmatched), |&t| Route::Peer(t)),
                    None => self
                        .by_addr
                        .get(&source)
                        .map_or(Route::Drop(DropReason::StunUnmatched), |&t| Route::Peer(t)),
                }
            }
            // DTLS, RTP and RTCP.
            20..=63 | 128..=191 => self
                .by_addr
                .get(&source)
                .map_or(Route::Drop(DropReason::UnknownSource), |&t| Route::Peer(t)),
            _ => Route::Drop(DropReason::Malformed),
        }
    }

    /// Indexes a new peer by its local ICE ufrag.
    pub fn add_peer(&mut self, token: PeerToken, ufrag: &str) {
        self.by_ufrag.insert(ufrag.to_owned(), token);
        self.addresses.entry(token).or_default();
    }

    /// The peer's local ufrag changed (ICE restart).
    pub fn change_ufrag(&mut self, token: PeerToken, old: &str, new: &str) {
        if self.by_ufrag.get(old) == Some(&token) {
            self.by_ufrag.remove(old);
        }
        self.by_ufrag.insert(new.to_owned(), token);
    }

    /// The peer's stack sent to `source` (it answered a check with the right credentials, or
    /// it is the nominated pair): later datagrams from there go to it. Returns false when the peer already has its most addresses (the datagram still counts).
    pub fn learn(&mut self, token: PeerToken, source: SocketAddr) -> bool {
        if self.by_addr.get(&source) == Some(&token) {
            return true;
        }
        let Some(addresses) = self.addresses.get_mut(&token) else {
            return false;
        };
        if addresses.len() >= MAX_ADDRESSES_PER_PEER {
            return false;
        }
        addresses.push(source);
        if let Some(previous) = self.by_addr.insert(source, token) {
            // The address moved from another peer (a reused port): forget it there.
            if let Some(list) = self.addresses.get_mut(&previous) {
                list.retain(|a| *a != source);
            }
        }
        true
    }

    /// Forgets a peer.
    pub fn remove_peer(&mut self, token: PeerToken, ufrag: &str) {
        if self.by_ufrag.get(ufrag) == Some(&token) {
            self.by_ufrag.remove(ufrag);
        }
        for addr in self.addresses.remove(&token).unwrap_or_default() {
            if self.by_addr.get(&addr) == Some(&token) {
                self.by_addr.remove(&addr);
            }
        }
    }

    /// How many peers are indexed.
    pub fn peers(&self) -> usize {
        self.addresses.len()
    }
}
