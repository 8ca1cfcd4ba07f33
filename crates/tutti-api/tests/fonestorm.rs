//! The FoneStorm face at the router level (no socket): auth, conferences through JSON and
//! forms, exact shapes and status codes, PINs, schedule statuses, errors, account isolation,
//! and the same conference seen through the Kazoo face.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::MemoryMedia;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tutti_api::{router, AppState};
use tutti_conference::{ConferenceService, JoinRequest, ServiceError};
use tutti_store::SqliteStore;
use uuid::Uuid;

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

struct Api {
    state: AppState,
    media: Arc<MemoryMedia>,
}

/// An account: its id, API key and a FoneStorm token.
struct Account {
    id: Uuid,
    api_key: String,
    token: String,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Api {
    fn new() -> Self {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let media = Arc::new(MemoryMedia::default());
        let service = ConferenceService::new(store, media.clone(), Duration::from_secs(3600));
        Api {
            state: AppState::new(service, "tutti@test"),
            media,
        }
    }

    fn service(&self) -> &ConferenceService {
        &self.state.service
    }

    /// Sends a request; `headers` are (name, value) pairs.
    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = router(self.state.clone())
            .oneshot(request.body(Body::from(body.into())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, json)
    }

    /// A JSON request with the `token` header.
    async fn json(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.send(
            method,
            uri,
            &[("content-type", JSON), ("token", token)],
            body,
        )
        .await
    }

    /// A form request with the `token` header.
    async fn form(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        self.send(
            method,
            uri,
            &[("content-type", FORM), ("token", token)],
            body.to_owned(),
        )
        .await
    }

    async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.send(Method::GET, uri, &[("token", token)], Vec::new())
            .await
    }

