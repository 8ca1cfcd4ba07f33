//! Callers on real UDP sockets, written with tutti's own RTP and G.711, shared by the engine
//! tests.
#![allow(dead_code)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use tutti_codec::g711;
use tutti_engine::{Engine, EngineConfig, EngineError, EngineEvent, JoinRequest, RoomId};
use tutti_mix::ParticipantSettings;
use tutti_rtp::packet::{parse_datagram, write_rtp, Datagram, OutgoingRtp};

pub struct Caller {
    pub socket: UdpSocket,
    pub server: std::net::SocketAddr,
    pub hz: f64,
    pub seq: u16,
    pub ts: u32,
    pub sent: u64,
    pub heard: Vec<f32>,
    /// Every address media came from.
    pub heard_from: std::collections::BTreeSet<std::net::SocketAddr>,
}

impl Caller {
    pub fn new(hz: f64) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        Self {
            socket,
            server: "127.0.0.1:9".parse().unwrap(),
            hz,
            seq: 1,
            ts: 0,
            sent: 0,
            heard: Vec::new(),
            heard_from: Default::default(),
        }
    }

    pub fn offer(&self) -> String {
        let port = self.socket.local_addr().unwrap().port();
        format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
    }

    pub fn send_frame(&mut self) {
        let mut payload = [0u8; 160];
        for (i, b) in payload.iter_mut().enumerate() {
            let t = (self.sent * 160 + i as u64) as f64 / 8000.0;
            let s = if self.hz > 0.0 {
                0.3 * (2.0 * std::f64::consts::PI * self.hz * t).sin()
            } else {
                0.0
            };
            *b = g711::linear_to_ulaw((s * 32767.0) as i16);
        }
        self.send(0, &payload);
        self.ts = self.ts.wrapping_add(160);
        self.sent += 1;
    }

    pub fn send(&mut self, payload_type: u8, payload: &[u8]) {
        let mut buf = [0u8; 300];
        let header = OutgoingRtp {
            payload_type,
            sequence: self.seq,
            timestamp: self.ts,
            ssrc: 0x5151 + self.hz as u32,
            marker: false,
        };
        let len = write_rtp(&mut buf, &header, payload).unwrap();
        self.socket.send_to(&buf[..len], self.server).unwrap();
        self.seq = self.seq.wrapping_add(1);
    }

    pub fn drain(&mut self) {
        let mut buf = [0u8; 1500];
        while let Ok((len, from)) = self.socket.recv_from(&mut buf) {
            if let Ok(Datagram::Rtp(packet)) = parse_datagram(&buf[..len], None) {
                self.heard_from.insert(from);
                self.heard.extend(
                    packet
                        .payload
                        .iter()
                        .map(|&b| f32::from(g711::ulaw_to_linear(b)) / 32768.0),
                );
            }
        }
    }

    /// Level of `hz` in the last `seconds` of what this caller heard (8 kHz).
    pub fn level(&self, hz: f64, seconds: f64) -> f64 {
        let n = (seconds * 8000.0) as usize;
        let tail = &self.heard[self.heard.len().saturating_sub(n)..];
        tutti_e2e::amplitude_at(tail, 8000, hz)
    }
}

pub fn engine(ports: std::ops::RangeInclusive<u16>) -> Engine {
    Engine::start(EngineConfig {
        mixer_threads: 2,
        ports,
        ..Default::default()
    })
    .unwrap()
}

pub fn join(
    engine: &Engine,
    room: RoomId,
    caller: &mut Caller,
    settings: ParticipantSettings,
) -> u32 {
    join_latching(engine, room, caller, settings, None)
}

/// Joins `caller`, saying whether its stream latches (`None`: the engine's default).
pub fn join_latching(
    engine: &Engine,
    room: RoomId,
    caller: &mut Caller,
    settings: ParticipantSettings,
    latching: Option<bool>,
) -> u32 {
    let joined = engine
        .join(
            room,
            JoinRequest {
                offer: caller.offer(),
                settings,
                latching,
                signalled_source: None,
                port: None,
                relay: None,
            },
        )
        .unwrap();
    assert!(joined.answer.contains("m=audio"));
    caller.server = format!("127.0.0.1:{}", joined.port).parse().unwrap();
    joined.key
}

/// Joins with `offer` and default settings; returns the participant's key.
pub fn join_offer(engine: &Engine, room: RoomId, offer: String) -> Result<u32, EngineError> {
    engine
        .join(
            room,
            JoinRequest {
                offer,
                settings: ParticipantSettings::default(),
                latching: None,
                signalled_source: None,
                port: None,
                relay: None,
            },
        )
        .map(|joined| joined.key)
}

/// Runs the callers in real time for `seconds`.
pub fn talk(callers: &mut [&mut Caller], seconds: f64) {
    let start = Instant::now();
    let frames = (seconds * 50.0) as u32;
    for frame in 0..frames {
        for caller in callers.iter_mut() {
            caller.send_frame();
            caller.drain();
        }
        let next = start + Duration::from_millis(u64::from(frame + 1) * 20);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

pub fn wait_for(engine: &Engine, what: impl Fn(&EngineEvent) -> bool) -> EngineEvent {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("event did not come in time");
        let event = engine
            .events()
            .recv_timeout(left)
            .expect("event did not come in time");
        if what(&event) {
            return event;
        }
    }
}
