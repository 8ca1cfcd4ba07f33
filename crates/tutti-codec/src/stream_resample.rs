//! Streaming resampling for real-time paths: rubato's sinc resampler, built once, processing
//! fixed 10 ms blocks without allocating, with a delay under 5 ms.

use rubato::{
    Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction,
};

use crate::CodecError;

/// Resamples a stream in blocks of 10 ms of input.
pub struct StreamResampler {
    inner: SincFixedIn<f32>,
    from: u32,
    to: u32,
    block_in: usize,
    block_out: usize,
    /// rubato asks for room for its largest possible output; blocks land here first.
    scratch: Vec<f32>,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// Longest sinc filter used: 256 taps at 48 kHz is 2.7 ms of delay.
const MAX_SINC_LEN: usize = 256;
/// The filter is never longer than this much input time, which bounds the delay.
const MAX_DELAY_SECONDS: f64 = 0.0045;

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz; both must be multiples of 100 Hz.
    pub fn new(from: u32, to: u32) -> Result<Self, CodecError> {
        let unsupported = |reason: String| CodecError::UnsupportedRates { from, to, reason };
        if from == 0 || to == 0 || !from.is_multiple_of(100) || !to.is_multiple_of(100) {
            return Err(unsupported(
                "rates must be non-zero multiples of 100 Hz".into(),
            ));
        }
        // The delay is half the filter, counted in input samples.
        let longest = (2.0 * MAX_DELAY_SECONDS * f64::from(from)) as usize;
        let sinc_len = (longest.min(MAX_SINC_LEN) / 8 * 8).max(16);
        let parameters = SincInterpolationParameters {
            sinc_len,
            f_cutoff: rubato::calculate_cutoff(sinc_len, WindowFunction::BlackmanHarris2),
            oversampling_factor: 128,
            interpolation: SincInterpolationType::Cubic,
            window: WindowFunction::BlackmanHarris2,
        };
        let block_in = from as usize / 100;
        let block_out = to as usize / 100;
        let inner = SincFixedIn::new(
            f64::from(to) / f64::from(from),
            1.0,
            parameters,
            block_in,
            1,
        )
        .map_err(|e| unsupported(e.to_string()))?;
        let scratch = vec![0.0; inner.output_frames_max()];
        let mut resampler = Self {
            inner,
            from,
            to,
            block_in,
            block_out,
            scratch,
        };
        // The first block comes out short by the filter's delay; pay that once here with
        // silence so every real block yields exactly `block_out` samples.
        let silence = vec![0.0; block_in];
        let mut discard = vec![0.0; resampler.scratch.len()];
        resampler.process_block(&silence, &mut discard)?;
        Ok(resampler)
    }

    /// Input samples per block (10 ms).
    pub fn block_in(&self) -> usize {
        self.block_in
    }

    /// Output samples per block (10 ms).
    pub fn block_out(&self) -> usize {
        self.block_out
    }

    /// Delay the resampler adds, in seconds.
    pub fn delay_seconds(&self) -> f64 {
        self.inner.output_delay() as f64 / f64::from(self.to)
    }

    /// Resamples one block of exactly [`block_in`](Self::block_in) samples into `output`
    /// (at least [`block_out`](Self::block_out) long); returns the samples written.
    pub fn process_block(
        &mut self,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<usize, CodecError> {
        if input.len() != self.block_in || output.len() < self.block_out {
            return Err(CodecError::BadBuffer("resampler block of the wrong size"));
        }
        let (_, written) = self
            .inner
            .process_into_buffer(&[input], &mut [&mut self.scratch[..]], None)
            .map_err(|e| CodecError::Resample(e.to_string()))?;
        let written = written.min(output.len());
        output[..written].copy_from_slice(&self.scratch[..written]);
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_is_under_5_ms_for_every_codec_rate() {
        for (from, to) in [
            (8_000, 48_000),
            (16_000, 48_000),
            (48_000, 8_000),
            (48_000, 16_000),
        ] {
            let resampler = StreamResampler::new(from, to).unwrap();
            assert!(
                resampler.delay_seconds() < 0.005,
                "{from}->{to}: {}",
                resampler.delay_seconds()
            );
        }
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_level_through_up_and_down_sampling() {
        let mut up = StreamResampler::new(8_000, 48_000).unwrap();
        let mut down = StreamResampler::new(48_000, 8_000).unwrap();
        let mut high = vec![0.0; 480];
        let mut low = vec![0.0; 80];
        let mut back = Vec::new();
        for block in 0..50 {
            let input: Vec<f32> = (0..80)
                .map(|i| {
                    (0.5 * (2.0 * std::f64::consts::PI * 1000.0 * (block * 80 + i) as f64 / 8000.0)
                        .sin()) as f32
                })
                .collect();
            assert_eq!(up.process_block(&input, &mut high).unwrap(), 480);
            assert_eq!(down.process_block(&high, &mut low).unwrap(), 80);
            back.extend_from_slice(&low);
        }
        let tail = &back[2000..];
        let peak = tail.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.5).abs() < 0.03, "peak {peak}");
    }

    #[test]
    fn refuses_odd_rates_and_wrong_blocks() {
        assert!(StreamResampler::new(0, 48_000).is_err());
        assert!(StreamResampler::new(44_123, 48_000).is_err());
        let mut r = StreamResampler::new(16_000, 48_000).unwrap();
        assert!(r.process_block(&[0.0; 10], &mut [0.0; 480]).is_err());
    }
}
