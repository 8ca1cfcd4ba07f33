//! Plays a [`ToneProgram`] as a mixer source, one frame at a time, without allocating.

use super::{Repeat, ToneProgram, ToneStep, MAX_FREQUENCIES};
use crate::frame::{Frame, SAMPLE_RATE};
use crate::source::{AudioSource, SourceState};

/// libteletone's 0 dBm0 reference (3.14 dB + 3.02 dB): a 0 dBm0 tone peaks at 0.696 of full
/// scale.
const DBM0_MAX_POWER: f32 = 6.16;
/// Fade in and out of each burst (1 ms) so cadences do not click.
const FADE_SAMPLES: u32 = 48;
/// Levels stay within libteletone's range while ramping.
const LEVEL_RANGE: std::ops::RangeInclusive<f32> = -63.0..=0.0;

fn peak_for_level(level_db: f32) -> f32 {
    10f32.powf((level_db - DBM0_MAX_POWER) / 20.0) * std::f32::consts::SQRT_2
}

/// A sine oscillator by complex rotation: exact frequency, no table, two multiplies a sample.
#[derive(Clone, Copy, Debug, Default)]
struct Oscillator {
    re: f64,
    im: f64,
    cos: f64,
    sin: f64,
}

impl Oscillator {
    fn new(hz: f32) -> Self {
        let w = 2.0 * std::f64::consts::PI * f64::from(hz) / f64::from(SAMPLE_RATE);
        Self {
            re: 1.0,
            im: 0.0,
            cos: w.cos(),
            sin: w.sin(),
        }
    }

    #[inline]
    fn next(&mut self) -> f64 {
        let value = self.im;
        let re = self.re * self.cos - self.im * self.sin;
        self.im = self.re * self.sin + self.im * self.cos;
        self.re = re;
        value
    }

    /// Pulls the rotation back onto the unit circle (rounding drifts it slowly).
    fn renormalize(&mut self) {
        let norm = (self.re * self.re + self.im * self.im).sqrt();
        if norm > 0.0 {
            self.re /= norm;
            self.im /= norm;
        }
    }
}

/// Plays a tone program: a room's entry tone, a prompt's beep, a DTMF confirmation.
#[derive(Clone, Debug)]
pub struct ToneGenerator {
    program: ToneProgram,
    passes_done: u32,
    step: usize,
    repeat_of_step: u32,
    position: u32,
    oscillators: [Oscillator; MAX_FREQUENCIES],
    voices: usize,
    level_db: f32,
    peak: f32,
    ramp_counter: u32,
    finished: bool,
}

impl ToneGenerator {
    /// A generator at the start of `program`.
    pub fn new(program: ToneProgram) -> Self {
        let mut generator = Self {
            program,
            passes_done: 0,
            step: 0,
            repeat_of_step: 0,
            position: 0,
            oscillators: [Oscillator::default(); MAX_FREQUENCIES],
            voices: 0,
            level_db: 0.0,
            peak: 0.0,
            ramp_counter: 0,
            finished: false,
        };
        generator.start_step();
        generator
    }

    /// Whether the program has played to its end.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn current(&self) -> Option<&ToneStep> {
        self.program.steps.get(self.step)
    }

    fn start_step(&mut self) {
        self.position = 0;
        self.ramp_counter = 0;
        let Some(step) = self.program.steps.get(self.step) else {
            return;
        };
        self.voices = step.frequencies.len().min(MAX_FREQUENCIES);
        for (oscillator, &hz) in self.oscillators.iter_mut().zip(&step.frequencies) {
            *oscillator = Oscillator::new(hz);
        }
        self.level_db = step.level_db;
        self.peak = peak_for_level(self.level_db);
    }

    /// Moves to the next step (or repeat, or pass). Returns false when the program is over.
    fn advance(&mut self) -> bool {
        let Some(step) = self.current() else {
            return false;
        };
        if self.repeat_of_step + 1 < step.repeats {
            self.repeat_of_step += 1;
        } else {
            self.repeat_of_step = 0;
            self.step += 1;
            if self.step >= self.program.steps.len() {
                self.step = 0;
                self.passes_done = self.passes_done.saturating_add(1);
                if let Repeat::Times(times) = self.program.repeat {
                    if self.passes_done >= times {
                        return false;
                    }
                }
            }
        }
        self.start_step();
        true
    }

    fn sample(&mut self, step_on: u32, ramp: Option<super::LevelRamp>) -> f32 {
        if let Some(ramp) = ramp {
            self.ramp_counter += 1;
            if self.ramp_counter >= ramp.every_samples {
                self.ramp_counter = 0;
                let next = self.level_db + ramp.step_db;
                if LEVEL_RANGE.contains(&next) {
                    self.level_db = next;
                    self.peak = peak_for_level(next);
                }
            }
        }
        let mut sum = 0.0;
        for oscillator in &mut self.oscillators[..self.voices] {
            sum += oscillator.next();
        }
        let fade_len = FADE_SAMPLES.min(step_on / 4).max(1);
        let from_start = self.position + 1;
        let to_end = step_on - self.position;
        let fade = (from_start.min(to_end).min(fade_len) as f32) / fade_len as f32;
        (sum / self.voices as f64) as f32 * self.peak * fade
    }
}

