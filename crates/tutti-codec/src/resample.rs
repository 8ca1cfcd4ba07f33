//! Whole-clip resampling with rubato's FFT resampler, delay removed.

use rubato::{FftFixedIn, Resampler};

use crate::CodecError;

/// Input block the FFT resampler works in.
const CHUNK: usize = 1024;

/// Resamples a mono clip from `from` Hz to `to` Hz. The output is time-aligned with the input
/// (the resampler's delay is removed) and holds `len × to / from` samples, rounded.
pub fn resample_clip(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, CodecError> {
    if from == to {
        return Ok(samples.to_vec());
    }
    let unsupported = |reason: String| CodecError::UnsupportedRates { from, to, reason };
    if from == 0 || to == 0 {
        return Err(unsupported("a sample rate must be above zero".into()));
    }
    let mut resampler = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1)
        .map_err(|e| unsupported(e.to_string()))?;
    let delay = resampler.output_delay();
    let expected = (samples.len() as u64 * u64::from(to) + u64::from(from) / 2) / u64::from(from);
    let expected = expected as usize;
    let failed = |e: rubato::ResampleError| CodecError::Resample(e.to_string());

    let mut output = Vec::with_capacity(expected + delay + CHUNK * 4);
    let mut rest = samples;
    while rest.len() >= resampler.input_frames_next() {
        let take = resampler.input_frames_next();
        let block = resampler.process(&[&rest[..take]], None).map_err(failed)?;
        output.extend_from_slice(&block[0]);
        rest = &rest[take..];
    }
    if !rest.is_empty() {
        let block = resampler
            .process_partial(Some(&[rest]), None)
            .map_err(failed)?;
        output.extend_from_slice(&block[0]);
    }
    while output.len() < delay + expected {
        let block = resampler
            .process_partial::<&[f32]>(None, None)
            .map_err(failed)?;
        if block[0].is_empty() {
            break;
        }
        output.extend_from_slice(&block[0]);
    }
    output.drain(..delay.min(output.len()));
    output.resize(expected, 0.0);
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f64, rate: u32, seconds: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin() as f32 * 0.5
            })
            .collect()
    }

    #[test]
    fn upsampling_keeps_length_pitch_and_timing() {
        let input = sine(440.0, 16_000, 1.0);
        let output = resample_clip(&input, 16_000, 48_000).unwrap();
        assert_eq!(output.len(), 48_000);
        // Compare against the ideal 48 kHz sine away from the edges: same phase, same level.
        let ideal = sine(440.0, 48_000, 1.0);
        let worst = output[2000..46_000]
            .iter()
            .zip(&ideal[2000..46_000])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 0.01, "worst deviation {worst}");
    }

    #[test]
    fn odd_rates_and_short_clips_work() {
        assert_eq!(
            resample_clip(&sine(300.0, 44_100, 0.5), 44_100, 48_000)
                .unwrap()
                .len(),
            24_000
        );
        assert_eq!(resample_clip(&[0.1; 10], 8_000, 48_000).unwrap().len(), 60);
        assert!(resample_clip(&[], 8_000, 48_000).unwrap().is_empty());
        assert!(resample_clip(&[0.0; 4], 0, 48_000).is_err());
    }
}
