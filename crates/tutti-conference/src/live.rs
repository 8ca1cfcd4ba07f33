//! Running conferences: joining participants with their role's settings, realtime state, and
//! the actions shared by every face.

use std::collections::HashMap;

use serde_json::Value;
use uuid::Uuid;

use crate::events::{ConferenceEvent, Departure, MediaEventKind};
use crate::fields::parse_time;
use crate::lifecycle::{CallStatus, ConferenceStatus};
use crate::media::{JoinSpec, MediaError, ParticipantState, ParticipantUpdate, RoomSpec};
use crate::service::{now, Conference, ConferenceService, ServiceError};

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
    /// The PIN the caller entered, if the face takes one: a moderator PIN makes the caller a
    /// moderator; a PIN that matches none of the conference's is refused.
    pub pin: Option<String>,
    /// Where the caller's signalling came from (a SIP message's source), when known.
    pub signalled_source: Option<std::net::IpAddr>,
    /// The local media port the caller's media already uses (a SIP call moving in from its
    /// lobby, a dial-out call answering tutti's offer).
    pub port: Option<u16>,
    /// The call's id when it already has one (a dial-out call keeps the id it rang with).
    pub call_id: Option<Uuid>,
    /// Joins muted whatever its role says.
    pub muted: bool,
    /// Joins deaf whatever its role says.
    pub deaf: bool,
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
    /// Past its pre-actions and heard in the room (until it starts leaving).
    pub(crate) admitted: bool,
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

/// How one participant relates to another (Kazoo's `relate` action).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relationship {
    /// The participant does not hear the other.
    Deaf,
    /// The other does not hear the participant.
    Mute,
    /// Both hear each other again.
    Clear,
}

pub(crate) fn waits_for_moderator(document: &Value) -> bool {
    ["require_moderator", "wait_for_moderator"]
        .iter()
        .any(|key| document.get(*key).and_then(Value::as_bool).unwrap_or(false))
}

