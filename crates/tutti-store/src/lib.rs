//! # tutti-store: persistence for tutti's control plane
//!
//! Accounts, API tokens and conference documents behind the [`Store`] trait, so the
//! conference service does not care where they live. [`SqliteStore`] embeds SQLite (the
//! default: one file under `./data`); a PostgreSQL store for several nodes sharing state can
//! implement the same trait. Every conference query is scoped to an account: there is no way
//! to reach another account's document through this API.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod migrations;
mod sqlite;

pub use sqlite::SqliteStore;

use uuid::Uuid;

/// Everything a store can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
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
    /// The document changed since it was read.
    #[error("conference {0} was changed concurrently")]
    Conflict(Uuid),
    /// The store's lock was poisoned by a panic elsewhere.
    #[error("the store is unavailable")]
    Unavailable,
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
    /// Incremented on every change.
    pub revision: u64,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Last change, Unix seconds.
    pub modified: i64,
}

/// Where documents and accounts live.
pub trait Store: Send + Sync {
    /// Adds an account.
    fn create_account(&self, account: &AccountRecord) -> Result<(), StoreError>;
    /// An account by id.
    fn account(&self, id: Uuid) -> Result<Option<AccountRecord>, StoreError>;
    /// The account whose API key hashes to `api_key_hash`.
    fn account_by_key_hash(&self, api_key_hash: &str) -> Result<Option<AccountRecord>, StoreError>;
    /// Remembers a token (by its hash) until `expires` (Unix seconds).
    fn insert_token(&self, token_hash: &str, account: Uuid, expires: i64)
        -> Result<(), StoreError>;
    /// The account of an unexpired token.
    fn token_account(&self, token_hash: &str, now: i64) -> Result<Option<Uuid>, StoreError>;
    /// Adds a conference and claims its numbers.
    fn insert_conference(
        &self,
        conference: &ConferenceRecord,
        numbers: &[String],
    ) -> Result<(), StoreError>;
    /// One conference of one account.
    fn conference(&self, account: Uuid, id: Uuid) -> Result<Option<ConferenceRecord>, StoreError>;
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
}
