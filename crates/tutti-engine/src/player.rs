//! A decoded clip (a WAV prompt) played into a room as a mixer source.

use tutti_mix::{AudioSource, Frame, SourceState};

/// Plays 48 kHz mono samples once.
#[derive(Clone, Debug)]
pub struct ClipPlayer {
    samples: Vec<f32>,
    position: usize,
}

impl ClipPlayer {
    /// A player of `samples` (48 kHz mono), decoded before it reaches the mixer thread.
    pub fn new(samples: Vec<f32>) -> Self {
        Self {
            samples,
            position: 0,
        }
    }
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
}
