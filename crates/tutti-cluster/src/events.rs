//! Conference events shared between nodes: each is a row of `cluster_events`, announced by a
//! `NOTIFY tutti_events` carrying only the row's id. Listeners fetch the row and skip their
//! own. A listener that lost its connection catches up on the rows it missed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::Row;

use crate::{ClusterError, Shared};

/// The notification channel.
const CHANNEL: &str = "tutti_events";

/// Writes queued events, in order, each with its notification.
pub(crate) async fn publish(shared: Arc<Shared>, mut queue: tokio::sync::mpsc::Receiver<String>) {
    while let Some(payload) = queue.recv().await {
        let sent = sqlx::query(
            "WITH e AS (INSERT INTO cluster_events (origin, payload) VALUES ($1, $2) RETURNING seq)
             SELECT pg_notify('tutti_events', seq::text) FROM e",
        )
        .bind(&shared.config.node)
        .bind(&payload)
        .execute(&shared.pool)
        .await;
        let counter = match sent {
            Ok(_) => &shared.counters.events_sent,
            Err(error) => {
                tracing::warn!(%error, "an event could not be shared with the cluster");
                &shared.counters.events_dropped
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Listens for the other nodes' events and hands each to the hooks once.
pub(crate) async fn listen(shared: Arc<Shared>) {
    loop {
        if let Err(error) = listen_once(&shared).await {
            tracing::warn!(%error, "the cluster event listener failed; listening again");
        }
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once(shared: &Shared) -> Result<(), ClusterError> {
    let mut listener = PgListener::connect_with(&shared.pool).await?;
    listener.listen(CHANNEL).await?;
    // Listening before reading the newest id: nothing committed after this read is missed.
    let mut newest: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM cluster_events")
        .fetch_one(&shared.pool)
        .await?;
    loop {
        match listener.try_recv().await? {
            Some(notification) => {
                let Ok(seq) = notification.payload().parse::<i64>() else {
                    continue;
                };
                let rows = sqlx::query(
                    "SELECT seq, origin, payload FROM cluster_events WHERE seq = $1 AND origin <> $2",
                )
                .bind(seq)
                .bind(&shared.config.node)
                .fetch_all(&shared.pool)
                .await?;
                newest = newest.max(seq);
                deliver(shared, rows);
            }
            None => {
                // The connection was lost and is back: catch up on what committed meanwhile.
                let rows = sqlx::query(
                    "SELECT seq, origin, payload FROM cluster_events
                      WHERE seq > $1 AND origin <> $2 ORDER BY seq",
                )
                .bind(newest)
                .bind(&shared.config.node)
                .fetch_all(&shared.pool)
                .await?;
                for row in &rows {
                    newest = newest.max(row.try_get("seq")?);
                }
                deliver(shared, rows);
            }
        }
        if shared.stopping.load(Ordering::Acquire) {
            return Ok(());
        }
    }
}

fn deliver(shared: &Shared, rows: Vec<sqlx::postgres::PgRow>) {
    for row in rows {
        let (Ok(origin), Ok(payload)) = (
            row.try_get::<String, _>("origin"),
            row.try_get::<String, _>("payload"),
        ) else {
            continue;
        };
        match serde_json::from_str(&payload) {
            Ok(payload) => {
                shared
                    .counters
                    .events_received
                    .fetch_add(1, Ordering::Relaxed);
                shared.hooks.remote_event(&origin, payload);
            }
            Err(error) => tracing::warn!(%error, "a shared event is not JSON; skipped"),
        }
    }
}
