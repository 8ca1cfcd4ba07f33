//! WebRTC callers (WHIP and WHEP): a browser joins a conference by its id with an API token or
//! a PIN, and gets a session — an unguessable id naming its account, conference and
//! participant — for trickle ICE, mute and leaving. A WebRTC participant is an ordinary one
//! (the same [`ConferenceService::join`], the same events and actions); its session ends when
//! it leaves, whatever the reason.

use std::collections::HashMap;

use tokio::sync::watch;
use uuid::Uuid;

use crate::events::Departure;
use crate::live::{pin_role, JoinRequest, Participant, ParticipantAction};
use crate::service::{Conference, ConferenceService, ServiceError};

/// What the caller presented as `Authorization: Bearer …`.
#[derive(Clone, PartialEq, Eq)]
pub enum WebCredential {
    /// An API token of any face: the conference must be its account's.
    Token(String),
    /// The conference's generated PIN (member), or a member or moderator PIN of its document
    /// (that role).
    Pin(String),
}

impl std::fmt::Debug for WebCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Token(_) => "Token(…)",
            Self::Pin(_) => "Pin(…)",
        })
    }
}

impl WebCredential {
    /// A bearer value: digits only is a PIN, anything else an API token.
    pub fn from_bearer(value: &str) -> Self {
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            Self::Pin(value.to_owned())
        } else {
            Self::Token(value.to_owned())
        }
    }
}

/// How a WebRTC caller takes part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebKind {
    /// WHIP: speaks, and (tutti's extension) hears the room when its offer is `sendrecv`.
    Whip,
    /// WHEP: listens only; joins muted whatever its role says.
    Whep,
}

impl WebKind {
    /// The path segment: `whip` or `whep`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whip => "whip",
            Self::Whep => "whep",
        }
    }
}

/// A WebRTC participant's session.
#[derive(Clone)]
pub struct WebSession {
    /// The session id: 128 random bits as 32 hex digits. Whoever holds it acts for the
    /// participant, so it is never shown to anyone else.
    pub id: String,
    /// WHIP or WHEP.
    pub kind: WebKind,
    /// The conference's account.
    pub account: Uuid,
    /// The conference.
    pub conference: Uuid,
    /// The participant in the conference's room.
    pub participant_id: u32,
    /// The participant's call.
    pub call_id: Uuid,
    left: watch::Receiver<Option<Departure>>,
}

impl std::fmt::Debug for WebSession {
    /// Everything but the id, which is a capability and stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSession")
            .field("kind", &self.kind)
            .field("account", &self.account)
            .field("conference", &self.conference)
            .field("participant_id", &self.participant_id)
            .field("call_id", &self.call_id)
            .finish_non_exhaustive()
    }
}

impl WebSession {
    /// Why the participant left, once it has (`None` until then); `changed()` wakes when it
    /// leaves.
    pub fn departure(&self) -> watch::Receiver<Option<Departure>> {
        self.left.clone()
    }
}

/// The live sessions, by id and by participant.
#[derive(Default)]
pub(crate) struct WebSessions {
    by_id: HashMap<String, (WebSession, watch::Sender<Option<Departure>>)>,
    by_participant: HashMap<(Uuid, u32), String>,
}

impl std::fmt::Debug for WebSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSessions")
            .field("sessions", &self.by_id.len())
            .finish()
    }
}

