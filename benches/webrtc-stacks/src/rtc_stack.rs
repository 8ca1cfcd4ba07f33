//! rtc (webrtc-rs sans-IO): one server socket for every peer, demultiplexed by the harness.
//!
//! `rtc` has no `accepts()`: the server learns which peer connection a new remote address
//! belongs to from the STUN USERNAME (`server-ufrag:client-ufrag`) of the first binding
//! request, then maps the address to it.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_twcc,
};
use rtc::peer_connection::configuration::media_engine::{MediaEngine, MIME_TYPE_OPUS};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::harness::{self, Phase, Shared, PAYLOAD, TICK};
use crate::Report;

const PT: u8 = 111;

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn peer_connection(server: bool, twcc: bool, local: SocketAddr) -> (RTCPeerConnection, u32) {
    let mut media_engine = MediaEngine::default();
    media_engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: PT,
            },
            RtpCodecKind::Audio,
        )
        .expect("opus registers");
    let mut registry = configure_rtcp_reports(Registry::new());
    if twcc {
        registry = configure_twcc(registry, &mut media_engine).expect("twcc");
    }
    let mut se = SettingEngineBuilder::new();
    if server {
        se = se
            .with_lite(true)
            .with_answering_dtls_role(RTCDtlsRole::Server);
    }
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(se.build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .build(Instant::now())
        .expect("peer connection");
    let ssrc: u32 = 0x1000_0000 ^ u32::from(local.port());
    let track = MediaStreamTrack::new(
        format!("s{}", local.port()),
        format!("t{}", local.port()),
        "audio".to_owned(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: opus(),
            ..Default::default()
        }],
    );
    let _ = pc.add_track(track).expect("track");
    (pc, ssrc)
}

fn add_host_candidate(pc: &mut RTCPeerConnection, addr: SocketAddr) {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .expect("host candidate");
    let init = RTCIceCandidate::from(&candidate)
        .to_json()
        .expect("candidate json");
    pc.add_local_candidate(init).expect("local candidate");
}

struct Peer {
    pc: RTCPeerConnection,
    /// "server" or "client", for error messages.
    side: &'static str,
    ssrc: u32,
    next: Instant,
    connected: bool,
    seq: u16,
    ts: u32,
}

impl Peer {
    fn drain(&mut self, socket: &UdpSocket) -> (bool, u64) {
        let mut became = false;
        let mut media = 0;
        while let Some(ev) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                RTCPeerConnectionState::Connected,
            ) = ev
            {
                if !self.connected {
                    self.connected = true;
                    became = true;
                }
            }
        }
        while let Some(m) = self.pc.poll_read() {
            if let RTCMessage::RtpPacket(_, _) = m.message {
                media += 1;
            }
        }
        while let Some(out) = self.pc.poll_write() {
            let _ = socket.send_to(&out.message, out.transport.peer_addr);
        }
        self.next = self
            .pc
            .poll_timeout()
            .unwrap_or(Instant::now() + Duration::from_secs(3600));
        (became, media)
    }

    fn send_audio(&mut self, now: Instant) -> bool {
        if !self.connected {
            return false;
        }
        let Some(id) = self.pc.get_senders().next() else {
            return false;
        };
        let Some(mut sender) = self.pc.rtp_sender(id) else {
            return false;
        };
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(960);
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: PT,
                sequence_number: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::from_static(&PAYLOAD),
        };
        match sender.write_rtp(now, packet) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("rtc write_rtp ({}): {e}", self.side);
                false
            }
        }
    }

    fn read(&mut self, now: Instant, local: SocketAddr, peer: SocketAddr, data: &[u8]) {
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: local,
                peer_addr: peer,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        if let Err(e) = self.pc.handle_read(msg) {
            eprintln!("rtc handle_read ({}): {e}", self.side);
        }
    }

    fn timeout(&mut self, now: Instant) {
        if let Err(e) = self.pc.handle_timeout(now) {
            eprintln!("rtc handle_timeout ({}): {e}", self.side);
        }
    }
}

