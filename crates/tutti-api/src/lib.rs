//! # tutti-api: tutti's HTTP control plane
//!
//! `router(state)` builds the whole API; every face translates to the one
//! [`ConferenceService`](tutti_conference::ConferenceService) and holds no rules of its own.
//! Handlers are plain functions, tested with `tower::ServiceExt::oneshot` and no socket;
//! [`serve`] runs the router on a listener the caller binds, until its shutdown future ends.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod fonestorm;
mod kazoo;
mod metrics;
mod notifier;
mod request;
mod voipbin;
pub mod webhooks;

pub use metrics::ApiMetrics;
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
    /// Request counters for `/metrics`.
    pub metrics: Arc<ApiMetrics>,
    /// Webhook delivery, whose counters `/metrics` shows, when the server sends webhooks.
    pub webhooks: Option<webhooks::WebhookSender>,
}

impl AppState {
    /// State for a node named `node` over `service`.
    pub fn new(service: Arc<ConferenceService>, node: impl Into<String>) -> Self {
        Self {
            service,
            node: node.into(),
            metrics: Arc::default(),
            webhooks: None,
        }
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
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The OpenAPI document of the Kazoo face.
pub const OPENAPI: &str = include_str!("../openapi/kazoo.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// Serves the API on `listener` until `shutdown` completes; requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
