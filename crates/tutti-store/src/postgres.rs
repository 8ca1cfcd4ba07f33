//! PostgreSQL, shared by the nodes of a cluster.
//!
//! The [`Store`] trait is synchronous and is called from tokio tasks, plain threads and
//! single-threaded test runtimes alike, so the store owns a small runtime of its own holding
//! the connection pool: each call runs its queries there and the caller waits on a channel
//! (never `block_on` inside the caller's runtime, which would panic).

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Executor, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::postgres_migrations::{MIGRATIONS, MIGRATION_LOCK};
use crate::{
    AccountRecord, Collection, ConferenceRecord, ItemRecord, OutboxRecord, SipCredentialRecord,
    SipNumberRecord, Store, StoreError,
};

/// How a [`PostgresStore`] connects.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// This node's id: the webhook deliveries it accepts are its own ([`Store::outbox_pending`]
    /// returns only those) until another node adopts them with [`Store::adopt_outbox`].
    pub node: String,
    /// Most connections the pool opens.
    pub pool_size: u32,
    /// How long a query waits for a free connection (and a new connection for the server).
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            node: "local".to_owned(),
            pool_size: 8,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// A statement and its parameters.
type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// PostgreSQL through a connection pool; several nodes (processes) may share one database.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    node: String,
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

/// Runs `query` on `runtime` and waits for its result on this thread, whatever runtime this
/// thread belongs to.
fn wait_for<T, F>(runtime: &tokio::runtime::Handle, query: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let (sender, receiver) = mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = sender.send(query.await);
    });
    receiver.recv().map_err(|_| StoreError::Unavailable)?
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) and
    /// migrates it; refuses a database migrated by a newer version of tutti
    /// ([`StoreError::SchemaTooNew`]).
    pub fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let connect: PgConnectOptions = url.parse()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tutti-postgres")
            .enable_all()
            .build()
            .map_err(sqlx::Error::Io)?;
        let pool_options = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .acquire_timeout(options.acquire_timeout);
        let pool = wait_for(runtime.handle(), async move {
            let pool = pool_options
                .connect_with(connect.application_name("tutti"))
                .await?;
            migrate(&pool).await?;
            Ok(pool)
        });
        match pool {
            Ok(pool) => Ok(Self {
                pool,
                node: options.node,
                runtime: Some(runtime),
            }),
            Err(error) => {
                runtime.shutdown_background();
                Err(error)
            }
        }
    }

    /// This node's id, the owner of the webhook deliveries it accepts.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn run<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let result = match &self.runtime {
            Some(runtime) => wait_for(runtime.handle(), query),
            None => Err(StoreError::Unavailable),
        };
        crate::counted("postgres", result)
    }

    /// The row `sql` (its parameters bound by `bind`) finds, if any, read by `read`.
    fn optional<T: Send + 'static>(
        &self,
        sql: String,
        bind: impl for<'q> FnOnce(PgQuery<'q>) -> PgQuery<'q> + Send + 'static,
        read: fn(&PgRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.with(|pool| async move {
            let row = bind(sqlx::query(&sql)).fetch_optional(&pool).await?;
            row.as_ref().map(read).transpose()
        })
    }

    /// Every row `sql` (its parameters bound by `bind`) finds, read by `read`.
    fn all<T: Send + 'static>(
        &self,
        sql: String,
        bind: impl for<'q> FnOnce(PgQuery<'q>) -> PgQuery<'q> + Send + 'static,
        read: fn(&PgRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.with(|pool| async move {
            let rows = bind(sqlx::query(&sql)).fetch_all(&pool).await?;
            rows.iter().map(read).collect()
        })
    }

    /// Runs `sql` (its parameters bound by `bind`); how many rows it changed.
    fn execute(
        &self,
        sql: String,
        bind: impl for<'q> FnOnce(PgQuery<'q>) -> PgQuery<'q> + Send + 'static,
    ) -> Result<u64, StoreError> {
        self.with(|pool| async move {
            let done = bind(sqlx::query(&sql)).execute(&pool).await?;
            Ok(done.rows_affected())
        })
    }

    /// [`Directory::replace`] on this store's pool.
    fn replace_in<T: Clone + Send + Sync + 'static>(
        &self,
        directory: Directory,
        account: Uuid,
        entries: &[T],
        key: fn(&T) -> &String,
        bind: BindEntry<T>,
    ) -> Result<(), StoreError> {
        let entries = entries.to_vec();
        self.with(|pool| async move { directory.replace(pool, account, &entries, key, bind).await })
    }

    /// Runs `query` with a clone of the pool.
    fn with<T, F>(&self, query: impl FnOnce(PgPool) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.run(query(self.pool.clone()))
    }
}

