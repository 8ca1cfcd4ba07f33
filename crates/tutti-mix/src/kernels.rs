//! The inner loops of the mixer, written so the compiler vectorizes them.
//!
//! Every kernel works on whole frames, whose length is a multiple of [`LANES`], and walks them
//! with `chunks_exact(LANES)` and per-lane accumulators: no bounds checks, no scalar tail, no
//! data-dependent branches. They are plain scalar Rust that the compiler turns into SIMD code on
//! every target; there is no `unsafe` and no hand-written intrinsics to keep in step.

use crate::frame::{Frame, FRAME_SAMPLES};
use multiversion::multiversion;

/// Samples processed per step of a kernel: 16 f32 fill one AVX-512 register, two AVX2 or four
/// SSE registers.
pub const LANES: usize = 16;

const _: () = assert!(FRAME_SAMPLES.is_multiple_of(LANES));

/// Largest magnitude a sample may have after [`clean`]: the nominal full scale.
pub const SAMPLE_LIMIT: f32 = 1.0;

const SIGN_BIT: u32 = 0x8000_0000;
const ONE_BITS: u32 = 0x3F80_0000;
const INFINITY_BITS: u32 = 0x7F80_0000;

/// Magnitude of a cleaned sample, as bits: `|x|` capped at full scale, 0 for NaN.
///
/// Integer compares and selects on the IEEE bit pattern vectorize on every SIMD level, where
/// `f32::clamp` and `is_nan` on floats do not.
#[inline(always)]
fn clean_magnitude_bits(x: f32) -> u32 {
    let magnitude = x.to_bits() & !SIGN_BIT;
    let capped = if magnitude > ONE_BITS {
        ONE_BITS
    } else {
        magnitude
    };
    if magnitude > INFINITY_BITS {
        0
    } else {
        capped
    }
}

/// Makes one input sample safe to mix: NaN becomes silence, anything beyond full scale
/// (infinities included) is clamped to it.
#[inline(always)]
pub fn clean(x: f32) -> f32 {
    f32::from_bits((x.to_bits() & SIGN_BIT) | clean_magnitude_bits(x))
}

/// Mean absolute amplitude of the cleaned samples of `frame`, in the f32 domain.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
pub fn mean_abs(frame: &Frame) -> f32 {
    let mut acc = [0.0f32; LANES];
    for chunk in frame.chunks_exact(LANES) {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a += f32::from_bits(clean_magnitude_bits(x));
        }
    }
    acc.iter().sum::<f32>() / FRAME_SAMPLES as f32
}

/// `dst = clean(src) * gain`.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
pub fn clean_scaled_into(dst: &mut Frame, src: &Frame, gain: f32) {
    for (d, s) in dst.chunks_exact_mut(LANES).zip(src.chunks_exact(LANES)) {
        for (d, &s) in d.iter_mut().zip(s) {
            *d = clean(s) * gain;
        }
    }
}

/// `dst += src`.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
pub fn add_assign(dst: &mut Frame, src: &Frame) {
    for (d, s) in dst.chunks_exact_mut(LANES).zip(src.chunks_exact(LANES)) {
        for (d, &s) in d.iter_mut().zip(s) {
            *d += s;
        }
    }
}

/// `dst -= src`: takes one signal back out of a sum.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
pub fn sub_assign(dst: &mut Frame, src: &Frame) {
    for (d, s) in dst.chunks_exact_mut(LANES).zip(src.chunks_exact(LANES)) {
        for (d, &s) in d.iter_mut().zip(s) {
            *d -= s;
        }
    }
}

/// `dst = minuend - dst`: turns a contributor's own signal into what it hears of the room.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
pub fn subtract_from(dst: &mut Frame, minuend: &Frame) {
    for (d, m) in dst.chunks_exact_mut(LANES).zip(minuend.chunks_exact(LANES)) {
        for (d, &m) in d.iter_mut().zip(m) {
            *d = m - *d;
        }
    }
}

/// `dst = src * gain`.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
pub fn scaled_into(dst: &mut Frame, src: &Frame, gain: f32) {
    for (d, s) in dst.chunks_exact_mut(LANES).zip(src.chunks_exact(LANES)) {
        for (d, &s) in d.iter_mut().zip(s) {
            *d = s * gain;
        }
    }
}

/// `dst *= gain`.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
pub fn scale(dst: &mut Frame, gain: f32) {
    for d in dst.chunks_exact_mut(LANES) {
        for d in d.iter_mut() {
            *d *= gain;
        }
    }
}

