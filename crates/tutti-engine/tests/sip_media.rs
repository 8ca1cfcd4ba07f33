//! What SIP calls need of the media plane, with callers on real UDP sockets: joins on a given
//! port, tutti's own offers and the answers to them, a participant moving to another room on
//! its port, and renegotiation (hold, resume, a new address, a new codec).

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tutti_codec::{CodecKind, EncoderSettings};
use tutti_engine::tutti_rtp::sdp::SdpError;
use tutti_engine::{
    Engine, EngineConfig, EngineError, EngineEvent, JoinRequest, LeaveReason, ParticipantChange,
    RoomId, RoomSettings,
};
use tutti_mix::ParticipantSettings;
use tutti_rtp::packet::{parse_datagram, write_rtp, Datagram, OutgoingRtp};

mod common;

use common::{join, wait_for, Caller};

/// Runs the callers in real time for `seconds`, their RTP clocks following the wall clock as
/// a phone's do: one that paused (on hold, or while the test renegotiated) resumes with the
/// timestamps of now, not of when it stopped.
fn talk_now(callers: &mut [&mut Caller], seconds: f64) {
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64();
    for caller in callers.iter_mut() {
        caller.ts = (now * 50.0) as u32 * 160;
    }
    common::talk(callers, seconds);
}

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn start(
    ports: std::ops::RangeInclusive<u16>,
    configure: impl FnOnce(&mut EngineConfig),
) -> Engine {
    let mut config = EngineConfig {
        mixer_threads: 2,
        ports,
        ..Default::default()
    };
    configure(&mut config);
    Engine::start(config).unwrap()
}

/// An offer from 127.0.0.1:`port` with the `m=` formats and attributes given.
fn offer_from(address: &str, port: u16, formats: &str, attributes: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\nm=audio {port} RTP/AVP {formats}\r\n{attributes}"
    )
}

fn port_of(caller: &Caller) -> u16 {
    caller.socket.local_addr().unwrap().port()
}

/// The `o=` line's session id and version.
fn origin(sdp: &str) -> (u64, u64) {
    let line = sdp.lines().find(|l| l.starts_with("o=")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[1].parse().unwrap(), fields[2].parse().unwrap())
}

fn join_request(offer: String, port: Option<u16>) -> JoinRequest {
    JoinRequest {
        offer,
        settings: ParticipantSettings::default(),
        latching: None,
        signalled_source: None,
        port,
        relay: None,
    }
}

/// Joins `caller` with its own offer on `port`.
fn join_on(engine: &Engine, room: RoomId, caller: &mut Caller, port: u16) -> u32 {
    let joined = engine
        .join(room, join_request(caller.offer(), Some(port)))
        .unwrap();
    assert_eq!(joined.port, port);
    caller.server = SocketAddr::from(([127, 0, 0, 1], port));
    joined.key
}

/// An engine with a room where a caller at 300 Hz (whose key is returned) and another at
/// 700 Hz joined.
fn room_of_two(ports: std::ops::RangeInclusive<u16>) -> (Engine, RoomId, Caller, u32, Caller) {
    let engine = start(ports, |_| {});
    let room = RoomId(1);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut first = Caller::new(300.0);
    let mut other = Caller::new(700.0);
    let key = join(&engine, room, &mut first, ParticipantSettings::default());
    join(&engine, room, &mut other, ParticipantSettings::default());
    (engine, room, first, key, other)
}

fn is_left(event: &EngineEvent, key: u32) -> bool {
    matches!(event, EngineEvent::Left { participant, .. } if *participant == key)
}

/// Runs `callers` for `seconds`; returns how many packets `watched` received meanwhile.
fn packets_heard(callers: &mut [&mut Caller], watched: usize, seconds: f64) -> usize {
    callers[watched].drain();
    let before = callers[watched].heard.len();
    talk_now(callers, seconds);
    callers[watched].drain();
    (callers[watched].heard.len() - before) / 160
}