/// The tone or media file a document asks for: `true` (or nothing) is the default tone, a
/// string is a tone string or a media file, `false` is none.
fn tone_setting(document: &Value, key: &str, default: &str) -> Option<String> {
    match document.get(key) {
        None | Some(Value::Bool(true)) => Some(default.to_owned()),
        Some(Value::String(tone)) if !tone.is_empty() => Some(tone.clone()),
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

pub(crate) fn room_spec(conference: &Conference) -> RoomSpec {
    let document = &conference.document;
    RoomSpec {
        max_participants: document
            .get("max_participants")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize,
        entry_tone: tone_setting(document, "play_entry_tone", DEFAULT_ENTRY_TONE),
        exit_tone: tone_setting(document, "play_exit_tone", DEFAULT_EXIT_TONE),
        conference: true,
    }
}

impl From<MediaError> for ServiceError {
    fn from(error: MediaError) -> Self {
        ServiceError::Media(error)
    }
}

impl ConferenceService {
    /// Joins a caller to a conference: the room starts if it is not running, the caller gets
    /// its role's join_muted/join_deaf and the document's energy level. A conference with
    /// `pre_actions` plays them to the caller first (the room neither hears it nor is heard
    /// by it meanwhile). Returns the participant and the SDP answer.
    pub fn join(
        &self,
        account: Uuid,
        conference_id: &str,
        request: &JoinRequest,
    ) -> Result<(Participant, String), ServiceError> {
        let conference = self.conference(account, conference_id)?;
        let moderator = self.admit_check(&conference, request)?;
        if conference.state.status.is_ending() {
            return Err(ServiceError::Precondition(format!(
                "the conference is {}",
                conference.state.status.as_str()
            )));
        }
        let role = if moderator { "moderator" } else { "member" };
        let document = &conference.document;
        let speak = !role_flag(document, role, "join_muted", !moderator) && !request.muted;
        let hear = !role_flag(document, role, "join_deaf", false) && !request.deaf;
        let pre_actions = actions_of(document, "pre_actions");
        // require_moderator / wait_for_moderator: members neither speak nor hear until a
        // moderator is there. Pre-actions hold everyone until they are done.
        let held = !pre_actions.is_empty()
            || (!moderator
                && waits_for_moderator(document)
                && !self.moderator_present(conference.id));
        let spec = JoinSpec {
            offer: request.offer.clone(),
            muted: !speak || held,
            deaf: !hear || held,
            moderator,
            energy_level: document
                .get("profile")
                .and_then(|p| p.get("energy-level"))
                .and_then(Value::as_f64)
                .unwrap_or(20.0) as f32,
            latching: request.latching,
            signalled_source: request.signalled_source,
            port: request.port,
        };
        let info = ParticipantInfo {
            call_id: request.call_id.unwrap_or_else(Uuid::now_v7),
            joined: now(),
            caller_id_name: request.caller_id_name.clone(),
            caller_id_number: request.caller_id_number.clone(),
            moderator,
            speak,
            hear,
            admitted: false,
        };
        let (joined, first) = self.join_room(&conference, &spec, &info)?;
        self.ensure_running(&conference)?;
        tracing::info!(
            conference = %conference.id,
            participant = joined.participant_id,
            call = %info.call_id,
            moderator,
            "participant joined"
        );
        self.open_call(&conference, joined.participant_id, &info)?;
        // Somebody is present now; a new conference already said so when it started
        // progressing.
        if first && conference.state.status != ConferenceStatus::Starting {
            self.publish(account, conference.id, "status-changed", None);
        }
        let participant_id = joined.participant_id;
        if pre_actions.is_empty() {
            self.admit(&conference, participant_id);
        } else if let Some(service) = self.shared() {
            let conference = conference.clone();
            crate::actions::spawn(move || {
                match service.run_actions(&conference, participant_id, &pre_actions) {
                    crate::actions::ScriptEnd::Completed => {
                        service.admit(&conference, participant_id);
                    }
                    crate::actions::ScriptEnd::HungUp => {
                        service.remove(&conference, &[participant_id], false, Departure::Hangup);
                    }
                    crate::actions::ScriptEnd::Gone => {
                        service.remove(&conference, &[participant_id], false, Departure::Kicked);
                    }
                }
            });
        }
        let state = ParticipantState {
            participant_id,
            talking: false,
            mute_detect: false,
            current_energy: 0.0,
            energy_level: spec.energy_level,
            speak: !spec.muted,
            hear: !spec.deaf,
            moderator,
        };
        Ok((participant(state, &info), joined.answer))
    }

    /// Puts a caller's media in the conference's room, starting the room for the first
    /// participant; a refused join leaves no room running. Returns the media and whether the
    /// caller is the first participant.
    fn join_room(
        &self,
        conference: &Conference,
        spec: &JoinSpec,
        info: &ParticipantInfo,
    ) -> Result<(crate::media::JoinedMedia, bool), ServiceError> {
        let room_lock = self.room_lock(conference.id);
        let _starting = room_lock.lock();
        let running = self.running_account(conference.id).is_some();
        if !running && self.locked_idle(conference.id) {
            return Err(MediaError::Locked.into());
        }
        let media = self.media();
        media.ensure_room(conference.id, &room_spec(conference))?;
        match media.join(conference.id, spec) {
            Ok(joined) => {
                let first = self.participants_known(conference.id).is_empty();
                self.remember(conference.id, joined.participant_id, info.clone());
                Ok((joined, first))
            }
            Err(error) => {
                if !running {
                    media.end_room(conference.id);
                }
                Err(error.into())
            }
        }
    }

    /// Whether the conference is locked (read when its room is not running; a running room's
    /// lock is the media plane's).
    pub(crate) fn locked_idle(&self, conference: Uuid) -> bool {
        self.locked_idle
            .lock()
            .is_ok_and(|locked| locked.contains(&conference))
    }

    /// Whether a caller may join now; returns whether it joins as a moderator.
    fn admit_check(
        &self,
        conference: &Conference,
        request: &JoinRequest,
    ) -> Result<bool, ServiceError> {
        let status = conference.state.status;
        if status.is_ending() {
            return Err(ServiceError::Precondition(format!(
                "the conference is {}: nobody may join",
                status.as_str()
            )));
        }
        let now = now();
        if let Some(start) = conference.document.get("start_time").and_then(parse_time) {
            if now < start {
                return Err(ServiceError::NotAdmitted(format!(
                    "the conference starts at {}",
                    crate::fields::format_time(start)
                )));
            }
        }
        if let Some(end) = conference.document.get("end_time").and_then(parse_time) {
            if now >= end {
                return Err(ServiceError::NotAdmitted(format!(
                    "the conference ended at {}",
                    crate::fields::format_time(end)
                )));
            }
        }
        match request.pin.as_deref() {
            None => Ok(request.moderator),
            Some(pin) => match pin_role(conference, pin) {
                Some(moderator) => Ok(moderator || request.moderator),
                None => Err(ServiceError::NotAdmitted(
                    "the PIN does not match this conference".into(),
                )),
            },
        }
    }

    /// The live conference of the account whose PIN (the generated one, or a member or
    /// moderator PIN of its document) is `pin`, and whether the PIN is a moderator's.
    pub fn find_by_pin(
        &self,
        account: Uuid,
        pin: &str,
    ) -> Result<Option<(Conference, bool)>, ServiceError> {
        Ok(self
            .all_conferences(account)?
            .into_iter()
            .filter(|c| !c.state.status.is_ending())
            .find_map(|c| pin_role(&c, pin).map(|moderator| (c, moderator))))
    }

    /// Lets a participant whose pre-actions are done into the room.
    pub(crate) fn admit(&self, conference: &Conference, participant_id: u32) {
        let known = self.participants_known(conference.id);
        let Some(info) = known.get(&participant_id) else {
            return;
        };
        let held = !info.moderator
            && waits_for_moderator(&conference.document)
            && !self.moderator_present(conference.id);
        let releases = info.moderator
            && waits_for_moderator(&conference.document)
            && !self.moderator_present(conference.id);
        let media = self.media();
        let _ = media.update(
            conference.id,
            Some(participant_id),
            ParticipantUpdate::Speak(info.speak && !held),
            false,
        );
        let _ = media.update(
            conference.id,
            Some(participant_id),
            ParticipantUpdate::Hear(info.hear && !held),
            false,
        );
        let mut admitted = info.clone();
        admitted.admitted = true;
        self.remember(conference.id, participant_id, admitted);
        if releases {
            self.hold_members(conference.id, false);
        }
        self.set_call_status(conference.account_id, info.call_id, CallStatus::Joined);
    }

    pub(crate) fn moderator_present(&self, conference: Uuid) -> bool {
        self.participants_known(conference)
            .values()
            .any(|p| p.moderator && p.admitted)
    }

    /// Holds every admitted member silent and deaf (`hold`), or gives them back their role's
    /// settings.
    pub(crate) fn hold_members(&self, conference: Uuid, hold: bool) {
        let known = self.participants_known(conference);
        let members: Vec<(&u32, &ParticipantInfo)> =
            known.iter().filter(|(_, info)| !info.moderator).collect();
        let Some((_, member)) = members.first() else {
            return;
        };
        let media = self.media();
        let speak = member.speak && !hold;
        let hear = member.hear && !hold;
        if members.iter().all(|(_, info)| info.admitted) {
            // Every member's role settings come from the same document, so one room-wide
            // update that spares moderators covers them all (one round trip to the mixer).
            let _ = media.update(conference, None, ParticipantUpdate::Speak(speak), true);
            let _ = media.update(conference, None, ParticipantUpdate::Hear(hear), true);
        } else {
            for (&id, _) in members.iter().filter(|(_, info)| info.admitted) {
                let _ = media.update(conference, Some(id), ParticipantUpdate::Speak(speak), false);
                let _ = media.update(conference, Some(id), ParticipantUpdate::Hear(hear), false);
            }
        }
    }

    /// Starts the conference's room if needed; announces `conference-create` the first time
    /// and moves a new conference to `progressing`.
    pub(crate) fn ensure_running(&self, conference: &Conference) -> Result<(), ServiceError> {
        if conference.state.status.is_ending() {
            return Err(ServiceError::Precondition(format!(
                "the conference is {}",
                conference.state.status.as_str()
            )));
        }
        self.media()
            .ensure_room(conference.id, &room_spec(conference))?;
        if self.mark_running(
            conference.id,
            conference.account_id,
            waits_for_moderator(&conference.document),
        ) {
            // The node running the room keeps its end, whichever node created it.
            self.schedule(conference);
            self.publish(
                conference.account_id,
                conference.id,
                "conference-create",
                None,
            );
        }
        if conference.state.status == ConferenceStatus::Starting {
            self.advance_status(
                conference.account_id,
                conference.id,
                ConferenceStatus::Progressing,
            )?;
        }
        Ok(())
    }

    /// Refuses when nobody is in the conference (its room is not running).
    pub(crate) fn require_running(&self, conference: &Conference) -> Result<(), ServiceError> {
        if self.running_account(conference.id).is_some() {
            Ok(())
        } else {
            Err(ServiceError::Precondition(
                "nobody is in the conference".into(),
            ))
        }
    }

    /// Applies a changed document to the conference's room if it runs.
    pub(crate) fn apply_to_running_room(&self, conference: &Conference) {
        if self.running_account(conference.id).is_some() {
            let _ = self
                .media()
                .update_room(conference.id, &room_spec(conference));
            let waits = waits_for_moderator(&conference.document);
            self.mark_running(conference.id, conference.account_id, waits);
        }
    }

    /// Turns a media-plane report into the event subscribers see.
    pub fn on_media_event(&self, event: &crate::events::MediaEvent) {
        if self.lobby_event(event) {
            return;
        }
        let Some(account) = self.running_account(event.conference) else {
            return;
        };
        let participant = event.participant_id;
        let Some(call_id) = self.call_id(event.conference, participant) else {
            return; // kicked (already announced) or never joined through this service
        };
        let name = match event.kind {
            MediaEventKind::StartTalking => "start-talking",
            MediaEventKind::StopTalking => "stop-talking",
            MediaEventKind::Dtmf(digit) => {
                self.publish_event(ConferenceEvent {
                    account,
                    conference: event.conference,
                    name: "dtmf",
                    call_id: Some(call_id),
                    participant_id: Some(participant),
                    digit: Some(digit),
                    remote: false,
                });
                self.caller_control(account, event.conference, participant, digit.digit);
                return;
            }
            MediaEventKind::Left(why) => {
                self.departed(event.conference, participant, why);
                return;
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
        self.realtime_of(conference.id)
    }

    /// The realtime state of the conference `id` (empty when it is not running).
    pub(crate) fn realtime_of(&self, id: Uuid) -> Realtime {
        let Some(state) = self.media().room_state(id) else {
            return Realtime {
                is_locked: self.locked_idle(id),
                ..Realtime::default()
            };
        };
        let known = self.participants_known(id);
        let participants: Vec<Participant> = state
            .participants
            .into_iter()
            .filter_map(|p| {
                let info = known.get(&p.participant_id)?;
                Some(participant(p, info))
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
                self.remove(conference, &[participant_id], true, Departure::Kicked);
                return Ok(()); // the call's leaving/leaved announce it
            }
            ParticipantAction::Play(what) => {
                self.check_media_id(what)?;
                media.play(conference.id, Some(participant_id), what)?;
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
                let ids: Vec<u32> = affected.iter().map(|p| p.state.participant_id).collect();
                self.remove(conference, &ids, true, Departure::Kicked);
                return Ok(());
            }
            ParticipantAction::Play(what) => {
                self.check_media_id(what)?;
                media.play(conference.id, None, what)?;
            }
            other => media.update(conference.id, None, update_for(other), true)?,
        }
        self.announce(conference, action, &affected);
        Ok(())
    }

    /// Sets how `participant` and `other` hear each other (Kazoo's `relate`).
    pub fn relate(
        &self,
        conference: &Conference,
        participant: u32,
        other: u32,
        relationship: Relationship,
    ) -> Result<(), ServiceError> {
        self.participant(conference, participant)?;
        self.participant(conference, other)?;
        if participant == other {
            return Err(ServiceError::BadRequest(
                "a participant cannot be related to itself".into(),
            ));
        }
        let media = self.media();
        match relationship {
            Relationship::Deaf => media.relate(conference.id, participant, other, false)?,
            Relationship::Mute => media.relate(conference.id, other, participant, false)?,
            Relationship::Clear => {
                media.relate(conference.id, participant, other, true)?;
                media.relate(conference.id, other, participant, true)?;
            }
        }
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
            ParticipantAction::Kick | ParticipantAction::Play(_) => return,
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

    /// Locks or unlocks a conference. A running room changes at once; a conference without a
    /// running room keeps the lock for when its room starts (no room starts for it).
    pub fn set_locked(&self, conference: &Conference, locked: bool) -> Result<(), ServiceError> {
        {
            let room_lock = self.room_lock(conference.id);
            let _starting_or_stopping = room_lock.lock();
            if self.running_account(conference.id).is_some() {
                self.media().set_locked(conference.id, locked)?;
            }
            if let Ok(mut idle) = self.locked_idle.lock() {
                if locked {
                    idle.insert(conference.id);
                } else {
                    idle.remove(&conference.id);
                }
            }
        }
        self.publish(
            conference.account_id,
            conference.id,
            if locked { "lock" } else { "unlock" },
            None,
        );
        Ok(())
    }

    /// Plays a tone string, media file or URL to a running conference.
    pub fn play(&self, conference: &Conference, what: &str) -> Result<(), ServiceError> {
        self.check_media_id(what)?;
        self.require_running(conference)?;
        self.media().play(conference.id, None, what)?;
        Ok(())
    }
}

impl ConferenceService {
    /// Refuses a `play` action's `media_id` that names no media the server may play.
    fn check_media_id(&self, what: &str) -> Result<(), ServiceError> {
        let mut errors = crate::ValidationErrors::default();
        crate::schema::check_media(&mut errors, &["media_id"], what, self.outbound());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Validation(errors))
        }
    }
}

/// The actions under `key` (`pre_actions`, `post_actions`) of a document.
pub(crate) fn actions_of(document: &Value, key: &str) -> Vec<Value> {
    document
        .get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Whether `pin` opens `conference`: `Some(true)` for a moderator PIN, `Some(false)` for the
/// generated PIN or a member PIN.
pub(crate) fn pin_role(conference: &Conference, pin: &str) -> Option<bool> {
    let in_role = |role: &str| {
        conference
            .document
            .get(role)
            .and_then(|r| r.get("pins"))
            .and_then(Value::as_array)
            .is_some_and(|pins| pins.iter().any(|p| p.as_str() == Some(pin)))
    };
    if in_role("moderator") {
        Some(true)
    } else if conference.state.pin.as_deref() == Some(pin) || in_role("member") {
        Some(false)
    } else {
        None
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
