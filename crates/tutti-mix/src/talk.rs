//! Energy measurement and talk detection with hysteresis, and the energy gate that follows it.
//!
//! # Energy
//! A participant's energy for one frame is the mean absolute amplitude of its samples on the
//! 16-bit scale (0 for silence, 32768 for a full-scale square wave), measured after the input
//! gain, exactly as FreeSWITCH's `mod_conference` scores a frame. An `energy_level` therefore
//! means the same here as there: Kazoo's default 20 lets almost any voice through, FreeSWITCH's
//! usual 300 wants a clearly speaking caller.
//!
//! # Talking
//! A frame is *above* when its energy is strictly greater than the participant's
//! `energy_level`. Defaults follow FreeSWITCH, whose behaviour Kazoo users already know:
//!
//! - talking **starts** after [`TalkConfig::attack_frames`] above-threshold frames (5 frames,
//!   100 ms; each frame at or below the threshold takes one back), or at once on a single frame
//!   at least [`TalkConfig::instant_margin`] (400) above the threshold;
//! - talking **stops** after [`TalkConfig::hangover_frames`] consecutive frames at or below the
//!   threshold (40 frames, 800 ms); any frame above restarts that count.
//!
//! Asterisk's ConfBridge uses a longer silence window (2.5 s) for its talking indication; the
//! 800 ms FreeSWITCH hangover reacts faster, which matters for `stop-talking` events that drive
//! a "who is speaking" display.
//!
//! # The gate
//! A participant is mixed only while its gate is open: while talking (so the hangover carries
//! the ends of words and the pauses between them), on any frame above the threshold, and while a
//! start is pending. The first above-threshold frame is mixed even though the talk event comes
//! later, so word onsets are never chopped; a line that only carries noise below the threshold
//! contributes nothing, so idle lines' noise does not pile up in big rooms.

use crate::frame::I16_SCALE;
use crate::kernels;
use crate::Frame;

/// Parameters of talk detection, counted in 20 ms frames.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TalkConfig {
    /// Above-threshold frames needed before talking starts (FreeSWITCH: 5, i.e. 100 ms).
    pub attack_frames: u16,
    /// Consecutive frames at or below the threshold before talking stops (FreeSWITCH: 40,
    /// i.e. 800 ms).
    pub hangover_frames: u16,
    /// A frame this far above the threshold starts talking at once (FreeSWITCH: 400).
    pub instant_margin: f32,
}

impl Default for TalkConfig {
    fn default() -> Self {
        Self {
            attack_frames: 5,
            hangover_frames: 40,
            instant_margin: 400.0,
        }
    }
}

/// What one frame did to a detector's voice activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoiceTransition {
    /// Nothing changed.
    None,
    /// Voice activity started with this frame.
    Started,
    /// Voice activity stopped with this frame.
    Stopped,
}

/// Voice-activity state of one participant: the hysteresis of [`TalkConfig`] and the gate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TalkDetector {
    active: bool,
    pending_hits: u16,
    quiet_frames: u16,
    gate_open: bool,
}

impl TalkDetector {
    /// Feeds one frame's energy (16-bit scale) against `threshold` (the `energy_level`).
    pub fn update(&mut self, energy: f32, threshold: f32, config: &TalkConfig) -> VoiceTransition {
        let above = energy > threshold;
        let mut transition = VoiceTransition::None;
        if self.active {
            if above {
                self.quiet_frames = 0;
            } else {
                self.quiet_frames = self.quiet_frames.saturating_add(1);
                if self.quiet_frames >= config.hangover_frames {
                    self.active = false;
                    self.quiet_frames = 0;
                    self.pending_hits = 0;
                    transition = VoiceTransition::Stopped;
                }
            }
        } else if above {
            self.pending_hits = self.pending_hits.saturating_add(1);
            if self.pending_hits >= config.attack_frames
                || energy - threshold >= config.instant_margin
            {
                self.active = true;
                self.pending_hits = 0;
                self.quiet_frames = 0;
                transition = VoiceTransition::Started;
            }
        } else {
            self.pending_hits = self.pending_hits.saturating_sub(1);
        }
        self.gate_open = self.active || above || self.pending_hits > 0;
        transition
    }

    /// Whether voice activity is on (talking, whether or not the participant may speak).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Whether the last frame passes the energy gate and may be mixed.
    pub fn gate_open(&self) -> bool {
        self.gate_open
    }

    /// Forgets all history, as for a new participant.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Energy of a frame on the 16-bit scale, after `gain`: the mean absolute amplitude.
pub fn frame_energy(frame: &Frame, gain: f32) -> f32 {
    kernels::mean_abs(frame) * gain * I16_SCALE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(detector: &mut TalkDetector, energies: &[f32]) -> Vec<(usize, VoiceTransition)> {
        let config = TalkConfig::default();
        energies
            .iter()
            .enumerate()
            .filter_map(|(i, &e)| match detector.update(e, 20.0, &config) {
                VoiceTransition::None => None,
                t => Some((i, t)),
            })
            .collect()
    }

    #[test]
    fn starts_after_five_frames_and_stops_after_forty_quiet_ones() {
        let mut d = TalkDetector::default();
        let mut energies = vec![100.0; 10];
        energies.extend(vec![0.0; 50]);
        let transitions = run(&mut d, &energies);
        assert_eq!(
            transitions,
            vec![
                (4, VoiceTransition::Started),
                (49, VoiceTransition::Stopped)
            ]
        );
    }

    #[test]
    fn a_loud_frame_starts_at_once() {
        let mut d = TalkDetector::default();
        assert_eq!(run(&mut d, &[500.0]), vec![(0, VoiceTransition::Started)]);
    }

    #[test]
    fn gate_opens_on_the_first_frame_above_and_follows_the_hangover() {
        let mut d = TalkDetector::default();
        let config = TalkConfig::default();
        d.update(5.0, 20.0, &config);
        assert!(!d.gate_open());
        d.update(100.0, 20.0, &config);
        assert!(
            d.gate_open(),
            "onset must be mixed before talking is declared"
        );
        for _ in 0..4 {
            d.update(100.0, 20.0, &config);
        }
        assert!(d.is_active());
        for _ in 0..39 {
            d.update(0.0, 20.0, &config);
            assert!(d.gate_open(), "the hangover keeps the gate open");
        }
        d.update(0.0, 20.0, &config);
        assert!(!d.gate_open());
        assert!(!d.is_active());
    }

    #[test]
    fn a_single_noise_spike_neither_talks_nor_holds_the_gate() {
        let mut d = TalkDetector::default();
        let transitions = run(&mut d, &[100.0, 0.0, 0.0, 0.0]);
        assert!(transitions.is_empty());
        assert!(!d.gate_open());
    }

    #[test]
    fn energy_is_the_mean_absolute_amplitude_on_the_16_bit_scale() {
        let mut frame = Frame::silent();
        for (i, s) in frame.iter_mut().enumerate() {
            *s = if i % 2 == 0 { 1000.0 } else { -1000.0 } / I16_SCALE;
        }
        assert!((frame_energy(&frame, 1.0) - 1000.0).abs() < 0.01);
        assert!((frame_energy(&frame, 0.5) - 500.0).abs() < 0.01);
    }
}
