//! Prompt files in Ogg Opus and Ogg Vorbis decode to 48 kHz mono holding the tone they were
//! made from (tests/fixtures/make.sh), with Opus pre-skip and end trimming honoured, stereo
//! downmixed and other rates resampled; damaged files are refused, never a panic.

use std::path::PathBuf;

use tutti_engine::wav::read_prompt;
use tutti_engine::EngineError;

const RATE: u32 = 48_000;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn level(samples: &[f32], hz: f64) -> f64 {
    tutti_e2e::amplitude_at(samples, RATE, hz)
}

/// Every fixture is one second of sine at half scale (amplitude 0.5).
fn assert_one_second(samples: &[f32], name: &str) {
    assert!(
        samples.len().abs_diff(RATE as usize) <= 2,
        "{name}: {} samples, not one second at 48 kHz",
        samples.len()
    );
}

#[test]
fn a_mono_ogg_opus_prompt_is_its_tone_from_the_first_sample() {
    let samples = read_prompt(&fixture("tone-1000hz-mono.opus")).unwrap();
    // 312 samples of pre-skip gone, and the padding of the last packet: exactly 1 s.
    assert_eq!(samples.len(), 48_000);
    let middle = &samples[12_000..36_000];
    assert!(
        (level(middle, 1000.0) - 0.5).abs() < 0.05,
        "{}",
        level(middle, 1000.0)
    );
    for other in [500.0, 1500.0, 3000.0] {
        assert!(
            level(middle, other) < 0.01,
            "{other} Hz: {}",
            level(middle, other)
        );
    }
    // The sine starts at phase zero on the first sample kept: the pre-skip (the encoder's
    // look-ahead) is not played, and the tone is aligned with the original.
    let head = &samples[..480];
    let correlation: f64 = head
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let t = i as f64 / f64::from(RATE);
            f64::from(s) * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()
        })
        .sum::<f64>()
        / head.len() as f64;
    assert!(
        correlation > 0.2,
        "the first 10 ms are the tone, in phase: {correlation}"
    );
}

#[test]
fn a_stereo_ogg_opus_prompt_is_downmixed() {
    let samples = read_prompt(&fixture("tones-440hz-left-880hz-right.opus")).unwrap();
    assert_eq!(samples.len(), 48_000);
    let middle = &samples[12_000..36_000];
    // Each channel's tone at half its level: the mean of left and right.
    for hz in [440.0, 880.0] {
        let l = level(middle, hz);
        assert!((0.18..0.32).contains(&l), "{hz} Hz at {l}");
    }
    assert!(level(middle, 660.0) < 0.01);
}

#[test]
fn multistream_ogg_opus_is_refused_with_a_reason() {
    let error = read_prompt(&fixture("tones-440hz-880hz-two-streams.opus")).unwrap_err();
    assert!(
        matches!(&error, EngineError::UnsupportedPrompt { reason, .. } if reason.contains("family 255")),
        "{error}"
    );
}

#[test]
fn ogg_vorbis_prompts_are_resampled_and_downmixed() {
    let mono = read_prompt(&fixture("tone-600hz-mono-22khz.ogg")).unwrap();
    assert_one_second(&mono, "22.05 kHz mono");
    let middle = &mono[12_000..36_000];
    assert!(
        (level(middle, 600.0) - 0.5).abs() < 0.05,
        "{}",
        level(middle, 600.0)
    );
    assert!(level(middle, 900.0) < 0.01);

    let stereo = read_prompt(&fixture("tones-440hz-left-880hz-right-44khz.ogg")).unwrap();
    assert_one_second(&stereo, "44.1 kHz stereo");
    let middle = &stereo[12_000..36_000];
    for hz in [440.0, 880.0] {
        let l = level(middle, hz);
        assert!((0.18..0.32).contains(&l), "{hz} Hz at {l}");
    }
}

#[test]
fn the_format_is_told_by_content_not_by_name() {
    let dir = std::env::temp_dir().join(format!("tutti-prompts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let misnamed = dir.join("prompt.wav");
    std::fs::copy(fixture("tone-600hz-mono-22khz.ogg"), &misnamed).unwrap();
    let samples = read_prompt(&misnamed).unwrap();
    assert!(level(&samples[12_000..36_000], 600.0) > 0.4);

    // A WAV still reads as before.
    let wav = dir.join("tone.ogg");
    let tone: Vec<f32> = (0..16_000)
        .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
        .collect();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(&wav, spec).unwrap();
    tone.iter().for_each(|&s| writer.write_sample(s).unwrap());
    writer.finalize().unwrap();
    let samples = read_prompt(&wav).unwrap();
    assert_one_second(&samples, "16 kHz WAV");
    assert!(level(&samples[12_000..36_000], 1000.0) > 0.45);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_and_foreign_files_are_refused() {
    let dir = std::env::temp_dir().join(format!("tutti-bad-prompts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opus = std::fs::read(fixture("tone-1000hz-mono.opus")).unwrap();

    // Flipped bytes in the first page: its checksum no longer matches.
    let mut flipped = opus.clone();
    flipped[40] ^= 0xff;
    let path = dir.join("flipped.opus");
    std::fs::write(&path, &flipped).unwrap();
    assert!(matches!(read_prompt(&path), Err(EngineError::Ogg { .. })));

    // Truncated mid-page: the complete pages decode or an error says why; no panic.
    let path = dir.join("truncated.opus");
    std::fs::write(&path, &opus[..opus.len() / 2]).unwrap();
    if let Ok(samples) = read_prompt(&path) {
        assert!(samples.len() < 48_000);
    }

    // "OggS" and then nothing Ogg can read.
    let path = dir.join("garbage.ogg");
    std::fs::write(&path, b"OggS\x00garbage, not pages").unwrap();
    assert!(read_prompt(&path).is_err());

    // Neither WAV nor Ogg: the WAV reader's refusal, as before Ogg prompts.
    let path = dir.join("text.wav");
    std::fs::write(&path, b"hello").unwrap();
    assert!(matches!(read_prompt(&path), Err(EngineError::Wav { .. })));
    assert!(matches!(
        read_prompt(&dir.join("missing.opus")),
        Err(EngineError::Wav { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
