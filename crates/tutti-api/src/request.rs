//! What every face reads from a request the same way: its request id, and a body that must be
//! one JSON object. Each face turns [`BodyError`] into its own error shape.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

/// A request body as handlers take it: its bytes, or why axum could not read them.
pub(crate) type Body = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;

/// Why a body is not a JSON object.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Larger than [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES).
    TooLarge,
    /// Unreadable, not JSON, or not an object; the text says which.
    Invalid(String),
}

/// The request's `X-Request-Id` when it sends a sane one, a new id otherwise.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// The bytes of a body axum could read.
pub(crate) fn bytes(body: &Body) -> Result<&[u8], BodyError> {
    match body {
        Ok(bytes) => Ok(bytes),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(BodyError::TooLarge)
        }
        Err(rejection) => Err(BodyError::Invalid(rejection.body_text())),
    }
}

/// `bytes` as one JSON object; an empty (or all-blank) body is an empty object.
pub(crate) fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, BodyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(BodyError::Invalid(
            "the request body must be a JSON object".into(),
        )),
        Err(error) => Err(BodyError::Invalid(format!(
            "the request body is not valid JSON: {error}"
        ))),
    }
}

/// A handler's body as one JSON object.
pub(crate) fn object(body: &Body) -> Result<Map<String, Value>, BodyError> {
    json_object(bytes(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_objects_or_say_why_not() {
        assert!(json_object(b"  \n").unwrap().is_empty());
        assert_eq!(json_object(br#"{"a":1}"#).unwrap()["a"], 1);
        assert!(matches!(json_object(b"[1]"), Err(BodyError::Invalid(m)) if m.contains("object")));
        assert!(
            matches!(json_object(b"{"), Err(BodyError::Invalid(m)) if m.contains("not valid JSON"))
        );
    }
}
