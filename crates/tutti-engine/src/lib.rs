//! # tutti-engine: tutti's media plane
//!
//! Drives [`tutti_mix`] rooms with real audio. Today it holds the pieces that work on files:
//! WAV input and output ([`wav`]) and the offline mixdown ([`mixdown`]), which runs a room tick
//! by tick as fast as the CPU allows, as if each WAV file were a caller. The real-time engine
//! (mixer threads, RTP, players and recorders on a 20 ms clock) builds on the same pieces.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod error;
pub mod mixdown;
pub mod wav;

pub use error::EngineError;
pub use mixdown::{
    run_mixdown, Mixdown, MixdownCaller, MixdownPlan, TimelineEvent, TimelineEventKind,
};
pub use tutti_mix;
