//! str0m: one server socket for every peer, ICE-lite by one builder setting.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Extension;
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

use crate::harness::{self, Phase, Shared, PAYLOAD, TICK};
use crate::Report;

fn config(twcc: bool) -> RtcConfig {
    let cfg = Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .clear_extension_map()
        .set_extension(1, Extension::AudioLevel)
        .set_extension(4, Extension::RtpMid);
    if twcc {
        cfg.set_extension(3, Extension::TransportSequenceNumber)
    } else {
        cfg
    }
}

struct Peer {
    rtc: Rtc,
    /// The remote address, once known.
    next: Instant,
    mid: Option<Mid>,
    pt: Option<Pt>,
    connected: bool,
    rtp_time: u64,
}

impl Peer {
    fn new(rtc: Rtc, now: Instant) -> Self {
        Peer {
            rtc,
            next: now,
            mid: None,
            pt: None,
            connected: false,
            rtp_time: 0,
        }
    }

    /// Runs the stack until it wants to wait; returns (newly connected, media packets in).
    fn drain(&mut self, socket: &UdpSocket) -> (bool, u64) {
        let mut became = false;
        let mut media = 0;
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::Connected)) => {
                    if !self.connected {
                        self.connected = true;
                        became = true;
                    }
                }
                Ok(Output::Event(Event::MediaAdded(m))) => self.mid = Some(m.mid),
                Ok(Output::Event(Event::MediaData(_))) => media += 1,
                Ok(Output::Event(_)) => {}
                Err(e) => {
                    eprintln!("str0m poll_output: {e}");
                    self.next = Instant::now() + Duration::from_secs(3600);
                    break;
                }
            }
        }
        (became, media)
    }

    /// Hands one 20 ms Opus-sized payload to the stack.
    fn send_audio(&mut self, now: Instant) -> bool {
        let Some(mid) = self.mid else { return false };
        if !self.connected {
            return false;
        }
        let Some(writer) = self.rtc.writer(mid) else {
            return false;
        };
        let pt = match self.pt {
            Some(pt) => pt,
            None => match writer.payload_params().next() {
                Some(p) => {
                    let pt = p.pt();
                    self.pt = Some(pt);
                    pt
                }
                None => return false,
            },
        };
        let ts = MediaTime::new(self.rtp_time, Frequency::FORTY_EIGHT_KHZ);
        self.rtp_time += 960;
        writer.write(pt, now, ts, PAYLOAD.to_vec()).is_ok()
    }

    fn handle(&mut self, input: Input<'_>) {
        if let Err(e) = self.rtc.handle_input(input) {
            eprintln!("str0m handle_input: {e}");
        }
    }
}

/// A set of peers behind sockets, driven by one thread.
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
                p.handle(Input::Timeout(now));
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
pub fn run(n: usize, twcc: bool, shared_cert: bool, media: Duration) -> Report {
    let t0 = Instant::now();
    let rss0 = crate::rss_kib();
    let shared = Arc::new(Shared::default());
    let server_sock = harness::server_socket();
    let server_addr = server_sock.local_addr().expect("server addr");
    let (offer_tx, offer_rx) = mpsc::channel::<(SocketAddr, String)>();
    let (answer_tx, answer_rx) = mpsc::channel::<(SocketAddr, String)>();

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
        let mut by_addr: HashMap<SocketAddr, usize> = HashMap::new();
        // One DTLS certificate for every server peer, as a server would keep, or one each.
        let cert = shared_cert.then(|| {
            str0m::crypto::from_feature_flags()
                .dtls_provider
                .generate_certificate()
                .expect("dtls certificate")
        });
        let mut buf = vec![0u8; 2000];
        while sh.phase() != Phase::Stop {
            probe.observe(sh.phase());
            while let Ok((addr, offer)) = offer_rx.try_recv() {
                let mut cfg = config(twcc).set_ice_lite(true);
                if let Some(cert) = &cert {
                    cfg = cfg.set_dtls_cert(cert.clone());
                }
                let mut rtc = cfg.build(Instant::now());
                rtc.add_local_candidate(Candidate::host(server_addr, "udp").expect("candidate"));
                let parsed = SdpOffer::from_sdp_string(&offer).expect("offer parses");
                let offer_text = offer;
                let offer = parsed;
                let answer = rtc.sdp_api().accept_offer(offer).expect("offer accepted");
                crate::not_server(|| {
                    harness::show_sdp(side.peers.is_empty(), &offer_text, &answer.to_sdp_string());
                    drop(offer_text);
                });
                by_addr.insert(addr, side.peers.len());
                let mut p = Peer::new(rtc, Instant::now());
                p.drain(&server_sock);
                side.peers.push(p);
                side.next_wake = Instant::now();
                let _ = crate::not_server(|| answer_tx.send((addr, answer.to_sdp_string())));
            }
            while let Ok((len, src)) = server_sock.recv_from(&mut buf) {
                {
                    let now = Instant::now();
                    let Ok(contents) = buf[..len].try_into() else {
                        continue;
                    };
                    let input = Input::Receive(
                        now,
                        Receive {
                            proto: Protocol::Udp,
                            source: src,
                            destination: server_addr,
                            contents,
                        },
                    );
                    let idx = match by_addr.get(&src) {
                        Some(&i) if side.peers[i].rtc.accepts(&input) => Some(i),
                        _ => side.peers.iter().position(|p| p.rtc.accepts(&input)),
                    };
                    if let Some(i) = idx {
                        let p = &mut side.peers[i];
                        p.handle(input);
                        let (became, media) = p.drain(&server_sock);
                        sh.count(true, became, media);
                        side.next_wake = side.next_wake.min(p.next);
                    }
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
        let mut pending: HashMap<SocketAddr, (usize, SdpPendingOffer)> = HashMap::new();
        let mut side = Side {
            peers: Vec::with_capacity(n),
            next_wake: now,
            next_tick: now,
        };
        for i in 0..n {
            let sock = UdpSocket::bind("127.0.0.1:0").expect("bind client socket");
            sock.set_nonblocking(true).expect("nonblocking");
            let addr = sock.local_addr().expect("client addr");
            let mut rtc = config(twcc).build(Instant::now());
            rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
            let mut api = rtc.sdp_api();
            let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
            let (offer, pend) = api.apply().expect("offer");
            pending.insert(addr, (i, pend));
            let _ = offer_tx.send((addr, offer.to_sdp_string()));
            let mut p = Peer::new(rtc, Instant::now());
            p.mid = Some(mid);
            side.peers.push(p);
            sockets.push(sock);
        }
        let mut buf = vec![0u8; 2000];
        while sh.phase() != Phase::Stop {
            while let Ok((addr, answer)) = answer_rx.try_recv() {
                if let Some((i, pend)) = pending.remove(&addr) {
                    let answer = SdpAnswer::from_sdp_string(&answer).expect("answer parses");
                    side.peers[i]
                        .rtc
                        .sdp_api()
                        .accept_answer(pend, answer)
                        .expect("answer accepted");
                    side.peers[i].drain(&sockets[i]);
                    side.next_wake = Instant::now();
                }
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
                    let Ok(contents) = buf[..len].try_into() else {
                        continue;
                    };
                    let p = &mut side.peers[i];
                    p.handle(Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source: src,
                            destination: local,
                            contents,
                        },
                    ));
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
