//! `/v2/sip` (tutti's extension): the account's SIP numbers and credentials as
//! `{"sip":{"numbers":[…],"credentials":[…]}}`. `PUT` (JSON) replaces each list it is given.
//! A conference's `conference_pin` admits callers who enter it at the prompt of a number
//! without a conference.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::answer;
use super::auth::account;
use super::body::Fields;
use crate::sip::{directory, hyphenated};
use crate::AppState;

/// `GET /v2/sip`.
pub(crate) async fn fetch(State(state): State<AppState>, headers: HeaderMap) -> Response {
    answer(state, move |service| {
        let account = account(service, &headers)?;
        let found = service.sip_directory(account)?;
        Ok((
            StatusCode::OK,
            json!({"sip": directory(&found, hyphenated)}),
        ))
    })
    .await
}

/// `PUT /v2/sip` with `{"numbers":[…],"credentials":[…]}`.
pub(crate) async fn replace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Fields(fields): Fields,
) -> Response {
    answer(state, move |service| {
        let account = account(service, &headers)?;
        let replaced = service.replace_sip_directory(account, &Value::Object(fields))?;
        Ok((
            StatusCode::OK,
            json!({"sip": directory(&replaced, hyphenated)}),
        ))
    })
    .await
}
