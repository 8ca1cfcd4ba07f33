//! FoneStorm's error shape: `{"error":"…","message":"…","status_code":N}`.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use tutti_conference::{MediaError, ServiceError, ValidationErrors};

use super::render::face_field;

/// A failed request, rendered as FoneStorm renders it.
#[derive(Debug)]
pub(crate) enum FoneError {
    /// 400 `invalid_request`: the body or a parameter cannot be read.
    InvalidRequest(String),
    /// 400 `validation_error`: the domain refused a field's value.
    Validation(ValidationErrors),
    /// 401 `unauthorized`, saying why.
    Unauthorized(&'static str),
    /// 403 `forbidden`: the caller is not admitted (outside the schedule, wrong PIN).
    Forbidden(String),
    /// 404 `not_found`, naming what was looked for.
    NotFound(String),
    /// 409 `conflict`: the conference is ending, full or locked.
    Conflict(String),
    /// 413 `payload_too_large`.
    TooLarge,
    /// 415 `unsupported_media_type`, naming the content type.
    UnsupportedMediaType(String),
    /// 503 `unavailable`: the media plane cannot serve.
    Unavailable(String),
    /// 429 `too_many_requests`: too many failed logins from the client's address; retry after
    /// the seconds given.
    TooManyAttempts(u64),
    /// Any other status (an unknown path, a method the path does not take), saying why.
    Status(StatusCode, String),
    /// 500 `internal_error`.
    Internal,
}

impl From<ServiceError> for FoneError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidCredentials => {
                Self::Unauthorized("the token is not valid, or has expired")
            }
            ServiceError::NotFound(id) => Self::NotFound(format!("no conference {id}")),
            ServiceError::Validation(errors) => Self::Validation(errors),
            ServiceError::UnknownAction(action) => {
                Self::InvalidRequest(format!("unknown action {action:?}"))
            }
            ServiceError::BadRequest(reason) => Self::InvalidRequest(reason),
            ServiceError::Precondition(reason) => Self::Conflict(reason),
            ServiceError::NotAdmitted(reason) => Self::Forbidden(reason),
            ServiceError::Media(media) => match media {
                MediaError::Offer(reason) | MediaError::Media(reason) => {
                    Self::InvalidRequest(reason)
                }
                MediaError::Unplayable => Self::InvalidRequest(media.to_string()),
                MediaError::Full(_) | MediaError::Locked => Self::Conflict(media.to_string()),
                MediaError::NoParticipant(id) => Self::NotFound(format!("no participant {id}")),
                other => Self::Unavailable(other.to_string()),
            },
            other => {
                tracing::error!(error = %other, "conference service failed");
                Self::Internal
            }
        }
    }
}

impl IntoResponse for FoneError {
    fn into_response(self) -> Response {
        let retry_after = match self {
            Self::TooManyAttempts(seconds) => Some(seconds),
            _ => None,
        };
        let (status, error, message) = match self {
            Self::InvalidRequest(reason) => (StatusCode::BAD_REQUEST, "invalid_request", reason),
            Self::Validation(errors) => (
                StatusCode::BAD_REQUEST,
                "validation_error",
                validation_message(&errors),
            ),
            Self::Unauthorized(reason) => (StatusCode::UNAUTHORIZED, "unauthorized", reason.into()),
            Self::Forbidden(reason) => (StatusCode::FORBIDDEN, "forbidden", reason),
            Self::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", what),
            Self::Conflict(reason) => (StatusCode::CONFLICT, "conflict", reason),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the request body must not be more than {} bytes",
                    crate::MAX_BODY_BYTES
                ),
            ),
            Self::UnsupportedMediaType(content_type) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "the body is {content_type}: send application/json or application/x-www-form-urlencoded"
                ),
            ),
            Self::Unavailable(reason) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", reason),
            Self::TooManyAttempts(seconds) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                crate::logins::refusal(seconds),
            ),
            Self::Status(status, reason) => {
                let body = json!({
                    "error": crate::request::reason_code(status),
                    "message": reason,
                    "status_code": status.as_u16(),
                });
                return (status, Json(body)).into_response();
            }
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the server failed; try again later".into(),
            ),
        };
        let body = json!({
            "error": error,
            "message": message,
            "status_code": status.as_u16(),
        });
        crate::logins::with_retry_after((status, Json(body)).into_response(), retry_after)
    }
}

/// FoneStorm's error shape for an error the handlers did not produce (see
/// [`crate::request::own_errors`]).
pub(crate) fn error_page(status: StatusCode, message: String, _: &HeaderMap) -> Response {
    if status == StatusCode::BAD_REQUEST {
        FoneError::InvalidRequest(message)
    } else {
        FoneError::Status(status, message)
    }
    .into_response()
}

/// One line naming every refused field (in FoneStorm's names) and why, e.g.
/// `max_members: Value must be at least 0; end_time: end_time must be after start_time`.
pub(crate) fn validation_message(errors: &ValidationErrors) -> String {
    let mut lines = Vec::new();
    for (field, rules) in &errors.0 {
        collect(&mut lines, face_field(field).to_owned(), rules);
    }
    if lines.is_empty() {
        "the request is not valid".into()
    } else {
        lines.join("; ")
    }
}

/// Walks `{field: {rule: {message, …}}}` (nested for nested fields: `pre_actions.0.…`).
fn collect(lines: &mut Vec<String>, path: String, node: &Value) {
    let Value::Object(map) = node else { return };
    for (key, value) in map {
        match message_of(value) {
            Some(message) => lines.push(format!("{path}: {message}")),
            None => collect(lines, format!("{path}.{key}"), value),
        }
    }
}

/// The message of a rule's detail object.
fn message_of(value: &Value) -> Option<&str> {
    value
        .as_object()
        .and_then(|detail: &Map<String, Value>| detail.get("message"))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages_name_fields_in_fonestorms_words() {
        let mut errors = ValidationErrors::default();
        errors.add(
            &["max_participants"],
            "minimum",
            json!({"message": "Value must be at least 0"}),
        );
        errors.add(
            &["name"],
            "maxLength",
            json!({"message": "String must not be more than 128 characters"}),
        );
        errors.add(&["pre_actions", "0"], "option", json!({"message": "bad"}));
        let message = validation_message(&errors);
        assert!(
            message.contains("max_members: Value must be at least 0"),
            "{message}"
        );
        assert!(
            message.contains("label: String must not be more than 128"),
            "{message}"
        );
        assert!(message.contains("pre_actions.0: bad"), "{message}");
        assert_eq!(
            validation_message(&ValidationErrors::default()),
            "the request is not valid"
        );
    }
}
