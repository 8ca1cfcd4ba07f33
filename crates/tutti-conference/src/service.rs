//! The conference service: the rules every API face shares, applied to the store.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tutti_store::{AccountRecord, ConferenceRecord, Store, StoreError};
use uuid::Uuid;

use crate::lifecycle::{ConferenceState, ConferenceStatus};
use crate::outbound::OutboundPolicy;
use crate::schema::{conference_numbers, validate_conference, ValidationErrors};
use crate::MediaPlane;

/// Everything the service can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A missing, unknown or expired API key or token.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// No such conference in the caller's account (another account's id looks the same).
    #[error("no conference {0}")]
    NotFound(String),
    /// The document failed validation.
    #[error("validation error")]
    Validation(ValidationErrors),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The media plane refused or failed.
    #[error(transparent)]
    Media(crate::media::MediaError),
    /// An action no face knows.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// The conference is not in a state that allows this (ending, not running, already
    /// recording); the text says why.
    #[error("{0}")]
    Precondition(String),
    /// A caller is not admitted (outside the schedule, wrong PIN); the text says why.
    #[error("{0}")]
    NotAdmitted(String),
    /// A request the face passed on is malformed; the text says what is wrong.
    #[error("{0}")]
    BadRequest(String),
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NumberTaken { number, conference } => {
                let mut errors = ValidationErrors::default();
                errors.add(
                    &["conference_numbers"],
                    "unique",
                    serde_json::json!({"message": format!("Number {number} is already used by conference {}", conference.simple()), "cause": number}),
                );
                ServiceError::Validation(errors)
            }
            other => ServiceError::Store(other),
        }
    }
}

/// A new account and its API key (shown once; only its hash is stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    /// The account id.
    pub id: Uuid,
    /// The API key.
    pub api_key: String,
}

/// A token granted for an API key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The account.
    pub account_id: Uuid,
    /// The bearer token.
    pub token: String,
    /// When it stops working, Unix seconds.
    pub expires: i64,
}

/// A conference document with its bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct Conference {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub account_id: Uuid,
    /// The validated document, defaults included.
    pub document: Value,
    /// What the server keeps beside the document: status, PIN, recordings.
    pub state: ConferenceState,
    /// Revision (1 on creation).
    pub revision: u64,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Last change, Unix seconds.
    pub modified: i64,
}

impl Conference {
    fn record(&self) -> ConferenceRecord {
        ConferenceRecord {
            account_id: self.account_id,
            id: self.id,
            document: self.document.clone(),
            state: serde_json::to_value(&self.state).unwrap_or_else(|_| serde_json::json!({})),
            revision: self.revision,
            created: self.created,
            modified: self.modified,
        }
    }

    /// A string field of the document.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.document.get(key).and_then(Value::as_str)
    }

    /// The conference's type: `conference` or `connect`.
    pub fn kind(&self) -> &str {
        self.text("type").unwrap_or("conference")
    }
}

impl From<ConferenceRecord> for Conference {
    fn from(r: ConferenceRecord) -> Self {
        Self {
            id: r.id,
            account_id: r.account_id,
            document: r.document,
            state: serde_json::from_value(r.state).unwrap_or_default(),
            revision: r.revision,
            created: r.created,
            modified: r.modified,
        }
    }
}

/// Largest page a list returns.
pub const MAX_PAGE_SIZE: usize = 500;
/// Page size when the client names none.
pub const DEFAULT_PAGE_SIZE: usize = 50;

