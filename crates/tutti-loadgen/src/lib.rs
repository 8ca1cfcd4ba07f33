//! # tutti-loadgen: thousands of plain-RTP Opus callers against a conference server
//!
//! One process joins N callers through a server's API (tutti's Kazoo face, or Janus's
//! AudioBridge), in rooms of `room_size` where the first `talkers` of each room replay a loop
//! of speech and the others Opus-coded silence, and checks every mix the server sends back.
//!
//! ## How
//!
//! - **Fixtures** ([`fixtures`]): speech synthesised once by espeak-ng (Harvard sentences,
//!   about 16 s), resampled to 48 kHz, coded as 20 ms Opus frames; Opus-coded silence. Each
//!   caller replays them with its own SSRC, sequence numbers and timestamps; talkers of a room
//!   start at different points of the loop.
//! - **Media** ([`media`]): one thread, a handful of sockets each shared by many callers (a
//!   caller's offer names its socket's address; its mix is told apart by the server port it
//!   comes from), `sendmmsg`/`recvmmsg` through `nix`, epoll through `mio`, 1 ms send slots on
//!   absolute deadlines, kernel receive timestamps.
//! - **Window**: after every join, `warmup` seconds pass, then `duration` seconds are measured:
//!   packets sent and received, sequence gaps, interarrival jitter, audibility; the server's CPU
//!   from `/proc/<pid>/stat` and its `/metrics` are read at both ends.
//!
//! ## The audibility check
//!
//! A listener *expects sound* when somebody else in its room talks. Two rules judge it:
//!
//! - **Every listener, by size**: libopus codes silence in a few bytes and speech in tens, so a
//!   mix packet whose payload is longer than `loud_bytes` (by default 2 × the largest payload
//!   the mix encoder settings give for digital silence, at least 8) counts as sound. A listener
//!   expecting sound is *inaudible* when fewer than 10 % of the window's frames are sound.
//! - **Sampled listeners, decoded**: `decode_per_room` listeners of each room (or all) have
//!   every packet decoded with libopus; a frame is sound when its RMS exceeds −50 dBFS, and the
//!   same 10 % rule applies. This catches a server that sends full-size packets of silence or
//!   noise-free garbage the size rule would pass.
//!
//! A listener that fails either rule is listed in `inaudible`.
//!
//! ## Quality
//!
//! With `record_listener`, one more room is added: a talker that sends the speech loop from
//! its first frame at the start of the window, and a listener whose decoded audio is written at
//! 16 kHz; `reference` gets the clean speech for the same span, so a PESQ scorer can compare
//! them.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod error;
pub mod face;
pub mod fixtures;
pub mod media;
pub mod probe;
pub mod stats;
pub mod webrtc_peers;

pub use error::LoadError;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tutti_codec::{AudioEncoder, EncoderSettings, OpusEncoder, FRAME_SAMPLES_48K};

use face::Face;
use fixtures::Fixtures;
use media::{Audibility, CallerSpec, Control, Role, Window};
use probe::{CpuMark, Metrics, MetricsDelta};
use stats::Spread;

