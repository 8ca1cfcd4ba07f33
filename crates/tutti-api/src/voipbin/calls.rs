//! `/v1.0/conferencecalls`: participants as calls, kept after they leave; joining a
//! plain-RTP caller with an SDP offer (tutti's extension).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use tutti_conference::{JoinRequest, ServiceError};
use uuid::Uuid;

use super::{answer, json_body, page, page_size, render, Body, QueryParams, VoipbinError};
use crate::AppState;

fn call_error(error: ServiceError) -> VoipbinError {
    VoipbinError::from_service("CONFERENCECALL", error)
}

/// `GET /v1.0/conferencecalls` (optionally `?conference_id=`): newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    answer(state, headers, params, move |state, account, params| {
        let conference = match params.conference_id.as_deref() {
            Some(id) => Some(Uuid::parse_str(id).map_err(|_| {
                VoipbinError::InvalidArgument(format!("conference_id: {id:?} is not an id"))
            })?),
            None => None,
        };
        let (calls, next) = state
            .service
            .calls(
                account,
                conference,
                params.page_token.as_deref(),
                page_size(params),
            )
            .map_err(call_error)?;
        Ok(page(calls.iter().map(render::call).collect(), next))
    })
    .await
}

/// `GET /v1.0/conferencecalls/{id}`.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let call = state.service.call(account, &id).map_err(call_error)?;
        Ok(render::call(&call))
    })
    .await
}

/// `DELETE /v1.0/conferencecalls/{id}`: kicks the call (after its post-actions); a call
/// already leaving or gone is answered as it is.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let call = state.service.kick_call(account, &id).map_err(call_error)?;
        Ok(render::call(&call))
    })
    .await
}

/// `POST /v1.0/conferencecalls` with `{conference_id, sdp}` (and optionally `moderator`,
/// `pin`, `caller_id_name`, `caller_id_number`): joins a plain-RTP caller; answers the
/// conferencecall plus `sdp`, the SDP answer.
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
    body: Body,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let body = json_body(&body)?;
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
        let conference_id = text("conference_id")
            .ok_or_else(|| VoipbinError::InvalidArgument("conference_id: required".into()))?;
        let offer = text("sdp").ok_or_else(|| {
            VoipbinError::InvalidArgument("sdp: required (the caller's SDP offer)".into())
        })?;
        let request = JoinRequest {
            offer,
            moderator: body
                .get("moderator")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            caller_id_name: text("caller_id_name"),
            caller_id_number: text("caller_id_number"),
            latching: body.get("latching").and_then(Value::as_bool),
            pin: text("pin"),
            ..JoinRequest::default()
        };
        let (participant, answer) = state
            .service
            .join(account, &conference_id, &request)
            .map_err(|e| VoipbinError::from_service("CONFERENCE", e))?;
        let call = state
            .service
            .call(account, &participant.call_id.to_string())
            .map_err(call_error)?;
        let mut rendered = render::call(&call);
        rendered["sdp"] = Value::String(answer);
        Ok(rendered)
    })
    .await
}
