//! # tutti-api: tutti's HTTP control plane
//!
//! `router(state)` builds the whole API; every face translates to the one
//! [`ConferenceService`](tutti_conference::ConferenceService) and holds no rules of its own.
//! Handlers are plain functions, tested with `tower::ServiceExt::oneshot` and no socket;
//! [`serve`] runs the router on a listener the caller binds, until its shutdown future ends.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod expiry;
mod fonestorm;
mod kazoo;
mod logins;
mod metrics;
mod notifier;
mod request;
mod sip;
mod voipbin;
pub mod webhooks;
mod whip;

pub use logins::LoginLimit;
pub use metrics::{Metrics, DEFAULT_ROOM_SERIES};
pub use notifier::spawn_notifier;

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use tutti_conference::ConferenceService;

/// Largest request body accepted (Kazoo-shaped 413 beyond it).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The conference service.
    pub service: Arc<ConferenceService>,
    /// This node's name (Kazoo's `node`).
    pub node: String,
    /// The recorder behind `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Rooms with a `tutti_room_participants` series of their own (the largest ones).
    pub room_series: usize,
    /// Webhook delivery, whose counters `/metrics` shows, when the server sends webhooks.
    pub webhooks: Option<webhooks::WebhookSender>,
    /// Failed logins per client address.
    logins: Arc<logins::LoginLimiter>,
    /// Figures of parts of the server outside the API (SIP, WebRTC), stored at each scrape.
    pub metrics_sources: Vec<MetricsSource>,
}

/// Stores figures that other parts of the server keep for themselves, with the `metrics`
/// macros, when `/metrics` is scraped; it runs with [`AppState::metrics`] as the recorder.
#[derive(Clone)]
pub struct MetricsSource(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for MetricsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsSource")
    }
}

impl AppState {
    /// State for a node named `node` over `service`.
    pub fn new(service: Arc<ConferenceService>, node: impl Into<String>) -> Self {
        let tick_bounds = service.media_metrics().tick_bucket_bounds;
        Self {
            service,
            node: node.into(),
            metrics: Arc::new(Metrics::new(&tick_bounds)),
            room_series: DEFAULT_ROOM_SERIES,
            webhooks: None,
            logins: Arc::new(logins::LoginLimiter::new(LoginLimit::default())),
            metrics_sources: Vec::new(),
        }
    }

    /// The same state, running `source` too at each scrape of `/metrics` (see
    /// [`MetricsSource`]).
    pub fn with_metrics_source(mut self, source: Arc<dyn Fn() + Send + Sync>) -> Self {
        self.metrics_sources.push(MetricsSource(source));
        self
    }

    /// The same state, giving the `rooms` largest rooms a `tutti_room_participants` series of
    /// their own.
    pub fn with_room_series(mut self, rooms: usize) -> Self {
        self.room_series = rooms;
        self
    }

    /// The same state, limiting failed logins per client address to `limit`.
    pub fn with_login_limit(mut self, limit: LoginLimit) -> Self {
        self.logins = Arc::new(logins::LoginLimiter::new(limit));
        self
    }

    /// The same state, showing `sender`'s counters in `/metrics`.
    pub fn with_webhooks(mut self, sender: webhooks::WebhookSender) -> Self {
        self.webhooks = Some(sender);
        self
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi))
        .merge(kazoo::routes())
        .merge(fonestorm::routes())
        .merge(voipbin::routes())
        .merge(whip::routes())
        .fallback(unknown_path)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// 404 for a path no route serves, in the error shape of the face whose prefix it is under.
async fn unknown_path(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path();
    let message = format!("no such path: {method} {path}");
    let status = axum::http::StatusCode::NOT_FOUND;
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under("/v1.0") {
        voipbin::error_page(status, message, &headers)
    } else if under("/v2/conferences") || under("/v2/auth") || under("/v2/sip") {
        fonestorm::error_page(status, message, &headers)
    } else if under("/v2") {
        kazoo::error_page(status, message, &headers)
    } else {
        (status, message).into_response()
    }
}

/// The OpenAPI document of the Kazoo face.
pub const OPENAPI: &str = include_str!("../openapi/kazoo.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// Serves the API on `listener` until `shutdown` completes; requests in flight finish. Each
/// request knows its client's address (for the login limit). Request durations recorded
/// between two scrapes are folded into their histogram every few seconds.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    serve_app(listener, &state, app, shutdown).await
}

/// [`serve`] for the API already made into `app` (with layers of the server's own) from
/// `state`, whose metrics it keeps up.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    state: &AppState,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = state.metrics.clone();
    let upkeep = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            metrics.run_upkeep();
        }
    });
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    upkeep.abort();
    served
}