/// Share of a window's frames that must be sound for a listener to count as hearing.
const AUDIBLE_SHARE: f64 = 0.10;
/// RMS of a decoded frame above which it is sound (−50 dBFS).
const SOUND_RMS: f32 = 0.003_16;
/// Tail recorded after the measurement room's speech, for the path's delay.
const RECORD_TAIL: Duration = Duration::from_millis(1000);

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The server's name in the summary (`tutti`, `janus`).
    pub server: String,
    /// Callers in the load rooms.
    pub callers: usize,
    /// Callers per room.
    pub room_size: usize,
    /// Talkers per room (the first of each room).
    pub talkers: usize,
    /// Talkers send Opus-coded silence instead of speech (for checking the check).
    pub silent_talkers: bool,
    /// Measured seconds.
    pub duration: Duration,
    /// Seconds between the last join and the window.
    pub warmup: Duration,
    /// Sockets the callers share.
    pub sockets: usize,
    /// Address the sockets bind to and the offers name.
    pub local_ip: Ipv4Addr,
    /// Receive and send buffer per socket, bytes.
    pub socket_buffer: usize,
    /// Threads making joins.
    pub join_threads: usize,
    /// Listeners decoded per room (`usize::MAX`: all).
    pub decode_per_room: usize,
    /// How talkers code their speech.
    pub talker_opus: EncoderSettings,
    /// How the server codes mixes (for the size rule's threshold).
    pub mix_opus: EncoderSettings,
    /// The server's process, for its CPU.
    pub server_pid: Option<u32>,
    /// The server's Prometheus metrics.
    pub metrics_url: Option<String>,
    /// Where the measurement room's listener is written (16 kHz WAV).
    pub record_listener: Option<PathBuf>,
    /// Where the measurement room's clean speech is written (16 kHz WAV).
    pub reference: Option<PathBuf>,
    /// End the rooms after the run.
    pub close_rooms: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            server: "tutti".into(),
            callers: 100,
            room_size: 25,
            talkers: 3,
            silent_talkers: false,
            duration: Duration::from_secs(20),
            warmup: Duration::from_secs(3),
            sockets: 4,
            local_ip: Ipv4Addr::LOCALHOST,
            socket_buffer: 8 << 20,
            join_threads: 4,
            decode_per_room: 1,
            talker_opus: EncoderSettings::default(),
            mix_opus: EncoderSettings {
                application: tutti_codec::OpusApplication::Audio,
                complexity: 4,
                ..EncoderSettings::default()
            },
            server_pid: None,
            metrics_url: None,
            record_listener: None,
            reference: None,
            close_rooms: true,
        }
    }
}

/// The run's JSON summary.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The server under load.
    pub server_name: String,
    /// Callers asked for (load rooms).
    pub callers: usize,
    /// Load rooms.
    pub rooms: usize,
    /// Callers per room.
    pub room_size: usize,
    /// Talkers per room.
    pub talkers: usize,
    /// Joins the server accepted (load rooms).
    pub joined: usize,
    /// Callers not joined (refused, failed, or not tried once joining was abandoned).
    pub failed: usize,
    /// Joining stopped after failures of a tenth of the callers (at least 10).
    pub joins_abandoned: bool,
    /// The first few join errors.
    pub join_errors: Vec<String>,
    /// Seconds the joins took.
    pub join_seconds: f64,
    /// Measured seconds.
    pub window_seconds: f64,
    /// Packet counts.
    pub packets: Packets,
    /// Jitter, milliseconds.
    pub jitter_ms: Jitter,
    /// The audibility check.
    pub audibility: AudibilityReport,
    /// The server's CPU and metrics.
    pub server: ServerReport,
    /// The loadgen's own CPU, percent of one core.
    pub loadgen_cpu_percent: Option<f64>,
    /// The measurement room's files.
    pub quality: Option<QualityFiles>,
    /// The machine's load average (1, 5, 15 minutes) at the end of the window.
    pub load_average: Option<[f64; 3]>,
}

/// Packet counts over the window.
#[derive(Clone, Debug, Serialize)]
pub struct Packets {
    /// Mean RTP packets sent per caller.
    pub sent_per_caller: f64,
    /// Mean mix packets received per caller.
    pub received_per_caller: f64,
    /// Mix packets a caller should receive (one per 20 ms).
    pub expected_per_caller: f64,
    /// Received over expected, all callers, percent.
    pub received_percent: f64,
    /// The lowest caller's received percent.
    pub received_percent_min: f64,
    /// Callers below 99.9 % received.
    pub callers_below_99_9_percent: usize,
    /// Packets missing by sequence number, all callers.
    pub sequence_gaps: u64,
    /// Datagrams from unknown sources, or neither RTP nor RTCP (whole run; mixes that arrive
    /// before the media thread has registered their caller's join count here).
    pub strays: u64,
    /// RTCP packets received (whole run).
    pub rtcp: u64,
    /// Packets the loadgen's kernel refused to send.
    pub send_failures: u64,
    /// Send slots the loadgen ran more than 5 ms late (whole run).
    pub late_send_slots: u64,
}