#[test]
fn a_join_on_a_given_port_binds_exactly_that_port_or_fails() {
    let engine = start(36_000..=36_049, |_| {});
    let room = RoomId(1);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let free = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let mut a = Caller::new(400.0);
    let mut b = Caller::new(1000.0);
    join_on(&engine, room, &mut a, port);
    join(&engine, room, &mut b, ParticipantSettings::default());
    talk_now(&mut [&mut a, &mut b], 1.0);
    assert!(a.level(1000.0, 0.5) > 0.1, "a hears b from its port");
    assert!(b.level(400.0, 0.5) > 0.1, "b hears a sent to that port");
    let taken = engine.join(room, join_request(Caller::new(0.0).offer(), Some(port)));
    assert!(
        matches!(taken, Err(EngineError::PortUnavailable { port: p, .. }) if p == port),
        "{taken:?}"
    );
}

#[test]
fn an_answer_to_tuttis_offer_sets_the_codec_and_the_address() {
    let engine = start(36_050..=36_099, |_| {});
    let room = RoomId(1);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let (offer, port) = engine.offer().unwrap();
    assert!((36_050..=36_099).contains(&port));
    assert!(offer.contains(&format!("m=audio {port} RTP/AVP 111 9 0 8 101 110\r\n")));
    assert_eq!(engine.metrics().reserved_ports, 1);

    // The callee answers PCMU, though tutti prefers Opus and G.722, and numbers it 98: tutti
    // sends it as 98 and expects it as 0, the number of its offer.
    let mut callee = Caller::new(500.0);
    let answer = offer_from(
        "127.0.0.1",
        port_of(&callee),
        "98 101",
        "a=rtpmap:98 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
    );
    let joined = engine.join(room, join_request(answer, Some(port))).unwrap();
    assert_eq!(joined.port, port);
    assert_eq!(joined.codec, CodecKind::Pcmu);
    assert_eq!(
        joined.answer, offer,
        "what the call has sent is tutti's offer"
    );
    assert_eq!(engine.metrics().reserved_ports, 0);
    callee.server = SocketAddr::from(([127, 0, 0, 1], port));
    let mut other = Caller::new(900.0);
    join(&engine, room, &mut other, ParticipantSettings::default());
    talk_now(&mut [&mut callee, &mut other], 1.0);
    assert!(callee.level(900.0, 0.5) > 0.1, "the callee hears the room");
    assert!(other.level(500.0, 0.5) > 0.1, "the room hears the callee");
}

#[test]
fn a_refused_join_on_a_reserved_port_keeps_it_reserved() {
    let engine = start(36_350..=36_399, |_| {});
    let (locked, open) = (RoomId(1), RoomId(2));
    engine.create_room(locked, RoomSettings::default()).unwrap();
    engine.create_room(open, RoomSettings::default()).unwrap();
    engine.set_locked(locked, true).unwrap();
    let (_, port) = engine.offer().unwrap();
    let mut callee = Caller::new(500.0);
    // PCMU first: the answerer's choice, where tutti's own preference would take G.722.
    let answer = offer_from("127.0.0.1", port_of(&callee), "0 9", "a=sendrecv\r\n");
    let refused = engine.join(locked, join_request(answer.clone(), Some(port)));
    assert!(
        matches!(refused, Err(EngineError::RoomLocked(_))),
        "{refused:?}"
    );
    let garbage = engine.join(open, join_request("v=0\r\nbroken".into(), Some(port)));
    assert!(matches!(garbage, Err(EngineError::Sdp(_))), "{garbage:?}");
    assert_eq!(engine.metrics().reserved_ports, 1, "still reserved");

    // Still tutti's offer on it: the answer is read as one.
    let joined = engine.join(open, join_request(answer, Some(port))).unwrap();
    assert_eq!(joined.codec, CodecKind::Pcmu);
    callee.server = SocketAddr::from(([127, 0, 0, 1], port));
    let mut other = Caller::new(900.0);
    join(&engine, open, &mut other, ParticipantSettings::default());
    talk_now(&mut [&mut callee, &mut other], 1.0);
    assert!(other.level(500.0, 0.5) > 0.1, "the callee is heard");
    assert!(callee.level(900.0, 0.5) > 0.1, "the callee hears the room");
}

