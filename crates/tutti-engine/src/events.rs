//! What the media plane tells the control plane.

use std::time::Duration;

use crate::{LegCounters, ParticipantKey, RoomId};

/// Why a participant left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    /// Removed by a command (kick, hang-up).
    Kicked,
    /// No RTP for the configured timeout.
    RtpTimeout,
    /// The room was destroyed.
    RoomDestroyed,
    /// The engine shut down.
    Shutdown,
}

impl LeaveReason {
    /// A short name for APIs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kicked => "kicked",
            Self::RtpTimeout => "rtp_timeout",
            Self::RoomDestroyed => "room_destroyed",
            Self::Shutdown => "shutdown",
        }
    }
}

/// An event from the media plane.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// A participant's media is live in the room.
    Joined {
        /// The room.
        room: RoomId,
        /// The participant.
        participant: ParticipantKey,
    },
    /// A participant left.
    Left {
        /// The room.
        room: RoomId,
        /// The participant.
        participant: ParticipantKey,
        /// Why.
        reason: LeaveReason,
        /// Its media counters at the end, drops by reason among them.
        counters: LegCounters,
    },
    /// A participant's media latched onto a source: the first packet from where the
    /// signalling said, or a move to the offer's own address.
    Latched {
        /// The room.
        room: RoomId,
        /// The participant.
        participant: ParticipantKey,
        /// Where its media comes from, and goes to, now.
        source: std::net::SocketAddr,
    },
    /// Started talking.
    StartTalking {
        /// The room.
        room: RoomId,
        /// The participant.
        participant: ParticipantKey,
    },
    /// Stopped talking.
    StopTalking {
        /// The room.
        room: RoomId,
        /// The participant.
        participant: ParticipantKey,
    },
    /// Talked while muted.
    MuteDetect {
        /// The room.
        room: RoomId,
        /// The participant.
        participant: ParticipantKey,
    },
    /// Pressed a key.
    Dtmf {
        /// The room.
        room: RoomId,
        /// The participant.
        participant: ParticipantKey,
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        digit: char,
        /// How long it was held.
        duration: Duration,
    },
    /// A tick ran later than its deadline.
    TickOverrun {
        /// Mixer thread index.
        thread: usize,
        /// How late.
        late_by: Duration,
    },
    /// A recording was finished and its file closed.
    RecordingFinished {
        /// The room.
        room: RoomId,
        /// The file.
        path: std::path::PathBuf,
        /// Its length.
        duration: Duration,
    },
}
