//! # tutti-codec: codecs and resampling for tutti
//!
//! Today this crate holds the resampling of whole clips (prompts, files played into rooms,
//! offline mixdown inputs) to the mixer's 48 kHz. Codecs (Opus, G.711, G.722) and the streaming
//! real-time resampler join it with the media plane.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod error;
mod resample;

pub use error::CodecError;
pub use resample::resample_clip;
