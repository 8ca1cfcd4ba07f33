//! The dial-in flow, caller controls and dial-out against a media plane that keeps rooms in
//! memory and records what it was asked to do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;
use tutti_store::SqliteStore;
use uuid::Uuid;

use crate::dialout::{DialOut, DialRequest, Dialer};
use crate::events::{Digit, MediaEvent, MediaEventKind};
use crate::lobby::*;
use crate::media::*;
use crate::{CallState, CallStatus, ConferenceService, IncomingCall, JoinRequest, LiveCall};

#[derive(Default)]
struct Rooms {
    rooms: HashMap<Uuid, (bool, Vec<(ParticipantState, u16)>)>,
    next_id: u32,
    next_port: u16,
    log: Vec<String>,
}

/// Rooms in memory; ports count up from 30000; answers are `answer:<port>`.
#[derive(Default)]
pub(crate) struct Media(Mutex<Rooms>);

impl Media {
    pub(crate) fn log(&self) -> Vec<String> {
        self.0.lock().unwrap().log.clone()
    }
    fn said(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter_map(|l| l.strip_prefix("say:").map(str::to_owned))
            .collect()
    }
    fn rooms(&self) -> usize {
        self.0.lock().unwrap().rooms.len()
    }
    fn note(&self, line: String) {
        self.0.lock().unwrap().log.push(line);
    }
}

