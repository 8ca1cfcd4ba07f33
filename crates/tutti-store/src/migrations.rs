//! Versioned schema migrations, applied in order inside a transaction; the version lives in
//! SQLite's `user_version`.

/// Each entry moves the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: accounts, tokens, conferences and their numbers.
    "CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        api_key_hash TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        expires INTEGER NOT NULL
    );
    CREATE INDEX tokens_expiry ON tokens(expires);
    CREATE TABLE conferences (
        account_id TEXT NOT NULL REFERENCES accounts(id),
        id TEXT NOT NULL,
        document TEXT NOT NULL,
        revision INTEGER NOT NULL,
        created INTEGER NOT NULL,
        modified INTEGER NOT NULL,
        PRIMARY KEY (account_id, id)
    );
    CREATE TABLE conference_numbers (
        account_id TEXT NOT NULL,
        number TEXT NOT NULL,
        conference_id TEXT NOT NULL,
        PRIMARY KEY (account_id, number)
    );",
    // 2: conference lifecycle state, account webhooks, participant calls and recordings.
    "ALTER TABLE conferences ADD COLUMN state TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE accounts ADD COLUMN webhook_url TEXT;
    ALTER TABLE accounts ADD COLUMN webhook_secret TEXT;
    CREATE TABLE items (
        collection TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        id TEXT NOT NULL,
        conference_id TEXT NOT NULL,
        document TEXT NOT NULL,
        created INTEGER NOT NULL,
        modified INTEGER NOT NULL,
        PRIMARY KEY (collection, account_id, id)
    );
    CREATE INDEX items_by_conference ON items(collection, account_id, conference_id);",
    // 3: a live conference's PIN, unique within its account. `live_pin` is the state's `pin`
    // until the conference begins ending, then NULL (so the PIN is free again); a duplicate
    // left by an older version keeps its PIN on the oldest conference only.
    "ALTER TABLE conferences ADD COLUMN live_pin TEXT GENERATED ALWAYS AS (
        CASE WHEN json_extract(state, '$.status') IN ('terminating', 'terminated') THEN NULL
             ELSE json_extract(state, '$.pin') END
    ) VIRTUAL;
    UPDATE conferences SET state = json_remove(state, '$.pin')
     WHERE live_pin IS NOT NULL AND rowid NOT IN (
        SELECT MIN(rowid) FROM conferences WHERE live_pin IS NOT NULL GROUP BY account_id, live_pin
     );
    CREATE UNIQUE INDEX conferences_live_pin ON conferences(account_id, live_pin)
     WHERE live_pin IS NOT NULL;",
    // 4: the webhook outbox: deliveries not yet delivered, rejected or given up, in the order
    // they were accepted.
    "CREATE TABLE webhook_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        body BLOB NOT NULL,
        secret TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL
    );",
    // 5: the SIP directory: numbers (DIDs, unique across accounts) routed to an account and
    // optionally one of its conferences, and SIP credentials (usernames unique across accounts,
    // stored as digest HA1s for the realm, never as passwords).
    "CREATE TABLE sip_numbers (
        number TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        conference_id TEXT
    );
    CREATE INDEX sip_numbers_by_account ON sip_numbers(account_id);
    CREATE TABLE sip_credentials (
        username TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        realm TEXT NOT NULL,
        ha1_md5 TEXT NOT NULL,
        ha1_sha256 TEXT NOT NULL
    );
    CREATE INDEX sip_credentials_by_account ON sip_credentials(account_id);",
    // 6: conferences by id alone (a caller with a PIN names a conference, not its account).
    "CREATE INDEX conferences_by_id ON conferences(id);",
];
