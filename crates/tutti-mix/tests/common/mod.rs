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

/// Amplitude of the `hz` component of `samples` (single-bin DFT).
pub fn amplitude_at(samples: &[f32], hz: f64) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &s) in samples.iter().enumerate() {
        let phase = 2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(SAMPLE_RATE);
        re += f64::from(s) * phase.cos();
        im += f64::from(s) * phase.sin();
    }
    2.0 * (re * re + im * im).sqrt() / samples.len() as f64
}

/// Root-mean-square level of `samples`.
pub fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64)
        .sqrt()
}