/// Jitter of the mixes received.
#[derive(Clone, Debug, Serialize)]
pub struct Jitter {
    /// |interarrival − 20 ms| of consecutive packets, all callers.
    pub interarrival_deviation: Spread,
    /// RFC 3550 interarrival jitter per caller at the end.
    pub rfc3550_per_caller: Spread,
}

/// Who hears nothing.
#[derive(Clone, Debug, Serialize)]
pub struct AudibilityReport {
    /// The rules, in words.
    pub rule: String,
    /// Payload bytes above which a packet is sound.
    pub loud_bytes: usize,
    /// Callers expected to hear somebody.
    pub listeners_expecting_sound: usize,
    /// Of those, callers decoded.
    pub listeners_decoded: usize,
    /// Callers expecting sound that fail the size rule or the decoded rule.
    pub inaudible: Vec<u32>,
    /// How many.
    pub inaudible_count: usize,
    /// Of those, how many fail the decoded rule.
    pub inaudible_decoded: usize,
}

/// The server under load.
#[derive(Clone, Debug, Serialize)]
pub struct ServerReport {
    /// Its process.
    pub pid: Option<u32>,
    /// CPU over the window, percent of one core.
    pub cpu_percent: Option<f64>,
    /// The same per joined caller.
    pub cpu_percent_per_caller: Option<f64>,
    /// `/metrics` deltas over the window.
    pub metrics: Option<MetricsDelta>,
}

/// The measurement room's recordings.
#[derive(Clone, Debug, Serialize)]
pub struct QualityFiles {
    /// The listener's decoded audio, 16 kHz.
    pub degraded: PathBuf,
    /// The talker's clean speech, 16 kHz.
    pub reference: Option<PathBuf>,
    /// Seconds of speech sent.
    pub speech_seconds: f64,
}

/// The payload length above which a mix packet counts as sound: twice the largest payload
/// the mix settings give for digital silence, at least 8 bytes.
pub fn loud_bytes(mix: &EncoderSettings) -> Result<usize, LoadError> {
    let mut encoder = OpusEncoder::new(mix)?;
    let zeros = [0f32; FRAME_SAMPLES_48K];
    let mut out = [0u8; 1275];
    let mut largest = 0;
    for _ in 0..25 {
        largest = largest.max(encoder.encode(&zeros, &mut out)?);
    }
    Ok((2 * largest).max(8))
}

/// A caller's place in the run.
#[derive(Clone, Copy, Debug)]
struct Seat {
    index: u32,
    room: usize,
    role: Role,
    expects_sound: bool,
    decode: bool,
    record: bool,
}

fn seats(config: &LoadConfig, speech_frames: usize) -> Vec<Seat> {
    let mut seats = Vec::with_capacity(config.callers + 2);
    let talkers = config.talkers.min(config.room_size);
    for i in 0..config.callers {
        let room = i / config.room_size;
        let position = i % config.room_size;
        let in_room = config
            .room_size
            .min(config.callers - room * config.room_size);
        let room_talkers = talkers.min(in_room);
        let talker = position < room_talkers;
        let role = if talker && !config.silent_talkers {
            Role::Talker {
                offset: position * speech_frames / room_talkers.max(1),
            }
        } else {
            Role::Silent
        };
        let others_talk = room_talkers - usize::from(talker) > 0;
        // Decode the room's last listeners.
        let from_end = in_room - 1 - position;
        seats.push(Seat {
            index: i as u32,
            room,
            role,
            expects_sound: others_talk,
            decode: !talker && from_end < config.decode_per_room,
            record: false,
        });
    }
    if config.record_listener.is_some() {
        let room = config.callers.div_ceil(config.room_size);
        for (k, role) in [Role::Silent, Role::MeasureTalker].into_iter().enumerate() {
            seats.push(Seat {
                index: (config.callers + k) as u32,
                room,
                role,
                expects_sound: k == 0,
                decode: false,
                record: k == 0,
            });
        }
    }
    seats
}

