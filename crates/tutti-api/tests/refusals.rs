//! What each face refuses, in its own error shape: unknown paths, methods a path does not
//! take, path parameters that are not ids, bodies that are not UTF-8, and values out of range
//! (a timeout of i64::MAX, dates outside 2000–2100), with the field named.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tutti_api::{router, AppState};
use tutti_conference::ConferenceService;
use tutti_store::SqliteStore;

struct Api {
    state: AppState,
    account: String,
    token: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Api {
    fn new() -> Self {
        let service = ConferenceService::new(
            Arc::new(SqliteStore::in_memory().unwrap()),
            Arc::new(common::MemoryMedia::default()),
            Duration::from_secs(3600),
        );
        let created = service.create_account("acme").unwrap();
        let token = service.authenticate(&created.api_key).unwrap().token;
        Api {
            state: AppState::new(service, "tutti@test"),
            account: created.id.simple().to_string(),
            token,
        }
    }

    /// Sends a request with every face's token header; the body goes as `content_type`.
    async fn send(&self, method: Method, uri: &str, content_type: &str, body: &[u8]) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", content_type)
            .header("x-auth-token", &self.token)
            .header("authorization", format!("Bearer {}", self.token))
            .header("token", &self.token)
            .header("x-request-id", "req-1")
            .body(Body::from(body.to_vec()))
            .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!("{status}: not JSON: {:?}", String::from_utf8_lossy(&bytes))
        });
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn json(&self, method: Method, uri: &str, body: Value) -> Answer {
        self.send(method, uri, "application/json", body.to_string().as_bytes())
            .await
    }

    fn kazoo(&self, rest: &str) -> String {
        format!("/v2/accounts/{}/conferences{rest}", self.account)
    }
}

/// Asserts Kazoo's error envelope; returns its `data`.
fn kazoo_error(answer: &Answer, status: StatusCode, message: &str) -> Value {
    let body = &answer.body;
    assert_eq!(answer.status, status, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["error"], status.as_u16().to_string(), "{body}");
    assert_eq!(body["message"], message, "{body}");
    assert_eq!(body["request_id"], "req-1", "{body}");
    body["data"].clone()
}

