//! Tones: FreeSWITCH/Kazoo tone strings, their parser, and a synthesizer that plays them as a
//! mixer [`AudioSource`](crate::AudioSource).
//!
//! A tone string is a `;`-separated script, optionally prefixed with `tone_stream://`:
//!
//! | item | meaning |
//! |---|---|
//! | `%(on,off,f1[,f2…])` | `on` ms of the frequencies `f1…` (Hz, mixed at equal level, up to 18), then `off` ms of silence |
//! | `0`–`9`, `A`–`D`, `*`, `#` | a DTMF tone, optionally with `(on,off)`; several digits may follow each other |
//! | `v=dB` | level of the following tones, −63 to 0 dBm0 (default −7) |
//! | `d=ms`, `w=ms` | default on and off time of DTMF tones (default 250 and 62.5 ms) |
//! | `l=n` | play each following tone `n` times |
//! | `L=n`, `loops=n` | play the whole script `n` times; `-1` repeats until stopped |
//! | `>=ms`, `<=ms`, `+=dB` | every `ms`, lower (`>`) or raise (`<`) the level by `+` dB (default 1) |
//! | `r=`, `c=` | sample rate and channels: accepted and ignored (the mixer is 48 kHz mono) |
//!
//! Levels follow libteletone: 0 dBm0 is a peak of 0.696 of full scale, and a chord's frequencies
//! share that level rather than adding up. A frequency of 0 means silence: `%(200,0,0)` is a
//! 200 ms rest (FreeSWITCH skips such items; a rest is what their authors mean). Each tone burst
//! fades in and out over 1 ms so cadences do not click.

mod parse;
mod synth;

pub use parse::{ToneError, ToneErrorKind};
pub use synth::ToneGenerator;

use crate::frame::SAMPLE_RATE;
use std::str::FromStr;
use std::time::Duration;

/// Most frequencies one tone may mix (libteletone's limit).
pub const MAX_FREQUENCIES: usize = 18;

/// The default entry tone: a short bright chord (FreeSWITCH's and Kazoo's default).
pub const DEFAULT_ENTRY_TONE: &str = "tone_stream://%(200,0,500,600,700)";
/// The default exit tone: a longer low chord (FreeSWITCH's and Kazoo's default).
pub const DEFAULT_EXIT_TONE: &str = "tone_stream://%(500,0,300,200,100,50,25)";

/// How often a whole tone script plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// This many times (at least once).
    Times(u32),
    /// Until the source is removed.
    Forever,
}

/// A change of level every `every_samples`, by `step_db` (negative: decay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LevelRamp {
    /// Interval between level changes, in 48 kHz samples.
    pub every_samples: u32,
    /// Level change per interval in dB.
    pub step_db: f32,
}

/// One tone of a script: `on` samples of a chord, then `off` samples of silence.
#[derive(Clone, Debug, PartialEq)]
pub struct ToneStep {
    /// Samples (48 kHz) of sound.
    pub on_samples: u32,
    /// Samples (48 kHz) of silence after it.
    pub off_samples: u32,
    /// Frequencies in Hz; empty for a rest.
    pub frequencies: Vec<f32>,
    /// Starting level in dBm0.
    pub level_db: f32,
    /// Level change while it sounds.
    pub ramp: Option<LevelRamp>,
    /// How many times the step plays in a row.
    pub repeats: u32,
}

impl ToneStep {
    fn total_samples(&self) -> u64 {
        (u64::from(self.on_samples) + u64::from(self.off_samples)) * u64::from(self.repeats)
    }
}

/// A parsed tone string, ready to be played by a [`ToneGenerator`].
#[derive(Clone, Debug, PartialEq)]
pub struct ToneProgram {
    steps: Vec<ToneStep>,
    repeat: Repeat,
}

impl ToneProgram {
    /// Parses a tone string; see the module documentation for the syntax.
    pub fn parse(text: &str) -> Result<Self, ToneError> {
        parse::parse(text)
    }

    /// The steps of one pass of the script.
    pub fn steps(&self) -> &[ToneStep] {
        &self.steps
    }

    /// How often the script plays.
    pub fn repeat(&self) -> Repeat {
        self.repeat
    }

    /// Total playing time, or `None` for a script that repeats forever.
    pub fn duration(&self) -> Option<Duration> {
        let Repeat::Times(times) = self.repeat else {
            return None;
        };
        let samples: u64 = self.steps.iter().map(ToneStep::total_samples).sum();
        let micros = samples * u64::from(times) * 1_000_000 / u64::from(SAMPLE_RATE);
        Some(Duration::from_micros(micros))
    }

    /// The default entry tone.
    pub fn default_entry() -> Self {
        parse::parse(DEFAULT_ENTRY_TONE).unwrap_or_else(|_| Self::silence())
    }

    /// The default exit tone.
    pub fn default_exit() -> Self {
        parse::parse(DEFAULT_EXIT_TONE).unwrap_or_else(|_| Self::silence())
    }

    fn silence() -> Self {
        Self {
            steps: Vec::new(),
            repeat: Repeat::Times(1),
        }
    }
}

impl FromStr for ToneProgram {
    type Err = ToneError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tones_parse_and_differ() {
        let entry = ToneProgram::default_entry();
        let exit = ToneProgram::default_exit();
        assert_eq!(entry.steps().len(), 1);
        assert_eq!(exit.steps().len(), 1);
        assert_ne!(entry, exit);
        assert_eq!(entry.duration(), Some(Duration::from_millis(200)));
        assert_eq!(exit.duration(), Some(Duration::from_millis(500)));
    }
}
