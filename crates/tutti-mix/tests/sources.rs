//! Tones and other sources: room-wide or for one listener; default entry and exit tones differ.

mod common;

use tutti_mix::tone::{DEFAULT_ENTRY_TONE, DEFAULT_EXIT_TONE};
use tutti_mix::{
    AudioSource, Frame, MixEvent, ParticipantSettings, Room, RoomConfig, SourceState, SourceTarget,
    ToneGenerator, ToneProgram,
};

fn collect(program: &str) -> Vec<f32> {
    let mut generator = ToneGenerator::new(ToneProgram::parse(program).unwrap());
    let mut out = Vec::new();
    let mut frame = Frame::silent();
    loop {
        let state = generator.render(&mut frame);
        out.extend_from_slice(&frame[..]);
        if state == SourceState::Finished {
            return out;
        }
    }
}

#[test]
fn default_entry_and_exit_tones_sound_different() {
    let entry = collect(DEFAULT_ENTRY_TONE);
    let exit = collect(DEFAULT_EXIT_TONE);
    assert_eq!(entry.len(), 10 * 960);
    assert_eq!(exit.len(), 25 * 960);
    let high = |s: &[f32]| {
        [500.0, 600.0, 700.0]
            .iter()
            .map(|&hz| common::amplitude_at(s, hz))
            .sum::<f64>()
    };
    let low = |s: &[f32]| {
        [100.0, 200.0, 300.0]
            .iter()
            .map(|&hz| common::amplitude_at(s, hz))
            .sum::<f64>()
    };
    assert!(high(&entry) > 10.0 * low(&entry));
    assert!(low(&exit) > 10.0 * high(&exit));
}

#[test]
fn a_room_tone_reaches_every_hearing_listener_and_the_recording() {
    let mut room = Room::new(RoomConfig::default());
    let talker = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let listener = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let deaf = room
        .add_participant(ParticipantSettings {
            hear: false,
            ..Default::default()
        })
        .unwrap();
    let tone = ToneProgram::parse("%(100,0,1000)").unwrap();
    let id = room
        .add_source(
            Box::new(ToneGenerator::new(tone.clone())),
            SourceTarget::Room,
        )
        .unwrap();
    let mut reference = ToneGenerator::new(tone);
    let mut expected = Frame::silent();
    let mut finished_at = None;
    for tick in 0..5 {
        room.push_input(talker, &common::sine_frame(400.0, 0.3, tick))
            .unwrap();
        let output = room.tick();
        // The talker hears the tone and nothing of itself: exactly what the tone renders alone.
        reference.render(&mut expected);
        let talker_hears = output.heard_by(talker).unwrap();
        for (&h, &e) in talker_hears.iter().zip(expected.iter()) {
            assert!(
                (h - e).abs() < 1e-6,
                "tick {tick}: heard {h}, tone alone {e}"
            );
        }
        assert!(
            common::amplitude_at(&talker_hears[..], 1000.0) > 0.2,
            "contributors hear room tones"
        );
        let listener_hears = output.heard_by(listener).unwrap();
        assert!(common::amplitude_at(&listener_hears[..], 1000.0) > 0.2);
        assert!(common::amplitude_at(&listener_hears[..], 400.0) > 0.2);
        assert!(common::amplitude_at(&output.room_mix()[..], 1000.0) > 0.2);
        assert!(output.heard_by(deaf).is_none());
        if output.events().contains(&MixEvent::SourceFinished(id)) {
            finished_at = Some(tick);
        }
    }
    assert_eq!(finished_at, Some(4));
    assert!(room.source_finished(id).unwrap());
    room.remove_source(id).unwrap();
    assert_eq!(room.source_count(), 0);
}

#[test]
fn a_listener_tone_is_heard_by_that_listener_only() {
    let mut room = Room::new(RoomConfig::default());
    let talker = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let prompted = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let other = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let tone = ToneProgram::parse("%(200,0,1000)").unwrap();
    room.add_source(
        Box::new(ToneGenerator::new(tone)),
        SourceTarget::Listener(prompted),
    )
    .unwrap();
    for tick in 0..5 {
        room.push_input(talker, &common::sine_frame(400.0, 0.3, tick))
            .unwrap();
        let output = room.tick();
        let prompted_hears = output.heard_by(prompted).unwrap();
        assert!(common::amplitude_at(&prompted_hears[..], 1000.0) > 0.2);
        assert!(
            common::amplitude_at(&prompted_hears[..], 400.0) > 0.2,
            "and still the room"
        );
        for id in [talker, other] {
            assert!(common::amplitude_at(&output.heard_by(id).unwrap()[..], 1000.0) < 1e-3);
        }
        assert!(
            common::amplitude_at(&output.room_mix()[..], 1000.0) < 1e-3,
            "not recorded"
        );
        // talker: own buffer; prompted: own buffer; other: the shared room mix
        assert_eq!(output.group_count(), 3);
    }
}

