//! The conference service: the rules every API face shares, applied to the store.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tutti_store::{AccountRecord, ConferenceRecord, Store, StoreError};
use uuid::Uuid;

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
    /// Revision (1 on creation).
    pub revision: u64,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Last change, Unix seconds.
    pub modified: i64,
}

impl From<ConferenceRecord> for Conference {
    fn from(r: ConferenceRecord) -> Self {
        Self {
            id: r.id,
            account_id: r.account_id,
            document: r.document,
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
    store: Arc<dyn Store>,
    media: Arc<dyn MediaPlane>,
    token_lifetime: Duration,
    /// What the control plane knows of each running conference's participants.
    participants: std::sync::Mutex<std::collections::HashMap<Uuid, crate::live::Known>>,
    /// Running conferences: their accounts, and whether members wait for a moderator.
    running: std::sync::Mutex<std::collections::HashMap<Uuid, (Uuid, bool)>>,
    events: tokio::sync::broadcast::Sender<crate::events::ConferenceEvent>,
}

impl std::fmt::Debug for ConferenceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConferenceService").finish_non_exhaustive()
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// SHA-256, hex: how keys and tokens are stored and looked up. Looking a secret up by its
/// hash leaves nothing to compare byte by byte, so no timing leaks the secret.
fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 244 random bits from the system's generator, as 64 hex characters.
fn secret() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

impl ConferenceService {
    /// A service over `store` and `media`; tokens live `token_lifetime`.
    pub fn new(
        store: Arc<dyn Store>,
        media: Arc<dyn MediaPlane>,
        token_lifetime: Duration,
    ) -> Self {
        Self {
            store,
            media,
            token_lifetime,
            participants: std::sync::Mutex::default(),
            running: std::sync::Mutex::default(),
            events: tokio::sync::broadcast::channel(crate::events::EVENT_BACKLOG).0,
        }
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
        let _ = self.events.send(crate::events::ConferenceEvent {
            account,
            conference,
            name,
            call_id: participant.map(|p| p.1),
            participant_id: participant.map(|p| p.0),
        });
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

    pub(crate) fn forget(&self, conference: Uuid, participant: u32) {
        if let Ok(mut known) = self.participants.lock() {
            if let Some(room) = known.get_mut(&conference) {
                room.remove(&participant);
            }
        }
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
        })?;
        Ok(NewAccount { id, api_key })
    }

    /// Exchanges an API key for a token.
    pub fn authenticate(&self, api_key: &str) -> Result<Session, ServiceError> {
        let account = self
            .store
            .account_by_key_hash(&digest(api_key))?
            .ok_or(ServiceError::InvalidCredentials)?;
        let token = secret();
        let expires = now() + self.token_lifetime.as_secs() as i64;
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
        self.store
            .token_account(&digest(token), now())?
            .ok_or(ServiceError::InvalidCredentials)
    }

    /// Creates a conference from a document.
    pub fn create_conference(
        &self,
        account: Uuid,
        document: &Value,
    ) -> Result<Conference, ServiceError> {
        let document =
            validate_conference(document, self.media.as_ref()).map_err(ServiceError::Validation)?;
        let created = now();
        let record = ConferenceRecord {
            account_id: account,
            id: Uuid::now_v7(),
            document,
            revision: 1,
            created,
            modified: created,
        };
        self.store
            .insert_conference(&record, &conference_numbers(&record.document))?;
        Ok(record.into())
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
        current.document =
            validate_conference(document, self.media.as_ref()).map_err(ServiceError::Validation)?;
        current.revision += 1;
        current.modified = now();
        let record = ConferenceRecord {
            account_id: current.account_id,
            id: current.id,
            document: current.document.clone(),
            revision: current.revision,
            created: current.created,
            modified: current.modified,
        };
        self.store
            .update_conference(&record, &conference_numbers(&record.document))?;
        Ok(current)
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
        self.media.end_room(current.id);
        for (participant, info) in self.participants_known(current.id) {
            self.publish(
                account,
                current.id,
                "del-member",
                Some((participant, info.call_id)),
            );
        }
        if let Ok(mut known) = self.participants.lock() {
            known.remove(&current.id);
        }
        if self
            .running
            .lock()
            .map(|mut r| r.remove(&current.id).is_some())
            .unwrap_or(false)
        {
            self.publish(account, current.id, "conference-destroy", None);
        }
        Ok(current)
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
    use tutti_store::SqliteStore;

    fn service() -> ConferenceService {
        ConferenceService::new(
            Arc::new(SqliteStore::in_memory().unwrap()),
            Arc::new(crate::tests::FakeMedia),
            Duration::from_secs(3600),
        )
    }

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
