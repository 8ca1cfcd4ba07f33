//! Lifecycles every face shows in its own words: a conference's status, its participants'
//! calls and its recordings. Statuses only move forward.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a conference is in its life. Only moves forward.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ConferenceStatus {
    /// Created; its room has not run yet.
    #[default]
    Starting,
    /// Its room runs (or ran): callers may join.
    Progressing,
    /// Ending (deleted, timed out or past its end time): everyone is being removed, nobody may
    /// join.
    Terminating,
    /// Ended; nobody is left.
    Terminated,
}

impl ConferenceStatus {
    /// The status as VoIPbin spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConferenceStatus::Starting => "starting",
            ConferenceStatus::Progressing => "progressing",
            ConferenceStatus::Terminating => "terminating",
            ConferenceStatus::Terminated => "terminated",
        }
    }

    /// Whether the conference has begun ending.
    pub fn is_ending(self) -> bool {
        self >= ConferenceStatus::Terminating
    }
}

/// What the server keeps about a conference beside its document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConferenceState {
    /// Lifecycle status.
    pub status: ConferenceStatus,
    /// The generated 6-digit PIN that admits callers (unique among the account's live
    /// conferences).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// The recording running now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<Uuid>,
    /// Every recording made, oldest first.
    pub recording_ids: Vec<Uuid>,
    /// When the conference began ending, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending_since: Option<i64>,
}

impl ConferenceState {
    /// Moves the status to `to` if that is forward; says whether it moved.
    pub fn advance(&mut self, to: ConferenceStatus, now: i64) -> bool {
        if to <= self.status {
            return false;
        }
        if to.is_ending() && self.ending_since.is_none() {
            self.ending_since = Some(now);
        }
        self.status = to;
        true
    }
}

/// Where a participant's call is. Only moves forward.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CallStatus {
    /// A dial-out call ringing.
    Dialing,
    /// Its media is up and its pre-actions run; the room does not hear it yet.
    #[default]
    Joining,
    /// In the room.
    Joined,
    /// Being removed (its post-actions run).
    Leaving,
    /// Gone (VoIPbin's word).
    Leaved,
}

impl CallStatus {
    /// The status as VoIPbin spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Dialing => "dialing",
            CallStatus::Joining => "joining",
            CallStatus::Joined => "joined",
            CallStatus::Leaving => "leaving",
            CallStatus::Leaved => "leaved",
        }
    }

    /// Whether the call is in the room or on its way in.
    pub fn is_present(self) -> bool {
        self <= CallStatus::Joined
    }
}

/// A participant's call, kept after it leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Id (also the participant's `call_id`).
    pub id: Uuid,
    /// Owner.
    pub account_id: Uuid,
    /// The conference.
    pub conference_id: Uuid,
    /// The participant's number in the room.
    pub participant_id: u32,
    /// Status.
    pub status: CallStatus,
    /// Joined as a moderator.
    #[serde(default)]
    pub moderator: bool,
    /// Caller id name.
    #[serde(default)]
    pub caller_id_name: Option<String>,
    /// Caller id number.
    #[serde(default)]
    pub caller_id_number: Option<String>,
    /// Creation, Unix microseconds.
    pub created_us: i64,
    /// Last change, Unix microseconds.
    pub modified_us: i64,
    /// When it left, Unix microseconds.
    #[serde(default)]
    pub left_us: Option<i64>,
    /// Why the call ended other than by leaving: a dial-out that never joined (`SIP 486 Busy
    /// Here`), or `node_lost` when the cluster node running its room was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The cluster node whose room the call is in (none outside a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Where a recording is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingStatus {
    /// Writing.
    #[default]
    Recording,
    /// Finished: the file is complete.
    Ended,
}

impl RecordingStatus {
    /// The status as VoIPbin spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingStatus::Recording => "recording",
            RecordingStatus::Ended => "ended",
        }
    }
}

/// A recording of a conference's mix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub account_id: Uuid,
    /// The conference recorded.
    pub conference_id: Uuid,
    /// Status.
    pub status: RecordingStatus,
    /// File format (`wav`).
    pub format: String,
    /// The file on the server.
    pub path: String,
    /// Longest it may run, seconds (0: until stopped).
    pub max_duration: u64,
    /// Start, Unix microseconds.
    pub started_us: i64,
    /// End, Unix microseconds.
    #[serde(default)]
    pub ended_us: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward() {
        let mut state = ConferenceState::default();
        assert!(state.advance(ConferenceStatus::Progressing, 10));
        assert!(!state.advance(ConferenceStatus::Starting, 11));
        assert!(state.advance(ConferenceStatus::Terminating, 12));
        assert_eq!(state.ending_since, Some(12));
        assert!(!state.advance(ConferenceStatus::Progressing, 13));
        assert!(state.advance(ConferenceStatus::Terminated, 14));
        assert_eq!(state.ending_since, Some(12));
        assert_eq!(state.status.as_str(), "terminated");
        assert!(CallStatus::Joining < CallStatus::Leaved);
        assert!(CallStatus::Joined.is_present() && !CallStatus::Leaving.is_present());
    }

    #[test]
    fn state_round_trips_and_tolerates_missing_fields() {
        let state: ConferenceState = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(state, ConferenceState::default());
        let full = ConferenceState {
            status: ConferenceStatus::Terminating,
            pin: Some("123456".into()),
            recording_id: Some(Uuid::nil()),
            recording_ids: vec![Uuid::nil()],
            ending_since: Some(5),
        };
        let back: ConferenceState =
            serde_json::from_value(serde_json::to_value(&full).unwrap()).unwrap();
        assert_eq!(back, full);
    }
}
