//! Offline mixdown: a room run tick by tick from WAV files instead of the network.
//!
//! Each caller joins at its offset, sends its audio 20 ms at a time, and leaves when its audio
//! ends. The result is what each caller heard over the whole timeline (silence while not in the
//! room), what a recording of the room holds, and the talk events with their times.

use std::time::Duration;

use tutti_mix::{
    Frame, MixEvent, ParticipantId, ParticipantSettings, Room, RoomConfig, SourceTarget,
    ToneGenerator, ToneProgram, FRAME_MS, FRAME_SAMPLES,
};

use crate::EngineError;

/// One caller of a mixdown.
#[derive(Clone, Debug)]
pub struct MixdownCaller {
    /// Name used in events and file names.
    pub name: String,
    /// What the caller says, 48 kHz mono.
    pub audio: Vec<f32>,
    /// When the caller joins, from the start of the mixdown.
    pub join_at: Duration,
    /// Mute, deaf, gains, threshold, role.
    pub settings: ParticipantSettings,
}

/// A whole mixdown.
#[derive(Clone, Debug, Default)]
pub struct MixdownPlan {
    /// The callers.
    pub callers: Vec<MixdownCaller>,
    /// Room parameters.
    pub room: RoomConfig,
    /// Played to the room when a caller joins.
    pub entry_tone: Option<ToneProgram>,
    /// Played to the room when a caller leaves.
    pub exit_tone: Option<ToneProgram>,
}

/// What happened to a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimelineEventKind {
    /// Joined the room.
    Joined,
    /// Left the room (its audio ended).
    Left,
    /// Started talking.
    StartTalking,
    /// Stopped talking.
    StopTalking,
    /// Talked while muted.
    MuteDetect,
}

impl TimelineEventKind {
    /// The event's name as the conference APIs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Joined => "add-member",
            Self::Left => "del-member",
            Self::StartTalking => "start-talking",
            Self::StopTalking => "stop-talking",
            Self::MuteDetect => "mute-detect",
        }
    }
}

/// An event at a point of the timeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimelineEvent {
    /// Start of the tick in which it happened.
    pub at: Duration,
    /// Index of the caller in the plan.
    pub caller: usize,
    /// What happened.
    pub kind: TimelineEventKind,
    /// The caller's energy in that tick (16-bit mean amplitude).
    pub energy: f32,
}

/// The result of a mixdown.
#[derive(Clone, Debug, Default)]
pub struct Mixdown {
    /// What each caller heard, over the whole timeline, 48 kHz mono.
    pub heard: Vec<Vec<f32>>,
    /// What a recording of the room holds.
    pub room: Vec<f32>,
    /// Events in time order.
    pub events: Vec<TimelineEvent>,
    /// Ticks run.
    pub ticks: u64,
}

fn ticks_for(duration: Duration) -> u64 {
    let tick = Duration::from_millis(u64::from(FRAME_MS));
    (duration.as_nanos() / tick.as_nanos()) as u64
}

fn tone_ticks(tone: &Option<ToneProgram>) -> u64 {
    tone.as_ref()
        .and_then(ToneProgram::duration)
        .map_or(0, |d| ticks_for(d) + 1)
}

fn play_to_room(room: &mut Room, tone: &Option<ToneProgram>) -> Result<(), EngineError> {
    if let Some(tone) = tone {
        room.add_source(
            Box::new(ToneGenerator::new(tone.clone())),
            SourceTarget::Room,
        )?;
    }
    Ok(())
}

