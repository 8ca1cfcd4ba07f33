//! The engine's control commands with callers on real UDP sockets: relations, bulk leave,
//! room settings changed while the room runs, prompts (WAV, Ogg Opus) that report their
//! duration and reach deaf listeners.

mod common;

use std::time::Duration;

use common::{engine, join, talk, wait_for, Caller};
use tutti_engine::{
    EngineError, EngineEvent, LeaveReason, ParticipantChange, RoomId, RoomSettings, RoomSound,
};
use tutti_mix::{MixError, ParticipantSettings, ToneProgram};

const ON: f64 = 0.1;
const OFF: f64 = 0.01;

#[test]
fn relate_keeps_one_speaker_from_one_listener() {
    let engine = engine(31_600..=31_649);
    let room = RoomId(0x60);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut a = Caller::new(400.0);
    let mut b = Caller::new(1000.0);
    let mut c = Caller::new(0.0);
    let ka = join(&engine, room, &mut a, ParticipantSettings::default());
    let kb = join(&engine, room, &mut b, ParticipantSettings::default());
    let kc = join(&engine, room, &mut c, ParticipantSettings::default());

    engine.relate(room, kc, ka, false).unwrap();
    talk(&mut [&mut a, &mut b, &mut c], 1.0);
    assert!(
        c.level(400.0, 0.5) < OFF && c.level(1000.0, 0.5) > ON,
        "c hears b, not a"
    );
    assert!(b.level(400.0, 0.5) > ON, "b still hears a");

    engine.relate(room, kc, ka, true).unwrap();
    talk(&mut [&mut a, &mut b, &mut c], 0.6);
    assert!(
        c.level(400.0, 0.3) > ON && c.level(1000.0, 0.3) > ON,
        "cleared: c hears both"
    );

    assert!(matches!(
        engine.relate(room, kc, 999, false),
        Err(EngineError::UnknownParticipant {
            participant: 999,
            ..
        })
    ));
    assert!(matches!(
        engine.relate(room, kc, kc, false),
        Err(EngineError::Mix(MixError::SelfRelation))
    ));
    assert!(matches!(
        engine.relate(RoomId(0x61), kc, ka, false),
        Err(EngineError::UnknownRoom(_))
    ));
    let _ = kb;
}

#[test]
fn leave_many_removes_everyone_at_once_with_one_exit_tone() {
    let engine = engine(31_650..=31_699);
    let room = RoomId(0x62);
    let settings = RoomSettings {
        exit_sound: Some(ToneProgram::parse("%(400,0,600)").unwrap().into()),
        ..Default::default()
    };
    engine.create_room(room, settings).unwrap();
    let mut stay = Caller::new(0.0);
    join(&engine, room, &mut stay, ParticipantSettings::default());
    let mut callers: Vec<Caller> = (0..4).map(|_| Caller::new(0.0)).collect();
    let keys: Vec<u32> = callers
        .iter_mut()
        .map(|c| join(&engine, room, c, ParticipantSettings::default()))
        .collect();
    talk(&mut [&mut stay], 0.3);

    // One leaves: the exit tone's level for one departure.
    engine.leave(room, keys[0]).unwrap();
    talk(&mut [&mut stay], 0.5);
    let one = stay.level(600.0, 0.5);
    assert!(one > 0.05, "the exit tone plays: {one}");

    // Three leave in one command: gone by the time it returns, one exit tone.
    engine.leave_many(room, &keys[1..]).unwrap();
    let snapshot = engine.snapshot(room).unwrap();
    assert_eq!(snapshot.participants.len(), 1, "read your writes");
    let mut left = Vec::new();
    while left.len() < 3 {
        if let EngineEvent::Left {
            participant,
            reason: LeaveReason::Kicked,
            ..
        } = wait_for(&engine, |e| matches!(e, EngineEvent::Left { .. }))
        {
            if participant != keys[0] {
                left.push(participant);
            }
        }
    }
    left.sort_unstable();
    assert_eq!(left, keys[1..]);
    talk(&mut [&mut stay], 0.5);
    let three = stay.level(600.0, 0.5);
    assert!(
        (three / one - 1.0).abs() < 0.3,
        "one tone for three departures: {three} vs {one}"
    );
    engine.leave_many(room, &[]).unwrap();
    engine.leave_many(room, &[12345]).unwrap();
    assert!(matches!(
        engine.leave_many(RoomId(0x63), &[1]),
        Err(EngineError::UnknownRoom(_))
    ));
}

