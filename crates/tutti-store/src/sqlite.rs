//! The embedded SQLite store.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use crate::migrations::MIGRATIONS;
use crate::{
    AccountRecord, Collection, ConferenceRecord, ItemRecord, OutboxRecord, SipCredentialRecord,
    SipNumberRecord, Store, StoreError,
};

/// SQLite in one file (WAL mode), or in memory for tests.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

pub(crate) fn id_text(id: Uuid) -> String {
    id.simple().to_string()
}

pub(crate) fn parse_id(text: &str) -> Result<Uuid, rusqlite::Error> {
    Uuid::parse_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        Self::with_connection(connection)
    }

    /// A private in-memory database.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(mut connection: Connection) -> Result<Self, StoreError> {
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: usize =
            connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let transaction = connection.transaction()?;
            transaction.execute_batch(migration)?;
            transaction.pragma_update(None, "user_version", index + 1)?;
            transaction.commit()?;
        }
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = match self.connection.lock() {
            Ok(mut connection) => f(&mut connection),
            Err(_) => Err(StoreError::Unavailable),
        };
        crate::counted("sqlite", result)
    }
}

fn account_from(row: &rusqlite::Row<'_>) -> Result<AccountRecord, rusqlite::Error> {
    Ok(AccountRecord {
        id: parse_id(&row.get::<_, String>(0)?)?,
        name: row.get(1)?,
        api_key_hash: row.get(2)?,
        created: row.get(3)?,
        webhook_url: row.get(4)?,
        webhook_secret: row.get(5)?,
    })
}

const ACCOUNT_COLUMNS: &str = "id, name, api_key_hash, created, webhook_url, webhook_secret";

fn conference_from(row: &rusqlite::Row<'_>) -> Result<(ConferenceRecord, String), rusqlite::Error> {
    Ok((
        ConferenceRecord {
            account_id: parse_id(&row.get::<_, String>(0)?)?,
            id: parse_id(&row.get::<_, String>(1)?)?,
            document: serde_json::Value::Null,
            state: serde_json::Value::Null,
            revision: row.get::<_, i64>(3)? as u64,
            created: row.get(4)?,
            modified: row.get(5)?,
        },
        format!(
            "[{},{}]",
            row.get::<_, String>(2)?,
            row.get::<_, String>(6)?
        ),
    ))
}

/// Fills in the document and state read as one JSON array `[document, state]`.
fn with_document(
    (mut record, text): (ConferenceRecord, String),
) -> Result<ConferenceRecord, StoreError> {
    let (document, state): (serde_json::Value, serde_json::Value) =
        serde_json::from_str(&text).map_err(|_| StoreError::Corrupt(record.id))?;
    record.document = document;
    record.state = state;
    Ok(record)
}

const ITEM_COLUMNS: &str = "account_id, id, conference_id, document, created, modified";

fn item_from(row: &rusqlite::Row<'_>) -> Result<(ItemRecord, String), rusqlite::Error> {
    Ok((
        ItemRecord {
            account_id: parse_id(&row.get::<_, String>(0)?)?,
            id: parse_id(&row.get::<_, String>(1)?)?,
            conference_id: parse_id(&row.get::<_, String>(2)?)?,
            document: serde_json::Value::Null,
            created: row.get(4)?,
            modified: row.get(5)?,
        },
        row.get(3)?,
    ))
}

fn with_item_document((mut item, text): (ItemRecord, String)) -> Result<ItemRecord, StoreError> {
    item.document = serde_json::from_str(&text).map_err(|_| StoreError::Corrupt(item.id))?;
    Ok(item)
}

