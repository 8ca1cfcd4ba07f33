//! Node membership: the advisory lock a node holds for its life, its lease row, the sweep that
//! finds dead nodes and hands their rooms on, and the focus cache refreshed at each heartbeat.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::{ClusterConfig, ClusterError, Node, Shared};

/// SQL true for a live node row `n`: its lease runs and the session holding its advisory lock
/// (in this database) is still connected.
pub(crate) const ALIVE: &str = "(n.lease_until > now() AND EXISTS (
    SELECT 1 FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.classid::bigint = ((n.lock_key >> 32) & 4294967295)
       AND l.objid::bigint = (n.lock_key & 4294967295)))";

/// How many heartbeats pass between two clean-ups of old shared events.
const EVENT_CLEANUP_BEATS: u64 = 60;

/// The advisory-lock key of a node id: FNV-1a over a fixed prefix and the id.
pub(crate) fn lock_key(node: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"tutti-node:".iter().chain(node.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// A registered node: the connection holding its lock, and the rooms its previous run left.
pub(crate) struct Membership {
    lock: PgConnection,
    previous_rooms: Vec<Uuid>,
}

impl Membership {
    /// Takes the node's lock and (re)writes its row; the placements a previous run of the same
    /// node left are removed and returned for closing.
    pub(crate) async fn register(
        config: &ClusterConfig,
        pool: &PgPool,
    ) -> Result<Self, ClusterError> {
        let mut lock = pool.acquire().await?.detach();
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(lock_key(&config.node))
            .fetch_one(&mut lock)
            .await?;
        if !taken {
            return Err(ClusterError::NodeTaken(config.node.clone()));
        }
        upsert(&mut lock, config).await?;
        let previous_rooms =
            sqlx::query_scalar("DELETE FROM room_placements WHERE node = $1 RETURNING conference")
                .bind(&config.node)
                .fetch_all(&mut lock)
                .await?;
        Ok(Self {
            lock,
            previous_rooms,
        })
    }

    /// Renews the lease, sweeps and refreshes the focus cache every heartbeat until the node
    /// leaves.
    pub(crate) async fn run(mut self, shared: Arc<Shared>) {
        let me = shared.config.node.clone();
        if !self.previous_rooms.is_empty() {
            lost(
                &shared,
                me.clone(),
                std::mem::take(&mut self.previous_rooms),
            );
        }
        let mut beats = tokio::time::interval(shared.config.heartbeat);
        beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for beat in 0u64.. {
            beats.tick().await;
            if shared.stopping.load(Ordering::Acquire) {
                return;
            }
            if let Err(error) = self.beat(&shared).await {
                tracing::warn!(%error, node = %me, "cluster heartbeat failed");
                self.reconnect(&shared).await;
                continue;
            }
            if let Err(error) = sweep(&shared).await {
                tracing::warn!(%error, "cluster sweep failed");
            }
            if let Err(error) = refresh(&shared).await {
                tracing::warn!(%error, "cluster focus refresh failed");
            }
            if let Err(error) = unplace_stale(&shared).await {
                tracing::warn!(%error, "removing stale placements failed");
            }
            if beat % EVENT_CLEANUP_BEATS == EVENT_CLEANUP_BEATS - 1 {
                let cleaned = sqlx::query(
                    "DELETE FROM cluster_events WHERE created < now() - interval '10 minutes'",
                )
                .execute(&shared.pool)
                .await;
                if let Err(error) = cleaned {
                    tracing::warn!(%error, "cleaning old cluster events failed");
                }
            }
        }
    }

    async fn beat(&mut self, shared: &Shared) -> Result<(), ClusterError> {
        let load = shared.hooks.load();
        let renewed = sqlx::query(
            "UPDATE cluster_nodes
                SET lease_until = now() + make_interval(secs => $2),
                    participants = $3, tick_load = $4
              WHERE id = $1",
        )
        .bind(&shared.config.node)
        .bind(shared.config.lease.as_secs_f64())
        .bind(i32::try_from(load.participants).unwrap_or(i32::MAX))
        .bind(load.tick_load)
        .execute(&mut self.lock)
        .await?;
        if renewed.rows_affected() == 0 {
            // Swept while its lease had lapsed (the node stalled): join again.
            tracing::warn!(node = %shared.config.node, "this node was taken for dead; registering again");
            upsert(&mut self.lock, &shared.config).await?;
        }
        Ok(())
    }

    /// After the lock's connection failed: a new connection, the lock again, the row again.
    async fn reconnect(&mut self, shared: &Shared) {
        let again = async {
            let mut lock = shared.pool.acquire().await?.detach();
            let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(lock_key(&shared.config.node))
                .fetch_one(&mut lock)
                .await?;
            if !taken {
                return Err(ClusterError::NodeTaken(shared.config.node.clone()));
            }
            upsert(&mut lock, &shared.config).await?;
            Ok::<_, ClusterError>(lock)
        };
        match again.await {
            Ok(lock) => self.lock = lock,
            Err(error) => tracing::warn!(%error, "rejoining the cluster failed; retrying"),
        }
    }
}

async fn upsert(connection: &mut PgConnection, config: &ClusterConfig) -> Result<(), ClusterError> {
    sqlx::query(
        "INSERT INTO cluster_nodes (id, api_url, lock_key, lease_until)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
         ON CONFLICT (id) DO UPDATE
            SET api_url = EXCLUDED.api_url, lock_key = EXCLUDED.lock_key,
                started = now(), lease_until = EXCLUDED.lease_until",
    )
    .bind(&config.node)
    .bind(&config.api_url)
    .bind(lock_key(&config.node))
    .bind(config.lease.as_secs_f64())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Removes dead nodes and the placements of nodes that are gone, in one transaction (each row
/// is deleted by one sweeper only), and hands each lost node and its rooms to the hooks.
async fn sweep(shared: &Arc<Shared>) -> Result<(), ClusterError> {
    let mut tx = shared.pool.begin().await?;
    let dead: Vec<String> = sqlx::query_scalar(&format!(
        "DELETE FROM cluster_nodes n WHERE n.id <> $1 AND NOT {ALIVE} RETURNING n.id"
    ))
    .bind(&shared.config.node)
    .fetch_all(&mut *tx)
    .await?;
    let mut orphans = sqlx::query(
        "DELETE FROM room_placements p
          WHERE NOT EXISTS (SELECT 1 FROM cluster_nodes n WHERE n.id = p.node)
          RETURNING p.conference, p.node",
    )
    .fetch_all(&mut *tx)
    .await?;
    // Rooms a join found on a dead node, before any sweep did.
    orphans.extend(
        sqlx::query("DELETE FROM lost_rooms RETURNING conference, node")
            .fetch_all(&mut *tx)
            .await?,
    );
    tx.commit().await?;
    for node in &dead {
        tracing::warn!(node = %node, "cluster node is gone; its rooms are closed and its work taken over");
    }
    shared
        .counters
        .nodes_swept
        .fetch_add(dead.len() as u64, Ordering::Relaxed);
    // Every dead node is handed on, with or without rooms (its other work, such as webhook
    // deliveries, is taken over too); so are the placements of nodes that left.
    let mut by_node: HashMap<String, Vec<Uuid>> =
        dead.into_iter().map(|node| (node, Vec::new())).collect();
    for row in orphans {
        let conference: Uuid = row.try_get("conference")?;
        let node: String = row.try_get("node")?;
        by_node.entry(node).or_default().push(conference);
    }
    for (node, conferences) in by_node {
        lost(shared, node, conferences);
    }
    Ok(())
}

/// Hands lost rooms to the hooks on a blocking thread (closing calls writes to the store).
fn lost(shared: &Arc<Shared>, node: String, conferences: Vec<Uuid>) {
    if let Ok(mut focus) = shared.focus.write() {
        for conference in &conferences {
            focus.remove(conference);
        }
    }
    let hooks = shared.hooks.clone();
    tokio::task::spawn_blocking(move || hooks.rooms_lost(&node, conferences));
}

/// Removes this node's placements older than ten heartbeats whose rooms do not run here (the
/// join that placed them failed).
async fn unplace_stale(shared: &Arc<Shared>) -> Result<(), ClusterError> {
    let grace = shared.config.heartbeat.as_secs_f64() * 10.0;
    let placed: Vec<Uuid> = sqlx::query_scalar(
        "SELECT conference FROM room_placements
          WHERE node = $1 AND placed < now() - make_interval(secs => $2)",
    )
    .bind(&shared.config.node)
    .bind(grace)
    .fetch_all(&shared.pool)
    .await?;
    let hooks = shared.hooks.clone();
    let stale = tokio::task::spawn_blocking(move || {
        placed
            .into_iter()
            .filter(|conference| !hooks.room_runs(*conference))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for conference in stale {
        crate::placement::release(shared, conference).await?;
    }
    Ok(())
}

/// Reloads the focus cache and the node and room counts.
async fn refresh(shared: &Shared) -> Result<(), ClusterError> {
    let rows = sqlx::query("SELECT conference, node FROM room_placements")
        .fetch_all(&shared.pool)
        .await?;
    let mut focus = HashMap::with_capacity(rows.len());
    let mut mine = 0u64;
    for row in rows {
        let node: String = row.try_get("node")?;
        mine += u64::from(node == shared.config.node);
        focus.insert(row.try_get("conference")?, node);
    }
    if let Ok(mut cache) = shared.focus.write() {
        *cache = focus;
    }
    shared.counters.rooms.store(mine, Ordering::Relaxed);
    let alive: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM cluster_nodes n WHERE {ALIVE}"
    ))
    .fetch_one(&shared.pool)
    .await?;
    shared
        .counters
        .nodes_alive
        .store(u64::try_from(alive).unwrap_or(0), Ordering::Relaxed);
    Ok(())
}

/// The live nodes in id order.
pub(crate) async fn alive(pool: &PgPool) -> Result<Vec<Node>, ClusterError> {
    let rows = sqlx::query(&format!(
        "SELECT n.id, n.api_url FROM cluster_nodes n WHERE {ALIVE} ORDER BY n.id"
    ))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Node {
                id: row.try_get("id")?,
                api_url: row.try_get("api_url")?,
            })
        })
        .collect()
}

/// Leaves the cluster: this node's placements and row are removed and its lock freed.
pub(crate) async fn leave(shared: &Shared) -> Result<(), ClusterError> {
    shared.stopping.store(true, Ordering::Release);
    let mut tx = shared.pool.begin().await?;
    sqlx::query("DELETE FROM room_placements WHERE node = $1")
        .bind(&shared.config.node)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM cluster_nodes WHERE id = $1")
        .bind(&shared.config.node)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