/// The shared conference rules.
pub struct ConferenceService {
    /// Itself, for work that outlives a call (prompts, timers).
    this: Weak<ConferenceService>,
    store: Arc<dyn Store>,
    media: Arc<dyn MediaPlane>,
    token_lifetime: Duration,
    /// Which URLs tenants may have the server call (prompts, webhooks, callbacks).
    outbound: OutboundPolicy,
    /// What the control plane knows of each running conference's participants.
    participants: std::sync::Mutex<std::collections::HashMap<Uuid, crate::live::Known>>,
    /// Running conferences: their accounts, and whether members wait for a moderator.
    running: std::sync::Mutex<std::collections::HashMap<Uuid, (Uuid, bool)>>,
    /// One lock per conference, held while its room starts with a first participant or
    /// stops after the last one, so a join and a last departure never cross.
    room_locks: std::sync::Mutex<std::collections::HashMap<Uuid, Arc<std::sync::Mutex<()>>>>,
    /// Conferences locked through the API, running or not: the lock outlives a stopped room,
    /// so a conference locked while empty refuses its next caller instead of starting a room.
    pub(crate) locked_idle: std::sync::Mutex<std::collections::HashSet<Uuid>>,
    /// Serialises call status steps, so each step is stored and announced once.
    pub(crate) call_steps: std::sync::Mutex<()>,
    events: tokio::sync::broadcast::Sender<crate::events::ConferenceEvent>,
    /// When conferences end by themselves (VoIPbin `timeout`, FoneStorm `end_time`): conference →
    /// (account, Unix seconds).
    pub(crate) deadlines: std::sync::Mutex<std::collections::HashMap<Uuid, (Uuid, i64)>>,
    /// SIP calls: the realm, calls in lobbies or conferences, dial-outs, caller controls.
    pub(crate) sip: crate::dialin::SipState,
    /// WebRTC callers' sessions.
    pub(crate) web: std::sync::Mutex<crate::webrtc::WebSessions>,
    /// The cluster this node belongs to, if any.
    pub(crate) cluster: std::sync::OnceLock<Arc<dyn crate::cluster::ClusterView>>,
}

impl std::fmt::Debug for ConferenceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConferenceService").finish_non_exhaustive()
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Unix microseconds now.
pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// SHA-256, hex: how keys and tokens are stored and looked up. Looking a secret up by its
/// hash leaves nothing to compare byte by byte, so no timing leaks the secret.
fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How many PINs a new conference draws before giving up.
const PIN_DRAWS: u32 = 32;

/// A 6-digit PIN from the system's generator (PINs admit callers, so they must not be
/// predictable).
fn random_pin() -> String {
    let random = u32::from_le_bytes(
        Uuid::new_v4().as_bytes()[..4]
            .try_into()
            .unwrap_or_default(),
    );
    format!("{:06}", random % 1_000_000)
}

/// 244 random bits from the system's generator, as 64 hex characters.
fn secret() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

impl ConferenceService {
    /// A service over `store` and `media`; tokens live `token_lifetime`; URLs the server calls
    /// follow the default outbound rule (public addresses only).
    pub fn new(
        store: Arc<dyn Store>,
        media: Arc<dyn MediaPlane>,
        token_lifetime: Duration,
    ) -> Arc<Self> {
        Self::with_outbound(store, media, token_lifetime, OutboundPolicy::default())
    }

