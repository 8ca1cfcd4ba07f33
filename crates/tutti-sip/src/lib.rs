//! SIP for tutti: phones and PBX trunks dial into conferences, and conferences dial out.
//!
//! The protocol is rsipstack's (RFC 3261/3262 transactions and dialogs over UDP, TCP and TLS);
//! this crate decides what the requests mean for conferences. Signalling runs on tokio; media
//! stays on the engine's legs, reached through the conference service.
//!
//! - [`SipServer`] listens, answers INVITEs ([`call`]), and keeps each call
//!   ([`in_call`]): re-INVITE/UPDATE (hold, resume, codec change), INFO digits, session
//!   timers, BYE both ways.
//! - Callers are admitted by trunk address or digest authentication ([`digest`]).
//! - [`inspect`] reads requests; it is what the fuzz targets drive.

mod admission;
mod call;
pub mod config;
pub mod dial_out;
pub mod digest;
mod error;
mod guarded_socket;
mod in_call;
pub mod inspect;
mod server;
pub mod session_timer;
mod source;
mod tls;

pub use config::{OutboundConfig, SipConfig, TlsConfig, TrunkConfig};
pub use error::SipError;
pub use server::{SipCounters, SipServer};
