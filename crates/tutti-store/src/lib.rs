//! # tutti-store: persistence for tutti's control plane
//!
//! Accounts, API tokens and conference documents behind the [`Store`] trait, so the
//! conference service does not care where they live. [`SqliteStore`] embeds SQLite (the
//! default: one file under `./data`); [`PostgresStore`] keeps the same records in PostgreSQL,
//! shared by the nodes of a cluster. Every conference query is scoped to an account: there is
//! no way to reach another account's document through this API.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod migrations;
mod postgres;
mod postgres_migrations;
mod sip;
mod sqlite;

pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::SqliteStore;

use uuid::Uuid;

/// Everything a store can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// PostgreSQL failed, or could not be reached.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    /// The database was migrated by a newer version of tutti, whose schema this one does not
    /// know.
    #[error("the database's schema is version {found}, newer than the {known} this version of tutti knows; upgrade tutti")]
    SchemaTooNew {
        /// The database's schema version.
        found: i64,
        /// The newest version this build knows.
        known: usize,
    },
    /// A stored document is not valid JSON (the file was edited by hand, or is damaged).
    #[error("stored document {0} is damaged")]
    Corrupt(Uuid),
    /// A conference number is used by another conference of the same account.
    #[error("number {number} is already used by conference {conference}")]
    NumberTaken {
        /// The number.
        number: String,
        /// The conference using it.
        conference: Uuid,
    },
    /// The conference's PIN is the PIN of another live conference of the same account.
    #[error("the PIN is already used by a live conference of the account")]
    PinTaken,
    /// The document changed since it was read.
    #[error("conference {0} was changed concurrently")]
    Conflict(Uuid),
    /// A SIP number or username belongs to another account (which one is not said).
    #[error("the SIP {kind} {value} is taken")]
    SipTaken {
        /// `number` or `username`.
        kind: &'static str,
        /// The number or username.
        value: String,
    },
    /// The store's lock was poisoned by a panic elsewhere.
    #[error("the store is unavailable")]
    Unavailable,
}

impl StoreError {
    /// Whether the store failed (the database, a damaged record), rather than refused what was
    /// asked (a taken number, PIN or SIP entry, a stale revision).
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            StoreError::NumberTaken { .. }
                | StoreError::PinTaken
                | StoreError::Conflict(_)
                | StoreError::SipTaken { .. }
        )
    }
}

/// Describes the store's metrics to the recorder in force: `tutti_store_operations_total` and
/// `tutti_store_errors_total`, by `backend` (`sqlite`, `postgres`). They are counted with the
/// `metrics` macros on the calling thread.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "tutti_store_operations_total",
        "Calls to the store, by backend."
    );
    metrics::describe_counter!(
        "tutti_store_errors_total",
        "Calls to the store that failed (the database, a damaged record; not a refusal such as a taken number), by backend."
    );
}

/// Counts a call to the store of `backend`, and its failure.
pub(crate) fn counted<T>(
    backend: &'static str,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    metrics::counter!("tutti_store_operations_total", "backend" => backend).increment(1);
    // Counted (as 0) from the first call, so the series exists before any failure.
    let failed = result.as_ref().is_err_and(StoreError::is_failure);
    metrics::counter!("tutti_store_errors_total", "backend" => backend)
        .increment(u64::from(failed));
    result
}

/// An account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    /// Account id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// SHA-256 of the API key, hex. The key itself is never stored.
    pub api_key_hash: String,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Where the account's webhooks go, if anywhere.
    pub webhook_url: Option<String>,
    /// The secret webhook bodies are signed with (stored as is: signing needs it).
    pub webhook_secret: Option<String>,
}

/// A conference document.
#[derive(Clone, Debug, PartialEq)]
pub struct ConferenceRecord {
    /// Owner.
    pub account_id: Uuid,
    /// Conference id (UUIDv7, so ids sort by creation).
    pub id: Uuid,
    /// The document as the API validated it.
    pub document: serde_json::Value,
    /// What the server keeps about the conference's lifecycle (status, PIN, recordings);
    /// an object, `{}` for a new conference.
    pub state: serde_json::Value,
    /// Incremented on every change.
    pub revision: u64,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Last change, Unix seconds.
    pub modified: i64,
}