/// The local ICE username fragment of a session description.
fn ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:").map(str::to_owned))
}

/// The first half (`server-ufrag`) of a STUN binding request's USERNAME attribute.
fn stun_local_ufrag(buf: &[u8]) -> Option<&str> {
    if buf.len() < 20 || buf[0] > 3 || buf[4..8] != [0x21, 0x12, 0xa4, 0x42] {
        return None;
    }
    let mut at = 20;
    while at + 4 <= buf.len() {
        let typ = u16::from_be_bytes([buf[at], buf[at + 1]]);
        let len = usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
        let value = buf.get(at + 4..at + 4 + len)?;
        if typ == 0x0006 {
            let name = std::str::from_utf8(value).ok()?;
            return name.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

struct Side {
    peers: Vec<Peer>,
    next_wake: Instant,
    next_tick: Instant,
}

impl Side {
    fn timeouts<'a>(
        &mut self,
        now: Instant,
        sockets: &dyn Fn(usize) -> &'a UdpSocket,
        shared: &Shared,
        server: bool,
    ) {
        if now < self.next_wake {
            return;
        }
        let mut min = now + Duration::from_secs(1);
        for (i, p) in self.peers.iter_mut().enumerate() {
            if p.next <= now {
                p.timeout(now);
                let (became, media) = p.drain(sockets(i));
                shared.count(server, became, media);
            }
            min = min.min(p.next);
        }
        self.next_wake = min;
    }

    fn media<'a>(
        &mut self,
        now: Instant,
        sockets: &dyn Fn(usize) -> &'a UdpSocket,
        shared: &Shared,
        server: bool,
    ) {
        if now < self.next_tick {
            return;
        }
        self.next_tick += TICK;
        if shared.phase() != Phase::Media {
            return;
        }
        let mut sent = 0;
        for (i, p) in self.peers.iter_mut().enumerate() {
            if p.send_audio(now) {
                sent += 1;
                let (became, media) = p.drain(sockets(i));
                shared.count(server, became, media);
                self.next_wake = self.next_wake.min(p.next);
            }
        }
        shared.sent(server, sent);
    }
}

/// Runs one measurement with `n` peers.
pub fn run(n: usize, twcc: bool, media: Duration) -> Report {
    let t0 = Instant::now();
    let rss0 = crate::rss_kib();
    let shared = Arc::new(Shared::default());
    let server_sock = harness::server_socket();
    let server_addr = server_sock.local_addr().expect("server addr");
    let (offer_tx, offer_rx) = mpsc::channel::<(usize, String)>();
    let (answer_tx, answer_rx) = mpsc::channel::<(usize, String)>();

    let sh = shared.clone();
    let server = std::thread::spawn(move || {
        crate::mark_server_thread();
        let mut probe = harness::Probe::start();
        let now = Instant::now();
        let mut side = Side {
            peers: Vec::new(),
            next_wake: now,
            next_tick: now,
        };
        let mut by_ufrag: HashMap<String, usize> = HashMap::new();
        let mut by_addr: HashMap<SocketAddr, usize> = HashMap::new();
        let mut buf = vec![0u8; 2000];
        while sh.phase() != Phase::Stop {
            probe.observe(sh.phase());
            while let Ok((client, offer)) = offer_rx.try_recv() {
                let (mut pc, ssrc) = peer_connection(true, twcc, server_addr);
                let desc = RTCSessionDescription::offer(offer.clone()).expect("offer parses");
                let offer_text = offer;
                pc.set_remote_description(Instant::now(), desc)
                    .expect("remote offer");
                add_host_candidate(&mut pc, server_addr);
                let answer = pc.create_answer(None).expect("answer");
                pc.set_local_description(Instant::now(), answer)
                    .expect("local answer");
                let sdp = pc.local_description().map(|d| d.sdp).unwrap_or_default();
                crate::not_server(|| {
                    harness::show_sdp(side.peers.is_empty(), &offer_text, &sdp);
                    drop(offer_text);
                });
                if let Some(u) = ufrag(&sdp) {
                    by_ufrag.insert(u, side.peers.len());
                }
                let mut p = Peer {
                    pc,
                    side: "server",
                    ssrc,
                    next: Instant::now(),
                    connected: false,
                    seq: 0,
                    ts: 0,
                };
                p.drain(&server_sock);
                side.peers.push(p);
                side.next_wake = Instant::now();
                let _ = crate::not_server(|| answer_tx.send((client, sdp.clone())));
            }
            while let Ok((len, src)) = server_sock.recv_from(&mut buf) {
                let data = &buf[..len];
                let idx = by_addr.get(&src).copied().or_else(|| {
                    let i = *by_ufrag.get(stun_local_ufrag(data)?)?;
                    by_addr.insert(src, i);
                    Some(i)
                });
                if let Some(i) = idx {
                    let p = &mut side.peers[i];
                    p.read(Instant::now(), server_addr, src, data);
                    let (became, media) = p.drain(&server_sock);
                    sh.count(true, became, media);
                    side.next_wake = side.next_wake.min(p.next);
                }
            }
            let now = Instant::now();
            side.timeouts(now, &|_| &server_sock, &sh, true);
            side.media(now, &|_| &server_sock, &sh, true);
            let wait = side
                .next_wake
                .min(side.next_tick)
                .saturating_duration_since(Instant::now());
            harness::poll_fds(&[&server_sock], wait.min(Duration::from_millis(5)));
        }
        probe.observe(Phase::Stop);
        probe
    });

    let sh = shared.clone();
    let clients = std::thread::spawn(move || {
        let now = Instant::now();
        let mut sockets = Vec::with_capacity(n);
        let mut side = Side {
            peers: Vec::with_capacity(n),
            next_wake: now,
            next_tick: now,
        };
        for i in 0..n {
            let sock = UdpSocket::bind("127.0.0.1:0").expect("bind client socket");
            sock.set_nonblocking(true).expect("nonblocking");
            let addr = sock.local_addr().expect("client addr");
            let (mut pc, ssrc) = peer_connection(false, twcc, addr);
            add_host_candidate(&mut pc, addr);
            let offer = pc.create_offer(None).expect("offer");
            pc.set_local_description(Instant::now(), offer)
                .expect("local offer");
            let sdp = pc.local_description().map(|d| d.sdp).unwrap_or_default();
            let _ = offer_tx.send((i, sdp));
            side.peers.push(Peer {
                pc,
                side: "client",
                ssrc,
                next: Instant::now(),
                connected: false,
                seq: 0,
                ts: 0,
            });
            sockets.push(sock);
        }
        let mut buf = vec![0u8; 2000];
        while sh.phase() != Phase::Stop {
            while let Ok((i, answer)) = answer_rx.try_recv() {
                let desc = RTCSessionDescription::answer(answer).expect("answer parses");
                side.peers[i]
                    .pc
                    .set_remote_description(Instant::now(), desc)
                    .expect("remote answer");
                side.peers[i].drain(&sockets[i]);
                side.next_wake = Instant::now();
            }
            let ready = harness::poll_fds(
                &sockets.iter().collect::<Vec<_>>(),
                side.next_wake
                    .min(side.next_tick)
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(5)),
            );
            for i in ready {
                let sock = &sockets[i];
                let local = sock.local_addr().expect("client addr");
                while let Ok((len, src)) = sock.recv_from(&mut buf) {
                    let p = &mut side.peers[i];
                    p.read(Instant::now(), local, src, &buf[..len]);
                    let (became, media) = p.drain(sock);
                    sh.count(false, became, media);
                    side.next_wake = side.next_wake.min(p.next);
                }
            }
            let now = Instant::now();
            side.timeouts(now, &|i| &sockets[i], &sh, false);
            side.media(now, &|i| &sockets[i], &sh, false);
        }
    });

    let report = harness::orchestrate(&shared, n, twcc, media, t0, rss0);
    let _ = clients.join();
    let probe = server.join().expect("server thread");
    probe.fill(report)
}
