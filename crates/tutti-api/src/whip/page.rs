//! The join page: `GET /join/{conference_id}` serves one HTML page whose script (no
//! dependencies, no build step, shipped in the binary) asks for the microphone, joins over WHIP
//! with a PIN or token (a form, or `#pin=…`/`#token=…` and `&name=…` in the URL's fragment,
//! which never reaches the server), plays the room, shows the roster and who talks, and has
//! mute, leave and a level meter of what it hears. Its ICE servers come from
//! `GET /join/{conference_id}/config.json`. Every response carries a strict
//! `Content-Security-Policy`: scripts, styles and connections from this server only, nothing
//! inline.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::AppState;

const HTML: &str = include_str!("page/join.html");
const SCRIPT: &str = include_str!("page/join.js");
const STYLE: &str = include_str!("page/join.css");

/// What the page may load and run: its own script, style and connections (fetch, websocket),
/// nothing inline, no frames.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/join/{conference_id}", get(page))
        .route("/join/{conference_id}/config.json", get(config))
        .route(
            "/join/assets/join.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/join/assets/join.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

/// A response of the page with its headers.
fn asset(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (HeaderName::from_static("content-security-policy"), CSP),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (REFERRER_POLICY, "no-referrer"),
            (CACHE_CONTROL, "no-cache"),
            (
                HeaderName::from_static("permissions-policy"),
                "microphone=(self), camera=()",
            ),
        ],
        body.into(),
    )
        .into_response()
}

/// The page names conferences by their ids; anything else is no page. Whether a conference
/// exists is not told here (the join itself says, to whoever holds its credentials).
fn is_conference_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

fn not_found(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{id:?} is not a conference id"),
    )
        .into_response()
}

async fn page(Path(conference_id): Path<String>) -> Response {
    if !is_conference_id(&conference_id) {
        return not_found(&conference_id);
    }
    asset("text/html; charset=utf-8", HTML)
}

/// `{"conference_id": …, "ice_servers": [RTCIceServer…]}` for the page's RTCPeerConnection.
async fn config(State(state): State<AppState>, Path(conference_id): Path<String>) -> Response {
    if !is_conference_id(&conference_id) {
        return not_found(&conference_id);
    }
    let body = json!({
        "conference_id": conference_id,
        "ice_servers": state.service.ice_servers(),
    });
    asset("application/json", body.to_string())
}
