//! `Room::set_hears`, FreeSWITCH's `relate A B nohear|nospeak|clear`: a listener stops
//! hearing one speaker and keeps hearing everyone else; the relation ends with either
//! participant; a room without relations mixes exactly as before.

mod common;

use tutti_mix::{Frame, MixError, ParticipantId, ParticipantSettings, Room, RoomConfig};

const A_HZ: f64 = 400.0;
const B_HZ: f64 = 1000.0;
const C_HZ: f64 = 1600.0;

fn room_of(n: usize) -> (Room, Vec<ParticipantId>) {
    let mut room = Room::new(RoomConfig::default());
    let ids = (0..n)
        .map(|_| {
            room.add_participant(ParticipantSettings::default())
                .unwrap()
        })
        .collect();
    (room, ids)
}

/// Amplitudes of the three talkers' tones in `heard`.
fn levels(heard: &Frame) -> [f64; 3] {
    [A_HZ, B_HZ, C_HZ].map(|hz| common::amplitude_at(&heard[..], hz))
}

const ON: f64 = 0.2;
const OFF: f64 = 1e-3;

#[test]
fn a_listener_stops_hearing_one_speaker_and_keeps_the_others() {
    // a, b and c talk; d listens; d does not hear a, and c does not hear b.
    let (mut room, ids) = room_of(4);
    let [a, b, c, d] = [ids[0], ids[1], ids[2], ids[3]];
    room.set_hears(d, a, false).unwrap();
    room.set_hears(c, b, false).unwrap();
    assert!(!room.hears(d, a).unwrap() && room.hears(a, d).unwrap());
    assert_eq!(room.relation_count(), 2);
    for tick in 0..10 {
        room.push_input(a, &common::sine_frame(A_HZ, 0.3, tick))
            .unwrap();
        room.push_input(b, &common::sine_frame(B_HZ, 0.3, tick))
            .unwrap();
        room.push_input(c, &common::sine_frame(C_HZ, 0.3, tick))
            .unwrap();
        let output = room.tick();
        let [da, db, dc] = levels(output.heard_by(d).unwrap());
        assert!(da < OFF && db > ON && dc > ON, "d: {da} {db} {dc}");
        let [ca, cb, cc] = levels(output.heard_by(c).unwrap());
        assert!(ca > ON && cb < OFF && cc < OFF, "c: {ca} {cb} {cc}");
        let [aa, ab, ac] = levels(output.heard_by(a).unwrap());
        assert!(
            aa < OFF && ab > ON && ac > ON,
            "a is unaffected: {aa} {ab} {ac}"
        );
        let [ba, bb, bc] = levels(output.heard_by(b).unwrap());
        assert!(
            ba > ON && bb < OFF && bc > ON,
            "b still speaks to a and d: {ba} {bb} {bc}"
        );
        // The recording holds everyone.
        let [ra, rb, rc] = levels(output.room_mix());
        assert!(ra > ON && rb > ON && rc > ON);
        // a, b, c each their own mix; d its own: nobody shares the room mix.
        assert_eq!(output.group_count(), 4);
    }
}

#[test]
fn clearing_a_relation_restores_the_speaker() {
    let (mut room, ids) = room_of(2);
    let [a, d] = [ids[0], ids[1]];
    room.set_hears(d, a, false).unwrap();
    room.set_hears(d, a, false).unwrap(); // twice is once
    assert_eq!(room.relation_count(), 1);
    room.push_input(a, &common::sine_frame(A_HZ, 0.3, 0))
        .unwrap();
    let output = room.tick();
    let heard = output.heard_by(d).unwrap();
    assert!(heard.is_silent(), "nothing else to hear");
    assert!(output.groups().any(|g| g.silent && g.listeners == [d]));

    room.set_hears(d, a, true).unwrap();
    room.set_hears(d, a, true).unwrap();
    assert_eq!(room.relation_count(), 0);
    room.push_input(a, &common::sine_frame(A_HZ, 0.3, 1))
        .unwrap();
    let output = room.tick();
    assert!(common::amplitude_at(&output.heard_by(d).unwrap()[..], A_HZ) > ON);
}