/// Largest absolute sample value of `frame`. NaN samples are ignored.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
pub fn peak_abs(frame: &Frame) -> f32 {
    let mut acc = [0.0f32; LANES];
    for chunk in frame.chunks_exact(LANES) {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            let magnitude = x.abs();
            // A compare-and-select (not `f32::max`) maps to one SIMD max; NaN never wins.
            *a = if magnitude > *a { magnitude } else { *a };
        }
    }
    acc.iter().fold(0.0f32, |m, &a| m.max(a))
}

/// `x *= gain` with `gain` moving from `first_gain` by `step` per sample, then a soft knee:
/// magnitudes up to `threshold` pass unchanged, above it they bend smoothly towards
/// `threshold + headroom` and never reach it. NaN samples become silence.
///
/// The knee is `t + h·o/(1 + o)` with `o = (|x| − t)/h`: continuous with slope 1 at the
/// threshold like `tanh`, but a division instead of a transcendental, so it vectorizes.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
pub fn ramp_and_knee(frame: &mut Frame, first_gain: f32, step: f32, threshold: f32, headroom: f32) {
    for (block, chunk) in frame.chunks_exact_mut(LANES).enumerate() {
        let base = first_gain + step * (block * LANES) as f32;
        for (lane, s) in chunk.iter_mut().enumerate() {
            let x = *s * (base + step * lane as f32);
            let magnitude = x.abs();
            let over = (magnitude - threshold) / headroom;
            let bent = threshold + headroom * over / (1.0 + over);
            let shaped = if magnitude > threshold {
                bent
            } else {
                magnitude
            };
            let signed = shaped.copysign(x);
            *s = if x.is_nan() { 0.0 } else { signed };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame_from(values: &[f32]) -> Frame {
        let mut frame = Frame::silent();
        for (d, &v) in frame.iter_mut().zip(values.iter().cycle()) {
            *d = v;
        }
        frame
    }

    #[test]
    fn clean_handles_non_finite_and_out_of_range_samples() {
        assert_eq!(clean(f32::NAN), 0.0);
        assert_eq!(clean(f32::INFINITY), 1.0);
        assert_eq!(clean(f32::NEG_INFINITY), -1.0);
        assert_eq!(clean(3.0), 1.0);
        assert_eq!(clean(-0.25), -0.25);
    }

    #[test]
    fn mean_abs_of_a_square_wave_is_its_amplitude() {
        let frame = frame_from(&[0.5, -0.5]);
        assert!((mean_abs(&frame) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn the_knee_is_identity_below_threshold_monotonic_and_bounded() {
        let mut frame = Frame::silent();
        for (i, s) in frame.iter_mut().enumerate() {
            *s = (i as f32 / 80.0) - 6.0; // -6.0 ..= 6.0
        }
        frame[0] = f32::NAN;
        let original = frame.clone();
        ramp_and_knee(&mut frame, 1.0, 0.0, 0.9, 0.1);
        assert_eq!(frame[0], 0.0);
        let mut previous = f32::NEG_INFINITY;
        for (&out, &x) in frame.iter().zip(original.iter()).skip(1) {
            assert!(out.abs() < 1.0);
            if x.abs() <= 0.9 {
                assert_eq!(out, x);
            }
            assert!(out >= previous, "not monotonic at {x}");
            previous = out;
        }
    }

    proptest! {
        #[test]
        fn kernels_agree_with_plain_loops(values in prop::collection::vec(-2.0f32..2.0, 1..64), gain in 0.0f32..4.0) {
            let a = frame_from(&values);
            let b = frame_from(&values.iter().rev().copied().collect::<Vec<_>>());

            let expected_mean = a.iter().map(|&x| clean(x).abs() as f64).sum::<f64>() / FRAME_SAMPLES as f64;
            prop_assert!((mean_abs(&a) as f64 - expected_mean).abs() < 1e-4);

            let expected_peak = a.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            prop_assert_eq!(peak_abs(&a), expected_peak);

            let mut d = Frame::silent();
            clean_scaled_into(&mut d, &a, gain);
            for (d, &x) in d.iter().zip(a.iter()) {
                prop_assert_eq!(*d, clean(x) * gain);
            }

            let mut d = a.clone();
            add_assign(&mut d, &b);
            for ((d, &x), &y) in d.iter().zip(a.iter()).zip(b.iter()) {
                prop_assert_eq!(*d, x + y);
            }

            let mut d = a.clone();
            sub_assign(&mut d, &b);
            for ((d, &x), &y) in d.iter().zip(a.iter()).zip(b.iter()) {
                prop_assert_eq!(*d, x - y);
            }

            let mut d = a.clone();
            subtract_from(&mut d, &b);
            for ((d, &x), &y) in d.iter().zip(a.iter()).zip(b.iter()) {
                prop_assert_eq!(*d, y - x);
            }
        }
    }
}
