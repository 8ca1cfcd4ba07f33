//! # tutti-conference: the domain of tutti's control plane
//!
//! Accounts and their API keys, tokens, conference documents and their validation: the rules
//! every API face (Kazoo, VoIPbin, FoneStorm) shares, so a face only translates. Documents use
//! Kazoo's field names internally; validation errors come in Kazoo's shape, which the other
//! faces re-shape.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod actions;
mod caller_controls;
mod calls;
mod cluster;
mod departures;
mod dialin;
pub mod dialout;
pub mod events;
pub mod fields;
pub mod lifecycle;
mod live;
pub mod lobby;
mod media;
pub mod outbox;
mod recordings;
mod schedule;
pub mod schema;
mod service;
mod sip_directory;
mod webrtc;

/// The outbound-address rule and media names, shared by every face and the server.
pub use tutti_outbound as outbound;

pub use cluster::{ClusterView, NODE_LOST};
pub use dialin::{CallState, IncomingCall, LiveCall, ENTRY_TIMEOUT};
pub use dialout::{
    check_sip_uri, DialOut, DialProgress, DialRequest, Dialer, DEFAULT_DIAL_TIMEOUT,
};
pub use events::{ConferenceEvent, Departure, Digit, MediaEvent, MediaEventKind};
pub use lifecycle::{
    Call, CallStatus, ConferenceState, ConferenceStatus, Recording, RecordingStatus,
};
pub use live::{
    JoinRequest, Participant, ParticipantAction, Realtime, Relationship, DEFAULT_ENTRY_TONE,
    DEFAULT_EXIT_TONE,
};
pub use media::{
    JoinSpec, JoinedMedia, MediaError, MediaMetrics, MediaPlane, OfferedMedia, ParticipantState,
    ParticipantUpdate, RoomSpec, RoomState, UNPLAYABLE,
};
pub use recordings::MAX_RECORDING_SECONDS;
pub use schedule::{Attendance, ScheduleStatus, SCHEDULE_INTERVAL};
pub use sip_directory::{
    digest_ha1, is_sip_number, SipCredential, SipDirectory, SipNumber, SipUser, DEFAULT_SIP_REALM,
    MIN_SIP_PASSWORD,
};

pub use schema::{validate_conference, ValidationErrors};
pub use service::{
    Conference, ConferenceService, NewAccount, ServiceError, Session, DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
};
pub use webrtc::{WebCredential, WebKind, WebSession};

#[cfg(test)]
mod dialin_tests;

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use crate::media::*;

    /// A service over an in-memory store and [`FakeMedia`].
    pub(crate) fn service() -> std::sync::Arc<crate::ConferenceService> {
        crate::ConferenceService::new(
            std::sync::Arc::new(tutti_store::SqliteStore::in_memory().unwrap()),
            std::sync::Arc::new(FakeMedia),
            std::time::Duration::from_secs(3600),
        )
    }

    /// A media plane that refuses tone strings containing "abc" with "bad tone" and runs no
    /// rooms.
    pub(crate) struct FakeMedia;

    impl MediaPlane for FakeMedia {
        fn check_tone(&self, tone: &str) -> Result<(), String> {
            if tone.contains("abc") {
                Err("bad tone".into())
            } else {
                Ok(())
            }
        }
        fn ensure_room(&self, _: Uuid, _: &RoomSpec) -> Result<(), MediaError> {
            Ok(())
        }
        fn end_room(&self, _: Uuid) {}
        fn join(&self, _: Uuid, _: &JoinSpec) -> Result<JoinedMedia, MediaError> {
            Err(MediaError::Unavailable("no media in this test".into()))
        }
        fn kick(&self, _: Uuid, participant: u32) -> Result<(), MediaError> {
            Err(MediaError::NoParticipant(participant))
        }
        fn update(
            &self,
            _: Uuid,
            _: Option<u32>,
            _: ParticipantUpdate,
            _: bool,
        ) -> Result<(), MediaError> {
            Ok(())
        }
        fn set_locked(&self, _: Uuid, _: bool) -> Result<(), MediaError> {
            Ok(())
        }
        fn play(
            &self,
            _: Uuid,
            _: Option<u32>,
            _: &str,
        ) -> Result<std::time::Duration, MediaError> {
            Ok(std::time::Duration::ZERO)
        }
        fn update_room(&self, _: Uuid, _: &RoomSpec) -> Result<(), MediaError> {
            Ok(())
        }
        fn relate(&self, _: Uuid, _: u32, _: u32, _: bool) -> Result<(), MediaError> {
            Ok(())
        }
        fn room_state(&self, _: Uuid) -> Option<RoomState> {
            None
        }
        fn start_recording(
            &self,
            _: Uuid,
            _: Option<std::time::Duration>,
        ) -> Result<String, MediaError> {
            Err(MediaError::Unavailable("no media in this test".into()))
        }
        fn stop_recording(&self, _: Uuid) -> Result<(), MediaError> {
            Ok(())
        }
    }
}