#[test]
fn reserved_ports_are_released_or_expire() {
    let engine = start(36_100..=36_149, |c| {
        c.reserved_port_ttl = Duration::from_millis(300);
    });
    let (_, released) = engine.offer().unwrap();
    assert!(UdpSocket::bind(("0.0.0.0", released)).is_err(), "held");
    assert!(engine.release_port(released));
    assert!(!engine.release_port(released));
    UdpSocket::bind(("0.0.0.0", released)).expect("released ports are closed");

    // Expired, it is closed without any further call to the engine.
    let (_, forgotten) = engine.offer().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while UdpSocket::bind(("0.0.0.0", forgotten)).is_err() {
        assert!(Instant::now() < deadline, "the reservation never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(engine.metrics().reserved_ports, 0);
}

#[test]
fn a_detached_caller_keeps_its_port_into_a_room_on_another_thread() {
    let engine = start(36_150..=36_199, |_| {});
    let (lobby, conference) = (RoomId(1), RoomId(2));
    engine.create_room(lobby, RoomSettings::default()).unwrap();
    engine
        .create_room(conference, RoomSettings::default())
        .unwrap();
    // Rooms go to the least loaded mixer thread: one each.

    let mut caller = Caller::new(300.0);
    let mut in_lobby = Caller::new(0.0);
    let mut in_conference = Caller::new(700.0);
    let key = join(&engine, lobby, &mut caller, ParticipantSettings::default());
    join(
        &engine,
        lobby,
        &mut in_lobby,
        ParticipantSettings::default(),
    );
    join(
        &engine,
        conference,
        &mut in_conference,
        ParticipantSettings::default(),
    );
    talk_now(&mut [&mut caller, &mut in_lobby, &mut in_conference], 0.6);
    assert!(in_lobby.level(300.0, 0.3) > 0.1);
    let port = caller.server.port();

    assert_eq!(engine.detach(lobby, key).unwrap(), port);
    let left = wait_for(&engine, |e| is_left(e, key));
    assert!(matches!(
        left,
        EngineEvent::Left {
            room,
            reason: LeaveReason::Kicked,
            ..
        } if room == lobby
    ));
    // The caller goes on sending to the same port; it joins the conference on it.
    let moved = engine
        .join(conference, join_request(caller.offer(), Some(port)))
        .unwrap();
    assert_eq!(moved.port, port);
    assert_eq!(caller.server.port(), port);
    talk_now(&mut [&mut caller, &mut in_lobby, &mut in_conference], 1.2);
    assert!(
        in_conference.level(300.0, 0.5) > 0.1,
        "the conference hears the caller"
    );
    assert!(
        caller.level(700.0, 0.5) > 0.1,
        "the caller hears the conference"
    );
    assert!(
        in_lobby.level(300.0, 0.5) < 0.01,
        "the lobby no longer hears it"
    );
    assert_eq!(engine.metrics().reserved_ports, 0);
}

#[test]
fn hold_and_resume_keep_the_call_and_its_session() {
    let engine = start(36_200..=36_249, |c| {
        c.rtp_timeout = Duration::from_secs(1);
    });
    let room = RoomId(1);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut held = Caller::new(300.0);
    let mut other = Caller::new(700.0);
    let joined = engine.join(room, join_request(held.offer(), None)).unwrap();
    held.server = SocketAddr::from(([127, 0, 0, 1], joined.port));
    let key = joined.key;
    join(&engine, room, &mut other, ParticipantSettings::default());
    talk_now(&mut [&mut held, &mut other], 0.6);
    assert!(held.level(700.0, 0.3) > 0.1);
    let (session, version) = origin(&joined.answer);
    engine
        .update(room, key, ParticipantChange::Moderator(true))
        .unwrap();
    let port = port_of(&held);
    let pcmu = |attributes: &str| offer_from("127.0.0.1", port, "0", attributes);

    let holds = [
        (pcmu("a=sendonly\r\n"), "a=recvonly\r\n"),
        (pcmu("a=inactive\r\n"), "a=inactive\r\n"),
        (
            offer_from("0.0.0.0", port, "0", "a=sendrecv\r\n"),
            "a=inactive\r\n",
        ),
    ];
    let mut expected_version = version;
    for (offer, direction) in holds {
        let answer = engine.renegotiate(room, key, &offer).unwrap();
        expected_version += 1;
        assert!(answer.contains(direction), "{answer}");
        assert!(answer.contains(&format!("m=audio {} ", joined.port)));
        assert_eq!(origin(&answer), (session, expected_version));
        // Nothing is sent to a call on hold, and its silence, longer than the timeout, is no
        // timeout.
        talk_now(&mut [&mut other], 0.1);
        held.drain();
        let before = held.heard.len();
        talk_now(&mut [&mut other], 1.5);
        held.drain();
        assert_eq!(held.heard.len(), before, "{direction} got media");
        assert!(
            !engine.events().try_iter().any(|e| is_left(&e, key)),
            "a call on hold timed out"
        );

        let answer = engine
            .renegotiate(room, key, &pcmu("a=sendrecv\r\n"))
            .unwrap();
        expected_version += 1;
        assert!(answer.contains("a=sendrecv\r\n"));
        assert_eq!(origin(&answer), (session, expected_version));
        talk_now(&mut [&mut held, &mut other], 0.8);
        assert!(held.level(700.0, 0.4) > 0.1, "resumed after {direction}");
        assert!(other.level(300.0, 0.4) > 0.1, "heard after {direction}");
    }
    // Its place and settings are those it had.
    let snapshot = engine.snapshot(room).unwrap();
    let state = snapshot.participants.iter().find(|p| p.key == key).unwrap();
    assert!(state.moderator);
}

#[test]
fn a_new_address_moves_the_media_and_the_source_check() {
    let (engine, room, mut before, key, mut other) = room_of_two(36_250..=36_299);
    talk_now(&mut [&mut before, &mut other], 0.6);
    assert!(other.level(300.0, 0.3) > 0.1);

    let mut after = Caller::new(500.0);
    after.server = before.server;
    engine.renegotiate(room, key, &after.offer()).unwrap();
    talk_now(&mut [&mut before, &mut after, &mut other], 0.1);
    let stale = packets_heard(&mut [&mut other, &mut after, &mut before], 2, 1.0);
    assert_eq!(stale, 0, "media still goes to the old address");
    assert!(
        after.level(700.0, 0.5) > 0.1,
        "the new address hears the room"
    );
    assert!(other.level(500.0, 0.5) > 0.1, "the new address is heard");
    assert!(
        other.level(300.0, 0.5) < 0.01,
        "the old address is no longer accepted"
    );
}

/// A caller speaking G.722, with tutti's codecs. Its second of tone is encoded beforehand and
/// what it hears is decoded afterwards, so that it keeps time in a debug build.
struct G722Caller {
    socket: UdpSocket,
    server: SocketAddr,
    tone: Vec<Vec<u8>>,
    sent: u64,
    timestamp: u32,
    received: Vec<Vec<u8>>,
    payload_types: BTreeSet<u8>,
    ssrcs: BTreeSet<u32>,
}

impl G722Caller {
    /// Takes over `caller`'s socket, to send a tone at `hz`.
    fn from(caller: &Caller, hz: f64) -> Self {
        let mut encoder =
            tutti_codec::encoder_for(CodecKind::G722, &EncoderSettings::default()).unwrap();
        let tone = (0..50u64)
            .map(|frame| {
                let samples: Vec<f32> = (0..960)
                    .map(|i| {
                        let t = (frame * 960 + i) as f64 / 48_000.0;
                        (0.3 * (2.0 * std::f64::consts::PI * hz * t).sin()) as f32
                    })
                    .collect();
                let mut payload = [0u8; 400];
                let len = encoder.encode(&samples, &mut payload).unwrap();
                payload[..len].to_vec()
            })
            .collect();
        Self {
            socket: caller.socket.try_clone().unwrap(),
            server: caller.server,
            tone,
            sent: 0,
            timestamp: 0,
            received: Vec::new(),
            payload_types: BTreeSet::new(),
            ssrcs: BTreeSet::new(),
        }
    }

    fn exchange(&mut self) {
        let payload = &self.tone[(self.sent % 50) as usize];
        let header = OutgoingRtp {
            payload_type: 9,
            sequence: self.sent as u16,
            timestamp: self.timestamp,
            ssrc: 0x722,
            marker: false,
        };
        let mut buf = [0u8; 500];
        let n = write_rtp(&mut buf, &header, payload).unwrap();
        self.socket.send_to(&buf[..n], self.server).unwrap();
        self.sent += 1;
        self.timestamp = self.timestamp.wrapping_add(160);
        let mut datagram = [0u8; 1500];
        while let Ok((n, _)) = self.socket.recv_from(&mut datagram) {
            if let Ok(Datagram::Rtp(packet)) = parse_datagram(&datagram[..n], None) {
                self.payload_types.insert(packet.payload_type);
                self.ssrcs.insert(packet.ssrc);
                if packet.payload_type == 9 {
                    self.received.push(packet.payload.to_vec());
                }
            }
        }
    }

    /// The level of `hz` in the last `seconds` of what it heard.
    fn level(&self, hz: f64, seconds: f64) -> f64 {
        let mut decoder = tutti_codec::decoder_for(CodecKind::G722).unwrap();
        let mut heard = Vec::new();
        let mut out = [0f32; 5760];
        for payload in &self.received {
            let samples = decoder.decode(payload, &mut out).unwrap();
            heard.extend_from_slice(&out[..samples]);
        }
        let tail = &heard[heard.len().saturating_sub((seconds * 48_000.0) as usize)..];
        tutti_e2e::amplitude_at(tail, 48_000, hz)
    }
}

#[test]
fn a_codec_change_swaps_the_coders_and_keeps_the_stream() {
    let (engine, room, mut caller, key, mut other) = room_of_two(36_300..=36_349);
    // The stream's SSRC, as PCMU.
    let mut ssrc = None;
    let start = Instant::now();
    while ssrc.is_none() {
        assert!(start.elapsed() < Duration::from_secs(5), "no media");
        talk_now(&mut [&mut caller, &mut other], 0.1);
        let mut buf = [0u8; 1500];
        caller.socket.set_nonblocking(true).unwrap();
        while let Ok((n, _)) = caller.socket.recv_from(&mut buf) {
            if let Ok(Datagram::Rtp(packet)) = parse_datagram(&buf[..n], None) {
                ssrc = Some(packet.ssrc);
            }
        }
    }

    let g722 = offer_from(
        "127.0.0.1",
        port_of(&caller),
        "9 101",
        "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
    );
    let answer = engine.renegotiate(room, key, &g722).unwrap();
    assert!(answer.contains("a=rtpmap:9 G722/8000\r\n"), "{answer}");
    let mut phone = G722Caller::from(&caller, 300.0);
    let run = |phone: &mut G722Caller, other: &mut Caller, seconds: f64| {
        let start = Instant::now();
        let now = EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64();
        phone.timestamp = (now * 50.0) as u32 * 160;
        other.ts = phone.timestamp;
        for frame in 0..(seconds * 50.0) as u32 {
            phone.exchange();
            other.send_frame();
            other.drain();
            let next = start + Duration::from_millis(u64::from(frame + 1) * 20);
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    };
    run(&mut phone, &mut other, 1.2);
    assert!(
        other.level(300.0, 0.5) > 0.1,
        "G.722 from the caller is heard"
    );
    assert!(
        phone.level(700.0, 0.5) > 0.1,
        "the caller hears the room in G.722"
    );
    assert!(phone.payload_types.contains(&9));
    assert_eq!(
        phone.ssrcs.iter().copied().collect::<Vec<_>>(),
        vec![ssrc.unwrap()],
        "one RTP stream throughout"
    );

    // No codec in common: refused, and the call goes on as it was.
    let gsm = offer_from(
        "127.0.0.1",
        port_of(&caller),
        "3",
        "a=rtpmap:3 GSM/8000\r\n",
    );
    let refused = engine.renegotiate(room, key, &gsm);
    assert!(
        matches!(
            refused,
            Err(EngineError::Sdp(SdpError::NoCommonCodec { .. }))
        ),
        "{refused:?}"
    );
    run(&mut phone, &mut other, 0.8);
    assert!(phone.level(700.0, 0.4) > 0.1);
    assert!(other.level(300.0, 0.4) > 0.1);
}
