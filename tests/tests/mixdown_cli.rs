//! `tutti mixdown` end to end: WAV files of different rates and formats in, what each caller
//! hears out, checked by frequency analysis.

use std::path::Path;
use std::process::Command;

use tutti_e2e::{amplitude_at, workspace_binary};

/// Writes a sine at `hz` (peak 0.3) as a WAV file of the given rate, channels and format.
fn write_tone(path: &Path, rate: u32, channels: u16, float: bool, hz: f64, seconds: f64) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: if float { 32 } else { 16 },
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(f64::from(rate) * seconds) as usize {
        let s = 0.3 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin();
        for _ in 0..channels {
            if float {
                writer.write_sample(s as f32).unwrap();
            } else {
                writer.write_sample((s * 32767.0) as i16).unwrap();
            }
        }
    }
    writer.finalize().unwrap();
}

fn read(path: &Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path).unwrap();
    assert_eq!(reader.spec().sample_rate, 48_000);
    assert_eq!(reader.spec().channels, 1);
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

/// Samples of `audio` between two times in seconds.
fn window(audio: &[f32], from: f64, to: f64) -> &[f32] {
    &audio[(from * 48_000.0) as usize..(to * 48_000.0) as usize]
}

#[test]
fn each_caller_hears_the_others_and_not_itself() {
    let dir = tempdir("mixdown");
    let alice = dir.join("alice.wav");
    let bob = dir.join("bob.wav");
    write_tone(&alice, 16_000, 1, false, 400.0, 3.0);
    write_tone(&bob, 44_100, 2, true, 1000.0, 2.0);
    let out = dir.join("out");

    let output = Command::new(workspace_binary("tutti"))
        .arg("mixdown")
        .arg(&alice)
        .arg(format!("{}@0.5", bob.display()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Events, in order, with their times.
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let event = |who: &str, what: &str| {
        lines
            .iter()
            .find(|l| l.len() >= 3 && l[1] == who && l[2] == what)
            .map(|l| l[0].trim_end_matches('s').parse::<f64>().unwrap())
    };
    assert_eq!(event("alice", "add-member"), Some(0.0));
    assert_eq!(event("alice", "start-talking"), Some(0.0));
    assert_eq!(event("bob", "add-member"), Some(0.5));
    assert_eq!(event("bob", "start-talking"), Some(0.5));
    assert_eq!(event("bob", "stop-talking"), Some(2.5));
    assert_eq!(event("alice", "del-member"), Some(3.0));

    let alice_hears = read(&out.join("alice.heard.wav"));
    let bob_hears = read(&out.join("bob.heard.wav"));
    let room = read(&out.join("room.wav"));
    assert_eq!(alice_hears.len(), room.len());

    // Alice hears her own entry tone, then silence until Bob joins; while both talk, each hears
    // only the other.
    assert!(amplitude_at(window(&alice_hears, 0.0, 0.2), 48_000, 600.0) > 0.05);
    assert!(window(&alice_hears, 0.22, 0.5).iter().all(|&s| s == 0.0));
    let both = (1.0, 2.0);
    let a = window(&alice_hears, both.0, both.1);
    assert!(
        amplitude_at(a, 48_000, 1000.0) > 0.25,
        "alice must hear bob"
    );
    assert!(
        amplitude_at(a, 48_000, 400.0) < 0.003,
        "alice must not hear herself"
    );
    let b = window(&bob_hears, both.0, both.1);
    assert!(amplitude_at(b, 48_000, 400.0) > 0.25, "bob must hear alice");
    assert!(
        amplitude_at(b, 48_000, 1000.0) < 0.003,
        "bob must not hear himself"
    );
    let r = window(&room, both.0, both.1);
    assert!(amplitude_at(r, 48_000, 400.0) > 0.25 && amplitude_at(r, 48_000, 1000.0) > 0.25);

    // The default entry tone (500+600+700 Hz, 200 ms) plays when Bob joins: Alice hears it.
    let entry = window(&alice_hears, 0.5, 0.7);
    for hz in [500.0, 600.0, 700.0] {
        assert!(
            amplitude_at(entry, 48_000, hz) > 0.05,
            "entry tone {hz} Hz missing"
        );
    }
    // The exit tone (low chord) follows Alice's departure in the room recording.
    let exit = window(&room, 3.0, 3.5);
    assert!(
        amplitude_at(exit, 48_000, 300.0) > 0.03,
        "exit tone missing"
    );
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let dir = tempdir("mixdown-errors");
    let missing = Command::new(workspace_binary("tutti"))
        .args(["mixdown", "/nonexistent/caller.wav"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/caller.wav"));

    let alice = dir.join("alice.wav");
    write_tone(&alice, 8_000, 1, false, 400.0, 0.2);
    let bad_tone = Command::new(workspace_binary("tutti"))
        .arg("mixdown")
        .arg(&alice)
        .args(["--entry-tone", "tone_stream://%(100,abc,440)", "--out"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(!bad_tone.status.success());
    let stderr = String::from_utf8_lossy(&bad_tone.stderr);
    assert!(
        stderr.contains("off duration (ms) `abc` is not a number"),
        "{stderr}"
    );

    let unknown = Command::new(workspace_binary("tutti"))
        .arg("mixdown")
        .arg(&alice)
        .args(["--mute", "zed"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no caller is named \"zed\""));
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tutti-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
