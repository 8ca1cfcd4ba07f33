//! The engine with callers on real UDP sockets (written with tutti's own RTP and G.711, for a
//! fast check; the GStreamer tests in tests/ use independent callers): who hears whom, mute,
//! deaf, entry tones, latching against a stranger, DTMF, locking and RTP timeouts.

use std::time::{Duration, Instant};

use tutti_engine::{
    Engine, EngineConfig, EngineEvent, JoinRequest, LeaveReason, ParticipantChange, RoomId,
    RoomSettings,
};
use tutti_mix::{ParticipantSettings, ToneProgram};
use tutti_rtp::dtmf::TelephoneEvent;

mod common;

use common::{engine, join, talk, wait_for, Caller};

#[test]
fn callers_hear_each_other_not_themselves_and_mute_deaf_work() {
    let engine = engine(31_000..=31_099);
    let room = RoomId(1);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut a = Caller::new(400.0);
    let mut b = Caller::new(1000.0);
    let mut c = Caller::new(0.0);
    let ka = join(&engine, room, &mut a, ParticipantSettings::default());
    let kb = join(&engine, room, &mut b, ParticipantSettings::default());
    let kc = join(&engine, room, &mut c, ParticipantSettings::default());
    talk(&mut [&mut a, &mut b, &mut c], 1.5);
    assert!(
        a.level(1000.0, 0.5) > 0.1 && a.level(400.0, 0.5) < 0.01,
        "a hears b only"
    );
    assert!(
        b.level(400.0, 0.5) > 0.1 && b.level(1000.0, 0.5) < 0.01,
        "b hears a only"
    );
    assert!(
        c.level(400.0, 0.5) > 0.1 && c.level(1000.0, 0.5) > 0.1,
        "c hears both"
    );
    wait_for(
        &engine,
        |e| matches!(e, EngineEvent::StartTalking { participant, .. } if *participant == ka),
    );

    engine
        .update(room, ka, ParticipantChange::Speak(false))
        .unwrap();
    engine
        .update(room, kc, ParticipantChange::Hear(false))
        .unwrap();
    talk(&mut [&mut a, &mut b, &mut c], 1.0);
    assert!(b.level(400.0, 0.5) < 0.01, "a is muted");
    assert!(
        c.level(1000.0, 0.5) < 0.01 && c.level(400.0, 0.5) < 0.01,
        "c is deaf"
    );
    let snapshot = engine.snapshot(room).unwrap();
    let a_state = snapshot.participants.iter().find(|p| p.key == ka).unwrap();
    assert!(!a_state.speak && a_state.mute_detect && !a_state.talking);
    assert!(
        a_state.counters.packets_in > 100 && a_state.counters.packets_out > 100,
        "{:?}",
        a_state.counters
    );
    let _ = kb;
}

#[test]
fn an_entry_tone_is_heard_when_someone_joins() {
    let engine = engine(31_100..=31_199);
    let room = RoomId(2);
    let settings = RoomSettings {
        entry_sound: Some(ToneProgram::parse("%(300,0,600)").unwrap().into()),
        ..Default::default()
    };
    engine.create_room(room, settings).unwrap();
    let mut a = Caller::new(0.0);
    join(&engine, room, &mut a, ParticipantSettings::default());
    talk(&mut [&mut a], 0.6);
    let mut b = Caller::new(0.0);
    join(&engine, room, &mut b, ParticipantSettings::default());
    talk(&mut [&mut a, &mut b], 0.3);
    assert!(a.level(600.0, 0.3) > 0.05, "the entry tone reaches a");
}

