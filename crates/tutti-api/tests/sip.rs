//! tutti's SIP extensions at the router level (no socket): the SIP directory in each face,
//! VoIPbin's conference numbers and PINs, and dial-out (Kazoo's `dial`, VoIPbin's `dial`).

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tutti_api::{router, AppState};
use tutti_conference::{CallState, ConferenceService, DialRequest, Dialer, IncomingCall};
use uuid::Uuid;

struct Api {
    state: AppState,
}

#[derive(Clone)]
struct Account {
    id: Uuid,
    token: String,
}

/// Which face a request is for: how it carries the token.
#[derive(Clone, Copy)]
enum Face {
    Kazoo,
    Voipbin,
    FoneStorm,
}

impl Api {
    fn new() -> Self {
        Api {
            state: AppState::new(common::memory_service(), "tutti@test"),
        }
    }

    fn service(&self) -> &ConferenceService {
        &self.state.service
    }

    fn account(&self, name: &str) -> Account {
        let created = self.service().create_account(name).unwrap();
        let session = self.service().authenticate(&created.api_key).unwrap();
        Account {
            id: created.id,
            token: session.token,
        }
    }

    async fn call(
        &self,
        face: Face,
        method: Method,
        uri: &str,
        account: &Account,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (name, value) = match face {
            Face::Kazoo => ("x-auth-token", account.token.clone()),
            Face::Voipbin => ("authorization", format!("Bearer {}", account.token)),
            Face::FoneStorm => ("token", account.token.clone()),
        };
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header(name, value)
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, json)
    }
}

fn kazoo_sip(account: &Account) -> String {
    format!("/v2/accounts/{}/sip", account.id.simple())
}