/// Runs the load against `face` and summarises it.
pub fn run(config: &LoadConfig, face: &dyn Face) -> Result<Summary, LoadError> {
    if config.callers == 0 || config.room_size == 0 || config.sockets == 0 {
        return Err(LoadError::Setting(
            "callers, room size and sockets must be at least 1".into(),
        ));
    }
    let fixtures = Arc::new(Fixtures::make(&config.talker_opus)?);
    let audibility = Audibility {
        loud_bytes: loud_bytes(&config.mix_opus)?,
        rms: SOUND_RMS,
    };
    let sockets = media::bind_sockets(config.local_ip, config.sockets, config.socket_buffer)?;
    let locals = sockets
        .iter()
        .map(|s| s.local_addr())
        .collect::<Result<Vec<_>, _>>()?;
    let (control, orders) = mpsc::channel();
    let loop_fixtures = Arc::clone(&fixtures);
    let media = std::thread::Builder::new()
        .name("media".into())
        .spawn(move || media::run(sockets, loop_fixtures, audibility, orders))?;

    let seats = seats(config, fixtures.speech.len());
    let room_count = seats.last().map_or(0, |s| s.room + 1);
    let joins_started = Instant::now();
    let mut rooms = Vec::with_capacity(room_count);
    for r in 0..room_count {
        rooms.push(face.create_room(r)?);
    }
    let next = AtomicUsize::new(0);
    let errors = Mutex::new(Vec::<String>::new());
    let joined = AtomicUsize::new(0);
    // A server refusing joins wholesale (or too slow to answer) is not worth waiting for.
    let failures = AtomicUsize::new(0);
    let give_up = (seats.len() / 10).max(10);
    std::thread::scope(|scope| {
        for _ in 0..config.join_threads.max(1) {
            let control = control.clone();
            let (seats, rooms, next, errors, joined, locals, failures) =
                (&seats, &rooms, &next, &errors, &joined, &locals, &failures);
            scope.spawn(move || loop {
                if failures.load(Ordering::Relaxed) >= give_up {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(seat) = seats.get(i) else {
                    break;
                };
                let socket = i % locals.len();
                let name = format!("caller {}", seat.index);
                match face.join(&rooms[seat.room], locals[socket], &name) {
                    Ok(remote) => {
                        if (seat.index as usize) < config.callers {
                            joined.fetch_add(1, Ordering::Relaxed);
                        }
                        let _ = control.send(Control::Add(CallerSpec {
                            index: seat.index,
                            room: seat.room as u32,
                            role: seat.role,
                            socket,
                            remote,
                            expects_sound: seat.expects_sound,
                            decode: seat.decode,
                            record: seat.record,
                        }));
                    }
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut errors) = errors.lock() {
                            errors.push(e.to_string());
                        }
                    }
                }
            });
        }
    });
    let join_seconds = joins_started.elapsed().as_secs_f64();
    let joined = joined.into_inner();
    let join_errors = errors.into_inner().unwrap_or_default();
    let joins_abandoned = failures.into_inner() >= give_up;

    let speech = Duration::from_secs_f64(
        fixtures
            .speech_seconds()
            .min(config.duration.saturating_sub(RECORD_TAIL).as_secs_f64()),
    );
    let start = Instant::now() + config.warmup;
    let window = Window {
        start,
        end: start + config.duration,
        speech,
        record: speech + RECORD_TAIL,
    };
    let _ = control.send(Control::Window(window));
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    std::thread::sleep(window.start.saturating_duration_since(Instant::now()));
    let server_before = CpuMark::now(config.server_pid);
    let own_before = CpuMark::now(None);
    let metrics_before = config
        .metrics_url
        .as_deref()
        .and_then(|url| Metrics::fetch(&agent, url));
    let settle = window.end.max(window.start + window.record);
    std::thread::sleep(window.end.saturating_duration_since(Instant::now()));
    let server_after = CpuMark::now(config.server_pid);
    let load_average = probe::load_average();
    let own_after = CpuMark::now(None);
    let metrics_after = config
        .metrics_url
        .as_deref()
        .and_then(|url| Metrics::fetch(&agent, url));
    std::thread::sleep(settle.saturating_duration_since(Instant::now()));
    let _ = control.send(Control::Stop);
    let report = media
        .join()
        .map_err(|_| LoadError::Setting("the media thread panicked".into()))??;
    if config.close_rooms {
        for room in &rooms {
            let _ = face.close_room(room);
        }
    }

    let quality = match (&config.record_listener, report.recording.as_deref()) {
        (Some(path), Some(recording)) => {
            let wanted = (window.record.as_secs_f64() * 48_000.0) as usize;
            let mut audio = recording.to_vec();
            audio.resize(wanted, 0.0);
            fixtures::write_wav_16k(path, &audio)?;
            if let Some(reference) = &config.reference {
                fixtures.write_reference(reference, window.record.as_secs_f64())?;
            }
            Some(QualityFiles {
                degraded: path.clone(),
                reference: config.reference.clone(),
                speech_seconds: speech.as_secs_f64(),
            })
        }
        _ => None,
    };

    let cpu_percent = server_before.percent_until(&server_after);
    let metrics = match (metrics_before, metrics_after) {
        (Some(before), Some(after)) => Some(MetricsDelta::between(&before, &after)),
        _ => None,
    };
    let mut summary = summarise(
        config,
        room_count - usize::from(config.record_listener.is_some()),
        Joins {
            joined,
            errors: join_errors,
            abandoned: joins_abandoned,
            seconds: join_seconds,
        },
        &report,
        audibility,
        ServerReport {
            pid: config.server_pid,
            cpu_percent,
            cpu_percent_per_caller: cpu_percent.map(|c| c / joined.max(1) as f64),
            metrics,
        },
        own_before.percent_until(&own_after),
        quality,
    );
    summary.load_average = load_average;
    Ok(summary)
}

