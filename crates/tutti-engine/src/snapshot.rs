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
}
