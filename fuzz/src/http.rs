//! The HTTP targets' harness: the real router over an in-memory SQLite store and
//! [`MemoryMedia`], one request per input on a current-thread tokio runtime made once per
//! process.
//!
//! An input is `[endpoint, flags, body…]`. `endpoint` picks a route of the face (method and
//! path); `flags` pick which conference the path names (bits 0–1: the fixture, the one the last
//! successful create made, an unknown UUID, or no UUID at all), the content type (bits 2–3:
//! JSON, form, none, text/plain), the participant (bit 4: the fixture's or an unknown one) and
//! whether the request carries the token (bit 5 clear) or none. In the body, `$ACCOUNT`,
//! `$CONFERENCE`, `$CALL`, `$API_KEY` and `$TOKEN` become the fixture's, so seeds can refer to
//! real things.
//!
//! The fixture (an account, its API key and token, a conference with one participant joined)
//! is made anew every [`RESET_EVERY`] inputs, after ending every room of the previous one, so
//! the database stays small and what one input changed reaches only a few later ones.
//!
//! The property: the answer is a 2xx or a 4xx (a 5xx only for Kazoo's documented
//! `501 not_implemented`), a JSON body in the face's shape (success or error), and nothing
//! panics anywhere (libFuzzer aborts on a panic in any thread, the blocking pool included).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tutti_api::{router, AppState};
use tutti_conference::{ConferenceService, JoinRequest};
use tutti_store::SqliteStore;
use uuid::Uuid;

use crate::media::MemoryMedia;

/// Inputs served by one fixture.
pub const RESET_EVERY: u32 = 256;

/// An SDP offer every negotiation accepts (PCMU), for the fixture's participant.
pub const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// One of the three API faces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// `/v2/accounts/…`, Kazoo's envelopes.
    Kazoo,
    /// `/v1.0/…`, VoIPbin's bare JSON.
    Voipbin,
    /// `/v2/auth`, `/v2/conferences`, FoneStorm's JSON and forms.
    Fonestorm,
}

