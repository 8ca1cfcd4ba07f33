//! What a tick reports besides audio.

use crate::{ParticipantId, SourceId};

/// Something a tick observed. A participant produces at most two events per tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MixEvent {
    /// A participant who may speak started talking.
    StartTalking(ParticipantId),
    /// A participant stopped talking (went quiet for the hangover, or was muted while talking).
    StopTalking(ParticipantId),
    /// A muted participant is talking.
    MuteDetect(ParticipantId),
    /// A source played its last frame, or its listener left.
    SourceFinished(SourceId),
}
