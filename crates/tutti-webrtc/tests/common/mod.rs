//! A browser played by str0m on a real UDP socket, an engine with a WebRTC endpoint, and the
//! engine tests' RTP callers.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Extension;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tutti_codec::{AudioDecoder, AudioEncoder, EncoderSettings, OpusDecoder, OpusEncoder};
use tutti_engine::{Engine, RoomId, RoomSettings};
use tutti_webrtc::{WebRtcConfig, WebRtcEndpoint};

#[path = "../../../tutti-engine/tests/common/mod.rs"]
pub mod engine;

/// An engine with one room and a WebRTC endpoint on a free port of 127.0.0.1.
pub fn setup(ports: std::ops::RangeInclusive<u16>) -> (Arc<Engine>, WebRtcEndpoint, RoomId) {
    let engine = Arc::new(engine::engine(ports));
    let room = RoomId(7);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let config = WebRtcConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..WebRtcConfig::default()
    };
    let endpoint =
        WebRtcEndpoint::start(&config, IpAddr::V4(Ipv4Addr::LOCALHOST), engine.clone()).unwrap();
    (engine, endpoint, room)
}

/// A browser: a str0m peer (the controlling, full-ICE side) on its own socket, sending a tone as
/// Opus and decoding what it hears.
pub struct Browser {
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub local: SocketAddr,
    pub mid: Mid,
    pending: Option<SdpPendingOffer>,
    pub offer: String,
    pub connected: bool,
    pub ice: Option<IceConnectionState>,
    pub closed: bool,
    /// What it heard, 48 kHz.
    pub heard: Vec<f32>,
    pub packets_heard: usize,
    decoder: OpusDecoder,
    encoder: OpusEncoder,
    hz: f64,
    /// The RFC 6464 level (-dBov) its packets carry.
    pub audio_level: i8,
    sent: u64,
    next: Instant,
}

impl Browser {
    /// A browser offering audio in `direction`, with the audio level extension at id 10 (not
    /// str0m's default) and `mid` at 4.
    pub fn new(direction: Direction, hz: f64) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let local = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .clear_extension_map()
            .set_extension(10, Extension::AudioLevel)
            .set_extension(4, Extension::RtpMid)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, direction, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        Self {
            rtc,
            socket,
            local,
            mid,
            pending: Some(pending),
            offer: offer.to_sdp_string(),
            connected: false,
            ice: None,
            closed: false,
            heard: Vec::new(),
            packets_heard: 0,
            decoder: OpusDecoder::new().unwrap(),
            encoder: OpusEncoder::new(&EncoderSettings::default()).unwrap(),
            hz,
            audio_level: -20,
            sent: 0,
            next: Instant::now(),
        }
    }

    /// Takes the endpoint's answer.
    pub fn accept(&mut self, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).unwrap();
        let pending = self.pending.take().unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
        self.drain();
    }

    /// Reads its socket, runs its timers and handles what its stack says.
    pub fn poll(&mut self) {
        let mut buf = [0u8; 2000];
        while let Ok((len, source)) = self.socket.recv_from(&mut buf) {
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
            self.drain();
        }
        if Instant::now() >= self.next {
            let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
            self.drain();
        }
    }

    /// Closes its peer connection (RTCP BYE, DTLS close_notify) and sends what that says.
    pub fn hang_up(&mut self) {
        self.rtc.close().unwrap();
        self.drain();
    }

    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(event)) => match event {
                    Event::Connected => self.connected = true,
                    Event::IceConnectionStateChange(s) => self.ice = Some(s),
                    Event::Closed => self.closed = true,
                    Event::MediaData(data) => {
                        let mut out = [0f32; 5760];
                        if let Ok(n) = self.decoder.decode(&data.data, &mut out) {
                            self.heard.extend_from_slice(&out[..n]);
                            self.packets_heard += 1;
                        }
                    }
                    _ => {}
                },
                Err(_) => {
                    self.closed = true;
                    self.next = Instant::now() + Duration::from_secs(1);
                    return;
                }
            }
        }
    }

    /// Sends the next 20 ms of its tone (when connected).
    pub fn send_frame(&mut self) {
        if !self.connected || !self.rtc.is_alive() {
            return;
        }
        let frame: Vec<f32> = (0..960)
            .map(|i| {
                let t = (self.sent * 960 + i) as f64 / 48_000.0;
                (0.3 * (2.0 * std::f64::consts::PI * self.hz * t).sin()) as f32
            })
            .collect();
        let mut packet = [0u8; 1500];
        let len = self.encoder.encode(&frame, &mut packet).unwrap();
        let time = MediaTime::new(self.sent * 960, Frequency::FORTY_EIGHT_KHZ);
        self.sent += 1;
        let Some(writer) = self.rtc.writer(self.mid) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .map(|p| p.pt())
        else {
            return;
        };
        let _ = writer
            .audio_level(self.audio_level, self.audio_level > -127)
            .write(pt, Instant::now(), time, packet[..len].to_vec());
        self.drain();
    }

    /// Polls until `done` or the deadline (panics with `what` then).
    pub fn wait(&mut self, what: &str, within: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen in {within:?}"
            );
            self.poll();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Level of `hz` in the last `seconds` of what it heard.
    pub fn level(&self, hz: f64, seconds: f64) -> f64 {
        let n = (seconds * 48_000.0) as usize;
        let tail = &self.heard[self.heard.len().saturating_sub(n)..];
        tutti_e2e::amplitude_at(tail, 48_000, hz)
    }
}

/// Joins a browser into `room` and waits until it is connected; the endpoint's answer.
pub fn connect(
    endpoint: &WebRtcEndpoint,
    room: RoomId,
    browser: &mut Browser,
) -> tutti_webrtc::WebRtcJoined {
    let joined = endpoint
        .join(room, &browser.offer, Default::default())
        .unwrap();
    browser.accept(&joined.answer);
    browser.wait("the connection", Duration::from_secs(10), |b| b.connected);
    joined
}

/// Runs browsers and RTP callers in real time for `seconds`.
pub fn talk(browsers: &mut [&mut Browser], callers: &mut [&mut engine::Caller], seconds: f64) {
    let start = Instant::now();
    let frames = (seconds * 50.0) as u32;
    for frame in 0..frames {
        for b in browsers.iter_mut() {
            b.send_frame();
            b.poll();
        }
        for c in callers.iter_mut() {
            c.send_frame();
            c.drain();
        }
        let next = start + Duration::from_millis(u64::from(frame + 1) * 20);
        while Instant::now() < next {
            for b in browsers.iter_mut() {
                b.poll();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