#[test]
fn a_stranger_cannot_take_over_a_latched_call() {
    let engine = engine(31_200..=31_299);
    let room = RoomId(3);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut a = Caller::new(400.0);
    let mut b = Caller::new(0.0);
    let ka = join(&engine, room, &mut a, ParticipantSettings::default());
    join(&engine, room, &mut b, ParticipantSettings::default());
    talk(&mut [&mut a, &mut b], 0.5);
    // The stranger sends a loud 1 kHz stream to a's port from another socket.
    let mut stranger = Caller::new(1000.0);
    stranger.server = a.server;
    talk(&mut [&mut a, &mut b, &mut stranger], 1.0);
    assert!(
        b.level(1000.0, 0.5) < 0.01,
        "the stranger's audio must not be mixed"
    );
    assert!(b.level(400.0, 0.5) > 0.1, "a still talks");
    assert!(stranger.heard.is_empty(), "nothing is sent to the stranger");
    let snapshot = engine.snapshot(room).unwrap();
    let state = snapshot.participants.iter().find(|p| p.key == ka).unwrap();
    assert!(state.counters.foreign_source >= 40, "{:?}", state.counters);
}

#[test]
fn dtmf_lock_full_and_timeout() {
    let engine = Engine::start(EngineConfig {
        mixer_threads: 1,
        ports: 31_300..=31_399,
        rtp_timeout: Duration::from_millis(600),
        ..Default::default()
    })
    .unwrap();
    let room = RoomId(4);
    engine
        .create_room(
            room,
            RoomSettings {
                max_participants: 2,
                ..Default::default()
            },
        )
        .unwrap();
    let mut a = Caller::new(0.0);
    let ka = join(&engine, room, &mut a, ParticipantSettings::default());
    talk(&mut [&mut a], 0.2);
    // Digit 7 for 100 ms, with three end packets.
    for (i, end) in [
        (1u16, false),
        (2, false),
        (3, false),
        (4, false),
        (5, true),
        (5, true),
        (5, true),
    ] {
        let event = TelephoneEvent {
            event: 7,
            end,
            volume: 10,
            duration: i * 160,
        };
        a.send(101, &event.to_bytes());
    }
    let digit = wait_for(&engine, |e| matches!(e, EngineEvent::Dtmf { .. }));
    assert_eq!(
        digit,
        EngineEvent::Dtmf {
            room,
            participant: ka,
            digit: '7',
            duration: Duration::from_millis(100)
        }
    );

    let mut b = Caller::new(0.0);
    join(&engine, room, &mut b, ParticipantSettings::default());
    let mut c = Caller::new(0.0);
    let full = engine.join(
        room,
        JoinRequest {
            offer: c.offer(),
            settings: ParticipantSettings::default(),
            latching: None,
            signalled_source: None,
            port: None,
            relay: None,
        },
    );
    assert!(matches!(
        full,
        Err(tutti_engine::EngineError::RoomFull { max: 2, .. })
    ));
    engine.set_locked(room, true).unwrap();
    engine.leave(room, ka).unwrap();
    wait_for(&engine, |e| {
        matches!(
            e,
            EngineEvent::Left {
                reason: LeaveReason::Kicked,
                ..
            }
        )
    });
    let locked = engine.join(
        room,
        JoinRequest {
            offer: c.offer(),
            settings: ParticipantSettings::default(),
            latching: None,
            signalled_source: None,
            port: None,
            relay: None,
        },
    );
    assert!(matches!(
        locked,
        Err(tutti_engine::EngineError::RoomLocked(_))
    ));
    // b never sends: it times out.
    let left = wait_for(&engine, |e| {
        matches!(
            e,
            EngineEvent::Left {
                reason: LeaveReason::RtpTimeout,
                ..
            }
        )
    });
    assert!(matches!(left, EngineEvent::Left { .. }));
    let _ = &mut c;
}

