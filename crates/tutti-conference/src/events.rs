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
    /// Whether the event happened on another node of the cluster: this node shows it to its
    /// own subscribers, and leaves its webhooks to the node where it happened.
    pub remote: bool,
}

/// A key a participant pressed (RFC 4733 telephone event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digit {
    /// `0`–`9`, `*`, `#`, `A`–`D`.
    pub digit: char,
    /// How long it was held, in milliseconds.
    pub duration_ms: u32,
}

/// Every event name the service publishes: Kazoo's first ([`KAZOO_EVENTS`]), then the
/// lifecycle's.
pub const EVENT_NAMES: [&str; 20] = [
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
    "document-created",
    "document-updated",
    "document-deleted",
    "status-changed",
    "call-dialing",
    "call-joining",
    "call-leaving",
];

/// The event names Kazoo's websocket knows.
pub const KAZOO_EVENTS: &[&str] = EVENT_NAMES.split_at(13).0;

impl ConferenceEvent {
    /// Whether Kazoo's websocket shows this event.
    pub fn is_kazoo(&self) -> bool {
        KAZOO_EVENTS.contains(&self.name)
    }

    /// The event as JSON, for sharing with the other nodes of a cluster.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "account": self.account,
            "conference": self.conference,
            "name": self.name,
            "call_id": self.call_id,
            "participant_id": self.participant_id,
            "digit": self.digit.map(|d| serde_json::json!({"digit": d.digit.to_string(), "duration_ms": d.duration_ms})),
        })
    }

    /// An event another node shared ([`ConferenceEvent::to_json`]), marked remote; `None` for
    /// anything else, including names this version does not publish.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        let uuid = |key: &str| value.get(key)?.as_str()?.parse::<Uuid>().ok();
        let name = value.get("name")?.as_str()?;
        let name = *EVENT_NAMES.iter().find(|known| **known == name)?;
        let digit = match value.get("digit") {
            Some(serde_json::Value::Object(digit)) => Some(Digit {
                digit: digit.get("digit")?.as_str()?.chars().next()?,
                duration_ms: u32::try_from(digit.get("duration_ms")?.as_u64()?).ok()?,
            }),
            _ => None,
        };
        Some(Self {
            account: uuid("account")?,
            conference: uuid("conference")?,
            name,
            call_id: uuid("call_id"),
            participant_id: value
                .get("participant_id")
                .and_then(serde_json::Value::as_u64)
                .and_then(|p| u32::try_from(p).ok()),
            digit,
            remote: true,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_cross_nodes_as_json_and_arrive_remote() {
        let event = ConferenceEvent {
            account: Uuid::now_v7(),
            conference: Uuid::now_v7(),
            name: "dtmf",
            call_id: Some(Uuid::now_v7()),
            participant_id: Some(7),
            digit: Some(Digit {
                digit: '#',
                duration_ms: 120,
            }),
            remote: false,
        };
        let back = ConferenceEvent::from_json(&event.to_json()).unwrap();
        assert_eq!(
            back,
            ConferenceEvent {
                remote: true,
                ..event.clone()
            }
        );
        for name in EVENT_NAMES {
            let plain = ConferenceEvent {
                name,
                call_id: None,
                participant_id: None,
                digit: None,
                ..event.clone()
            };
            let back = ConferenceEvent::from_json(&plain.to_json()).unwrap();
            assert_eq!((back.name, back.call_id, back.digit), (name, None, None));
        }
        let mut unknown = event.to_json();
        unknown["name"] = "format-disk".into();
        assert_eq!(ConferenceEvent::from_json(&unknown), None);
        assert_eq!(ConferenceEvent::from_json(&serde_json::json!([1])), None);
        assert_eq!(
            (KAZOO_EVENTS.len(), KAZOO_EVENTS.last()),
            (13, Some(&"dtmf"))
        );
    }
}
