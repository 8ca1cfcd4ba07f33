//! A media plane without sockets or mixer threads for the HTTP targets: rooms and participants
//! in memory, but tone strings checked by tutti's tone parser and offers answered by tutti's
//! SDP negotiation, so the API's refusals of both come from the real code.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use tutti_conference::{
    JoinSpec, JoinedMedia, MediaError, MediaPlane, ParticipantState, ParticipantUpdate, RoomSpec,
    RoomState,
};
use tutti_mix::ToneProgram;
use tutti_rtp::sdp::{answer_offer, AnswerConfig};
use uuid::Uuid;

/// Rooms in memory; everything played lasts no time.
#[derive(Debug, Default)]
pub struct MemoryMedia {
    rooms: Mutex<HashMap<Uuid, (RoomSpec, RoomState)>>,
}

impl MemoryMedia {
    fn with_room<T>(
        &self,
        room: Uuid,
        f: impl FnOnce(&mut RoomSpec, &mut RoomState) -> Result<T, MediaError>,
    ) -> Result<T, MediaError> {
        let mut rooms = self
            .rooms
            .lock()
            .map_err(|_| MediaError::Unavailable("poisoned".into()))?;
        let (spec, state) = rooms
            .get_mut(&room)
            .ok_or_else(|| MediaError::Media(format!("no room {room}")))?;
        f(spec, state)
    }
}

fn check_media(media: &str) -> Result<(), MediaError> {
    if media.starts_with("tone_stream://") {
        ToneProgram::parse(media).map_err(|e| MediaError::Media(e.to_string()))?;
    }
    Ok(())
}

impl MediaPlane for MemoryMedia {
    fn check_tone(&self, tone: &str) -> Result<(), String> {
        ToneProgram::parse(tone)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn ensure_room(&self, room: Uuid, spec: &RoomSpec) -> Result<(), MediaError> {
        // The engine plays entry and exit tones it can parse, and skips the others.
        for tone in spec.entry_tone.iter().chain(&spec.exit_tone) {
            if tone.starts_with("tone_stream://") {
                let _ = ToneProgram::parse(tone);
            }
        }
        let mut rooms = self
            .rooms
            .lock()
            .map_err(|_| MediaError::Unavailable("poisoned".into()))?;
        rooms
            .entry(room)
            .or_insert_with(|| (spec.clone(), RoomState::default()));
        Ok(())
    }

    fn end_room(&self, room: Uuid) {
        if let Ok(mut rooms) = self.rooms.lock() {
            rooms.remove(&room);
        }
    }

    fn join(&self, room: Uuid, spec: &JoinSpec) -> Result<JoinedMedia, MediaError> {
        self.with_room(room, |room_spec, state| {
            if state.locked {
                return Err(MediaError::Locked);
            }
            if room_spec.max_participants != 0
                && state.participants.len() >= room_spec.max_participants
            {
                return Err(MediaError::Full(room_spec.max_participants));
            }
            let participant_id = state
                .participants
                .iter()
                .map(|p| p.participant_id)
                .max()
                .unwrap_or(0)
                + 1;
            let config = AnswerConfig {
                address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 20_000u16.wrapping_add(participant_id as u16),
                preference: AnswerConfig::default_preference(),
                session_id: u64::from(participant_id),
                ptime_ms: 20,
            };
            let negotiated =
                answer_offer(&spec.offer, &config).map_err(|e| MediaError::Offer(e.to_string()))?;
            state.participants.push(ParticipantState {
                participant_id,
                talking: false,
                mute_detect: false,
                current_energy: 0.0,
                energy_level: spec.energy_level,
                speak: !spec.muted,
                hear: !spec.deaf,
                moderator: spec.moderator,
            });
            Ok(JoinedMedia {
                participant_id,
                answer: negotiated.answer,
                port: config.port,
            })
        })
    }

    fn kick(&self, room: Uuid, participant: u32) -> Result<(), MediaError> {
        self.with_room(room, |_, state| {
            let before = state.participants.len();
            state
                .participants
                .retain(|p| p.participant_id != participant);
            if state.participants.len() == before {
                return Err(MediaError::NoParticipant(participant));
            }
            Ok(())
        })
    }

    fn update_room(&self, room: Uuid, spec: &RoomSpec) -> Result<(), MediaError> {
        self.with_room(room, |current, _| {
            *current = spec.clone();
            Ok(())
        })
    }

    fn relate(&self, room: Uuid, listener: u32, speaker: u32, _: bool) -> Result<(), MediaError> {
        self.with_room(room, |_, state| {
            for id in [listener, speaker] {
                if !state.participants.iter().any(|p| p.participant_id == id) {
                    return Err(MediaError::NoParticipant(id));
                }
            }
            Ok(())
        })
    }

    fn update(
        &self,
        room: Uuid,
        participant: Option<u32>,
        update: ParticipantUpdate,
        skip_moderators: bool,
    ) -> Result<(), MediaError> {
        self.with_room(room, |_, state| {
            for p in &mut state.participants {
                if participant.is_some_and(|id| id != p.participant_id)
                    || (skip_moderators && p.moderator)
                {
                    continue;
                }
                match update {
                    ParticipantUpdate::Speak(v) => p.speak = v,
                    ParticipantUpdate::Hear(v) => p.hear = v,
                }
            }
            Ok(())
        })
    }

    fn set_locked(&self, room: Uuid, locked: bool) -> Result<(), MediaError> {
        self.with_room(room, |_, state| {
            state.locked = locked;
            Ok(())
        })
    }

    fn play(&self, room: Uuid, _: Option<u32>, media: &str) -> Result<Duration, MediaError> {
        check_media(media)?;
        self.with_room(room, |_, _| Ok(Duration::ZERO))
    }

    fn can_speak(&self) -> bool {
        true
    }

    fn speak(
        &self,
        room: Uuid,
        _: Option<u32>,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Duration, MediaError> {
        self.with_room(room, |_, _| Ok(Duration::ZERO))
    }

    fn room_state(&self, room: Uuid) -> Option<RoomState> {
        let rooms = self.rooms.lock().ok()?;
        rooms.get(&room).map(|(_, state)| state.clone())
    }

    fn start_recording(&self, room: Uuid, _: Option<Duration>) -> Result<String, MediaError> {
        self.with_room(room, |_, _| Ok(format!("memory://{room}.wav")))
    }

    fn stop_recording(&self, _: Uuid) -> Result<(), MediaError> {
        Ok(())
    }
}