    async fn account(&self, name: &str) -> Account {
        let created = self.service().create_account(name).unwrap();
        let (status, body) = self
            .send(
                Method::POST,
                "/v2/auth",
                &[("content-type", JSON)],
                json!({"api_key": created.api_key}).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Account {
            id: created.id,
            api_key: created.api_key,
            token: body["auth"]["token"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a conference through the face; returns its id and PIN.
    async fn create(&self, account: &Account, fields: Value) -> (String, String) {
        let (status, body) = self
            .json(
                Method::POST,
                "/v2/conferences",
                &account.token,
                Some(fields),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["conference"]["id"].as_str().unwrap().to_owned(),
            body["conference"]["conference_pin"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    /// The conference as `GET /v2/conferences/{id}` shows it.
    async fn conference(&self, account: &Account, id: &str) -> Value {
        let (status, body) = self
            .get(&format!("/v2/conferences/{id}"), &account.token)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["conference"].clone()
    }

    /// Joins a caller through the Kazoo face's extension route.
    async fn join(&self, account: &Account, id: &str, moderator: bool) -> (StatusCode, Value) {
        let uri = format!(
            "/v2/accounts/{}/conferences/{id}/participants",
            account.id.simple()
        );
        self.send(
            Method::PUT,
            &uri,
            &[("content-type", JSON), ("x-auth-token", &account.token)],
            json!({"data": {"sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n", "moderator": moderator}})
                .to_string(),
        )
        .await
    }
}

/// Asserts FoneStorm's error shape and returns the message.
fn error(body: &Value, status: StatusCode, error: &str) -> String {
    let object = body.as_object().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        object.len(),
        3,
        "exactly error, message, status_code: {body}"
    );
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["status_code"], json!(status.as_u16()), "{body}");
    body["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn auth_trades_an_api_key_for_a_token_in_json_or_a_form() {
    let api = Api::new();
    let created = api.service().create_account("acme").unwrap();

    let (status, body) = api
        .send(
            Method::POST,
            "/v2/auth",
            &[("content-type", JSON)],
            json!({"api_key": created.api_key, "expires": 60}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    assert_eq!(body["auth"].as_object().unwrap().len(), 1, "{body}");
    let token = body["auth"]["token"].as_str().unwrap();
    assert_eq!(token.len(), 64);
    assert_eq!(api.service().account_for_token(token).unwrap(), created.id);

    let form = format!("api_key={}&expires=86400", created.api_key);
    let (status, body) = api
        .send(Method::POST, "/v2/auth", &[("content-type", FORM)], form)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["auth"]["token"].as_str().unwrap();
    let (status, body) = api.get("/v2/conferences", token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"conferences": []}));

    // Without expires: the default.
    let (status, _) = api
        .send(
            Method::POST,
            "/v2/auth",
            &[("content-type", FORM)],
            format!("api_key={}", created.api_key),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    for expires in ["0", "-1", "86401", "soon"] {
        let form = format!("api_key={}&expires={expires}", created.api_key);
        let (status, body) = api
            .send(Method::POST, "/v2/auth", &[("content-type", FORM)], form)
            .await;
        let message = error(&body, StatusCode::BAD_REQUEST, "validation_error");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.starts_with("expires:"), "{message}");
        assert!(message.contains("86400"), "{message}");
    }

    for body in [
        json!({"api_key": "wrong"}),
        json!({}),
        json!({"api_key": ""}),
    ] {
        let (status, body) = api
            .send(
                Method::POST,
                "/v2/auth",
                &[("content-type", JSON)],
                body.to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        error(&body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test]
async fn every_other_route_needs_a_valid_token_header_and_kazoo_tokens_work_too() {
    let api = Api::new();
    let account = api.account("acme").await;
    let (id, _) = api.create(&account, json!({"label": "Standup"})).await;

    let routes = [
        (Method::GET, "/v2/conferences".to_owned()),
        (Method::POST, "/v2/conferences".to_owned()),
        (Method::GET, format!("/v2/conferences/{id}")),
        (Method::PUT, format!("/v2/conferences/{id}")),
        (Method::DELETE, format!("/v2/conferences/{id}")),
    ];
    for (method, uri) in &routes {
        let (status, body) = api
            .send(method.clone(), uri, &[("content-type", JSON)], "{}")
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        let message = error(&body, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(message.contains("token"), "{message}");
        let (status, body) = api.json(method.clone(), uri, "not-a-token", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        error(&body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // A Kazoo `X-Auth-Token` header is not FoneStorm's.
    let (status, _) = api
        .send(
            Method::GET,
            "/v2/conferences",
            &[("x-auth-token", &account.token)],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A token from Kazoo's /v2/api_auth, in FoneStorm's header.
    let (status, body) = api
        .send(
            Method::PUT,
            "/v2/api_auth",
            &[("content-type", JSON)],
            json!({"data": {"api_key": account.api_key}}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let kazoo_token = body["auth_token"].as_str().unwrap();
    let (status, body) = api.get(&format!("/v2/conferences/{id}"), kazoo_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["conference"]["label"], "Standup");
}

#[tokio::test]
async fn a_json_create_answers_id_and_pin_and_get_shows_every_field() {
    let api = Api::new();
    let account = api.account("acme").await;
    let start = now() + 3600;
    let (status, body) = api
        .json(
            Method::POST,
            "/v2/conferences",
            &account.token,
            Some(json!({
                "label": "Board meeting",
                "start_time": start,
                "end_time": "2099-01-01T10:00:00+02:00",
                "organizer": "alice@example.com",
                "attendees": ["bob@example.com", "+15551234567"],
                "caller_id": "+15550000000",
                "conference_url": "https://example.com/events",
                "max_members": 10,
                "not_a_fonestorm_field": "ignored",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let created = body["conference"].as_object().unwrap();
    let keys: HashSet<&str> = created.keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["id", "conference_pin"]), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1);
    let id = created["id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "hyphenated UUID: {id}");
    let pin = created["conference_pin"].as_str().unwrap();
    assert_eq!(pin.len(), 6);
    assert!(pin.bytes().all(|b| b.is_ascii_digit()), "{pin}");

    let conference = api.conference(&account, id).await;
    let start_text = tutti_conference::fields::format_time(start);
    let expected = json!({
        "id": id,
        "label": "Board meeting",
        "start_time": start_text,
        "end_time": "2099-01-01T08:00:00Z",
        "organizer": "alice@example.com",
        "attendees": ["bob@example.com", "+15551234567"],
        "caller_id": "+15550000000",
        "callback_url": "https://example.com/events",
        "max_members": 10,
        "conference_pin": pin,
        "conference_status": "scheduled",
        "organizer_status": "not_connected",
        "attendees_status": 0,
    });
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&conference[key], value, "{key}: {conference}");
    }
    for key in ["created_at", "updated_at"] {
        let text = conference[key].as_str().unwrap();
        assert!(tutti_conference::fields::parse_time(&json!(text)).unwrap() >= now() - 60);
    }
    assert_eq!(conference.as_object().unwrap().len(), 15, "{conference}");

    // The simple (32 hex) form of the id names it too.
    let simple = Uuid::parse_str(id).unwrap().simple().to_string();
    assert_eq!(api.conference(&account, &simple).await["id"], json!(id));

    // An empty create: every key there, unset ones null.
    let (id, _) = api.create(&account, json!({})).await;
    let conference = api.conference(&account, &id).await;
    for key in [
        "label",
        "start_time",
        "end_time",
        "organizer",
        "caller_id",
        "callback_url",
    ] {
        assert_eq!(conference[key], Value::Null, "{key}");
    }
    assert_eq!(conference["attendees"], json!([]));
    assert_eq!(conference["max_members"], json!(0));
}

#[tokio::test]
async fn a_form_create_takes_attendees_in_every_spelling() {
    let api = Api::new();
    let account = api.account("acme").await;
    let form = "label=Weekly+sync&organizer=alice&attendees=bob&attendees%5B%5D=carol&\
                attendees=dave%2C+erin&start_time=1700000000&max_members=25&\
                callback_url=http%3A%2F%2Fhooks.example%3A9%2Fcb&caller_id=";
    let (status, body) = api
        .form(Method::POST, "/v2/conferences", &account.token, form)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["conference"]["id"].as_str().unwrap();
    let conference = api.conference(&account, id).await;
    assert_eq!(conference["label"], "Weekly sync");
    assert_eq!(conference["organizer"], "alice");
    assert_eq!(
        conference["attendees"],
        json!(["bob", "carol", "dave", "erin"])
    );
    assert_eq!(conference["start_time"], "2023-11-14T22:13:20Z");
    assert_eq!(conference["max_members"], json!(25));
    assert_eq!(conference["callback_url"], "http://hooks.example:9/cb");
    assert_eq!(
        conference["caller_id"],
        Value::Null,
        "an empty value is no value"
    );

    // A form field given twice (that is not a list) is refused.
    let (status, body) = api
        .form(
            Method::POST,
            "/v2/conferences",
            &account.token,
            "label=a&label=b",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = error(&body, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(message.contains("label"), "{message}");

    // A charset parameter is fine.
    let (status, _) = api
        .send(
            Method::POST,
            "/v2/conferences",
            &[
                (
                    "content-type",
                    "application/x-www-form-urlencoded; charset=UTF-8",
                ),
                ("token", &account.token),
            ],
            "label=Charset",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn pins_of_live_conferences_in_an_account_are_distinct() {
    let api = Api::new();
    let account = api.account("acme").await;
    let mut pins = HashSet::new();
    for n in 0..50 {
        let (_, pin) = api
            .create(&account, json!({"label": format!("Conference {n}")}))
            .await;
        assert_eq!(pin.len(), 6);
        assert!(pin.bytes().all(|b| b.is_ascii_digit()));
        assert!(pins.insert(pin.clone()), "PIN {pin} given twice");
    }
    assert_eq!(pins.len(), 50);
}

#[tokio::test]
async fn the_list_shows_the_accounts_conferences_with_their_statuses() {
    let api = Api::new();
    let account = api.account("acme").await;
    let other = api.account("other").await;
    let mut ids = Vec::new();
    for label in ["One", "Two", "Three"] {
        ids.push(api.create(&account, json!({"label": label})).await.0);
    }
    api.create(&other, json!({"label": "Not yours"})).await;
    let deleted = api.create(&account, json!({"label": "Deleted"})).await.0;
    let (status, _) = api
        .json(
            Method::DELETE,
            &format!("/v2/conferences/{deleted}"),
            &account.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = api.get("/v2/conferences", &account.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only conferences: {body}"
    );
    let rows = body["conferences"].as_array().unwrap();
    let listed: Vec<&str> = rows.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids);
    for (row, label) in rows.iter().zip(["One", "Two", "Three"]) {
        assert_eq!(row["label"], label);
        assert_eq!(row["conference_status"], "scheduled");
        assert_eq!(
            row,
            &api.conference(&account, row["id"].as_str().unwrap()).await
        );
    }

    // Pages, when asked for.
    let (status, body) = api
        .get("/v2/conferences?page=2&page_size=2", &account.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["conferences"].as_array().unwrap().len(), 1);
    assert_eq!(body["conferences"][0]["id"], json!(ids[2]));
    assert_eq!(
        (
            body["page"].clone(),
            body["page_size"].clone(),
            body["total"].clone()
        ),
        (json!(2), json!(2), json!(3))
    );
    let (status, body) = api.get("/v2/conferences?page_size=0", &account.token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error(&body, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn statuses_follow_who_is_connected() {
    let api = Api::new();
    let account = api.account("acme").await;
    let (id, _) = api
        .create(
            &account,
            json!({"label": "Standup", "start_time": now() - 60, "end_time": now() + 3600}),
        )
        .await;
    let conference = api.conference(&account, &id).await;
    assert_eq!(conference["conference_status"], "scheduled");
    assert_eq!(conference["organizer_status"], "not_connected");
    assert_eq!(conference["attendees_status"], 0);

    let (status, body) = api.join(&account, &id, true).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let conference = api.conference(&account, &id).await;
    assert_eq!(conference["conference_status"], "active");
    assert_eq!(conference["organizer_status"], "connected");
    assert_eq!(conference["attendees_status"], 0);

    for _ in 0..2 {
        let (status, body) = api.join(&account, &id, false).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let conference = api.conference(&account, &id).await;
    assert_eq!(conference["conference_status"], "active");
    assert_eq!(conference["organizer_status"], "connected");
    assert_eq!(conference["attendees_status"], 2);

    // max_members is the room's limit: three are in, a limit of three refuses a fourth.
    let (status, _) = api
        .json(
            Method::PUT,
            &format!("/v2/conferences/{id}"),
            &account.token,
            Some(json!({"max_members": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api.join(&account, &id, false).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn joins_are_refused_outside_the_schedule() {
    let api = Api::new();
    let account = api.account("acme").await;
    let (later, _) = api
        .create(
            &account,
            json!({"label": "Later", "start_time": now() + 3600}),
        )
        .await;
    let (status, body) = api.join(&account, &later, false).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let reason = body["data"]["message"].as_str().unwrap();
    assert!(reason.contains("starts at"), "{reason}");
    match api.service().join(
        account.id,
        &later,
        &JoinRequest {
            offer: "v=0\r\n".into(),
            ..JoinRequest::default()
        },
    ) {
        Err(ServiceError::NotAdmitted(reason)) => assert!(reason.contains("starts at"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        api.conference(&account, &later).await["conference_status"],
        "scheduled"
    );

    let (past, _) = api
        .create(
            &account,
            json!({"label": "Past", "start_time": now() - 7200, "end_time": now() - 3600}),
        )
        .await;
    assert_eq!(
        api.conference(&account, &past).await["conference_status"],
        "ended"
    );
    let (status, body) = api.join(&account, &past, false).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["data"]["message"]
        .as_str()
        .unwrap()
        .contains("ended at"));
}

#[tokio::test]
async fn put_changes_only_the_fields_given() {
    let api = Api::new();
    let account = api.account("acme").await;
    let (id, pin) = api
        .create(
            &account,
            json!({"label": "Standup", "organizer": "alice", "attendees": ["bob"], "caller_id": "100"}),
        )
        .await;
    let uri = format!("/v2/conferences/{id}");

    let (status, body) = api
        .json(
            Method::PUT,
            &uri,
            &account.token,
            Some(json!({"label": "Daily standup", "callback_url": "https://example.com/cb", "caller_id": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let conference = &body["conference"];
    assert_eq!(conference["label"], "Daily standup");
    assert_eq!(conference["organizer"], "alice", "kept");
    assert_eq!(conference["attendees"], json!(["bob"]), "kept");
    assert_eq!(conference["callback_url"], "https://example.com/cb");
    assert_eq!(conference["caller_id"], Value::Null, "null clears");
    assert_eq!(conference["conference_pin"], json!(pin), "the PIN stays");
    assert_eq!(conference, &api.conference(&account, &id).await);

    let (status, body) = api
        .form(
            Method::PUT,
            &uri,
            &account.token,
            "attendees[]=carol&attendees[]=dave&max_members=4&organizer=",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let conference = &body["conference"];
    assert_eq!(conference["attendees"], json!(["carol", "dave"]));
    assert_eq!(conference["max_members"], json!(4));
    assert_eq!(
        conference["organizer"],
        Value::Null,
        "an empty form value clears"
    );
    assert_eq!(conference["label"], "Daily standup");

    // A bad value changes nothing.
    let (status, body) = api
        .json(
            Method::PUT,
            &uri,
            &account.token,
            Some(json!({"end_time": "whenever"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = error(&body, StatusCode::BAD_REQUEST, "validation_error");
    assert!(message.starts_with("end_time:"), "{message}");
    assert_eq!(api.conference(&account, &id).await["end_time"], Value::Null);
}

#[tokio::test]
async fn delete_ends_the_room_and_the_conference_is_gone() {
    let api = Api::new();
    let account = api.account("acme").await;
    let (id, _) = api.create(&account, json!({"label": "Standup"})).await;
    let (status, _) = api.join(&account, &id, true).await;
    assert_eq!(status, StatusCode::CREATED);
    let uuid = Uuid::parse_str(&id).unwrap();
    assert!(api.media.spec(uuid).is_some(), "the room runs");

    let (status, body) = api
        .json(
            Method::DELETE,
            &format!("/v2/conferences/{id}"),
            &account.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"conference": {"id": id}}));
    assert!(api.media.spec(uuid).is_none(), "the room ended");

    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let (status, body) = api
            .json(
                method,
                &format!("/v2/conferences/{id}"),
                &account.token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let message = error(&body, StatusCode::NOT_FOUND, "not_found");
        assert!(message.contains(&id), "{message}");
    }
    let (status, body) = api.get("/v2/conferences", &account.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"conferences": []}));
}

#[tokio::test]
async fn another_accounts_conference_is_not_found() {
    let api = Api::new();
    let owner = api.account("owner").await;
    let intruder = api.account("intruder").await;
    let (id, _) = api.create(&owner, json!({"label": "Private"})).await;
    let uri = format!("/v2/conferences/{id}");
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let (status, body) = api
            .json(
                method.clone(),
                &uri,
                &intruder.token,
                Some(json!({"label": "Mine now"})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        error(&body, StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(api.conference(&owner, &id).await["label"], "Private");
    let (status, body) = api.get("/v2/conferences/not-an-id", &owner.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    error(&body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn validation_errors_name_the_field_and_the_problem() {
    let api = Api::new();
    let account = api.account("acme").await;
    let cases = [
        (
            json!({"callback_url": "ftp://example.com"}),
            "callback_url:",
            "http",
        ),
        (
            json!({"conference_url": "not a url"}),
            "callback_url:",
            "http",
        ),
        (
            json!({"start_time": "2030-01-01T10:00:00Z", "end_time": "2030-01-01T09:00:00Z"}),
            "end_time:",
            "after start_time",
        ),
        (json!({"max_members": -1}), "max_members:", "at least 0"),
        (json!({"max_members": "many"}), "max_members:", "integer"),
        (json!({"label": "x".repeat(129)}), "label:", "128"),
        (
            json!({"attendees": [1, 2]}),
            "attendees:",
            "array of strings",
        ),
        (json!({"start_time": "tomorrow"}), "start_time:", "RFC 3339"),
    ];
    for (fields, field, problem) in cases {
        let (status, body) = api
            .json(
                Method::POST,
                "/v2/conferences",
                &account.token,
                Some(fields.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{fields}");
        let message = error(&body, StatusCode::BAD_REQUEST, "validation_error");
        assert!(message.starts_with(field), "{fields}: {message}");
        assert!(message.contains(problem), "{fields}: {message}");
    }
    // Through a form too.
    let (status, body) = api
        .form(
            Method::POST,
            "/v2/conferences",
            &account.token,
            "max_members=-5",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = error(&body, StatusCode::BAD_REQUEST, "validation_error");
    assert!(message.starts_with("max_members:"), "{message}");
    // Two problems, both named.
    let (_, body) = api
        .json(
            Method::POST,
            "/v2/conferences",
            &account.token,
            Some(json!({"max_members": -1, "callback_url": "nope"})),
        )
        .await;
    let message = error(&body, StatusCode::BAD_REQUEST, "validation_error");
    assert!(
        message.contains("max_members:") && message.contains("callback_url:"),
        "{message}"
    );
    // The alias and the field disagreeing.
    let (status, body) = api
        .json(
            Method::POST,
            "/v2/conferences",
            &account.token,
            Some(
                json!({"callback_url": "https://a.example", "conference_url": "https://b.example"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error(&body, StatusCode::BAD_REQUEST, "invalid_request");
    let (_, body) = api.get("/v2/conferences", &account.token).await;
    assert_eq!(body, json!({"conferences": []}), "nothing was created");
}

#[tokio::test]
async fn unreadable_bodies_are_refused_in_fonestorms_shape() {
    let api = Api::new();
    let account = api.account("acme").await;
    let token = account.token.as_str();
    let (status, body) = api
        .send(
            Method::POST,
            "/v2/conferences",
            &[("content-type", JSON), ("token", token)],
            "{",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = error(&body, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(message.contains("JSON"), "{message}");
    let (status, body) = api
        .send(
            Method::POST,
            "/v2/conferences",
            &[("content-type", JSON), ("token", token)],
            "[]",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error(&body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = api
        .send(
            Method::POST,
            "/v2/conferences",
            &[("content-type", "text/plain"), ("token", token)],
            "label",
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    error(
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let huge = json!({"label": "x".repeat(tutti_api::MAX_BODY_BYTES)}).to_string();
    let (status, body) = api
        .send(
            Method::POST,
            "/v2/conferences",
            &[("content-type", JSON), ("token", token)],
            huge,
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    error(&body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let huge_form = format!("label={}", "x".repeat(tutti_api::MAX_BODY_BYTES));
    let (status, body) = api
        .form(Method::POST, "/v2/conferences", token, &huge_form)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    error(&body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // No content type: read as JSON.
    let (status, _) = api
        .send(
            Method::POST,
            "/v2/conferences",
            &[("token", token)],
            r#"{"label":"Bare"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_kazoo_face_reads_a_fonestorm_conference_with_name_as_label() {
    let api = Api::new();
    let account = api.account("acme").await;
    let (id, _) = api
        .create(
            &account,
            json!({"label": "Quarterly review", "max_members": 8, "organizer": "alice"}),
        )
        .await;
    let simple = Uuid::parse_str(&id).unwrap().simple().to_string();
    let (status, body) = api
        .send(
            Method::GET,
            &format!("/v2/accounts/{}/conferences/{id}", account.id.simple()),
            &[("x-auth-token", &account.token)],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["id"], json!(simple));
    assert_eq!(body["data"]["name"], "Quarterly review");
    assert_eq!(body["data"]["max_participants"], json!(8));
    assert_eq!(body["data"]["organizer"], "alice");

    // A Kazoo rename shows as the FoneStorm label.
    let (status, _) = api
        .send(
            Method::PATCH,
            &format!("/v2/accounts/{}/conferences/{simple}", account.id.simple()),
            &[("content-type", JSON), ("x-auth-token", &account.token)],
            json!({"data": {"name": "Q3 review"}}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.conference(&account, &id).await["label"], "Q3 review");
}
