//! The crate's error type.

use crate::tone::ToneError;

/// Everything tutti-mix can refuse. Nothing here is raised inside a tick.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MixError {
    /// The participant id is not (or no longer) in this room.
    #[error("no such participant in this room")]
    UnknownParticipant,
    /// The source id is not (or no longer) in this room.
    #[error("no such source in this room")]
    UnknownSource,
    /// The room holds as many participants as it can.
    #[error("the room is full ({limit} participants)")]
    RoomFull {
        /// The limit.
        limit: usize,
    },
    /// The room plays as many sources as it can.
    #[error("the room already plays {limit} sources")]
    TooManySources {
        /// The limit.
        limit: usize,
    },
    /// A relation between a participant and itself (nobody hears their own voice anyway).
    #[error("a participant cannot be related to itself")]
    SelfRelation,
    /// A tone string was refused.
    #[error(transparent)]
    Tone(#[from] ToneError),
}
