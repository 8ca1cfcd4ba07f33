//! What the domain needs from the media plane, as a trait it owns: the server adapts the
//! engine to it, and tests substitute their own.

use std::time::Duration;

use uuid::Uuid;

/// Why the media plane refused something.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The SDP offer was refused (no common codec, unsupported transport, garbage).
    #[error("{0}")]
    Offer(String),
    /// The room has its maximum number of participants.
    #[error("the conference is full ({0} participants)")]
    Full(usize),
    /// The room is locked.
    #[error("the conference is locked")]
    Locked,
    /// No such participant in the room.
    #[error("no participant {0}")]
    NoParticipant(u32),
    /// A tone that cannot be played; the text says why.
    #[error("{0}")]
    Media(String),
    /// Media that could not be fetched, opened or decoded. Deliberately says no more (whether
    /// a file exists, what a remote server answered): the details go to the server's log.
    #[error("{UNPLAYABLE}")]
    Unplayable,
    /// The media plane failed (ports exhausted, stopped).
    #[error("media plane: {0}")]
    Unavailable(String),
}

/// What [`MediaError::Unplayable`] says, whatever went wrong.
pub const UNPLAYABLE: &str = "media could not be fetched or is not playable audio";

/// How a room behaves, from its conference document.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomSpec {
    /// 0: no limit.
    pub max_participants: usize,
    /// Entry tone as a tone string, if any.
    pub entry_tone: Option<String>,
    /// Exit tone as a tone string, if any.
    pub exit_tone: Option<String>,
    /// Whether the room is a conference's, which a cluster runs on one node (placed there),
    /// rather than this node's own (a caller's lobby).
    pub conference: bool,
}

/// How a participant joins.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinSpec {
    /// The caller's SDP offer.
    pub offer: String,
    /// Joins muted.
    pub muted: bool,
    /// Joins deaf.
    pub deaf: bool,
    /// Moderator.
    pub moderator: bool,
    /// Talk threshold.
    pub energy_level: f32,
    /// Overrides the server's latching default for this caller (`false` for endpoints that
    /// send and receive on different ports).
    pub latching: Option<bool>,
    /// Where the caller's signalling came from (a SIP message's source), when known: a caller
    /// behind NAT, whose offer names a private address, is expected from this host.
    pub signalled_source: Option<std::net::IpAddr>,
    /// The local media port to use, when the caller already knows one (a call that moves from
    /// a dial-in lobby into its conference keeps the port its SDP answer named).
    pub port: Option<u16>,
}

/// A participant whose media is live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinedMedia {
    /// Its number in the room.
    pub participant_id: u32,
    /// The SDP answer.
    pub answer: String,
    /// The local media port the answer names.
    pub port: u16,
}

/// A media port tutti offered on, waiting for the caller's answer (a dial-out call, or a SIP
/// INVITE without SDP that tutti answers with an offer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedMedia {
    /// The SDP offer to send.
    pub offer: String,
    /// Its reserved local port: join with [`JoinSpec::port`] set to it and the caller's answer
    /// as [`JoinSpec::offer`].
    pub port: u16,
}

/// A change to participants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParticipantUpdate {
    /// Mute (false) or unmute (true).
    Speak(bool),
    /// Deaf (false) or undeaf (true).
    Hear(bool),
}

/// One participant's realtime state.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticipantState {
    /// Its number in the room.
    pub participant_id: u32,
    /// Talking now.
    pub talking: bool,
    /// Talking while muted.
    pub mute_detect: bool,
    /// Energy of the last frame.
    pub current_energy: f32,
    /// Talk threshold.
    pub energy_level: f32,
    /// May speak.
    pub speak: bool,
    /// May hear.
    pub hear: bool,
    /// Moderator.
    pub moderator: bool,
}

/// A room's realtime state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoomState {
    /// Locked against joins.
    pub locked: bool,
    /// Everyone in it.
    pub participants: Vec<ParticipantState>,
}

