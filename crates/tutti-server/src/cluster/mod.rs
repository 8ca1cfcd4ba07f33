//! This node in a cluster: `[cluster]` settings, the hooks the cluster calls, the view the
//! conference service reads, the bridge that shares this node's events, and (in [`proxy`])
//! the HTTP layer that sends each conference's requests to the node running its room.

pub mod proxy;
mod socket;

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tutti_cluster::{Cluster, ClusterConfig, ClusterHooks, Load};

use crate::config::Config;
use crate::media::EngineMedia;
use tutti_api::webhooks::WebhookSender;
use tutti_conference::{ClusterView, ConferenceEvent, ConferenceService, MediaPlane};
use uuid::Uuid;

/// `[cluster]`: several nodes sharing one PostgreSQL (`storage.url`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// Join the cluster of the nodes sharing `storage.url`.
    pub enabled: bool,
    /// Where the other nodes reach this node's API (`http://10.0.0.5:8080`); by default
    /// `http://` and `http.listen`, which must then name an address.
    pub api_url: Option<String>,
    /// How often the node renews its lease and looks for dead nodes.
    pub heartbeat_ms: u64,
    /// How long a node that stops renewing stays a member (a crashed node is seen at once:
    /// its database lock goes with its connection).
    pub lease_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            api_url: None,
            heartbeat_ms: 1000,
            lease_ms: 5000,
        }
    }
}

impl ClusterSettings {
    /// The cluster configuration of node `node` listening on `listen`, sharing `url`.
    pub fn config(
        &self,
        url: &str,
        node: &str,
        listen: std::net::SocketAddr,
    ) -> anyhow::Result<ClusterConfig> {
        let api_url = match &self.api_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None if listen.ip().is_unspecified() => anyhow::bail!(
                "cluster.api_url must say where other nodes reach this node's API \
                 (http.listen is {listen}, which names no address)"
            ),
            None => format!("http://{listen}"),
        };
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            anyhow::bail!("cluster.api_url {api_url:?} must be an http:// or https:// URL");
        }
        let mut config = ClusterConfig::new(url, node, api_url);
        config.heartbeat = Duration::from_millis(self.heartbeat_ms.max(50));
        config.lease = Duration::from_millis(self.lease_ms);
        Ok(config)
    }
}

/// What the cluster asks of this node. Events from other nodes are shown once the conference
/// service exists; losses are handled once the webhook sender runs too (a lost node's
/// deliveries are handed to it), and are kept until then.
pub struct Hooks {
    node: String,
    media: Arc<dyn MediaPlane>,
    service: OnceLock<Weak<ConferenceService>>,
    stage: Mutex<Stage>,
    /// The mixing ticks counted and their total time at the last heartbeat.
    last_ticks: Mutex<(u64, f64)>,
}

/// Whether losses can be handled yet.
enum Stage {
    /// Not yet: the losses reported so far.
    Waiting(Vec<(String, Vec<Uuid>)>),
    /// The service and its webhook sender run.
    Ready(Weak<ConferenceService>, WebhookSender),
}

impl Hooks {
    /// Hooks of node `node`, reading the load of `media`.
    pub fn new(node: &str, media: Arc<dyn MediaPlane>) -> Arc<Self> {
        Arc::new(Self {
            node: node.to_owned(),
            media,
            service: OnceLock::new(),
            stage: Mutex::new(Stage::Waiting(Vec::new())),
            last_ticks: Mutex::default(),
        })
    }

    /// The service is up: other nodes' events go to its subscribers from now on.
    pub fn attach(&self, service: &Arc<ConferenceService>) {
        let _ = self.service.set(Arc::downgrade(service));
    }

    /// The webhook sender runs: losses reported meanwhile are handled, and later ones at once.
    pub fn attach_webhooks(&self, service: &Arc<ConferenceService>, webhooks: WebhookSender) {
        let waiting = match self.stage.lock() {
            Ok(mut stage) => {
                let ready = Stage::Ready(Arc::downgrade(service), webhooks.clone());
                match std::mem::replace(&mut *stage, ready) {
                    Stage::Waiting(losses) => losses,
                    Stage::Ready(..) => Vec::new(),
                }
            }
            Err(_) => Vec::new(),
        };
        for (node, conferences) in waiting {
            self.handle_loss(service, &webhooks, &node, &conferences);
        }
    }

    /// Closes a lost node's calls and, for another node, sends the webhooks it left.
    fn handle_loss(
        &self,
        service: &ConferenceService,
        webhooks: &WebhookSender,
        node: &str,
        conferences: &[Uuid],
    ) {
        service.close_lost_rooms(node, conferences);
        if node == self.node {
            return; // this node's own deliveries were resumed when it started
        }
        match service.outbox_adopt(node) {
            Ok(taken) if !taken.is_empty() => {
                tracing::info!(
                    node,
                    deliveries = taken.len(),
                    "webhooks of a lost node taken over"
                );
                webhooks.resume(taken);
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, node, "a lost node's webhooks could not be taken over")
            }
        }
    }

    fn service(&self) -> Option<Arc<ConferenceService>> {
        self.service.get().and_then(Weak::upgrade)
    }
}

