//! The cluster's tables, created and upgraded by versioned migrations applied in order in one
//! transaction under a transaction-level advisory lock, so nodes starting together migrate
//! once. The version lives in `tutti_cluster_schema`.

use sqlx::PgPool;

use crate::ClusterError;

/// Advisory-lock class of the cluster's migrations (`pg_advisory_xact_lock(class, 0)`).
const MIGRATION_LOCK: i32 = 0x7475_6301;

/// Each entry moves the schema from version `i` to `i + 1`; its statements end with `;` at the
/// end of a line.
const MIGRATIONS: &[&str] = &[
    // 1: nodes and their leases, room placements, rooms found lost by a join (for the sweep),
    // shared events, the cluster's secret.
    "CREATE TABLE cluster_nodes (
        id text PRIMARY KEY,
        api_url text NOT NULL,
        lock_key bigint NOT NULL,
        started timestamptz NOT NULL DEFAULT now(),
        lease_until timestamptz NOT NULL,
        participants integer NOT NULL DEFAULT 0,
        tick_load double precision NOT NULL DEFAULT 0
    );
    CREATE TABLE room_placements (
        conference uuid PRIMARY KEY,
        node text NOT NULL,
        placed timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX room_placements_by_node ON room_placements(node);
    CREATE TABLE lost_rooms (
        conference uuid NOT NULL,
        node text NOT NULL,
        PRIMARY KEY (conference, node)
    );
    CREATE TABLE cluster_events (
        seq bigserial PRIMARY KEY,
        origin text NOT NULL,
        payload text NOT NULL,
        created timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX cluster_events_by_time ON cluster_events(created);
    CREATE TABLE cluster_secret (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        secret text NOT NULL
    );",
];

/// Brings the cluster's tables to the newest version.
pub(crate) async fn migrate(pool: &PgPool) -> Result<(), ClusterError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS tutti_cluster_schema (version integer NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let version: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM tutti_cluster_schema")
        .fetch_one(&mut *tx)
        .await?;
    let version = version.unwrap_or(0);
    let known = MIGRATIONS.len() as i32;
    if version > known {
        return Err(ClusterError::SchemaTooNew {
            found: version,
            known,
        });
    }
    for migration in &MIGRATIONS[version as usize..] {
        for statement in migration.split(";\n") {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
    }
    if version < known {
        sqlx::query("DELETE FROM tutti_cluster_schema")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO tutti_cluster_schema (version) VALUES ($1)")
            .bind(known)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The cluster's shared secret, made by the first node that asks (256 random bits).
pub(crate) async fn secret(pool: &PgPool) -> Result<String, ClusterError> {
    let fresh = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    sqlx::query("INSERT INTO cluster_secret (secret) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(&fresh)
        .execute(pool)
        .await?;
    Ok(sqlx::query_scalar("SELECT secret FROM cluster_secret")
        .fetch_one(pool)
        .await?)
}
