//! SIP calls as the SIP layer drives them: an incoming call is routed within its account (a
//! SIP number, a conference number, a role's numbers), answered straight into its conference
//! or into a lobby of its own where the dial-in flow asks for a conference number and PIN
//! (see `lobby.rs`), and followed until it ends. [`LiveCall`] is the handle.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::events::{Departure, Digit, MediaEvent, MediaEventKind};
use crate::live::JoinRequest;
use crate::media::{JoinSpec, RoomSpec};
use crate::service::{Conference, ConferenceService, ServiceError};

/// A SIP call arriving, after the SIP layer proved who may call (trunk or digest).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncomingCall {
    /// The account the trunk or the credentials belong to.
    pub account: Uuid,
    /// The Request-URI's user part, e.g. `1000` or `+15551230000`.
    pub dialed: String,
    /// The SDP offer; `None` for an INVITE without SDP (late offer).
    pub offer: Option<String>,
    /// Caller id name.
    pub caller_id_name: Option<String>,
    /// Caller id number.
    pub caller_id_number: Option<String>,
    /// Where the INVITE came from.
    pub signalled_source: Option<IpAddr>,
}

/// Where a SIP call is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallState {
    /// Answered, not in a conference yet (the dial-in flow runs, or a late offer waits for
    /// its answer).
    Lobby,
    /// In a conference, like any participant.
    Joined {
        /// The conference.
        conference: Uuid,
        /// Its participant id there.
        participant_id: u32,
        /// Its call's id (the faces' call id).
        call_id: Uuid,
    },
    /// Ended by the server (kicked, `#`, wrong PIN thrice, the conference ended, media
    /// timeout): the SIP layer sends BYE. Not set after [`LiveCall::hang_up`].
    Ended {
        /// Why, for logs (`kick`, `hangup`, `conference_ended`, `timeout`, `wrong_pin`, …).
        reason: String,
    },
}

/// Where a call's media is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// tutti offered on `port` (late offer); [`LiveCall::complete`] goes on to `then`.
    Offered { port: u16, then: Then },
    /// In its lobby room.
    Lobby { room: Uuid, participant: u32 },
    /// In a conference.
    Conference { conference: Uuid, participant: u32 },
    /// Over.
    Gone,
}

/// What a late-offer call does once the caller's answer arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Then {
    /// Joins the conference straight away.
    Join { conference: Uuid, moderator: bool },
    /// Enters a lobby and runs the dial-in flow.
    Lobby(Route),
}

/// Where a dialed number leads within its account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// The account's general number: ask for a conference number.
    Prompt,
    /// One conference; `Some(moderator)` when the number said the role.
    Conference {
        conference: Uuid,
        role: Option<bool>,
    },
}

/// One SIP call as the SIP layer drives it (cheap to clone).
#[derive(Clone, Debug)]
pub struct LiveCall {
    pub(crate) inner: Arc<CallInner>,
}

#[derive(Debug)]
pub(crate) struct CallInner {
    pub(crate) service: Weak<ConferenceService>,
    pub(crate) account: Uuid,
    pub(crate) sdp: std::sync::OnceLock<String>,
    /// The caller's latest SDP (its offer, or its answer to tutti's offer).
    pub(crate) remote: Mutex<String>,
    pub(crate) state: watch::Sender<CallState>,
    pub(crate) place: Mutex<Place>,
    /// The dial-in flow's keys, while it runs.
    pub(crate) keys: Mutex<Option<std::sync::mpsc::Sender<char>>>,
    pub(crate) hung_up: AtomicBool,
    pub(crate) caller_id_name: Option<String>,
    pub(crate) caller_id_number: Option<String>,
    pub(crate) signalled_source: Option<IpAddr>,
}

impl CallInner {
    pub(crate) fn place(&self) -> Place {
        self.place.lock().map(|p| p.clone()).unwrap_or(Place::Gone)
    }

    /// The room the call's media is in (its lobby or its conference) and its participant id.
    fn media_room(&self) -> Option<(Uuid, u32)> {
        match self.place() {
            Place::Lobby { room, participant } => Some((room, participant)),
            Place::Conference {
                conference,
                participant,
            } => Some((conference, participant)),
            _ => None,
        }
    }

    pub(crate) fn set_place(&self, place: Place) {
        if let Ok(mut current) = self.place.lock() {
            *current = place;
        }
    }

    pub(crate) fn set_state(&self, state: CallState) {
        self.state.send_replace(state);
    }