/// Kinds of records kept per account beside conferences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Collection {
    /// Participants' calls (VoIPbin's conferencecalls), kept after they leave.
    Calls,
    /// Recordings of conferences.
    Recordings,
}

impl Collection {
    /// The collection's name in storage.
    pub fn name(self) -> &'static str {
        match self {
            Collection::Calls => "calls",
            Collection::Recordings => "recordings",
        }
    }
}

/// A record of a [`Collection`]: a JSON document tied to one conference of one account.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemRecord {
    /// Owner.
    pub account_id: Uuid,
    /// Id (UUIDv7, so ids sort by creation).
    pub id: Uuid,
    /// The conference it belongs to.
    pub conference_id: Uuid,
    /// The record itself.
    pub document: serde_json::Value,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Last change, Unix seconds.
    pub modified: i64,
}

/// A webhook delivery kept until it is delivered, rejected or given up, so that a restart
/// resumes it (with the same id) instead of losing it.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// The delivery's id, sent with every attempt.
    pub id: Uuid,
    /// Where it goes.
    pub url: String,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// The secret it is signed with, if any.
    pub secret: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was accepted, Unix seconds.
    pub created: i64,
}

impl std::fmt::Debug for OutboxRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRecord")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("body_len", &self.body.len())
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// A SIP number (a DID, unique across accounts): calls to it reach its account, and its
/// conference when it names one (otherwise the account's prompt for a conference number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipNumberRecord {
    /// Owner.
    pub account_id: Uuid,
    /// Digits, with an optional leading `+`.
    pub number: String,
    /// The conference it leads to, if any.
    pub conference_id: Option<Uuid>,
}

/// A SIP username (unique across accounts) and its digest secrets for one realm.
#[derive(Clone, PartialEq, Eq)]
pub struct SipCredentialRecord {
    /// Owner.
    pub account_id: Uuid,
    /// The username.
    pub username: String,
    /// The realm the HA1s are for.
    pub realm: String,
    /// Hex MD5 of `username:realm:password`.
    pub ha1_md5: String,
    /// Hex SHA-256 of `username:realm:password` (RFC 8760).
    pub ha1_sha256: String,
}

impl std::fmt::Debug for SipCredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipCredentialRecord")
            .field("account_id", &self.account_id)
            .field("username", &self.username)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// Where documents and accounts live.
