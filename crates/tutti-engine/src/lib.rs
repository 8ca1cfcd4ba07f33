//! # tutti-engine: tutti's media plane
//!
//! Rooms of RTP callers, mixed on dedicated threads. The [`Engine`] starts M mixer threads
//! (one per core by default) and pins each room to the least loaded one. Every 20 ms, on
//! absolute deadlines, a mixer thread runs each of its rooms:
//!
//! 1. datagrams received off-thread (one receive thread per mixer thread, waiting on all its
//!    sockets with epoll) are taken from each participant's bounded inbox: RTP into the jitter
//!    buffer, telephone events into digits, RTCP into statistics. The receive thread judges
//!    every datagram before queueing it: only the source the signalling proved may send (see
//!    [`source`]); the rest are dropped and counted by reason;
//! 2. each jitter buffer yields the next packet, decoded, or a loss recovered from FEC or
//!    concealed;
//! 3. [`tutti_mix`] mixes the room;
//! 4. each distinct mix is encoded once per codec (the shared mix with a room-level encoder,
//!    own mixes with the participant's encoder) and sent to each listener in its own RTP
//!    stream (own SSRC, sequence, timestamp, marker at talkspurt start);
//! 5. recordings get the room mix; snapshots are published every 100 ms.
//!
//! The control plane talks to it through [`Engine`]'s methods and reads [`EngineEvent`]s.
//! The offline [`mixdown`] runs the same mixer over WAV files.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod batch;
mod config;
mod engine;
mod error;
mod events;
pub mod histogram;
mod inbox;
mod leg;
pub mod mixdown;
mod mixer;
mod oggfile;
mod player;
mod reaper;
mod receiver;
mod recorder;
pub mod relay;
mod reserved_ports;
mod room;
mod room_sounds;
mod send_batch;
mod snapshot;
pub mod source;
pub mod wav;

pub use config::EngineConfig;
pub use engine::{Engine, EngineMetrics, JoinRequest, Joined};
pub use error::EngineError;
pub use events::{EngineEvent, LeaveReason};
pub use inbox::DropReason;
pub use leg::LegCounters;
pub use mixdown::{
    run_mixdown, Mixdown, MixdownCaller, MixdownPlan, TimelineEvent, TimelineEventKind,
};
pub use mixer::ParticipantChange;
pub use player::ClipPlayer;
pub use relay::{RelayLink, RelayWaker};
pub use room::{RoomSettings, RoomSound};
pub use snapshot::{PacketTotals, ParticipantSnapshot, RoomSnapshot};
pub use tutti_codec;
pub use tutti_mix;
pub use tutti_rtp;

/// A room's id (a UUID's 128 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u128);

impl std::fmt::Display for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A participant's number in its room (Kazoo's integer `participant_id`).
pub type ParticipantKey = u32;
