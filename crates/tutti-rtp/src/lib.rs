//! # tutti-rtp: sans-IO RTP for tutti
//!
//! Protocol state that never touches a socket or the clock: bytes and times go in, bytes,
//! frames and events come out.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod dtmf;
pub mod jitter;
pub mod packet;
pub mod sdp;
