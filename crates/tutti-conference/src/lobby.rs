//! The dial-in flow, in a call's lobby (a media room of its own that no face shows): Kazoo's
//! prompts, the conference number and the PIN by DTMF (3 tries each), the refusal of a full
//! or locked conference, and the move of the caller's media into the conference. Runs on a
//! script thread (it mostly waits), never on the runtime's workers.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dialin::{by_number, needs_pin, CallInner, Place, Route};
use crate::live::pin_role;
use crate::service::{Conference, ConferenceService};

/// Kazoo's prompts.
pub const PROMPT_WELCOME: &str = "Welcome to the conference";
/// Asks for the conference number.
pub const PROMPT_ENTER_NUMBER: &str =
    "Please enter the conference number followed by the pound key";
/// Asks for the PIN.
pub const PROMPT_ENTER_PIN: &str = "Please enter the PIN followed by the pound key";
/// A number or PIN that leads nowhere.
pub const PROMPT_INVALID: &str = "That number is not valid";
/// Before hanging up.
pub const PROMPT_GOODBYE: &str = "Goodbye";
/// A full conference.
pub const PROMPT_FULL: &str = "The conference is full";
/// A locked conference.
pub const PROMPT_LOCKED: &str = "The conference is locked";
/// Tries for the conference number, and for the PIN.
pub const TRIES: usize = 3;
/// What plays instead of a spoken prompt when no speech engine is installed.
pub const PROMPT_TONE: &str = "tone_stream://%(300,100,440)";

/// How often a waiting flow checks that its caller is still there.
const CHECK: Duration = Duration::from_millis(50);

/// One call's flow: its lobby room, participant and keys.
struct Flow<'a> {
    service: &'a ConferenceService,
    call: &'a CallInner,
    room: uuid::Uuid,
    participant: u32,
    keys: &'a Receiver<char>,
    language: String,
}