/// Counters of the media plane for monitoring.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaMetrics {
    /// Running rooms.
    pub rooms: u64,
    /// Participants in them.
    pub participants: u64,
    /// Participants per running room, by conference id.
    pub room_participants: Vec<(Uuid, u64)>,
    /// Upper bounds (seconds) of the tick-duration buckets.
    pub tick_bucket_bounds: Vec<f64>,
    /// Cumulative counts per bucket (the last is +Inf).
    pub tick_buckets: Vec<u64>,
    /// Sum of tick durations, seconds.
    pub tick_seconds_sum: f64,
    /// Ticks run.
    pub ticks: u64,
    /// Ticks that started more than a tick late.
    pub tick_overruns: u64,
    /// RTP packets received since the start.
    pub rtp_packets_in: u64,
    /// RTP packets sent since the start.
    pub rtp_packets_out: u64,
    /// RTP packets lost on the way in since the start.
    pub rtp_packets_lost: u64,
    /// Datagrams dropped since the start, by reason (`foreign_source`, `malformed`,
    /// `unexpected_payload_type`, `overflow`).
    pub rtp_dropped: Vec<(&'static str, u64)>,
    /// Audio packets decoded since the start.
    pub packets_decoded: u64,
    /// Silent audio packets not decoded since the start.
    pub packets_decode_skipped: u64,
}