pub trait Store: Send + Sync {
    /// Adds an account.
    fn create_account(&self, account: &AccountRecord) -> Result<(), StoreError>;
    /// An account by id.
    fn account(&self, id: Uuid) -> Result<Option<AccountRecord>, StoreError>;
    /// The account whose API key hashes to `api_key_hash`.
    fn account_by_key_hash(&self, api_key_hash: &str) -> Result<Option<AccountRecord>, StoreError>;
    /// Sets (or with `None` clears) an account's webhook URL and signing secret; false when
    /// there is no such account.
    fn set_webhook(
        &self,
        account: Uuid,
        url: Option<&str>,
        secret: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Remembers a token (by its hash) until `expires` (Unix seconds).
    fn insert_token(&self, token_hash: &str, account: Uuid, expires: i64)
        -> Result<(), StoreError>;
    /// The account of an unexpired token, and when the token expires (Unix seconds).
    fn token_account(&self, token_hash: &str, now: i64) -> Result<Option<(Uuid, i64)>, StoreError>;
    /// Adds a conference and claims its numbers and its PIN (the state's `pin`, unique among
    /// the account's live conferences: [`StoreError::PinTaken`] when another has it; a
    /// conference whose state's `status` is `terminating` or `terminated` frees its PIN).
    fn insert_conference(
        &self,
        conference: &ConferenceRecord,
        numbers: &[String],
    ) -> Result<(), StoreError>;
    /// One conference of one account.
    fn conference(&self, account: Uuid, id: Uuid) -> Result<Option<ConferenceRecord>, StoreError>;
    /// A conference by its id alone, whichever account holds it (ids are unique across
    /// accounts): for callers who name a conference but hold no account's token (a PIN).
    fn conference_by_id(&self, id: Uuid) -> Result<Option<ConferenceRecord>, StoreError>;
    /// Replaces a conference if its stored revision is `conference.revision - 1`; re-claims its
    /// numbers.
    fn update_conference(
        &self,
        conference: &ConferenceRecord,
        numbers: &[String],
    ) -> Result<(), StoreError>;
    /// Deletes a conference; false when there was none.
    fn delete_conference(&self, account: Uuid, id: Uuid) -> Result<bool, StoreError>;
    /// Up to `limit` conferences of an account in creation order, starting at `start` (inclusive).
    fn list_conferences(
        &self,
        account: Uuid,
        start: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ConferenceRecord>, StoreError>;
    /// Up to `limit` conferences of an account, newest first, created before `before`
    /// (exclusive) when given.
    fn list_conferences_newest(
        &self,
        account: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ConferenceRecord>, StoreError>;
    /// Every conference of every account (for rebuilding schedules at start-up).
    fn every_conference(&self) -> Result<Vec<ConferenceRecord>, StoreError>;
    /// Adds or replaces a record of `collection`.
    fn put_item(&self, collection: Collection, item: &ItemRecord) -> Result<(), StoreError>;
    /// One record of one account.
    fn item(
        &self,
        collection: Collection,
        account: Uuid,
        id: Uuid,
    ) -> Result<Option<ItemRecord>, StoreError>;
    /// Up to `limit` records of an account (of one conference when given), newest first,
    /// created before `before` (exclusive) when given.
    fn list_items(
        &self,
        collection: Collection,
        account: Uuid,
        conference: Option<Uuid>,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ItemRecord>, StoreError>;
    /// Every record of `collection` whose document has `field` equal to `value`, across
    /// accounts (for repairing state at start-up).
    fn items_where(
        &self,
        collection: Collection,
        field: &str,
        value: &str,
    ) -> Result<Vec<ItemRecord>, StoreError>;
    /// Adds a webhook delivery to the outbox (after every delivery already there).
    fn outbox_add(&self, delivery: &OutboxRecord) -> Result<(), StoreError>;
    /// Records that a delivery has had `attempts` attempts.
    fn outbox_attempted(&self, id: Uuid, attempts: u32) -> Result<(), StoreError>;
    /// Removes a delivery (delivered, rejected or given up).
    fn outbox_remove(&self, id: Uuid) -> Result<(), StoreError>;
    /// Every delivery in the outbox, in the order they were added (in a store shared by several
    /// nodes, those of this node).
    fn outbox_pending(&self) -> Result<Vec<OutboxRecord>, StoreError>;
    /// Takes over the deliveries `dead_node` left in a store shared by several nodes, and
    /// returns them in the order they were added. A store of one node has no other node's
    /// deliveries: none.
    fn adopt_outbox(&self, dead_node: &str) -> Result<Vec<OutboxRecord>, StoreError> {
        let _ = dead_node;
        Ok(Vec::new())
    }
    /// Replaces an account's SIP numbers; [`StoreError::SipTaken`] (and no change) when
    /// another account has one of them.
    fn replace_sip_numbers(
        &self,
        account: Uuid,
        numbers: &[SipNumberRecord],
    ) -> Result<(), StoreError>;
    /// An account's SIP numbers, in number order.
    fn sip_numbers(&self, account: Uuid) -> Result<Vec<SipNumberRecord>, StoreError>;
    /// The SIP number `number`, whichever account has it.
    fn sip_number(&self, number: &str) -> Result<Option<SipNumberRecord>, StoreError>;
    /// Replaces an account's SIP credentials; [`StoreError::SipTaken`] (and no change) when
    /// another account has one of the usernames.
    fn replace_sip_credentials(
        &self,
        account: Uuid,
        credentials: &[SipCredentialRecord],
    ) -> Result<(), StoreError>;
    /// An account's SIP credentials, in username order.
    fn sip_credentials(&self, account: Uuid) -> Result<Vec<SipCredentialRecord>, StoreError>;
    /// The SIP credential of `username`, whichever account has it.
    fn sip_credential(&self, username: &str) -> Result<Option<SipCredentialRecord>, StoreError>;
}
