//! Realtime state of a room, published by its mixer thread a few times a second.

use std::time::Duration;

use tutti_rtp::jitter::JitterStats;

use crate::leg::LegCounters;
use crate::ParticipantKey;

/// One participant's realtime state.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticipantSnapshot {
    /// The participant.
    pub key: ParticipantKey,
    /// Talking now.
    pub talking: bool,
    /// Talking while muted.
    pub mute_detect: bool,
    /// Energy of the last frame (16-bit mean amplitude).
    pub current_energy: f32,
    /// May speak.
    pub speak: bool,
    /// May hear.
    pub hear: bool,
    /// Talk threshold.
    pub energy_level: f32,
    /// Moderator.
    pub moderator: bool,
    /// Packet counters.
    pub counters: LegCounters,
    /// Jitter buffer statistics.
    pub jitter: JitterStats,
    /// Round-trip time from RTCP.
    pub rtt: Option<Duration>,
}

/// A room's realtime state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoomSnapshot {
    /// Locked against joins.
    pub locked: bool,
    /// Ticks run.
    pub ticks: u64,
    /// Everyone in the room.
    pub participants: Vec<ParticipantSnapshot>,
    /// RTP packets of the participants who left the room (those in `participants` excluded):
    /// with theirs, the room's totals since it started.
    pub departed: PacketTotals,
}

/// RTP packet counts of some participants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketTotals {
    /// Packets received from them.
    pub packets_in: u64,
    /// Packets sent to them.
    pub packets_out: u64,
    /// Their packets lost on the way in (jitter-buffer losses).
    pub packets_lost: u64,
}

impl PacketTotals {
    /// Adds one participant's counts.
    pub fn add(&mut self, packets_in: u64, packets_out: u64, packets_lost: u64) {
        self.packets_in += packets_in;
        self.packets_out += packets_out;
        self.packets_lost += packets_lost;
    }
}

impl RoomSnapshot {
    /// The room's RTP packet counts since it started: those who are in it and those who left.
    pub fn packet_totals(&self) -> PacketTotals {
        let mut totals = self.departed;
        for p in &self.participants {
            totals.add(p.counters.packets_in, p.counters.packets_out, p.jitter.lost);
        }
        totals
    }
}