/// The media plane as the conference service sees it. Rooms are named by their conference's
/// id and created on first use.
pub trait MediaPlane: Send + Sync {
    /// Checks that a tone string can be played; the error says what is wrong with it.
    fn check_tone(&self, tone: &str) -> Result<(), String>;
    /// Creates the room if it is not running, with `spec`.
    fn ensure_room(&self, room: Uuid, spec: &RoomSpec) -> Result<(), MediaError>;
    /// Ends the room: everyone leaves.
    fn end_room(&self, room: Uuid);
    /// Joins a plain-RTP participant.
    fn join(&self, room: Uuid, spec: &JoinSpec) -> Result<JoinedMedia, MediaError>;
    /// Applies a new offer from a participant already in the room (a SIP re-INVITE or UPDATE:
    /// hold with `sendonly`/`inactive`/`c=0.0.0.0`, resume, a new address or codec); returns
    /// the SDP answer (the `o=` session id kept, its version incremented). The participant
    /// keeps its port and its place in the room; a call on hold is not timed out. An offer
    /// with no common codec is [`MediaError::Offer`] (SIP 488) and the call keeps its media.
    /// Offers for one participant are applied one at a time (SIP answers a second
    /// re-INVITE during the first with 491).
    fn renegotiate(&self, room: Uuid, participant: u32, offer: &str) -> Result<String, MediaError> {
        let _ = (room, participant, offer);
        Err(MediaError::Unavailable(
            "this media plane cannot renegotiate".into(),
        ))
    }
    /// Makes an SDP offer on a newly reserved port (see [`OfferedMedia`]).
    fn offer(&self) -> Result<OfferedMedia, MediaError> {
        Err(MediaError::Unavailable(
            "this media plane cannot offer".into(),
        ))
    }
    /// Takes a participant out of the room but keeps its port reserved, for a join with
    /// [`JoinSpec::port`] (a dial-in caller moving from its lobby into the conference); returns
    /// the port. The participant leaves as a kick does: its [`MediaEventKind::Left`](crate::MediaEventKind::Left) with
    /// [`Departure::Kicked`](crate::Departure::Kicked) follows (and the room's exit tone plays), which is no kick of the
    /// call. A reserved port not joined on is closed after a few minutes (the engine: 3).
    fn detach(&self, room: Uuid, participant: u32) -> Result<u16, MediaError> {
        let _ = (room, participant);
        Err(MediaError::Unavailable(
            "this media plane cannot detach".into(),
        ))
    }
    /// Frees a reserved port nobody joined on.
    fn release_port(&self, port: u16) {
        let _ = port;
    }
    /// Removes a participant.
    fn kick(&self, room: Uuid, participant: u32) -> Result<(), MediaError>;
    /// Removes several participants at once (one round trip where the plane can).
    fn kick_many(&self, room: Uuid, participants: &[u32]) -> Result<(), MediaError> {
        participants
            .iter()
            .try_for_each(|&participant| match self.kick(room, participant) {
                Err(MediaError::NoParticipant(_)) => Ok(()),
                other => other,
            })
    }
    /// Applies a changed document to a running room (limits, tones).
    fn update_room(&self, room: Uuid, spec: &RoomSpec) -> Result<(), MediaError>;
    /// Whether `listener` hears `speaker` (both in `room`): `false` leaves the speaker out of
    /// what the listener hears, `true` restores it.
    fn relate(
        &self,
        room: Uuid,
        listener: u32,
        speaker: u32,
        hears: bool,
    ) -> Result<(), MediaError>;
    /// Changes one participant, or everyone (optionally sparing moderators).
    fn update(
        &self,
        room: Uuid,
        participant: Option<u32>,
        update: ParticipantUpdate,
        skip_moderators: bool,
    ) -> Result<(), MediaError>;
    /// Locks or unlocks the room.
    fn set_locked(&self, room: Uuid, locked: bool) -> Result<(), MediaError>;
    /// Plays a tone string, media file or URL (WAV or Ogg) to the room or one participant;
    /// returns how long it plays.
    fn play(
        &self,
        room: Uuid,
        participant: Option<u32>,
        media: &str,
    ) -> Result<Duration, MediaError>;
    /// Whether [`MediaPlane::speak`] has a speech engine to use.
    fn can_speak(&self) -> bool {
        false
    }
    /// Speaks `text` (text to speech) to the room or one participant, in `language` (e.g.
    /// `en-US`) with a `gender` voice (`male`, `female`, `neutral`); returns how long it plays.
    fn speak(
        &self,
        room: Uuid,
        participant: Option<u32>,
        text: &str,
        language: &str,
        gender: &str,
    ) -> Result<Duration, MediaError> {
        let _ = (room, participant, text, language, gender);
        Err(MediaError::Media(
            "no speech engine (espeak-ng) is installed".into(),
        ))
    }
    /// The room's realtime state, `None` when it is not running.
    fn room_state(&self, room: Uuid) -> Option<RoomState>;
    /// Starts recording the room's mix into a WAV file, for at most `max_duration` when given;
    /// returns the file's path (kept by the server, never shown to tenants).
    fn start_recording(
        &self,
        room: Uuid,
        max_duration: Option<Duration>,
    ) -> Result<String, MediaError>;
    /// Stops the room's recording (closing its file).
    fn stop_recording(&self, room: Uuid) -> Result<(), MediaError>;
    /// Counters for monitoring.
    fn metrics(&self) -> MediaMetrics {
        MediaMetrics::default()
    }
    /// Applies a WHIP/WHEP `PATCH` (an `application/trickle-ice-sdpfrag` fragment) to a
    /// WebRTC participant: adds its ICE candidates; when the fragment carries a new
    /// `ice-ufrag`/`ice-pwd`, restarts ICE and returns the answer fragment (`Some`).
    fn patch_ice(
        &self,
        room: Uuid,
        participant: u32,
        sdpfrag: &str,
    ) -> Result<Option<String>, MediaError> {
        let _ = (room, participant, sdpfrag);
        Err(MediaError::Unavailable(
            "this media plane has no WebRTC endpoint".into(),
        ))
    }
    /// The ICE servers (STUN/TURN) browsers should use to reach the WebRTC endpoint, as a JSON
    /// array of `RTCIceServer` objects (`{"urls": [...], "username": ..., "credential": ...}`).
    fn ice_servers(&self) -> serde_json::Value {
        serde_json::json!([])
    }
}
