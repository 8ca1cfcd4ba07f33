//! The VoIPbin face at the router level (no socket): conferences with their lifecycle,
//! conferencecalls, recordings, actions, the customer's webhook, error shapes and pagination;
//! and one conference seen through the Kazoo face too.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::MemoryMedia;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tutti_api::{router, AppState};
use tutti_conference::ConferenceService;
use tutti_store::SqliteStore;

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n";
const NOT_YET: &str = "9999-01-01 00:00:00.000000";

struct Api {
    state: AppState,
    media: Arc<MemoryMedia>,
}

struct Account {
    id: String,
    token: String,
}

impl Api {
    fn new(media: MemoryMedia) -> Self {
        let media = Arc::new(media);
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let service = ConferenceService::new(store, media.clone(), Duration::from_secs(3600));
        Api {
            state: AppState::new(service, "tutti@test"),
            media,
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let response = router(self.state.clone())
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, json)
    }

    fn account(&self, name: &str) -> Account {
        let created = self.state.service.create_account(name).unwrap();
        let session = self.state.service.authenticate(&created.api_key).unwrap();
        Account {
            id: created.id.to_string(),
            token: session.token,
        }
    }

    async fn create(&self, account: &Account, body: Value) -> Value {
        let (status, conference) = self
            .call(
                Method::POST,
                "/v1.0/conferences",
                Some(&account.token),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{conference}");
        conference
    }

    async fn join(&self, account: &Account, conference: &Value) -> Value {
        let (status, call) = self
            .call(
                Method::POST,
                "/v1.0/conferencecalls",
                Some(&account.token),
                Some(json!({"conference_id": conference["id"], "sdp": OFFER})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{call}");
        call
    }

    async fn get(&self, account: &Account, path: &str) -> Value {
        let (status, body) = self
            .call(Method::GET, path, Some(&account.token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    /// Reads `path` until `check` holds, for at most 5 s.
    async fn wait_for(
        &self,
        account: &Account,
        path: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let body = self.get(account, path).await;
            if check(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never got there: {body}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str, reason: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    let error = &body["error"];
    assert_eq!(error["status"], code, "{body}");
    assert_eq!(error["reason"], reason, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        error["request_id"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
}

fn is_timestamp(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    let bytes = text.as_bytes();
    text.len() == 26
        && bytes[4] == b'-'
        && bytes[10] == b' '
        && bytes[19] == b'.'
        && text
            .replace(['-', ' ', ':', '.'], "")
            .bytes()
            .all(|b| b.is_ascii_digit())
}

#[tokio::test]
async fn tokens_come_as_bearer_or_query_and_errors_have_voipbins_shape() {
    let api = Api::new(MemoryMedia::default());
    let a = api.account("a");
    let answer = api.call(Method::GET, "/v1.0/conferences", None, None).await;
    assert_error(
        &answer,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "INVALID_TOKEN",
    );
    let answer = api
        .call(Method::GET, "/v1.0/conferences", Some("nope"), None)
        .await;
    assert_error(
        &answer,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "INVALID_TOKEN",
    );
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/v1.0/conferences?token={}", a.token),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer = api
        .call(
            Method::GET,
            "/v1.0/conferences/0190f00d-0000-7000-8000-000000000000",
            Some(&a.token),
            None,
        )
        .await;
    assert_error(
        &answer,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "CONFERENCE_NOT_FOUND",
    );
    let answer = api
        .call(
            Method::POST,
            "/v1.0/conferences",
            Some(&a.token),
            Some(json!([1])),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
    );
    let answer = api
        .call(
            Method::POST,
            "/v1.0/conferences",
            Some(&a.token),
            Some(json!({"type": "party"})),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
    );
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("type: "),
        "{}",
        answer.1
    );
    let answer = api
        .call(
            Method::POST,
            "/v1.0/conferences",
            Some(&a.token),
            Some(json!({"timeout": -1})),
        )
        .await;
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("timeout: "),
        "{}",
        answer.1
    );
    // Without a speech engine, talk is refused with the reason.
    let answer = api
        .call(
            Method::POST,
            "/v1.0/conferences",
            Some(&a.token),
            Some(json!({"pre_actions": [{"type": "talk", "option": {"text": "welcome"}}]})),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
    );
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("espeak-ng"),
        "{}",
        answer.1
    );
}

#[tokio::test]
async fn conferences_have_voipbins_shape_and_page_newest_first() {
    let api = Api::new(MemoryMedia::default());
    let a = api.account("a");
    let b = api.account("b");
    let created = api
        .create(
            &a,
            json!({"name": "standup", "detail": "daily", "data": {"team": "media"}, "timeout": 0,
                   "pre_actions": [{"type": "play", "option": {"stream_urls": ["welcome.wav"]}}, {"type": "sleep", "option": {"duration": 10}}]}),
        )
        .await;
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "conference_numbers",
        "pins",
        "conferencecall_ids",
        "customer_id",
        "data",
        "detail",
        "id",
        "name",
        "post_actions",
        "pre_actions",
        "recording_id",
        "recording_ids",
        "status",
        "timeout",
        "tm_create",
        "tm_delete",
        "tm_update",
        "type",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(created["customer_id"], a.id);
    assert_eq!(created["type"], "conference");
    assert_eq!(created["status"], "starting");
    assert_eq!(created["name"], "standup");
    assert_eq!(created["detail"], "daily");
    assert_eq!(created["data"], json!({"team": "media"}));
    assert_eq!(created["conferencecall_ids"], json!([]));
    assert_eq!(created["recording_ids"], json!([]));
    assert!(is_timestamp(&created["tm_create"]), "{created}");
    assert_eq!(created["tm_delete"], NOT_YET);
    let actions = created["pre_actions"].as_array().unwrap();
    assert_eq!(actions[0]["type"], "play");
    assert_eq!(actions[0]["next_id"], actions[1]["id"]);
    assert_eq!(
        actions[1]["next_id"],
        "00000000-0000-0000-0000-000000000000"
    );
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        api.get(&a, &format!("/v1.0/conferences/{id}")).await,
        created
    );
    // Another customer's id is not found.
    let answer = api
        .call(
            Method::GET,
            &format!("/v1.0/conferences/{id}"),
            Some(&b.token),
            None,
        )
        .await;
    assert_error(
        &answer,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "CONFERENCE_NOT_FOUND",
    );

    // PUT replaces every replaceable field: what is not given is gone.
    let (status, replaced) = api
        .call(
            Method::PUT,
            &format!("/v1.0/conferences/{id}"),
            Some(&a.token),
            Some(json!({"name": "retro", "timeout": 60, "type": "connect"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replaced["name"], "retro");
    assert_eq!(replaced["detail"], "");
    assert_eq!(replaced["timeout"], 60);
    assert_eq!(replaced["pre_actions"], json!([]));
    assert_eq!(replaced["type"], "conference", "type is fixed at creation");

    // Pages of 2, newest first, until an empty token.
    for n in 0..4 {
        api.create(&a, json!({"name": format!("c{n}")})).await;
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .get(
                &a,
                &format!("/v1.0/conferences?page_size=2&page_token={token}"),
            )
            .await;
        let rows = page["result"].as_array().unwrap();
        assert!(rows.len() <= 2);
        names.extend(rows.iter().map(|r| r["name"].as_str().unwrap().to_owned()));
        token = page["next_page_token"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(names, ["c3", "c2", "c1", "c0", "retro"]);
    assert_eq!(
        api.get(&b, "/v1.0/conferences").await,
        json!({"result": [], "next_page_token": ""})
    );
    let answer = api
        .call(
            Method::GET,
            "/v1.0/conferences?page_token=garbage",
            Some(&a.token),
            None,
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
    );
}

#[tokio::test]
async fn calls_move_forward_and_the_last_leave_terminates_a_deleted_conference() {
    let api = Api::new(MemoryMedia::default());
    let a = api.account("a");
    let b = api.account("b");
    let conference = api.create(&a, json!({"name": "lifecycle"})).await;
    let id = conference["id"].as_str().unwrap();
    let call = api.join(&a, &conference).await;
    assert!(call["sdp"].as_str().unwrap().starts_with("v=0"));
    assert_eq!(call["status"], "joined");
    assert_eq!(call["conference_id"], id);
    assert_eq!(call["reference_type"], "call");
    let call_id = call["id"].as_str().unwrap();
    let second = api.join(&a, &conference).await;

    let now = api.get(&a, &format!("/v1.0/conferences/{id}")).await;
    assert_eq!(now["status"], "progressing");
    assert_eq!(now["conferencecall_ids"], json!([call_id, second["id"]]));
    let listed = api
        .get(&a, &format!("/v1.0/conferencecalls?conference_id={id}"))
        .await;
    assert_eq!(listed["result"].as_array().unwrap().len(), 2);
    assert_eq!(
        api.get(&b, "/v1.0/conferencecalls").await["result"],
        json!([])
    );
    let answer = api
        .call(
            Method::GET,
            &format!("/v1.0/conferencecalls/{call_id}"),
            Some(&b.token),
            None,
        )
        .await;
    assert_error(
        &answer,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "CONFERENCECALL_NOT_FOUND",
    );

    // Kicking a call: leaved; kicking it again is a 200 no-op.
    let (status, kicked) = api
        .call(
            Method::DELETE,
            &format!("/v1.0/conferencecalls/{call_id}"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kicked["status"], "leaved");
    assert!(is_timestamp(&kicked["tm_delete"]) && kicked["tm_delete"] != NOT_YET);
    let (status, again) = api
        .call(
            Method::DELETE,
            &format!("/v1.0/conferencecalls/{call_id}"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(
        (status, again["status"].clone()),
        (StatusCode::OK, json!("leaved"))
    );

    // DELETE: terminating, everyone out, then terminated; it stays readable; no more joins.
    let (status, deleted) = api
        .call(
            Method::DELETE,
            &format!("/v1.0/conferences/{id}"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["status"], "terminated");
    assert_ne!(deleted["tm_delete"], NOT_YET);
    assert_eq!(deleted["conferencecall_ids"], json!([]));
    let second = api
        .get(
            &a,
            &format!("/v1.0/conferencecalls/{}", second["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(second["status"], "leaved");
    let answer = api
        .call(
            Method::POST,
            "/v1.0/conferencecalls",
            Some(&a.token),
            Some(json!({"conference_id": id, "sdp": OFFER})),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "FAILED_PRECONDITION",
        "FAILED_PRECONDITION",
    );
    // Status never moves back: a PUT does not revive it.
    let (_, after) = api
        .call(
            Method::PUT,
            &format!("/v1.0/conferences/{id}"),
            Some(&a.token),
            Some(json!({"name": "again"})),
        )
        .await;
    assert_eq!(after["status"], "terminated");
}

#[tokio::test]
async fn connect_conferences_end_when_either_side_leaves() {
    let api = Api::new(MemoryMedia::default());
    let a = api.account("a");
    let conference = api.create(&a, json!({"type": "connect"})).await;
    let id = conference["id"].as_str().unwrap();
    let first = api.join(&a, &conference).await;
    let second = api.join(&a, &conference).await;
    api.call(
        Method::DELETE,
        &format!("/v1.0/conferencecalls/{}", first["id"].as_str().unwrap()),
        Some(&a.token),
        None,
    )
    .await;
    let other = api
        .get(
            &a,
            &format!("/v1.0/conferencecalls/{}", second["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(other["status"], "leaved");
    let ended = api.get(&a, &format!("/v1.0/conferences/{id}")).await;
    assert_eq!(ended["status"], "terminated");
}

#[tokio::test]
async fn a_timeout_terminates_the_conference_and_kicks_everyone() {
    let api = Api::new(MemoryMedia::default());
    let a = api.account("a");
    let conference = api.create(&a, json!({"timeout": 30})).await;
    let id = conference["id"].as_str().unwrap();
    let call = api.join(&a, &conference).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    api.state.service.run_due(now + 10);
    assert_eq!(
        api.get(&a, &format!("/v1.0/conferences/{id}")).await["status"],
        "progressing"
    );
    api.state.service.run_due(now + 31);
    assert_eq!(
        api.get(&a, &format!("/v1.0/conferences/{id}")).await["status"],
        "terminated"
    );
    let call = api
        .get(
            &a,
            &format!("/v1.0/conferencecalls/{}", call["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(call["status"], "leaved");
}

#[tokio::test]
async fn pre_and_post_actions_play_to_the_caller_alone() {
    let api = Api::new(MemoryMedia::with_speech());
    let a = api.account("a");
    let conference = api
        .create(
            &a,
            json!({
                "pre_actions": [
                    {"type": "talk", "option": {"text": "welcome", "language": "en-US", "gender": "female"}},
                    {"type": "play", "option": {"stream_urls": ["one.wav", "two.wav"]}},
                ],
                "post_actions": [{"type": "play", "option": {"stream_urls": ["bye.wav"]}}],
            }),
        )
        .await;
    let call = api.join(&a, &conference).await;
    assert_eq!(call["status"], "joining");
    let path = format!("/v1.0/conferencecalls/{}", call["id"].as_str().unwrap());
    api.wait_for(&a, &path, |c| c["status"] == "joined").await;
    let room = uuid::Uuid::parse_str(conference["id"].as_str().unwrap()).unwrap();
    let played: Vec<(Option<u32>, String)> = api
        .media
        .played
        .lock()
        .unwrap()
        .iter()
        .filter(|(r, _, _)| *r == room)
        .map(|(_, p, what)| (*p, what.clone()))
        .collect();
    assert_eq!(
        played,
        [
            (Some(1), "talk:welcome".to_owned()),
            (Some(1), "one.wav".to_owned()),
            (Some(1), "two.wav".to_owned()),
        ]
    );
    let (status, leaving) = api.call(Method::DELETE, &path, Some(&a.token), None).await;
    assert_eq!(
        (status, leaving["status"].clone()),
        (StatusCode::OK, json!("leaving"))
    );
    api.wait_for(&a, &path, |c| c["status"] == "leaved").await;
    assert_eq!(
        api.media.played.lock().unwrap().last().unwrap(),
        &(room, Some(1), "bye.wav".to_owned())
    );

    // A hangup among the pre-actions ends the call before it joins.
    let hangup = api
        .create(&a, json!({"pre_actions": [{"type": "hangup"}]}))
        .await;
    let call = api.join(&a, &hangup).await;
    let path = format!("/v1.0/conferencecalls/{}", call["id"].as_str().unwrap());
    api.wait_for(&a, &path, |c| c["status"] == "leaved").await;
}

#[tokio::test]
async fn recordings_need_a_progressing_conference_and_one_at_a_time() {
    let api = Api::new(MemoryMedia::default());
    let a = api.account("a");
    let b = api.account("b");
    let conference = api.create(&a, json!({})).await;
    let id = conference["id"].as_str().unwrap();
    let start = format!("/v1.0/conferences/{id}/recording_start");
    let stop = format!("/v1.0/conferences/{id}/recording_stop");
    let answer = api
        .call(
            Method::POST,
            &start,
            Some(&a.token),
            Some(json!({"format": "wav"})),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "FAILED_PRECONDITION",
        "FAILED_PRECONDITION",
    );
    api.join(&a, &conference).await;
    let answer = api
        .call(
            Method::POST,
            &start,
            Some(&a.token),
            Some(json!({"format": "mp3"})),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
    );
    let (status, recording) = api
        .call(
            Method::POST,
            &start,
            Some(&a.token),
            Some(json!({"format": "wav", "duration": 60})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{recording}");
    let recording_id = recording["recording_id"].as_str().unwrap().to_owned();
    assert_eq!(recording["recording_ids"], json!([recording_id]));
    let answer = api
        .call(
            Method::POST,
            &start,
            Some(&a.token),
            Some(json!({"format": "wav"})),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "FAILED_PRECONDITION",
        "FAILED_PRECONDITION",
    );
    let (status, stopped) = api.call(Method::POST, &stop, Some(&a.token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stopped["recording_id"],
        "00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(stopped["recording_ids"], json!([recording_id]));
    let answer = api.call(Method::POST, &stop, Some(&a.token), None).await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "FAILED_PRECONDITION",
        "FAILED_PRECONDITION",
    );

    let listed = api.get(&a, "/v1.0/recordings").await;
    assert_eq!(listed["result"].as_array().unwrap().len(), 1);
    let one = api
        .get(&a, &format!("/v1.0/recordings/{recording_id}"))
        .await;
    assert_eq!(one["status"], "ended");
    assert_eq!(one["reference_id"], id);
    assert_eq!(one["format"], "wav");
    assert!(is_timestamp(&one["tm_end"]) && one["tm_end"] != NOT_YET);
    assert_eq!(api.get(&b, "/v1.0/recordings").await["result"], json!([]));
    for path in [
        format!("/v1.0/recordings/{recording_id}"),
        format!("/v1.0/recordings/{recording_id}/file"),
    ] {
        let answer = api.call(Method::GET, &path, Some(&b.token), None).await;
        assert_error(
            &answer,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "RECORDING_NOT_FOUND",
        );
    }
}

#[tokio::test]
async fn one_conference_through_voipbin_and_kazoo() {
    let api = Api::new(MemoryMedia::default());
    let a = api.account("a");
    let conference = api
        .create(&a, json!({"name": "shared", "detail": "both faces"}))
        .await;
    let id = uuid::Uuid::parse_str(conference["id"].as_str().unwrap()).unwrap();
    let account = uuid::Uuid::parse_str(&a.id).unwrap();
    let kazoo = format!(
        "/v2/accounts/{}/conferences/{}",
        account.simple(),
        id.simple()
    );
    let request = |method: Method, body: Option<Value>| {
        let mut builder = Request::builder()
            .method(method)
            .uri(&kazoo)
            .header("x-auth-token", &a.token);
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        builder
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap()
    };
    let response = router(api.state.clone())
        .oneshot(request(Method::GET, None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["data"]["name"], "shared");
    assert_eq!(body["data"]["detail"], "both faces");
    let response = router(api.state.clone())
        .oneshot(request(
            Method::PATCH,
            Some(json!({"data": {"name": "renamed in kazoo"}})),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = api.get(&a, &format!("/v1.0/conferences/{id}")).await;
    assert_eq!(seen["name"], "renamed in kazoo");
    assert_eq!(seen["detail"], "both faces");
}

#[tokio::test]
async fn the_customer_sets_a_webhook_and_gets_a_signing_secret() {
    let api = Api::new(MemoryMedia::default());
    let a = api.account("a");
    let customer = api.get(&a, "/v1.0/customer").await;
    assert_eq!(customer["id"], a.id);
    assert_eq!(customer["webhook_uri"], "");
    let (status, set) = api
        .call(
            Method::PUT,
            "/v1.0/customer",
            Some(&a.token),
            Some(json!({"webhook_method": "POST", "webhook_uri": "http://hooks.example:9/hook"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(set["webhook_uri"], "http://hooks.example:9/hook");
    let secret = set["webhook_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    let (_, again) = api
        .call(
            Method::PUT,
            "/v1.0/customer",
            Some(&a.token),
            Some(json!({"webhook_uri": "https://hooks.example/x"})),
        )
        .await;
    assert_eq!(
        again["webhook_secret"], secret,
        "the secret stays when the URI changes"
    );
    let answer = api
        .call(
            Method::PUT,
            "/v1.0/customer",
            Some(&a.token),
            Some(json!({"webhook_uri": "ftp://x"})),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
    );
    let answer = api
        .call(
            Method::PUT,
            "/v1.0/customer",
            Some(&a.token),
            Some(json!({"webhook_method": "GET"})),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
    );
}

#[tokio::test]
async fn the_first_join_announces_one_status_change() {
    let api = Api::new(MemoryMedia::default());
    let a = api.account("a");
    let mut events = api.state.service.subscribe();
    let conference = api.create(&a, json!({})).await;
    api.join(&a, &conference).await;
    let mut names = Vec::new();
    while let Ok(event) = events.try_recv() {
        names.push(event.name);
    }
    assert_eq!(
        names.iter().filter(|n| **n == "status-changed").count(),
        1,
        "{names:?}"
    );
    assert!(names.contains(&"add-member"), "{names:?}");
}
