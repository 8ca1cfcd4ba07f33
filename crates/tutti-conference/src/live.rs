//! Running conferences: joining participants with their role's settings, realtime state, and
//! the actions shared by every face.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use uuid::Uuid;

use crate::media::{JoinSpec, MediaError, ParticipantState, ParticipantUpdate, RoomSpec};
use crate::service::{Conference, ConferenceService, ServiceError};

/// Kazoo's (and FreeSWITCH's) default entry tone.
pub const DEFAULT_ENTRY_TONE: &str = "tone_stream://%(200,0,500,600,700)";
/// Kazoo's (and FreeSWITCH's) default exit tone.
pub const DEFAULT_EXIT_TONE: &str = "tone_stream://%(500,0,300,200,100,50,25)";

/// A caller asking to join.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JoinRequest {
    /// SDP offer.
    pub offer: String,
    /// Joins as a moderator.
    pub moderator: bool,
    /// Caller id name.
    pub caller_id_name: Option<String>,
    /// Caller id number.
    pub caller_id_number: Option<String>,
    /// Overrides the server's latching default.
    pub latching: Option<bool>,
}

/// What the control plane remembers of a participant beyond its media state.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ParticipantInfo {
    pub(crate) call_id: Uuid,
    pub(crate) joined: i64,
    pub(crate) caller_id_name: Option<String>,
    pub(crate) caller_id_number: Option<String>,
    pub(crate) moderator: bool,
    /// What the participant's role gives it once no moderator rule holds it back.
    pub(crate) speak: bool,
    pub(crate) hear: bool,
}

/// A participant as every face sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Participant {
    /// Media state.
    pub state: ParticipantState,
    /// Its call's id.
    pub call_id: Uuid,
    /// Join time, Unix seconds.
    pub joined: i64,
    /// Seconds since joining.
    pub duration: i64,
    /// Caller id name.
    pub caller_id_name: Option<String>,
    /// Caller id number.
    pub caller_id_number: Option<String>,
}

/// A conference's realtime summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Realtime {
    /// Participants who are not moderators.
    pub members: usize,
    /// Moderators.
    pub admins: usize,
    /// Seconds since the first participant still present joined.
    pub duration: i64,
    /// Locked against joins.
    pub is_locked: bool,
    /// Everyone.
    pub participants: Vec<Participant>,
}

/// The participant actions a face may ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParticipantAction {
    /// Stop them speaking.
    Mute,
    /// Let them speak.
    Unmute,
    /// Stop them hearing.
    Deaf,
    /// Let them hear.
    Undeaf,
    /// Remove them.
    Kick,
    /// Play a tone string or media file to them.
    Play(String),
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn waits_for_moderator(document: &Value) -> bool {
    ["require_moderator", "wait_for_moderator"]
        .iter()
        .any(|key| document.get(*key).and_then(Value::as_bool).unwrap_or(false))
}

fn tone_setting(document: &Value, key: &str, default: &str) -> Option<String> {
    match document.get(key) {
        None | Some(Value::Bool(true)) => Some(default.to_owned()),
        Some(Value::String(tone)) if tone.starts_with("tone_stream://") => Some(tone.clone()),
        _ => None,
    }
}