/// A route: method, path with `{account}`, `{conference}`, `{participant}`, `{call}`, and
/// whether a success answer names a new conference.
type Route = (Method, &'static str, bool);

fn routes(face: Face) -> Vec<Route> {
    let (get, put, post, patch, delete) = (
        Method::GET,
        Method::PUT,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
    );
    match face {
        Face::Kazoo => vec![
            (put.clone(), "/v2/api_auth", false),
            (put.clone(), "/v2/accounts/{account}/conferences", true),
            (
                post,
                "/v2/accounts/{account}/conferences/{conference}",
                false,
            ),
            (
                patch,
                "/v2/accounts/{account}/conferences/{conference}",
                false,
            ),
            (
                put.clone(),
                "/v2/accounts/{account}/conferences/{conference}",
                false,
            ),
            (
                put.clone(),
                "/v2/accounts/{account}/conferences/{conference}/participants",
                false,
            ),
            (
                put,
                "/v2/accounts/{account}/conferences/{conference}/participants/{participant}",
                false,
            ),
            (
                delete,
                "/v2/accounts/{account}/conferences/{conference}",
                false,
            ),
            (
                get.clone(),
                "/v2/accounts/{account}/conferences/{conference}",
                false,
            ),
            (
                get,
                "/v2/accounts/{account}/conferences/{conference}/participants",
                false,
            ),
        ],
        Face::Voipbin => vec![
            (post.clone(), "/v1.0/conferences", true),
            (put.clone(), "/v1.0/conferences/{conference}", false),
            (delete.clone(), "/v1.0/conferences/{conference}", false),
            (
                post.clone(),
                "/v1.0/conferences/{conference}/recording_start",
                false,
            ),
            (
                post.clone(),
                "/v1.0/conferences/{conference}/recording_stop",
                false,
            ),
            (post, "/v1.0/conferencecalls", false),
            (delete, "/v1.0/conferencecalls/{call}", false),
            (put, "/v1.0/customer", false),
            (get.clone(), "/v1.0/conferences/{conference}", false),
            (
                get,
                "/v1.0/conferencecalls?conference_id={conference}",
                false,
            ),
        ],
        Face::Fonestorm => vec![
            (post.clone(), "/v2/auth", false),
            (post, "/v2/conferences", true),
            (put, "/v2/conferences/{conference}", false),
            (delete, "/v2/conferences/{conference}", false),
            (get.clone(), "/v2/conferences/{conference}", false),
            (get, "/v2/conferences", false),
        ],
    }
}

/// What every input of one fixture shares.
struct Fixture {
    state: AppState,
    router: Router,
    account: Uuid,
    api_key: String,
    token: String,
    conference: Uuid,
    participant: u32,
    call: Uuid,
    /// The conference the last successful create made.
    latest: Option<String>,
}

impl Fixture {
    fn new() -> Self {
        let store = Arc::new(SqliteStore::in_memory().expect("an in-memory database"));
        let service = ConferenceService::new(
            store,
            Arc::new(MemoryMedia::default()),
            Duration::from_secs(3600),
        );
        let account = service.create_account("fuzz").expect("an account");
        let token = service
            .authenticate(&account.api_key)
            .expect("a token")
            .token;
        let conference = service
            .create_conference(
                account.id,
                &json!({"name": "fuzz", "member": {"join_muted": false}}),
            )
            .expect("a conference");
        let (participant, _) = service
            .join(
                account.id,
                &conference.id.to_string(),
                &JoinRequest {
                    offer: OFFER.into(),
                    moderator: false,
                    caller_id_name: Some("fuzz".into()),
                    caller_id_number: None,
                    latching: Some(false),
                    pin: None,
                    ..JoinRequest::default()
                },
            )
            .expect("a participant");
        let state = AppState::new(service, "tutti@fuzz");
        Self {
            router: router(state.clone()),
            state,
            account: account.id,
            api_key: account.api_key,
            token,
            conference: conference.id,
            participant: participant.state.participant_id,
            call: participant.call_id,
            latest: None,
        }
    }

    fn conference_segment(&self, choice: u8) -> String {
        match choice & 3 {
            0 => self.conference.to_string(),
            1 => self
                .latest
                .clone()
                .unwrap_or_else(|| self.conference.simple().to_string()),
            2 => Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef).to_string(),
            _ => "not-a-conference".into(),
        }
    }

    fn substitute(&self, body: &[u8]) -> Vec<u8> {
        if !body.contains(&b'$') {
            return body.to_vec();
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return body.to_vec();
        };
        text.replace("$ACCOUNT", &self.account.simple().to_string())
            .replace("$CONFERENCE", &self.conference.to_string())
            .replace("$CALL", &self.call.to_string())
            .replace("$API_KEY", &self.api_key)
            .replace("$TOKEN", &self.token)
            .into_bytes()
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    fixture: Option<Fixture>,
    served: u32,
    /// `TUTTI_FUZZ_TRACE` set: each request and its answer go to stderr.
    trace: bool,
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

/// Sends the request `data` describes to `face` and checks the answer.
pub fn run(face: Face, data: &[u8]) {
    let [endpoint, flags, body @ ..] = data else {
        return;
    };
    HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let harness = cell.get_or_insert_with(|| Harness {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime"),
            fixture: None,
            served: 0,
            trace: std::env::var_os("TUTTI_FUZZ_TRACE").is_some(),
        });
        let _context = harness.runtime.enter();
        if harness.served % RESET_EVERY == 0 {
            if let Some(old) = harness.fixture.take() {
                old.state.service.end_all_rooms();
            }
        }
        harness.served = harness.served.wrapping_add(1);
        let fixture = harness.fixture.get_or_insert_with(Fixture::new);
        let routes = routes(face);
        let (method, path, creates) = routes[usize::from(*endpoint) % routes.len()].clone();
        let deletes = method == Method::DELETE;
        let uri = path
            .replace("{account}", &fixture.account.simple().to_string())
            .replace("{conference}", &fixture.conference_segment(*flags))
            .replace(
                "{participant}",
                &if flags & 0x10 == 0 {
                    fixture.participant
                } else {
                    999
                }
                .to_string(),
            )
            .replace("{call}", &fixture.call.to_string());
        if harness.trace {
            eprintln!(
                "> {method} {uri} flags={flags:#04x} {}",
                String::from_utf8_lossy(body)
            );
        }
        let mut request = Request::builder().method(method).uri(uri);
        request = match (flags >> 2) & 3 {
            0 => request.header("content-type", "application/json"),
            1 => request.header("content-type", "application/x-www-form-urlencoded"),
            2 => request,
            _ => request.header("content-type", "text/plain"),
        };
        if flags & 0x20 == 0 {
            request = match face {
                Face::Kazoo => request.header("x-auth-token", &fixture.token),
                Face::Voipbin => {
                    request.header("authorization", format!("Bearer {}", fixture.token))
                }
                Face::Fonestorm => request.header("token", &fixture.token),
            };
        }
        let request = request
            .body(Body::from(fixture.substitute(body)))
            .expect("a request from a known route");
        let service = fixture.router.clone();
        let (status, bytes) = harness.runtime.block_on(async move {
            let response = service
                .oneshot(request)
                .await
                .expect("axum routers never fail");
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .expect("a body in memory")
                .to_bytes();
            (status, bytes)
        });
        if harness.trace {
            eprintln!("< {status} {}", String::from_utf8_lossy(&bytes));
        }
        let answer = check(face, status, &bytes);
        if deletes && status.is_success() {
            // The fixture may be gone: the next input gets a new one.
            harness.served = 0;
        }
        if creates && status.is_success() {
            let id = match face {
                Face::Kazoo => &answer["data"]["id"],
                Face::Voipbin => &answer["id"],
                Face::Fonestorm => &answer["conference"]["id"],
            };
            fixture.latest = id.as_str().map(str::to_owned);
        }
    });
}

