//! # tutti-rtp: sans-IO RTP for tutti
//!
//! Protocol state that never touches a socket or the clock: datagrams and `Instant`s go in,
//! payloads, digits, reports and statistics come out. The engine owns the sockets and the
//! 20 ms clock and drives these pieces:
//!
//! - [`packet`]: sorting RTP from RTCP on a muxed port, parsing with `rtp-types`, RFC 8285
//!   header extensions and the RFC 6464 audio level, writing outgoing packets. Anything
//!   malformed is a [`packet::DropReason`] to count, never a panic.
//! - [`jitter`]: the adaptive jitter buffer (reordering, duplicates, late packets, wrap, SSRC
//!   changes, timestamp jumps, loss reports with the next packet for FEC).
//! - [`dtmf`]: RFC 4733 telephone events to digits.
//! - [`rtcp`]: receiver and sender reports, round-trip time.
//! - [`sdp`]: audio offer/answer, tutti answering or offering.
//!
//! Parsing uses `rtp-types`/`rtcp-types` (sans-IO) and webrtc-rs's `sdp`; nothing here
//! depends on an async runtime.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod dtmf;
pub mod jitter;
pub mod packet;
pub mod rtcp;
mod rtcp_report;
pub mod sdp;
