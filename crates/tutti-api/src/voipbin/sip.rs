//! tutti's SIP extensions in VoIPbin's shapes: `/v1.0/sip` (the customer's SIP numbers and
//! credentials; `PUT` replaces each list it is given) and
//! `POST /v1.0/conferences/{id}/dial` (call a SIP endpoint into the conference).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value};
use tutti_conference::{DialOut, ServiceError, DEFAULT_DIAL_TIMEOUT};

use super::{answer, json_body, render, Body, QueryParams, VoipbinError};
use crate::sip::{directory, hyphenated};
use crate::AppState;

fn sip_error(error: ServiceError) -> VoipbinError {
    VoipbinError::from_service("SIP", error)
}

/// `GET /v1.0/sip`.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let found = state.service.sip_directory(account).map_err(sip_error)?;
        Ok(directory(&found, hyphenated))
    })
    .await
}

/// `PUT /v1.0/sip` with `{"numbers":[…],"credentials":[…]}`.
pub(crate) async fn replace(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
    body: Body,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let body = Value::Object(json_body(&body)?);
        let replaced = state
            .service
            .replace_sip_directory(account, &body)
            .map_err(sip_error)?;
        Ok(directory(&replaced, hyphenated))
    })
    .await
}

/// What a dial body asks for: `destination` (a sip: or sips: URI), optional
/// `caller_id_name`, `caller_id_number`, `timeout` (seconds), `moderator`, `muted`, `deaf`.
fn dial_out(body: &Map<String, Value>) -> Result<DialOut, VoipbinError> {
    let destination = body
        .get("destination")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            VoipbinError::InvalidArgument("destination: required (a sip: or sips: URI)".into())
        })?;
    tutti_conference::check_sip_uri(destination)
        .map_err(|e| VoipbinError::InvalidArgument(format!("destination: {e}")))?;
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    let flag = |key: &str| -> Result<bool, VoipbinError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(on)) => Ok(*on),
            Some(_) => Err(VoipbinError::InvalidArgument(format!(
                "{key}: true or false"
            ))),
        }
    };
    let timeout = match body.get("timeout") {
        None | Some(Value::Null) => DEFAULT_DIAL_TIMEOUT,
        Some(value) => value
            .as_u64()
            .filter(|s| (1..=600).contains(s))
            .map(Duration::from_secs)
            .ok_or_else(|| VoipbinError::InvalidArgument("timeout: seconds, 1 to 600".into()))?,
    };
    Ok(DialOut {
        target: destination.to_owned(),
        caller_id_name: text("caller_id_name"),
        caller_id_number: text("caller_id_number"),
        timeout,
        moderator: flag("moderator")?,
        muted: flag("muted")?,
        deaf: flag("deaf")?,
    })
}

/// `POST /v1.0/conferences/{id}/dial`: the new conferencecall, `dialing`.
pub(crate) async fn dial(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryParams,
    body: Body,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let conference = state
            .service
            .conference(account, &id)
            .map_err(|e| VoipbinError::from_service("CONFERENCE", e))?;
        if !state.service.can_dial() {
            return Err(VoipbinError::Status(
                axum::http::StatusCode::NOT_IMPLEMENTED,
                "dial-out needs SIP, which is not configured".into(),
            ));
        }
        let out = dial_out(&json_body(&body)?)?;
        let call = state
            .service
            .dial(&conference, &out)
            .map_err(|e| VoipbinError::from_service("CONFERENCECALL", e))?;
        Ok(render::call(&call))
    })
    .await
}
