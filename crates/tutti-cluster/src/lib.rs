//! # tutti-cluster: several tutti nodes sharing one PostgreSQL
//!
//! Every `tutti serve` given the same PostgreSQL and a `[cluster]` section joins one cluster:
//!
//! - **Membership.** Each node holds a session-level advisory lock named after its id for as
//!   long as it lives, and renews a row in `cluster_nodes` with a short lease. A node is alive
//!   while its lease runs *and* its lock is held: PostgreSQL frees the lock the moment the node's
//!   connection goes (a crash, `kill -9`, a lost host), so a dead node is seen within one
//!   heartbeat, and a hung one when its lease runs out.
//! - **Placement.** A running room lives on exactly one node, its *focus*, recorded in
//!   `room_placements`. The first join of a room places it, in one transaction under a
//!   cluster-wide transaction lock, on the least loaded live node (participants plus rooms
//!   placed, then mixing-tick load, then id).
//! - **Events.** Conference events are rows of `cluster_events`; `NOTIFY tutti_events` carries
//!   only the row's id. Every other node `LISTEN`s, fetches the row and hands it to its own
//!   subscribers, so each node delivers each event once. Webhooks are sent by the node where
//!   the event happened.
//! - **Loss.** Every node sweeps: dead nodes' rows are deleted (by exactly one sweeper, since
//!   the delete takes the row), their placements dropped, and [`ClusterHooks::rooms_lost`]
//!   closes those rooms' calls. The next join places the room again.
//!
//! The cluster runs on a small tokio runtime of its own, so heartbeats keep their time when
//! the server's runtime is busy; the synchronous calls ([`Cluster::claim`], …) wait on it.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod events;
mod membership;
mod placement;
mod schema;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

pub use placement::Claim;

/// Everything the cluster can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// PostgreSQL failed or could not be reached.
    #[error("cluster database: {0}")]
    Database(#[from] sqlx::Error),
    /// Another live process holds this node id.
    #[error("node id {0:?} is already in use by a live node")]
    NodeTaken(String),
    /// The configuration is unusable; the text says why.
    #[error("cluster configuration: {0}")]
    Config(String),
    /// The database's cluster schema is newer than this version knows.
    #[error("the cluster schema is at version {found}, newer than this tutti knows ({known})")]
    SchemaTooNew {
        /// The database's version.
        found: i32,
        /// The newest version this build knows.
        known: i32,
    },
    /// The cluster has stopped.
    #[error("the cluster link has stopped")]
    Stopped,
}

/// How a node joins the cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The PostgreSQL URL every node shares.
    pub url: String,
    /// This node's id, unique in the cluster (Kazoo's `node` and `focus`).
    pub node: String,
    /// The base URL (`http://host:port`) other nodes use to reach this node's API.
    pub api_url: String,
    /// How often the node renews its lease and sweeps for dead nodes.
    pub heartbeat: Duration,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
    /// Connections in the node's pool (besides the one holding its lock).
    pub pool_size: u32,
}

impl ClusterConfig {
    /// A configuration with the default timings (1 s heartbeat, 5 s lease, 4 connections).
    pub fn new(
        url: impl Into<String>,
        node: impl Into<String>,
        api_url: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            node: node.into(),
            api_url: api_url.into(),
            heartbeat: Duration::from_secs(1),
            lease: Duration::from_secs(5),
            pool_size: 4,
        }
    }
}

/// A live node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Its id.
    pub id: String,
    /// Where its API answers.
    pub api_url: String,
}

/// What a node reports about its load at each heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Load {
    /// Participants in its rooms.
    pub participants: u32,
    /// How busy its mixing ticks are (mean tick time over the tick period, 0–1 and above).
    pub tick_load: f64,
}

/// What the cluster asks of the node it runs in.
pub trait ClusterHooks: Send + Sync + 'static {
    /// The node's load now.
    fn load(&self) -> Load;
    /// An event published by node `origin`.
    fn remote_event(&self, origin: &str, payload: serde_json::Value);
    /// Node `node` is gone (or this is its next run, and `node` is this node's id): close the
    /// calls of its rooms `conferences` (possibly none), and take over its other work. Called
    /// on exactly one node for each loss.
    fn rooms_lost(&self, node: &str, conferences: Vec<Uuid>);
    /// Whether `conference`'s room runs on this node. A room placed here that has not
    /// started within ten heartbeats (its join failed) is placed nowhere again.
    fn room_runs(&self, conference: Uuid) -> bool;
}

