//! FoneStorm authentication: `POST /v2/auth` trades an API key for a token; every other route
//! reads the `token` header.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tutti_conference::{ConferenceService, ValidationErrors};
use uuid::Uuid;

use super::body::Fields;
use super::{answer, FoneError};
use crate::logins::ClientAddr;
use crate::AppState;

/// A token's lifetime when the request names none, seconds.
pub(crate) const DEFAULT_EXPIRES: i64 = 3600;
/// The longest lifetime a token may ask for, seconds.
pub(crate) const MAX_EXPIRES: i64 = 86_400;

/// `POST /v2/auth` with `api_key` and optional `expires`: 201 `{"auth":{"token":"…"}}`; 429
/// after too many failures from the client's address.
pub(crate) async fn create(
    State(state): State<AppState>,
    client: ClientAddr,
    Fields(fields): Fields,
) -> Response {
    let attempt = match state.logins.attempt(client, Instant::now()) {
        Ok(attempt) => attempt,
        Err(wait) => return FoneError::TooManyAttempts(wait).into_response(),
    };
    let logins = state.logins.clone();
    let response = answer(state, move |service| {
        let lifetime = expires(fields.get("expires"))?;
        let key = fields
            .get("api_key")
            .and_then(Value::as_str)
            .filter(|key| !key.is_empty())
            .ok_or(FoneError::Unauthorized("api_key is missing"))?;
        let session =
            service.authenticate_for(key, lifetime).map_err(|error| {
                match FoneError::from(error) {
                    FoneError::Unauthorized(_) => {
                        FoneError::Unauthorized("the api_key is not valid")
                    }
                    other => other,
                }
            })?;
        Ok((
            StatusCode::CREATED,
            json!({"auth": {"token": session.token}}),
        ))
    })
    .await;
    if response.status().is_success() {
        logins.succeeded(attempt, Instant::now());
    }
    response
}

/// The requested token lifetime: whole seconds, 1 to [`MAX_EXPIRES`], as a number or digits.
fn expires(value: Option<&Value>) -> Result<Duration, FoneError> {
    let seconds = match value {
        None | Some(Value::Null) => return Ok(Duration::from_secs(DEFAULT_EXPIRES as u64)),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(text)) => text.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match seconds {
        Some(s) if (1..=MAX_EXPIRES).contains(&s) => Ok(Duration::from_secs(s as u64)),
        _ => {
            let mut errors = ValidationErrors::default();
            errors.add(
                &["expires"],
                "range",
                json!({
                    "message": format!("Value must be a whole number of seconds from 1 to {MAX_EXPIRES}"),
                    "value": value,
                }),
            );
            Err(FoneError::Validation(errors))
        }
    }
}

/// The account of the request's `token` header.
pub(crate) fn account(service: &ConferenceService, headers: &HeaderMap) -> Result<Uuid, FoneError> {
    let token = headers
        .get("token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(FoneError::Unauthorized(
            "the token header is missing: get a token from POST /v2/auth",
        ))?;
    Ok(service.account_for_token(token)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_is_bounded() {
        assert_eq!(expires(None).unwrap(), Duration::from_secs(3600));
        assert_eq!(expires(Some(&json!(60))).unwrap(), Duration::from_secs(60));
        assert_eq!(
            expires(Some(&json!("86400"))).unwrap(),
            Duration::from_secs(86_400)
        );
        for bad in [
            json!(0),
            json!(-5),
            json!(86_401),
            json!("soon"),
            json!(1.5),
            json!([]),
        ] {
            assert!(
                matches!(expires(Some(&bad)), Err(FoneError::Validation(_))),
                "{bad}"
            );
        }
    }
}
