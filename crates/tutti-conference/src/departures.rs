//! How participants leave and conferences end: calls move to `leaving` (hearing the
//! post-actions) and then `leaved`; `connect` partners follow each other out; an ending
//! conference is `terminated` once its room is empty.

use uuid::Uuid;

use crate::events::Departure;
use crate::lifecycle::{CallStatus, ConferenceStatus};
use crate::live::actions_of;
use crate::media::ParticipantUpdate;
use crate::service::{Conference, ConferenceService, ServiceError};

impl ConferenceService {
    /// Removes participants: each call moves to `leaving`, hears the conference's
    /// `post_actions` when `post` is set and there are some, then leaves the room. Their
    /// departures are booked (once each) with `why`.
    pub(crate) fn remove(
        &self,
        conference: &Conference,
        participants: &[u32],
        post: bool,
        why: Departure,
    ) {
        let mut leaving = Vec::with_capacity(participants.len());
        for &id in participants {
            let mut call = None;
            // A participant whose departure is already booked is left alone.
            let known = self.update_known(conference.id, id, |info| {
                info.admitted = false;
                call = Some(info.call_id);
            });
            if let (true, Some(call)) = (known, call) {
                self.set_call_status(conference.account_id, call, CallStatus::Leaving);
                leaving.push(id);
            }
        }
        let post_actions = actions_of(&conference.document, "post_actions");
        let service = self.shared();
        match service {
            Some(service) if post && !post_actions.is_empty() => {
                for id in leaving {
                    let service = service.clone();
                    let conference = conference.clone();
                    let actions = post_actions.clone();
                    crate::actions::spawn(move || {
                        let media = service.media();
                        let _ = media.update(
                            conference.id,
                            Some(id),
                            ParticipantUpdate::Speak(false),
                            false,
                        );
                        let _ = media.update(
                            conference.id,
                            Some(id),
                            ParticipantUpdate::Hear(false),
                            false,
                        );
                        service.run_actions(&conference, id, &actions);
                        let _ = service.media().kick(conference.id, id);
                        service.departed(conference.id, id, why);
                    });
                }
            }
            _ => {
                let _ = self.media().kick_many(conference.id, &leaving);
                for id in leaving {
                    self.departed(conference.id, id, why);
                }
            }
        }
    }

    /// Books a participant's departure, whoever reports it first (the service after a kick,
    /// the media plane after a timeout or hang-up); later reports of the same departure are
    /// ignored. Its call becomes `leaved`; moderator rules, `connect` partners and the
    /// conference's end follow; the room stops when the last participant is gone.
    pub(crate) fn departed(&self, conference_id: Uuid, participant_id: u32, why: Departure) {
        let Some(info) = self.take_participant(conference_id, participant_id) else {
            return;
        };
        self.sip_participant_left(conference_id, participant_id, why);
        self.web_participant_left(conference_id, participant_id, why);
        tracing::info!(
            conference = %conference_id,
            participant = participant_id,
            call = %info.call_id,
            reason = why.as_str(),
            "participant left"
        );
        let Some(account) = self.running_account(conference_id) else {
            return;
        };
        self.set_call_status(account, info.call_id, CallStatus::Leaving);
        self.set_call_status(account, info.call_id, CallStatus::Leaved);
        let Ok(conference) = self.conference(account, &conference_id.to_string()) else {
            return;
        };
        if info.moderator && self.waits(conference_id) && !self.moderator_present(conference_id) {
            self.hold_members(conference_id, true);
        }
        let remaining: Vec<u32> = self.participants_known(conference_id).into_keys().collect();
        if conference.kind() == "connect" && remaining.len() == 1 {
            // One side of a two-party connection left: the other goes too, and the conference
            // ends.
            if let Ok(conference) =
                self.advance_status(account, conference_id, ConferenceStatus::Terminating)
            {
                self.unschedule(conference_id);
                self.remove(&conference, &remaining, true, Departure::Kicked);
            }
            return;
        }
        // Decided under the room's lock: a join starting meanwhile either is counted here or
        // finds the room stopped and starts it again.
        let room_lock = self.room_lock(conference_id);
        let _starting_or_stopping = room_lock.lock();
        if self.participants_known(conference_id).is_empty() {
            self.publish(account, conference_id, "status-changed", None);
            if conference.state.status.is_ending() {
                self.finish_termination(&conference);
            } else {
                // Nobody is left: the room stops; the document stays.
                self.close_room(&conference);
            }
        }
    }

    /// Ends a conference (VoIPbin's DELETE, its `timeout`, FoneStorm's `end_time`): it becomes
    /// `terminating`, everyone is removed (hearing the post-actions), and once the room is
    /// empty it is `terminated`.
    pub fn terminate(&self, account: Uuid, id: &str) -> Result<Conference, ServiceError> {
        let conference = self.conference(account, id)?;
        let conference =
            self.advance_status(account, conference.id, ConferenceStatus::Terminating)?;
        self.unschedule(conference.id);
        let everyone: Vec<u32> = self.participants_known(conference.id).into_keys().collect();
        if everyone.is_empty() {
            self.finish_termination(&conference);
        } else {
            self.remove(&conference, &everyone, true, Departure::ConferenceEnded);
        }
        self.conference(account, id)
    }

    /// The last step of ending: the room closes and the conference is `terminated`.
    fn finish_termination(&self, conference: &Conference) {
        self.close_room(conference);
        let _ = self.advance_status(
            conference.account_id,
            conference.id,
            ConferenceStatus::Terminated,
        );
    }

    /// Ends a conference's room: anyone still in it leaves, a recording is finished.
    pub(crate) fn close_room(&self, conference: &Conference) {
        self.media().end_room(conference.id);
        for (id, info) in self.take_participants(conference.id) {
            self.sip_participant_left(conference.id, id, Departure::ConferenceEnded);
            self.web_participant_left(conference.id, id, Departure::ConferenceEnded);
            tracing::info!(
                conference = %conference.id,
                participant = id,
                call = %info.call_id,
                reason = Departure::ConferenceEnded.as_str(),
                "participant left"
            );
            self.set_call_status(conference.account_id, info.call_id, CallStatus::Leaving);
            self.set_call_status(conference.account_id, info.call_id, CallStatus::Leaved);
        }
        self.finish_active_recording(conference.account_id, conference.id);
        if self.mark_stopped(conference.id) {
            self.publish(
                conference.account_id,
                conference.id,
                "conference-destroy",
                None,
            );
        }
    }

    /// Ends every running room (the server is stopping): participants leave and are announced,
    /// recordings are finished. Returns how many rooms ended.
    pub fn end_all_rooms(&self) -> usize {
        let running = self.running_conferences();
        for (id, account) in &running {
            if let Ok(conference) = self.conference(*account, &id.to_string()) {
                self.close_room(&conference);
            }
        }
        running.len()
    }
}
