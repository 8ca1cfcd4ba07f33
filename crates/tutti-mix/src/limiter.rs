//! The output limiter: keeps loud mixes inside full scale without wraparound or hard clipping.
//!
//! It runs after the N−1 subtraction, on each distinct output buffer. Below the threshold it does
//! nothing at all, so a single talker at unity gain reaches the listener bit for bit. Above it, a
//! gain that rides the frame peak brings the frame down to the threshold (attack within the
//! frame, release with [`LimiterConfig::release_ms`]), and a soft knee between the threshold and
//! full scale catches what the gain ramp lets through, so no sample ever reaches ±1.0.

use crate::frame::{Frame, FRAME_MS, FRAME_SAMPLES};
use crate::kernels;

/// Limiter parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimiterConfig {
    /// Level above which the limiter acts, as a linear amplitude below 1.0 (default −1 dBFS).
    pub threshold: f32,
    /// Time constant of the gain's return to unity once the mix is quiet again, in ms.
    pub release_ms: f32,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            threshold: 0.891,
            release_ms: 100.0,
        }
    }
}

impl LimiterConfig {
    fn sane_threshold(&self) -> f32 {
        if self.threshold.is_finite() {
            self.threshold.clamp(0.1, 0.99)
        } else {
            0.891
        }
    }

    fn release_factor(&self) -> f32 {
        let ms = if self.release_ms.is_finite() {
            self.release_ms.max(1.0)
        } else {
            100.0
        };
        (-(FRAME_MS as f32) / ms).exp()
    }
}

/// Gain state of one output stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limiter {
    gain: f32,
}

impl Default for Limiter {
    fn default() -> Self {
        Self { gain: 1.0 }
    }
}

/// The gain is snapped back to exact unity once it is this close, so the untouched path resumes.
const UNITY_SNAP: f32 = 1e-4;

impl Limiter {
    /// Current gain (1.0 when idle).
    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// Limits `frame` in place. Returns whether any sample was changed.
    pub fn process(&mut self, frame: &mut Frame, config: &LimiterConfig) -> bool {
        let threshold = config.sane_threshold();
        let peak = kernels::peak_abs(frame);
        if self.gain == 1.0 && peak <= threshold {
            return false;
        }
        let needed = if peak > threshold {
            threshold / peak
        } else {
            1.0
        };
        let start = self.gain;
        let target = if needed < start {
            needed
        } else {
            let released = 1.0 - (1.0 - start) * config.release_factor();
            let released = if 1.0 - released < UNITY_SNAP {
                1.0
            } else {
                released
            };
            released.min(needed)
        };
        ramp_and_knee(frame, start, target, threshold);
        self.gain = target;
        true
    }
}

/// Highest magnitude the knee produces: one 16-bit step below full scale.
const CEILING: f32 = 1.0 - 1.0 / 32768.0;

/// Applies a gain moving linearly from `start` to `end` across the frame, then the soft knee.
fn ramp_and_knee(frame: &mut Frame, start: f32, end: f32, threshold: f32) {
    let step = (end - start) / FRAME_SAMPLES as f32;
    kernels::ramp_and_knee(frame, start + step, step, threshold, CEILING - threshold);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(amplitude: f32) -> Frame {
        let mut frame = Frame::silent();
        for (i, s) in frame.iter_mut().enumerate() {
            *s = amplitude * (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 48_000.0).sin();
        }
        frame
    }

    #[test]
    fn below_threshold_is_bit_identical() {
        let mut limiter = Limiter::default();
        let original = sine(0.8);
        let mut frame = original.clone();
        assert!(!limiter.process(&mut frame, &LimiterConfig::default()));
        assert_eq!(frame, original);
    }

    #[test]
    fn loud_frames_never_reach_full_scale_and_gain_recovers() {
        let config = LimiterConfig::default();
        let mut limiter = Limiter::default();
        for _ in 0..10 {
            let mut frame = sine(5.0);
            limiter.process(&mut frame, &config);
            assert!(kernels::peak_abs(&frame) < 1.0);
        }
        let limited_gain = limiter.gain();
        assert!(limited_gain < 0.2);
        // Steady loud input is brought down to the threshold, not far below it.
        let mut frame = sine(5.0);
        limiter.process(&mut frame, &config);
        assert!(kernels::peak_abs(&frame) > 0.85);

        let quiet = sine(0.1);
        let mut recovered_at = None;
        for tick in 0..200 {
            let mut frame = quiet.clone();
            limiter.process(&mut frame, &config);
            if frame == quiet {
                recovered_at = Some(tick);
                break;
            }
        }
        let ticks = recovered_at.expect("the limiter returns to the untouched path");
        assert!((10..100).contains(&ticks), "release took {ticks} ticks");
    }

    #[test]
    fn non_finite_configuration_does_not_break_it() {
        let config = LimiterConfig {
            threshold: f32::NAN,
            release_ms: f32::INFINITY,
        };
        let mut limiter = Limiter::default();
        let mut frame = sine(3.0);
        limiter.process(&mut frame, &config);
        assert!(frame.iter().all(|s| s.abs() < 1.0));
    }
}
