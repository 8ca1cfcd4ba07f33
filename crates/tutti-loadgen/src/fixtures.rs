//! The audio every caller replays, made once at start: a loop of speech synthesised by
//! espeak-ng, resampled to 48 kHz and Opus-coded in 20 ms frames, and Opus-coded silence.

use std::path::Path;
use std::process::Command;

use tutti_codec::{resample_clip, AudioEncoder, EncoderSettings, OpusEncoder, FRAME_SAMPLES_48K};

use crate::LoadError;

/// Harvard sentences (IEEE 1969, list 1): phonetically balanced, the usual material of speech
/// quality tests.
const TEXT: &str = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue \
background. It's easy to tell the depth of a well. These days a chicken leg is a rare dish. \
Rice is often served in round bowls. The juice of lemons makes fine punch.";

/// Largest Opus payload kept per frame.
const MAX_PAYLOAD: usize = 1275;

/// Opus payloads to replay, 20 ms each.
#[derive(Clone, Debug)]
pub struct Fixtures {
    /// The speech loop, one payload per 20 ms.
    pub speech: Vec<Vec<u8>>,
    /// Opus-coded silence, one payload per 20 ms (a short loop).
    pub silence: Vec<Vec<u8>>,
    /// The speech at 48 kHz, as coded (for the reference file).
    pub speech_pcm: Vec<f32>,
}

impl Fixtures {
    /// Synthesises the speech with espeak-ng and codes both loops with `talker` settings.
    pub fn make(talker: &EncoderSettings) -> Result<Self, LoadError> {
        let pcm = synthesise()?;
        Self::from_pcm(pcm, talker)
    }

    /// Codes `speech_pcm` (48 kHz mono) and silence with `talker` settings.
    pub fn from_pcm(mut speech_pcm: Vec<f32>, talker: &EncoderSettings) -> Result<Self, LoadError> {
        let frames = speech_pcm.len().div_ceil(FRAME_SAMPLES_48K).max(1);
        speech_pcm.resize(frames * FRAME_SAMPLES_48K, 0.0);
        let mut encoder = OpusEncoder::new(talker)?;
        let mut out = [0u8; MAX_PAYLOAD];
        let mut speech = Vec::with_capacity(frames);
        for frame in speech_pcm.chunks_exact(FRAME_SAMPLES_48K) {
            let len = encoder.encode(frame, &mut out)?;
            speech.push(out[..len].to_vec());
        }
        let mut encoder = OpusEncoder::new(talker)?;
        let zeros = [0.0f32; FRAME_SAMPLES_48K];
        let mut silence = Vec::with_capacity(50);
        for _ in 0..50 {
            let len = encoder.encode(&zeros, &mut out)?;
            silence.push(out[..len].to_vec());
        }
        Ok(Self {
            speech,
            silence,
            speech_pcm,
        })
    }

    /// Length of the speech loop in seconds.
    pub fn speech_seconds(&self) -> f64 {
        self.speech.len() as f64 * 0.02
    }

    /// Writes the first `seconds` of the clean speech (silence after the loop's end) at
    /// 16 kHz, the reference of a wideband quality score.
    pub fn write_reference(&self, path: &Path, seconds: f64) -> Result<(), LoadError> {
        let wanted = (seconds * 48_000.0) as usize;
        let mut clip: Vec<f32> = self.speech_pcm.iter().copied().take(wanted).collect();
        clip.resize(wanted, 0.0);
        write_wav_16k(path, &clip)
    }
}

/// Writes 48 kHz mono audio as a 16 kHz 16-bit WAV file.
pub fn write_wav_16k(path: &Path, pcm_48k: &[f32]) -> Result<(), LoadError> {
    let clip = resample_clip(pcm_48k, 48_000, 16_000)?;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    for s in clip {
        writer.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)?;
    }
    writer.finalize()?;
    Ok(())
}

/// Speech from espeak-ng at 48 kHz, its peak at −3 dBFS.
fn synthesise() -> Result<Vec<f32>, LoadError> {
    let output = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "--stdout", TEXT])
        .output()
        .map_err(|e| {
            LoadError::Fixture(format!(
                "espeak-ng could not be run ({e}); install the espeak-ng package"
            ))
        })?;
    if !output.status.success() {
        return Err(LoadError::Fixture(format!(
            "espeak-ng failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let reader = hound::WavReader::new(std::io::Cursor::new(output.stdout))
        .map_err(|e| LoadError::Fixture(format!("espeak-ng's output is not WAV: {e}")))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let samples: Vec<f32> = reader
        .into_samples::<i16>()
        // Written to a pipe, the header cannot give the data's length: read to the end.
        .map_while(Result::ok)
        .step_by(channels)
        .map(|s| f32::from(s) / 32768.0)
        .collect();
    if samples.is_empty() {
        return Err(LoadError::Fixture("espeak-ng produced no audio".into()));
    }
    let mut pcm = resample_clip(&samples, spec.sample_rate, 48_000)?;
    let peak = pcm.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    if peak > 0.0 {
        let gain = 0.7 / peak;
        pcm.iter_mut().for_each(|s| *s *= gain);
    }
    Ok(pcm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_frames_are_larger_than_silence_frames() {
        let pcm: Vec<f32> = (0..48_000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        let fixtures = Fixtures::from_pcm(pcm, &EncoderSettings::default()).unwrap();
        assert_eq!(fixtures.speech.len(), 50);
        let speech_min = fixtures.speech.iter().map(Vec::len).min().unwrap();
        let silence_max = fixtures.silence.iter().map(Vec::len).max().unwrap();
        assert!(speech_min > silence_max, "{speech_min} vs {silence_max}");
    }
}
