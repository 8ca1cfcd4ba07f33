//! `tutti-webrtc-load`: joins browser-like WebRTC peers (str0m: ICE, DTLS-SRTP, Opus with
//! audio levels) to tutti's rooms through WHIP, or to Janus AudioBridge rooms through its
//! JSEP API, each sending and receiving 50 packets/s, and prints the server's CPU per
//! connected peer as JSON.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tutti_loadgen::face::janus::{Janus, JanusRoomSettings};
use tutti_loadgen::face::kazoo::Kazoo;
use tutti_loadgen::face::Face;
use tutti_loadgen::webrtc_peers::{self, WebRtcLoadConfig};
use tutti_loadgen::LoadError;

/// Joins WebRTC peers in rooms, a few of each room talking, and measures the server.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Which server: tutti (rooms through Kazoo's API, peers through WHIP) or Janus.
    #[arg(long, value_enum, default_value = "tutti")]
    server: Server,
    /// The server's HTTP base URL (Janus: its HTTP transport, e.g. http://127.0.0.1:8088/janus).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// tutti: the account's id (Kazoo face, to create the rooms).
    #[arg(long)]
    account_id: Option<String>,
    /// tutti: the account's API key.
    #[arg(long)]
    api_key: Option<String>,
    /// Peers.
    #[arg(long, default_value_t = 100)]
    peers: usize,
    /// Peers per room.
    #[arg(long, default_value_t = 25)]
    room_size: usize,
    /// Talkers per room.
    #[arg(long, default_value_t = 3)]
    talkers: usize,
    /// Seconds between the last connection and the measured window.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Address the peers send from.
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: IpAddr,
    /// Offer Opus without in-band FEC (browsers offer it, and tutti then sends them SILK with
    /// FEC; without it tutti sends its default CELT, the setting scripts/capacity compared).
    #[arg(long)]
    no_fec: bool,
    /// The server's process id, for its CPU and memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Also write the summary to this file.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Server {
    /// tutti.
    Tutti,
    /// Janus's AudioBridge plugin at its defaults (16 kHz rooms, quality 4, no FEC).
    Janus,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutti-webrtc-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), LoadError> {
    let room_size = args.room_size.max(1);
    let rooms = args.peers.div_ceil(room_size);
    let config = WebRtcLoadConfig {
        peers: args.peers,
        room_size,
        talkers: args.talkers,
        local_ip: args.local_ip,
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        duration: Duration::from_secs_f64(args.duration.max(1.0)),
        server_pid: args.server_pid,
        no_fec: args.no_fec,
    };
    let summary = match args.server {
        Server::Tutti => {
            let (Some(account), Some(key)) = (&args.account_id, &args.api_key) else {
                return Err(LoadError::Setting(
                    "tutti needs --account-id and --api-key".into(),
                ));
            };
            let kazoo = Kazoo::login(&args.url, account, key)?;
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build();
            measure(&kazoo, rooms, &config, &|room, _, offer| {
                webrtc_peers::whip_post(&agent, kazoo.base(), room, kazoo.token(), offer)
            })
        }
        Server::Janus => {
            let janus = Janus::connect(
                &args.url,
                JanusRoomSettings {
                    sampling_rate: 16_000,
                    bitrate: 0,
                    quality: 4,
                    fec: false,
                },
            )?;
            measure(&janus, rooms, &config, &|room, name, offer| {
                janus.join_webrtc(room, name, offer)
            })
        }
    }?;
    let json = serde_json::to_string_pretty(&summary)
        .map_err(|e| LoadError::Setting(format!("the summary could not be written: {e}")))?;
    if let Some(path) = &args.output {
        std::fs::write(path, format!("{json}\n"))?;
    }
    writeln!(std::io::stdout().lock(), "{json}")?;
    Ok(())
}

/// Makes the rooms, runs the peers (joined by `join(room, name, offer)`), closes the rooms.
fn measure(
    face: &dyn Face,
    rooms: usize,
    config: &WebRtcLoadConfig,
    join: &dyn Fn(&str, &str, &str) -> Result<String, LoadError>,
) -> Result<webrtc_peers::WebRtcLoad, LoadError> {
    let rooms = (0..rooms)
        .map(|index| face.create_room(index))
        .collect::<Result<Vec<_>, _>>()?;
    let summary = webrtc_peers::run(config, &|room, offer| {
        join(&rooms[room], &format!("webrtc-{room}"), offer)
    });
    for room in &rooms {
        let _ = face.close_room(room);
    }
    summary
}
