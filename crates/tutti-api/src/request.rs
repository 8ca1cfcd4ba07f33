//! What every face reads from a request the same way: its request id, and a body that must be
//! one JSON object. Each face turns [`BodyError`] into its own error shape, and re-renders the
//! answers axum gives on its own ([`own_errors`]) in that shape too.

use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value};

/// How a face renders an error it did not produce itself: the status, one sentence saying
/// what is wrong, and the request's headers (for its request id).
pub(crate) type ErrorPage = fn(StatusCode, String, &HeaderMap) -> Response;

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

/// `bytes` as text, or why they are not UTF-8.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, BodyError> {
    std::str::from_utf8(bytes).map_err(|error| {
        BodyError::Invalid(format!(
            "the request body is not valid UTF-8 (at byte {})",
            error.valid_up_to()
        ))
    })
}

/// `bytes` as one JSON object; an empty (or all-blank) body is an empty object.
pub(crate) fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, BodyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    utf8(bytes)?;
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

/// A status's reason phrase as an error code: `method_not_allowed`.
pub(crate) fn reason_code(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
}

/// The longest plain-text answer [`own_errors`] reads to quote it.
const MAX_PLAIN_ANSWER: usize = 4096;

/// Middleware: runs the request, and renders with `page` any error axum answered by itself —
/// an extractor's plain-text rejection (a path parameter that is not UTF-8, a websocket
/// request without its upgrade headers) or 405 for a method the path does not take (axum
/// adds its `Allow` header afterwards) — so a face never answers outside its own error shape.
pub(crate) async fn own_errors(request: Request, next: Next, page: ErrorPage) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        format!("{path} does not take {method} (the Allow header says what it takes)")
    } else {
        let body = axum::body::to_bytes(response.into_body(), MAX_PLAIN_ANSWER)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).trim().to_owned();
        if text.is_empty() {
            reason_code(status).replace('_', " ")
        } else {
            text
        }
    };
    page(status, message, &headers)
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
        assert!(
            matches!(json_object(b"{\"a\":\"\xff\"}"), Err(BodyError::Invalid(m)) if m == "the request body is not valid UTF-8 (at byte 6)")
        );
    }
}
