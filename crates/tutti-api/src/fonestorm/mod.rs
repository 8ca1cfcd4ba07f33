//! The FoneStorm face (`/v2/auth`, `/v2/conferences`): scheduled conferences with a generated
//! PIN, an organizer and attendees, over the conference service. See API-COMPAT.md §3.
//!
//! # Requests
//!
//! - Authentication: `POST /v2/auth` with `api_key` and an optional `expires` (seconds, 1 to
//!   86400, default 3600) answers 201 `{"auth":{"token":"…"}}`. Every other route reads the
//!   header `token: <token>`; tokens from Kazoo's `PUT /v2/api_auth` work too.
//! - Bodies are JSON objects (`Content-Type: application/json`, or no content type) or forms
//!   (`application/x-www-form-urlencoded`). In a form, `attendees` may be repeated
//!   (`attendees=a&attendees=b`), written PHP-style (`attendees[]=a`, `attendees[0]=a`) or
//!   comma-separated (`attendees=a,b`), or any mix; blank items are dropped, so `attendees=`
//!   alone is the empty list. Any other field given twice is refused. An empty form value is
//!   JSON's `null`: on `PUT` it clears the field, on `POST` it is as if absent. `max_members`
//!   and `expires` are read as integers. In JSON, `attendees` may also be one comma-separated
//!   string. Bodies, and form names and values once decoded, must be UTF-8.
//! - Conference fields: `label` (stored as the document's `name`, so the Kazoo face shows it
//!   as `name`), `start_time` and `end_time` (RFC 3339 or Unix seconds; stored and shown as
//!   RFC 3339 in UTC), `organizer`, `attendees`, `caller_id`, `callback_url` (alias
//!   `conference_url`; giving both with different values is refused), `max_members` (stored
//!   as `max_participants`; 0 means no limit). Other fields are ignored, so a client's extra
//!   fields do no harm.
//!
//! # Answers
//!
//! A conference reads `{"id", "label", "start_time", "end_time", "organizer", "attendees",
//! "caller_id", "callback_url", "max_members", "conference_pin", "conference_status",
//! "organizer_status", "attendees_status", "created_at", "updated_at"}`; every key is always
//! there (`null` when unset, `[]` for no attendees). Ids are UUIDs in their hyphenated form;
//! either form is accepted. `conference_status` is `scheduled`, `active` or `ended`;
//! `organizer_status` is `connected` when a moderator is in the room, else `not_connected`;
//! `attendees_status` counts the connected participants who are not moderators.
//!
//! Errors are `{"error", "message", "status_code"}`: 400 `invalid_request` (unreadable body or
//! parameters) or `validation_error` (a field's value; the message names each field and what
//! is wrong with it), 401 `unauthorized`, 403 `forbidden` (a caller refused by the schedule or
//! a PIN), 404 `not_found` (also for another account's ids and unknown paths), 405
//! `method_not_allowed`, 409 `conflict` (the conference is ending, full or locked), 413
//! `payload_too_large`, 415 `unsupported_media_type`, 429 `too_many_requests` (too many failed
//! logins from the address, with `Retry-After`), 500 `internal_error`, 503 `unavailable` (the
//! media plane cannot serve).

mod auth;
mod body;
pub(crate) mod callback;
mod conferences;
mod error;
mod render;
mod sip;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use tutti_conference::ConferenceService;

pub(crate) use error::{error_page, FoneError};

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/auth", post(auth::create))
        .route("/v2/sip", get(sip::fetch).put(sip::replace))
        .route(
            "/v2/conferences",
            get(conferences::list).post(conferences::create),
        )
        .route(
            "/v2/conferences/{id}",
            get(conferences::fetch)
                .put(conferences::update)
                .delete(conferences::delete),
        )
        .route_layer(axum::middleware::from_fn(
            |request: axum::extract::Request, next: axum::middleware::Next| {
                crate::request::own_errors(request, next, error_page)
            },
        ))
}

/// Runs `f` on the blocking pool (the service talks to the store synchronously, so async
/// workers never wait on the disk) and renders its outcome as JSON.
pub(crate) async fn answer(
    state: AppState,
    f: impl FnOnce(&ConferenceService) -> Result<(StatusCode, Value), FoneError> + Send + 'static,
) -> Response {
    let service = state.service.clone();
    let outcome = tokio::task::spawn_blocking(move || f(&service))
        .await
        .unwrap_or(Err(FoneError::Internal));
    match outcome {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(error) => error.into_response(),
    }
}
