//! The crate's error type.

use std::path::PathBuf;

use crate::{ParticipantKey, RoomId};

/// Everything tutti-engine can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A WAV file could not be read or written.
    #[error("{path}: {source}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: hound::Error,
    },
    /// A WAV file holds something tutti cannot play.
    #[error("{path}: {reason}")]
    UnsupportedWav {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A prompt file could not be read.
    #[error("{path}: {source}")]
    ReadPrompt {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// An Ogg prompt file is damaged.
    #[error("{path}: {source}")]
    Ogg {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: ogg::OggReadError,
    },
    /// An Ogg Vorbis prompt file could not be decoded.
    #[error("{path}: {source}")]
    Vorbis {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: lewton::VorbisError,
    },
    /// A prompt file's audio could not be decoded or resampled.
    #[error("{path}: {source}")]
    PromptDecode {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: tutti_codec::CodecError,
    },
    /// A prompt file holds something tutti cannot play (an Ogg stream of another codec,
    /// multichannel Opus).
    #[error("{path}: {reason}")]
    UnsupportedPrompt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A codec could not be built.
    #[error(transparent)]
    Codec(#[from] tutti_codec::CodecError),
    /// The mixer refused something.
    #[error(transparent)]
    Mix(#[from] tutti_mix::MixError),
    /// A tone string was refused.
    #[error(transparent)]
    Tone(#[from] tutti_mix::ToneError),
    /// The SDP offer was refused.
    #[error(transparent)]
    Sdp(#[from] tutti_rtp::sdp::SdpError),
    /// A mixdown without callers.
    #[error("a mixdown needs at least one caller")]
    NoCallers,
    /// No such room.
    #[error("no room {0}")]
    UnknownRoom(RoomId),
    /// The room exists already.
    #[error("room {0} exists already")]
    RoomExists(RoomId),
    /// The room is locked.
    #[error("room {0} is locked")]
    RoomLocked(RoomId),
    /// No such participant in the room.
    #[error("room {room} has no participant {participant}")]
    UnknownParticipant {
        /// The room.
        room: RoomId,
        /// The participant asked for.
        participant: ParticipantKey,
    },
    /// The participant's packets pass through another endpoint (WebRTC), which renegotiates
    /// them itself; the engine cannot move or renegotiate its media.
    #[error("participant {participant} of room {room} is carried by another endpoint")]
    Relayed {
        /// The room.
        room: RoomId,
        /// The participant.
        participant: ParticipantKey,
    },
    /// The room has its maximum number of participants.
    #[error("room {room} is full ({max} participants)")]
    RoomFull {
        /// The room.
        room: RoomId,
        /// Its limit.
        max: usize,
    },
    /// Every media port of the range is in use.
    #[error("no free media port in {first}-{last}")]
    NoPortAvailable {
        /// First port of the range.
        first: u16,
        /// Last port of the range.
        last: u16,
    },
    /// A join asked for a media port that is neither reserved nor free to bind.
    #[error("media port {port} is not available: {source}")]
    PortUnavailable {
        /// The port asked for.
        port: u16,
        /// Why it could not be bound.
        source: std::io::Error,
    },
    /// The offer's media address is of the other IP family than this server's media.
    #[error("the offer's media address {offered} is {}, but this server's media address {media} is {}: offer an {} address", family(*offered), family(*media), family(*media))]
    AddressFamily {
        /// The offer's connection address.
        offered: std::net::IpAddr,
        /// The server's media address.
        media: std::net::IpAddr,
    },
    /// The negotiated codec has no implementation.
    #[error("codec {0} is not supported")]
    UnsupportedCodec(String),
    /// A socket or thread could not be set up.
    #[error("media socket: {0}")]
    Io(#[from] std::io::Error),
    /// A thread could not be started.
    #[error("starting a thread: {0}")]
    Thread(std::io::Error),
    /// The engine is shutting down.
    #[error("the media engine has stopped")]
    Stopped,
}

fn family(ip: std::net::IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}
