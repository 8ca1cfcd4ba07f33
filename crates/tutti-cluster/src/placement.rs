//! Room placement: which node runs each room. Placing takes a cluster-wide transaction lock,
//! so two joins of one room arriving at two nodes at once agree on one node.

use sqlx::Row;
use uuid::Uuid;

use crate::membership::ALIVE;
use crate::{ClusterError, Node, Shared};

/// Advisory-lock key of placement transactions (`pg_advisory_xact_lock(class, 1)`).
const PLACEMENT_LOCK: i32 = 0x7475_6301;

/// The outcome of claiming a room for this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The room runs here.
    Here,
    /// The room runs on another live node.
    Elsewhere(Node),
}

/// Places `conference`: where it already runs on a live node, that node; otherwise this node
/// when `here` is set, else the least loaded live node (participants plus rooms placed, then
/// tick load, then id).
pub(crate) async fn place(
    shared: &Shared,
    conference: Uuid,
    here: bool,
) -> Result<Claim, ClusterError> {
    let me = &shared.config.node;
    // Most calls are joins of a running room: answered without the cluster-wide lock.
    if let Some(node) = locate(shared, conference).await? {
        return claim_of(me, node);
    }
    let mut tx = shared.pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, 1)")
        .bind(PLACEMENT_LOCK)
        .execute(&mut *tx)
        .await?;
    let current = sqlx::query(&format!(
        "SELECT p.node AS id, coalesce(n.api_url, '') AS api_url,
                coalesce({ALIVE}, false) AS alive
           FROM room_placements p LEFT JOIN cluster_nodes n ON n.id = p.node
          WHERE p.conference = $1"
    ))
    .bind(conference)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = current {
        let alive: bool = row.try_get("alive")?;
        if alive {
            tx.commit().await?;
            return claim_of(me, node_of(&row)?);
        }
        // On a node that is gone: the next sweep closes that room's calls.
        let lost: String = row.try_get("id")?;
        sqlx::query(
            "INSERT INTO lost_rooms (conference, node) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(conference)
        .bind(&lost)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM room_placements WHERE conference = $1")
            .bind(conference)
            .execute(&mut *tx)
            .await?;
    }
    let chosen = if here {
        Node {
            id: me.clone(),
            api_url: shared.config.api_url.clone(),
        }
    } else {
        let row = sqlx::query(&format!(
            "SELECT n.id, n.api_url FROM cluster_nodes n
              WHERE {ALIVE}
              ORDER BY n.participants
                       + (SELECT count(*) FROM room_placements p WHERE p.node = n.id),
                       n.tick_load, n.id
              LIMIT 1"
        ))
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            Some(row) => node_of(&row)?,
            // No node looks alive (this one's lease is being renewed): run it here.
            None => Node {
                id: me.clone(),
                api_url: shared.config.api_url.clone(),
            },
        }
    };
    sqlx::query("INSERT INTO room_placements (conference, node) VALUES ($1, $2)")
        .bind(conference)
        .bind(&chosen.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if let Ok(mut focus) = shared.focus.write() {
        focus.insert(conference, chosen.id.clone());
    }
    claim_of(me, chosen)
}

/// The live node running `conference`, if any.
pub(crate) async fn locate(
    shared: &Shared,
    conference: Uuid,
) -> Result<Option<Node>, ClusterError> {
    let row = sqlx::query(&format!(
        "SELECT n.id, n.api_url FROM room_placements p JOIN cluster_nodes n ON n.id = p.node
          WHERE p.conference = $1 AND {ALIVE}"
    ))
    .bind(conference)
    .fetch_optional(&shared.pool)
    .await?;
    row.map(|row| node_of(&row)).transpose()
}

/// Removes this node's placement of `conference`.
pub(crate) async fn release(shared: &Shared, conference: Uuid) -> Result<(), ClusterError> {
    sqlx::query("DELETE FROM room_placements WHERE conference = $1 AND node = $2")
        .bind(conference)
        .bind(&shared.config.node)
        .execute(&shared.pool)
        .await?;
    if let Ok(mut focus) = shared.focus.write() {
        if focus.get(&conference) == Some(&shared.config.node) {
            focus.remove(&conference);
        }
    }
    Ok(())
}

fn node_of(row: &sqlx::postgres::PgRow) -> Result<Node, ClusterError> {
    Ok(Node {
        id: row.try_get("id")?,
        api_url: row.try_get("api_url")?,
    })
}

fn claim_of(me: &str, node: Node) -> Result<Claim, ClusterError> {
    Ok(if node.id == me {
        Claim::Here
    } else {
        Claim::Elsewhere(node)
    })
}