#[test]
fn a_deaf_listener_hears_its_own_prompt_and_nothing_of_the_room() {
    let mut room = Room::new(RoomConfig::default());
    let talker = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    // Deaf and talking: a contributor whose buffer first holds its own voice.
    let deaf_talker = room
        .add_participant(ParticipantSettings {
            hear: false,
            ..Default::default()
        })
        .unwrap();
    let deaf = room
        .add_participant(ParticipantSettings {
            hear: false,
            output_volume: 0.5,
            ..Default::default()
        })
        .unwrap();
    let listener = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let tone = ToneProgram::parse("%(100,0,1000)").unwrap();
    let prompt_a = room
        .add_source(
            Box::new(ToneGenerator::new(tone.clone())),
            SourceTarget::Listener(deaf_talker),
        )
        .unwrap();
    room.add_source(
        Box::new(ToneGenerator::new(tone.clone())),
        SourceTarget::Listener(deaf),
    )
    .unwrap();
    let mut reference = ToneGenerator::new(tone);
    let mut expected = Frame::silent();
    let mut finished = false;
    for tick in 0..8 {
        room.push_input(talker, &common::sine_frame(400.0, 0.3, tick))
            .unwrap();
        room.push_input(deaf_talker, &common::sine_frame(700.0, 0.3, tick))
            .unwrap();
        let playing = reference.render(&mut expected) == SourceState::Playing || tick == 4;
        let output = room.tick();
        if tick < 5 {
            assert!(playing);
            // Exactly the prompt: no room, no own voice.
            let heard = output.heard_by(deaf_talker).unwrap();
            for (&h, &e) in heard.iter().zip(expected.iter()) {
                assert!((h - e).abs() < 1e-6, "tick {tick}: heard {h}, prompt {e}");
            }
            let heard = output.heard_by(deaf).unwrap();
            for (&h, &e) in heard.iter().zip(expected.iter()) {
                assert!(
                    (h - 0.5 * e).abs() < 1e-6,
                    "tick {tick}: heard {h}, prompt {e}"
                );
            }
            let prompt = common::amplitude_at(&heard[..], 1000.0);
            assert!(prompt > 0.1, "the prompt at half volume: {prompt}");
            assert!(output.groups().any(|g| g.listeners == [deaf] && !g.silent));
        } else {
            assert!(output.heard_by(deaf_talker).is_none(), "deaf again");
            assert!(output.heard_by(deaf).is_none());
        }
        finished |= output
            .events()
            .contains(&MixEvent::SourceFinished(prompt_a));
        // The deaf talker is still heard, and nobody else hears the prompts.
        let heard = output.heard_by(listener).unwrap();
        assert!(common::amplitude_at(&heard[..], 700.0) > 0.2);
        assert!(common::amplitude_at(&heard[..], 1000.0) < 1e-3);
        assert!(common::amplitude_at(&output.room_mix()[..], 1000.0) < 1e-3);
    }
    assert!(finished);
}

#[test]
fn a_listener_source_ends_when_its_listener_leaves() {
    let mut room = Room::new(RoomConfig::default());
    let listener = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let tone = ToneProgram::parse("%(100,0,440);loops=-1").unwrap();
    let id = room
        .add_source(
            Box::new(ToneGenerator::new(tone)),
            SourceTarget::Listener(listener),
        )
        .unwrap();
    room.tick();
    room.remove_participant(listener).unwrap();
    let output = room.tick();
    assert_eq!(output.events(), &[MixEvent::SourceFinished(id)]);
}

#[test]
fn stale_ids_are_refused() {
    let mut room = Room::new(RoomConfig::default());
    let gone = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    room.remove_participant(gone).unwrap();
    let reused = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    assert_eq!(gone.index(), reused.index());
    assert!(room.input_mut(gone).is_err());
    assert!(room.remove_participant(gone).is_err());
    assert!(room.tick().heard_by(gone).is_none());
    assert!(room
        .add_source(
            Box::new(ToneGenerator::new(ToneProgram::default_entry())),
            SourceTarget::Listener(gone)
        )
        .is_err());
}
