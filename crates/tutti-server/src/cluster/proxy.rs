//! Requests about a conference are served by the node running its room: this layer finds the
//! conference a request names, asks the cluster where its room runs (placing it, for a join,
//! on the least loaded node) and forwards the request there when that is another node. The
//! answer — an SDP answer naming the focus node's media address, a participant list, an
//! error — comes back as the focus node gave it.
//!
//! A forwarded request carries this node's id and the cluster's secret; the receiving node
//! serves it itself (never forwarding again) and takes the client's address from
//! `X-Forwarded-For` only when the secret matches.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tutti_cluster::{Cluster, Node};
use tutti_store::{Collection, Store};
use uuid::Uuid;

/// The node that forwarded a request.
pub const FORWARDED_BY: &str = "x-tutti-forwarded-by";
/// The cluster's secret, proving a forwarded request comes from a node.
pub const CLUSTER_SECRET: &str = "x-tutti-cluster-secret";

/// Largest body forwarded (the API's own limit).
const MAX_BODY: usize = tutti_api::MAX_BODY_BYTES;

/// Everything the layer needs.
pub struct Proxy {
    cluster: Cluster,
    store: Arc<dyn Store>,
    client: reqwest::Client,
    counters: ProxyCounters,
}

/// How forwarded requests went.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// Forwarded and answered by the focus node.
    pub forwarded: AtomicU64,
    /// Forwarded but the focus node did not answer (502).
    pub failed: AtomicU64,
    /// Arrived from another node with the cluster's secret.
    pub received: AtomicU64,
    /// Claimed to come from another node without the cluster's secret (403).
    pub refused: AtomicU64,
}

impl Proxy {
    /// A layer forwarding through `cluster`, checking joins' conferences in `store`.
    pub fn new(cluster: Cluster, store: Arc<dyn Store>) -> anyhow::Result<Arc<Self>> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()?;
        Ok(Arc::new(Self {
            cluster,
            store,
            client,
            counters: ProxyCounters::default(),
        }))
    }

    /// Records the layer's counters and the cluster's own as `tutti_cluster_*` series.
    pub fn record_metrics(&self) {
        let c = &self.counters;
        let m = self.cluster.metrics();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metrics::describe_gauge!(
            "tutti_cluster_nodes",
            "Live nodes of the cluster, this one included."
        );
        metrics::describe_counter!(
            "tutti_cluster_nodes_swept_total",
            "Dead nodes this node swept (closing their calls, taking over their webhooks)."
        );
        metrics::describe_gauge!("tutti_cluster_rooms", "Rooms placed on this node.");
        metrics::describe_counter!(
            "tutti_cluster_events_total",
            "Conference events shared with the other nodes, by direction (sent, received, dropped)."
        );
        metrics::describe_counter!(
            "tutti_cluster_proxied_requests_total",
            "API requests forwarded to or from other nodes, by outcome."
        );
        metrics::gauge!("tutti_cluster_nodes").set(m.nodes_alive as f64);
        metrics::counter!("tutti_cluster_nodes_swept_total").absolute(m.nodes_swept);
        metrics::gauge!("tutti_cluster_rooms").set(m.rooms as f64);
        for (direction, value) in [
            ("sent", m.events_sent),
            ("received", m.events_received),
            ("dropped", m.events_dropped),
        ] {
            metrics::counter!("tutti_cluster_events_total", "direction" => direction)
                .absolute(value);
        }
        for (outcome, counter) in [
            ("forwarded", &c.forwarded),
            ("failed", &c.failed),
            ("received", &c.received),
            ("refused", &c.refused),
        ] {
            metrics::counter!("tutti_cluster_proxied_requests_total", "outcome" => outcome)
                .absolute(get(counter));
        }
    }
}

/// What a request is about: its conference, and whether it may start the room (a join).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) conference: Uuid,
    pub(crate) joins: bool,
}

