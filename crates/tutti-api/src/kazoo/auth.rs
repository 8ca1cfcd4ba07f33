//! Kazoo authentication: API keys for tokens, tokens on every request.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::envelope::{data_object, envelope, request_id, success, Body, Extra, KazooError};
use crate::logins::ClientAddr;
use crate::AppState;

/// `PUT /v2/api_auth` with `{"data":{"api_key":"…"}}`: 201 with a token; 429 after too many
/// failures from the client's address.
pub(crate) async fn api_auth(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = request_id(&headers);
    let attempt = match state.logins.attempt(client, Instant::now()) {
        Ok(attempt) => attempt,
        Err(wait) => return KazooError::TooManyAttempts(wait).into_response_with(&request_id),
    };
    let service = state.service.clone();
    let result = tokio::task::spawn_blocking(move || {
        let envelope = envelope(&body)?;
        let data = data_object(&envelope)?;
        let key = data
            .get("api_key")
            .and_then(Value::as_str)
            .ok_or(KazooError::Unauthorized)?;
        Ok::<_, KazooError>(service.authenticate(key)?)
    })
    .await
    .unwrap_or(Err(KazooError::Internal));
    match result {
        Ok(session) => {
            state.logins.succeeded(attempt, Instant::now());
            let data = json!({
                "account_id": session.account_id.simple().to_string(),
                "owner_id": Value::Null,
                "expires": session.expires,
            });
            let extra = Extra {
                auth_token: Some(session.token),
                ..Extra::default()
            };
            success(&state, StatusCode::CREATED, &request_id, data, extra)
        }
        Err(error) => error.into_response_with(&request_id),
    }
}

/// The account of the request's token (`X-Auth-Token`, or `auth_token` in the envelope),
/// which must be the account in the path: another account's id answers 404.
pub(crate) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    envelope: Option<&Map<String, Value>>,
    path_account: &str,
) -> Result<(Uuid, String), KazooError> {
    let token = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            envelope
                .and_then(|e| e.get("auth_token"))
                .and_then(Value::as_str)
        })
        .filter(|t| !t.is_empty())
        .ok_or(KazooError::Unauthorized)?;
    let account = state.service.account_for_token(token)?;
    if Uuid::parse_str(path_account).ok() != Some(account) {
        return Err(KazooError::BadIdentifier(path_account.to_owned()));
    }
    Ok((account, token.to_owned()))
}

/// A request with a body: who sent it, its envelope and its `data` object.
pub(crate) struct Authorized {
    pub(crate) account: Uuid,
    pub(crate) token: String,
    pub(crate) envelope: Map<String, Value>,
    pub(crate) data: Value,
}

/// Reads the envelope, authorizes its sender for `path_account`, and takes `data`.
pub(crate) fn authorize_body(
    state: &AppState,
    headers: &HeaderMap,
    body: &Body,
    path_account: &str,
) -> Result<Authorized, KazooError> {
    let envelope = envelope(body)?;
    let (account, token) = authorize(state, headers, Some(&envelope), path_account)?;
    let data = data_object(&envelope)?;
    Ok(Authorized {
        account,
        token,
        envelope,
        data,
    })
}