struct Joins {
    joined: usize,
    errors: Vec<String>,
    abandoned: bool,
    seconds: f64,
}

#[allow(clippy::too_many_arguments)]
fn summarise(
    config: &LoadConfig,
    rooms: usize,
    joins: Joins,
    report: &media::MediaReport,
    audibility: Audibility,
    server: ServerReport,
    loadgen_cpu_percent: Option<f64>,
    quality: Option<QualityFiles>,
) -> Summary {
    let expected = config.duration.as_secs_f64() * 50.0;
    let load: Vec<&media::CallerReport> = report
        .callers
        .iter()
        .filter(|c| (c.index as usize) < config.callers)
        .collect();
    let n = load.len().max(1) as f64;
    let received: u64 = load.iter().map(|c| c.received).sum();
    let percent = |c: &media::CallerReport| 100.0 * c.received as f64 / expected;
    let listening: Vec<&&media::CallerReport> = load.iter().filter(|c| c.expects_sound).collect();
    let audible_frames = (AUDIBLE_SHARE * expected).ceil() as u64;
    let mut inaudible = Vec::new();
    let mut inaudible_decoded = 0;
    for c in &listening {
        let by_size = c.loud < audible_frames;
        let by_decode = c.decoded && c.decoded_sound < audible_frames;
        if by_decode {
            inaudible_decoded += 1;
        }
        if by_size || by_decode {
            inaudible.push(c.index);
        }
    }
    Summary {
        server_name: config.server.clone(),
        callers: config.callers,
        rooms,
        room_size: config.room_size,
        talkers: config.talkers,
        joined: joins.joined,
        failed: config.callers - joins.joined,
        joins_abandoned: joins.abandoned,
        join_errors: joins.errors.into_iter().take(5).collect(),
        join_seconds: joins.seconds,
        window_seconds: config.duration.as_secs_f64(),
        packets: Packets {
            sent_per_caller: load.iter().map(|c| c.sent).sum::<u64>() as f64 / n,
            received_per_caller: received as f64 / n,
            expected_per_caller: expected,
            received_percent: 100.0 * received as f64 / (expected * n),
            received_percent_min: load.iter().map(|c| percent(c)).fold(f64::NAN, f64::min),
            callers_below_99_9_percent: load.iter().filter(|c| percent(c) < 99.9).count(),
            sequence_gaps: load.iter().map(|c| c.gaps).sum(),
            strays: report.strays,
            rtcp: report.rtcp,
            send_failures: report.send_failures,
            late_send_slots: report.late_slots,
        },
        jitter_ms: Jitter {
            interarrival_deviation: Spread::of_histogram(&report.interarrival),
            rfc3550_per_caller: Spread::of(load.iter().filter_map(|c| c.jitter_ms).collect()),
        },
        audibility: AudibilityReport {
            rule: format!(
                "a caller with a talker in its room must have at least {:.0} % of the window's \
                 frames sound: payload over {} bytes (every caller), and decoded RMS over \
                 -50 dBFS (decoded callers)",
                AUDIBLE_SHARE * 100.0,
                audibility.loud_bytes
            ),
            loud_bytes: audibility.loud_bytes,
            listeners_expecting_sound: listening.len(),
            listeners_decoded: listening.iter().filter(|c| c.decoded).count(),
            inaudible_count: inaudible.len(),
            inaudible,
            inaudible_decoded,
        },
        server,
        loadgen_cpu_percent,
        quality,
        load_average: None,
    }
}

