//! Versioned PostgreSQL schema migrations, applied in order in one transaction at connect
//! while holding an advisory lock (so that nodes starting together migrate once); the version
//! lives in the `tutti_schema` table.

/// The advisory-lock class of the migration transaction (`pg_advisory_xact_lock(class, 1)`;
/// "tus" and 1 in ASCII, beside the cluster's "tuc").
pub(crate) const MIGRATION_LOCK: i32 = 0x7475_7301;

/// Each entry moves the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the schema SQLite reached in its six steps. Documents are kept as text, byte for byte
    // as the API wrote them; a conference's state is jsonb so that `live_pin` can be derived
    // from it: the state's `pin` until the conference begins ending, then NULL (the PIN is
    // free again). Outbox rows carry the node that delivers them.
    "CREATE TABLE accounts (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        api_key_hash text NOT NULL UNIQUE,
        created bigint NOT NULL,
        webhook_url text,
        webhook_secret text
    );
    CREATE TABLE tokens (
        token_hash text PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts(id),
        expires bigint NOT NULL
    );
    CREATE INDEX tokens_expiry ON tokens(expires);
    CREATE TABLE conferences (
        account_id uuid NOT NULL REFERENCES accounts(id),
        id uuid NOT NULL,
        document text NOT NULL,
        state jsonb NOT NULL DEFAULT '{}',
        revision bigint NOT NULL,
        created bigint NOT NULL,
        modified bigint NOT NULL,
        live_pin text GENERATED ALWAYS AS (
            CASE WHEN state->>'status' IN ('terminating', 'terminated') THEN NULL
                 ELSE state->>'pin' END
        ) STORED,
        PRIMARY KEY (account_id, id)
    );
    CREATE UNIQUE INDEX conferences_live_pin ON conferences(account_id, live_pin)
     WHERE live_pin IS NOT NULL;
    CREATE INDEX conferences_by_id ON conferences(id);
    CREATE TABLE conference_numbers (
        account_id uuid NOT NULL,
        number text NOT NULL,
        conference_id uuid NOT NULL,
        PRIMARY KEY (account_id, number)
    );
    CREATE TABLE items (
        collection text NOT NULL,
        account_id uuid NOT NULL REFERENCES accounts(id),
        id uuid NOT NULL,
        conference_id uuid NOT NULL,
        document text NOT NULL,
        created bigint NOT NULL,
        modified bigint NOT NULL,
        PRIMARY KEY (collection, account_id, id)
    );
    CREATE INDEX items_by_conference ON items(collection, account_id, conference_id);
    CREATE TABLE webhook_outbox (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id uuid NOT NULL UNIQUE,
        owner text NOT NULL,
        url text NOT NULL,
        body bytea NOT NULL,
        secret text,
        attempts bigint NOT NULL DEFAULT 0,
        created bigint NOT NULL
    );
    CREATE INDEX webhook_outbox_by_owner ON webhook_outbox(owner, seq);
    CREATE TABLE sip_numbers (
        number text PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts(id),
        conference_id uuid
    );
    CREATE INDEX sip_numbers_by_account ON sip_numbers(account_id);
    CREATE TABLE sip_credentials (
        username text PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts(id),
        realm text NOT NULL,
        ha1_md5 text NOT NULL,
        ha1_sha256 text NOT NULL
    );
    CREATE INDEX sip_credentials_by_account ON sip_credentials(account_id);",
];