/// How long dropping a store waits for its connections to say goodbye.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

impl Drop for PostgresStore {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        // Close the connections properly (the server then logs no lost client), but never
        // wait long for a server that does not answer.
        let (closed, wait) = mpsc::sync_channel(1);
        let pool = self.pool.clone();
        runtime.spawn(async move {
            pool.close().await;
            let _ = closed.send(());
        });
        let _ = wait.recv_timeout(CLOSE_TIMEOUT);
        // Dropping a runtime blocks, which panics inside another runtime; this does not.
        runtime.shutdown_background();
    }
}

/// Brings the schema up to date, one node at a time.
async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, 1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *transaction)
        .await?;
    transaction
        .execute("CREATE TABLE IF NOT EXISTS tutti_schema (version integer NOT NULL)")
        .await?;
    let version: Option<i32> = sqlx::query_scalar("SELECT version FROM tutti_schema")
        .fetch_optional(&mut *transaction)
        .await?;
    let version = match version {
        Some(version) => version,
        None => {
            sqlx::query("INSERT INTO tutti_schema (version) VALUES (0)")
                .execute(&mut *transaction)
                .await?;
            0
        }
    };
    let known = MIGRATIONS.len();
    let applied = usize::try_from(version).unwrap_or(usize::MAX);
    if applied > known {
        return Err(StoreError::SchemaTooNew {
            found: i64::from(version),
            known,
        });
    }
    for migration in MIGRATIONS.iter().skip(applied).copied() {
        // Several statements: sent as one simple query.
        transaction.execute(sqlx::raw_sql(migration)).await?;
    }
    sqlx::query("UPDATE tutti_schema SET version = $1")
        .bind(i32::try_from(known).unwrap_or(i32::MAX))
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// A limit as PostgreSQL takes it (`usize::MAX` means no limit, as in SQLite).
fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

const ACCOUNT_COLUMNS: &str = "id, name, api_key_hash, created, webhook_url, webhook_secret";

fn account_from(row: &PgRow) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        api_key_hash: row.try_get(2)?,
        created: row.try_get(3)?,
        webhook_url: row.try_get(4)?,
        webhook_secret: row.try_get(5)?,
    })
}

const CONFERENCE_COLUMNS: &str =
    "account_id, id, document, revision, created, modified, state::text";

fn conference_from(row: &PgRow) -> Result<ConferenceRecord, StoreError> {
    let id = row.try_get(1)?;
    let json = |index: usize| -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(row.try_get(index)?).map_err(|_| StoreError::Corrupt(id))
    };
    Ok(ConferenceRecord {
        account_id: row.try_get(0)?,
        id,
        document: json(2)?,
        state: json(6)?,
        revision: row.try_get::<i64, _>(3)? as u64,
        created: row.try_get(4)?,
        modified: row.try_get(5)?,
    })
}

const ITEM_COLUMNS: &str = "account_id, id, conference_id, document, created, modified";

fn item_from(row: &PgRow) -> Result<ItemRecord, StoreError> {
    let id = row.try_get(1)?;
    Ok(ItemRecord {
        account_id: row.try_get(0)?,
        id,
        conference_id: row.try_get(2)?,
        document: serde_json::from_str(row.try_get(3)?).map_err(|_| StoreError::Corrupt(id))?,
        created: row.try_get(4)?,
        modified: row.try_get(5)?,
    })
}

fn outbox_from(row: &PgRow) -> Result<OutboxRecord, StoreError> {
    Ok(OutboxRecord {
        id: row.try_get(0)?,
        url: row.try_get(1)?,
        body: row.try_get(2)?,
        secret: row.try_get(3)?,
        attempts: u32::try_from(row.try_get::<i64, _>(4)?).unwrap_or(u32::MAX),
        created: row.try_get(5)?,
    })
}

fn number_from(row: &PgRow) -> Result<SipNumberRecord, StoreError> {
    Ok(SipNumberRecord {
        number: row.try_get(0)?,
        account_id: row.try_get(1)?,
        conference_id: row.try_get(2)?,
    })
}

const CREDENTIAL_COLUMNS: &str = "username, account_id, realm, ha1_md5, ha1_sha256";