    /// Whether the call is over (hung up, or ended by the server).
    pub(crate) fn is_over(&self) -> bool {
        self.hung_up.load(Ordering::SeqCst) || matches!(self.place(), Place::Gone)
    }

    /// Ends the call from the server's side: the SIP layer sends BYE.
    pub(crate) fn end(&self, reason: &str) {
        self.set_place(Place::Gone);
        if !self.hung_up.load(Ordering::SeqCst) {
            self.set_state(CallState::Ended {
                reason: reason.to_owned(),
            });
        }
    }
}

/// The service's SIP bookkeeping.
pub(crate) struct SipState {
    pub(crate) realm: RwLock<String>,
    /// Calls in lobbies, by lobby room.
    pub(crate) lobbies: Mutex<HashMap<Uuid, Arc<CallInner>>>,
    /// Calls in conferences, by conference and participant.
    pub(crate) joined: Mutex<HashMap<(Uuid, u32), Arc<CallInner>>>,
    /// How long a DTMF entry waits for the next key.
    pub(crate) entry_timeout: RwLock<Duration>,
    /// Participants who pressed `*` (caller controls), and when.
    pub(crate) star: Mutex<HashMap<(Uuid, u32), std::time::Instant>>,
    /// Dial-out: the SIP layer's dialer and the calls ringing.
    pub(crate) dialer: RwLock<Option<Arc<dyn crate::dialout::Dialer>>>,
    pub(crate) dialing: Mutex<HashMap<Uuid, crate::dialout::PendingDial>>,
}

impl std::fmt::Debug for SipState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipState").finish_non_exhaustive()
    }
}

impl Default for SipState {
    fn default() -> Self {
        Self {
            realm: RwLock::new(crate::sip_directory::DEFAULT_SIP_REALM.to_owned()),
            lobbies: Mutex::default(),
            joined: Mutex::default(),
            entry_timeout: RwLock::new(ENTRY_TIMEOUT),
            star: Mutex::default(),
            dialer: RwLock::default(),
            dialing: Mutex::default(),
        }
    }
}

/// How long a DTMF entry waits for the next key before it ends.
pub const ENTRY_TIMEOUT: Duration = Duration::from_secs(5);