#[test]
fn a_relation_costs_nothing_while_the_excluded_speaker_is_quiet() {
    let (mut room, ids) = room_of(5);
    room.set_hears(ids[4], ids[0], false).unwrap();
    room.set_hears(ids[3], ids[0], false).unwrap();
    for tick in 0..5 {
        // Only b talks: everyone who does not talk shares the room mix, relations or not.
        room.push_input(ids[1], &common::sine_frame(B_HZ, 0.3, tick))
            .unwrap();
        let output = room.tick();
        assert_eq!(output.group_count(), 2);
        let shared = output.heard_by(ids[2]).unwrap();
        for listener in [ids[3], ids[4]] {
            assert!(std::ptr::eq(output.heard_by(listener).unwrap(), shared));
        }
        assert!(common::amplitude_at(&shared[..], B_HZ) > ON);
    }
}

#[test]
fn relations_leave_with_either_participant_and_stale_ids_are_refused() {
    let (mut room, ids) = room_of(3);
    let [a, b, d] = [ids[0], ids[1], ids[2]];
    room.set_hears(d, a, false).unwrap();
    room.set_hears(a, d, false).unwrap();
    room.set_hears(b, d, false).unwrap();
    assert_eq!(room.relation_count(), 3);
    assert!(!room.remove_participant(a).unwrap().talking);
    assert_eq!(
        room.relation_count(),
        1,
        "d's and a's relations went with a"
    );
    assert_eq!(
        room.set_hears(d, a, false),
        Err(MixError::UnknownParticipant)
    );
    assert_eq!(
        room.set_hears(a, d, true),
        Err(MixError::UnknownParticipant)
    );
    assert_eq!(room.hears(d, a), Err(MixError::UnknownParticipant));
    assert_eq!(room.set_hears(d, d, false), Err(MixError::SelfRelation));

    // A newcomer in a's old slot is heard by d: the relation did not outlive a.
    let newcomer = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    assert_eq!(newcomer.index(), a.index());
    assert!(room.hears(d, newcomer).unwrap());
    room.push_input(newcomer, &common::sine_frame(A_HZ, 0.3, 0))
        .unwrap();
    let output = room.tick();
    assert!(common::amplitude_at(&output.heard_by(d).unwrap()[..], A_HZ) > ON);

    // The listener leaving takes its relations too.
    room.remove_participant(b).unwrap();
    assert_eq!(room.relation_count(), 0);
    room.set_hears(d, newcomer, false).unwrap();
    assert_eq!(room.clear_relations(newcomer), Ok(1));
    assert_eq!(room.relation_count(), 0);
}

#[test]
fn a_related_listener_keeps_its_volume_and_private_sources_and_deaf_ones_hear_nothing() {
    use tutti_mix::{SourceTarget, ToneGenerator, ToneProgram};
    let mut room = Room::new(RoomConfig::default());
    let a = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let b = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let quiet = room
        .add_participant(ParticipantSettings {
            output_volume: 0.5,
            ..Default::default()
        })
        .unwrap();
    let deaf = room
        .add_participant(ParticipantSettings {
            hear: false,
            ..Default::default()
        })
        .unwrap();
    room.set_hears(quiet, a, false).unwrap();
    room.set_hears(deaf, a, false).unwrap();
    let tone = ToneProgram::parse("%(200,0,2400)").unwrap();
    room.add_source(
        Box::new(ToneGenerator::new(tone)),
        SourceTarget::Listener(quiet),
    )
    .unwrap();
    for tick in 0..5 {
        room.push_input(a, &common::sine_frame(A_HZ, 0.3, tick))
            .unwrap();
        room.push_input(b, &common::sine_frame(B_HZ, 0.4, tick))
            .unwrap();
        let output = room.tick();
        let heard = output.heard_by(quiet).unwrap();
        let a_level = common::amplitude_at(&heard[..], A_HZ);
        // a alone would be 0.15 here; the prompt's onset leaks ~0.001 into every bin.
        assert!(a_level < 0.01, "tick {tick}: a leaks at {a_level}");
        let b_level = common::amplitude_at(&heard[..], B_HZ);
        assert!((b_level - 0.2).abs() < 0.02, "b at half volume: {b_level}");
        assert!(
            common::amplitude_at(&heard[..], 2400.0) > 0.05,
            "its prompt"
        );
        assert!(output.heard_by(deaf).is_none());
    }
}
