//! The source rule against strangers, on real UDP sockets: hijacks before the caller's first
//! packet, floods, other ports of the caller's host, unproven addresses, guessable ports;
//! and liveness for callers that do not send RTP.

mod common;

use std::collections::HashSet;
use std::net::UdpSocket;
use std::time::{Duration, Instant, SystemTime};

use common::{engine, join, join_latching, join_offer, talk, Caller};
use tutti_engine::tutti_rtp::rtcp::{NtpClock, RtcpSession};
use tutti_engine::{
    DropReason, Engine, EngineConfig, EngineError, EngineEvent, LeaveReason, RoomId, RoomSettings,
};
use tutti_mix::ParticipantSettings;

/// Runs `senders` in real time for `seconds` while `listeners` only read.
fn run(senders: &mut [&mut Caller], listeners: &mut [&mut Caller], seconds: f64) {
    let start = Instant::now();
    for frame in 0..(seconds * 50.0) as u32 {
        for sender in senders.iter_mut() {
            sender.send_frame();
            sender.drain();
        }
        for listener in listeners.iter_mut() {
            listener.drain();
        }
        let next = start + Duration::from_millis(u64::from(frame + 1) * 20);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// Joins `caller` without latching: it may send from any port of its host.
fn join_asymmetric(engine: &Engine, room: RoomId, caller: &mut Caller) -> u32 {
    join_latching(
        engine,
        room,
        caller,
        ParticipantSettings::default(),
        Some(false),
    )
}

fn counters(engine: &Engine, room: RoomId, key: u32) -> tutti_engine::LegCounters {
    let snapshot = engine.snapshot(room).unwrap();
    snapshot
        .participants
        .iter()
        .find(|p| p.key == key)
        .unwrap()
        .counters
}

fn drops(engine: &Engine, reason: DropReason) -> u64 {
    engine
        .metrics()
        .drops
        .iter()
        .find(|(r, _)| *r == reason)
        .map_or(0, |(_, n)| *n)
}

#[test]
fn a_stranger_who_sends_first_neither_latches_nor_locks_the_caller_out() {
    let engine = engine(32_000..=32_099);
    let room = RoomId(1);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut a = Caller::new(400.0);
    let mut b = Caller::new(0.0);
    let ka = join(&engine, room, &mut a, ParticipantSettings::default());
    join(&engine, room, &mut b, ParticipantSettings::default());
    // Before a's first packet, a stranger on another port sends comfort noise, then a loud
    // 1 kHz stream, to a's port.
    let mut stranger = Caller::new(1000.0);
    stranger.server = a.server;
    for _ in 0..5 {
        stranger.send(13, &[40]);
    }
    run(&mut [&mut stranger], &mut [&mut b], 0.5);
    assert!(b.level(1000.0, 0.4) < 0.01, "the stranger is not heard");
    // Now a talks, and the stranger keeps sending.
    run(&mut [&mut a, &mut b, &mut stranger], &mut [], 1.0);
    assert!(b.level(400.0, 0.5) > 0.1, "a is heard");
    assert!(b.level(1000.0, 0.5) < 0.01, "the stranger still is not");
    assert!(stranger.heard.is_empty(), "nothing went to the stranger");
    assert!(!a.heard.is_empty(), "a receives the room");
    assert!(counters(&engine, room, ka).foreign_source >= 70);
    assert!(drops(&engine, DropReason::ForeignSource) >= 70);
    // The latch is announced, onto a's own address.
    let a_address = a.socket.local_addr().unwrap();
    let latched = std::iter::from_fn(|| engine.events().try_recv().ok())
        .filter_map(|event| match event {
            EngineEvent::Latched {
                participant,
                source,
                ..
            } if participant == ka => Some(source),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(latched, [a_address]);
}

#[test]
fn the_offered_address_wins_over_an_earlier_latch_and_other_ports_cannot_silence_a_caller() {
    let engine = engine(32_100..=32_199);
    let room = RoomId(2);
    engine.create_room(room, RoomSettings::default()).unwrap();
    // a does not latch: it may send from any port of its host. b listens.
    let mut a = Caller::new(0.0);
    let mut b = Caller::new(0.0);
    join_asymmetric(&engine, room, &mut a);
    join(&engine, room, &mut b, ParticipantSettings::default());
    // A stranger on a's host sends first, from another port, and pins a's stream.
    let mut stranger = Caller::new(1000.0);
    stranger.server = a.server;
    run(&mut [&mut stranger, &mut b], &mut [], 0.6);
    assert!(b.level(1000.0, 0.3) > 0.1, "the first stream in is taken");
    // a's real stream from the offered port takes it back, whatever the stranger sends.
    a.hz = 400.0;
    run(&mut [&mut a, &mut b, &mut stranger], &mut [], 1.0);
    assert!(b.level(400.0, 0.5) > 0.1, "a is heard");
    assert!(b.level(1000.0, 0.5) < 0.01, "the stranger is not");

    // A caller sending from a port of its own (not the offered one) keeps its stream once
    // pinned: a second port of the same host neither joins in nor silences it.
    let mut c = Caller::new(0.0);
    let kc = join_asymmetric(&engine, room, &mut c);
    let mut c_sender = Caller::new(600.0);
    c_sender.server = c.server;
    let mut c_stranger = Caller::new(1500.0);
    c_stranger.server = c.server;
    run(&mut [&mut c_sender, &mut b], &mut [&mut c], 0.5);
    run(
        &mut [&mut c_sender, &mut c_stranger, &mut b],
        &mut [&mut c],
        1.0,
    );
    assert!(b.level(600.0, 0.5) > 0.1, "c is still heard");
    assert!(b.level(1500.0, 0.5) < 0.01, "the other port is not");
    assert!(counters(&engine, room, kc).foreign_source >= 40);
    assert!(!c.heard.is_empty(), "c receives on its offered port");
}

#[test]
fn a_flood_from_a_stranger_does_not_silence_the_caller() {
    let engine = engine(32_200..=32_299);
    let room = RoomId(3);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut a = Caller::new(400.0);
    let mut b = Caller::new(0.0);
    let ka = join(&engine, room, &mut a, ParticipantSettings::default());
    join(&engine, room, &mut b, ParticipantSettings::default());
    talk(&mut [&mut a, &mut b], 0.3);
    // 10,000 packets a second at a's port from another socket, for a second, while a talks.
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = a.server;
    let flooding = std::thread::spawn(move || {
        let mut packet = [0u8; 172];
        packet[0] = 0x80;
        let start = Instant::now();
        let mut sent = 0u32;
        while start.elapsed() < Duration::from_secs(1) {
            packet[3] = sent as u8;
            let _ = flood.send_to(&packet, target);
            sent += 1;
            if sent.is_multiple_of(100) {
                let due = start + Duration::from_micros(u64::from(sent) * 100);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
        sent
    });
    talk(&mut [&mut a, &mut b], 1.0);
    let sent = flooding.join().unwrap();
    // Every 20 ms of b's last 0.8 s carries a's tone.
    let tail = &b.heard[b.heard.len() - 6400..];
    for (i, block) in tail.chunks(160).enumerate() {
        let level = tutti_e2e::amplitude_at(block, 8000, 400.0);
        assert!(
            level > 0.05,
            "block {i} of b's audio lost a's tone: {level}"
        );
    }
    let counters = counters(&engine, room, ka);
    assert_eq!(counters.overflow, 0, "a's own packets all found room");
    assert!(
        counters.foreign_source >= u64::from(sent) * 9 / 10,
        "{counters:?} of {sent} sent"
    );
}

#[test]
fn an_unproven_address_gets_media_only_for_a_short_window() {
    let engine = Engine::start(EngineConfig {
        mixer_threads: 1,
        ports: 32_300..=32_399,
        unproven_send_window: Duration::from_millis(400),
        ..Default::default()
    })
    .unwrap();
    let room = RoomId(4);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut a = Caller::new(400.0);
    join(&engine, room, &mut a, ParticipantSettings::default());
    // An offer naming somebody else's address (the victim never sends).
    let mut victim = Caller::new(0.0);
    let kv = join(&engine, room, &mut victim, ParticipantSettings::default());
    run(&mut [&mut a], &mut [&mut victim], 0.6);
    let during_window = victim.heard.len();
    assert!(during_window > 0, "the short window is used");
    assert!(
        during_window <= 160 * 25,
        "at most the window's worth: {during_window} samples"
    );
    run(&mut [&mut a], &mut [&mut victim], 1.0);
    assert_eq!(
        victim.heard.len(),
        during_window,
        "nothing after the window"
    );
    assert!(counters(&engine, room, kv).unproven_suppressed >= 45);
    // Once the address proves itself, media flows.
    victim.hz = 0.0;
    run(&mut [&mut a, &mut victim], &mut [], 0.6);
    assert!(
        victim.level(400.0, 0.3) > 0.1,
        "a proven caller hears the room"
    );
}

#[test]
fn ports_are_handed_out_at_random() {
    let engine = engine(32_400..=33_399);
    let room = RoomId(5);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut ports = Vec::new();
    let mut callers: Vec<Caller> = (0..12).map(|_| Caller::new(0.0)).collect();
    for caller in &mut callers {
        join(&engine, room, caller, ParticipantSettings::default());
        ports.push(caller.server.port());
    }
    let sorted = ports.windows(2).all(|w| w[0] < w[1]);
    let neighbours = ports
        .windows(2)
        .filter(|w| w[1].abs_diff(w[0]) == 1)
        .count();
    assert!(!sorted && neighbours < 3, "guessable ports: {ports:?}");
    assert_eq!(ports.iter().collect::<HashSet<_>>().len(), ports.len());
}

fn offer(address: &str, port: u16, direction: &str) -> String {
    let family = if address.contains(':') { "IP6" } else { "IP4" };
    format!("v=0\r\no=- 1 1 IN {family} {address}\r\ns=-\r\nc=IN {family} {address}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n")
}

#[test]
fn listen_only_callers_on_hold_and_rtcp_senders_are_not_timed_out() {
    let engine = Engine::start(EngineConfig {
        mixer_threads: 1,
        ports: 33_400..=33_499,
        rtp_timeout: Duration::from_millis(600),
        ..Default::default()
    })
    .unwrap();
    let room = RoomId(6);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let recvonly = join_offer(&engine, room, offer("127.0.0.1", port, "recvonly")).unwrap();
    let held = join_offer(&engine, room, offer("0.0.0.0", 9, "sendrecv")).unwrap();
    // A caller that sends only RTCP receiver reports.
    let mut reporter = Caller::new(0.0);
    let kr = join(&engine, room, &mut reporter, ParticipantSettings::default());
    let mut session = RtcpSession::new(
        7,
        "reporter",
        NtpClock::new(Instant::now(), SystemTime::now()),
    );
    // A caller that talks for a while, then goes silent: its timeout marks the time.
    let mut talker = Caller::new(300.0);
    let kt = join(&engine, room, &mut talker, ParticipantSettings::default());
    let start = Instant::now();
    let mut buf = [0u8; 512];
    let mut next_report = start;
    let left = loop {
        let now = Instant::now();
        if now < start + Duration::from_millis(1200) {
            talker.send_frame();
        }
        if now >= next_report {
            let len = session
                .write_report(now, 0, Duration::ZERO, 8000, &mut buf)
                .unwrap();
            reporter
                .socket
                .send_to(&buf[..len], reporter.server)
                .unwrap();
            next_report = now + Duration::from_millis(200);
        }
        assert!(
            now < start + Duration::from_secs(5),
            "the talker never timed out"
        );
        match engine.events().recv_timeout(Duration::from_millis(20)) {
            Ok(EngineEvent::Left {
                participant,
                reason,
                ..
            }) => break (participant, reason),
            _ => continue,
        }
    };
    assert_eq!(
        left,
        (kt, LeaveReason::RtpTimeout),
        "only the silent talker left"
    );
    let present: HashSet<u32> = engine
        .snapshot(room)
        .unwrap()
        .participants
        .iter()
        .map(|p| p.key)
        .collect();
    for key in [recvonly, held, kr] {
        assert!(present.contains(&key), "{key} is still in the room");
    }
    // The listen-only caller heard the talker; nothing went anywhere for the held one.
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.recv_from(&mut buf).is_ok(),
        "the listener got media"
    );
    assert_eq!(counters(&engine, room, held).packets_out, 0);
}

#[test]
fn an_offer_of_the_other_ip_family_is_refused_clearly() {
    let engine = engine(33_500..=33_599);
    let room = RoomId(7);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let refused = join_offer(&engine, room, offer("2001:db8::5", 4000, "sendrecv"));
    let error = refused.unwrap_err();
    assert!(
        matches!(error, EngineError::AddressFamily { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("IPv6"), "{error}");
}