/// The conference a request's path names, for every face; `None` for requests about no one
/// conference (lists, accounts, websockets of a whole account).
pub(crate) fn target_of(method: &Method, path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let id = |text: &str| text.parse::<Uuid>().ok();
    let (conference, rest) = match parts.as_slice() {
        ["v2", "accounts", _, "conferences", conference, rest @ ..] => (id(conference)?, rest),
        ["v1.0", "conferences", conference, rest @ ..] => (id(conference)?, rest),
        ["v2", "conferences", conference, rest @ ..] => (id(conference)?, rest),
        ["whip" | "whep", conference, rest @ ..] => (id(conference)?, rest),
        _ => return None,
    };
    let joins = match (parts[0], rest) {
        // Kazoo: a participant joins (PUT …/participants), or a conference action dials out.
        ("v2", ["participants"]) | ("v2", []) => *method == Method::PUT && parts[1] == "accounts",
        ("v1.0", ["dial"]) => *method == Method::POST,
        ("whip" | "whep", []) => *method == Method::POST,
        _ => false,
    };
    Some(Target { conference, joins })
}

/// The middleware.
pub async fn route(State(proxy): State<Arc<Proxy>>, mut request: Request, next: Next) -> Response {
    if request.headers().contains_key(FORWARDED_BY) {
        return receive(&proxy, request, next).await;
    }
    let mut target = target_of(request.method(), request.uri().path());
    // VoIPbin joins name their conference in the body.
    if target.is_none()
        && request.method() == Method::POST
        && request.uri().path().trim_end_matches('/') == "/v1.0/conferencecalls"
    {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
        };
        target = conference_in_body(&bytes).map(|conference| Target {
            conference,
            joins: true,
        });
        request = Request::from_parts(parts, Body::from(bytes));
    }
    // A VoIPbin call removed by id: its conference is in the call's record.
    if target.is_none() && request.method() == Method::DELETE {
        if let Some(call) = call_in_path(request.uri().path()) {
            target = conference_of_call(&proxy, call)
                .await
                .map(|conference| Target {
                    conference,
                    joins: false,
                });
        }
    }
    let Some(target) = target else {
        return next.run(request).await;
    };
    match focus_of(&proxy, target).await {
        Some(node) if node.id != proxy.cluster.node() => {
            if super::socket::is_upgrade(&request) {
                super::socket::forward(proxy.cluster.node(), proxy.cluster.secret(), &node, request)
                    .await
            } else {
                forward(&proxy, &node, request).await
            }
        }
        _ => next.run(request).await,
    }
}

/// The call a `/v1.0/conferencecalls/{id}` path names.
fn call_in_path(path: &str) -> Option<Uuid> {
    path.strip_prefix("/v1.0/conferencecalls/")?
        .trim_end_matches('/')
        .parse()
        .ok()
}

/// The conference of a call, from the shared store.
async fn conference_of_call(proxy: &Proxy, call: Uuid) -> Option<Uuid> {
    let store = proxy.store.clone();
    let records = tokio::task::spawn_blocking(move || {
        store.items_where(Collection::Calls, "id", &call.to_string())
    })
    .await
    .ok()?
    .ok()?;
    records.first().map(|record| record.conference_id)
}

fn conference_in_body(body: &Bytes) -> Option<Uuid> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("conference_id")?.as_str()?.parse().ok()
}

/// The node that should serve a request about `target`: where its room runs, or for a join of
/// an existing conference whose room runs nowhere, the node it is placed on now. `None` when
/// this node should answer (nothing runs, or the cluster cannot be asked: the answer then
/// comes from the shared store, and a join is refused by the media plane if the room runs
/// elsewhere after all).
async fn focus_of(proxy: &Proxy, target: Target) -> Option<Node> {
    let located = if target.joins && exists(proxy, target.conference).await {
        proxy.cluster.place(target.conference).await.map(Some)
    } else {
        proxy.cluster.locate(target.conference).await
    };
    match located {
        Ok(node) => node,
        Err(error) => {
            tracing::warn!(%error, conference = %target.conference, "the cluster could not say where a room runs");
            None
        }
    }
}

/// Whether a conference exists (so that a join for an unknown id places nothing).
async fn exists(proxy: &Proxy, conference: Uuid) -> bool {
    let store = proxy.store.clone();
    tokio::task::spawn_blocking(move || store.conference_by_id(conference))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
        .is_some()
}

