//! The Kazoo face at the router level (no socket): every endpoint, its envelope, error shapes
//! and status codes, account isolation and pagination.

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
use tutti_conference::ConferenceService;
use tutti_store::SqliteStore;
use uuid::Uuid;

struct Api {
    state: AppState,
    media: Arc<MemoryMedia>,
}

struct Account {
    id: String,
    token: String,
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

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.call_raw(method, uri, token, body.into_bytes()).await
    }

    async fn call_raw(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("x-auth-token", token);
        }
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

    async fn account(&self, name: &str) -> Account {
        let created = self.state.service.create_account(name).unwrap();
        let (status, body) = self
            .call(
                Method::PUT,
                "/v2/api_auth",
                None,
                Some(json!({"data": {"api_key": created.api_key}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        Account {
            id: body["data"]["account_id"].as_str().unwrap().to_owned(),
            token: body["auth_token"].as_str().unwrap().to_owned(),
        }
    }
}

fn conferences(account: &Account) -> String {
    format!("/v2/accounts/{}/conferences", account.id)
}

#[tokio::test]
async fn api_auth_gives_a_token_or_a_kazoo_401() {
    let api = Api::new();
    let created = api.state.service.create_account("acme").unwrap();
    let (status, body) = api
        .call(
            Method::PUT,
            "/v2/api_auth",
            None,
            Some(json!({"data": {"api_key": created.api_key}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["status"], "success");
    assert_eq!(
        body["data"]["account_id"],
        json!(created.id.simple().to_string())
    );
    assert_eq!(body["auth_token"].as_str().unwrap().len(), 64);
    for key in ["revision", "request_id", "timestamp", "version", "node"] {
        assert!(body.get(key).is_some(), "envelope has {key}");
    }

    let (status, body) = api
        .call(
            Method::PUT,
            "/v2/api_auth",
            None,
            Some(json!({"data": {"api_key": "nope"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["status"], "error");
    assert_eq!(body["error"], "401");
    assert_eq!(body["message"], "invalid_credentials");
    assert_eq!(body["data"], json!({"message": "invalid credentials"}));
    assert!(body["request_id"].is_string());
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let api = Api::new();
    let account = api.account("a").await;
    for token in [None, Some("garbage")] {
        let (status, body) = api
            .call(Method::GET, &conferences(&account), token, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["message"], "invalid_credentials");
    }
    // The token may also come in the envelope.
    let body = json!({"auth_token": account.token, "data": {"name": "Envelope token"}});
    let (status, _) = api
        .call(Method::PUT, &conferences(&account), None, Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn conference_documents_are_created_read_changed_and_deleted() {
    let api = Api::new();
    let a = api.account("a").await;
    let t = Some(a.token.as_str());

    let (status, body) = api
        .call(
            Method::PUT,
            &conferences(&a),
            t,
            Some(json!({"data": {"name": "Standup", "conference_numbers": ["1000"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let doc = &body["data"];
    let id = doc["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32, "Kazoo ids are 32 hex characters");
    assert_eq!(doc["name"], "Standup");
    assert_eq!(doc["member"]["join_muted"], true, "defaults filled in");
    assert_eq!(doc["profile"]["energy-level"], 20);
    assert_eq!(
        doc["_read_only"],
        json!({"members": 0, "admins": 0, "duration": 0, "is_locked": false, "participants": []})
    );
    assert!(body["revision"].as_str().unwrap().starts_with("1-"));

    let one = format!("{}/{id}", conferences(&a));
    let (status, body) = api.call(Method::GET, &one, t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["name"], "Standup");

    let (status, body) = api
        .call(
            Method::PATCH,
            &one,
            t,
            Some(json!({"data": {"max_participants": 10}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            body["data"]["max_participants"].clone(),
            body["data"]["name"].clone()
        ),
        (json!(10), json!("Standup"))
    );
    assert!(body["revision"].as_str().unwrap().starts_with("2-"));

    let (status, body) = api
        .call(
            Method::POST,
            &one,
            t,
            Some(json!({"data": {"name": "Replaced"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["name"], "Replaced");
    assert_eq!(
        body["data"]["max_participants"], 0,
        "replace drops what the new document lacks"
    );

    let (status, body) = api.call(Method::GET, &conferences(&a), t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);

    let (status, body) = api.call(Method::DELETE, &one, t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["_read_only"]["deleted"], true);
    let (status, body) = api.call(Method::GET, &one, t, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "404");
    assert_eq!(body["message"], "bad_identifier");
    assert_eq!(body["data"]["cause"], json!(id));
}

#[tokio::test]
async fn validation_errors_have_kazoos_shape() {
    let api = Api::new();
    let a = api.account("a").await;
    let t = Some(a.token.as_str());
    let long = "x".repeat(129);
    let (status, body) = api
        .call(Method::PUT, &conferences(&a), t, Some(json!({"data": {"name": long, "play_entry_tone": "tone_stream://!", "profile": {"energy-level": 2000}}})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "error");
    assert_eq!(body["error"], "400");
    assert_eq!(body["message"], "validation error");
    assert_eq!(
        body["data"]["name"]["maxLength"]["message"],
        "String must not be more than 128 characters"
    );
    assert_eq!(body["data"]["name"]["maxLength"]["target"], 128);
    assert_eq!(
        body["data"]["profile"]["energy-level"]["maximum"]["message"],
        "Value must be at most 1800"
    );
    assert_eq!(
        body["data"]["play_entry_tone"]["tone_stream"]["message"],
        "cannot play tone_stream://!"
    );

    // Numbers are unique within the account.
    api.call(
        Method::PUT,
        &conferences(&a),
        t,
        Some(json!({"data": {"conference_numbers": ["5"]}})),
    )
    .await;
    let (status, body) = api
        .call(
            Method::PUT,
            &conferences(&a),
            t,
            Some(json!({"data": {"conference_numbers": ["5"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["conference_numbers"]["unique"]["cause"], "5");
}

#[tokio::test]
async fn malformed_and_oversized_bodies_get_kazoo_shaped_errors() {
    let api = Api::new();
    let a = api.account("a").await;
    let t = Some(a.token.as_str());
    for body in [&b"{not json"[..], b"[1,2]", b"{\"data\": 7}", b"{}"] {
        let (status, json) = api
            .call_raw(Method::PUT, &conferences(&a), t, body.to_vec())
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(json["message"], "invalid request");
        assert!(json["data"]["message"].is_string());
    }
    let huge = format!(
        "{{\"data\": {{\"name\": \"{}\"}}}}",
        "x".repeat(tutti_api::MAX_BODY_BYTES)
    );
    let (status, json) = api
        .call_raw(Method::PUT, &conferences(&a), t, huge.into_bytes())
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json["error"], "413");
    let (status, json) = api
        .call(
            Method::GET,
            &format!("{}?page_size=lots", conferences(&a)),
            t,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["message"], "invalid request");
}

#[tokio::test]
async fn accounts_never_see_each_other() {
    let api = Api::new();
    let a = api.account("a").await;
    let b = api.account("b").await;
    let (_, body) = api
        .call(
            Method::PUT,
            &conferences(&a),
            Some(&a.token),
            Some(json!({"data": {"name": "A's"}})),
        )
        .await;
    let id = body["data"]["id"].as_str().unwrap().to_owned();

    // B's token on A's account path: 404, not 403.
    let (status, body) = api
        .call(Method::GET, &conferences(&a), Some(&b.token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["data"]["cause"], json!(a.id));
    // B's own path with A's conference id: 404 for every verb.
    let theirs = format!("{}/{id}", conferences(&b));
    for method in [Method::GET, Method::POST, Method::PATCH, Method::DELETE] {
        let body = (method != Method::GET).then(|| json!({"data": {"name": "taken over"}}));
        let (status, _) = api
            .call(method.clone(), &theirs, Some(&b.token), body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
    }
    let (_, body) = api
        .call(Method::GET, &conferences(&b), Some(&b.token), None)
        .await;
    assert_eq!(body["data"], json!([]));
    let (_, body) = api
        .call(
            Method::GET,
            &format!("{}/{id}", conferences(&a)),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(body["data"]["name"], "A's", "untouched");
}

#[tokio::test]
async fn lists_page_with_start_keys() {
    let api = Api::new();
    let a = api.account("a").await;
    let t = Some(a.token.as_str());
    for i in 0..5 {
        api.call(
            Method::PUT,
            &conferences(&a),
            t,
            Some(json!({"data": {"name": format!("c{i}")}})),
        )
        .await;
    }
    let (_, first) = api
        .call(
            Method::GET,
            &format!("{}?page_size=2", conferences(&a)),
            t,
            None,
        )
        .await;
    assert_eq!(first["page_size"], 2);
    let names = |body: &Value| {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["c0", "c1"]);
    let next = first["next_start_key"].as_str().unwrap();
    let (_, second) = api
        .call(
            Method::GET,
            &format!("{}?page_size=2&start_key={next}", conferences(&a)),
            t,
            None,
        )
        .await;
    assert_eq!(names(&second), ["c2", "c3"]);
    assert_eq!(second["start_key"], json!(next));
    let (_, all) = api
        .call(
            Method::GET,
            &format!("{}?paginate=false", conferences(&a)),
            t,
            None,
        )
        .await;
    assert_eq!(names(&all), ["c0", "c1", "c2", "c3", "c4"]);
    assert!(all.get("next_start_key").is_none());
}

#[tokio::test]
async fn health_answers() {
    let api = Api::new();
    let (status, body) = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!("ok")));
}

#[tokio::test]
async fn participants_join_and_are_acted_on() {
    let api = Api::new();
    let a = api.account("a").await;
    let t = Some(a.token.as_str());
    let (_, body) = api
        .call(
            Method::PUT,
            &conferences(&a),
            t,
            Some(json!({"data": {"name": "Room", "max_participants": 3}})),
        )
        .await;
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let people = format!("{}/{id}/participants", conferences(&a));

    // Members join muted (Kazoo's default), moderators do not.
    let (status, member) = api
        .call(
            Method::PUT,
            &people,
            t,
            Some(json!({"data": {"sdp": "v=0\r\n", "caller_id_name": "Ann"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(member["data"]["speak"], false);
    assert_eq!(member["data"]["is_moderator"], false);
    assert_eq!(member["data"]["caller_id_name"], "Ann");
    assert!(member["data"]["sdp"].as_str().unwrap().starts_with("v=0"));
    assert!(
        member["data"]["join_time"].as_i64().unwrap() > 63_000_000_000,
        "Gregorian seconds"
    );
    let (_, moderator) = api
        .call(
            Method::PUT,
            &people,
            t,
            Some(json!({"data": {"sdp": "v=0\r\n", "moderator": true}})),
        )
        .await;
    assert_eq!(moderator["data"]["speak"], true);
    let member_id = member["data"]["participant_id"].as_u64().unwrap();
    let moderator_id = moderator["data"]["participant_id"].as_u64().unwrap();

    // Bulk unmute and deaf spare the moderator.
    let (status, _) = api
        .call(
            Method::PUT,
            &people,
            t,
            Some(json!({"data": {"action": "deaf"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, list) = api.call(Method::GET, &people, t, None).await;
    let by_id = |list: &Value, id: u64| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["participant_id"] == json!(id))
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id(&list, member_id)["hear"], false);
    assert_eq!(by_id(&list, moderator_id)["hear"], true);

    let (status, _) = api
        .call(
            Method::PUT,
            &format!("{people}/{member_id}"),
            t,
            Some(json!({"data": {"action": "unmute"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, one) = api
        .call(Method::GET, &format!("{people}/{member_id}"), t, None)
        .await;
    assert_eq!(one["data"]["speak"], true);

    let (_, conference) = api
        .call(Method::GET, &format!("{}/{id}", conferences(&a)), t, None)
        .await;
    assert_eq!(conference["data"]["_read_only"]["members"], 1);
    assert_eq!(conference["data"]["_read_only"]["admins"], 1);

    // relate: the member stops hearing the moderator, then the moderator the member, then
    // both hear each other again.
    for relationship in ["deaf", "mute", "clear"] {
        let (status, _) = api
            .call(
                Method::PUT,
                &people,
                t,
                Some(json!({"data": {"action": "relate", "participant_id": member_id, "other_participant": moderator_id.to_string(), "relationship": relationship}})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{relationship}");
    }
    let room = Uuid::parse_str(&id).unwrap();
    let (m, o) = (member_id as u32, moderator_id as u32);
    assert_eq!(
        *api.media.relations.lock().unwrap(),
        [
            (room, m, o, false),
            (room, o, m, false),
            (room, m, o, true),
            (room, o, m, true)
        ]
    );
    let (status, body) = api
        .call(
            Method::PUT,
            &people,
            t,
            Some(json!({"data": {"action": "relate", "participant_id": member_id, "other_participant": 999, "relationship": "deaf"}})),
        )
        .await;
    assert_eq!(
        (status, body["data"]["cause"].clone()),
        (StatusCode::NOT_FOUND, json!("999"))
    );

    let (status, _) = api
        .call(
            Method::PUT,
            &format!("{people}/{member_id}"),
            t,
            Some(json!({"data": {"action": "kick"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = api
        .call(Method::GET, &format!("{people}/{member_id}"), t, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Errors: bad offer, unknown action, play without media, relate without arguments.
    let (status, body) = api
        .call(
            Method::PUT,
            &people,
            t,
            Some(json!({"data": {"sdp": "hello"}})),
        )
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid request"))
    );
    let (status, body) = api
        .call(
            Method::PUT,
            &people,
            t,
            Some(json!({"data": {"action": "juggle"}})),
        )
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (StatusCode::NOT_FOUND, json!("faulty_request"))
    );
    let (status, _) = api
        .call(
            Method::PUT,
            &people,
            t,
            Some(json!({"data": {"action": "play"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .call(
            Method::PUT,
            &people,
            t,
            Some(json!({"data": {"action": "relate"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Locking refuses joins; deleting the conference ends the room.
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("{}/{id}", conferences(&a)),
            t,
            Some(json!({"data": {"action": "lock"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = api
        .call(
            Method::PUT,
            &people,
            t,
            Some(json!({"data": {"sdp": "v=0\r\n"}})),
        )
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (StatusCode::CONFLICT, json!("conference_locked"))
    );
    api.call(
        Method::DELETE,
        &format!("{}/{id}", conferences(&a)),
        t,
        None,
    )
    .await;
    assert!(api
        .state
        .service
        .realtime(&tutti_conference::Conference {
            id: Uuid::parse_str(&id).unwrap(),
            account_id: Uuid::nil(),
            document: json!({}),
            state: Default::default(),
            revision: 0,
            created: 0,
            modified: 0,
        })
        .participants
        .is_empty());
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let api = Api::new();
    let a = api.account("a").await;
    api.call(Method::GET, &conferences(&a), Some(&a.token), None)
        .await;
    api.call(Method::GET, &conferences(&a), None, None).await;
    let (status, text) = api.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    for line in [
        "tutti_rooms 0",
        "tutti_participants 0",
        "tutti_tick_overruns_total 0",
        "# TYPE tutti_tick_duration_seconds histogram",
        "tutti_rtp_packets_total{direction=\"in\"} 0",
        "tutti_rtp_lost_packets_total 0",
        "# TYPE tutti_rtp_dropped_total counter",
        "tutti_rtp_dropped_total{reason=\"foreign_source\"} 0",
        "# TYPE tutti_audio_packets_total counter",
        "tutti_audio_packets_total{outcome=\"skipped\"} 0",
        "tutti_api_requests_total{route=\"/v2/accounts/{account_id}/conferences\",method=\"GET\",status=\"200\"} 1",
        "tutti_api_requests_total{route=\"/v2/accounts/{account_id}/conferences\",method=\"GET\",status=\"401\"} 1",
        "tutti_api_requests_total{route=\"/v2/api_auth\",method=\"PUT\",status=\"201\"} 1",
        "tutti_api_request_duration_seconds_count{route=\"/v2/accounts/{account_id}/conferences\",method=\"GET\"} 2",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let api = Api::new();
    let (status, document) = api.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.0.3");
    let routes = [
        ("put", "/v2/api_auth"),
        ("get", "/v2/accounts/{account_id}/conferences"),
        ("put", "/v2/accounts/{account_id}/conferences"),
        (
            "get",
            "/v2/accounts/{account_id}/conferences/{conference_id}",
        ),
        (
            "post",
            "/v2/accounts/{account_id}/conferences/{conference_id}",
        ),
        (
            "patch",
            "/v2/accounts/{account_id}/conferences/{conference_id}",
        ),
        (
            "delete",
            "/v2/accounts/{account_id}/conferences/{conference_id}",
        ),
        (
            "put",
            "/v2/accounts/{account_id}/conferences/{conference_id}",
        ),
        (
            "get",
            "/v2/accounts/{account_id}/conferences/{conference_id}/participants",
        ),
        (
            "put",
            "/v2/accounts/{account_id}/conferences/{conference_id}/participants",
        ),
        (
            "get",
            "/v2/accounts/{account_id}/conferences/{conference_id}/participants/{participant_id}",
        ),
        (
            "put",
            "/v2/accounts/{account_id}/conferences/{conference_id}/participants/{participant_id}",
        ),
        ("get", "/v2/websocket"),
        ("get", "/healthz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ];
    for (method, path) in routes {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    let documented: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| {
            p.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .count()
        })
        .sum();
    assert_eq!(
        documented,
        routes.len(),
        "the document lists a route the API does not serve"
    );
    // Every schema reference resolves.
    let text = document.to_string();
    for reference in text.split("#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            document["components"]["schemas"][name].is_object(),
            "dangling reference {name}"
        );
    }
}

#[tokio::test]
async fn members_wait_for_a_moderator_when_the_document_says_so() {
    let api = Api::new();
    let a = api.account("a").await;
    let t = Some(a.token.as_str());
    let document = json!({"data": {"name": "Webinar", "wait_for_moderator": true, "member": {"join_muted": false}}});
    let (_, body) = api
        .call(Method::PUT, &conferences(&a), t, Some(document))
        .await;
    let people = format!(
        "{}/{}/participants",
        conferences(&a),
        body["data"]["id"].as_str().unwrap()
    );
    let join = |moderator: bool| json!({"data": {"sdp": "v=0\r\n", "moderator": moderator}});
    let state = |list: &Value, id: &Value| {
        let p = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| &p["participant_id"] == id)
            .unwrap()
            .clone();
        (p["speak"].as_bool().unwrap(), p["hear"].as_bool().unwrap())
    };

    let (_, member) = api.call(Method::PUT, &people, t, Some(join(false))).await;
    let member_id = member["data"]["participant_id"].clone();
    assert_eq!(
        (
            member["data"]["speak"].clone(),
            member["data"]["hear"].clone()
        ),
        (json!(false), json!(false)),
        "held until a moderator comes"
    );

    let (_, moderator) = api.call(Method::PUT, &people, t, Some(join(true))).await;
    let (_, list) = api.call(Method::GET, &people, t, None).await;
    assert_eq!(
        state(&list, &member_id),
        (true, true),
        "released by the moderator"
    );

    let moderator_id = moderator["data"]["participant_id"].as_u64().unwrap();
    api.call(
        Method::PUT,
        &format!("{people}/{moderator_id}"),
        t,
        Some(json!({"data": {"action": "kick"}})),
    )
    .await;
    let (_, list) = api.call(Method::GET, &people, t, None).await;
    assert_eq!(
        state(&list, &member_id),
        (false, false),
        "held again when the last moderator leaves"
    );
}

#[tokio::test]
async fn the_record_action_starts_and_stops_a_recording() {
    let api = Api::new();
    let a = api.account("a").await;
    let t = Some(a.token.as_str());
    let (_, body) = api
        .call(
            Method::PUT,
            &conferences(&a),
            t,
            Some(json!({"data": {"name": "Rec"}})),
        )
        .await;
    let one = format!(
        "{}/{}",
        conferences(&a),
        body["data"]["id"].as_str().unwrap()
    );
    // Nobody is in the conference: nothing to record, and no room is started for it.
    let (status, refused) = api
        .call(
            Method::PUT,
            &one,
            t,
            Some(json!({"action": "record", "data": {"action": "start"}})),
        )
        .await;
    assert_eq!(
        (status, refused["message"].clone()),
        (StatusCode::CONFLICT, json!("conference_not_active"))
    );
    api.call(
        Method::PUT,
        &format!("{one}/participants"),
        t,
        Some(json!({"data": {"sdp": "v=0\r\n"}})),
    )
    .await;
    let (status, started) = api
        .call(
            Method::PUT,
            &one,
            t,
            Some(json!({"action": "record", "data": {"action": "start"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The recording by id and file name; never where the server keeps it.
    let recording = started["data"]["recording_id"].as_str().unwrap();
    assert_eq!(recording.len(), 32);
    assert_eq!(started["data"]["file"], json!(format!("{recording}.wav")));
    assert!(!started.to_string().contains("memory://"), "{started}");
    let (status, stopped) = api
        .call(
            Method::PUT,
            &one,
            t,
            Some(json!({"action": "record", "data": {"action": "stop"}})),
        )
        .await;
    assert_eq!(
        (status, stopped["data"]["record"].clone()),
        (StatusCode::ACCEPTED, json!("stop"))
    );
    let (status, _) = api
        .call(
            Method::PUT,
            &one,
            t,
            Some(json!({"action": "record", "data": {"action": "pause"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .call(
            Method::PUT,
            &one,
            t,
            Some(json!({"data": {"action": "dial"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
}