impl Flow<'_> {
    /// Speaks `text` (or plays a tone without a speech engine) and waits until it is done;
    /// false when the call ended meanwhile.
    fn say(&self, text: &str) -> bool {
        if self.call.is_over() {
            return false;
        }
        let media = self.service.media();
        let played = if media.can_speak() {
            media.speak(
                self.room,
                Some(self.participant),
                text,
                &self.language,
                "female",
            )
        } else {
            media.play(self.room, Some(self.participant), PROMPT_TONE)
        };
        let length = played.unwrap_or_else(|error| {
            tracing::warn!(%error, "a dial-in prompt could not be played");
            Duration::ZERO
        });
        self.wait(length)
    }

    /// Plays a media file or URL (a conference's `max_members_media`).
    fn play(&self, media_id: &str) -> bool {
        if self.call.is_over() {
            return false;
        }
        let length = self
            .service
            .media()
            .play(self.room, Some(self.participant), media_id)
            .unwrap_or(Duration::ZERO);
        self.wait(length)
    }

    fn wait(&self, length: Duration) -> bool {
        let deadline = Instant::now() + length;
        loop {
            if self.call.is_over() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep(CHECK.min(deadline - now));
        }
    }

    /// The keys of one entry: up to `#`, or until no key came for the entry timeout. `None`
    /// when the call ended.
    fn entry(&self) -> Option<String> {
        let timeout = self.service.entry_timeout();
        let mut entry = String::new();
        let mut deadline = Instant::now() + timeout;
        loop {
            if self.call.is_over() {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return Some(entry);
            }
            match self.keys.recv_timeout(CHECK.min(deadline - now)) {
                Ok('#') => return Some(entry),
                Ok(key) => {
                    entry.push(key);
                    deadline = Instant::now() + timeout;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Asks for a conference number (or a PIN that opens a conference directly); the
    /// conference, the role when the entry said it, and whether a PIN was entered.
    fn ask_number(&self) -> Option<(Conference, Option<bool>, bool)> {
        for _ in 0..TRIES {
            if !self.say(PROMPT_ENTER_NUMBER) {
                return None;
            }
            let entry = self.entry()?;
            if !entry.is_empty() {
                let conferences = self
                    .service
                    .all_conferences(self.call.account)
                    .unwrap_or_default();
                if let Some((conference, role)) = by_number(&conferences, &entry) {
                    return Some((conference, role, false));
                }
                let live = conferences
                    .into_iter()
                    .filter(|c| !c.state.status.is_ending());
                for conference in live {
                    if let Some(moderator) = pin_role(&conference, &entry) {
                        return Some((conference, Some(moderator), true));
                    }
                }
            }
            if !self.say(PROMPT_INVALID) {
                return None;
            }
        }
        None
    }

    /// Asks for the conference's PIN; the role it gives.
    fn ask_pin(&self, conference: &Conference, role: Option<bool>) -> Option<bool> {
        for _ in 0..TRIES {
            if !self.say(PROMPT_ENTER_PIN) {
                return None;
            }
            let entry = self.entry()?;
            let found = (!entry.is_empty())
                .then(|| pin_role(conference, &entry))
                .flatten();
            match (found, role) {
                // A number that said the role takes that role's PINs (a moderator PIN also
                // lets a member number's caller in as a moderator).
                (Some(moderator), Some(false)) | (Some(moderator), None) => return Some(moderator),
                (Some(true), Some(true)) => return Some(true),
                _ => {}
            }
            if !self.say(PROMPT_INVALID) {
                return None;
            }
        }
        None
    }

    /// Why the conference refuses a caller now, if it does: its refusal prompt.
    fn refusal(&self, conference: &Conference) -> Option<&'static str> {
        let realtime = self.service.realtime(conference);
        let max = conference
            .document
            .get("max_participants")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        if realtime.is_locked {
            Some(PROMPT_LOCKED)
        } else if max > 0 && realtime.participants.len() >= max {
            Some(PROMPT_FULL)
        } else {
            None
        }
    }
}

impl ConferenceService {
    /// The dial-in flow of a call in its lobby (see the module's documentation).
    pub(crate) fn run_lobby(&self, call: &Arc<CallInner>, route: Route, keys: &Receiver<char>) {
        let Place::Lobby { room, participant } = call.place() else {
            return;
        };
        let mut flow = Flow {
            service: self,
            call,
            room,
            participant,
            keys,
            language: "en-US".to_owned(),
        };
        let found = match route {
            Route::Prompt => {
                if !flow.say(PROMPT_WELCOME) {
                    return;
                }
                flow.ask_number()
            }
            Route::Conference { conference, role } => {
                let found = self.conference(call.account, &conference.to_string()).ok();
                let welcome = found.as_ref().is_some_and(|c| {
                    c.document.get("play_welcome").and_then(Value::as_bool) != Some(false)
                });
                if let Some(language) = found.as_ref().and_then(|c| c.text("language")) {
                    flow.language = language.to_owned();
                }
                if welcome && !flow.say(PROMPT_WELCOME) {
                    return;
                }
                found.map(|c| (c, role, false))
            }
        };
        let Some((conference, role, pin_entered)) = found else {
            return self.end_lobby(&flow, "wrong_number");
        };
        if let Some(language) = conference.text("language") {
            flow.language = language.to_owned();
        }
        let moderator = if !pin_entered && needs_pin(&conference, role) {
            match flow.ask_pin(&conference, role) {
                Some(moderator) => moderator,
                None => return self.end_lobby(&flow, "wrong_pin"),
            }
        } else {
            role.unwrap_or(false)
        };
        if let Some(prompt) = flow.refusal(&conference) {
            let media_id = conference
                .text("max_members_media")
                .filter(|_| prompt == PROMPT_FULL);
            let played = match media_id {
                Some(media_id) => flow.play(media_id),
                None => flow.say(prompt),
            };
            if played {
                self.leave_lobby(room, participant);
                call.end(if prompt == PROMPT_FULL {
                    "conference_full"
                } else {
                    "conference_locked"
                });
            }
            return;
        }
        self.move_in(call, room, participant, &conference, moderator);
    }

    /// Says goodbye and ends the call.
    fn end_lobby(&self, flow: &Flow<'_>, reason: &str) {
        if flow.say(PROMPT_GOODBYE) {
            self.leave_lobby(flow.room, flow.participant);
            flow.call.end(reason);
        }
    }

    /// Moves a caller's media from its lobby into the conference, keeping its port.
    fn move_in(
        &self,
        call: &Arc<CallInner>,
        room: uuid::Uuid,
        participant: u32,
        conference: &Conference,
        moderator: bool,
    ) {
        // Out of the lobbies first: the lobby room's report of the detach is not a departure.
        if let Ok(mut lobbies) = self.sip.lobbies.lock() {
            lobbies.remove(&room);
        }
        if let Ok(mut keys) = call.keys.lock() {
            keys.take();
        }
        let media = self.media();
        let port = media.detach(room, participant);
        media.end_room(room);
        let port = match port {
            Ok(port) => port,
            Err(error) => {
                tracing::warn!(%error, "a dial-in caller could not leave its lobby");
                return call.end("media_failed");
            }
        };
        if let Err(error) = self.join_call(call, conference.id, moderator, port) {
            tracing::info!(%error, conference = %conference.id, "a dial-in caller was refused");
            media.release_port(port);
            call.end(&error.to_string());
        }
    }
}
