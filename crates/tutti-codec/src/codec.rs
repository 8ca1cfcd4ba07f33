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
    /// General audio: CELT at the bitrates a mix is sent at, several times cheaper to encode
    /// than SILK; no in-band FEC.
    Audio,
}

impl OpusApplication {
    /// Every mode, for lookups by name.
    pub const ALL: [Self; 2] = [Self::Voip, Self::Audio];

    /// The name configuration files use: `voip` or `audio`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Voip => "voip",
            Self::Audio => "audio",
        }
    }

    /// The mode called `name` (see [`OpusApplication::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.name() == name)
    }
}

/// The widest audio band an Opus encoder codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpusBandwidth {
    /// 4 kHz audio (8 kHz sampling).
    Narrowband,
    /// 8 kHz audio (16 kHz sampling): all of what wideband phones and PESQ-WB hear.
    Wideband,
    /// 12 kHz audio (24 kHz sampling).
    Superwideband,
    /// 20 kHz audio (48 kHz sampling).
    Fullband,
}

impl OpusBandwidth {
    /// Every bandwidth, for lookups by name.
    pub const ALL: [Self; 4] = [
        Self::Narrowband,
        Self::Wideband,
        Self::Superwideband,
        Self::Fullband,
    ];

    /// The name configuration files use: `narrowband`, `wideband`, `superwideband` or
    /// `fullband`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Narrowband => "narrowband",
            Self::Wideband => "wideband",
            Self::Superwideband => "superwideband",
            Self::Fullband => "fullband",
        }
    }

    /// The bandwidth called `name` (see [`OpusBandwidth::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|band| band.name() == name)
    }
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
    /// The widest band coded (Opus): the encoder may choose narrower at low bitrates.
    pub max_bandwidth: OpusBandwidth,
}

/// Below this bitrate a mix is better coded with SILK than with CELT: wideband, after a
/// caller's own coding, CELT scores 3.44 PESQ-WB at 48 kb/s and 3.66 at 64, SILK (complexity 6)
/// 3.84 and 3.88; at 80 kb/s CELT's 3.81 is close enough for a sixth of the CPU.
pub const CELT_MIN_BITRATE: u32 = 80_000;
/// The most a listener asking for FEC is sent: wideband SILK with FEC at 5 % expected loss
/// scores 3.67 PESQ-WB after a caller's own coding at 48 kb/s and 3.78 at 64 kb/s (without FEC,
/// 3.84 and 3.88), and libopus keeps to SILK up to there.
pub const SILK_MAX_BITRATE: u32 = 64_000;
/// SILK below this complexity loses 0.1 to 0.7 PESQ-WB (CELT's quality hardly depends on it).
pub const SILK_MIN_COMPLEXITY: u8 = 6;

impl Default for EncoderSettings {
    /// What a conference's mixes are coded with: CELT at 96 kb/s, complexity 0, up to 8 kHz.
    /// Wideband is what phones and PESQ-WB hear; CELT there costs about a sixth of SILK (25 µs
    /// against 150–300 µs per 20 ms frame) and, at 96 kb/s, stays within 0.03 PESQ-WB of one
    /// coding pass, where SILK at any bitrate loses 0.1 or more. In-band FEC is on for the
    /// listeners who ask for it (see [`EncoderSettings::toward_listener`]).
    fn default() -> Self {
        Self {
            application: OpusApplication::Audio,
            bitrate: 96_000,
            complexity: 0,
            inband_fec: true,
            dtx: false,
            expected_loss_percent: 5,
            max_bandwidth: OpusBandwidth::Wideband,
        }
    }
}

impl EncoderSettings {
    /// The settings for one Opus listener, from the configured ones and what its offer asked
    /// (RFC 7587 `maxaveragebitrate` and `useinbandfec`):
    /// - the bitrate is capped at the listener's `maxaveragebitrate`;
    /// - FEC goes only to a listener that decodes it, when FEC is configured; only SILK carries
    ///   it, so that listener is sent SILK (at most [`SILK_MAX_BITRATE`]);
    /// - CELT that the cap brings below [`CELT_MIN_BITRATE`] becomes SILK (a configured
    ///   bitrate is kept as configured);
    /// - where these rules choose SILK over configured CELT, the complexity is at least
    ///   [`SILK_MIN_COMPLEXITY`].
    ///
    /// Listeners with equal results share one encoder.
    pub fn toward_listener(&self, max_average_bitrate: Option<u32>, inband_fec: bool) -> Self {
        let mut settings = *self;
        if let Some(cap) = max_average_bitrate {
            settings.bitrate = settings.bitrate.min(cap.max(6_000));
        }
        settings.inband_fec = self.inband_fec && inband_fec;
        let capped_low = settings.bitrate < self.bitrate && settings.bitrate < CELT_MIN_BITRATE;
        let wants_silk = settings.inband_fec || capped_low;
        if settings.application == OpusApplication::Audio && wants_silk {
            settings.application = OpusApplication::Voip;
            settings.complexity = settings.complexity.max(SILK_MIN_COMPLEXITY);
        }
        if settings.inband_fec {
            settings.bitrate = settings.bitrate.min(SILK_MAX_BITRATE);
        }
        settings
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