#[tokio::test]
async fn each_face_replaces_and_shows_the_sip_directory_without_secrets_or_other_accounts() {
    let api = Api::new();
    let a = api.account("a");
    let b = api.account("b");
    let room = api.service().create_conference(a.id, &json!({})).unwrap();
    let (status, body) = api
        .call(
            Face::Kazoo,
            Method::PUT,
            &kazoo_sip(&a),
            &a,
            Some(json!({"data": {
                "numbers": [{"number": "+15551230000"}, {"number": "1000", "conference_id": room.id.simple().to_string()}],
                "credentials": [{"username": "alice", "password": "correct horse"}],
            }})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success");
    let kazoo = json!({
        "numbers": [{"number": "+15551230000", "conference_id": null}, {"number": "1000", "conference_id": room.id.simple().to_string()}],
        "credentials": [{"username": "alice", "realm": "tutti"}],
    });
    assert_eq!(body["data"], kazoo);
    assert!(!body.to_string().contains("correct horse"));
    let (status, body) = api
        .call(Face::Kazoo, Method::GET, &kazoo_sip(&a), &a, None)
        .await;
    assert_eq!((status, &body["data"]), (StatusCode::OK, &kazoo));
    // VoIPbin and FoneStorm show the same, with hyphenated ids.
    let mut hyphenated = kazoo.clone();
    hyphenated["numbers"][1]["conference_id"] = json!(room.id.to_string());
    let (status, body) = api
        .call(Face::Voipbin, Method::GET, "/v1.0/sip", &a, None)
        .await;
    assert_eq!((status, &body), (StatusCode::OK, &hyphenated));
    let (status, body) = api
        .call(Face::FoneStorm, Method::GET, "/v2/sip", &a, None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"sip": hyphenated})));
    // The SIP layer gets the digest secrets; nobody else does.
    assert_eq!(
        api.service()
            .sip_credential("alice")
            .unwrap()
            .unwrap()
            .account,
        a.id
    );
    // Another account sees nothing of a's and cannot take its number or username.
    let (status, body) = api
        .call(Face::Voipbin, Method::GET, "/v1.0/sip", &b, None)
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"numbers": [], "credentials": []}))
    );
    let (status, body) = api
        .call(
            Face::Voipbin,
            Method::PUT,
            "/v1.0/sip",
            &b,
            Some(json!({"numbers": [{"number": "1000"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        body["error"]["message"],
        "numbers.0.number: Number 1000 is already in use"
    );
    assert!(!body.to_string().contains(&a.id.simple().to_string()));
    let (status, body) = api
        .call(
            Face::FoneStorm,
            Method::PUT,
            "/v2/sip",
            &b,
            Some(json!({"credentials": [{"username": "alice", "password": "12345678"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "validation_error");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("credentials.0.username"),
        "{body}"
    );
    let (status, body) = api
        .call(Face::Kazoo, Method::PUT, &kazoo_sip(&b), &b, Some(json!({"data": {"numbers": [{"number": "12a"}], "credentials": [{"username": "bob", "password": "short"}]}})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["message"], "validation error");
    assert!(
        body["data"]["numbers"]["0"]["number"]["pattern"].is_object(),
        "{body}"
    );
    assert!(
        body["data"]["credentials"]["0"]["password"]["minLength"].is_object(),
        "{body}"
    );
    // Kazoo's path names the account: another one's is not found.
    let (status, _) = api
        .call(Face::Kazoo, Method::GET, &kazoo_sip(&a), &b, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn voipbin_conferences_take_numbers_and_pins_where_the_kazoo_face_keeps_them() {
    let api = Api::new();
    let a = api.account("a");
    let (status, created) = api
        .call(
            Face::Voipbin,
            Method::POST,
            "/v1.0/conferences",
            &a,
            Some(json!({"name": "board", "conference_numbers": ["3000"], "pins": {"member": ["1234"], "moderator": ["9876"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["conference_numbers"], json!(["3000"]));
    assert_eq!(
        created["pins"],
        json!({"member": ["1234"], "moderator": ["9876"]})
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let kazoo_uri = format!("/v2/accounts/{}/conferences/{id}", a.id.simple());
    let (_, kazoo) = api
        .call(Face::Kazoo, Method::GET, &kazoo_uri, &a, None)
        .await;
    assert_eq!(kazoo["data"]["conference_numbers"], json!(["3000"]));
    assert_eq!(kazoo["data"]["member"]["pins"], json!(["1234"]));
    assert_eq!(kazoo["data"]["moderator"]["pins"], json!(["9876"]));
    assert_eq!(
        kazoo["data"]["member"]["join_muted"],
        json!(false),
        "VoIPbin's callers speak"
    );
    // A call to the number is routed to it (into its lobby: it has PINs).
    let call = api
        .service()
        .answer_call(IncomingCall {
            account: a.id,
            dialed: "3000".into(),
            offer: Some("v=0".into()),
            ..IncomingCall::default()
        })
        .unwrap();
    assert_eq!(*call.state().borrow(), CallState::Lobby);
    call.hang_up();
    // PUT replaces: no pins given, none left.
    let uri = format!("/v1.0/conferences/{id}");
    let (status, replaced) = api
        .call(
            Face::Voipbin,
            Method::PUT,
            &uri,
            &a,
            Some(json!({"name": "board", "pins": {"moderator": ["5555"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(
        replaced["pins"],
        json!({"member": [], "moderator": ["5555"]})
    );
    assert_eq!(replaced["conference_numbers"], json!([]));
    for bad in [
        json!({"pins": ["1234"]}),
        json!({"pins": {"guest": ["1"]}}),
        json!({"pins": {"member": ["12a"]}}),
        json!({"conference_numbers": "3000"}),
    ] {
        let (status, body) = api
            .call(Face::Voipbin, Method::PUT, &uri, &a, Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} → {body}");
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{body}");
    }
}

#[derive(Default)]
struct Calls(Mutex<Vec<DialRequest>>);

impl Dialer for Calls {
    fn dial(&self, request: DialRequest) {
        self.0.lock().unwrap().push(request);
    }
    fn cancel(&self, call_id: Uuid) {
        self.0.lock().unwrap().retain(|r| r.call_id != call_id);
    }
}

#[tokio::test]
async fn kazoo_dial_validates_its_endpoints_and_rings_sip_uris() {
    let api = Api::new();
    let a = api.account("a");
    let room = api.service().create_conference(a.id, &json!({})).unwrap();
    let uri = format!(
        "/v2/accounts/{}/conferences/{}",
        a.id.simple(),
        room.id.simple()
    );
    let dial = |data: Value| Some(json!({"action": "dial", "data": {"data": data}}));
    let good = json!({"endpoints": ["sip:bob@example.org", {"endpoint_type": "sip", "route": "sips:carol@example.org"}],
                      "caller_id_name": "Board", "caller_id_number": "100", "participant_flags": ["mute"], "timeout": 20});
    let (status, body) = api
        .call(Face::Kazoo, Method::PUT, &uri, &a, dial(good.clone()))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_IMPLEMENTED,
        "no SIP, no dial-out: {body}"
    );
    let calls = Arc::new(Calls::default());
    api.service().set_dialer(calls.clone());
    let (status, body) = api
        .call(Face::Kazoo, Method::PUT, &uri, &a, dial(json!({"endpoints": ["sip:ok@example.org", "tel:+15551230000", {"endpoint_type": "device", "route": "x"}], "timeout": 0})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["data"]["endpoints"]["1"]["format"]["message"]
            .as_str()
            .unwrap()
            .contains("not a sip: or sips: URI"),
        "{body}"
    );
    assert!(
        body["data"]["endpoints"]["2"]["format"].is_object(),
        "{body}"
    );
    assert!(body["data"]["timeout"]["format"].is_object(), "{body}");
    let (status, body) = api
        .call(Face::Kazoo, Method::PUT, &uri, &a, dial(good))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let responses = body["data"]["endpoint_responses"]
        .as_array()
        .unwrap()
        .clone();
    let requests = calls.0.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    for (response, request) in responses.iter().zip(&requests) {
        assert_eq!(
            response["call_id"],
            json!(request.call_id.simple().to_string())
        );
        assert_eq!(response["status"], "success");
        assert_eq!(response["endpoint_id"], json!(request.target));
        assert_eq!(
            (
                request.caller_id_name.as_deref(),
                request.caller_id_number.as_deref()
            ),
            (Some("Board"), Some("100"))
        );
        assert_eq!(request.timeout, std::time::Duration::from_secs(20));
    }
    assert_eq!(requests[1].target, "sips:carol@example.org");
    // Ringing calls are visible; a failure is recorded with its SIP status.
    let call_uri = format!("/v1.0/conferencecalls/{}", requests[0].call_id);
    let (_, ringing) = api
        .call(Face::Voipbin, Method::GET, &call_uri, &a, None)
        .await;
    assert_eq!(ringing["status"], "dialing", "{ringing}");
    api.service()
        .dial_failed(requests[0].call_id, 486, "Busy Here");
    let (_, failed) = api
        .call(Face::Voipbin, Method::GET, &call_uri, &a, None)
        .await;
    assert_eq!(
        (&failed["status"], &failed["hangup_reason"]),
        (&json!("leaved"), &json!("SIP 486 Busy Here"))
    );
}

#[tokio::test]
async fn voipbin_dial_adds_a_sip_endpoint_as_a_dialing_conferencecall() {
    let api = Api::new();
    let a = api.account("a");
    let b = api.account("b");
    let room = api.service().create_conference(a.id, &json!({})).unwrap();
    let uri = format!("/v1.0/conferences/{}/dial", room.id);
    let body = json!({"destination": "sip:bob@example.org"});
    let (status, _) = api
        .call(Face::Voipbin, Method::POST, &uri, &a, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    let calls = Arc::new(Calls::default());
    api.service().set_dialer(calls.clone());
    let (status, answer) = api
        .call(
            Face::Voipbin,
            Method::POST,
            &uri,
            &a,
            Some(json!({"destination": "http://example.org/"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("destination:"),
        "{answer}"
    );
    let (status, _) = api
        .call(Face::Voipbin, Method::POST, &uri, &b, Some(body.clone()))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another customer's conference"
    );
    let (status, call) = api
        .call(Face::Voipbin, Method::POST, &uri, &a, Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{call}");
    assert_eq!(call["status"], "dialing");
    assert_eq!(call["conference_id"], json!(room.id.to_string()));
    assert_eq!(
        call["id"],
        json!(calls.0.lock().unwrap()[0].call_id.to_string())
    );
    let (_, listed) = api
        .call(
            Face::Voipbin,
            Method::GET,
            &format!("/v1.0/conferencecalls?conference_id={}", room.id),
            &a,
            None,
        )
        .await;
    assert_eq!(listed["result"][0]["status"], "dialing", "{listed}");
}
