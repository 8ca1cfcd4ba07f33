//! `tutti mixdown`: the offline mixer on the command line.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use tutti_engine::tutti_mix::{ParticipantSettings, RoomConfig, ToneProgram};
use tutti_engine::{run_mixdown, wav, MixdownCaller, MixdownPlan};

/// Arguments of `tutti mixdown`.
#[derive(Args, Debug)]
pub struct MixdownArgs {
    /// Callers as WAV files, each optionally followed by `@SECONDS`, when it joins
    /// (e.g. `bob.wav@1.5`). Any rate, any channel count.
    #[arg(required = true, value_name = "FILE[@SECONDS]")]
    callers: Vec<String>,
    /// Folder for `<caller>.heard.wav` (what each caller hears) and `room.wav`.
    #[arg(long, short, default_value = "mixdown-out")]
    out: PathBuf,
    /// Talk threshold, 16-bit mean amplitude (Kazoo's default 20; FreeSWITCH often uses 300).
    #[arg(long, default_value_t = 20.0)]
    energy_level: f32,
    /// Mix only the loudest K talkers (0: everyone who talks).
    #[arg(long, default_value_t = 0)]
    max_talkers: usize,
    /// Entry tone, as a tone string (`tone_stream://%(200,0,500,600,700)`), or `none`.
    #[arg(long, default_value = tutti_engine::tutti_mix::tone::DEFAULT_ENTRY_TONE)]
    entry_tone: String,
    /// Exit tone, as a tone string, or `none`.
    #[arg(long, default_value = tutti_engine::tutti_mix::tone::DEFAULT_EXIT_TONE)]
    exit_tone: String,
    /// Callers (by name: the file name without `.wav`) who join muted.
    #[arg(long, value_name = "NAME")]
    mute: Vec<String>,
    /// Callers (by name) who join deaf.
    #[arg(long, value_name = "NAME")]
    deaf: Vec<String>,
}

fn tone(text: &str, what: &str) -> anyhow::Result<Option<ToneProgram>> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    Ok(Some(
        ToneProgram::parse(text).with_context(|| format!("--{what}"))?,
    ))
}

/// Splits `path@seconds`, tolerating `@` inside the path when no valid offset follows it.
fn caller_spec(spec: &str) -> anyhow::Result<(PathBuf, Duration)> {
    if let Some((path, offset)) = spec.rsplit_once('@') {
        if let Ok(seconds) = offset.parse::<f64>() {
            if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
                bail!("{spec}: the join time must be between 0 and 86400 seconds");
            }
            return Ok((PathBuf::from(path), Duration::from_secs_f64(seconds)));
        }
    }
    Ok((PathBuf::from(spec), Duration::ZERO))
}

fn unique_name(path: &Path, taken: &mut HashSet<String>) -> String {
    let stem = path
        .file_stem()
        .map_or_else(|| "caller".to_owned(), |s| s.to_string_lossy().into_owned());
    let mut name = stem.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{stem}-{n}");
        n += 1;
    }
    name
}

/// Runs the mixdown and prints its events.
#[allow(clippy::print_stdout)]
pub fn run(args: MixdownArgs) -> anyhow::Result<()> {
    let mut taken = HashSet::new();
    let mut callers = Vec::new();
    for spec in &args.callers {
        let (path, join_at) = caller_spec(spec)?;
        let audio = wav::read_mono_48k(&path)?;
        let name = unique_name(&path, &mut taken);
        let settings = ParticipantSettings {
            speak: !args.mute.contains(&name),
            hear: !args.deaf.contains(&name),
            energy_level: args.energy_level,
            ..Default::default()
        };
        callers.push(MixdownCaller {
            name,
            audio,
            join_at,
            settings,
        });
    }
    for name in args.mute.iter().chain(&args.deaf) {
        if !taken.contains(name) {
            bail!("no caller is named {name:?} (names: {})", names(&callers));
        }
    }
    let plan = MixdownPlan {
        callers,
        room: RoomConfig {
            max_contributors: args.max_talkers,
            ..Default::default()
        },
        entry_tone: tone(&args.entry_tone, "entry-tone")?,
        exit_tone: tone(&args.exit_tone, "exit-tone")?,
    };
    let started = std::time::Instant::now();
    let mixdown = run_mixdown(&plan)?;
    let elapsed = started.elapsed();

    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    println!("{:>9}  {:<12} {:<14} energy", "time", "caller", "event");
    for event in &mixdown.events {
        let name = &plan.callers[event.caller].name;
        let energy = match event.kind.name() {
            "add-member" | "del-member" => String::new(),
            _ => format!("{:.0}", event.energy),
        };
        println!(
            "{:>8.2}s  {:<12} {:<14} {energy}",
            event.at.as_secs_f64(),
            name,
            event.kind.name()
        );
    }
    println!();
    for (caller, heard) in plan.callers.iter().zip(&mixdown.heard) {
        let path = args.out.join(format!("{}.heard.wav", caller.name));
        wav::write_mono_48k(&path, heard)?;
        println!("wrote {}  (what {} hears)", path.display(), caller.name);
    }
    let room_path = args.out.join("room.wav");
    wav::write_mono_48k(&room_path, &mixdown.room)?;
    println!("wrote {}  (the room recording)", room_path.display());
    let audio_seconds = mixdown.ticks as f64 * 0.02;
    println!(
        "\nmixed {audio_seconds:.2} s of audio for {} callers in {:.1} ms ({:.0}x real time)",
        plan.callers.len(),
        elapsed.as_secs_f64() * 1000.0,
        audio_seconds / elapsed.as_secs_f64().max(1e-9)
    );
    Ok(())
}

fn names(callers: &[MixdownCaller]) -> String {
    callers
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