impl AudioSource for ToneGenerator {
    fn render(&mut self, out: &mut Frame) -> SourceState {
        let mut written = 0;
        // Bounds the work when steps are empty: a pass that plays nothing ends the program.
        let mut empty_steps = 0usize;
        while written < out.len() && !self.finished {
            let Some(step) = self.current() else {
                self.finished = true;
                break;
            };
            let (on, off, ramp) = (step.on_samples, step.off_samples, step.ramp);
            let total = on.saturating_add(off);
            if self.position >= total {
                empty_steps = if total == 0 { empty_steps + 1 } else { 0 };
                if empty_steps > self.program.steps.len() || !self.advance() {
                    self.finished = true;
                }
                continue;
            }
            let available = (total - self.position) as usize;
            let chunk = available.min(out.len() - written);
            for sample in &mut out[written..written + chunk] {
                *sample = if self.position < on && self.voices > 0 {
                    self.sample(on, ramp)
                } else {
                    0.0
                };
                self.position += 1;
            }
            for oscillator in &mut self.oscillators[..self.voices] {
                oscillator.renormalize();
            }
            written += chunk;
        }
        out[written..].fill(0.0);
        // Report the end as soon as nothing is left, so the last frame is not followed by an
        // empty one.
        if !self.finished {
            if let Some(step) = self.current() {
                let at_end_of_step =
                    self.position >= step.on_samples.saturating_add(step.off_samples);
                if at_end_of_step && self.is_last_position() {
                    self.finished = true;
                }
            }
        }
        if self.finished {
            SourceState::Finished
        } else {
            SourceState::Playing
        }
    }

    fn rewind(&mut self) -> bool {
        self.passes_done = 0;
        self.step = 0;
        self.repeat_of_step = 0;
        self.finished = false;
        self.start_step();
        true
    }
}

impl ToneGenerator {
    fn is_last_position(&self) -> bool {
        let Repeat::Times(times) = self.program.repeat else {
            return false;
        };
        let last_step = self.step + 1 >= self.program.steps.len();
        let last_repeat = self
            .current()
            .is_none_or(|step| self.repeat_of_step + 1 >= step.repeats);
        last_step && last_repeat && self.passes_done + 1 >= times
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::peak_abs;

    fn render_all(program: &str, max_frames: usize) -> (Vec<f32>, usize) {
        let mut generator = ToneGenerator::new(ToneProgram::parse(program).unwrap());
        let mut samples = Vec::new();
        let mut frame = Frame::silent();
        for frames in 1..=max_frames {
            let state = generator.render(&mut frame);
            samples.extend_from_slice(&frame[..]);
            if state == SourceState::Finished {
                return (samples, frames);
            }
        }
        (samples, max_frames)
    }

    fn amplitude_at(samples: &[f32], hz: f64) -> f64 {
        tutti_e2e::amplitude_at(samples, SAMPLE_RATE, hz)
    }

    #[test]
    fn a_200_ms_tone_lasts_ten_frames_at_its_frequency() {
        let (samples, frames) = render_all("%(200,0,1000)", 100);
        assert_eq!(frames, 10);
        let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - peak_for_level(-7.0)).abs() < 0.01, "peak {peak}");
        assert!(amplitude_at(&samples, 1000.0) > 0.25);
        assert!(amplitude_at(&samples, 1500.0) < 0.01);
    }

    #[test]
    fn a_rewound_generator_plays_its_program_again_from_the_start() {
        let program = ToneProgram::parse("L=2;%(60,40,440,660)").unwrap();
        let play = |generator: &mut ToneGenerator| {
            let mut samples = Vec::new();
            let mut frame = Frame::silent();
            while generator.render(&mut frame) == SourceState::Playing {
                samples.extend_from_slice(&frame[..]);
            }
            samples.extend_from_slice(&frame[..]);
            samples
        };
        let mut generator = ToneGenerator::new(program);
        let first = play(&mut generator);
        assert!(generator.rewind());
        assert_eq!(play(&mut generator), first);
    }

    #[test]
    fn cadence_has_silence_where_the_script_says() {
        let (samples, frames) = render_all("L=2;%(100,100,440)", 100);
        assert_eq!(frames, 20);
        let ms = |m: usize| m * 48;
        assert!(samples[ms(10)..ms(90)].iter().any(|s| s.abs() > 0.1));
        assert!(samples[ms(100)..ms(200)].iter().all(|&s| s == 0.0));
        assert!(samples[ms(210)..ms(290)].iter().any(|s| s.abs() > 0.1));
    }

    #[test]
    fn endless_tones_keep_playing() {
        let (_, frames) = render_all("%(20,20,440);loops=-1", 500);
        assert_eq!(frames, 500);
    }

    #[test]
    fn decay_lowers_the_level() {
        let (samples, _) = render_all("v=0;>=10;+=1;%(1000,0,440)", 100);
        let start = peak_abs(&Frame::from_array(samples[..960].try_into().unwrap()));
        let end = peak_abs(&Frame::from_array(
            samples[samples.len() - 960..].try_into().unwrap(),
        ));
        // 1 dB every 10 ms for ~1 s: far quieter at the end.
        assert!(end < start * 0.05, "start {start} end {end}");
    }

    #[test]
    fn chords_share_the_level_and_never_clip() {
        let (samples, _) = render_all("v=0;%(500,0,300,200,100,50,25)", 100);
        assert!(samples.iter().all(|s| s.abs() <= 0.7));
        for hz in [300.0, 200.0, 100.0] {
            assert!(amplitude_at(&samples, hz) > 0.1, "{hz} Hz missing");
        }
    }

    #[test]
    fn rests_and_dtmf_play() {
        let (samples, frames) = render_all("%(100,0,0);5(100,0)", 100);
        assert_eq!(frames, 10);
        assert!(samples[..100 * 48].iter().all(|&s| s == 0.0));
        let tail = &samples[100 * 48..];
        assert!(amplitude_at(tail, 770.0) > 0.1);
        assert!(amplitude_at(tail, 1336.0) > 0.1);
    }
}
