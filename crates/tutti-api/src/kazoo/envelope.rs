//! Kazoo's response envelopes and error shapes.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use tutti_conference::{MediaError, ServiceError, ValidationErrors};

use super::time::{iso8601, unix_now};
pub(crate) use crate::request::request_id;
use crate::request::BodyError;
use crate::AppState;

/// A failed request, rendered as Kazoo renders it.
#[derive(Debug)]
pub(crate) enum KazooError {
    /// 401 `invalid_credentials`.
    Unauthorized,
    /// 404 `bad_identifier`, with the id as the cause.
    BadIdentifier(String),
    /// 400 `validation error`.
    Validation(ValidationErrors),
    /// 400: the body is not the JSON envelope Kazoo expects.
    InvalidRequest(String),
    /// 413: the body is larger than the API accepts.
    TooLarge,
    /// 404 `faulty_request`: an action Kazoo does not know.
    FaultyRequest(String),
    /// 409: the conference refuses the caller (full, locked).
    Refused(&'static str, String),
    /// 403 `forbidden`: the caller is not admitted (outside the schedule, wrong PIN).
    Forbidden(String),
    /// 501: an action tutti does not offer yet.
    NotImplemented(String),
    /// 503: the media plane cannot serve.
    Unavailable(String),
    /// 429: too many failed logins from the client's address; retry after the seconds given.
    TooManyAttempts(u64),
    /// Any other status (an unknown path, a method the path does not take), saying why.
    Status(StatusCode, String),
    /// 500.
    Internal,
}

impl From<ServiceError> for KazooError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidCredentials => Self::Unauthorized,
            ServiceError::NotFound(id) => Self::BadIdentifier(id),
            ServiceError::Validation(errors) => Self::Validation(errors),
            ServiceError::UnknownAction(action) => Self::FaultyRequest(action),
            ServiceError::BadRequest(reason) => Self::InvalidRequest(reason),
            ServiceError::Precondition(reason) => Self::Refused("conference_not_active", reason),
            ServiceError::NotAdmitted(reason) => Self::Forbidden(reason),
            ServiceError::Media(media) => match media {
                MediaError::Offer(reason) | MediaError::Media(reason) => {
                    Self::InvalidRequest(reason)
                }
                MediaError::Unplayable => Self::InvalidRequest(media.to_string()),
                MediaError::Full(_) => Self::Refused("conference_full", media.to_string()),
                MediaError::Locked => Self::Refused("conference_locked", media.to_string()),
                MediaError::NoParticipant(id) => Self::BadIdentifier(id.to_string()),
                other => Self::Unavailable(other.to_string()),
            },
            other => {
                tracing::error!(error = %other, "conference service failed");
                Self::Internal
            }
        }
    }
}

impl KazooError {
    pub(crate) fn into_response_with(self, request_id: &str) -> Response {
        let retry_after = match self {
            Self::TooManyAttempts(seconds) => Some(seconds),
            _ => None,
        };
        let (status, message, data) = match self {
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "invalid_credentials".to_owned(),
                json!({"message": "invalid credentials"}),
            ),
            Self::BadIdentifier(id) => (
                StatusCode::NOT_FOUND,
                "bad_identifier".to_owned(),
                json!({"cause": id, "message": "bad identifier"}),
            ),
            Self::Validation(errors) => (
                StatusCode::BAD_REQUEST,
                "validation error".to_owned(),
                Value::Object(errors.0),
            ),
            Self::InvalidRequest(reason) => (
                StatusCode::BAD_REQUEST,
                "invalid request".to_owned(),
                json!({"message": reason}),
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request too large".to_owned(),
                json!({"message": format!("the request body must not be more than {} bytes", crate::MAX_BODY_BYTES)}),
            ),
            Self::FaultyRequest(action) => (
                StatusCode::NOT_FOUND,
                "faulty_request".to_owned(),
                json!({"message": format!("unknown action {action:?}"), "cause": action}),
            ),
            Self::Refused(code, reason) => (
                StatusCode::CONFLICT,
                code.to_owned(),
                json!({"message": reason}),
            ),
            Self::Forbidden(reason) => (
                StatusCode::FORBIDDEN,
                "forbidden".to_owned(),
                json!({"message": reason}),
            ),
            Self::NotImplemented(what) => (
                StatusCode::NOT_IMPLEMENTED,
                "not_implemented".to_owned(),
                json!({"message": what}),
            ),
            Self::Unavailable(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "media_unavailable".to_owned(),
                json!({"message": reason}),
            ),
            Self::TooManyAttempts(seconds) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests".to_owned(),
                json!({"message": crate::logins::refusal(seconds), "retry_after": seconds}),
            ),
            Self::Status(status, reason) => (
                status,
                crate::request::reason_code(status),
                json!({"message": reason}),
            ),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error".to_owned(),
                json!({}),
            ),
        };

        let body = json!({
            "status": "error",
            "error": status.as_u16().to_string(),
            "message": message,
            "data": data,
            "request_id": request_id,
            "timestamp": iso8601(unix_now()),
        });
        crate::logins::with_retry_after((status, Json(body)).into_response(), retry_after)
    }
}

/// Kazoo's error envelope for an error the handlers did not produce (see
/// [`crate::request::own_errors`]).
pub(crate) fn error_page(status: StatusCode, message: String, headers: &HeaderMap) -> Response {
    let error = if status == StatusCode::BAD_REQUEST {
        KazooError::InvalidRequest(message)
    } else {
        KazooError::Status(status, message)
    };
    error.into_response_with(&request_id(headers))
}

/// A successful answer's parts beyond `data`.
#[derive(Default)]
pub(crate) struct Extra {
    pub(crate) revision: Option<String>,
    pub(crate) auth_token: Option<String>,
    pub(crate) fields: Map<String, Value>,
}

pub(crate) fn success(
    state: &AppState,
    status: StatusCode,
    request_id: &str,
    data: Value,
    extra: Extra,
) -> Response {
    let mut body = json!({
        "data": data,
        "revision": extra.revision.unwrap_or_else(|| "undefined".to_owned()),
        "request_id": request_id,
        "status": "success",
        "auth_token": extra.auth_token.unwrap_or_default(),
        "timestamp": iso8601(unix_now()),
        "version": env!("CARGO_PKG_VERSION"),
        "node": state.node,
    });
    if let Value::Object(body) = &mut body {
        body.extend(extra.fields);
    }
    (status, Json(body)).into_response()
}

pub(crate) use crate::request::Body;

impl From<BodyError> for KazooError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => KazooError::TooLarge,
            BodyError::Invalid(reason) => KazooError::InvalidRequest(reason),
        }
    }
}

/// Parses a request body as Kazoo's envelope `{"data": {...}, "auth_token": "..."}`.
pub(crate) fn envelope(body: &Body) -> Result<Map<String, Value>, KazooError> {
    Ok(crate::request::object(body)?)
}

/// The envelope's `data`, which must be an object.
pub(crate) fn data_object(envelope: &Map<String, Value>) -> Result<Value, KazooError> {
    match envelope.get("data") {
        Some(data @ Value::Object(_)) => Ok(data.clone()),
        Some(_) => Err(KazooError::InvalidRequest(
            "\"data\" must be a JSON object".into(),
        )),
        None => Err(KazooError::InvalidRequest(
            "the request needs a \"data\" object".into(),
        )),
    }
}
