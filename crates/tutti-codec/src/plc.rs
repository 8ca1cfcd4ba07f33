//! Packet-loss concealment for the sample codecs (G.711, G.722), after ITU-T G.711 Appendix I:
//! a lost stretch repeats the last pitch period of what was heard, unattenuated for 10 ms, then
//! fading by 20 % of the level per 10 ms to silence after 60 ms; the first good audio after a
//! loss is cross-faded with the concealment's continuation, so neither edge clicks.
//!
//! Works on the decoder's 48 kHz output. Every buffer is sized at construction.

/// Audio kept for the pitch search: 60 ms.
const HISTORY: usize = 2_880;
/// Shortest pitch period searched: 5 ms (200 Hz and above are taken as multiples).
const MIN_PERIOD: usize = 240;
/// Longest pitch period searched: 15 ms (66 Hz).
const MAX_PERIOD: usize = 720;
/// Window compared against its delayed copy: 20 ms.
const WINDOW: usize = 960;
/// The coarse search looks at every this many samples, then refines around the best.
const DECIMATION: usize = 4;
/// Samples concealed at full level: 10 ms.
const FULL_LEVEL: usize = 480;
/// Samples over which the level falls by 20 %: 10 ms.
const FADE_STEP: usize = 480;
/// Cross-fade into the first good audio after a loss: 4 ms.
const CROSS_FADE: usize = 192;

/// The concealment state of one decoder.
#[derive(Clone, Debug)]
pub(crate) struct PitchConcealer {
    /// The most recent audio, a ring: `ring[next]` is the oldest sample. Remembering good
    /// audio is one copy of what arrived, never a shift of the whole history.
    ring: Vec<f32>,
    next: usize,
    /// The history in order, oldest first, laid out once when a loss starts.
    history: Vec<f32>,
    /// Pitch period of the loss being concealed; 0 when not concealing.
    period: usize,
    /// Samples concealed in this loss.
    concealed: usize,
}

impl PitchConcealer {
    pub(crate) fn new() -> Self {
        Self {
            ring: vec![0.0; HISTORY],
            next: 0,
            history: vec![0.0; HISTORY],
            period: 0,
            concealed: 0,
        }
    }

    /// Takes decoded audio (already in `audio`); after a loss, cross-fades its start with the
    /// concealment's continuation first.
    pub(crate) fn heard(&mut self, audio: &mut [f32]) {
        if self.period != 0 {
            let fade = audio.len().min(CROSS_FADE);
            for (i, sample) in audio[..fade].iter_mut().enumerate() {
                let continuation = self.next_sample();
                let weight = (i + 1) as f32 / (fade + 1) as f32;
                *sample = *sample * weight + continuation * (1.0 - weight);
            }
            self.period = 0;
        }
        self.remember(audio);
    }

    /// Fills `out` with the continuation of what was heard.
    pub(crate) fn conceal(&mut self, out: &mut [f32]) {
        if self.period == 0 {
            let (newer, older) = self.ring.split_at(self.next);
            self.history[..older.len()].copy_from_slice(older);
            self.history[older.len()..].copy_from_slice(newer);
            self.period = pitch_period(&self.history);
            self.concealed = 0;
        }
        for sample in out.iter_mut() {
            *sample = self.next_sample();
        }
    }

    /// The next concealed sample: the last period again, at the level for how long the loss
    /// has lasted.
    fn next_sample(&mut self) -> f32 {
        let period = self.period;
        let source = self.history[HISTORY - period + self.concealed % period];
        let gain = level_after(self.concealed);
        self.concealed += 1;
        source * gain
    }

    fn remember(&mut self, audio: &[f32]) {
        let audio = &audio[audio.len().saturating_sub(HISTORY)..];
        let first = audio.len().min(HISTORY - self.next);
        self.ring[self.next..self.next + first].copy_from_slice(&audio[..first]);
        let rest = audio.len() - first;
        self.ring[..rest].copy_from_slice(&audio[first..]);
        self.next = (self.next + audio.len()) % HISTORY;
    }
}

/// The level of concealed sample `n` of a loss: 1 for 10 ms, then 20 % less per 10 ms.
fn level_after(n: usize) -> f32 {
    if n < FULL_LEVEL {
        return 1.0;
    }
    let steps = (n - FULL_LEVEL) as f32 / FADE_STEP as f32;
    (1.0 - 0.2 * steps).max(0.0)
}

/// The lag, in samples, at which the end of `history` best matches itself (normalised
/// cross-correlation), searched coarsely on every 4th sample and refined around the best.
fn pitch_period(history: &[f32]) -> usize {
    let recent = &history[HISTORY - WINDOW..];
    let score = |lag: usize, step: usize| {
        let delayed = &history[HISTORY - WINDOW - lag..HISTORY - lag];
        let (mut cross, mut energy) = (0.0f32, 0.0f32);
        for i in (0..WINDOW).step_by(step) {
            cross += recent[i] * delayed[i];
            energy += delayed[i] * delayed[i];
        }
        if energy <= f32::EPSILON {
            f32::MIN
        } else {
            cross / energy.sqrt()
        }
    };
    let best = |lags: std::ops::RangeInclusive<usize>, step: usize| {
        lags.step_by(step)
            .map(|lag| (lag, score(lag, step)))
            .fold((MIN_PERIOD, f32::MIN), |best, candidate| {
                if candidate.1 > best.1 {
                    candidate
                } else {
                    best
                }
            })
            .0
    };
    let coarse = best(MIN_PERIOD..=MAX_PERIOD, DECIMATION);
    let fine =
        coarse.saturating_sub(DECIMATION).max(MIN_PERIOD)..=(coarse + DECIMATION).min(MAX_PERIOD);
    best(fine, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, from: usize, len: usize) -> Vec<f32> {
        (from..from + len)
            .map(|i| 0.4 * (2.0 * std::f32::consts::PI * hz * i as f32 / 48_000.0).sin())
            .collect()
    }

    #[test]
    fn the_pitch_of_a_voiced_sound_is_found() {
        // 100 Hz: a 480-sample period, inside the searched range.
        let mut plc = PitchConcealer::new();
        // In uneven pieces, so the history wraps around its ring.
        plc.heard(&mut tone(100.0, 0, 1_000));
        plc.heard(&mut tone(100.0, 1_000, HISTORY));
        plc.conceal(&mut [0.0; 1]);
        assert_eq!(plc.period, 480);
    }

    #[test]
    fn a_loss_continues_the_tone_then_fades_to_silence() {
        let mut plc = PitchConcealer::new();
        for block in 0..7 {
            plc.heard(&mut tone(150.0, block * 480, 480));
        }
        let mut out = vec![0.0; 960];
        plc.conceal(&mut out);
        // The continuation lines up with the tone that would have followed.
        let expected = tone(150.0, 7 * 480, 480);
        let error: f32 = out[..480]
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(error < 0.02, "{error}");
        let mut rest = vec![0.0; 3 * 960];
        plc.conceal(&mut rest);
        assert!(
            rest[2_000..].iter().all(|s| *s == 0.0),
            "silent after 60 ms"
        );
    }
}