fn strings(document: &Value, path: &[&str]) -> Vec<String> {
    let mut value = document;
    for key in path {
        match value.get(key) {
            Some(v) => value = v,
            None => return Vec::new(),
        }
    }
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The conference (and role, when the number says it) a number leads to among `conferences`:
/// its `conference_numbers`, `member.numbers` or `moderator.numbers`.
pub(crate) fn by_number(
    conferences: &[Conference],
    number: &str,
) -> Option<(Conference, Option<bool>)> {
    let has =
        |c: &Conference, path: &[&str]| strings(&c.document, path).iter().any(|n| n == number);
    conferences
        .iter()
        .filter(|c| !c.state.status.is_ending())
        .find_map(|c| {
            if has(c, &["conference_numbers"]) {
                Some((c.clone(), None))
            } else if has(c, &["moderator", "numbers"]) {
                Some((c.clone(), Some(true)))
            } else if has(c, &["member", "numbers"]) {
                Some((c.clone(), Some(false)))
            } else {
                None
            }
        })
}

/// Whether a caller must enter a PIN: the conference has PINs (of the caller's role, when the
/// number said it; of either role otherwise).
pub(crate) fn needs_pin(conference: &Conference, role: Option<bool>) -> bool {
    let pins = |role: &str| !strings(&conference.document, &[role, "pins"]).is_empty();
    match role {
        Some(true) => pins("moderator"),
        Some(false) => pins("member"),
        None => pins("member") || pins("moderator"),
    }
}

impl LiveCall {
    /// The SDP to send: the answer to the caller's offer, or tutti's offer for a late offer.
    pub fn sdp(&self) -> &str {
        self.inner.sdp.get().map_or("", String::as_str)
    }

    /// Where the call is now, and every change after.
    pub fn state(&self) -> watch::Receiver<CallState> {
        self.inner.state.subscribe()
    }

    /// A late offer's answer (the ACK's SDP): the call goes on into its conference or lobby.
    pub fn complete(&self, answer: &str) -> Result<(), ServiceError> {
        let service = self.service()?;
        let Place::Offered { port, then } = self.inner.place() else {
            return Err(ServiceError::BadRequest(
                "the call is not waiting for an answer".into(),
            ));
        };
        answer.clone_into(&mut *self.inner.remote.lock().map_err(|_| poisoned())?);
        let result = match then {
            Then::Join {
                conference,
                moderator,
            } => service.join_call(&self.inner, conference, moderator, port),
            Then::Lobby(route) => service.enter_lobby(&self.inner, answer, Some(port), route),
        };
        if let Err(error) = &result {
            service.media().release_port(port);
            self.inner.end(&error.to_string());
        }
        result
    }

    /// The caller hung up (BYE, or CANCEL before the answer): it leaves wherever it is, with
    /// [`Departure::Hangup`]. The state does not change to [`CallState::Ended`] (no BYE is due).
    pub fn hang_up(&self) {
        self.inner.hung_up.store(true, Ordering::SeqCst);
        let Ok(service) = self.service() else {
            return;
        };
        match self.inner.place() {
            Place::Offered { port, .. } => service.media().release_port(port),
            Place::Lobby { room, participant } => service.leave_lobby(room, participant),
            Place::Conference {
                conference,
                participant,
            } => service.hang_up_participant(self.inner.account, conference, participant),
            Place::Gone => {}
        }
        self.inner.set_place(Place::Gone);
    }

    /// A key from SIP INFO: the same path as an RFC 4733 telephone event.
    pub fn press(&self, digit: char, duration_ms: u32) {
        let Ok(service) = self.service() else {
            return;
        };
        let Some((room, participant)) = self.inner.media_room() else {
            return;
        };
        service.on_media_event(&MediaEvent {
            conference: room,
            participant_id: participant,
            kind: MediaEventKind::Dtmf(Digit { digit, duration_ms }),
        });
    }

    /// A new offer from the caller (re-INVITE, UPDATE): hold, resume, a new address or codec.
    /// Returns the SDP answer.
    pub fn renegotiate(&self, offer: &str) -> Result<String, ServiceError> {
        let service = self.service()?;
        let (room, participant) = self.inner.media_room().ok_or_else(|| {
            ServiceError::BadRequest("the call has no media to renegotiate".into())
        })?;
        let answer = service.media().renegotiate(room, participant, offer)?;
        offer.clone_into(&mut *self.inner.remote.lock().map_err(|_| poisoned())?);
        Ok(answer)
    }

    fn service(&self) -> Result<Arc<ConferenceService>, ServiceError> {
        self.inner
            .service
            .upgrade()
            .ok_or_else(|| ServiceError::Precondition("the server is stopping".into()))
    }
}

fn poisoned() -> ServiceError {
    ServiceError::Precondition("the call's state is unavailable".into())
}

impl ConferenceService {
    /// Answers an incoming call: [`ServiceError::NotFound`] when the number routes nowhere in
    /// the account (SIP 404), `Media(Offer)` for no common codec (SIP 488), `Media(Full)` /
    /// `Media(Locked)` / `NotAdmitted` / `Precondition` for a conference that refuses it.
    /// Otherwise the call is answered straight into its conference (a number that names it,
    /// no PIN to ask) or into a lobby where the dial-in flow runs on a thread of its own.
    pub fn answer_call(&self, call: IncomingCall) -> Result<LiveCall, ServiceError> {
        let route = self.route_call(call.account, &call.dialed)?;
        let direct = match &route {
            Route::Prompt => None,
            Route::Conference { conference, role } => {
                let found = self.conference(call.account, &conference.to_string())?;
                (!needs_pin(&found, *role) && !plays_welcome_prompt(&found))
                    .then_some((*conference, role.unwrap_or(false)))
            }
        };
        let (sdp, place) = match (&call.offer, direct) {
            (None, then) => {
                let offered = self.media().offer()?;
                let then = match then {
                    Some((conference, moderator)) => Then::Join {
                        conference,
                        moderator,
                    },
                    None => Then::Lobby(route.clone()),
                };
                (
                    offered.offer,
                    Place::Offered {
                        port: offered.port,
                        then,
                    },
                )
            }
            (Some(_), _) => (String::new(), Place::Gone),
        };
        let inner = Arc::new(CallInner {
            sdp: std::sync::OnceLock::new(),
            service: self
                .shared()
                .map(|s| Arc::downgrade(&s))
                .unwrap_or_default(),
            account: call.account,
            remote: Mutex::new(call.offer.clone().unwrap_or_default()),
            state: watch::channel(CallState::Lobby).0,
            place: Mutex::new(place),
            keys: Mutex::default(),
            hung_up: AtomicBool::new(false),
            caller_id_name: call.caller_id_name,
            caller_id_number: call.caller_id_number,
            signalled_source: call.signalled_source,
        });
        let Some(offer) = call.offer else {
            let _ = inner.sdp.set(sdp);
            return Ok(LiveCall { inner });
        };
        let answer = match direct {
            Some((conference, moderator)) => {
                self.join_call_with(&inner, conference, moderator, None)?
            }
            None => self.lobby_media(&inner, &offer, None)?,
        };
        let _ = inner.sdp.set(answer);
        self.register(&inner);
        if direct.is_none() {
            self.start_flow(&inner, route);
        }
        Ok(LiveCall { inner })
    }

    /// Where `dialed` leads in `account`: a SIP number of the account (to its conference, or
    /// the prompt), else a live conference's `conference_numbers`, `moderator.numbers` or
    /// `member.numbers`; [`ServiceError::NotFound`] otherwise.
    pub(crate) fn route_call(&self, account: Uuid, dialed: &str) -> Result<Route, ServiceError> {
        let not_found = || ServiceError::NotFound(dialed.to_owned());
        if let Some(number) = self.account_sip_number(account, dialed)? {
            return Ok(match number.conference_id {
                Some(conference) => {
                    let found = self
                        .conference(account, &conference.to_string())
                        .map_err(|_| not_found())?;
                    if found.state.status.is_ending() {
                        return Err(not_found());
                    }
                    Route::Conference {
                        conference,
                        role: None,
                    }
                }
                None => Route::Prompt,
            });
        }
        let conferences = self.all_conferences(account)?;
        by_number(&conferences, dialed)
            .map(|(conference, role)| Route::Conference {
                conference: conference.id,
                role,
            })
            .ok_or_else(not_found)
    }

    /// Joins a call to a conference (its media in no room yet, or detached on `port`);
    /// returns the SDP answer.
    fn join_call_with(
        &self,
        call: &Arc<CallInner>,
        conference: Uuid,
        moderator: bool,
        port: Option<u16>,
    ) -> Result<String, ServiceError> {
        let request = JoinRequest {
            moderator,
            port,
            ..JoinRequest::default()
        };
        self.join_call_as(call, conference, request)
    }

    /// Joins a call to a conference with `request` (its offer and caller ids filled in from
    /// the call); returns the SDP answer.
    pub(crate) fn join_call_as(
        &self,
        call: &Arc<CallInner>,
        conference: Uuid,
        mut request: JoinRequest,
    ) -> Result<String, ServiceError> {
        request.offer = call.remote.lock().map_err(|_| poisoned())?.clone();
        request.caller_id_name = call.caller_id_name.clone();
        request.caller_id_number = call.caller_id_number.clone();
        request.signalled_source = call.signalled_source;
        let (participant, answer) = self.join(call.account, &conference.to_string(), &request)?;
        let participant_id = participant.state.participant_id;
        call.set_place(Place::Conference {
            conference,
            participant: participant_id,
        });
        call.set_state(CallState::Joined {
            conference,
            participant_id,
            call_id: participant.call_id,
        });
        if let Ok(mut joined) = self.sip.joined.lock() {
            joined.insert((conference, participant_id), call.clone());
        }
        if call.hung_up.load(Ordering::SeqCst) {
            // The caller hung up while it was moving in.
            self.hang_up_participant(call.account, conference, participant_id);
        }
        Ok(answer)
    }

    /// [`Self::join_call_with`] for a call already registered (late offer, lobby).
    pub(crate) fn join_call(
        &self,
        call: &Arc<CallInner>,
        conference: Uuid,
        moderator: bool,
        port: u16,
    ) -> Result<(), ServiceError> {
        self.join_call_with(call, conference, moderator, Some(port))
            .map(|_| ())
    }

    /// Puts a call's media in a new lobby room; returns the SDP answer.
    fn lobby_media(
        &self,
        call: &Arc<CallInner>,
        offer: &str,
        port: Option<u16>,
    ) -> Result<String, ServiceError> {
        let room = Uuid::new_v4();
        let media = self.media();
        media.ensure_room(
            room,
            &RoomSpec {
                max_participants: 1,
                entry_tone: None,
                exit_tone: None,
                conference: false,
            },
        )?;
        let joined = media
            .join(
                room,
                &JoinSpec {
                    offer: offer.to_owned(),
                    muted: true,
                    deaf: false,
                    moderator: false,
                    energy_level: 20.0,
                    latching: None,
                    signalled_source: call.signalled_source,
                    port,
                },
            )
            .inspect_err(|_| media.end_room(room))?;
        call.set_place(Place::Lobby {
            room,
            participant: joined.participant_id,
        });
        Ok(joined.answer)
    }

    /// A late-offer call's lobby, once the caller's answer arrived.
    pub(crate) fn enter_lobby(
        &self,
        call: &Arc<CallInner>,
        answer: &str,
        port: Option<u16>,
        route: Route,
    ) -> Result<(), ServiceError> {
        self.lobby_media(call, answer, port)?;
        self.register(call);
        self.start_flow(call, route);
        Ok(())
    }

    /// Remembers a call in a lobby, so its room's events reach it.
    fn register(&self, call: &Arc<CallInner>) {
        if let Place::Lobby { room, .. } = call.place() {
            if let Ok(mut lobbies) = self.sip.lobbies.lock() {
                lobbies.insert(room, call.clone());
            }
        }
    }

    /// Takes a call out of its lobby and ends the lobby room.
    pub(crate) fn leave_lobby(&self, room: Uuid, participant: u32) {
        let call = self
            .sip
            .lobbies
            .lock()
            .ok()
            .and_then(|mut l| l.remove(&room));
        if let Some(call) = call {
            if let Ok(mut keys) = call.keys.lock() {
                keys.take();
            }
        }
        let media = self.media();
        let _ = media.kick(room, participant);
        media.end_room(room);
    }

    fn hang_up_participant(&self, account: Uuid, conference: Uuid, participant: u32) {
        if let Ok(found) = self.conference(account, &conference.to_string()) {
            self.remove(&found, &[participant], false, Departure::Hangup);
        }
    }

    /// A media event of a lobby room goes to its call (keys to the flow; a departure ends
    /// it); true when the room is a lobby.
    pub(crate) fn lobby_event(&self, event: &MediaEvent) -> bool {
        let call = self
            .sip
            .lobbies
            .lock()
            .ok()
            .and_then(|l| l.get(&event.conference).cloned());
        let Some(call) = call else {
            return false;
        };
        match event.kind {
            MediaEventKind::Dtmf(digit) => {
                if let Some(keys) = call.keys.lock().ok().and_then(|k| k.clone()) {
                    let _ = keys.send(digit.digit);
                }
            }
            MediaEventKind::Left(why) => {
                if let Ok(mut lobbies) = self.sip.lobbies.lock() {
                    lobbies.remove(&event.conference);
                }
                self.media().end_room(event.conference);
                call.end(why.as_str());
            }
            _ => {}
        }
        true
    }

    /// A participant's departure is booked: a SIP call in it ends (unless its caller hung up).
    pub(crate) fn sip_participant_left(&self, conference: Uuid, participant: u32, why: Departure) {
        if let Ok(mut star) = self.sip.star.lock() {
            star.remove(&(conference, participant));
        }
        let call = self
            .sip
            .joined
            .lock()
            .ok()
            .and_then(|mut j| j.remove(&(conference, participant)));
        if let Some(call) = call {
            call.end(why.as_str());
        }
    }

    /// How long a DTMF entry waits for the next key (5 s unless changed).
    pub fn set_entry_timeout(&self, timeout: Duration) {
        if let Ok(mut current) = self.sip.entry_timeout.write() {
            *current = timeout;
        }
    }

    pub(crate) fn entry_timeout(&self) -> Duration {
        self.sip
            .entry_timeout
            .read()
            .map(|t| *t)
            .unwrap_or(ENTRY_TIMEOUT)
    }

    /// Starts the dial-in flow of a call in its lobby, on a thread of its own.
    fn start_flow(&self, call: &Arc<CallInner>, route: Route) {
        let (keys, inbox) = std::sync::mpsc::channel();
        if let Ok(mut slot) = call.keys.lock() {
            *slot = Some(keys);
        }
        let Some(service) = self.shared() else {
            return;
        };
        let call = call.clone();
        crate::actions::spawn(move || service.run_lobby(&call, route, &inbox));
    }
}

/// Whether a conference wants its welcome prompt played (Kazoo's `play_welcome`, default
/// true) — which needs a lobby to play it in.
fn plays_welcome_prompt(conference: &Conference) -> bool {
    conference
        .document
        .get("play_welcome")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}
