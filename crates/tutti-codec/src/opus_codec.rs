//! Opus through libopus: any stream decoded to 48 kHz mono, FEC recovery and PLC; an encoder
//! with bitrate, complexity, FEC, DTX and expected-loss settings.

use opus::{Application, Bandwidth, Bitrate, Channels, Decoder, Encoder};

use crate::codec::{
    AudioDecoder, AudioEncoder, CodecKind, EncoderSettings, OpusApplication, OpusBandwidth,
};
use crate::opus_voice::{opus_voice_activity, VoiceActivity};
use crate::{CodecError, FRAME_SAMPLES_48K, MAX_PACKET_SAMPLES};

/// Decodes Opus packets of any configuration (narrowband to fullband, mono or stereo, 2.5 to
/// 120 ms) to 48 kHz mono; libopus downmixes stereo streams itself.
pub struct OpusDecoder {
    decoder: Decoder,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A decoder producing 48 kHz mono.
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            decoder: Decoder::new(48_000, Channels::Mono)?,
        })
    }
}

/// libopus conceals and recovers in multiples of 2.5 ms (120 samples at 48 kHz).
fn whole_opus_frames(out: &mut [f32]) -> &mut [f32] {
    let len = (out.len().min(MAX_PACKET_SAMPLES) / 120) * 120;
    &mut out[..len]
}

impl AudioDecoder for OpusDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut [f32]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            let len = out.len().min(FRAME_SAMPLES_48K);
            return self.conceal(&mut out[..len]);
        }
        let len = out.len().min(MAX_PACKET_SAMPLES);
        Ok(self.decoder.decode_float(payload, &mut out[..len], false)?)
    }

    fn conceal(&mut self, out: &mut [f32]) -> Result<usize, CodecError> {
        let out = whole_opus_frames(out);
        if out.is_empty() {
            return Ok(0);
        }
        Ok(self.decoder.decode_float(&[], out, false)?)
    }

    fn recover(&mut self, next: &[u8], out: &mut [f32]) -> Result<Option<usize>, CodecError> {
        let out = whole_opus_frames(out);
        if next.is_empty() || out.is_empty() || !carries_fec(next) {
            return Ok(None);
        }
        Ok(Some(self.decoder.decode_float(next, out, true)?))
    }

    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn voice_activity(&self, payload: &[u8]) -> VoiceActivity {
        opus_voice_activity(payload)
    }

    fn samples_in(&self, payload: &[u8]) -> Option<usize> {
        self.decoder.get_nb_samples(payload).ok()
    }
}

/// Whether an Opus packet carries in-band FEC (LBRR) for the previous packet: only SILK and
/// hybrid packets can (RFC 6716 §4.2.3); their LBRR flag follows the VAD flags in the first
/// frame's range-coded header, which libopus reads when asked to decode with FEC.
fn carries_fec(packet: &[u8]) -> bool {
    let Some(&toc) = packet.first() else {
        return false;
    };
    let config = toc >> 3;
    // Configurations 0..=15 are SILK-only, 12..=15 hybrid; CELT-only packets carry no LBRR.
    config < 16
}

/// Encodes 20 ms frames of 48 kHz mono as Opus.
pub struct OpusEncoder {
    encoder: Encoder,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// An encoder for voice with the given settings.
    pub fn new(settings: &EncoderSettings) -> Result<Self, CodecError> {
        if settings.complexity > 10 {
            return Err(CodecError::InvalidSetting("Opus complexity is 0 to 10"));
        }
        if !(6_000..=510_000).contains(&settings.bitrate) {
            return Err(CodecError::InvalidSetting(
                "Opus bitrate is 6000 to 510000 bit/s",
            ));
        }
        if settings.expected_loss_percent > 100 {
            return Err(CodecError::InvalidSetting(
                "expected loss is 0 to 100 percent",
            ));
        }
        let application = match settings.application {
            OpusApplication::Voip => Application::Voip,
            OpusApplication::Audio => Application::Audio,
        };
        let mut encoder = Encoder::new(48_000, Channels::Mono, application)?;
        encoder.set_bitrate(Bitrate::Bits(settings.bitrate as i32))?;
        encoder.set_complexity(i32::from(settings.complexity))?;
        encoder.set_inband_fec(settings.inband_fec)?;
        encoder.set_dtx(settings.dtx)?;
        encoder.set_packet_loss_perc(i32::from(settings.expected_loss_percent))?;
        encoder.set_max_bandwidth(match settings.max_bandwidth {
            OpusBandwidth::Narrowband => Bandwidth::Narrowband,
            OpusBandwidth::Wideband => Bandwidth::Wideband,
            OpusBandwidth::Superwideband => Bandwidth::Superwideband,
            OpusBandwidth::Fullband => Bandwidth::Fullband,
        })?;
        Ok(Self { encoder })
    }
}

impl AudioEncoder for OpusEncoder {
    fn encode(&mut self, frame: &[f32], out: &mut [u8]) -> Result<usize, CodecError> {
        if frame.len() != FRAME_SAMPLES_48K {
            return Err(CodecError::BadBuffer(
                "an encoder takes 960 samples (20 ms at 48 kHz)",
            ));
        }
        Ok(self.encoder.encode_float(frame, out)?)
    }

    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }
}