/// The answer's JSON, after checking its status and shape.
fn check(face: Face, status: StatusCode, bytes: &[u8]) -> Value {
    let text = String::from_utf8_lossy(bytes);
    let answer: Value = if bytes.is_empty() && status == StatusCode::NO_CONTENT {
        Value::Null
    } else {
        serde_json::from_slice(bytes).unwrap_or_else(|e| {
            panic!("{face:?} answered {status} with a body that is not JSON ({e}): {text}")
        })
    };
    let documented_501 = face == Face::Kazoo
        && status == StatusCode::NOT_IMPLEMENTED
        && answer["message"] == "not_implemented";
    assert!(
        status.is_success() || status.is_client_error() || documented_501,
        "{face:?} answered {status}: {text}"
    );
    let is_text = |v: &Value| v.is_string();
    if status.is_success() {
        if face == Face::Kazoo {
            assert_eq!(answer["status"], "success", "Kazoo success shape: {text}");
        }
        return answer;
    }
    let shaped = match face {
        Face::Kazoo => {
            answer["status"] == "error"
                && answer["error"].as_str() == Some(status.as_str())
                && is_text(&answer["message"])
                && answer["data"].is_object()
                && is_text(&answer["request_id"])
        }
        Face::Voipbin => {
            let error = &answer["error"];
            is_text(&error["status"])
                && is_text(&error["reason"])
                && is_text(&error["message"])
                && is_text(&error["request_id"])
        }
        Face::Fonestorm => {
            is_text(&answer["error"])
                && is_text(&answer["message"])
                && answer["status_code"] == status.as_u16()
        }
    };
    assert!(shaped, "{face:?} error shape of {status}: {text}");
    answer
}
