//! Signal helpers shared by the integration tests.
#![allow(dead_code)]

use tutti_mix::{Frame, FRAME_SAMPLES, SAMPLE_RATE};

/// Frame `tick` of a continuous sine at `hz` with peak `amplitude`.
pub fn sine_frame(hz: f64, amplitude: f32, tick: u64) -> Frame {
    let mut frame = Frame::silent();
    let start = tick * FRAME_SAMPLES as u64;
    for (i, s) in frame.iter_mut().enumerate() {
        let t = (start + i as u64) as f64 / f64::from(SAMPLE_RATE);
        *s = amplitude * (2.0 * std::f64::consts::PI * hz * t).sin() as f32;
    }
    frame
}

/// Amplitude of the `hz` component of 48 kHz `samples`.
pub fn amplitude_at(samples: &[f32], hz: f64) -> f64 {
    tutti_e2e::amplitude_at(samples, SAMPLE_RATE, hz)
}

/// Root-mean-square level of `samples`.
pub fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64)
        .sqrt()
}