impl MediaPlane for Media {
    fn check_tone(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn ensure_room(&self, room: Uuid, _: &RoomSpec) -> Result<(), MediaError> {
        self.0.lock().unwrap().rooms.entry(room).or_default();
        Ok(())
    }
    fn end_room(&self, room: Uuid) {
        self.0.lock().unwrap().rooms.remove(&room);
    }
    fn join(&self, room: Uuid, spec: &JoinSpec) -> Result<JoinedMedia, MediaError> {
        let mut rooms = self.0.lock().unwrap();
        rooms.next_id += 1;
        rooms.next_port += 2;
        let id = rooms.next_id;
        let port = spec.port.unwrap_or(30000 + rooms.next_port);
        rooms
            .log
            .push(format!("join:{room}:{:?}:{}", spec.port, spec.offer));
        let (locked, members) = rooms
            .rooms
            .get_mut(&room)
            .ok_or(MediaError::Unavailable("no room".into()))?;
        if *locked {
            return Err(MediaError::Locked);
        }
        members.push((
            ParticipantState {
                participant_id: id,
                talking: false,
                mute_detect: false,
                current_energy: 0.0,
                energy_level: spec.energy_level,
                speak: !spec.muted,
                hear: !spec.deaf,
                moderator: spec.moderator,
            },
            port,
        ));
        Ok(JoinedMedia {
            participant_id: id,
            answer: format!("answer:{port}"),
            port,
        })
    }
    fn offer(&self) -> Result<OfferedMedia, MediaError> {
        Ok(OfferedMedia {
            offer: "offer:40000".into(),
            port: 40000,
        })
    }
    fn detach(&self, room: Uuid, participant: u32) -> Result<u16, MediaError> {
        let mut rooms = self.0.lock().unwrap();
        rooms.log.push(format!("detach:{room}"));
        let members = &mut rooms
            .rooms
            .get_mut(&room)
            .ok_or(MediaError::NoParticipant(participant))?
            .1;
        let at = members
            .iter()
            .position(|(p, _)| p.participant_id == participant)
            .ok_or(MediaError::NoParticipant(participant))?;
        Ok(members.remove(at).1)
    }
    fn release_port(&self, port: u16) {
        self.note(format!("release:{port}"));
    }
    fn renegotiate(&self, room: Uuid, participant: u32, offer: &str) -> Result<String, MediaError> {
        self.note(format!("renegotiate:{room}:{participant}:{offer}"));
        Ok(format!("re:{offer}"))
    }
    fn kick(&self, room: Uuid, participant: u32) -> Result<(), MediaError> {
        let mut rooms = self.0.lock().unwrap();
        if let Some((_, members)) = rooms.rooms.get_mut(&room) {
            members.retain(|(p, _)| p.participant_id != participant);
        }
        Ok(())
    }
    fn update(
        &self,
        room: Uuid,
        participant: Option<u32>,
        update: ParticipantUpdate,
        _: bool,
    ) -> Result<(), MediaError> {
        let mut rooms = self.0.lock().unwrap();
        for (p, _) in rooms
            .rooms
            .get_mut(&room)
            .map(|r| &mut r.1)
            .into_iter()
            .flatten()
        {
            if participant.is_none_or(|id| id == p.participant_id) {
                match update {
                    ParticipantUpdate::Speak(on) => p.speak = on,
                    ParticipantUpdate::Hear(on) => p.hear = on,
                }
            }
        }
        Ok(())
    }
    fn set_locked(&self, room: Uuid, locked: bool) -> Result<(), MediaError> {
        if let Some(r) = self.0.lock().unwrap().rooms.get_mut(&room) {
            r.0 = locked;
        }
        Ok(())
    }
    fn play(&self, room: Uuid, _: Option<u32>, media: &str) -> Result<Duration, MediaError> {
        self.note(format!("play:{room}:{media}"));
        Ok(Duration::ZERO)
    }
    fn can_speak(&self) -> bool {
        true
    }
    fn speak(
        &self,
        _: Uuid,
        _: Option<u32>,
        text: &str,
        _: &str,
        _: &str,
    ) -> Result<Duration, MediaError> {
        self.note(format!("say:{text}"));
        Ok(Duration::from_millis(1))
    }
    fn update_room(&self, _: Uuid, _: &RoomSpec) -> Result<(), MediaError> {
        Ok(())
    }
    fn relate(&self, _: Uuid, _: u32, _: u32, _: bool) -> Result<(), MediaError> {
        Ok(())
    }
    fn room_state(&self, room: Uuid) -> Option<RoomState> {
        self.0
            .lock()
            .unwrap()
            .rooms
            .get(&room)
            .map(|(locked, members)| RoomState {
                locked: *locked,
                participants: members.iter().map(|(p, _)| p.clone()).collect(),
            })
    }
    fn start_recording(&self, _: Uuid, _: Option<Duration>) -> Result<String, MediaError> {
        Err(MediaError::Unavailable("no recording here".into()))
    }
    /// Logs `patch:<room>:<participant>:<fragment>`; a fragment with a new `ice-ufrag` is an
    /// ICE restart, answered `a=ice-ufrag:server`.
    fn patch_ice(
        &self,
        room: Uuid,
        participant: u32,
        sdpfrag: &str,
    ) -> Result<Option<String>, MediaError> {
        self.note(format!("patch:{room}:{participant}:{sdpfrag}"));
        Ok(sdpfrag
            .contains("a=ice-ufrag:")
            .then(|| "a=ice-ufrag:server".to_owned()))
    }
    fn stop_recording(&self, _: Uuid) -> Result<(), MediaError> {
        Ok(())
    }
}

pub(crate) fn setup() -> (Arc<ConferenceService>, Arc<Media>, Uuid) {
    let media = Arc::new(Media::default());
    let service = ConferenceService::new(
        Arc::new(SqliteStore::in_memory().unwrap()),
        media.clone(),
        Duration::from_secs(3600),
    );
    service.set_entry_timeout(Duration::from_millis(300));
    let account = service.create_account("a").unwrap().id;
    (service, media, account)
}

fn incoming(account: Uuid, dialed: &str) -> IncomingCall {
    IncomingCall {
        account,
        dialed: dialed.into(),
        offer: Some("offer-from-phone".into()),
        caller_id_name: Some("Phone".into()),
        caller_id_number: Some("+4930123".into()),
        signalled_source: None,
    }
}

/// Waits (at most 5 s) until the call's state passes `test`.
fn wait_for(
    state: &mut watch::Receiver<CallState>,
    test: impl Fn(&CallState) -> bool,
) -> CallState {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = state.borrow_and_update().clone();
        if test(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "the call stayed {now:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn joined(state: &CallState) -> bool {
    matches!(state, CallState::Joined { .. })
}

fn ended(state: &CallState) -> bool {
    matches!(state, CallState::Ended { .. })
}

fn press(call: &LiveCall, keys: &str) {
    for key in keys.chars() {
        call.press(key, 100);
    }
}

/// Waits until the flow has said `text` `times` times.
fn wait_said(media: &Media, text: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while media.said().iter().filter(|t| *t == text).count() < times {
        assert!(
            Instant::now() < deadline,
            "never said {text:?} {times} times: {:?}",
            media.said()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_conference_number_joins_straight_in_and_unknown_numbers_are_not_found() {
    let (s, media, a) = setup();
    let b = s.create_account("b").unwrap().id;
    let room = s
        .create_conference(a, &json!({"conference_numbers": ["1000"], "moderator": {"numbers": ["1001"]}, "play_welcome": false}))
        .unwrap();
    let call = s.answer_call(incoming(a, "1000")).unwrap();
    let CallState::Joined {
        conference,
        participant_id,
        call_id,
    } = call.state().borrow().clone()
    else {
        panic!("not joined: {:?}", call.state().borrow());
    };
    assert_eq!(conference, room.id);
    assert_eq!(call.sdp(), "answer:30002");
    let everyone = s.realtime(&room).participants;
    assert_eq!(everyone.len(), 1);
    assert_eq!(everyone[0].state.participant_id, participant_id);
    assert_eq!(everyone[0].call_id, call_id);
    assert_eq!(everyone[0].caller_id_number.as_deref(), Some("+4930123"));
    assert!(
        !everyone[0].state.moderator && !everyone[0].state.speak,
        "a member joins muted by default"
    );
    assert_eq!(
        s.call(a, &call_id.to_string()).unwrap().status,
        CallStatus::Joined
    );
    // The moderator number gives the role.
    let moderator = s.answer_call(incoming(a, "1001")).unwrap();
    let CallState::Joined { participant_id, .. } = moderator.state().borrow().clone() else {
        panic!()
    };
    assert!(
        s.participant(&room, participant_id)
            .unwrap()
            .state
            .moderator
    );
    assert!(media.said().is_empty(), "no lobby, no prompts");
    // Numbers route within the account only.
    assert!(matches!(
        s.answer_call(incoming(b, "1000")),
        Err(crate::ServiceError::NotFound(_))
    ));
    assert!(matches!(
        s.answer_call(incoming(a, "999")),
        Err(crate::ServiceError::NotFound(_))
    ));
}

#[test]
fn the_general_number_asks_for_the_conference_number_and_pin_then_moves_the_caller_in() {
    let (s, media, a) = setup();
    s.replace_sip_directory(a, &json!({"numbers": [{"number": "+15551230000"}]}))
        .unwrap();
    let room = s
        .create_conference(a, &json!({"conference_numbers": ["2000"], "member": {"pins": ["1111"]}, "moderator": {"pins": ["9999"]}}))
        .unwrap();
    let call = s.answer_call(incoming(a, "+15551230000")).unwrap();
    assert_eq!(*call.state().borrow(), CallState::Lobby);
    assert_eq!(call.sdp(), "answer:30002", "answered from the lobby");
    assert!(
        s.list_conferences(a, None, None).unwrap().0.len() == 1,
        "the lobby is no conference"
    );
    let mut state = call.state();
    wait_said(&media, PROMPT_ENTER_NUMBER, 1);
    press(&call, "2000#");
    wait_said(&media, PROMPT_ENTER_PIN, 1);
    // RFC 4733 keys reach the flow the same way as SIP INFO.
    for key in "9999#".chars() {
        let lobby = media
            .log()
            .iter()
            .find_map(|l| {
                l.strip_prefix("join:")
                    .and_then(|l| l.split(':').next())
                    .map(str::to_owned)
            })
            .unwrap();
        s.on_media_event(&MediaEvent {
            conference: Uuid::parse_str(&lobby).unwrap(),
            participant_id: 1,
            kind: MediaEventKind::Dtmf(Digit {
                digit: key,
                duration_ms: 100,
            }),
        });
    }
    let CallState::Joined {
        conference,
        participant_id,
        ..
    } = wait_for(&mut state, joined)
    else {
        unreachable!()
    };
    assert_eq!(conference, room.id);
    assert_eq!(
        media.said(),
        vec![PROMPT_WELCOME, PROMPT_ENTER_NUMBER, PROMPT_ENTER_PIN]
    );
    let log = media.log();
    assert!(log.iter().any(|l| l.starts_with("detach:")), "{log:?}");
    assert!(
        log.contains(&format!("join:{}:Some(30002):offer-from-phone", room.id)),
        "the caller keeps its port: {log:?}"
    );
    assert!(
        s.participant(&room, participant_id)
            .unwrap()
            .state
            .moderator,
        "a moderator PIN"
    );
    assert_eq!(media.rooms(), 1, "the lobby room ended");
    // Hanging up leaves with no BYE due.
    call.hang_up();
    assert!(s.realtime(&room).participants.is_empty());
    assert!(joined(&call.state().borrow()));
}

#[test]
fn three_wrong_pins_say_goodbye_and_end_the_call() {
    let (s, media, a) = setup();
    s.create_conference(
        a,
        &json!({"conference_numbers": ["2000"], "member": {"pins": ["1111"]}}),
    )
    .unwrap();
    let call = s.answer_call(incoming(a, "2000")).unwrap();
    let mut state = call.state();
    for attempt in 1..=3 {
        wait_said(&media, PROMPT_ENTER_PIN, attempt);
        press(&call, "0000#");
    }
    assert_eq!(
        wait_for(&mut state, ended),
        CallState::Ended {
            reason: "wrong_pin".into()
        }
    );
    assert_eq!(
        media.said(),
        vec![
            PROMPT_WELCOME,
            PROMPT_ENTER_PIN,
            PROMPT_INVALID,
            PROMPT_ENTER_PIN,
            PROMPT_INVALID,
            PROMPT_ENTER_PIN,
            PROMPT_INVALID,
            PROMPT_GOODBYE
        ]
    );
    assert_eq!(media.rooms(), 0, "the lobby room ended");
}

#[test]
fn an_entry_ends_after_the_timeout_and_a_generated_pin_opens_its_conference() {
    let (s, media, a) = setup();
    s.replace_sip_directory(a, &json!({"numbers": [{"number": "5000"}]}))
        .unwrap();
    let room = s
        .create_conference(a, &json!({"member": {"pins": ["1111"]}}))
        .unwrap();
    let pin = room.state.pin.clone().unwrap();
    let call = s.answer_call(incoming(a, "5000")).unwrap();
    let mut state = call.state();
    wait_said(&media, PROMPT_ENTER_NUMBER, 1);
    // No `#`: the entry ends when no key came for the entry timeout.
    press(&call, &pin);
    let CallState::Joined {
        conference,
        participant_id,
        ..
    } = wait_for(&mut state, joined)
    else {
        unreachable!()
    };
    assert_eq!(conference, room.id);
    assert!(
        !s.participant(&room, participant_id)
            .unwrap()
            .state
            .moderator
    );
    assert!(
        !media.said().contains(&PROMPT_ENTER_PIN.to_owned()),
        "the PIN was the entry"
    );
}

#[test]
fn a_full_conference_plays_its_refusal_and_ends_the_call() {
    let (s, media, a) = setup();
    let room = s
        .create_conference(a, &json!({"conference_numbers": ["2000"], "max_participants": 1, "max_members_media": "busy.wav"}))
        .unwrap();
    s.join(
        a,
        &room.id.to_string(),
        &JoinRequest {
            offer: "rtp".into(),
            ..JoinRequest::default()
        },
    )
    .unwrap();
    let call = s.answer_call(incoming(a, "2000")).unwrap();
    let mut state = call.state();
    assert_eq!(
        wait_for(&mut state, ended),
        CallState::Ended {
            reason: "conference_full".into()
        }
    );
    assert!(
        media.log().iter().any(|l| l.ends_with(":busy.wav")),
        "{:?}",
        media.log()
    );
    assert_eq!(s.realtime(&room).participants.len(), 1);
}

#[test]
fn a_kick_or_the_pound_key_ends_the_call_and_caller_controls_act_like_the_api() {
    let (s, _media, a) = setup();
    let room = s
        .create_conference(a, &json!({"conference_numbers": ["1000"], "play_welcome": false, "member": {"join_muted": false}}))
        .unwrap();
    let mut events = s.subscribe();
    let call = s.answer_call(incoming(a, "1000")).unwrap();
    let CallState::Joined { participant_id, .. } = call.state().borrow().clone() else {
        panic!()
    };
    let speak = || s.participant(&room, participant_id).unwrap().state.speak;
    let hear = || s.participant(&room, participant_id).unwrap().state.hear;
    press(&call, "*1");
    assert!(!speak());
    press(&call, "*1");
    assert!(speak());
    press(&call, "*2");
    assert!(!speak());
    press(&call, "*3");
    assert!(speak());
    press(&call, "*4");
    assert!(!hear());
    press(&call, "*6");
    assert!(hear());
    press(&call, "*5");
    assert!(!hear());
    press(&call, "1"); // no `*`: nothing
    assert!(!hear());
    let mut names = Vec::new();
    while let Ok(event) = events.try_recv() {
        if event.participant_id == Some(participant_id) && event.name.ends_with("-member") {
            names.push(event.name);
        }
    }
    assert_eq!(
        names,
        [
            "add-member",
            "mute-member",
            "unmute-member",
            "mute-member",
            "unmute-member",
            "deaf-member",
            "undeaf-member",
            "deaf-member"
        ]
    );
    let mut state = call.state();
    press(&call, "#");
    assert_eq!(
        wait_for(&mut state, ended),
        CallState::Ended {
            reason: "hangup".into()
        }
    );
    assert!(s.realtime(&room).participants.is_empty());
    // A kick ends the next call.
    let call = s.answer_call(incoming(a, "1000")).unwrap();
    let CallState::Joined { participant_id, .. } = call.state().borrow().clone() else {
        panic!()
    };
    let room = s.conference(a, &room.id.to_string()).unwrap();
    s.act_on_participant(&room, participant_id, &crate::ParticipantAction::Kick)
        .unwrap();
    assert_eq!(
        *call.state().borrow(),
        CallState::Ended {
            reason: "kick".into()
        }
    );
}

#[test]
fn a_late_offer_is_answered_with_an_offer_and_joins_on_completion() {
    let (s, media, a) = setup();
    let room = s
        .create_conference(
            a,
            &json!({"conference_numbers": ["1000"], "play_welcome": false}),
        )
        .unwrap();
    let call = s
        .answer_call(IncomingCall {
            offer: None,
            ..incoming(a, "1000")
        })
        .unwrap();
    assert_eq!(call.sdp(), "offer:40000");
    assert_eq!(*call.state().borrow(), CallState::Lobby);
    call.complete("answer-from-phone").unwrap();
    assert!(joined(&call.state().borrow()));
    assert!(media
        .log()
        .contains(&format!("join:{}:Some(40000):answer-from-phone", room.id)));
    assert_eq!(call.renegotiate("hold").unwrap(), "re:hold");
    assert!(call.complete("again").is_err());
    // A late offer to the general number: the lobby takes tutti's offered port.
    s.replace_sip_directory(a, &json!({"numbers": [{"number": "5000"}]}))
        .unwrap();
    let call = s
        .answer_call(IncomingCall {
            offer: None,
            ..incoming(a, "5000")
        })
        .unwrap();
    assert_eq!(call.sdp(), "offer:40000");
    assert!(media.said().is_empty(), "no prompt before the answer");
    call.complete("late-answer").unwrap();
    wait_said(&media, PROMPT_ENTER_NUMBER, 1);
    assert!(media.log().iter().any(|l| l.starts_with("join:")
        && l.ends_with(":Some(40000):late-answer")
        && !l.contains(&room.id.to_string())));
    call.hang_up();
}

#[derive(Default)]
struct FakeDialer(Mutex<Vec<DialRequest>>);

impl Dialer for FakeDialer {
    fn dial(&self, request: DialRequest) {
        self.0.lock().unwrap().push(request);
    }
    fn cancel(&self, call_id: Uuid) {
        self.0.lock().unwrap().retain(|r| r.call_id != call_id);
    }
}

#[test]
fn dial_out_rings_visibly_joins_on_answer_and_records_failures() {
    let (s, media, a) = setup();
    let room = s.create_conference(a, &json!({})).unwrap();
    let out = DialOut {
        target: "sip:bob@example.org".into(),
        caller_id_name: Some("Tutti".into()),
        caller_id_number: Some("100".into()),
        timeout: Duration::from_secs(20),
        moderator: false,
        muted: true,
        deaf: false,
    };
    assert!(
        !s.can_dial() && s.dial(&room, &out).is_err(),
        "no dialer, no dial-out"
    );
    let dialer = Arc::new(FakeDialer::default());
    s.set_dialer(dialer.clone());
    assert!(matches!(
        s.dial(
            &room,
            &DialOut {
                target: "tel:+1555".into(),
                ..out.clone()
            }
        ),
        Err(crate::ServiceError::BadRequest(_))
    ));
    let ringing = s.dial(&room, &out).unwrap();
    assert_eq!(ringing.status, CallStatus::Dialing);
    assert_eq!(
        s.call(a, &ringing.id.to_string()).unwrap().status,
        CallStatus::Dialing
    );
    let request = dialer.0.lock().unwrap()[0].clone();
    assert_eq!(
        (request.call_id, request.target.as_str(), request.timeout),
        (ringing.id, "sip:bob@example.org", Duration::from_secs(20))
    );
    let offered = s.offer_media().unwrap();
    let call = s
        .dial_answered(ringing.id, "answer-from-bob", offered.port)
        .unwrap();
    let CallState::Joined {
        call_id,
        participant_id,
        ..
    } = call.state().borrow().clone()
    else {
        panic!()
    };
    assert_eq!(call_id, ringing.id, "the call keeps its id");
    assert!(
        !s.participant(&room, participant_id).unwrap().state.speak,
        "participant_flags mute"
    );
    assert!(media
        .log()
        .contains(&format!("join:{}:Some(40000):answer-from-bob", room.id)));
    assert_eq!(
        s.call(a, &call_id.to_string()).unwrap().status,
        CallStatus::Joined
    );
    // A second call is busy.
    let busy = s.dial(&room, &out).unwrap();
    s.dial_failed(busy.id, 486, "Busy Here");
    let failed = s.call(a, &busy.id.to_string()).unwrap();
    assert_eq!(
        (failed.status, failed.failure.as_deref()),
        (CallStatus::Leaved, Some("SIP 486 Busy Here"))
    );
    assert!(
        s.dial_answered(busy.id, "late", 40000).is_err(),
        "a failed call cannot answer"
    );
}

#[test]
fn hanging_up_in_the_lobby_ends_its_room_and_a_locked_conference_refuses() {
    let (s, media, a) = setup();
    s.replace_sip_directory(a, &json!({"numbers": [{"number": "5000"}]}))
        .unwrap();
    let call = s.answer_call(incoming(a, "5000")).unwrap();
    wait_said(&media, PROMPT_ENTER_NUMBER, 1);
    assert_eq!(media.rooms(), 1, "the lobby runs");
    assert!(
        call.renegotiate("hold").unwrap() == "re:hold",
        "the lobby renegotiates too"
    );
    call.hang_up();
    assert_eq!(media.rooms(), 0, "the lobby room ended");
    // Nothing more may happen: longer than an entry's timeout, after which a flow that
    // missed the hang-up would have said more.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        *call.state().borrow(),
        CallState::Lobby,
        "no BYE is due after the caller's own"
    );
    assert_eq!(
        media.said(),
        vec![PROMPT_WELCOME, PROMPT_ENTER_NUMBER],
        "the flow stopped"
    );
    // A locked conference says so and ends the call.
    let room = s
        .create_conference(a, &json!({"conference_numbers": ["2000"]}))
        .unwrap();
    s.set_locked(&room, true).unwrap();
    let call = s.answer_call(incoming(a, "2000")).unwrap();
    let mut state = call.state();
    assert_eq!(
        wait_for(&mut state, ended),
        CallState::Ended {
            reason: "conference_locked".into()
        }
    );
    assert_eq!(media.said().last().map(String::as_str), Some(PROMPT_LOCKED));
}
