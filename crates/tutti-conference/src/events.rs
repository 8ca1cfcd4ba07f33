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
    /// `stop-talking`, `mute-member`, `unmute-member`, `deaf-member`, `undeaf-member` — and
    /// the lifecycle's: `document-created`, `document-updated`, `document-deleted`,
    /// `status-changed` (status, participants present or recording changed), `call-joining`,
    /// `call-leaving`.
    pub name: &'static str,
    /// The participant's call, for participant events.
    pub call_id: Option<Uuid>,
    /// The participant, for participant events.
    pub participant_id: Option<u32>,
}

/// The event names Kazoo's websocket knows.
pub const KAZOO_EVENTS: [&str; 12] = [
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
    /// Left on its own (RTP timeout, room ended); kicks are reported by the service itself.
    Left,
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