/// Counters of the cluster link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterMetrics {
    /// Live nodes at the last heartbeat, this one included.
    pub nodes_alive: u64,
    /// Nodes this node found dead and swept.
    pub nodes_swept: u64,
    /// Rooms placed on this node at the last heartbeat.
    pub rooms: u64,
    /// Events shared with the other nodes.
    pub events_sent: u64,
    /// Events received from the other nodes.
    pub events_received: u64,
    /// Events not shared because the queue was full or the database failed.
    pub events_dropped: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) nodes_alive: AtomicU64,
    pub(crate) nodes_swept: AtomicU64,
    pub(crate) rooms: AtomicU64,
    pub(crate) events_sent: AtomicU64,
    pub(crate) events_received: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
}

pub(crate) struct Shared {
    pub(crate) config: ClusterConfig,
    pub(crate) pool: PgPool,
    pub(crate) hooks: Arc<dyn ClusterHooks>,
    pub(crate) counters: Counters,
    /// Conference → focus node, refreshed at each heartbeat and by this node's own changes.
    pub(crate) focus: RwLock<std::collections::HashMap<Uuid, String>>,
    pub(crate) secret: String,
    /// Set when the node leaves: the heartbeat stops instead of registering again.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
}

/// This node's link to the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
    handle: tokio::runtime::Handle,
    events: tokio::sync::mpsc::Sender<String>,
    runtime: Arc<OwnedRuntime>,
}

/// The cluster's runtime, shut down without waiting when the last handle goes (a runtime
/// dropped the ordinary way inside another runtime's task would panic).
struct OwnedRuntime(Mutex<Option<tokio::runtime::Runtime>>);

impl OwnedRuntime {
    fn shut_down(&self) {
        if let Ok(mut runtime) = self.0.lock() {
            if let Some(runtime) = runtime.take() {
                runtime.shutdown_background();
            }
        }
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.shared.config.node)
            .finish_non_exhaustive()
    }
}

/// How many events may wait to be shared before new ones are dropped (and counted).
const EVENT_QUEUE: usize = 8192;