#[test]
fn room_settings_change_while_the_room_runs_and_keep_the_lock() {
    let engine = engine(31_700..=31_749);
    let room = RoomId(0x64);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut a = Caller::new(0.0);
    join(&engine, room, &mut a, ParticipantSettings::default());
    engine.set_locked(room, true).unwrap();
    engine
        .set_room_settings(
            room,
            RoomSettings {
                max_participants: 3,
                entry_sound: Some(ToneProgram::parse("%(300,0,700)").unwrap().into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(engine.snapshot(room).unwrap().locked, "still locked");
    let mut b = Caller::new(0.0);
    let refused = engine.join(
        room,
        tutti_engine::JoinRequest {
            offer: b.offer(),
            settings: ParticipantSettings::default(),
            latching: None,
            signalled_source: None,
            port: None,
            relay: None,
        },
    );
    assert!(matches!(refused, Err(EngineError::RoomLocked(_))));
    engine.set_locked(room, false).unwrap();

    talk(&mut [&mut a], 0.2);
    join(&engine, room, &mut b, ParticipantSettings::default());
    talk(&mut [&mut a, &mut b], 0.3);
    assert!(a.level(700.0, 0.3) > 0.05, "the new entry tone plays");
    let mut c = Caller::new(0.0);
    join(&engine, room, &mut c, ParticipantSettings::default());
    let mut d = Caller::new(0.0);
    let full = engine.join(
        room,
        tutti_engine::JoinRequest {
            offer: d.offer(),
            settings: ParticipantSettings::default(),
            latching: None,
            signalled_source: None,
            port: None,
            relay: None,
        },
    );
    assert!(matches!(full, Err(EngineError::RoomFull { max: 3, .. })));
    d.drain();
}

#[test]
fn prompts_report_their_duration_and_reach_deaf_listeners() {
    let engine = engine(31_750..=31_799);
    let room = RoomId(0x65);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut talker = Caller::new(400.0);
    let mut deaf = Caller::new(0.0);
    join(&engine, room, &mut talker, ParticipantSettings::default());
    let kd = join(&engine, room, &mut deaf, ParticipantSettings::default());
    engine
        .update(room, kd, ParticipantChange::Hear(false))
        .unwrap();

    // A 0.6 s, 800 Hz WAV prompt at 16 kHz, played to the deaf participant alone.
    let path = std::env::temp_dir().join(format!("tutti-prompt-{}.wav", std::process::id()));
    let rate = 16_000u32;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..(rate * 6 / 10) {
        let t = f64::from(i) / f64::from(rate);
        let s = 0.3 * (2.0 * std::f64::consts::PI * 800.0 * t).sin();
        writer.write_sample((s * 32767.0) as i16).unwrap();
    }
    writer.finalize().unwrap();

    talk(&mut [&mut talker, &mut deaf], 0.4);
    assert!(deaf.level(400.0, 0.3) < OFF, "deaf to the room");
    let duration = engine.play_wav(room, Some(kd), &path).unwrap();
    assert_eq!(duration, Duration::from_millis(600));
    talk(&mut [&mut talker, &mut deaf], 0.5);
    assert!(
        deaf.level(800.0, 0.4) > ON,
        "the prompt reaches the deaf one"
    );
    assert!(deaf.level(400.0, 0.4) < OFF, "and nothing of the room");
    assert!(talker.level(800.0, 0.4) < OFF, "nobody else hears it");
    let _ = std::fs::remove_file(&path);

    assert_eq!(
        engine
            .play_tone(room, Some(kd), "%(200,100,440);loops=2")
            .unwrap(),
        Duration::from_millis(600)
    );
    assert_eq!(
        engine
            .play_tone(room, None, "%(100,100,440);loops=-1")
            .unwrap(),
        Duration::MAX,
        "an endless tone never ends"
    );
    assert_eq!(
        RoomSound::from(ToneProgram::parse("%(100,0,440)").unwrap()).duration(),
        Duration::from_millis(100)
    );
}

#[test]
fn an_ogg_opus_prompt_plays_to_the_room_for_its_duration() {
    let engine = engine(31_800..=31_849);
    let room = RoomId(0x66);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut a = Caller::new(0.0);
    join(&engine, room, &mut a, ParticipantSettings::default());
    talk(&mut [&mut a], 0.2);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tone-1000hz-mono.opus");
    let duration = engine.play_file(room, None, &path).unwrap();
    assert_eq!(duration, Duration::from_secs(1));
    talk(&mut [&mut a], 0.6);
    assert!(a.level(1000.0, 0.4) > 0.3, "the prompt's tone");
    talk(&mut [&mut a], 0.8);
    assert!(a.level(1000.0, 0.3) < OFF, "and silence after its second");
}