/// Serves a request another node forwarded: only with the cluster's secret, and with the
/// original client's address.
async fn receive(proxy: &Proxy, mut request: Request, next: Next) -> Response {
    let secret = request
        .headers()
        .get(CLUSTER_SECRET)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if Sha256::digest(secret) != Sha256::digest(proxy.cluster.secret().as_bytes()) {
        proxy.counters.refused.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::FORBIDDEN,
            "a forwarded request must carry the cluster's secret",
        )
            .into_response();
    }
    proxy.counters.received.fetch_add(1, Ordering::Relaxed);
    let client = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<SocketAddr>().ok());
    if let Some(client) = client {
        request.extensions_mut().insert(ConnectInfo(client));
    }
    next.run(request).await
}

/// Hop-by-hop headers, which belong to one connection and are not forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        HeaderName::from_static("keep-alive"),
    ]
    .contains(name)
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !hop_by_hop(name) && name != FORWARDED_BY && name != CLUSTER_SECRET {
            to.append(name.clone(), value.clone());
        }
    }
}

/// Sends `request` to `node` and returns its answer.
async fn forward(proxy: &Proxy, node: &Node, request: Request) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address);
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    let mut outgoing = proxy
        .client
        .request(parts.method.clone(), format!("{}{path}", node.api_url))
        .headers(headers)
        .header(FORWARDED_BY, proxy.cluster.node())
        .header(CLUSTER_SECRET, proxy.cluster.secret())
        .body(body);
    if let Some(client) = client {
        outgoing = outgoing.header("x-forwarded-for", client.to_string());
    }
    let answered = async {
        let response = outgoing.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, body))
    };
    match answered.await {
        Ok((status, headers, body)) => {
            proxy.counters.forwarded.fetch_add(1, Ordering::Relaxed);
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            copy_headers(&headers, response.headers_mut());
            response
        }
        Err(error) => {
            proxy.counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, node = %node.id, "a request could not be forwarded");
            (
                StatusCode::BAD_GATEWAY,
                format!(
                    "the node running this conference's room ({}) did not answer",
                    node.id
                ),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_their_conference_and_joins_are_known() {
        let id = Uuid::now_v7();
        let simple = id.simple().to_string();
        let target = |method: Method, path: String| target_of(&method, &path);
        let about = |joins| {
            Some(Target {
                conference: id,
                joins,
            })
        };
        assert_eq!(
            target(
                Method::PUT,
                format!("/v2/accounts/a1/conferences/{simple}/participants")
            ),
            about(true)
        );
        assert_eq!(
            target(
                Method::GET,
                format!("/v2/accounts/a1/conferences/{simple}/participants")
            ),
            about(false)
        );
        assert_eq!(
            target(Method::PUT, format!("/v2/accounts/a1/conferences/{simple}")),
            about(true)
        );
        assert_eq!(
            target(Method::GET, format!("/v2/accounts/a1/conferences/{simple}")),
            about(false)
        );
        assert_eq!(
            target(
                Method::PUT,
                format!("/v2/accounts/a1/conferences/{id}/participants/7")
            ),
            about(false)
        );
        assert_eq!(
            target(Method::POST, format!("/v1.0/conferences/{id}/dial")),
            about(true)
        );
        assert_eq!(
            target(Method::DELETE, format!("/v1.0/conferences/{id}")),
            about(false)
        );
        assert_eq!(
            target(Method::PUT, format!("/v2/conferences/{id}")),
            about(false)
        );
        assert_eq!(target(Method::POST, format!("/whip/{id}")), about(true));
        assert_eq!(target(Method::POST, format!("/whep/{id}")), about(true));
        assert_eq!(
            target(Method::PATCH, format!("/whip/{id}/sessions/abc")),
            about(false)
        );
        assert_eq!(
            target(Method::GET, "/v2/accounts/a1/conferences".into()),
            None
        );
        assert_eq!(
            target(Method::GET, "/v2/accounts/a1/conferences/not-an-id".into()),
            None
        );
        assert_eq!(target(Method::GET, "/v1.0/conferencecalls".into()), None);
        assert_eq!(target(Method::GET, "/join/x".into()), None);
        assert_eq!(
            conference_in_body(&Bytes::from(format!(r#"{{"conference_id":"{id}"}}"#))),
            Some(id)
        );
        assert_eq!(conference_in_body(&Bytes::from_static(b"garbage")), None);
        assert_eq!(
            call_in_path(&format!("/v1.0/conferencecalls/{id}")),
            Some(id)
        );
        assert_eq!(call_in_path("/v1.0/conferencecalls/x"), None);
    }
}
