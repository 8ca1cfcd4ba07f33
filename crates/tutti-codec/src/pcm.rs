//! The sample codecs (G.711 µ-law and A-law, G.722) at 48 kHz: the codec at its own rate, the
//! streaming resampler in between, and pitch-repeating concealment ([`crate::plc`]).

use crate::codec::{AudioDecoder, AudioEncoder, CodecKind};
use crate::g711;
use crate::g722::{G722Decoder, G722Encoder};
use crate::plc::PitchConcealer;
use crate::{CodecError, StreamResampler, FRAME_SAMPLES_48K, MAX_PACKET_SAMPLES};

/// Longest payload decoded at once: 120 ms.
const MAX_PACKET_MS: usize = 120;

// One per call leg, held inline: boxing the G.722 state would only add an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum SampleDecoder {
    Ulaw,
    Alaw,
    G722(G722Decoder),
}

#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum SampleEncoder {
    Ulaw,
    Alaw,
    G722(G722Encoder),
}

fn check_kind(kind: CodecKind) -> Result<(), CodecError> {
    if kind == CodecKind::Opus {
        return Err(CodecError::InvalidSetting("Opus is not a sample codec"));
    }
    Ok(())
}

/// Decodes G.711 or G.722 payloads to 48 kHz mono.
#[derive(Debug)]
pub struct PcmDecoder {
    kind: CodecKind,
    codec: SampleDecoder,
    resampler: StreamResampler,
    /// Codec-rate samples not yet resampled (less than one 10 ms block between calls).
    pending: Vec<f32>,
    pcm: Vec<i16>,
    /// What was heard, for concealing losses.
    plc: PitchConcealer,
}

impl PcmDecoder {
    /// A decoder for G.711 µ-law, A-law or G.722.
    pub fn new(kind: CodecKind) -> Result<Self, CodecError> {
        check_kind(kind)?;
        let rate = kind.audio_rate() as usize;
        let codec = match kind {
            CodecKind::Pcmu => SampleDecoder::Ulaw,
            CodecKind::Pcma => SampleDecoder::Alaw,
            _ => SampleDecoder::G722(G722Decoder::new()),
        };
        let max_native = rate * MAX_PACKET_MS / 1000;
        Ok(Self {
            kind,
            codec,
            resampler: StreamResampler::new(kind.audio_rate(), 48_000)?,
            pending: Vec::with_capacity(max_native + rate / 100),
            pcm: vec![0; max_native],
            plc: PitchConcealer::new(),
        })
    }

    /// Resamples whole 10 ms blocks of `pending` into `out`; keeps the remainder.
    fn drain_pending(&mut self, out: &mut [f32]) -> Result<usize, CodecError> {
        let block_in = self.resampler.block_in();
        let block_out = self.resampler.block_out();
        let mut consumed = 0;
        let mut written = 0;
        while self.pending.len() - consumed >= block_in && out.len() - written >= block_out {
            self.resampler.process_block(
                &self.pending[consumed..consumed + block_in],
                &mut out[written..written + block_out],
            )?;
            self.plc.heard(&mut out[written..written + block_out]);
            consumed += block_in;
            written += block_out;
        }
        self.pending.drain(..consumed);
        Ok(written)
    }
}

impl AudioDecoder for PcmDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut [f32]) -> Result<usize, CodecError> {
        let samples_per_byte = if matches!(self.codec, SampleDecoder::G722(_)) {
            2
        } else {
            1
        };
        let native = payload.len() * samples_per_byte;
        if native > self.pcm.len() {
            return Err(CodecError::PayloadTooLong {
                codec: self.kind.encoding_name(),
                bytes: payload.len(),
            });
        }
        match &mut self.codec {
            SampleDecoder::Ulaw => {
                for (s, &b) in self.pcm.iter_mut().zip(payload) {
                    *s = g711::ulaw_to_linear(b);
                }
            }
            SampleDecoder::Alaw => {
                for (s, &b) in self.pcm.iter_mut().zip(payload) {
                    *s = g711::alaw_to_linear(b);
                }
            }
            SampleDecoder::G722(decoder) => {
                decoder.decode(payload, &mut self.pcm);
            }
        }
        self.pending
            .extend(self.pcm[..native].iter().map(|&s| f32::from(s) / 32768.0));
        let out_len = out.len().min(MAX_PACKET_SAMPLES);
        self.drain_pending(&mut out[..out_len])
    }

    fn conceal(&mut self, out: &mut [f32]) -> Result<usize, CodecError> {
        let out_len = out.len().min(MAX_PACKET_SAMPLES);
        self.plc.conceal(&mut out[..out_len]);
        Ok(out_len)
    }

    fn recover(&mut self, _next: &[u8], _out: &mut [f32]) -> Result<Option<usize>, CodecError> {
        Ok(None)
    }

    fn kind(&self) -> CodecKind {
        self.kind
    }
}

/// Encodes 20 ms of 48 kHz mono as G.711 or G.722.
#[derive(Debug)]
pub struct PcmEncoder {
    kind: CodecKind,
    codec: SampleEncoder,
    resampler: StreamResampler,
    native: Vec<f32>,
    pcm: Vec<i16>,
}

impl PcmEncoder {
    /// An encoder for G.711 µ-law, A-law or G.722.
    pub fn new(kind: CodecKind) -> Result<Self, CodecError> {
        check_kind(kind)?;
        let codec = match kind {
            CodecKind::Pcmu => SampleEncoder::Ulaw,
            CodecKind::Pcma => SampleEncoder::Alaw,
            _ => SampleEncoder::G722(G722Encoder::new()),
        };
        let per_frame = kind.audio_rate() as usize / 50;
        Ok(Self {
            kind,
            codec,
            resampler: StreamResampler::new(48_000, kind.audio_rate())?,
            native: vec![0.0; per_frame],
            pcm: vec![0; per_frame],
        })
    }
}

impl AudioEncoder for PcmEncoder {
    fn encode(&mut self, frame: &[f32], out: &mut [u8]) -> Result<usize, CodecError> {
        if frame.len() != FRAME_SAMPLES_48K {
            return Err(CodecError::BadBuffer(
                "an encoder takes 960 samples (20 ms at 48 kHz)",
            ));
        }
        let half = self.native.len() / 2;
        let (first, second) = self.native.split_at_mut(half);
        self.resampler.process_block(&frame[..480], first)?;
        self.resampler.process_block(&frame[480..], second)?;
        for (p, &s) in self.pcm.iter_mut().zip(&self.native) {
            *p = (s * 32768.0).round() as i16;
        }
        let bytes = match self.codec {
            SampleEncoder::G722(_) => self.pcm.len() / 2,
            _ => self.pcm.len(),
        };
        if out.len() < bytes {
            return Err(CodecError::BadBuffer(
                "output buffer too small for one frame",
            ));
        }
        match &mut self.codec {
            SampleEncoder::Ulaw => {
                for (o, &s) in out.iter_mut().zip(&self.pcm) {
                    *o = g711::linear_to_ulaw(s);
                }
            }
            SampleEncoder::Alaw => {
                for (o, &s) in out.iter_mut().zip(&self.pcm) {
                    *o = g711::linear_to_alaw(s);
                }
            }
            SampleEncoder::G722(encoder) => {
                encoder.encode(&self.pcm, out);
            }
        }
        Ok(bytes)
    }

    fn kind(&self) -> CodecKind {
        self.kind
    }
}
