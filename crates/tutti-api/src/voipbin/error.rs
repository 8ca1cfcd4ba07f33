//! VoIPbin's error shape: `{"error":{"status","reason","message","request_id"}}` with gRPC-style
//! statuses.

use axum::http::{HeaderMap, StatusCode};
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
    /// Any other status (an unknown path, a method the path does not take), saying why.
    Status(StatusCode, String),
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
            Self::Status(status, message) => (
                status,
                grpc_status(status),
                crate::request::reason_code(status).to_ascii_uppercase(),
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

/// The gRPC-style status VoIPbin names an HTTP status with.
fn grpc_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 414 | 415 | 431 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 | 501 => "UNIMPLEMENTED",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        400..=499 => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

/// VoIPbin's error shape for an error the handlers did not produce (see
/// [`crate::request::own_errors`]).
pub(crate) fn error_page(status: StatusCode, message: String, headers: &HeaderMap) -> Response {
    let error = if status == StatusCode::BAD_REQUEST {
        VoipbinError::InvalidArgument(message)
    } else {
        VoipbinError::Status(status, message)
    };
    error.into_response_with(&crate::request::request_id(headers))
}
