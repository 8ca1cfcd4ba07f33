//! Audio files in and out. Prompts ([`read_prompt`]) are WAV (any PCM or float format), Ogg
//! Opus or Ogg Vorbis, told apart by their content and decoded to 48 kHz mono f32; mixes are
//! written as 48 kHz mono 16-bit PCM WAV.

use std::io::Read;
use std::path::Path;

use hound::{SampleFormat, WavReader, WavSpec, WavWriter};
use tutti_mix::{I16_SCALE, SAMPLE_RATE};

use crate::EngineError;

/// Reads a prompt file as 48 kHz mono, whatever its format: Ogg Opus and Ogg Vorbis are
/// recognised by their first bytes (whatever the file is called), anything else is read as
/// WAV. Channels are averaged (libopus downmixes stereo Opus), other rates resampled; Opus
/// pre-skip, end trimming and output gain are honoured.
pub fn read_prompt(path: &Path) -> Result<Vec<f32>, EngineError> {
    let mut magic = [0u8; 4];
    let is_ogg = std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok_and(|()| &magic == crate::oggfile::OGG_MAGIC);
    if is_ogg {
        crate::oggfile::read_mono_48k(path)
    } else {
        read_mono_48k(path)
    }
}

/// Reads a WAV file as 48 kHz mono: channels are averaged, other rates resampled.
pub fn read_mono_48k(path: &Path) -> Result<Vec<f32>, EngineError> {
    let wav_error = |source| EngineError::Wav {
        path: path.to_owned(),
        source,
    };
    let reader = WavReader::open(path).map_err(wav_error)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(wav_error)?,
        (SampleFormat::Int, bits @ 1..=32) => {
            let scale = (1u64 << (bits - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|s| s as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(wav_error)?
        }
        (format, bits) => {
            return Err(EngineError::UnsupportedWav {
                path: path.to_owned(),
                reason: format!("{bits}-bit {format:?} samples are not supported"),
            })
        }
    };
    let mono: Vec<f32> = interleaved
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect();
    Ok(tutti_codec::resample_clip(
        &mono,
        spec.sample_rate,
        SAMPLE_RATE,
    )?)
}

/// Writes 48 kHz mono samples as a 16-bit PCM WAV file (rounded, saturated).
pub fn write_mono_48k(path: &Path, samples: &[f32]) -> Result<(), EngineError> {
    let wav_error = |source| EngineError::Wav {
        path: path.to_owned(),
        source,
    };
    let spec = WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: SampleFormat::Int,
    };
    let mut writer = WavWriter::create(path, spec).map_err(wav_error)?;
    let mut pcm = writer.get_i16_writer(samples.len() as u32);
    for &s in samples {
        pcm.write_sample((s * I16_SCALE).round() as i16);
    }
    pcm.flush().map_err(wav_error)?;
    writer.finalize().map_err(wav_error)
}