impl ClusterHooks for Hooks {
    fn load(&self) -> Load {
        let metrics = self.media.metrics();
        let tick_load = self
            .last_ticks
            .lock()
            .map(|mut last| {
                let (ticks, seconds) = (
                    metrics.ticks.saturating_sub(last.0),
                    metrics.tick_seconds_sum - last.1,
                );
                *last = (metrics.ticks, metrics.tick_seconds_sum);
                if ticks == 0 {
                    0.0
                } else {
                    // Mean tick time over the 20 ms tick period.
                    seconds / ticks as f64 / 0.020
                }
            })
            .unwrap_or(0.0);
        Load {
            participants: u32::try_from(metrics.participants).unwrap_or(u32::MAX),
            tick_load,
        }
    }

    fn remote_event(&self, _origin: &str, payload: serde_json::Value) {
        match (self.service(), ConferenceEvent::from_json(&payload)) {
            (Some(service), Some(event)) => service.publish_remote(event),
            (_, None) => tracing::warn!("an event from another node was not understood"),
            (None, _) => {}
        }
    }

    fn rooms_lost(&self, node: &str, conferences: Vec<Uuid>) {
        let ready = match self.stage.lock() {
            Ok(mut stage) => match &mut *stage {
                Stage::Waiting(losses) => {
                    losses.push((node.to_owned(), conferences));
                    return;
                }
                Stage::Ready(service, webhooks) => (service.upgrade(), webhooks.clone()),
            },
            Err(_) => return,
        };
        if let (Some(service), webhooks) = ready {
            self.handle_loss(&service, &webhooks, node, &conferences);
        }
    }

    fn room_runs(&self, conference: Uuid) -> bool {
        self.media.room_state(conference).is_some()
    }
}

/// The conference service's view of the cluster.
pub struct View(pub Cluster);

impl ClusterView for View {
    fn node(&self) -> &str {
        self.0.node()
    }
    fn focus(&self, conference: Uuid) -> Option<String> {
        self.0.focus(conference)
    }
    fn runs_elsewhere(&self, conference: Uuid) -> bool {
        matches!(self.0.locate_now(conference), Ok(Some(node)) if node.id != self.0.node())
    }
}

/// This node's membership: the link, and the hooks waiting for the service.
pub struct Membership {
    /// The link.
    pub cluster: Cluster,
    hooks: Arc<Hooks>,
}

/// Joins the cluster when `[cluster] enabled`, as node `http.node`, before the conference
/// service starts: `media` starts rooms only once they are placed here.
pub fn start(config: &Config, media: &Arc<EngineMedia>) -> anyhow::Result<Option<Membership>> {
    if !config.cluster.enabled {
        return Ok(None);
    }
    let Some(url) = shared_database(config) else {
        anyhow::bail!("cluster.enabled needs storage.url to name the PostgreSQL the nodes share");
    };
    let settings = config
        .cluster
        .config(&url, &config.http.node, config.http.listen)?;
    let hooks = Hooks::new(&config.http.node, media.clone());
    let cluster = Cluster::start(settings, hooks.clone()).context("joining the cluster")?;
    tracing::info!(node = %cluster.node(), "joined the cluster");
    let _ = media.cluster.set(cluster.clone());
    Ok(Some(Membership { cluster, hooks }))
}

/// The PostgreSQL URL the nodes share.
fn shared_database(config: &Config) -> Option<String> {
    config.storage.url.clone()
}

impl Membership {
    /// The service is up: it learns where rooms run, receives the other nodes' events, and
    /// shares its own.
    pub fn attach(&self, service: &Arc<ConferenceService>) -> anyhow::Result<()> {
        service.set_cluster(Arc::new(View(self.cluster.clone())));
        self.hooks.attach(service);
        share_events(service, self.cluster.clone()).context("starting the event sharing")?;
        Ok(())
    }

    /// The webhook sender runs: lost nodes' calls are closed and their webhooks sent.
    pub fn attach_webhooks(&self, service: &Arc<ConferenceService>, webhooks: WebhookSender) {
        self.hooks.attach_webhooks(service, webhooks);
    }
}

/// Shares every event that happens on this node with the other nodes, until the service's
/// event stream closes.
pub fn share_events(
    service: &Arc<ConferenceService>,
    cluster: Cluster,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut events = service.subscribe();
    std::thread::Builder::new()
        .name("tutti-cluster-events".into())
        .spawn(move || loop {
            match events.blocking_recv() {
                Ok(event) if !event.remote => cluster.publish(&event.to_json()),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "events were not shared with the cluster: too many at once"
                    )
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_says_where_the_others_reach_it() {
        let settings = ClusterSettings::default();
        let listen = "10.0.0.5:8080".parse().unwrap();
        let config = settings.config("postgres://db/t", "a", listen).unwrap();
        assert_eq!(
            (config.node.as_str(), config.api_url.as_str()),
            ("a", "http://10.0.0.5:8080")
        );
        assert_eq!(config.heartbeat, Duration::from_secs(1));
        assert_eq!(config.lease, Duration::from_secs(5));

        let anywhere = "0.0.0.0:8080".parse().unwrap();
        let refused = settings
            .config("postgres://db/t", "a", anywhere)
            .unwrap_err();
        assert!(refused.to_string().contains("cluster.api_url"), "{refused}");
        let given = ClusterSettings {
            api_url: Some("https://a.internal:8443/".into()),
            ..ClusterSettings::default()
        };
        let config = given.config("postgres://db/t", "a", anywhere).unwrap();
        assert_eq!(config.api_url, "https://a.internal:8443");
        let ftp = ClusterSettings {
            api_url: Some("ftp://a".into()),
            ..ClusterSettings::default()
        };
        assert!(ftp.config("postgres://db/t", "a", anywhere).is_err());
    }
}