#[test]
fn ticks_keep_to_the_20_ms_schedule_without_drift() {
    let engine = Engine::start(EngineConfig {
        mixer_threads: 1,
        ports: 31_400..=31_499,
        ..Default::default()
    })
    .unwrap();
    engine
        .create_room(RoomId(5), RoomSettings::default())
        .unwrap();
    let ticks = |engine: &Engine| engine.metrics().tick_duration[0].count;
    std::thread::sleep(Duration::from_millis(200));
    let (start, first) = (Instant::now(), ticks(&engine));
    std::thread::sleep(Duration::from_secs(3));
    let (elapsed, last) = (start.elapsed(), ticks(&engine));
    let expected = elapsed.as_secs_f64() * 50.0;
    let counted = (last - first) as f64;
    assert!(
        (counted - expected).abs() <= 2.0,
        "{counted} ticks in {elapsed:?}, expected {expected:.1}"
    );
    let lateness = &engine.metrics().lateness[0];
    let median_bucket = lateness
        .buckets
        .iter()
        .scan(0, |acc, &b| {
            *acc += b;
            Some(*acc)
        })
        .position(|acc| acc * 2 >= lateness.count)
        .unwrap();
    assert!(
        tutti_engine::histogram::BUCKET_BOUNDS_US[median_bucket] <= 2_000,
        "half the ticks start within 2 ms of their deadline: {lateness:?}"
    );
}

#[test]
fn the_room_mix_is_recorded_to_wav() {
    let engine = engine(31_500..=31_599);
    let room = RoomId(6);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut a = Caller::new(400.0);
    let mut b = Caller::new(1000.0);
    join(&engine, room, &mut a, ParticipantSettings::default());
    join(&engine, room, &mut b, ParticipantSettings::default());
    let path = std::env::temp_dir().join(format!("tutti-recording-{}.wav", std::process::id()));
    engine
        .start_recording(room, path.clone(), Some(Duration::from_secs(1)))
        .unwrap();
    talk(&mut [&mut a, &mut b], 1.5);
    let finished = wait_for(&engine, |e| {
        matches!(e, EngineEvent::RecordingFinished { .. })
    });
    assert_eq!(
        finished,
        EngineEvent::RecordingFinished {
            room,
            path: path.clone(),
            duration: Duration::from_secs(1)
        }
    );
    let (samples, rate) = tutti_e2e::read_wav(&path);
    assert_eq!(
        (samples.len(), rate),
        (48_000, 48_000),
        "capped at one second"
    );
    let tail = &samples[24_000..];
    assert!(
        tutti_e2e::amplitude_at(tail, rate, 400.0) > 0.1
            && tutti_e2e::amplitude_at(tail, rate, 1000.0) > 0.1
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn packet_totals_keep_those_who_left_and_rooms_that_ended() {
    let engine = engine(33_600..=33_649);
    let (first, second) = (RoomId(60), RoomId(61));
    engine.create_room(first, RoomSettings::default()).unwrap();
    engine.create_room(second, RoomSettings::default()).unwrap();
    let mut a = Caller::new(400.0);
    let mut b = Caller::new(0.0);
    let mut c = Caller::new(600.0);
    let ka = join(&engine, first, &mut a, ParticipantSettings::default());
    join(&engine, first, &mut b, ParticipantSettings::default());
    join(&engine, second, &mut c, ParticipantSettings::default());
    talk(&mut [&mut a, &mut b, &mut c], 0.5);
    let mut rooms = engine.metrics().room_participants;
    rooms.sort();
    assert_eq!(rooms, [(first, 2), (second, 1)]);
    let totals = |engine: &Engine| {
        let m = engine.metrics();
        (m.packets_in, m.packets_out, m.packets_lost)
    };
    let before = totals(&engine);
    assert!(before.0 >= 60 && before.1 > 0, "{before:?}");

    engine.leave(first, ka).unwrap();
    wait_for(
        &engine,
        |e| matches!(e, EngineEvent::Left { participant, .. } if *participant == ka),
    );
    let after_leave = totals(&engine);
    engine.destroy_room(second).unwrap();
    let after_end = totals(&engine);
    for later in [after_leave, after_end] {
        assert!(
            later.0 >= before.0 && later.1 >= before.1 && later.2 >= before.2,
            "{before:?} then {later:?}"
        );
    }
    // The room's snapshot follows within a tick or two.
    let deadline = Instant::now() + Duration::from_secs(5);
    while engine.metrics().room_participants != [(first, 1)] {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            engine.metrics().room_participants
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
