//! WebRTC callers for load: browser-like peers (ICE, DTLS-SRTP, Opus with RFC 6464 levels)
//! made with str0m, joined through WHIP, driven by one thread. Each sends a 20 ms Opus packet
//! every 20 ms, as a browser does, and counts the audio packets it receives.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Extension;
use str0m::{Candidate, Event, Input, Output, Rtc};
use tutti_codec::{EncoderSettings, FRAME_SAMPLES_48K};

use crate::fixtures::Fixtures;
use crate::LoadError;

/// One peer.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    talker: bool,
    connected: bool,
    next_timeout: Instant,
    rtp_time: u64,
    received: u64,
}

/// What a run measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct WebRtcLoad {
    /// Peers asked for.
    pub peers: usize,
    /// Peers whose ICE and DTLS completed.
    pub connected: usize,
    /// Audio packets sent in the measured window, all peers.
    pub packets_sent: u64,
    /// Audio packets received in the measured window, all peers.
    pub packets_received: u64,
    /// The measured window, seconds.
    pub seconds: f64,
    /// The server's CPU in the window, percent of one core (when its pid was given).
    pub server_cpu_percent: Option<f64>,
    /// The server's CPU per connected peer, percent of one core.
    pub server_cpu_percent_per_peer: Option<f64>,
    /// The server's resident memory at the end, MiB.
    pub server_rss_mib: Option<f64>,
}

/// How a WebRTC load run goes.
#[derive(Clone, Debug)]
pub struct WebRtcLoadConfig {
    /// Peers.
    pub peers: usize,
    /// Peers per room.
    pub room_size: usize,
    /// Talkers per room (the rest send Opus silence marked silent by its audio level).
    pub talkers: usize,
    /// The address peers send from.
    pub local_ip: IpAddr,
    /// Seconds between the last peer's connection and the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// The server's pid, for its CPU.
    pub server_pid: Option<u32>,
    /// Offer Opus without `useinbandfec=1` (browsers offer it; without it both servers send
    /// their default encoding, the one scripts/capacity scored equal).
    pub no_fec: bool,
}

fn new_rtc() -> Rtc {
    Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .clear_extension_map()
        .set_extension(1, Extension::AudioLevel)
        .set_extension(4, Extension::RtpMid)
        .build(Instant::now())
}

fn str0m_error(what: &str, error: impl std::fmt::Display) -> LoadError {
    LoadError::Setting(format!("{what}: {error}"))
}

impl Peer {
    /// Makes an offer, posts it with `whip` and takes the answer.
    fn join(
        index: usize,
        local_ip: IpAddr,
        talker: bool,
        no_fec: bool,
        whip: &dyn Fn(&str) -> Result<String, LoadError>,
    ) -> Result<Self, LoadError> {
        let std_socket = std::net::UdpSocket::bind(SocketAddr::new(local_ip, 0))?;
        std_socket.set_nonblocking(true)?;
        let local = std_socket.local_addr()?;
        let mut rtc = new_rtc();
        rtc.add_local_candidate(
            Candidate::host(local, "udp").map_err(|e| str0m_error("candidate", e))?,
        );
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| LoadError::Setting("str0m made no offer".into()))?;
        let mut offer = offer.to_sdp_string();
        if no_fec {
            offer = offer
                .replace(";useinbandfec=1", "")
                .replace("useinbandfec=1;", "");
        }
        let answer = whip(&offer).map_err(|e| str0m_error(&format!("peer {index} joining"), e))?;
        let answer = SdpAnswer::from_sdp_string(&answer).map_err(|e| str0m_error("answer", e))?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| str0m_error("answer", e))?;
        Ok(Peer {
            rtc,
            socket: UdpSocket::from_std(std_socket),
            local,
            mid,
            talker,
            connected: false,
            next_timeout: Instant::now(),
            rtp_time: 0,
            received: 0,
        })
    }

    /// Runs str0m until it waits: sends what it wants sent, counts what it delivers.
    fn drive(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.next_timeout = at;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::Connected)) => self.connected = true,
                Ok(Output::Event(Event::MediaData(_))) => self.received += 1,
                Ok(Output::Event(_)) => {}
                Err(_) => {
                    self.next_timeout = Instant::now() + Duration::from_secs(3600);
                    return;
                }
            }
        }
    }

    /// Sends the next 20 ms.
    fn send(&mut self, now: Instant, payload: &[u8]) -> bool {
        if !self.connected {
            return false;
        }
        let (level, voice) = if self.talker {
            (-20, true)
        } else {
            (-127, false)
        };
        let Some(writer) = self.rtc.writer(self.mid) else {
            return false;
        };
        let Some(pt) = writer.payload_params().next().map(|p| p.pt()) else {
            return false;
        };
        let time = MediaTime::new(self.rtp_time, Frequency::FORTY_EIGHT_KHZ);
        self.rtp_time += FRAME_SAMPLES_48K as u64;
        let sent = writer
            .audio_level(level, voice)
            .write(pt, now, time, payload.to_vec())
            .is_ok();
        self.drive();
        sent
    }

    fn receive(&mut self, buf: &mut [u8]) {
        while let Ok((len, source)) = self.socket.recv_from(buf) {
            let Ok(contents) = buf[..len].try_into() else {
                continue;
            };
            let input = Input::Receive(
                Instant::now(),
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.local,
                    contents,
                },
            );
            let _ = self.rtc.handle_input(input);
            self.drive();
        }
    }
}

