//! What tenants may make the server fetch or call, at the router level: media references,
//! webhook and callback URLs refused when written, in each face's error shape and naming the
//! field; one generic reason for media that cannot be played; no recording paths in answers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::MemoryMedia;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tutti_api::{router, AppState};
use tutti_conference::{ConferenceService, UNPLAYABLE};
use tutti_store::SqliteStore;

/// URLs and names no tenant may have the server fetch, whatever the face.
const REFUSED: [&str; 12] = [
    "/etc/passwd",
    "file:///etc/passwd",
    "../recordings/1700000000000.wav",
    "data/recordings/x.wav",
    "gopher://example.com:70/_stats",
    "ftp://example.com/a.wav",
    "http://user:pass@example.com/a.wav",
    "http://127.0.0.1:8000/v2/accounts",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/a.wav",
    "http://[::1]/a.wav",
    "http://[::ffff:127.0.0.1]/a.wav",
];

struct Api {
    state: AppState,
    account: String,
    token: String,
}

impl Api {
    fn new() -> Self {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let media = Arc::new(MemoryMedia::default());
        let service = ConferenceService::new(store, media, Duration::from_secs(3600));
        let created = service.create_account("acme").unwrap();
        let token = service.authenticate(&created.api_key).unwrap().token;
        Api {
            state: AppState::new(service, "tutti@test"),
            account: created.id.simple().to_string(),
            token,
        }
    }

    /// Sends a JSON request with the token in `header`.
    async fn call(
        &self,
        method: Method,
        uri: &str,
        header: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = if header == "authorization" {
            format!("Bearer {}", self.token)
        } else {
            self.token.clone()
        };
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header(header, token)
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, json)
    }

    async fn kazoo(&self, method: Method, path: &str, data: Value) -> (StatusCode, Value) {
        let uri = format!("/v2/accounts/{}/conferences{path}", self.account);
        self.call(method, &uri, "x-auth-token", Some(json!({"data": data})))
            .await
    }

    /// Kazoo's `play` action on the conference at `one` (`/<id>`).
    async fn play(&self, one: &str, media_id: &str) -> (StatusCode, Value) {
        self.kazoo(
            Method::PUT,
            one,
            json!({"action": "play", "media_id": media_id}),
        )
        .await
    }

    /// Creates a conference through the Kazoo face, with one participant in it so its room
    /// runs; its id.
    async fn conference(&self) -> String {
        let (status, created) = self.kazoo(Method::PUT, "", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["data"]["id"].as_str().unwrap().to_owned();
        self.join(&format!("/{id}")).await;
        id
    }

    /// Joins a participant to the conference at `one` (`/<id>`).
    async fn join(&self, one: &str) {
        let (status, joined) = self
            .kazoo(
                Method::PUT,
                &format!("{one}/participants"),
                json!({"sdp": "v=0\r\n"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{joined}");
    }

    async fn voipbin(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, uri, "authorization", body).await
    }
}

/// Asserts a Kazoo 400 `validation error` whose data names `field` with rule `format`.
fn assert_kazoo_field(answer: &(StatusCode, Value), field: &str, what: &str) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["message"], "validation error", "{what}: {body}");
    assert!(
        body["data"][field]["format"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(
                "Value must be a tone string, an http:// or https:// URL or a media file name"
            )),
        "{what}: {body}"
    );
    assert_eq!(body["data"][field]["format"]["value"], what, "{body}");
}