impl Cluster {
    /// Connects, brings the schema up to date, takes this node's lock (refused with
    /// [`ClusterError::NodeTaken`] while another process holds the id), registers the node,
    /// hands its previous run's rooms to [`ClusterHooks::rooms_lost`], and starts the
    /// heartbeat, the sweep and the event listener.
    pub fn start(
        config: ClusterConfig,
        hooks: Arc<dyn ClusterHooks>,
    ) -> Result<Self, ClusterError> {
        if config.node.is_empty() || config.node.len() > 128 {
            return Err(ClusterError::Config(
                "the node id must be 1 to 128 characters".into(),
            ));
        }
        if config.lease <= config.heartbeat {
            return Err(ClusterError::Config(
                "the lease must be longer than the heartbeat".into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tutti-cluster")
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Config(format!("cannot start the cluster runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let connect = config.clone();
        let started = run_blocking(&handle, async move {
            let config = connect;
            let pool = PgPoolOptions::new()
                .max_connections(config.pool_size.max(2))
                .acquire_timeout(Duration::from_secs(5))
                .connect(&config.url)
                .await?;
            schema::migrate(&pool).await?;
            let secret = schema::secret(&pool).await?;
            let lock = membership::Membership::register(&config, &pool).await?;
            Ok::<_, ClusterError>((pool, secret, lock))
        })??;
        let (pool, secret, membership) = started;
        let shared = Arc::new(Shared {
            config,
            pool,
            hooks,
            counters: Counters::default(),
            focus: RwLock::default(),
            secret,
            stopping: std::sync::atomic::AtomicBool::new(false),
        });
        let (events, queue) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        handle.spawn(membership.run(shared.clone()));
        handle.spawn(events::publish(shared.clone(), queue));
        handle.spawn(events::listen(shared.clone()));
        Ok(Self {
            shared,
            handle,
            events,
            runtime: Arc::new(OwnedRuntime(Mutex::new(Some(runtime)))),
        })
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.shared.config.node
    }

    /// The secret every node of the cluster shares (kept in the database): a request
    /// forwarded by another node carries it, so the receiver can trust what it says about
    /// the original client.
    pub fn secret(&self) -> &str {
        &self.shared.secret
    }

    /// Claims `conference`'s room for this node: [`Claim::Here`] when it is placed here now
    /// (or already was), [`Claim::Elsewhere`] when a live node runs it.
    pub fn claim(&self, conference: Uuid) -> Result<Claim, ClusterError> {
        let shared = self.shared.clone();
        self.block(async move { placement::place(&shared, conference, true).await })?
    }

    /// Where `conference`'s room runs, placing it on the least loaded live node when it runs
    /// nowhere (for a join arriving at any node).
    pub async fn place(&self, conference: Uuid) -> Result<Node, ClusterError> {
        let shared = self.shared.clone();
        let claim = self
            .spawn(async move { placement::place(&shared, conference, false).await })
            .await??;
        Ok(match claim {
            Claim::Here => self.this_node(),
            Claim::Elsewhere(node) => node,
        })
    }

    /// The live node running `conference`'s room, if any (fresh from the database).
    pub async fn locate(&self, conference: Uuid) -> Result<Option<Node>, ClusterError> {
        let shared = self.shared.clone();
        self.spawn(async move { placement::locate(&shared, conference).await })
            .await?
    }

    /// [`Cluster::locate`] for blocking code.
    pub fn locate_now(&self, conference: Uuid) -> Result<Option<Node>, ClusterError> {
        let shared = self.shared.clone();
        self.block(async move { placement::locate(&shared, conference).await })?
    }

    /// This node's room for `conference` has stopped: it is placed nowhere now.
    pub fn release(&self, conference: Uuid) {
        let shared = self.shared.clone();
        let _ = self.block(async move { placement::release(&shared, conference).await });
    }

    /// The id of the node running `conference`'s room, as of the last heartbeat (or this
    /// node's own claim since).
    pub fn focus(&self, conference: Uuid) -> Option<String> {
        self.shared
            .focus
            .read()
            .ok()
            .and_then(|focus| focus.get(&conference).cloned())
    }

    /// The live nodes, this one included, in id order.
    pub async fn nodes(&self) -> Result<Vec<Node>, ClusterError> {
        let shared = self.shared.clone();
        self.spawn(async move { membership::alive(&shared.pool).await })
            .await?
    }

    /// Shares an event with the other nodes; never waits (a full queue drops it, counted).
    pub fn publish(&self, payload: &serde_json::Value) {
        if self.events.try_send(payload.to_string()).is_err() {
            self.shared
                .counters
                .events_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The link's counters.
    pub fn metrics(&self) -> ClusterMetrics {
        let c = &self.shared.counters;
        ClusterMetrics {
            nodes_alive: c.nodes_alive.load(Ordering::Relaxed),
            nodes_swept: c.nodes_swept.load(Ordering::Relaxed),
            rooms: c.rooms.load(Ordering::Relaxed),
            events_sent: c.events_sent.load(Ordering::Relaxed),
            events_received: c.events_received.load(Ordering::Relaxed),
            events_dropped: c.events_dropped.load(Ordering::Relaxed),
        }
    }

    /// Leaves the cluster: this node's placements and row go, its lock is freed, and the
    /// link stops. Rooms should have ended first.
    pub fn stop(&self) {
        let shared = self.shared.clone();
        let _ = self.block(async move { membership::leave(&shared).await });
        self.runtime.shut_down();
    }

    fn this_node(&self) -> Node {
        Node {
            id: self.shared.config.node.clone(),
            api_url: self.shared.config.api_url.clone(),
        }
    }

    async fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, ClusterError> {
        self.handle
            .spawn(work)
            .await
            .map_err(|_| ClusterError::Stopped)
    }

    fn block<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, ClusterError> {
        run_blocking(&self.handle, work)
    }
}

/// Runs `work` on the cluster's runtime and waits for it from any thread (a plain thread, a
/// blocking-pool thread, or a worker of another runtime).
fn run_blocking<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, ClusterError> {
    let (done, result) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = done.send(work.await);
    });
    result.recv().map_err(|_| ClusterError::Stopped)
}
