//! What can go wrong, named for the one who asked.

use std::net::SocketAddr;

use tutti_engine::{EngineError, ParticipantKey, RoomId};

/// Why the WebRTC endpoint refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebRtcError {
    /// The offer is not SDP (the parser's own words).
    #[error("the offer is not valid SDP: {0}")]
    Malformed(String),
    /// The offer has no audio stream (with a port).
    #[error("the offer has no audio")]
    NoAudio,
    /// The audio stream is not a WebRTC one.
    #[error("the offer is not UDP/TLS/RTP/SAVPF (its audio is {0})")]
    NotWebRtc(String),
    /// No Opus among the audio formats.
    #[error("no common codec: the offer has no Opus")]
    NoOpus,
    /// The audio stream neither sends nor receives.
    #[error("the offer's audio is inactive")]
    Inactive,
    /// The WebRTC stack refused the offer (its words: missing ICE credentials or fingerprint…).
    #[error("the offer was refused: {0}")]
    Refused(String),
    /// A trickle-ICE fragment that cannot be used.
    #[error("the ICE fragment is not valid: {0}")]
    BadFragment(String),
    /// No WebRTC participant with this key in this room.
    #[error("room {room} has no WebRTC participant {participant}")]
    UnknownParticipant {
        /// The room.
        room: RoomId,
        /// The participant asked for.
        participant: ParticipantKey,
    },
    /// The engine refused the participant (room unknown, full, locked…).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The UDP port could not be opened.
    #[error("cannot open the WebRTC port {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The DTLS certificate could not be made.
    #[error("cannot make the DTLS certificate: {0}")]
    Certificate(String),
    /// The endpoint's thread could not start or has stopped.
    #[error("the WebRTC endpoint is not running: {0}")]
    Stopped(String),
}
