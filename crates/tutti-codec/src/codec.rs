//! The codec traits and the choice of implementation by codec kind.

use crate::{CodecError, OpusDecoder, OpusEncoder, PcmDecoder, PcmEncoder, VoiceActivity};

/// Samples in 20 ms at 48 kHz: what an encoder takes per call.
pub const FRAME_SAMPLES_48K: usize = 960;
/// Most 48 kHz samples one payload decodes to (120 ms, Opus's longest packet).
pub const MAX_PACKET_SAMPLES: usize = 5760;

/// The audio codecs tutti speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// Opus (RFC 6716, RTP payload RFC 7587).
    Opus,
    /// G.722 wideband ADPCM.
    G722,
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl CodecKind {
    /// The encoding name used in SDP `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Self::Opus => "opus",
            Self::G722 => "G722",
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }

    /// The RTP clock rate (what timestamps count).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            Self::Opus => 48_000,
            Self::G722 | Self::Pcmu | Self::Pcma => 8_000,
        }
    }

    /// The rate the codec's audio is sampled at.
    pub fn audio_rate(self) -> u32 {
        match self {
            Self::Opus => 48_000,
            Self::G722 => 16_000,
            Self::Pcmu | Self::Pcma => 8_000,
        }
    }

    /// The static RTP payload type, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Self::Pcmu => Some(0),
            Self::Pcma => Some(8),
            Self::G722 => Some(9),
            Self::Opus => None,
        }
    }
}

/// Which Opus coding an encoder uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpusApplication {
    /// Speech of one talker: SILK or hybrid, with in-band FEC available.
    Voip,
    /// General audio: CELT, about four times cheaper to encode at the same complexity and
    /// better suited to a mix of several voices; no in-band FEC.
    Audio,
}

/// How an encoder should encode. Only Opus uses all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderSettings {
    /// Opus coding mode.
    pub application: OpusApplication,
    /// Target bitrate in bits per second (Opus).
    pub bitrate: u32,
    /// 0 (fastest) to 10 (best) (Opus).
    pub complexity: u8,
    /// Carry in-band forward error correction (Opus).
    pub inband_fec: bool,
    /// Discontinuous transmission: tiny packets during silence (Opus).
    pub dtx: bool,
    /// Expected packet loss in percent, tunes the FEC (Opus).
    pub expected_loss_percent: u8,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        Self {
            application: OpusApplication::Voip,
            bitrate: 32_000,
            complexity: 5,
            inband_fec: true,
            dtx: false,
            expected_loss_percent: 5,
        }
    }
}

/// Turns payloads into 48 kHz mono audio.
pub trait AudioDecoder: Send {
    /// Decodes one payload into `out` (48 kHz mono); returns the samples written. `out` should
    /// hold [`MAX_PACKET_SAMPLES`].
    fn decode(&mut self, payload: &[u8], out: &mut [f32]) -> Result<usize, CodecError>;

    /// Conceals a lost packet: fills `out` (its whole length, a multiple of 2.5 ms) with a
    /// plausible continuation that fades to silence over repeated losses.
    fn conceal(&mut self, out: &mut [f32]) -> Result<usize, CodecError>;

    /// Recovers the packet lost just before `next` from `next`'s in-band FEC, writing `out`'s
    /// whole length. `Ok(None)` when the codec or the packet carries no FEC.
    fn recover(&mut self, next: &[u8], out: &mut [f32]) -> Result<Option<usize>, CodecError>;

    /// The codec.
    fn kind(&self) -> CodecKind;

    /// What the payload says of the sender's voice without decoding it (Opus's voice flags);
    /// `Unknown` for codecs that carry none.
    fn voice_activity(&self, _payload: &[u8]) -> VoiceActivity {
        VoiceActivity::Unknown
    }

    /// How many 48 kHz samples `payload` decodes to, when that is known exactly beforehand
    /// (a frame can then be decoded straight into its destination).
    fn samples_in(&self, _payload: &[u8]) -> Option<usize> {
        None
    }
}

/// Turns 20 ms of 48 kHz mono audio into one payload.
pub trait AudioEncoder: Send {
    /// Encodes [`FRAME_SAMPLES_48K`] samples into `out`; returns the payload length. With DTX,
    /// a payload of 2 bytes or less means "silence, nothing worth sending".
    fn encode(&mut self, frame: &[f32], out: &mut [u8]) -> Result<usize, CodecError>;

    /// The codec.
    fn kind(&self) -> CodecKind;

    /// RTP timestamp units per 20 ms frame.
    fn timestamp_increment(&self) -> u32 {
        self.kind().rtp_clock_rate() / 50
    }
}

/// A decoder for `kind`.
pub fn decoder_for(kind: CodecKind) -> Result<Box<dyn AudioDecoder>, CodecError> {
    Ok(match kind {
        CodecKind::Opus => Box::new(OpusDecoder::new()?),
        other => Box::new(PcmDecoder::new(other)?),
    })
}

/// An encoder for `kind`.
pub fn encoder_for(
    kind: CodecKind,
    settings: &EncoderSettings,
) -> Result<Box<dyn AudioEncoder>, CodecError> {
    Ok(match kind {
        CodecKind::Opus => Box::new(OpusEncoder::new(settings)?),
        other => Box::new(PcmEncoder::new(other)?),
    })
}
