//! Talk detection through a room: synthetic bursts give events at the documented frames.

mod common;

use tutti_mix::{MixEvent, ParticipantId, ParticipantSettings, Room, RoomConfig, TalkConfig};

/// Amplitude of a sine whose mean absolute value is `energy` on the 16-bit scale.
fn amplitude_for_energy(energy: f32) -> f32 {
    energy / 32768.0 * std::f32::consts::FRAC_PI_2
}

/// Runs `pattern` (true: a burst frame at `energy`, false: nothing arrives) and returns each
/// event with the tick index it happened on.
fn run(
    room: &mut Room,
    id: ParticipantId,
    pattern: &[bool],
    energy: f32,
) -> Vec<(usize, MixEvent)> {
    let mut events = Vec::new();
    for (tick, &on) in pattern.iter().enumerate() {
        if on {
            let frame = common::sine_frame(300.0, amplitude_for_energy(energy), tick as u64);
            room.push_input(id, &frame).unwrap();
        }
        events.extend(room.tick().events().iter().map(|&e| (tick, e)));
    }
    events
}

fn burst(on: usize, off: usize) -> Vec<bool> {
    let mut pattern = vec![true; on];
    pattern.extend(vec![false; off]);
    pattern
}

#[test]
fn a_burst_starts_after_100_ms_and_stops_800_ms_after_it_ends() {
    let mut room = Room::new(RoomConfig::default());
    let id = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let events = run(&mut room, id, &burst(50, 60), 200.0);
    assert_eq!(
        events,
        vec![
            (4, MixEvent::StartTalking(id)),
            (50 + 40 - 1, MixEvent::StopTalking(id))
        ]
    );
}

#[test]
fn a_loud_onset_starts_at_once() {
    let mut room = Room::new(RoomConfig::default());
    let id = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let events = run(&mut room, id, &burst(3, 0), 1000.0);
    assert_eq!(events, vec![(0, MixEvent::StartTalking(id))]);
}

#[test]
fn bursts_shorter_than_the_attack_never_talk_but_are_still_heard() {
    let mut room = Room::new(RoomConfig::default());
    let id = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let listener = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    // 3 frames on, 3 off, repeated: the pending count never reaches 5.
    let pattern: Vec<bool> = (0..60).map(|i| i % 6 < 3).collect();
    let mut heard_on_frames = 0;
    for (tick, &on) in pattern.iter().enumerate() {
        if on {
            let frame = common::sine_frame(300.0, amplitude_for_energy(200.0), tick as u64);
            room.push_input(id, &frame).unwrap();
        }
        let output = room.tick();
        assert!(
            output.events().is_empty(),
            "tick {tick}: {:?}",
            output.events()
        );
        let heard = output.heard_by(listener).unwrap();
        if on && common::amplitude_at(&heard[..], 300.0) > 0.005 {
            heard_on_frames += 1;
        }
    }
    assert_eq!(heard_on_frames, pattern.iter().filter(|&&on| on).count());
}

#[test]
fn quiet_lines_stay_below_the_threshold_and_out_of_the_mix() {
    let mut room = Room::new(RoomConfig::default());
    let noisy: Vec<_> = (0..50)
        .map(|_| {
            room.add_participant(ParticipantSettings::default())
                .unwrap()
        })
        .collect();
    let listener = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    for tick in 0..20 {
        for &id in &noisy {
            // energy 15 < Kazoo's default 20
            let frame = common::sine_frame(100.0, amplitude_for_energy(15.0), tick);
            room.push_input(id, &frame).unwrap();
        }
        let output = room.tick();
        assert_eq!(output.contributor_count(), 0);
        assert!(output.heard_by(listener).unwrap().is_silent());
        assert!(output.events().is_empty());
    }
    let energy = room.status(noisy[0]).unwrap().current_energy;
    assert!((energy - 15.0).abs() < 0.5, "current_energy {energy}");
}

#[test]
fn muting_a_talker_stops_talking_and_flags_mute_detect() {
    let mut room = Room::new(RoomConfig::default());
    let id = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let events = run(&mut room, id, &burst(10, 0), 200.0);
    assert_eq!(events, vec![(4, MixEvent::StartTalking(id))]);
    room.settings_mut(id).unwrap().speak = false;
    let events = run(&mut room, id, &burst(5, 0), 200.0);
    assert_eq!(
        events,
        vec![
            (0, MixEvent::StopTalking(id)),
            (0, MixEvent::MuteDetect(id))
        ]
    );
    let status = room.status(id).unwrap();
    assert!(status.mute_detect && !status.talking && !status.contributing);
}

#[test]
fn the_energy_level_is_per_participant() {
    let mut room = Room::new(RoomConfig::default());
    let strict = room
        .add_participant(ParticipantSettings {
            energy_level: 300.0,
            ..Default::default()
        })
        .unwrap();
    let lenient = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    for tick in 0..10 {
        let frame = common::sine_frame(300.0, amplitude_for_energy(200.0), tick);
        room.push_input(strict, &frame).unwrap();
        room.push_input(lenient, &frame).unwrap();
        room.tick();
    }
    assert!(!room.status(strict).unwrap().talking);
    assert!(room.status(lenient).unwrap().talking);
}

#[test]
fn hysteresis_is_configurable() {
    let config = RoomConfig {
        talk: TalkConfig {
            attack_frames: 2,
            hangover_frames: 10,
            instant_margin: f32::INFINITY,
        },
        ..Default::default()
    };
    let mut room = Room::new(config);
    let id = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let events = run(&mut room, id, &burst(20, 20), 5000.0);
    assert_eq!(
        events,
        vec![
            (1, MixEvent::StartTalking(id)),
            (29, MixEvent::StopTalking(id))
        ]
    );
}

#[test]
fn the_loudest_k_are_mixed_moderators_first_and_the_set_does_not_flap() {
    let mut room = Room::new(RoomConfig {
        max_contributors: 2,
        ..Default::default()
    });
    let moderator = room
        .add_participant(ParticipantSettings {
            moderator: true,
            ..Default::default()
        })
        .unwrap();
    let loud = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let a = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let b = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let mut changes = 0;
    let mut last = (false, false, false);
    for tick in 0..100u64 {
        room.push_input(
            moderator,
            &common::sine_frame(200.0, amplitude_for_energy(100.0), tick),
        )
        .unwrap();
        room.push_input(
            loud,
            &common::sine_frame(300.0, amplitude_for_energy(3000.0), tick),
        )
        .unwrap();
        // a and b alternate being slightly louder (±1 dB): within the hysteresis.
        let (ea, eb) = if (tick / 3) % 2 == 0 {
            (1000.0, 900.0)
        } else {
            (900.0, 1000.0)
        };
        room.push_input(
            a,
            &common::sine_frame(400.0, amplitude_for_energy(ea), tick),
        )
        .unwrap();
        room.push_input(
            b,
            &common::sine_frame(500.0, amplitude_for_energy(eb), tick),
        )
        .unwrap();
        let output = room.tick();
        assert_eq!(output.contributor_count(), 2);
        let state = (
            room.status(moderator).unwrap().contributing,
            room.status(loud).unwrap().contributing,
            room.status(a).unwrap().contributing,
        );
        assert!(state.0, "the moderator is always mixed");
        if tick > 0 && state != last {
            changes += 1;
        }
        last = state;
        assert!(!room.status(b).unwrap().contributing || !state.2);
    }
    assert!(state_is(last, (true, true, false)));
    assert_eq!(changes, 0, "the contributor set flapped");
}

fn state_is(actual: (bool, bool, bool), expected: (bool, bool, bool)) -> bool {
    actual == expected
}
