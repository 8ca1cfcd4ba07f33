//! # tutti-codec: codecs and resampling for tutti
//!
//! Every decoder turns RTP payloads into 48 kHz mono f32, the mixer's format, whatever the
//! codec's own rate; every encoder takes 20 ms of 48 kHz mono and produces one payload. Buffers
//! are sized at construction, so the real-time calls (`decode`, `conceal`, `recover`, `encode`)
//! never allocate.
//!
//! | codec | RTP clock | coded rate | crate |
//! |---|---|---|---|
//! | Opus | 48 kHz | 8–48 kHz, mono or stereo, decoded to 48 kHz mono | libopus via `opus` |
//! | G.722 | 8 kHz (RFC 3551's historical value) | 16 kHz | [`g722`], tested against FFmpeg's output |
//! | PCMU / PCMA | 8 kHz | 8 kHz | [`g711`] |
//!
//! Narrowband and wideband audio is resampled with rubato's sinc resampler
//! ([`StreamResampler`]), whose delay stays under 5 ms.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod codec;
mod error;
pub mod g711;
pub mod g722;
mod opus_codec;
mod opus_voice;
mod pcm;
mod plc;
mod resample;
mod stream_resample;

pub use codec::{
    decoder_for, encoder_for, AudioDecoder, AudioEncoder, CodecKind, EncoderSettings,
    OpusApplication, OpusBandwidth, CELT_MIN_BITRATE, FRAME_SAMPLES_48K, MAX_PACKET_SAMPLES,
    SILK_MAX_BITRATE, SILK_MIN_COMPLEXITY,
};
pub use error::CodecError;
pub use opus_codec::{OpusDecoder, OpusEncoder};
pub use opus_voice::{opus_voice_activity, VoiceActivity};
pub use pcm::{PcmDecoder, PcmEncoder};
pub use resample::resample_clip;
pub use stream_resample::StreamResampler;