fn claim_numbers(
    transaction: &rusqlite::Transaction<'_>,
    conference: &ConferenceRecord,
    numbers: &[String],
) -> Result<(), StoreError> {
    let account = id_text(conference.account_id);
    let id = id_text(conference.id);
    transaction.execute(
        "DELETE FROM conference_numbers WHERE account_id = ?1 AND conference_id = ?2",
        params![account, id],
    )?;
    for number in numbers {
        let owner: Option<String> = transaction
            .query_row(
                "SELECT conference_id FROM conference_numbers WHERE account_id = ?1 AND number = ?2",
                params![account, number],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(owner) = owner {
            return Err(StoreError::NumberTaken {
                number: number.clone(),
                conference: parse_id(&owner)?,
            });
        }
        transaction.execute(
            "INSERT INTO conference_numbers (account_id, number, conference_id) VALUES (?1, ?2, ?3)",
            params![account, number, id],
        )?;
    }
    Ok(())
}

const CONFERENCE_COLUMNS: &str = "account_id, id, document, revision, created, modified, state";

impl Store for SqliteStore {
    fn create_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                &format!(
                    "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ),
                params![
                    id_text(account.id),
                    account.name,
                    account.api_key_hash,
                    account.created,
                    account.webhook_url,
                    account.webhook_secret
                ],
            )?;
            Ok(())
        })
    }

    fn account(&self, id: Uuid) -> Result<Option<AccountRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"),
                params![id_text(id)],
                account_from,
            )
            .optional()?)
        })
    }

    fn account_by_key_hash(&self, api_key_hash: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE api_key_hash = ?1"),
                params![api_key_hash],
                account_from,
            )
            .optional()?)
        })
    }

    fn insert_token(
        &self,
        token_hash: &str,
        account: Uuid,
        expires: i64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO tokens (token_hash, account_id, expires) VALUES (?1, ?2, ?3)",
                params![token_hash, id_text(account), expires],
            )?;
            Ok(())
        })
    }

    fn token_account(&self, token_hash: &str, now: i64) -> Result<Option<(Uuid, i64)>, StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM tokens WHERE expires <= ?1", params![now])?;
            let token: Option<(String, i64)> = c
                .query_row(
                    "SELECT account_id, expires FROM tokens WHERE token_hash = ?1 AND expires > ?2",
                    params![token_hash, now],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            Ok(token
                .map(|(account, expires)| parse_id(&account).map(|id| (id, expires)))
                .transpose()?)
        })
    }

    fn insert_conference(
        &self,
        conference: &ConferenceRecord,
        numbers: &[String],
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let transaction = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            claim_numbers(&transaction, conference, numbers)?;
            transaction
                .execute(
                    &format!("INSERT INTO conferences ({CONFERENCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                    params![
                        id_text(conference.account_id),
                        id_text(conference.id),
                        conference.document.to_string(),
                        conference.revision as i64,
                        conference.created,
                        conference.modified,
                        state_text(&conference.state)
                    ],
                )
                .map_err(pin_taken)?;
            transaction.commit()?;
            Ok(())
        })
    }

    fn conference(&self, account: Uuid, id: Uuid) -> Result<Option<ConferenceRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE account_id = ?1 AND id = ?2"),
                params![id_text(account), id_text(id)],
                conference_from,
            )
            .optional()?
            .map(with_document)
            .transpose()
        })
    }

    fn update_conference(
        &self,
        conference: &ConferenceRecord,
        numbers: &[String],
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let transaction = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            claim_numbers(&transaction, conference, numbers)?;
            let changed = transaction
                .execute(
                    "UPDATE conferences SET document = ?3, revision = ?4, modified = ?5, state = ?6
                     WHERE account_id = ?1 AND id = ?2 AND revision = ?4 - 1",
                    params![
                        id_text(conference.account_id),
                        id_text(conference.id),
                        conference.document.to_string(),
                        conference.revision as i64,
                        conference.modified,
                        state_text(&conference.state)
                    ],
                )
                .map_err(pin_taken)?;
            if changed == 0 {
                return Err(StoreError::Conflict(conference.id));
            }
            transaction.commit()?;
            Ok(())
        })
    }

    fn delete_conference(&self, account: Uuid, id: Uuid) -> Result<bool, StoreError> {
        self.with(|c| {
            let transaction = c.transaction()?;
            transaction.execute(
                "DELETE FROM conference_numbers WHERE account_id = ?1 AND conference_id = ?2",
                params![id_text(account), id_text(id)],
            )?;
            let deleted = transaction.execute(
                "DELETE FROM conferences WHERE account_id = ?1 AND id = ?2",
                params![id_text(account), id_text(id)],
            )?;
            transaction.commit()?;
            Ok(deleted > 0)
        })
    }

    fn list_conferences(
        &self,
        account: Uuid,
        start: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ConferenceRecord>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE account_id = ?1 AND id >= ?2 ORDER BY id LIMIT ?3"
            ))?;
            let start = start.map(id_text).unwrap_or_default();
            let rows = statement.query_map(params![id_text(account), start, limit as i64], conference_from)?;
            rows.map(|row| with_document(row?)).collect()
        })
    }

    fn list_conferences_newest(
        &self,
        account: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ConferenceRecord>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE account_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
            ))?;
            let before = before.map_or_else(|| "g".to_owned(), id_text);
            let rows = statement.query_map(params![id_text(account), before, limit as i64], conference_from)?;
            rows.map(|row| with_document(row?)).collect()
        })
    }

    fn conference_by_id(&self, id: Uuid) -> Result<Option<ConferenceRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE id = ?1 LIMIT 1"),
                params![id_text(id)],
                conference_from,
            )
            .optional()?
            .map(with_document)
            .transpose()
        })
    }

    fn every_conference(&self) -> Result<Vec<ConferenceRecord>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {CONFERENCE_COLUMNS} FROM conferences ORDER BY id"
            ))?;
            let rows = statement.query_map([], conference_from)?;
            rows.map(|row| with_document(row?)).collect()
        })
    }

    fn set_webhook(
        &self,
        account: Uuid,
        url: Option<&str>,
        secret: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            let changed = c.execute(
                "UPDATE accounts SET webhook_url = ?2, webhook_secret = ?3 WHERE id = ?1",
                params![id_text(account), url, secret],
            )?;
            Ok(changed > 0)
        })
    }

    fn put_item(&self, collection: Collection, item: &ItemRecord) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                &format!(
                    "INSERT OR REPLACE INTO items (collection, {ITEM_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    collection.name(),
                    id_text(item.account_id),
                    id_text(item.id),
                    id_text(item.conference_id),
                    item.document.to_string(),
                    item.created,
                    item.modified
                ],
            )?;
            Ok(())
        })
    }

    fn item(
        &self,
        collection: Collection,
        account: Uuid,
        id: Uuid,
    ) -> Result<Option<ItemRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {ITEM_COLUMNS} FROM items WHERE collection = ?1 AND account_id = ?2 AND id = ?3"),
                params![collection.name(), id_text(account), id_text(id)],
                item_from,
            )
            .optional()?
            .map(with_item_document)
            .transpose()
        })
    }

    fn list_items(
        &self,
        collection: Collection,
        account: Uuid,
        conference: Option<Uuid>,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ItemRecord>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {ITEM_COLUMNS} FROM items WHERE collection = ?1 AND account_id = ?2
                 AND (?3 IS NULL OR conference_id = ?3) AND id < ?4 ORDER BY id DESC LIMIT ?5"
            ))?;
            let before = before.map_or_else(|| "g".to_owned(), id_text);
            let rows = statement.query_map(
                params![
                    collection.name(),
                    id_text(account),
                    conference.map(id_text),
                    before,
                    limit as i64
                ],
                item_from,
            )?;
            rows.map(|row| with_item_document(row?)).collect()
        })
    }

    fn items_where(
        &self,
        collection: Collection,
        field: &str,
        value: &str,
    ) -> Result<Vec<ItemRecord>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {ITEM_COLUMNS} FROM items WHERE collection = ?1
                 AND json_extract(document, '$.' || ?2) = ?3 ORDER BY id"
            ))?;
            let rows = statement.query_map(params![collection.name(), field, value], item_from)?;
            rows.map(|row| with_item_document(row?)).collect()
        })
    }

    fn outbox_add(&self, delivery: &OutboxRecord) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO webhook_outbox (id, url, body, secret, attempts, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id_text(delivery.id),
                    delivery.url,
                    delivery.body,
                    delivery.secret,
                    delivery.attempts,
                    delivery.created
                ],
            )?;
            Ok(())
        })
    }

    fn outbox_attempted(&self, id: Uuid, attempts: u32) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE webhook_outbox SET attempts = ?2 WHERE id = ?1",
                params![id_text(id), attempts],
            )?;
            Ok(())
        })
    }

    fn outbox_remove(&self, id: Uuid) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM webhook_outbox WHERE id = ?1",
                params![id_text(id)],
            )?;
            Ok(())
        })
    }

    fn replace_sip_numbers(
        &self,
        account: Uuid,
        numbers: &[SipNumberRecord],
    ) -> Result<(), StoreError> {
        self.with(|c| crate::sip::replace_numbers(c, account, numbers))
    }

    fn sip_numbers(&self, account: Uuid) -> Result<Vec<SipNumberRecord>, StoreError> {
        self.with(|c| crate::sip::numbers(c, account))
    }

    fn sip_number(&self, number: &str) -> Result<Option<SipNumberRecord>, StoreError> {
        self.with(|c| crate::sip::number(c, number))
    }

    fn replace_sip_credentials(
        &self,
        account: Uuid,
        credentials: &[SipCredentialRecord],
    ) -> Result<(), StoreError> {
        self.with(|c| crate::sip::replace_credentials(c, account, credentials))
    }

    fn sip_credentials(&self, account: Uuid) -> Result<Vec<SipCredentialRecord>, StoreError> {
        self.with(|c| crate::sip::credentials(c, account))
    }

    fn sip_credential(&self, username: &str) -> Result<Option<SipCredentialRecord>, StoreError> {
        self.with(|c| crate::sip::credential(c, username))
    }

    fn outbox_pending(&self) -> Result<Vec<OutboxRecord>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT id, url, body, secret, attempts, created FROM webhook_outbox ORDER BY seq",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(OutboxRecord {
                    id: parse_id(&row.get::<_, String>(0)?)?,
                    url: row.get(1)?,
                    body: row.get(2)?,
                    secret: row.get(3)?,
                    attempts: row.get(4)?,
                    created: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