/// Asserts VoIPbin's error shape; returns its message.
fn voipbin_error(answer: &Answer, status: StatusCode, code: &str, reason: &str) -> String {
    let body = &answer.body;
    assert_eq!(answer.status, status, "{body}");
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(error.len(), 4, "{body}");
    assert_eq!(body["error"]["status"], code, "{body}");
    assert_eq!(body["error"]["reason"], reason, "{body}");
    assert_eq!(body["error"]["request_id"], "req-1", "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

/// Asserts VoIPbin's 400 `INVALID_ARGUMENT`; returns its message.
fn invalid_argument(answer: &Answer) -> String {
    voipbin_error(
        answer,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
    )
}

/// Asserts FoneStorm's error shape; returns its message.
fn fonestorm_error(answer: &Answer, status: StatusCode, error: &str) -> String {
    let body = &answer.body;
    assert_eq!(answer.status, status, "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(3), "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["status_code"], status.as_u16(), "{body}");
    body["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn unknown_paths_answer_404_in_the_shape_of_the_face_they_are_under() {
    let api = Api::new();
    let answer = api.send(Method::GET, "/v2/nothing/here", "", b"").await;
    let data = kazoo_error(&answer, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(data["message"], "no such path: GET /v2/nothing/here");

    let answer = api.send(Method::GET, "/v1.0/nothing", "", b"").await;
    let message = voipbin_error(&answer, StatusCode::NOT_FOUND, "NOT_FOUND", "NOT_FOUND");
    assert_eq!(message, "no such path: GET /v1.0/nothing");

    let answer = api
        .send(Method::GET, "/v2/conferences/1/nothing", "", b"")
        .await;
    let message = fonestorm_error(&answer, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(message, "no such path: GET /v2/conferences/1/nothing");
}

#[tokio::test]
async fn methods_a_path_does_not_take_answer_405_in_the_faces_shape() {
    let api = Api::new();
    let answer = api.send(Method::DELETE, "/v2/api_auth", "", b"").await;
    let data = kazoo_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_eq!(
        data["message"],
        "/v2/api_auth does not take DELETE (the Allow header says what it takes)"
    );
    assert_eq!(answer.headers["allow"], "PUT");

    let answer = api
        .send(Method::PATCH, &api.kazoo("/x/participants/1"), "", b"")
        .await;
    kazoo_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );

    let answer = api.send(Method::PATCH, "/v1.0/conferences", "", b"").await;
    let message = voipbin_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "UNIMPLEMENTED",
        "METHOD_NOT_ALLOWED",
    );
    assert!(
        message.starts_with("/v1.0/conferences does not take PATCH"),
        "{message}"
    );
    assert_eq!(answer.headers["allow"], "GET,HEAD,POST");

    let answer = api.send(Method::GET, "/v2/auth", "", b"").await;
    let message = fonestorm_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert!(
        message.starts_with("/v2/auth does not take GET"),
        "{message}"
    );
    assert_eq!(answer.headers["allow"], "POST");
}

#[tokio::test]
async fn path_parameters_that_are_not_ids_are_refused_in_the_faces_shape() {
    let api = Api::new();
    // Not UTF-8 once decoded: axum's path extractor refuses it before any handler runs.
    let answer = api.send(Method::GET, &api.kazoo("/%FF"), "", b"").await;
    let data = kazoo_error(&answer, StatusCode::BAD_REQUEST, "invalid request");
    assert!(
        data["message"].as_str().unwrap().contains("UTF-8"),
        "{data}"
    );
    let answer = api
        .send(Method::GET, "/v1.0/conferences/%FF", "", b"")
        .await;
    let message = invalid_argument(&answer);
    assert!(message.contains("UTF-8"), "{message}");
    let answer = api.send(Method::GET, "/v2/conferences/%FF", "", b"").await;
    let message = fonestorm_error(&answer, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(message.contains("UTF-8"), "{message}");

    // Ids that name nothing: each face's 404.
    let answer = api.send(Method::GET, &api.kazoo("/not-hex"), "", b"").await;
    let data = kazoo_error(&answer, StatusCode::NOT_FOUND, "bad_identifier");
    assert_eq!(data["cause"], "not-hex");
    let created = api
        .json(
            Method::PUT,
            &api.kazoo(""),
            json!({"data": {"name": "Room"}}),
        )
        .await;
    let id = created.body["data"]["id"].as_str().unwrap().to_owned();
    let answer = api
        .send(
            Method::GET,
            &api.kazoo(&format!("/{id}/participants/one")),
            "",
            b"",
        )
        .await;
    let data = kazoo_error(&answer, StatusCode::NOT_FOUND, "bad_identifier");
    assert_eq!(data["cause"], "one");
    let answer = api
        .send(Method::GET, "/v1.0/conferences/nope", "", b"")
        .await;
    voipbin_error(
        &answer,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "CONFERENCE_NOT_FOUND",
    );
    let answer = api.send(Method::GET, "/v2/conferences/nope", "", b"").await;
    fonestorm_error(&answer, StatusCode::NOT_FOUND, "not_found");

    // A websocket route asked without the upgrade: the face's 4xx, not axum's text.
    let answer = api.send(Method::GET, "/v2/websocket", "", b"").await;
    assert!(answer.status.is_client_error(), "{}", answer.status);
    assert_eq!(answer.body["status"], "error", "{}", answer.body);
    let answer = api.send(Method::GET, "/v1.0/ws", "", b"").await;
    assert!(answer.status.is_client_error(), "{}", answer.status);
    assert!(
        answer.body["error"]["status"].is_string(),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn bodies_that_are_not_utf8_are_refused() {
    let api = Api::new();
    let form = "application/x-www-form-urlencoded";
    for body in [&b"label=%FF%FE"[..], b"label=caf\xe9"] {
        let answer = api.send(Method::POST, "/v2/conferences", form, body).await;
        let message = fonestorm_error(&answer, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(message.contains("not valid UTF-8"), "{message}");
    }
    let json = b"{\"label\":\"caf\xe9\"}";
    let answer = api
        .send(Method::POST, "/v2/conferences", "application/json", json)
        .await;
    let message = fonestorm_error(&answer, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(message, "the request body is not valid UTF-8 (at byte 13)");
    let answer = api
        .send(Method::POST, "/v1.0/conferences", "application/json", json)
        .await;
    invalid_argument(&answer);
    let answer = api
        .send(
            Method::PUT,
            &api.kazoo(""),
            "application/json",
            b"{\"data\":{\"name\":\"\xff\"}}",
        )
        .await;
    let data = kazoo_error(&answer, StatusCode::BAD_REQUEST, "invalid request");
    assert_eq!(
        data["message"],
        "the request body is not valid UTF-8 (at byte 17)"
    );
    // A form of valid UTF-8 still works, escapes and all.
    let answer = api
        .send(
            Method::POST,
            "/v2/conferences",
            form,
            "label=Caf%C3%A9+%E2%82%AC".as_bytes(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
}

#[tokio::test]
async fn out_of_range_timeouts_and_times_are_refused_naming_the_field() {
    let api = Api::new();
    let huge = json!(9_223_372_036_854_775_807_i64);

    let answer = api
        .json(Method::POST, "/v1.0/conferences", json!({"timeout": huge}))
        .await;
    let message = invalid_argument(&answer);
    assert_eq!(
        message,
        "timeout: Value must be a whole number of seconds from 0 to 315360000 (ten years)"
    );
    let answer = api
        .json(Method::POST, "/v1.0/conferences", json!({"timeout": -5}))
        .await;
    let message = invalid_argument(&answer);
    assert!(message.starts_with("timeout: "), "{message}");
    // The longest timeout is taken, and the conference does not end at once.
    let answer = api
        .json(
            Method::POST,
            "/v1.0/conferences",
            json!({"timeout": 315_360_000}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let id = answer.body["id"].as_str().unwrap().to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    api.state.service.run_due(now + 86_400);
    let answer = api
        .send(Method::GET, &format!("/v1.0/conferences/{id}"), "", b"")
        .await;
    assert_eq!(answer.body["status"], "starting", "{}", answer.body);

    let answer = api
        .json(
            Method::PUT,
            &api.kazoo(""),
            json!({"data": {"timeout": huge}}),
        )
        .await;
    let data = kazoo_error(&answer, StatusCode::BAD_REQUEST, "validation error");
    assert_eq!(data["timeout"]["maximum"]["value"], huge, "{data}");

    for (fields, field) in [
        (json!({"start_time": "9999-12-31T23:59:59Z"}), "start_time"),
        (json!({"end_time": huge}), "end_time"),
        (json!({"end_time": "1969-07-20T20:17:00Z"}), "end_time"),
        (json!({"start_time": "-62135596800"}), "start_time"),
    ] {
        let answer = api
            .json(Method::POST, "/v2/conferences", fields.clone())
            .await;
        let message = fonestorm_error(&answer, StatusCode::BAD_REQUEST, "validation_error");
        assert_eq!(
            message,
            format!("{field}: Value must be from 2000-01-01T00:00:00Z to 2100-12-31T23:59:59Z"),
            "{fields}"
        );
    }
    let form = "application/x-www-form-urlencoded";
    let answer = api
        .send(
            Method::POST,
            "/v2/conferences",
            form,
            b"end_time=99999999999",
        )
        .await;
    let message = fonestorm_error(&answer, StatusCode::BAD_REQUEST, "validation_error");
    assert!(message.starts_with("end_time: "), "{message}");
}
