//! The unit of audio that moves through a room: 20 ms of mono f32 at 48 kHz.

use std::ops::{Deref, DerefMut};

/// Sample rate of every frame inside the mixer, in Hz.
pub const SAMPLE_RATE: u32 = 48_000;
/// Length of one frame (one mixing tick) in milliseconds.
pub const FRAME_MS: u32 = 20;
/// Number of samples in one frame: 20 ms at 48 kHz.
pub const FRAME_SAMPLES: usize = (SAMPLE_RATE / 1000 * FRAME_MS) as usize;

/// Scale between the f32 domain (nominal range −1.0..=1.0) and 16-bit PCM.
pub const I16_SCALE: f32 = 32768.0;

/// 20 ms of mono audio at 48 kHz, as f32 samples in the nominal range −1.0..=1.0.
///
/// Aligned to 64 bytes (a cache line, and the widest SIMD register) so the inner loops of the
/// mixer run over whole vectors without a scalar head or tail: 960 samples is 60 blocks of 16.
#[derive(Clone, PartialEq)]
#[repr(C, align(64))]
pub struct Frame {
    samples: [f32; FRAME_SAMPLES],
}

impl Frame {
    /// A frame of digital silence.
    pub const fn silent() -> Self {
        Self {
            samples: [0.0; FRAME_SAMPLES],
        }
    }

    /// A frame holding the given samples.
    pub const fn from_array(samples: [f32; FRAME_SAMPLES]) -> Self {
        Self { samples }
    }

    /// A frame converted from 16-bit PCM. Every i16 maps exactly and converts back unchanged.
    pub fn from_i16(pcm: &[i16; FRAME_SAMPLES]) -> Self {
        let mut frame = Self::silent();
        frame.fill_from_i16(pcm);
        frame
    }

    /// Overwrites this frame with 16-bit PCM.
    pub fn fill_from_i16(&mut self, pcm: &[i16; FRAME_SAMPLES]) {
        for (out, &s) in self.samples.iter_mut().zip(pcm.iter()) {
            *out = f32::from(s) / I16_SCALE;
        }
    }

    /// Writes this frame as 16-bit PCM, rounding to nearest and saturating at the i16 range.
    /// NaN becomes 0.
    pub fn write_i16(&self, pcm: &mut [i16; FRAME_SAMPLES]) {
        for (out, &s) in pcm.iter_mut().zip(self.samples.iter()) {
            // `as` saturates out-of-range floats and maps NaN to 0.
            *out = (s * I16_SCALE).round() as i16;
        }
    }

    /// Sets every sample to zero.
    pub fn clear(&mut self) {
        self.samples.fill(0.0);
    }

    /// Whether every sample is exactly zero.
    pub fn is_silent(&self) -> bool {
        self.samples.iter().all(|&s| s == 0.0)
    }
}

impl Default for Frame {
    fn default() -> Self {
        Self::silent()
    }
}

impl Deref for Frame {
    type Target = [f32; FRAME_SAMPLES];

    fn deref(&self) -> &Self::Target {
        &self.samples
    }
}

impl DerefMut for Frame {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.samples
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let peak = self.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        f.debug_struct("Frame")
            .field("peak", &peak)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_960_samples_aligned_to_a_cache_line() {
        assert_eq!(FRAME_SAMPLES, 960);
        assert_eq!(std::mem::align_of::<Frame>(), 64);
        assert_eq!(FRAME_SAMPLES % 16, 0);
    }

    #[test]
    fn every_i16_round_trips_exactly() {
        let mut pcm = [0i16; FRAME_SAMPLES];
        let mut back = [0i16; FRAME_SAMPLES];
        for chunk_start in (i16::MIN as i32..=i16::MAX as i32).step_by(FRAME_SAMPLES) {
            for (i, s) in pcm.iter_mut().enumerate() {
                *s = (chunk_start + i as i32).clamp(i16::MIN as i32, i16::MAX as i32) as i16;
            }
            Frame::from_i16(&pcm).write_i16(&mut back);
            assert_eq!(pcm, back);
        }
    }

    #[test]
    fn conversion_to_i16_saturates_and_maps_nan_to_zero() {
        let mut frame = Frame::silent();
        frame[0] = 2.0;
        frame[1] = -2.0;
        frame[2] = f32::NAN;
        frame[3] = f32::INFINITY;
        frame[4] = f32::NEG_INFINITY;
        frame[5] = 0.5;
        let mut pcm = [0i16; FRAME_SAMPLES];
        frame.write_i16(&mut pcm);
        assert_eq!(&pcm[..6], &[32767, -32768, 0, 32767, -32768, 16384]);
    }
}
