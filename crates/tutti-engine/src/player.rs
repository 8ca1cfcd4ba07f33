//! A decoded clip (a prompt file) played into a room as a mixer source.

use std::sync::Arc;
use std::time::Duration;

use tutti_mix::{AudioSource, Frame, SourceState, SAMPLE_RATE};

/// Plays 48 kHz mono samples once.
#[derive(Clone, Debug)]
pub struct ClipPlayer {
    samples: Arc<[f32]>,
    position: usize,
}

impl ClipPlayer {
    /// A player of `samples` (48 kHz mono), decoded before it reaches the mixer thread. A
    /// clip played often (an entry tone) is shared as an `Arc<[f32]>` rather than copied.
    pub fn new(samples: impl Into<Arc<[f32]>>) -> Self {
        Self {
            samples: samples.into(),
            position: 0,
        }
    }

    /// How long the clip plays.
    pub fn duration(&self) -> Duration {
        clip_duration(self.samples.len())
    }
}

/// How long `samples` samples at 48 kHz play.
pub(crate) fn clip_duration(samples: usize) -> Duration {
    Duration::from_nanos(samples as u64 * 1_000_000_000 / u64::from(SAMPLE_RATE))
}

impl AudioSource for ClipPlayer {
    fn render(&mut self, out: &mut Frame) -> SourceState {
        let rest = &self.samples[self.position.min(self.samples.len())..];
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        out[n..].fill(0.0);
        self.position += n;
        if self.position >= self.samples.len() {
            SourceState::Finished
        } else {
            SourceState::Playing
        }
    }

    fn rewind(&mut self) -> bool {
        self.position = 0;
        true
    }
}
