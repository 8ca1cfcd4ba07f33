//! For random rooms, what every listener hears equals a naive O(N²) reference mix (each
//! listener's sum of everyone else it hears, relations included, plus what is played to it
//! alone, deaf or not), put through the same limiter.

mod common;

use proptest::prelude::*;
use tutti_mix::{
    kernels::clean, AudioSource, Frame, Limiter, MixError, ParticipantSettings, Room, RoomConfig,
    SourceState, SourceTarget,
};

#[derive(Clone, Debug)]
struct Caller {
    settings: ParticipantSettings,
    /// None: nothing arrived this tick.
    input: Option<Vec<f32>>,
    /// A prompt played to this caller alone.
    prompt: Option<Vec<f32>>,
}

/// A source that plays the same frame forever.
struct Constant(Frame);

impl AudioSource for Constant {
    fn render(&mut self, out: &mut Frame) -> SourceState {
        out.clone_from(&self.0);
        SourceState::Playing
    }
}

fn sample() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -1.2f32..1.2,
        1 => Just(0.0f32),
        1 => prop::sample::select(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30]),
    ]
}

fn caller() -> impl Strategy<Value = Caller> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![0.0f32, 0.5, 1.0, 1.0, 2.0]),
        prop::sample::select(vec![0.5f32, 1.0, 1.0, 1.0, 3.0]),
        prop::sample::select(vec![0.0f32, 20.0, 300.0]),
        any::<bool>(),
        prop::option::weighted(0.8, prop::collection::vec(sample(), 1..8)),
        prop::option::weighted(0.25, prop::collection::vec(-0.5f32..0.5, 1..8)),
    )
        .prop_map(
            |(speak, hear, input_gain, output_volume, energy_level, moderator, pattern, prompt)| {
                Caller {
                    settings: ParticipantSettings {
                        speak,
                        hear,
                        input_gain,
                        output_volume,
                        energy_level,
                        moderator,
                    },
                    input: pattern,
                    prompt,
                }
            },
        )
}

fn frame_of(pattern: &[f32]) -> Frame {
    let mut frame = Frame::silent();
    for (s, &v) in frame.iter_mut().zip(pattern.iter().cycle()) {
        *s = v;
    }
    frame
}

