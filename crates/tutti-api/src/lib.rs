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
    /// Failed logins per client address.
    logins: Arc<logins::LoginLimiter>,
    /// More of `/metrics` from parts of the server outside the API (SIP), in Prometheus' text
    /// format.
    pub more_metrics: Option<MoreMetrics>,
}

/// A source of more `/metrics` lines.
#[derive(Clone)]
pub struct MoreMetrics(pub Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for MoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MoreMetrics")
    }
}

impl AppState {
    /// State for a node named `node` over `service`.
    pub fn new(service: Arc<ConferenceService>, node: impl Into<String>) -> Self {
        Self {
            service,
            node: node.into(),
            metrics: Arc::default(),
            webhooks: None,
            logins: Arc::new(logins::LoginLimiter::new(LoginLimit::default())),
            more_metrics: None,
        }
    }

    /// The same state, appending `more` (Prometheus' text format) to `/metrics`.
    pub fn with_more_metrics(mut self, more: Arc<dyn Fn() -> String + Send + Sync>) -> Self {
        self.more_metrics = Some(MoreMetrics(more));
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
/// request knows its client's address (for the login limit).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(listener, router(state), shutdown).await
}

/// [`serve`] for the API already made into `app` (with layers of the server's own).
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
