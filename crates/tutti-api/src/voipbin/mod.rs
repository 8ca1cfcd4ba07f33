//! The VoIPbin face (`/v1.0`): bare JSON bodies, `{result, next_page_token}` lists, VoIPbin's
//! error shape, conferences with their lifecycle, conferencecalls, recordings, the customer's
//! webhook and a topic websocket. See API-COMPAT.md §2.

mod calls;
mod conferences;
mod customer;
mod error;
mod recordings;
pub(crate) mod render;
mod sip;
pub(crate) mod webhook;
mod websocket;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value};
use tutti_conference::Session;
use uuid::Uuid;

use crate::request::{request_id, BodyError};
use crate::AppState;
pub(crate) use error::{error_page, VoipbinError};

/// Largest (and default) page.
pub(crate) const PAGE_SIZE: usize = 100;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1.0/conferences",
            get(conferences::list).post(conferences::create),
        )
        .route(
            "/v1.0/conferences/{id}",
            get(conferences::fetch)
                .put(conferences::replace)
                .delete(conferences::delete),
        )
        .route("/v1.0/conferences/{id}/dial", post(sip::dial))
        .route("/v1.0/sip", get(sip::fetch).put(sip::replace))
        .route(
            "/v1.0/conferences/{id}/recording_start",
            post(conferences::recording_start),
        )
        .route(
            "/v1.0/conferences/{id}/recording_stop",
            post(conferences::recording_stop),
        )
        .route(
            "/v1.0/conferencecalls",
            get(calls::list).post(calls::create),
        )
        .route(
            "/v1.0/conferencecalls/{id}",
            get(calls::fetch).delete(calls::delete),
        )
        .route("/v1.0/recordings", get(recordings::list))
        .route("/v1.0/recordings/{id}", get(recordings::fetch))
        .route("/v1.0/recordings/{id}/file", get(recordings::download))
        .route("/v1.0/recordingfiles/{id}", get(recordings::download))
        .route("/v1.0/customer", get(customer::fetch).put(customer::update))
        .route("/v1.0/ws", get(websocket::upgrade))
        .route_layer(axum::middleware::from_fn(
            |request: axum::extract::Request, next: axum::middleware::Next| {
                crate::request::own_errors(request, next, error_page)
            },
        ))
}

/// Query parameters every route may carry.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    /// The token, when not in the `Authorization` header.
    pub(crate) token: Option<String>,
    /// Page size (default and maximum 100).
    pub(crate) page_size: Option<usize>,
    /// Where the page starts: the previous answer's `next_page_token`.
    pub(crate) page_token: Option<String>,
    /// Filter for conferencecalls.
    pub(crate) conference_id: Option<String>,
}

pub(crate) use crate::request::Body;
pub(crate) type QueryParams = Result<Query<Params>, axum::extract::rejection::QueryRejection>;

/// The account of the request's token: `Authorization: Bearer <token>` or `?token=`.
pub(crate) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Uuid, VoipbinError> {
    session(state, headers, params).map(|session| session.account_id)
}

/// The session of the request's token: `Authorization: Bearer <token>` or `?token=`.
pub(crate) fn session(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Session, VoipbinError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or(params.token.as_deref())
        .filter(|t| !t.is_empty())
        .ok_or(VoipbinError::Unauthenticated)?;
    state
        .service
        .session(token)
        .map_err(|_| VoipbinError::Unauthenticated)
}

/// The request body as a JSON object (empty bodies are `{}`).
pub(crate) fn json_body(body: &Body) -> Result<Map<String, Value>, VoipbinError> {
    crate::request::object(body).map_err(|error| match error {
        BodyError::TooLarge => VoipbinError::TooLarge,
        BodyError::Invalid(reason) => VoipbinError::InvalidArgument(reason),
    })
}

/// Runs `f` (which may wait for the media plane) off the async threads and renders its
/// outcome: 200 with bare JSON, or VoIPbin's error.
pub(crate) async fn answer(
    state: AppState,
    headers: HeaderMap,
    params: QueryParams,
    f: impl FnOnce(&AppState, Uuid, &Params) -> Result<Value, VoipbinError> + Send + 'static,
) -> Response {
    let request_id = request_id(&headers);
    let outcome = tokio::task::spawn_blocking(move || {
        let params = match params {
            Ok(Query(params)) => params,
            Err(rejection) => return Err(VoipbinError::InvalidArgument(rejection.body_text())),
        };
        let account = authorize(&state, &headers, &params)?;
        f(&state, account, &params)
    })
    .await
    .unwrap_or(Err(VoipbinError::Internal));
    match outcome {
        Ok(body) => (StatusCode::OK, Json(body)).into_response(),
        Err(error) => error.into_response_with(&request_id),
    }
}

/// A list answer: `{"result":[…], "next_page_token":"…"}` (empty token on the last page).
pub(crate) fn page(result: Vec<Value>, next: Option<Uuid>) -> Value {
    serde_json::json!({
        "result": result,
        "next_page_token": next.map(|id| id.to_string()).unwrap_or_default(),
    })
}

/// The page size a request asks for, within 1..=100.
pub(crate) fn page_size(params: &Params) -> usize {
    params.page_size.unwrap_or(PAGE_SIZE).clamp(1, PAGE_SIZE)
}
