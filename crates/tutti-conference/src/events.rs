//! What happens in conferences, for websocket subscribers and webhooks: one stream for every
//! face, which each renders in its own shape.

use uuid::Uuid;

/// Something that happened in a conference, named as Kazoo names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConferenceEvent {
    /// The owner.
    pub account: Uuid,
    /// The conference.
    pub conference: Uuid,
    /// Kazoo's names — `conference-create`, `conference-destroy`, `lock`, `unlock`,
    /// `add-member` (a call joined), `del-member` (a call left), `start-talking`,
    /// `stop-talking`, `mute-member`, `unmute-member`, `deaf-member`, `undeaf-member`,
    /// `dtmf` (a participant pressed a key: see `digit`) — and
    /// the lifecycle's: `document-created`, `document-updated`, `document-deleted`,
    /// `status-changed` (status, participants present or recording changed), `call-joining`,
    /// `call-leaving`.
    pub name: &'static str,
    /// The participant's call, for participant events.
    pub call_id: Option<Uuid>,
    /// The participant, for participant events.
    pub participant_id: Option<u32>,
    /// The key pressed, for `dtmf` events.
    pub digit: Option<Digit>,
}

/// A key a participant pressed (RFC 4733 telephone event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digit {
    /// `0`–`9`, `*`, `#`, `A`–`D`.
    pub digit: char,
    /// How long it was held, in milliseconds.
    pub duration_ms: u32,
}

/// The event names Kazoo's websocket knows.
pub const KAZOO_EVENTS: [&str; 13] = [
    "conference-create",
    "conference-destroy",
    "lock",
    "unlock",
    "add-member",
    "del-member",
    "start-talking",
    "stop-talking",
    "mute-member",
    "unmute-member",
    "deaf-member",
    "undeaf-member",
    "dtmf",
];

impl ConferenceEvent {
    /// Whether Kazoo's websocket shows this event.
    pub fn is_kazoo(&self) -> bool {
        KAZOO_EVENTS.contains(&self.name)
    }
}

/// What the media plane reports about a participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEventKind {
    /// Started talking.
    StartTalking,
    /// Stopped talking.
    StopTalking,
    /// Pressed a key.
    Dtmf(Digit),
    /// Is out of the room. Every departure is reported here, whoever caused it; the service
    /// books each participant's departure once, whichever report comes first.
    Left(Departure),
}

/// Why a participant left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    /// Removed through the API (kick, a VoIPbin DELETE, a `connect` partner's leaving).
    Kicked,
    /// Hung up (a `hangup` action, or the caller's own signalling).
    Hangup,
    /// Sent no media for the media plane's timeout.
    Timeout,
    /// The conference ended (deleted, terminated, its room closed).
    ConferenceEnded,
    /// The server is stopping.
    Shutdown,
}

impl Departure {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kicked => "kick",
            Self::Hangup => "hangup",
            Self::Timeout => "timeout",
            Self::ConferenceEnded => "conference_ended",
            Self::Shutdown => "shutdown",
        }
    }
}

/// A media-plane report about one participant of a room (named by its conference id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaEvent {
    /// The room.
    pub conference: Uuid,
    /// The participant.
    pub participant_id: u32,
    /// What happened.
    pub kind: MediaEventKind,
}

/// How many events a slow subscriber may lag before it misses some.
pub const EVENT_BACKLOG: usize = 4096;
