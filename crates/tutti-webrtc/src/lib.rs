//! tutti's WebRTC endpoint: browsers join rooms over WebRTC (ICE-lite, DTLS-SRTP, Opus).
//!
//! One UDP port carries every peer; one IO thread drives them all with
//! [str0m](https://docs.rs/str0m) (sans-IO) in RTP mode. Each peer is a participant of an
//! engine room joined as a *relay leg* ([`tutti_engine::RelayLink`]): the endpoint decrypts what
//! the browser sends and hands the plain RTP to the engine, and encrypts what the mixer writes
//! for it. The engine does everything else (jitter buffer, decoding, levels, mixing, encoding).
//!
//! - [`WebRtcEndpoint::join`] answers a browser's offer (ICE-lite, one host candidate, Opus
//!   only, the audio level and `mid` extensions; no transport-wide congestion control).
//! - Datagrams are routed by source address, STUN binding requests from new addresses by the
//!   local ICE ufrag in their USERNAME ([`demux`]); everything else is a counted drop.
//! - Peers that do not connect within [`CONNECT_TIMEOUT`], or stay ICE-disconnected longer
//!   than [`DISCONNECTED_TIMEOUT`], or whose stack fails, leave their room and are counted.

mod config;
pub mod demux;
mod endpoint;
mod error;
mod io;
mod metrics;
pub mod offer;

pub use config::{IceServer, WebRtcConfig};
pub use demux::DropReason;
pub use endpoint::{WebRtcEndpoint, WebRtcJoined, CONNECT_TIMEOUT, DISCONNECTED_TIMEOUT};
pub use error::WebRtcError;
pub use metrics::{record, FailReason, WebRtcMetrics};
pub use offer::is_webrtc_offer;
