//! `tutti-loadgen`: joins thousands of plain-RTP Opus callers to a conference server, checks
//! every mix they receive, and prints a JSON summary.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tutti_codec::{EncoderSettings, OpusApplication};
use tutti_loadgen::face::janus::{Janus, JanusRoomSettings};
use tutti_loadgen::face::kazoo::Kazoo;
use tutti_loadgen::face::Face;
use tutti_loadgen::{ipv4, LoadConfig, LoadError};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FaceKind {
    /// tutti (or another server) through Kazoo's conference API.
    Kazoo,
    /// Janus's AudioBridge plugin over its HTTP transport.
    Janus,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// CELT.
    Audio,
    /// SILK/hybrid.
    Voip,
}

/// Joins plain-RTP Opus callers in rooms, a few of each room talking, and measures the mixes.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Which API joins the callers.
    #[arg(long, value_enum, default_value = "kazoo")]
    face: FaceKind,
    /// The server's HTTP base URL (Kazoo: tutti's API; Janus: its HTTP transport, e.g.
    /// http://127.0.0.1:8088/janus).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Kazoo: the account's id.
    #[arg(long)]
    account_id: Option<String>,
    /// Kazoo: the account's API key.
    #[arg(long)]
    api_key: Option<String>,
    /// The server's name in the summary (default: tutti for the Kazoo face, janus for Janus).
    #[arg(long)]
    server_name: Option<String>,
    /// Callers in the load rooms.
    #[arg(long, default_value_t = 100)]
    callers: usize,
    /// Callers per room.
    #[arg(long, default_value_t = 25)]
    room_size: usize,
    /// Talkers per room.
    #[arg(long, default_value_t = 3)]
    talkers: usize,
    /// Talkers send silence instead of speech (every listener should then be inaudible).
    #[arg(long)]
    silent_talkers: bool,
    /// Measured seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds between the last join and the measured window.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// UDP sockets the callers share.
    #[arg(long, default_value_t = 4)]
    sockets: usize,
    /// Address the callers send from and name in their offers.
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: IpAddr,
    /// Threads making joins.
    #[arg(long, default_value_t = 4)]
    join_threads: usize,
    /// Listeners per room whose every packet is decoded.
    #[arg(long, default_value_t = 1)]
    decode_per_room: usize,
    /// Decode every listener.
    #[arg(long)]
    decode_all: bool,
    /// The server's process id, for its CPU from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's Prometheus metrics (Kazoo face: <url>/metrics unless set).
    #[arg(long)]
    metrics_url: Option<String>,
    /// Adds a measurement room (one talker, one listener) and writes its listener here (16 kHz
    /// WAV).
    #[arg(long)]
    record_listener: Option<PathBuf>,
    /// Writes the measurement talker's clean speech here (16 kHz WAV).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// How the server codes mixes (tutti's [media.opus] mode).
    #[arg(long, value_enum, default_value = "audio")]
    mix_mode: Mode,
    /// The mixes' Opus bitrate, bit/s (tutti's default).
    #[arg(long, default_value_t = 96_000)]
    mix_bitrate: u32,
    /// The mixes' Opus complexity (tutti's default).
    #[arg(long, default_value_t = 0)]
    mix_complexity: u8,
    /// The talkers' Opus bitrate, bit/s.
    #[arg(long, default_value_t = 32_000)]
    talker_bitrate: u32,
    /// Janus: the rooms' sampling rate (Janus's default).
    #[arg(long, default_value_t = 16_000)]
    janus_sampling_rate: u32,
    /// Janus: each participant's Opus bitrate; 0 leaves it to Janus (its default).
    #[arg(long, default_value_t = 0)]
    janus_bitrate: u32,
    /// Janus: each participant's Opus complexity, its `quality` (Janus's default 4).
    #[arg(long, default_value_t = 4)]
    janus_quality: u8,
    /// Janus: in-band FEC in what plain-RTP participants receive (off by default in Janus).
    #[arg(long)]
    janus_fec: bool,
    /// Leave the rooms open after the run.
    #[arg(long)]
    keep_rooms: bool,
    /// Also write the summary to this file.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Run nothing: print a side-by-side table of these summaries (JSON files this program
    /// wrote; a PESQ score is read from the same name with the extension .pesq).
    #[arg(long, num_args = 1.., value_name = "SUMMARY")]
    table: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutti-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), LoadError> {
    if !args.table.is_empty() {
        let table = tutti_loadgen::table(&args.table)?;
        write!(std::io::stdout().lock(), "{table}")?;
        return Ok(());
    }
    let mix_opus = EncoderSettings {
        application: match args.mix_mode {
            Mode::Audio => OpusApplication::Audio,
            Mode::Voip => OpusApplication::Voip,
        },
        bitrate: args.mix_bitrate,
        complexity: args.mix_complexity,
        ..EncoderSettings::default()
    };
    let seconds = |s: f64, what: &str| {
        if s.is_finite() && s > 0.0 {
            Ok(Duration::from_secs_f64(s))
        } else {
            Err(LoadError::Setting(format!(
                "{what} must be a positive number of seconds"
            )))
        }
    };
    let config = LoadConfig {
        server: args.server_name.clone().unwrap_or_else(|| {
            match args.face {
                FaceKind::Kazoo => "tutti",
                FaceKind::Janus => "janus",
            }
            .into()
        }),
        callers: args.callers,
        room_size: args.room_size,
        talkers: args.talkers,
        silent_talkers: args.silent_talkers,
        duration: seconds(args.duration, "--duration")?,
        warmup: seconds(args.warmup.max(0.001), "--warmup")?,
        sockets: args.sockets,
        local_ip: ipv4(args.local_ip)?,
        join_threads: args.join_threads,
        decode_per_room: if args.decode_all {
            usize::MAX
        } else {
            args.decode_per_room
        },
        talker_opus: EncoderSettings {
            bitrate: args.talker_bitrate,
            ..EncoderSettings::default()
        },
        mix_opus,
        server_pid: args.server_pid,
        metrics_url: args.metrics_url.clone().or_else(|| {
            matches!(args.face, FaceKind::Kazoo)
                .then(|| format!("{}/metrics", args.url.trim_end_matches('/')))
        }),
        record_listener: args.record_listener.clone(),
        reference: args.reference.clone(),
        close_rooms: !args.keep_rooms,
        ..LoadConfig::default()
    };
    let face: Box<dyn Face> = match args.face {
        FaceKind::Kazoo => {
            let (Some(account), Some(key)) = (&args.account_id, &args.api_key) else {
                return Err(LoadError::Setting(
                    "the Kazoo face needs --account-id and --api-key".into(),
                ));
            };
            Box::new(Kazoo::login(&args.url, account, key)?)
        }
        FaceKind::Janus => Box::new(Janus::connect(
            &args.url,
            JanusRoomSettings {
                sampling_rate: args.janus_sampling_rate,
                bitrate: args.janus_bitrate,
                quality: args.janus_quality,
                fec: args.janus_fec,
            },
        )?),
    };
    let summary = tutti_loadgen::run(&config, face.as_ref())?;
    let json = serde_json::to_string_pretty(&summary)
        .map_err(|e| LoadError::Setting(format!("the summary could not be written: {e}")))?;
    if let Some(path) = &args.output {
        std::fs::write(path, format!("{json}\n"))?;
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{json}")?;
    Ok(())
}