/// [`StoreError::PinTaken`] when `error` is the live-PIN index refusing a duplicate.
fn pin_taken(error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, Some(message))
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                && message.contains("live_pin") =>
        {
            StoreError::PinTaken
        }
        _ => StoreError::Database(error),
    }
}

/// A conference's state as stored: always an object.
fn state_text(state: &serde_json::Value) -> String {
    if state.is_object() {
        state.to_string()
    } else {
        "{}".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn the_live_pin_index_answers_the_lookup() {
        let store = SqliteStore::in_memory().unwrap();
        // SQLite does not scan the account's conferences.
        let plan: String = store
            .with(|c| {
                Ok(c.query_row(
                    "EXPLAIN QUERY PLAN SELECT 1 FROM conferences WHERE account_id = ?1 AND live_pin = ?2",
                    params![id_text(Uuid::now_v7()), "123456"],
                    |row| row.get(3),
                )?)
            })
            .unwrap();
        assert!(plan.contains("conferences_live_pin"), "{plan}");
    }

    /// A database as an older version left it, with one account (whose id it returns).
    fn database_at(version: usize) -> (Connection, String) {
        let connection = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..version] {
            connection.execute_batch(migration).unwrap();
        }
        connection
            .pragma_update(None, "user_version", version)
            .unwrap();
        let account = id_text(Uuid::now_v7());
        connection
            .execute(
                "INSERT INTO accounts (id, name, api_key_hash, created) VALUES (?1, 'a', 'h', 1)",
                params![account],
            )
            .unwrap();
        (connection, account)
    }

    #[test]
    fn a_version_two_database_keeps_one_live_pin_per_account_and_pin() {
        let (connection, account) = database_at(2);
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        for (id, status) in ids.iter().zip(["starting", "progressing", "terminated"]) {
            connection
                .execute(
                    "INSERT INTO conferences (account_id, id, document, revision, created, modified, state)
                     VALUES (?1, ?2, '{}', 1, 1, 1, ?3)",
                    params![account, id_text(*id), json!({"status": status, "pin": "111111"}).to_string()],
                )
                .unwrap();
        }
        let store = SqliteStore::with_connection(connection).unwrap();
        let all = store.every_conference().unwrap();
        let pins: Vec<&Value> = all.iter().map(|c| &c.state["pin"]).collect();
        assert_eq!(pins, [&json!("111111"), &Value::Null, &json!("111111")]);
    }

    #[test]
    fn a_version_one_database_is_migrated_with_its_documents() {
        let (connection, account) = database_at(1);
        let id = Uuid::now_v7();
        connection
            .execute(
                "INSERT INTO conferences (account_id, id, document, revision, created, modified)
                 VALUES (?1, ?2, '{\"name\":\"old\"}', 1, 1, 1)",
                params![account, id_text(id)],
            )
            .unwrap();
        let store = SqliteStore::with_connection(connection).unwrap();
        let all = store.every_conference().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].document, json!({"name": "old"}));
        assert_eq!(all[0].state, json!({}));
    }
}