impl ConferenceService {
    /// Joins a WebRTC caller to the conference `conference_id` with `credential`; `request`
    /// carries the offer and caller id (its `pin` and `moderator` are set from the
    /// credential). A token of another account, or an unknown id, is
    /// [`ServiceError::NotFound`]; a PIN is checked before anything else about the
    /// conference, and an unknown id with a PIN is refused as a wrong PIN is, so a PIN says
    /// nothing about which ids exist. Returns the session, the participant and the SDP answer.
    pub fn join_web(
        &self,
        conference_id: &str,
        credential: &WebCredential,
        kind: WebKind,
        mut request: JoinRequest,
    ) -> Result<(WebSession, Participant, String), ServiceError> {
        let account = match credential {
            WebCredential::Token(token) => {
                request.pin = None;
                self.account_for_token(token)?
            }
            WebCredential::Pin(pin) => {
                let conference = self
                    .conference_by_id(conference_id)?
                    .filter(|c| pin_role(c, pin).is_some())
                    .ok_or_else(|| {
                        ServiceError::NotAdmitted("the PIN does not match this conference".into())
                    })?;
                request.pin = Some(pin.clone());
                conference.account_id
            }
        };
        request.moderator = false;
        if kind == WebKind::Whep {
            request.muted = true;
        }
        let (participant, answer) = self.join(account, conference_id, &request)?;
        let conference = Uuid::parse_str(conference_id)
            .map_err(|_| ServiceError::NotFound(conference_id.into()))?;
        let session = self.open_web_session(kind, account, conference, &participant);
        Ok((session, participant, answer))
    }

    /// A conference by its id, whichever account holds it.
    fn conference_by_id(&self, id: &str) -> Result<Option<Conference>, ServiceError> {
        let Ok(id) = Uuid::parse_str(id) else {
            return Ok(None);
        };
        Ok(self.store().conference_by_id(id)?.map(Conference::from))
    }

    fn open_web_session(
        &self,
        kind: WebKind,
        account: Uuid,
        conference: Uuid,
        participant: &Participant,
    ) -> WebSession {
        let participant_id = participant.state.participant_id;
        let (sender, left) = watch::channel(None);
        let session = WebSession {
            id: Uuid::new_v4().simple().to_string(),
            kind,
            account,
            conference,
            participant_id,
            call_id: participant.call_id,
            left,
        };
        if let Ok(mut sessions) = self.web.lock() {
            sessions
                .by_participant
                .insert((conference, participant_id), session.id.clone());
            sessions
                .by_id
                .insert(session.id.clone(), (session.clone(), sender));
        }
        // A participant removed before its session existed (kicked at once) left without it.
        if self.call_id(conference, participant_id) != Some(participant.call_id) {
            self.web_participant_left(conference, participant_id, Departure::Kicked);
        }
        session
    }

    /// The live session `id`, if any.
    pub fn web_session(&self, id: &str) -> Option<WebSession> {
        self.web
            .lock()
            .ok()?
            .by_id
            .get(id)
            .map(|(session, _)| session.clone())
    }

    /// A participant's departure is booked: its WebRTC session ends, telling whoever waits why.
    pub(crate) fn web_participant_left(&self, conference: Uuid, participant: u32, why: Departure) {
        let ended = self.web.lock().ok().and_then(|mut sessions| {
            let id = sessions.by_participant.remove(&(conference, participant))?;
            sessions.by_id.remove(&id)
        });
        if let Some((_, sender)) = ended {
            sender.send_replace(Some(why));
        }
    }

    /// A WHIP/WHEP `PATCH`: trickled ICE candidates, or an ICE restart (answered with a
    /// fragment).
    pub fn patch_web_ice(
        &self,
        session: &WebSession,
        sdpfrag: &str,
    ) -> Result<Option<String>, ServiceError> {
        Ok(self
            .media()
            .patch_ice(session.conference, session.participant_id, sdpfrag)?)
    }

    /// The session's participant hangs up (a WHIP/WHEP `DELETE`).
    pub fn leave_web(&self, session: &WebSession) -> Result<(), ServiceError> {
        let conference = self.conference(session.account, &session.conference.to_string())?;
        self.remove(
            &conference,
            &[session.participant_id],
            false,
            Departure::Hangup,
        );
        // Gone already (the departure raced this) or not: the session ends here.
        self.web_participant_left(
            session.conference,
            session.participant_id,
            Departure::Hangup,
        );
        Ok(())
    }