/// Whether the mixer should take this caller on the first tick of a fresh room.
fn contributes(caller: &Caller) -> Option<Frame> {
    let input = frame_of(caller.input.as_ref()?);
    let gain = caller.settings.input_gain;
    let mean_abs: f64 = input
        .iter()
        .map(|&s| f64::from(clean(s).abs()))
        .sum::<f64>()
        / input.len() as f64;
    let energy = mean_abs * f64::from(gain) * 32768.0;
    let opens_gate = energy > f64::from(caller.settings.energy_level);
    (caller.settings.speak && gain > 0.0 && opens_gate).then(|| {
        let mut scaled = Frame::silent();
        for (d, &s) in scaled.iter_mut().zip(input.iter()) {
            *d = clean(s) * gain;
        }
        scaled
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_listener_hears_everyone_else(
        callers in prop::collection::vec(caller(), 0..12),
        // (listener, speaker, cleared again) by position modulo the room's size.
        relations in prop::collection::vec((0usize..12, 0usize..12, prop::bool::weighted(0.2)), 0..10),
    ) {
        let mut room = Room::new(RoomConfig::default());
        let ids: Vec<_> = callers
            .iter()
            .map(|c| room.add_participant(c.settings).unwrap())
            .collect();
        // excluded[l][s]: listener l does not hear speaker s.
        let mut excluded = vec![vec![false; callers.len()]; callers.len()];
        if !callers.is_empty() {
            for &(l, s, cleared) in &relations {
                let (l, s) = (l % callers.len(), s % callers.len());
                if l == s {
                    prop_assert_eq!(room.set_hears(ids[l], ids[s], false), Err(MixError::SelfRelation));
                    continue;
                }
                room.set_hears(ids[l], ids[s], false).unwrap();
                excluded[l][s] = true;
                if cleared {
                    room.set_hears(ids[l], ids[s], true).unwrap();
                    excluded[l][s] = false;
                }
            }
        }
        let relation_count = excluded.iter().flatten().filter(|&&e| e).count();
        prop_assert_eq!(room.relation_count(), relation_count);
        for (caller, &id) in callers.iter().zip(&ids) {
            if let Some(pattern) = &caller.input {
                room.push_input(id, &frame_of(pattern)).unwrap();
            }
            if let Some(prompt) = &caller.prompt {
                room.add_source(Box::new(Constant(frame_of(prompt))), SourceTarget::Listener(id)).unwrap();
            }
        }
        let contributions: Vec<Option<Frame>> = callers.iter().map(contributes).collect();
        let output = room.tick();
        prop_assert_eq!(output.contributor_count(), contributions.iter().flatten().count());

        for (listener, (caller, &id)) in callers.iter().zip(&ids).enumerate() {
            let heard = output.heard_by(id);
            if !caller.settings.hear && caller.prompt.is_none() {
                prop_assert!(heard.is_none(), "a deaf listener gets nothing");
                continue;
            }
            let heard = heard.expect("a hearing listener, or one with a prompt, gets a buffer");
            // The naive mix: everyone but the listener and those it does not hear, one by one
            // (nobody for a deaf listener), and its prompt.
            let mut expected = match &caller.prompt {
                Some(prompt) => frame_of(prompt),
                None => Frame::silent(),
            };
            for (other, contribution) in contributions.iter().enumerate() {
                if !caller.settings.hear || other == listener || excluded[listener][other] {
                    continue;
                }
                if let Some(contribution) = contribution {
                    for (e, &c) in expected.iter_mut().zip(contribution.iter()) {
                        *e += c;
                    }
                }
            }
            let volume = caller.settings.output_volume;
            for e in expected.iter_mut() {
                *e *= volume;
            }
            Limiter::default().process(&mut expected, &RoomConfig::default().limiter);
            for (i, (&h, &e)) in heard.iter().zip(expected.iter()).enumerate() {
                prop_assert!(h.abs() < 1.0, "sample {} = {} is not inside full scale", i, h);
                prop_assert!((h - e).abs() <= 1e-4, "listener {} sample {}: heard {} expected {}", listener, i, h, e);
            }
        }

        // Every hearing (or prompted) listener is in exactly one group, and groups point at what they hear.
        let mut seen = Vec::new();
        for group in output.groups() {
            if group.silent {
                prop_assert!(group.frame.iter().all(|&s| s == 0.0), "a group marked silent holds sound");
            }
            for &id in group.listeners {
                prop_assert!(std::ptr::eq(output.heard_by(id).unwrap(), group.frame));
                seen.push(id);
            }
        }
        seen.sort();
        let mut hearing: Vec<_> = callers
            .iter()
            .zip(&ids)
            .filter(|(c, _)| c.settings.hear || c.prompt.is_some())
            .map(|(_, &id)| id)
            .collect();
        hearing.sort();
        prop_assert_eq!(seen, hearing);
    }
}

#[test]
fn muted_participants_contribute_nothing_and_deaf_ones_hear_nothing() {
    let mut room = Room::new(RoomConfig::default());
    let talker = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let muted = room
        .add_participant(ParticipantSettings {
            speak: false,
            ..Default::default()
        })
        .unwrap();
    let deaf = room
        .add_participant(ParticipantSettings {
            hear: false,
            ..Default::default()
        })
        .unwrap();
    let listener = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    for tick in 0..10 {
        room.push_input(talker, &common::sine_frame(400.0, 0.3, tick))
            .unwrap();
        room.push_input(muted, &common::sine_frame(800.0, 0.3, tick))
            .unwrap();
        room.push_input(deaf, &common::sine_frame(1200.0, 0.3, tick))
            .unwrap();
        let output = room.tick();
        let heard = output.heard_by(listener).unwrap();
        assert!(common::amplitude_at(&heard[..], 400.0) > 0.25);
        assert!(
            common::amplitude_at(&heard[..], 800.0) < 1e-3,
            "the muted caller leaks"
        );
        assert!(
            common::amplitude_at(&heard[..], 1200.0) > 0.25,
            "deaf callers still speak"
        );
        assert!(output.heard_by(deaf).is_none());
        let talker_hears = output.heard_by(talker).unwrap();
        assert!(
            common::amplitude_at(&talker_hears[..], 400.0) < 1e-3,
            "a talker hears itself"
        );
    }
    assert!(room.status(muted).unwrap().mute_detect);
    assert!(!room.status(muted).unwrap().talking);
}

#[test]
fn one_talker_at_unity_gain_arrives_bit_identical() {
    let mut room = Room::new(RoomConfig::default());
    let talker = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let others: Vec<_> = (0..5)
        .map(|_| {
            room.add_participant(ParticipantSettings::default())
                .unwrap()
        })
        .collect();
    for tick in 0..50 {
        let frame = common::sine_frame(523.25, 0.85, tick);
        room.push_input(talker, &frame).unwrap();
        let output = room.tick();
        for &other in &others {
            assert_eq!(output.heard_by(other).unwrap(), &frame);
        }
        assert_eq!(output.room_mix(), &frame);
        assert_eq!(
            output.group_count(),
            2,
            "the talker's own buffer and the shared one"
        );
    }
}

#[test]
fn loud_rooms_never_wrap() {
    let mut room = Room::new(RoomConfig::default());
    let ids: Vec<_> = (0..20)
        .map(|_| {
            room.add_participant(ParticipantSettings::default())
                .unwrap()
        })
        .collect();
    let listener = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    for tick in 0..30 {
        for &id in &ids {
            room.push_input(id, &common::sine_frame(300.0, 1.0, tick))
                .unwrap();
        }
        let output = room.tick();
        let heard = output.heard_by(listener).unwrap();
        let peak = heard.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak < 1.0 && peak > 0.8, "peak {peak}");
        // Still a 300 Hz tone, not a wrapped mess: nearly all energy at the fundamental.
        let fundamental = common::amplitude_at(&heard[..], 300.0);
        assert!(fundamental > 0.7 * common::rms(&heard[..]) * std::f64::consts::SQRT_2);
    }
}