/// The CPU time (user + system) a process has used, seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Some(ticks / hz)
}

/// A process's resident memory, MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Joins `config.peers` peers through `whip(room_index, offer) → answer`, waits for them to
/// connect, then measures for `config.duration`.
pub fn run(
    config: &WebRtcLoadConfig,
    whip: &dyn Fn(usize, &str) -> Result<String, LoadError>,
) -> Result<WebRtcLoad, LoadError> {
    // The same speech and silence as the plain-RTP callers replay (32 kb/s talkers).
    let fixtures = Fixtures::make(&EncoderSettings {
        bitrate: 32_000,
        ..EncoderSettings::default()
    })?;
    let mut poll = Poll::new()?;
    let mut peers = Vec::with_capacity(config.peers);
    for index in 0..config.peers {
        let room = index / config.room_size.max(1);
        let talker = index % config.room_size.max(1) < config.talkers;
        let mut peer = Peer::join(index, config.local_ip, talker, config.no_fec, &|offer| {
            whip(room, offer)
        })?;
        poll.registry()
            .register(&mut peer.socket, Token(index), Interest::READABLE)?;
        peer.drive();
        peers.push(peer);
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 2000];
    let start = Instant::now();
    let mut next_tick = start;
    let mut frame = 0usize;
    let mut all_connected: Option<Instant> = None;
    let mut window: Option<(Instant, Option<f64>, u64, u64)> = None;
    let mut sent = 0u64;
    let give_up = start + Duration::from_secs(30) + config.warmup;
    loop {
        let now = Instant::now();
        if now >= next_tick {
            next_tick += Duration::from_millis(20);
            for peer in &mut peers {
                let payload = if peer.talker {
                    &fixtures.speech[frame % fixtures.speech.len()]
                } else {
                    &fixtures.silence[frame % fixtures.silence.len()]
                };
                if peer.send(now, payload) {
                    sent += 1;
                }
            }
            frame += 1;
        }
        let connected = peers.iter().filter(|p| p.connected).count();
        if all_connected.is_none() && (connected == peers.len() || now >= give_up) {
            all_connected = Some(now);
        }
        if let (Some(at), None) = (all_connected, window) {
            if now >= at + config.warmup {
                let received = peers.iter().map(|p| p.received).sum();
                window = Some((now, config.server_pid.and_then(cpu_seconds), sent, received));
            }
        }
        if let Some((began, cpu, sent_before, received_before)) = window {
            if now >= began + config.duration {
                let seconds = now.duration_since(began).as_secs_f64();
                let cpu_percent = config
                    .server_pid
                    .and_then(cpu_seconds)
                    .zip(cpu)
                    .map(|(end, start)| 100.0 * (end - start) / seconds);
                let connected = peers.iter().filter(|p| p.connected).count();
                return Ok(WebRtcLoad {
                    peers: peers.len(),
                    connected,
                    packets_sent: sent - sent_before,
                    packets_received: peers.iter().map(|p| p.received).sum::<u64>()
                        - received_before,
                    seconds,
                    server_cpu_percent: cpu_percent,
                    server_cpu_percent_per_peer: cpu_percent
                        .filter(|_| connected > 0)
                        .map(|c| c / connected as f64),
                    server_rss_mib: config.server_pid.and_then(rss_mib),
                });
            }
        }
        for peer in &mut peers {
            if peer.next_timeout <= now {
                let _ = peer.rtc.handle_input(Input::Timeout(now));
                peer.drive();
            }
        }
        let wait = next_tick.saturating_duration_since(Instant::now());
        poll.poll(&mut events, Some(wait.min(Duration::from_millis(5))))?;
        for event in events.iter() {
            if let Some(peer) = peers.get_mut(event.token().0) {
                peer.receive(&mut buf);
            }
        }
    }
}

/// The HTTP side: `POST {base}/whip/{conference}` with a bearer token; the SDP answer.
pub fn whip_post(
    agent: &ureq::Agent,
    base: &str,
    conference: &str,
    token: &str,
    offer: &str,
) -> Result<String, LoadError> {
    let what = format!("POST /whip/{conference}");
    let response = agent
        .post(&format!("{}/whip/{conference}", base.trim_end_matches('/')))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/sdp")
        .send_string(offer)
        .map_err(|e| crate::face::api_error(what.clone(), e))?;
    if response.status() != 201 {
        return Err(LoadError::Api {
            what,
            detail: format!("{} instead of 201", response.status()),
        });
    }
    Ok(response.into_string()?)
}