fn credential_from(row: &PgRow) -> Result<SipCredentialRecord, StoreError> {
    Ok(SipCredentialRecord {
        username: row.try_get(0)?,
        account_id: row.try_get(1)?,
        realm: row.try_get(2)?,
        ha1_md5: row.try_get(3)?,
        ha1_sha256: row.try_get(4)?,
    })
}

/// The unique constraint `error` violates, if that is what it is.
fn violated(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(database) if database.is_unique_violation() => database.constraint(),
        _ => None,
    }
}

/// [`StoreError::PinTaken`] when `error` is the live-PIN index refusing a duplicate.
fn pin_taken(error: sqlx::Error) -> StoreError {
    if violated(&error) == Some("conferences_live_pin") {
        StoreError::PinTaken
    } else {
        StoreError::Postgres(error)
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

/// Claims `numbers` for `conference` (releasing the ones it had), or says which conference
/// of the account has one of them. A number another node is claiming at the same moment is
/// waited for, then found taken.
async fn claim_numbers(
    transaction: &mut Transaction<'static, Postgres>,
    conference: &ConferenceRecord,
    numbers: &[String],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM conference_numbers WHERE account_id = $1 AND conference_id = $2")
        .bind(conference.account_id)
        .bind(conference.id)
        .execute(&mut **transaction)
        .await?;
    for number in numbers {
        let claimed = sqlx::query(
            "INSERT INTO conference_numbers (account_id, number, conference_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(conference.account_id)
        .bind(number)
        .bind(conference.id)
        .execute(&mut **transaction)
        .await?;
        if claimed.rows_affected() == 0 {
            let owner: Option<Uuid> = sqlx::query_scalar(
                "SELECT conference_id FROM conference_numbers WHERE account_id = $1 AND number = $2",
            )
            .bind(conference.account_id)
            .bind(number)
            .fetch_optional(&mut **transaction)
            .await?;
            return Err(match owner {
                Some(owner) => StoreError::NumberTaken {
                    number: number.clone(),
                    conference: owner,
                },
                // Released between the two statements by another node: a lost race.
                None => StoreError::Conflict(conference.id),
            });
        }
    }
    Ok(())
}

/// A SIP directory table: entries unique across accounts, replaced as a list per account.
#[derive(Clone, Copy)]
struct Directory {
    table: &'static str,
    key: &'static str,
    /// What [`StoreError::SipTaken`] calls an entry.
    kind: &'static str,
    /// Adds one entry.
    insert: &'static str,
}

const SIP_NUMBERS: Directory = Directory {
    table: "sip_numbers",
    key: "number",
    kind: "number",
    insert: "INSERT INTO sip_numbers (number, account_id, conference_id) VALUES ($1, $2, $3)",
};

const SIP_CREDENTIALS: Directory = Directory {
    table: "sip_credentials",
    key: "username",
    kind: "username",
    insert: "INSERT INTO sip_credentials (username, account_id, realm, ha1_md5, ha1_sha256)
             VALUES ($1, $2, $3, $4, $5)",
};

/// Binds an entry's columns (and its account) to a directory's `insert`.
type BindEntry<T> = for<'q> fn(PgQuery<'q>, &'q T, Uuid) -> PgQuery<'q>;

impl Directory {
    /// Replaces `account`'s entries with `entries` (each inserted with `bind`), or changes
    /// nothing and says which one another account has. One taken by another node at the same
    /// moment is refused too.
    async fn replace<T>(
        self,
        pool: PgPool,
        account: Uuid,
        entries: &[T],
        key: fn(&T) -> &String,
        bind: BindEntry<T>,
    ) -> Result<(), StoreError> {
        let taken = |value: &String| StoreError::SipTaken {
            kind: self.kind,
            value: value.clone(),
        };
        let mut transaction = pool.begin().await?;
        let owner_sql = format!(
            "SELECT account_id FROM {} WHERE {} = $1",
            self.table, self.key
        );
        for entry in entries {
            let owner: Option<Uuid> = sqlx::query_scalar(&owner_sql)
                .bind(key(entry))
                .fetch_optional(&mut *transaction)
                .await?;
            if owner.is_some_and(|owner| owner != account) {
                return Err(taken(key(entry)));
            }
        }
        sqlx::query(&format!("DELETE FROM {} WHERE account_id = $1", self.table))
            .bind(account)
            .execute(&mut *transaction)
            .await?;
        let primary_key = format!("{}_pkey", self.table);
        for entry in entries {
            bind(sqlx::query(self.insert), entry, account)
                .execute(&mut *transaction)
                .await
                .map_err(|error| match violated(&error) {
                    Some(constraint) if constraint == primary_key => taken(key(entry)),
                    _ => StoreError::Postgres(error),
                })?;
        }
        transaction.commit().await?;
        Ok(())
    }
}

impl Store for PostgresStore {
    fn create_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        let a = account.clone();
        let sql =
            format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)");
        self.execute(sql, move |q| {
            q.bind(a.id)
                .bind(a.name)
                .bind(a.api_key_hash)
                .bind(a.created)
                .bind(a.webhook_url)
                .bind(a.webhook_secret)
        })
        .map(drop)
    }

    fn account(&self, id: Uuid) -> Result<Option<AccountRecord>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        self.optional(sql, move |q| q.bind(id), account_from)
    }

    fn account_by_key_hash(&self, api_key_hash: &str) -> Result<Option<AccountRecord>, StoreError> {
        let hash = api_key_hash.to_owned();
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE api_key_hash = $1");
        self.optional(sql, move |q| q.bind(hash), account_from)
    }

    fn set_webhook(
        &self,
        account: Uuid,
        url: Option<&str>,
        secret: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (url, secret) = (url.map(str::to_owned), secret.map(str::to_owned));
        let sql = "UPDATE accounts SET webhook_url = $2, webhook_secret = $3 WHERE id = $1";
        let changed = self.execute(sql.into(), move |q| q.bind(account).bind(url).bind(secret))?;
        Ok(changed > 0)
    }

    fn insert_token(
        &self,
        token_hash: &str,
        account: Uuid,
        expires: i64,
    ) -> Result<(), StoreError> {
        let hash = token_hash.to_owned();
        let sql = "INSERT INTO tokens (token_hash, account_id, expires) VALUES ($1, $2, $3)";
        self.execute(sql.into(), move |q| {
            q.bind(hash).bind(account).bind(expires)
        })
        .map(drop)
    }

    fn token_account(&self, token_hash: &str, now: i64) -> Result<Option<(Uuid, i64)>, StoreError> {
        let hash = token_hash.to_owned();
        self.with(|pool| async move {
            sqlx::query("DELETE FROM tokens WHERE expires <= $1")
                .bind(now)
                .execute(&pool)
                .await?;
            let token: Option<(Uuid, i64)> = sqlx::query_as(
                "SELECT account_id, expires FROM tokens WHERE token_hash = $1 AND expires > $2",
            )
            .bind(hash)
            .bind(now)
            .fetch_optional(&pool)
            .await?;
            Ok(token)
        })
    }

    fn insert_conference(
        &self,
        conference: &ConferenceRecord,
        numbers: &[String],
    ) -> Result<(), StoreError> {
        let (conference, numbers) = (conference.clone(), numbers.to_vec());
        self.with(|pool| async move {
            let mut transaction = pool.begin().await?;
            claim_numbers(&mut transaction, &conference, &numbers).await?;
            sqlx::query(
                "INSERT INTO conferences (account_id, id, document, revision, created, modified, state)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
            )
            .bind(conference.account_id)
            .bind(conference.id)
            .bind(conference.document.to_string())
            .bind(conference.revision as i64)
            .bind(conference.created)
            .bind(conference.modified)
            .bind(state_text(&conference.state))
            .execute(&mut *transaction)
            .await
            .map_err(pin_taken)?;
            transaction.commit().await?;
            Ok(())
        })
    }

    fn conference(&self, account: Uuid, id: Uuid) -> Result<Option<ConferenceRecord>, StoreError> {
        let sql = format!(
            "SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE account_id = $1 AND id = $2"
        );
        self.optional(sql, move |q| q.bind(account).bind(id), conference_from)
    }

    fn conference_by_id(&self, id: Uuid) -> Result<Option<ConferenceRecord>, StoreError> {
        let sql = format!("SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE id = $1 LIMIT 1");
        self.optional(sql, move |q| q.bind(id), conference_from)
    }

    fn update_conference(
        &self,
        conference: &ConferenceRecord,
        numbers: &[String],
    ) -> Result<(), StoreError> {
        let (conference, numbers) = (conference.clone(), numbers.to_vec());
        self.with(|pool| async move {
            let mut transaction = pool.begin().await?;
            claim_numbers(&mut transaction, &conference, &numbers).await?;
            // Another node's update of the same row makes this one wait, then find the
            // revision moved on.
            let changed = sqlx::query(
                "UPDATE conferences SET document = $3, revision = $4, modified = $5, state = $6::jsonb
                 WHERE account_id = $1 AND id = $2 AND revision = $4 - 1",
            )
            .bind(conference.account_id)
            .bind(conference.id)
            .bind(conference.document.to_string())
            .bind(conference.revision as i64)
            .bind(conference.modified)
            .bind(state_text(&conference.state))
            .execute(&mut *transaction)
            .await
            .map_err(pin_taken)?;
            if changed.rows_affected() == 0 {
                return Err(StoreError::Conflict(conference.id));
            }
            transaction.commit().await?;
            Ok(())
        })
    }

    fn delete_conference(&self, account: Uuid, id: Uuid) -> Result<bool, StoreError> {
        self.with(|pool| async move {
            let mut transaction = pool.begin().await?;
            sqlx::query(
                "DELETE FROM conference_numbers WHERE account_id = $1 AND conference_id = $2",
            )
            .bind(account)
            .bind(id)
            .execute(&mut *transaction)
            .await?;
            let deleted = sqlx::query("DELETE FROM conferences WHERE account_id = $1 AND id = $2")
                .bind(account)
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
            Ok(deleted.rows_affected() > 0)
        })
    }

    fn list_conferences(
        &self,
        account: Uuid,
        start: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ConferenceRecord>, StoreError> {
        let sql = format!(
            "SELECT {CONFERENCE_COLUMNS} FROM conferences
             WHERE account_id = $1 AND ($2::uuid IS NULL OR id >= $2) ORDER BY id LIMIT $3"
        );
        let limit = self::limit(limit);
        self.all(
            sql,
            move |q| q.bind(account).bind(start).bind(limit),
            conference_from,
        )
    }

    fn list_conferences_newest(
        &self,
        account: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ConferenceRecord>, StoreError> {
        let sql = format!(
            "SELECT {CONFERENCE_COLUMNS} FROM conferences
             WHERE account_id = $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        );
        let limit = self::limit(limit);
        self.all(
            sql,
            move |q| q.bind(account).bind(before).bind(limit),
            conference_from,
        )
    }

    fn every_conference(&self) -> Result<Vec<ConferenceRecord>, StoreError> {
        let sql = format!("SELECT {CONFERENCE_COLUMNS} FROM conferences ORDER BY id");
        self.all(sql, |q| q, conference_from)
    }

    fn put_item(&self, collection: Collection, item: &ItemRecord) -> Result<(), StoreError> {
        let item = item.clone();
        let sql = format!(
            "INSERT INTO items (collection, {ITEM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (collection, account_id, id) DO UPDATE SET
             conference_id = EXCLUDED.conference_id, document = EXCLUDED.document,
             created = EXCLUDED.created, modified = EXCLUDED.modified"
        );
        self.execute(sql, move |q| {
            q.bind(collection.name())
                .bind(item.account_id)
                .bind(item.id)
                .bind(item.conference_id)
                .bind(item.document.to_string())
                .bind(item.created)
                .bind(item.modified)
        })
        .map(drop)
    }

    fn item(
        &self,
        collection: Collection,
        account: Uuid,
        id: Uuid,
    ) -> Result<Option<ItemRecord>, StoreError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE collection = $1 AND account_id = $2 AND id = $3"
        );
        self.optional(
            sql,
            move |q| q.bind(collection.name()).bind(account).bind(id),
            item_from,
        )
    }

    fn list_items(
        &self,
        collection: Collection,
        account: Uuid,
        conference: Option<Uuid>,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ItemRecord>, StoreError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE collection = $1 AND account_id = $2
             AND ($3::uuid IS NULL OR conference_id = $3) AND ($4::uuid IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5"
        );
        let limit = self::limit(limit);
        self.all(
            sql,
            move |q| {
                q.bind(collection.name())
                    .bind(account)
                    .bind(conference)
                    .bind(before)
                    .bind(limit)
            },
            item_from,
        )
    }

    fn items_where(
        &self,
        collection: Collection,
        field: &str,
        value: &str,
    ) -> Result<Vec<ItemRecord>, StoreError> {
        let (field, value) = (field.to_owned(), value.to_owned());
        // As SQLite's `json_extract(document, '$.' || field) = value`: a dotted path, and only
        // a JSON string equals the text.
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE collection = $1
             AND document::jsonb #> string_to_array($2, '.') = to_jsonb($3::text) ORDER BY id"
        );
        self.all(
            sql,
            move |q| q.bind(collection.name()).bind(field).bind(value),
            item_from,
        )
    }

    fn outbox_add(&self, delivery: &OutboxRecord) -> Result<(), StoreError> {
        let (d, node) = (delivery.clone(), self.node.clone());
        let sql = "INSERT INTO webhook_outbox (id, owner, url, body, secret, attempts, created)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        self.execute(sql.into(), move |q| {
            q.bind(d.id)
                .bind(node)
                .bind(d.url)
                .bind(d.body)
                .bind(d.secret)
                .bind(i64::from(d.attempts))
                .bind(d.created)
        })
        .map(drop)
    }

    fn outbox_attempted(&self, id: Uuid, attempts: u32) -> Result<(), StoreError> {
        let sql = "UPDATE webhook_outbox SET attempts = $2 WHERE id = $1";
        self.execute(sql.into(), move |q| q.bind(id).bind(i64::from(attempts)))
            .map(drop)
    }

    fn outbox_remove(&self, id: Uuid) -> Result<(), StoreError> {
        let sql = "DELETE FROM webhook_outbox WHERE id = $1";
        self.execute(sql.into(), move |q| q.bind(id)).map(drop)
    }

    /// Moves `dead_node`'s rows to this node in one statement; they keep their places in the
    /// acceptance order.
    fn adopt_outbox(&self, dead_node: &str) -> Result<Vec<OutboxRecord>, StoreError> {
        let (node, dead) = (self.node.clone(), dead_node.to_owned());
        let sql = "WITH adopted AS (
                       UPDATE webhook_outbox SET owner = $1 WHERE owner = $2
                       RETURNING seq, id, url, body, secret, attempts, created
                   )
                   SELECT id, url, body, secret, attempts, created FROM adopted ORDER BY seq";
        self.all(sql.into(), move |q| q.bind(node).bind(dead), outbox_from)
    }

    fn outbox_pending(&self) -> Result<Vec<OutboxRecord>, StoreError> {
        let node = self.node.clone();
        let sql = "SELECT id, url, body, secret, attempts, created FROM webhook_outbox
                   WHERE owner = $1 ORDER BY seq";
        self.all(sql.into(), move |q| q.bind(node), outbox_from)
    }

    fn replace_sip_numbers(
        &self,
        account: Uuid,
        numbers: &[SipNumberRecord],
    ) -> Result<(), StoreError> {
        self.replace_in(
            SIP_NUMBERS,
            account,
            numbers,
            |n| &n.number,
            |q, n, account| q.bind(&n.number).bind(account).bind(n.conference_id),
        )
    }

    fn sip_numbers(&self, account: Uuid) -> Result<Vec<SipNumberRecord>, StoreError> {
        let sql = "SELECT number, account_id, conference_id FROM sip_numbers
                   WHERE account_id = $1 ORDER BY number COLLATE \"C\"";
        self.all(sql.into(), move |q| q.bind(account), number_from)
    }

    fn sip_number(&self, number: &str) -> Result<Option<SipNumberRecord>, StoreError> {
        let number = number.to_owned();
        let sql = "SELECT number, account_id, conference_id FROM sip_numbers WHERE number = $1";
        self.optional(sql.into(), move |q| q.bind(number), number_from)
    }

    fn replace_sip_credentials(
        &self,
        account: Uuid,
        credentials: &[SipCredentialRecord],
    ) -> Result<(), StoreError> {
        self.replace_in(
            SIP_CREDENTIALS,
            account,
            credentials,
            |c| &c.username,
            |q, c, account| {
                q.bind(&c.username)
                    .bind(account)
                    .bind(&c.realm)
                    .bind(&c.ha1_md5)
                    .bind(&c.ha1_sha256)
            },
        )
    }

    fn sip_credentials(&self, account: Uuid) -> Result<Vec<SipCredentialRecord>, StoreError> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM sip_credentials
             WHERE account_id = $1 ORDER BY username COLLATE \"C\""
        );
        self.all(sql, move |q| q.bind(account), credential_from)
    }

    fn sip_credential(&self, username: &str) -> Result<Option<SipCredentialRecord>, StoreError> {
        let username = username.to_owned();
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM sip_credentials WHERE username = $1");
        self.optional(sql, move |q| q.bind(username), credential_from)
    }
}