fn role_flag(document: &Value, role: &str, key: &str, default: bool) -> bool {
    document
        .get(role)
        .and_then(|r| r.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(default)
}

fn room_spec(conference: &Conference) -> RoomSpec {
    let document = &conference.document;
    RoomSpec {
        max_participants: document
            .get("max_participants")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize,
        entry_tone: tone_setting(document, "play_entry_tone", DEFAULT_ENTRY_TONE),
        exit_tone: tone_setting(document, "play_exit_tone", DEFAULT_EXIT_TONE),
    }
}

impl From<MediaError> for ServiceError {
    fn from(error: MediaError) -> Self {
        ServiceError::Media(error)
    }
}

impl ConferenceService {
    /// Joins a caller to a conference: the room starts if it is not running, the caller gets
    /// its role's join_muted/join_deaf and the document's energy level. Returns the participant
    /// and the SDP answer.
    pub fn join(
        &self,
        account: Uuid,
        conference_id: &str,
        request: &JoinRequest,
    ) -> Result<(Participant, String), ServiceError> {
        let conference = self.conference(account, conference_id)?;
        self.ensure_running(&conference)?;
        let media = self.media();
        let role = if request.moderator {
            "moderator"
        } else {
            "member"
        };
        let document = &conference.document;
        let speak = !role_flag(document, role, "join_muted", !request.moderator);
        let hear = !role_flag(document, role, "join_deaf", false);
        // require_moderator / wait_for_moderator: members neither speak nor hear until a
        // moderator is there.
        let held = !request.moderator
            && waits_for_moderator(document)
            && !self.moderator_present(conference.id);
        let spec = JoinSpec {
            offer: request.offer.clone(),
            muted: !speak || held,
            deaf: !hear || held,
            moderator: request.moderator,
            energy_level: document
                .get("profile")
                .and_then(|p| p.get("energy-level"))
                .and_then(Value::as_f64)
                .unwrap_or(20.0) as f32,
            latching: request.latching,
        };
        let releases = request.moderator
            && waits_for_moderator(document)
            && !self.moderator_present(conference.id);
        let joined = media.join(conference.id, &spec)?;
        let info = ParticipantInfo {
            call_id: Uuid::new_v4(),
            joined: now(),
            caller_id_name: request.caller_id_name.clone(),
            caller_id_number: request.caller_id_number.clone(),
            moderator: request.moderator,
            speak,
            hear,
        };
        self.remember(conference.id, joined.participant_id, info.clone());
        self.publish(
            account,
            conference.id,
            "add-member",
            Some((joined.participant_id, info.call_id)),
        );
        if releases {
            self.hold_members(conference.id, false);
        }
        let state = ParticipantState {
            participant_id: joined.participant_id,
            talking: false,
            mute_detect: false,
            current_energy: 0.0,
            energy_level: spec.energy_level,
            speak: !spec.muted,
            hear: !spec.deaf,
            moderator: spec.moderator,
        };
        Ok((participant(state, &info), joined.answer))
    }

    fn moderator_present(&self, conference: Uuid) -> bool {
        self.participants_known(conference)
            .values()
            .any(|p| p.moderator)
    }

    /// Holds every member silent and deaf (`hold`), or gives them back their role's settings.
    fn hold_members(&self, conference: Uuid, hold: bool) {
        // Every member's role settings come from the same document, so one room-wide update
        // that spares moderators covers them all (one round trip to the mixer, not two per
        // member).
        let known = self.participants_known(conference);
        let Some(member) = known.values().find(|info| !info.moderator) else {
            return;
        };
        let media = self.media();
        let _ = media.update(
            conference,
            None,
            ParticipantUpdate::Speak(member.speak && !hold),
            true,
        );
        let _ = media.update(
            conference,
            None,
            ParticipantUpdate::Hear(member.hear && !hold),
            true,
        );
    }

    /// After a participant left: when the last moderator is gone from a room that waits for
    /// moderators, the members are held again.
    fn after_departure(&self, conference: Uuid, was_moderator: bool) {
        if was_moderator && self.waits(conference) && !self.moderator_present(conference) {
            self.hold_members(conference, true);
        }
    }

    /// Starts the conference's room if needed; announces `conference-create` the first time.
    fn ensure_running(&self, conference: &Conference) -> Result<(), ServiceError> {
        self.media()
            .ensure_room(conference.id, &room_spec(conference))?;
        if self.mark_running(
            conference.id,
            conference.account_id,
            waits_for_moderator(&conference.document),
        ) {
            self.publish(
                conference.account_id,
                conference.id,
                "conference-create",
                None,
            );
        }
        Ok(())
    }

    /// Turns a media-plane report into the event subscribers see.
    pub fn on_media_event(&self, event: &crate::events::MediaEvent) {
        let Some(account) = self.running_account(event.conference) else {
            return;
        };
        let participant = event.participant_id;
        let Some(call_id) = self.call_id(event.conference, participant) else {
            return; // kicked (already announced) or never joined through this service
        };
        let name = match event.kind {
            crate::events::MediaEventKind::StartTalking => "start-talking",
            crate::events::MediaEventKind::StopTalking => "stop-talking",
            crate::events::MediaEventKind::Left => {
                let was_moderator = self
                    .participants_known(event.conference)
                    .get(&participant)
                    .is_some_and(|p| p.moderator);
                self.forget(event.conference, participant);
                self.after_departure(event.conference, was_moderator);
                "del-member"
            }
        };
        self.publish(
            account,
            event.conference,
            name,
            Some((participant, call_id)),
        );
    }

    /// A conference's realtime state (empty when it is not running).
    pub fn realtime(&self, conference: &Conference) -> Realtime {
        let Some(state) = self.media().room_state(conference.id) else {
            return Realtime::default();
        };
        let known = self.participants_known(conference.id);
        let participants: Vec<Participant> = state
            .participants
            .into_iter()
            .map(|p| {
                let info = known
                    .get(&p.participant_id)
                    .cloned()
                    .unwrap_or(ParticipantInfo {
                        call_id: Uuid::nil(),
                        joined: now(),
                        caller_id_name: None,
                        caller_id_number: None,
                        moderator: p.moderator,
                        speak: p.speak,
                        hear: p.hear,
                    });
                participant(p, &info)
            })
            .collect();
        Realtime {
            members: participants.iter().filter(|p| !p.state.moderator).count(),
            admins: participants.iter().filter(|p| p.state.moderator).count(),
            duration: participants.iter().map(|p| p.duration).max().unwrap_or(0),
            is_locked: state.locked,
            participants,
        }
    }

    /// One participant of a running conference.
    pub fn participant(
        &self,
        conference: &Conference,
        participant_id: u32,
    ) -> Result<Participant, ServiceError> {
        self.realtime(conference)
            .participants
            .into_iter()
            .find(|p| p.state.participant_id == participant_id)
            .ok_or_else(|| ServiceError::NotFound(participant_id.to_string()))
    }

    /// Applies an action to one participant.
    pub fn act_on_participant(
        &self,
        conference: &Conference,
        participant_id: u32,
        action: &ParticipantAction,
    ) -> Result<(), ServiceError> {
        let target = self.participant(conference, participant_id)?;
        let media = self.media();
        match action {
            ParticipantAction::Kick => {
                media.kick(conference.id, participant_id)?;
                self.forget(conference.id, participant_id);
                self.after_departure(conference.id, target.state.moderator);
            }
            ParticipantAction::Play(what) => {
                media.play(conference.id, Some(participant_id), what)?
            }
            other => media.update(
                conference.id,
                Some(participant_id),
                update_for(other),
                false,
            )?,
        }
        self.announce(conference, action, &[target]);
        Ok(())
    }

    /// Applies an action to every participant; mute, unmute, deaf and undeaf spare moderators,
    /// kick does not.
    pub fn act_on_all(
        &self,
        conference: &Conference,
        action: &ParticipantAction,
    ) -> Result<(), ServiceError> {
        let media = self.media();
        let everyone = self.realtime(conference).participants;
        let affected: Vec<Participant> = match action {
            ParticipantAction::Kick | ParticipantAction::Play(_) => everyone,
            _ => everyone
                .into_iter()
                .filter(|p| !p.state.moderator)
                .collect(),
        };
        match action {
            ParticipantAction::Kick => {
                for p in &affected {
                    media.kick(conference.id, p.state.participant_id)?;
                    self.forget(conference.id, p.state.participant_id);
                }
            }
            ParticipantAction::Play(what) => media.play(conference.id, None, what)?,
            other => media.update(conference.id, None, update_for(other), true)?,
        }
        self.announce(conference, action, &affected);
        Ok(())
    }

    /// Publishes the events of an action on `participants`.
    fn announce(
        &self,
        conference: &Conference,
        action: &ParticipantAction,
        participants: &[Participant],
    ) {
        let name = match action {
            ParticipantAction::Mute => "mute-member",
            ParticipantAction::Unmute => "unmute-member",
            ParticipantAction::Deaf => "deaf-member",
            ParticipantAction::Undeaf => "undeaf-member",
            ParticipantAction::Kick => "del-member",
            ParticipantAction::Play(_) => return,
        };
        for p in participants {
            self.publish(
                conference.account_id,
                conference.id,
                name,
                Some((p.state.participant_id, p.call_id)),
            );
        }
    }

    /// Locks or unlocks a conference's room (starting it if needed).
    pub fn set_locked(&self, conference: &Conference, locked: bool) -> Result<(), ServiceError> {
        self.ensure_running(conference)?;
        self.media().set_locked(conference.id, locked)?;
        self.publish(
            conference.account_id,
            conference.id,
            if locked { "lock" } else { "unlock" },
            None,
        );
        Ok(())
    }

    /// Starts (`true`) or stops recording a conference's mix; starting returns where it goes.
    pub fn record(
        &self,
        conference: &Conference,
        start: bool,
    ) -> Result<Option<String>, ServiceError> {
        if start {
            self.ensure_running(conference)?;
            Ok(Some(self.media().start_recording(conference.id)?))
        } else {
            self.media().stop_recording(conference.id)?;
            Ok(None)
        }
    }

    /// Plays a tone string or media file to a running conference.
    pub fn play(&self, conference: &Conference, what: &str) -> Result<(), ServiceError> {
        self.ensure_running(conference)?;
        Ok(self.media().play(conference.id, None, what)?)
    }
}

fn update_for(action: &ParticipantAction) -> ParticipantUpdate {
    match action {
        ParticipantAction::Mute => ParticipantUpdate::Speak(false),
        ParticipantAction::Unmute => ParticipantUpdate::Speak(true),
        ParticipantAction::Deaf => ParticipantUpdate::Hear(false),
        _ => ParticipantUpdate::Hear(true),
    }
}

fn participant(state: ParticipantState, info: &ParticipantInfo) -> Participant {
    Participant {
        state,
        call_id: info.call_id,
        joined: info.joined,
        duration: (now() - info.joined).max(0),
        caller_id_name: info.caller_id_name.clone(),
        caller_id_number: info.caller_id_number.clone(),
    }
}

pub(crate) type Known = HashMap<u32, ParticipantInfo>;