    /// Mutes or unmutes the session's participant, as the `mute`/`unmute` actions do (everyone
    /// sees it; a caller may mute and unmute itself as with the keypad's `*2`/`*3`).
    pub fn set_web_muted(&self, session: &WebSession, muted: bool) -> Result<(), ServiceError> {
        let conference = self.conference(session.account, &session.conference.to_string())?;
        let action = if muted {
            ParticipantAction::Mute
        } else {
            ParticipantAction::Unmute
        };
        self.act_on_participant(&conference, session.participant_id, &action)
    }

    /// Everyone in the session's conference now (empty when its room stopped).
    pub fn web_roster(&self, session: &WebSession) -> Vec<Participant> {
        self.realtime_of(session.conference).participants
    }

    /// The ICE servers (STUN/TURN) browsers should use: a JSON array of `RTCIceServer`.
    pub fn ice_servers(&self) -> serde_json::Value {
        self.media().ice_servers()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dialin_tests::setup;
    use crate::ServiceError;

    const OFFER: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";

    fn join(
        service: &ConferenceService,
        id: &str,
        credential: WebCredential,
        kind: WebKind,
    ) -> Result<(WebSession, Participant, String), ServiceError> {
        let request = JoinRequest {
            offer: OFFER.into(),
            caller_id_name: Some("Browser".into()),
            ..JoinRequest::default()
        };
        service.join_web(id, &credential, kind, request)
    }

    #[test]
    fn bearer_digits_are_a_pin_anything_else_a_token() {
        assert_eq!(
            WebCredential::from_bearer("123456"),
            WebCredential::Pin("123456".into())
        );
        for token in ["12a456", "", "abc"] {
            assert_eq!(
                WebCredential::from_bearer(token),
                WebCredential::Token(token.into())
            );
        }
    }

    #[test]
    fn pins_give_roles_and_say_nothing_about_other_ids() {
        let (service, _media, account) = setup();
        let conference = service
            .create_conference(
                account,
                &json!({"member": {"pins": ["1111"], "join_muted": false}, "moderator": {"pins": ["9999"]}}),
            )
            .unwrap();
        let id = conference.id.simple().to_string();
        let generated = conference.state.pin.clone().unwrap();
        let role = |pin: &str| {
            let (_, participant, _) =
                join(&service, &id, WebCredential::Pin(pin.into()), WebKind::Whip).unwrap();
            participant.state.moderator
        };
        assert!(!role("1111"), "a member PIN makes a member");
        assert!(role("9999"), "a moderator PIN makes a moderator");
        assert!(!role(&generated), "the generated PIN makes a member");

        let refused = |id: &str, pin: &str| match join(
            &service,
            id,
            WebCredential::Pin(pin.into()),
            WebKind::Whip,
        ) {
            Err(ServiceError::NotAdmitted(text)) => text,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let wrong = refused(&id, "0000");
        assert_eq!(wrong, "the PIN does not match this conference");
        assert_eq!(refused(&Uuid::now_v7().simple().to_string(), "1111"), wrong);
        assert_eq!(refused("not-an-id", "1111"), wrong);
        // Another account's conference with its own PIN: the same refusal as a wrong one.
        let other = service.create_account("b").unwrap().id;
        let theirs = service
            .create_conference(other, &json!({"member": {"pins": ["2222"]}}))
            .unwrap();
        assert_eq!(refused(&id, "2222"), wrong);
        assert!(join(
            &service,
            &theirs.id.simple().to_string(),
            WebCredential::Pin("2222".into()),
            WebKind::Whip
        )
        .is_ok());
    }

    #[test]
    fn tokens_join_their_own_accounts_conferences_only() {
        let (service, _media, account) = setup();
        let conference = service.create_conference(account, &json!({})).unwrap();
        let id = conference.id.simple().to_string();
        let other = service.create_account("b").unwrap().api_key;
        let other = service.authenticate(&other).unwrap().token;
        assert!(matches!(
            join(&service, &id, WebCredential::Token(other), WebKind::Whip),
            Err(ServiceError::NotFound(_))
        ));
        assert!(matches!(
            join(
                &service,
                &id,
                WebCredential::Token("nope".into()),
                WebKind::Whip
            ),
            Err(ServiceError::InvalidCredentials)
        ));
        let own = service.create_account("c").unwrap();
        let token = service.authenticate(&own.api_key).unwrap().token;
        let theirs = service.create_conference(own.id, &json!({})).unwrap();
        let (session, participant, answer) = join(
            &service,
            &theirs.id.to_string(),
            WebCredential::Token(token),
            WebKind::Whip,
        )
        .unwrap();
        assert!(answer.starts_with("answer:"));
        assert_eq!(
            (session.account, session.conference, session.participant_id),
            (own.id, theirs.id, participant.state.participant_id)
        );
        assert!(!participant.state.moderator, "a token joins as a member");
        assert_eq!(participant.caller_id_name.as_deref(), Some("Browser"));
    }

    #[test]
    fn sessions_patch_mute_and_end_when_their_participant_leaves() {
        let (service, media, account) = setup();
        let conference = service
            .create_conference(
                account,
                &json!({"member": {"pins": ["1234"], "join_muted": false}}),
            )
            .unwrap();
        let id = conference.id.simple().to_string();
        let pin = || WebCredential::Pin("1234".into());
        let (whip, _, _) = join(&service, &id, pin(), WebKind::Whip).unwrap();
        let (whep, listener, _) = join(&service, &id, pin(), WebKind::Whep).unwrap();
        assert!(!listener.state.speak, "WHEP joins muted");
        assert_eq!(whip.id.len(), 32);
        assert_ne!(whip.id, whep.id);
        assert_eq!(
            service.web_session(&whip.id).unwrap().participant_id,
            whip.participant_id
        );

        // Trickle and restart go to the media plane for the session's participant.
        assert_eq!(service.patch_web_ice(&whip, "a=candidate:1").unwrap(), None);
        assert_eq!(
            service
                .patch_web_ice(&whip, "a=ice-ufrag:new")
                .unwrap()
                .as_deref(),
            Some("a=ice-ufrag:server")
        );
        assert!(media.log().contains(&format!(
            "patch:{}:{}:a=candidate:1",
            conference.id, whip.participant_id
        )));

        // Mute and unmute are the ordinary actions: the roster shows them.
        let speaks = |service: &ConferenceService| {
            service
                .web_roster(&whip)
                .into_iter()
                .find(|p| p.state.participant_id == whip.participant_id)
                .unwrap()
                .state
                .speak
        };
        service.set_web_muted(&whip, true).unwrap();
        assert!(!speaks(&service));
        service.set_web_muted(&whip, false).unwrap();
        assert!(speaks(&service));
        assert_eq!(service.web_roster(&whip).len(), 2);

        // A kick ends the session and says why; a DELETE is a hang-up.
        let kicked = whep.departure();
        assert_eq!(*kicked.borrow(), None);
        service
            .act_on_participant(&conference, whep.participant_id, &ParticipantAction::Kick)
            .unwrap();
        assert_eq!(*kicked.borrow(), Some(Departure::Kicked));
        assert!(service.web_session(&whep.id).is_none());
        let left = whip.departure();
        service.leave_web(&whip).unwrap();
        assert_eq!(*left.borrow(), Some(Departure::Hangup));
        assert!(service.web_session(&whip.id).is_none());
        assert!(service.realtime(&conference).participants.is_empty());
    }

    #[test]
    fn sessions_end_with_their_room() {
        let (service, _media, account) = setup();
        let conference = service
            .create_conference(account, &json!({"member": {"pins": ["1234"]}}))
            .unwrap();
        let id = conference.id.simple().to_string();
        let (session, _, _) = join(
            &service,
            &id,
            WebCredential::Pin("1234".into()),
            WebKind::Whip,
        )
        .unwrap();
        service.delete_conference(account, &id).unwrap();
        assert_eq!(
            *session.departure().borrow(),
            Some(Departure::ConferenceEnded)
        );
        assert!(service.web_session(&session.id).is_none());
    }
}