/// A side-by-side table (Markdown) of the summaries in `files` (JSON, as the binary writes
/// them). A PESQ score is read from the file beside each with the extension `pesq`, if any.
pub fn table(files: &[PathBuf]) -> Result<String, LoadError> {
    let mut out = String::from(
        "| server | callers | joined | server CPU, % of one core | per caller | mix packets received | overruns | inaudible | PESQ | load average |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for file in files {
        let text = std::fs::read_to_string(file)?;
        let s: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| LoadError::Setting(format!("{}: {e}", file.display())))?;
        let number = |v: &serde_json::Value, digits: usize| {
            v.as_f64()
                .map_or_else(|| "n/a".to_owned(), |x| format!("{x:.digits$}"))
        };
        let pesq = std::fs::read_to_string(file.with_extension("pesq"))
            .ok()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "n/a".into());
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} % | {} % | {} | {} | {} | {} |\n",
            s["server_name"].as_str().unwrap_or("?"),
            s["callers"],
            s["joined"],
            number(&s["server"]["cpu_percent"], 1),
            number(&s["server"]["cpu_percent_per_caller"], 3),
            number(&s["packets"]["received_percent"], 2),
            number(&s["server"]["metrics"]["overruns"], 0),
            s["audibility"]["inaudible_count"],
            pesq,
            number(&s["load_average"][0], 2),
        ));
    }
    Ok(out)
}

/// An IPv4 address from `ip`, or the setting error.
pub fn ipv4(ip: IpAddr) -> Result<Ipv4Addr, LoadError> {
    match ip {
        IpAddr::V4(v4) => Ok(v4),
        IpAddr::V6(_) => Err(LoadError::Setting(
            "the callers' address must be IPv4".into(),
        )),
    }
}