/// Runs a mixdown to its end: every caller's audio played out, then the last exit tone.
pub fn run_mixdown(plan: &MixdownPlan) -> Result<Mixdown, EngineError> {
    if plan.callers.is_empty() {
        return Err(EngineError::NoCallers);
    }
    let spans: Vec<(u64, u64)> = plan
        .callers
        .iter()
        .map(|caller| {
            let join = ticks_for(caller.join_at);
            let frames = caller.audio.len().div_ceil(FRAME_SAMPLES) as u64;
            (join, join + frames)
        })
        .collect();
    let last_leave = spans.iter().map(|&(_, leave)| leave).max().unwrap_or(0);
    let total_ticks = last_leave + tone_ticks(&plan.exit_tone).max(1);

    let mut room = Room::new(plan.room);
    let mut ids: Vec<Option<ParticipantId>> = vec![None; plan.callers.len()];
    let samples = total_ticks as usize * FRAME_SAMPLES;
    let mut result = Mixdown {
        heard: vec![vec![0.0; samples]; plan.callers.len()],
        room: vec![0.0; samples],
        events: Vec::new(),
        ticks: total_ticks,
    };
    let mut frame = Frame::silent();
    let mut finished_sources = Vec::new();

    for tick in 0..total_ticks {
        let at = Duration::from_millis(tick * u64::from(FRAME_MS));
        for (index, caller) in plan.callers.iter().enumerate() {
            let (join, leave) = spans[index];
            let event = |kind| TimelineEvent {
                at,
                caller: index,
                kind,
                energy: 0.0,
            };
            if tick == join && ids[index].is_none() && leave > join {
                ids[index] = Some(room.add_participant(caller.settings)?);
                result.events.push(event(TimelineEventKind::Joined));
                play_to_room(&mut room, &plan.entry_tone)?;
            }
            if tick == leave {
                if let Some(id) = ids[index].take() {
                    let last = room.remove_participant(id)?;
                    if last.talking {
                        result.events.push(TimelineEvent {
                            energy: last.current_energy,
                            ..event(TimelineEventKind::StopTalking)
                        });
                    }
                    result.events.push(event(TimelineEventKind::Left));
                    play_to_room(&mut room, &plan.exit_tone)?;
                }
            }
            if let Some(id) = ids[index] {
                let start = (tick - join) as usize * FRAME_SAMPLES;
                let end = (start + FRAME_SAMPLES).min(caller.audio.len());
                frame.clear();
                frame[..end - start].copy_from_slice(&caller.audio[start..end]);
                room.push_input(id, &frame)?;
            }
        }

        room.tick();
        let output = room.last_output();
        let offset = tick as usize * FRAME_SAMPLES;
        let span = offset..offset + FRAME_SAMPLES;
        result.room[span.clone()].copy_from_slice(&output.room_mix()[..]);
        for (index, id) in ids.iter().enumerate() {
            if let Some(heard) = id.and_then(|id| output.heard_by(id)) {
                result.heard[index][span.clone()].copy_from_slice(&heard[..]);
            }
        }
        for event in output.events() {
            let (participant, kind) = match *event {
                MixEvent::StartTalking(p) => (p, TimelineEventKind::StartTalking),
                MixEvent::StopTalking(p) => (p, TimelineEventKind::StopTalking),
                MixEvent::MuteDetect(p) => (p, TimelineEventKind::MuteDetect),
                MixEvent::SourceFinished(source) => {
                    finished_sources.push(source);
                    continue;
                }
                _ => continue,
            };
            if let Some(caller) = ids.iter().position(|&id| id == Some(participant)) {
                let energy = room.status(participant).map_or(0.0, |s| s.current_energy);
                result.events.push(TimelineEvent {
                    at,
                    caller,
                    kind,
                    energy,
                });
            }
        }
        for source in finished_sources.drain(..) {
            room.remove_source(source)?;
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, seconds: f64) -> Vec<f32> {
        (0..(48_000.0 * seconds) as usize)
            .map(|i| (0.3 * (2.0 * std::f64::consts::PI * hz * i as f64 / 48_000.0).sin()) as f32)
            .collect()
    }

    fn caller(name: &str, hz: f64, join_ms: u64) -> MixdownCaller {
        MixdownCaller {
            name: name.into(),
            audio: tone(hz, 1.0),
            join_at: Duration::from_millis(join_ms),
            settings: ParticipantSettings::default(),
        }
    }

    #[test]
    fn callers_join_talk_and_leave_on_the_timeline() {
        let plan = MixdownPlan {
            callers: vec![caller("alice", 400.0, 0), caller("bob", 800.0, 500)],
            exit_tone: Some(ToneProgram::default_exit()),
            ..Default::default()
        };
        let mixdown = run_mixdown(&plan).unwrap();
        let kinds: Vec<_> = mixdown
            .events
            .iter()
            .map(|e| (e.at.as_millis(), e.caller, e.kind))
            .collect();
        assert_eq!(kinds[0], (0, 0, TimelineEventKind::Joined));
        assert_eq!(
            kinds[1],
            (0, 0, TimelineEventKind::StartTalking),
            "a loud onset starts at once"
        );
        assert!(kinds.contains(&(500, 1, TimelineEventKind::Joined)));
        assert!(
            kinds.contains(&(1000, 0, TimelineEventKind::StopTalking)),
            "leaving closes talking"
        );
        assert!(kinds.contains(&(1000, 0, TimelineEventKind::Left)));
        assert!(kinds.contains(&(1500, 1, TimelineEventKind::Left)));
        // 1.5 s of callers, then the exit tone.
        assert_eq!(mixdown.ticks, 75 + 26);
        // Alice hears nothing before Bob joins and never herself.
        let alice = &mixdown.heard[0];
        assert!(alice[..24_000].iter().all(|&s| s == 0.0));
        assert!(alice[30_000..45_000].iter().any(|&s| s.abs() > 0.2));
    }

    #[test]
    fn an_empty_plan_is_refused() {
        assert!(matches!(
            run_mixdown(&MixdownPlan::default()),
            Err(EngineError::NoCallers)
        ));
    }
}