#[tokio::test]
async fn kazoo_refuses_paths_other_schemes_and_forbidden_addresses_naming_the_field() {
    let api = Api::new();
    for what in REFUSED {
        for field in ["play_entry_tone", "play_exit_tone"] {
            let answer = api
                .kazoo(Method::PUT, "", json!({"name": "x", field: what}))
                .await;
            assert_kazoo_field(&answer, field, what);
        }
    }
    // Plain names of the media directory, public URLs and tone strings are fine.
    let (status, created) = api
        .kazoo(
            Method::PUT,
            "",
            json!({"play_entry_tone": "welcome.wav", "play_exit_tone": "https://media.example.com/bye.ogg"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let one = format!("/{}", created["data"]["id"].as_str().unwrap());
    api.join(&one).await;
    for what in REFUSED {
        let answer = api.play(&one, what).await;
        assert_kazoo_field(&answer, "media_id", what);
        let answer = api
            .kazoo(Method::PATCH, &one, json!({"play_entry_tone": what}))
            .await;
        assert_kazoo_field(&answer, "play_entry_tone", what);
    }
    for fine in [
        "welcome.wav",
        "tone_stream://%(100,0,440)",
        "https://media.example.com/a.wav",
    ] {
        let (status, body) = api.play(&one, fine).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{fine}: {body}");
    }
}

#[tokio::test]
async fn media_that_cannot_be_played_answers_one_generic_reason() {
    let api = Api::new();
    let one = format!("/{}", api.conference().await);
    for what in ["missing.wav", "missing-too.ogg"] {
        let (status, body) = api.play(&one, what).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["message"], "invalid request", "{body}");
        assert_eq!(body["data"], json!({"message": UNPLAYABLE}), "{body}");
    }
}

#[tokio::test]
async fn voipbin_refuses_forbidden_stream_urls_and_webhook_uris() {
    let api = Api::new();
    for what in REFUSED {
        let (status, body) = api
            .voipbin(
                Method::POST,
                "/v1.0/conferences",
                Some(json!({"post_actions": [{"type": "play", "option": {"stream_urls": ["bye.wav", what]}}]})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("post_actions.0.option.stream_urls.1: Value must be"),
            "{what}: {body}"
        );
    }
    for what in REFUSED.iter().filter(|u| u.contains("://")) {
        let (status, body) = api
            .voipbin(
                Method::PUT,
                "/v1.0/customer",
                Some(json!({"webhook_method": "POST", "webhook_uri": what})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("webhook_uri: "),
            "{what}: {body}"
        );
    }
    let (_, customer) = api.voipbin(Method::GET, "/v1.0/customer", None).await;
    assert_eq!(customer["webhook_uri"], "", "nothing was stored");
}

#[tokio::test]
async fn fonestorm_refuses_forbidden_callback_urls() {
    let api = Api::new();
    for what in REFUSED {
        let (status, body) = api
            .call(
                Method::POST,
                "/v2/conferences",
                "token",
                Some(json!({"label": "x", "callback_url": what})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["error"], "validation_error", "{body}");
        assert!(
            body["message"].as_str().unwrap().starts_with(
                "callback_url: Value must be an http:// or https:// URL the server may call"
            ),
            "{what}: {body}"
        );
    }
    let (status, body) = api
        .call(
            Method::POST,
            "/v2/conferences",
            "token",
            Some(json!({"callback_url": "https://hooks.example.com/fs"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn recording_file_paths_never_appear_in_answers() {
    let api = Api::new();
    // MemoryMedia keeps recordings at memory://<conference id>.
    let id = api.conference().await;
    let one = format!("/{id}");
    let (status, started) = api
        .call(
            Method::PUT,
            &format!("/v2/accounts/{}/conferences{one}", api.account),
            "x-auth-token",
            Some(json!({"action": "record", "data": {"action": "start"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let mut answers = vec![started];
    let (_, fetched) = api.kazoo(Method::GET, &one, json!({})).await;
    answers.push(fetched);
    let (_, conference) = api
        .voipbin(Method::GET, &format!("/v1.0/conferences/{id}"), None)
        .await;
    answers.push(conference.clone());
    let (_, listed) = api.voipbin(Method::GET, "/v1.0/recordings", None).await;
    let recording = listed["result"][0]["id"].as_str().unwrap().to_owned();
    answers.push(listed);
    let (_, one_recording) = api
        .voipbin(Method::GET, &format!("/v1.0/recordings/{recording}"), None)
        .await;
    answers.push(one_recording);
    let (_, stopped) = api
        .voipbin(
            Method::POST,
            &format!("/v1.0/conferences/{id}/recording_stop"),
            None,
        )
        .await;
    answers.push(stopped);
    for answer in &answers {
        assert!(!answer.to_string().contains("memory://"), "{answer}");
    }
}
