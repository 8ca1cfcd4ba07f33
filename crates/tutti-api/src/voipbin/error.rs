//! VoIPbin's error shape: `{"error":{"status","reason","message","request_id"}}` with gRPC-style
//! statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tutti_conference::{MediaError, ServiceError, ValidationErrors};

/// A failed request, rendered as VoIPbin renders it.
#[derive(Debug)]
pub(crate) enum VoipbinError {
    /// 400 `INVALID_ARGUMENT`.
    InvalidArgument(String),
    /// 401 `UNAUTHENTICATED`.
    Unauthenticated,
    /// 403 `PERMISSION_DENIED`.
    PermissionDenied(String),
    /// 404 `NOT_FOUND`, with the kind of thing not found (`CONFERENCE`, `CONFERENCECALL`, …).
    NotFound(&'static str, String),
    /// 409 `FAILED_PRECONDITION`.
    FailedPrecondition(String),
    /// 413: the body is larger than the API accepts (`INVALID_ARGUMENT`).
    TooLarge,
    /// 503: the media plane cannot serve (`UNAVAILABLE`).
    Unavailable(String),
    /// 500 `INTERNAL`.
    Internal,
}

/// The first validation failure as one sentence: `name: String must not be more than 128
/// characters`.
pub(crate) fn describe(errors: &ValidationErrors) -> String {
    fn first(path: &mut Vec<String>, node: &Value) -> Option<String> {
        for (key, child) in node.as_object()? {
            if let Some(message) = child.get("message").and_then(Value::as_str) {
                return Some(format!("{}: {message}", path.join(".")));
            }
            path.push(key.clone());
            if let Some(found) = first(path, child) {
                return Some(found);
            }
            path.pop();
        }
        None
    }
    first(&mut Vec::new(), &Value::Object(errors.0.clone()))
        .unwrap_or_else(|| "the request is not valid".into())
}

impl VoipbinError {
    /// Maps a service error about `what` (`CONFERENCE`, `CONFERENCECALL`, `RECORDING`).
    pub(crate) fn from_service(what: &'static str, error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidCredentials => Self::Unauthenticated,
            ServiceError::NotFound(id) => Self::NotFound(what, id),
            ServiceError::Validation(errors) => Self::InvalidArgument(describe(&errors)),
            ServiceError::BadRequest(reason) | ServiceError::UnknownAction(reason) => {
                Self::InvalidArgument(reason)
            }
            ServiceError::Precondition(reason) => Self::FailedPrecondition(reason),
            ServiceError::NotAdmitted(reason) => Self::PermissionDenied(reason),
            ServiceError::Media(media) => match media {
                MediaError::Offer(reason) | MediaError::Media(reason) => {
                    Self::InvalidArgument(reason)
                }
                MediaError::Unplayable => Self::InvalidArgument(media.to_string()),
                MediaError::Full(_) | MediaError::Locked => {
                    Self::FailedPrecondition(media.to_string())
                }
                MediaError::NoParticipant(id) => Self::NotFound("CONFERENCECALL", id.to_string()),
                other => Self::Unavailable(other.to_string()),
            },
            other => {
                tracing::error!(error = %other, "conference service failed");
                Self::Internal
            }
        }
    }

    pub(crate) fn into_response_with(self, request_id: &str) -> Response {
        let (status, code, reason, message) = match self {
            Self::InvalidArgument(message) => (
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "INVALID_ARGUMENT".to_owned(),
                message,
            ),
            Self::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "INVALID_TOKEN".to_owned(),
                "the token is missing, unknown or expired".to_owned(),
            ),
            Self::PermissionDenied(message) => (
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "NOT_ADMITTED".to_owned(),
                message,
            ),
            Self::NotFound(what, id) => (
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("{what}_NOT_FOUND"),
                format!("no {} {id}", what.to_ascii_lowercase()),
            ),
            Self::FailedPrecondition(message) => (
                StatusCode::CONFLICT,
                "FAILED_PRECONDITION",
                "FAILED_PRECONDITION".to_owned(),
                message,
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "INVALID_ARGUMENT",
                "BODY_TOO_LARGE".to_owned(),
                format!(
                    "the request body must not be more than {} bytes",
                    crate::MAX_BODY_BYTES
                ),
            ),
            Self::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "MEDIA_UNAVAILABLE".to_owned(),
                message,
            ),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "INTERNAL".to_owned(),
                "internal error".to_owned(),
            ),
        };
        let body = json!({"error": {"status": code, "reason": reason, "message": message, "request_id": request_id}});
        (status, Json(body)).into_response()
    }
}