    /// A service whose tenants' URLs (prompts, webhooks, callbacks) follow `outbound`.
    pub fn with_outbound(
        store: Arc<dyn Store>,
        media: Arc<dyn MediaPlane>,
        token_lifetime: Duration,
        outbound: OutboundPolicy,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            this: this.clone(),
            store,
            media,
            token_lifetime,
            outbound,
            participants: std::sync::Mutex::default(),
            running: std::sync::Mutex::default(),
            room_locks: std::sync::Mutex::default(),
            locked_idle: std::sync::Mutex::default(),
            call_steps: std::sync::Mutex::default(),
            events: tokio::sync::broadcast::channel(crate::events::EVENT_BACKLOG).0,
            deadlines: std::sync::Mutex::default(),
            sip: crate::dialin::SipState::default(),
            web: std::sync::Mutex::default(),
            cluster: std::sync::OnceLock::new(),
        })
    }

    /// The rule URLs from tenants follow.
    pub fn outbound(&self) -> &OutboundPolicy {
        &self.outbound
    }

    /// The service itself, shared, for work that outlives a call.
    pub(crate) fn shared(&self) -> Option<Arc<Self>> {
        self.this.upgrade()
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// A new subscription to every conference event (filter by account before showing any).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::events::ConferenceEvent> {
        self.events.subscribe()
    }

    /// Publishes an event; nobody listening is fine.
    pub(crate) fn publish(
        &self,
        account: Uuid,
        conference: Uuid,
        name: &'static str,
        participant: Option<(u32, Uuid)>,
    ) {
        self.publish_event(crate::events::ConferenceEvent {
            account,
            conference,
            name,
            call_id: participant.map(|p| p.1),
            participant_id: participant.map(|p| p.0),
            digit: None,
            remote: false,
        });
    }

    /// Publishes an event as it is; nobody listening is fine.
    pub(crate) fn publish_event(&self, event: crate::events::ConferenceEvent) {
        let _ = self.events.send(event);
    }

    /// Records that a conference's room runs; true the first time.
    pub(crate) fn mark_running(
        &self,
        conference: Uuid,
        account: Uuid,
        waits_for_moderator: bool,
    ) -> bool {
        self.running
            .lock()
            .map(|mut r| {
                r.insert(conference, (account, waits_for_moderator))
                    .is_none()
            })
            .unwrap_or(false)
    }

    /// Every running conference and its account.
    pub(crate) fn running_conferences(&self) -> Vec<(Uuid, Uuid)> {
        self.running
            .lock()
            .map(|r| r.iter().map(|(id, (account, _))| (*id, *account)).collect())
            .unwrap_or_default()
    }

    pub(crate) fn running_account(&self, conference: Uuid) -> Option<Uuid> {
        self.running
            .lock()
            .ok()
            .and_then(|r| r.get(&conference).map(|(account, _)| *account))
    }

    /// Whether a running conference's members wait for a moderator.
    pub(crate) fn waits(&self, conference: Uuid) -> bool {
        self.running
            .lock()
            .ok()
            .and_then(|r| r.get(&conference).map(|(_, waits)| *waits))
            .unwrap_or(false)
    }

    pub(crate) fn call_id(&self, conference: Uuid, participant: u32) -> Option<Uuid> {
        self.participants_known(conference)
            .get(&participant)
            .map(|info| info.call_id)
    }

    /// The media plane's counters, for monitoring.
    pub fn media_metrics(&self) -> crate::media::MediaMetrics {
        self.media.metrics()
    }

    pub(crate) fn media(&self) -> &dyn MediaPlane {
        self.media.as_ref()
    }

    pub(crate) fn remember(
        &self,
        conference: Uuid,
        participant: u32,
        info: crate::live::ParticipantInfo,
    ) {
        if let Ok(mut known) = self.participants.lock() {
            known
                .entry(conference)
                .or_default()
                .insert(participant, info);
        }
    }

    /// Takes a participant out of the known ones; only the first caller gets it, so a
    /// departure reported twice (a kick and the media plane's report of it) is booked once.
    pub(crate) fn take_participant(
        &self,
        conference: Uuid,
        participant: u32,
    ) -> Option<crate::live::ParticipantInfo> {
        self.participants
            .lock()
            .ok()?
            .get_mut(&conference)?
            .remove(&participant)
    }

    /// Changes a known participant in place; false when it is not (or no longer) known.
    pub(crate) fn update_known(
        &self,
        conference: Uuid,
        participant: u32,
        change: impl FnOnce(&mut crate::live::ParticipantInfo),
    ) -> bool {
        let Ok(mut known) = self.participants.lock() else {
            return false;
        };
        match known
            .get_mut(&conference)
            .and_then(|room| room.get_mut(&participant))
        {
            Some(info) => {
                change(info);
                true
            }
            None => false,
        }
    }

    /// The lock held while the conference's room starts or stops.
    pub(crate) fn room_lock(&self, conference: Uuid) -> Arc<std::sync::Mutex<()>> {
        self.room_locks
            .lock()
            .map(|mut locks| locks.entry(conference).or_default().clone())
            .unwrap_or_default()
    }

    /// Forgets every participant of a conference; returns who they were.
    pub(crate) fn take_participants(&self, conference: Uuid) -> crate::live::Known {
        self.participants
            .lock()
            .ok()
            .and_then(|mut known| known.remove(&conference))
            .unwrap_or_default()
    }

    /// Records that a conference's room stopped; true when it was running.
    pub(crate) fn mark_stopped(&self, conference: Uuid) -> bool {
        self.running
            .lock()
            .map(|mut r| r.remove(&conference).is_some())
            .unwrap_or(false)
    }

    pub(crate) fn participants_known(&self, conference: Uuid) -> crate::live::Known {
        self.participants
            .lock()
            .ok()
            .and_then(|known| known.get(&conference).cloned())
            .unwrap_or_default()
    }

    /// Creates an account and returns its API key.
    pub fn create_account(&self, name: &str) -> Result<NewAccount, ServiceError> {
        let api_key = secret();
        let id = Uuid::now_v7();
        self.store.create_account(&AccountRecord {
            id,
            name: name.to_owned(),
            api_key_hash: digest(&api_key),
            created: now(),
            webhook_url: None,
            webhook_secret: None,
        })?;
        Ok(NewAccount { id, api_key })
    }

    /// Exchanges an API key for a token.
    pub fn authenticate(&self, api_key: &str) -> Result<Session, ServiceError> {
        self.authenticate_for(api_key, self.token_lifetime)
    }

    /// Exchanges an API key for a token that lives `lifetime` (FoneStorm's `expires`).
    pub fn authenticate_for(
        &self,
        api_key: &str,
        lifetime: Duration,
    ) -> Result<Session, ServiceError> {
        let account = self
            .store
            .account_by_key_hash(&digest(api_key))?
            .ok_or(ServiceError::InvalidCredentials)?;
        let token = secret();
        let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
        let expires = now().saturating_add(lifetime);
        self.store
            .insert_token(&digest(&token), account.id, expires)?;
        Ok(Session {
            account_id: account.id,
            token,
            expires,
        })
    }

    /// The account a token belongs to.
    pub fn account_for_token(&self, token: &str) -> Result<Uuid, ServiceError> {
        Ok(self.session(token)?.account_id)
    }

    /// The unexpired session a token opens: its account and when it expires.
    pub fn session(&self, token: &str) -> Result<Session, ServiceError> {
        let (account_id, expires) = self
            .store
            .token_account(&digest(token), now())?
            .ok_or(ServiceError::InvalidCredentials)?;
        Ok(Session {
            account_id,
            token: token.to_owned(),
            expires,
        })
    }

    /// Creates a conference from a document.
    pub fn create_conference(
        &self,
        account: Uuid,
        document: &Value,
    ) -> Result<Conference, ServiceError> {
        let document = validate_conference(document, self.media.as_ref(), &self.outbound)
            .map_err(ServiceError::Validation)?;
        let created = now();
        let mut conference = Conference {
            account_id: account,
            id: Uuid::now_v7(),
            document,
            state: ConferenceState::default(),
            revision: 1,
            created,
            modified: created,
        };
        let numbers = conference_numbers(&conference.document);
        // The store refuses a PIN another live conference of the account holds (one indexed
        // lookup); with at most a few thousand live conferences out of a million PINs, a
        // second draw is rare and a failed 32nd one means the account has used them up.
        let mut draws = 0;
        loop {
            conference.state.pin = Some(random_pin());
            match self.store.insert_conference(&conference.record(), &numbers) {
                Ok(()) => break,
                Err(StoreError::PinTaken) if draws < PIN_DRAWS => draws += 1,
                Err(StoreError::PinTaken) => {
                    return Err(ServiceError::Precondition(
                        "the account's live conferences use up the PINs: end some first".into(),
                    ))
                }
                Err(other) => return Err(other.into()),
            }
        }
        self.schedule(&conference);
        self.publish(account, conference.id, "document-created", None);
        Ok(conference)
    }

    /// One conference of the account.
    pub fn conference(&self, account: Uuid, id: &str) -> Result<Conference, ServiceError> {
        let uuid = Uuid::parse_str(id).map_err(|_| ServiceError::NotFound(id.to_owned()))?;
        self.store
            .conference(account, uuid)?
            .map(Conference::from)
            .ok_or_else(|| ServiceError::NotFound(id.to_owned()))
    }

    /// A page of the account's conferences from `start`, and the first id of the next page.
    pub fn list_conferences(
        &self,
        account: Uuid,
        start: Option<&str>,
        page_size: Option<usize>,
    ) -> Result<(Vec<Conference>, Option<Uuid>), ServiceError> {
        let start = match start {
            Some(key) => {
                Some(Uuid::parse_str(key).map_err(|_| ServiceError::NotFound(key.to_owned()))?)
            }
            None => None,
        };
        let size = page_size
            .unwrap_or(DEFAULT_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE);
        let mut rows = self.store.list_conferences(account, start, size + 1)?;
        let next = (rows.len() > size).then(|| rows[size].id);
        rows.truncate(size);
        Ok((rows.into_iter().map(Conference::from).collect(), next))
    }

    /// Every conference of the account.
    pub fn all_conferences(&self, account: Uuid) -> Result<Vec<Conference>, ServiceError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let rows = self
                .store
                .list_conferences(account, start, MAX_PAGE_SIZE + 1)?;
            let more = rows.len() > MAX_PAGE_SIZE;
            start = rows.get(MAX_PAGE_SIZE).map(|r| r.id);
            all.extend(rows.into_iter().take(MAX_PAGE_SIZE).map(Conference::from));
            if !more {
                return Ok(all);
            }
        }
    }

    fn save(&self, mut current: Conference, document: &Value) -> Result<Conference, ServiceError> {
        current.document = validate_conference(document, self.media.as_ref(), &self.outbound)
            .map_err(ServiceError::Validation)?;
        current.revision += 1;
        current.modified = now();
        self.store
            .update_conference(&current.record(), &conference_numbers(&current.document))?;
        self.schedule(&current);
        self.apply_to_running_room(&current);
        self.publish(current.account_id, current.id, "document-updated", None);
        Ok(current)
    }

    /// Changes a conference's state with `change` (re-read and retried when another change
    /// got there first); `change` returns false to leave it as it was. Returns the conference
    /// as stored afterwards and whether it changed.
    pub(crate) fn update_state(
        &self,
        account: Uuid,
        id: Uuid,
        mut change: impl FnMut(&mut ConferenceState) -> bool,
    ) -> Result<(Conference, bool), ServiceError> {
        loop {
            let mut current = self.conference(account, &id.to_string())?;
            if !change(&mut current.state) {
                return Ok((current, false));
            }
            current.revision += 1;
            current.modified = now();
            match self
                .store
                .update_conference(&current.record(), &conference_numbers(&current.document))
            {
                Ok(()) => return Ok((current, true)),
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Moves a conference's status forward; publishes `status-changed` when it moved.
    pub(crate) fn advance_status(
        &self,
        account: Uuid,
        id: Uuid,
        to: ConferenceStatus,
    ) -> Result<Conference, ServiceError> {
        let at = now();
        let (conference, moved) = self.update_state(account, id, |state| state.advance(to, at))?;
        if moved {
            self.publish(account, id, "status-changed", None);
        }
        Ok(conference)
    }

    /// The account's webhook URL and signing secret, if it has a webhook.
    pub fn webhook(&self, account: Uuid) -> Result<Option<(String, String)>, ServiceError> {
        let record = self
            .store
            .account(account)?
            .ok_or(ServiceError::InvalidCredentials)?;
        Ok(record
            .webhook_url
            .map(|url| (url, record.webhook_secret.unwrap_or_default())))
    }

    /// Sets (or with `None` removes) the account's webhook URL; returns the secret its
    /// deliveries are signed with (kept when the account already had one).
    pub fn set_webhook(
        &self,
        account: Uuid,
        url: Option<&str>,
    ) -> Result<Option<String>, ServiceError> {
        if let Some(url) = url {
            self.outbound
                .check_url(url)
                .map_err(|e| ServiceError::BadRequest(format!("the webhook URL: {e}")))?;
        }
        let secret = match (url, self.webhook(account)?) {
            (None, _) => None,
            (Some(_), Some((_, secret))) if !secret.is_empty() => Some(secret),
            (Some(_), _) => Some(secret()),
        };
        self.store.set_webhook(account, url, secret.as_deref())?;
        Ok(secret)
    }

    /// An account's name and creation time.
    pub fn account(&self, account: Uuid) -> Result<AccountRecord, ServiceError> {
        self.store
            .account(account)?
            .ok_or(ServiceError::InvalidCredentials)
    }

    /// A page of the account's conferences, newest first, after `before` (exclusive), and
    /// the token of the next page.
    pub fn list_conferences_newest(
        &self,
        account: Uuid,
        before: Option<&str>,
        page_size: usize,
    ) -> Result<(Vec<Conference>, Option<Uuid>), ServiceError> {
        let before = parse_page_token(before)?;
        let size = page_size.clamp(1, MAX_PAGE_SIZE);
        let mut rows = self
            .store
            .list_conferences_newest(account, before, size + 1)?;
        let more = rows.len() > size;
        rows.truncate(size);
        let next = more.then(|| rows.last().map(|r| r.id)).flatten();
        Ok((rows.into_iter().map(Conference::from).collect(), next))
    }

    /// Replaces a conference's document.
    pub fn replace_conference(
        &self,
        account: Uuid,
        id: &str,
        document: &Value,
    ) -> Result<Conference, ServiceError> {
        let current = self.conference(account, id)?;
        self.save(current, document)
    }

    /// Merges `patch` into a conference's document (objects merge recursively, `null` removes).
    pub fn patch_conference(
        &self,
        account: Uuid,
        id: &str,
        patch: &Value,
    ) -> Result<Conference, ServiceError> {
        let current = self.conference(account, id)?;
        let mut merged = current.document.clone();
        merge(&mut merged, patch);
        self.save(current, &merged)
    }

    /// Deletes a conference, ending its room (everyone is kicked); returns what it was.
    pub fn delete_conference(&self, account: Uuid, id: &str) -> Result<Conference, ServiceError> {
        let current = self.conference(account, id)?;
        if !self.store.delete_conference(account, current.id)? {
            return Err(ServiceError::NotFound(id.to_owned()));
        }
        self.unschedule(current.id);
        self.close_room(&current);
        if let Ok(mut locks) = self.room_locks.lock() {
            locks.remove(&current.id);
        }
        if let Ok(mut locked) = self.locked_idle.lock() {
            locked.remove(&current.id);
        }
        self.publish(account, current.id, "document-deleted", None);
        Ok(current)
    }
}

/// A page token (the id of the last row of the previous page) as an id.
pub(crate) fn parse_page_token(token: Option<&str>) -> Result<Option<Uuid>, ServiceError> {
    match token.filter(|t| !t.is_empty()) {
        Some(token) => Uuid::parse_str(token).map(Some).map_err(|_| {
            ServiceError::BadRequest(format!(
                "the page token {token:?} is not one this server gave out"
            ))
        }),
        None => Ok(None),
    }
}

/// JSON merge (RFC 7386).
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::tests::service;

    #[test]
    fn keys_become_tokens_and_tokens_name_the_account() {
        let s = service();
        let account = s.create_account("acme").unwrap();
        assert_eq!(account.api_key.len(), 64);
        let session = s.authenticate(&account.api_key).unwrap();
        assert_eq!(s.account_for_token(&session.token).unwrap(), account.id);
        assert!(matches!(
            s.authenticate("wrong"),
            Err(ServiceError::InvalidCredentials)
        ));
        assert!(matches!(
            s.account_for_token("wrong"),
            Err(ServiceError::InvalidCredentials)
        ));
    }

    #[test]
    fn pins_are_unique_among_the_accounts_live_conferences() {
        let s = service();
        let a = s.create_account("a").unwrap().id;
        // Four writers at once: the store's unique index, not a lock in the service, keeps
        // the PINs apart.
        let pins: Vec<String> = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..500)
                            .map(|_| {
                                s.create_conference(a, &json!({}))
                                    .unwrap()
                                    .state
                                    .pin
                                    .unwrap()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            writers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        assert!(pins
            .iter()
            .all(|p| p.len() == 6 && p.bytes().all(|b| b.is_ascii_digit())));
        let distinct: std::collections::HashSet<&String> = pins.iter().collect();
        assert_eq!(
            distinct.len(),
            2000,
            "every live conference has its own PIN"
        );
        // A token stays valid for its session's lifetime and says when it ends.
        let key = s.create_account("b").unwrap().api_key;
        let session = s.authenticate_for(&key, Duration::from_secs(60)).unwrap();
        assert_eq!(s.session(&session.token).unwrap(), session);
        let forever = s.authenticate_for(&key, Duration::MAX).unwrap();
        assert_eq!(forever.expires, i64::MAX, "a huge lifetime saturates");
    }

    #[test]
    fn documents_are_validated_scoped_merged_and_deleted() {
        let s = service();
        let a = s.create_account("a").unwrap().id;
        let b = s.create_account("b").unwrap().id;
        let c = s
            .create_conference(
                a,
                &json!({"name": "Standup", "conference_numbers": ["100"]}),
            )
            .unwrap();
        let id = c.id.simple().to_string();
        assert!(matches!(
            s.conference(b, &id),
            Err(ServiceError::NotFound(_))
        ));
        assert!(matches!(
            s.create_conference(a, &json!({"conference_numbers": ["100"]})),
            Err(ServiceError::Validation(_))
        ));
        let patched = s
            .patch_conference(
                a,
                &id,
                &json!({"member": {"join_muted": false}, "name": null}),
            )
            .unwrap();
        assert_eq!(patched.document["member"]["join_muted"], json!(false));
        assert_eq!(
            patched.document["member"]["join_deaf"],
            json!(false),
            "merge keeps siblings"
        );
        assert!(patched.document.get("name").is_none());
        assert_eq!(patched.revision, 2);
        assert!(matches!(
            s.patch_conference(a, &id, &json!({"max_participants": "many"})),
            Err(ServiceError::Validation(_))
        ));
        s.delete_conference(a, &id).unwrap();
        assert!(matches!(
            s.conference(a, &id),
            Err(ServiceError::NotFound(_))
        ));
        assert!(matches!(
            s.conference(a, "not-a-uuid"),
            Err(ServiceError::NotFound(_))
        ));
    }
}
