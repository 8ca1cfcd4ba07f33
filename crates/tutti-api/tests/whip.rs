//! WHIP and WHEP at the router level (no socket): joins with a token or a PIN, exact status
//! codes, media types and headers (Location, Link, CORS), trickle ICE, leaving, mute, account
//! isolation; the session's events websocket over a real socket; the join page and its
//! assets; and WebRTC offers through the Kazoo and VoIPbin faces.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use common::{webrtc_answer, webrtc_offer, MemoryMedia};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;
use tutti_api::{router, AppState, LoginLimit};
use tutti_conference::{
    ConferenceService, JoinRequest, MediaEvent, MediaEventKind, ParticipantAction, WebCredential,
    WebKind,
};
use tutti_store::SqliteStore;
use uuid::Uuid;

struct Api {
    state: AppState,
    media: Arc<MemoryMedia>,
}

/// An account, its token and one conference with member PIN 1111 and moderator PIN 9999.
struct Room {
    account: Uuid,
    token: String,
    id: String,
    pin: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

impl Api {
    fn new() -> Self {
        Self::with_state(|state| state)
    }

    fn with_state(change: impl FnOnce(AppState) -> AppState) -> Self {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let media = Arc::new(MemoryMedia::default());
        let service = ConferenceService::new(store, media.clone(), Duration::from_secs(3600));
        Api {
            state: change(AppState::new(service, "tutti@test")),
            media,
        }
    }

    fn service(&self) -> &ConferenceService {
        &self.state.service
    }

    fn room(&self, document: Value) -> Room {
        let created = self.service().create_account("acme").unwrap();
        let token = self.service().authenticate(&created.api_key).unwrap().token;
        let conference = self
            .service()
            .create_conference(created.id, &document)
            .unwrap();
        Room {
            account: created.id,
            token,
            id: conference.id.simple().to_string(),
            pin: conference.state.pin.unwrap(),
        }
    }

    fn standard_room(&self) -> Room {
        self.room(json!({
            "member": {"pins": ["1111"], "join_muted": false},
            "moderator": {"pins": ["9999"]}
        }))
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn request(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<String>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(body.into())).unwrap())
            .await
    }

    /// `POST /{kind}/{id}` with `offer` and `Bearer {bearer}`.
    async fn post_offer(&self, path: &str, bearer: &str, offer: &str) -> Answer {
        let authorization = format!("Bearer {bearer}");
        self.request(
            Method::POST,
            path,
            &[
                ("content-type", "application/sdp"),
                ("authorization", &authorization),
            ],
            offer,
        )
        .await
    }

    /// Joins over WHIP with a `sendrecv` offer; returns the session's path.
    async fn whip(&self, room: &Room, bearer: &str) -> String {
        let answer = self
            .post_offer(
                &format!("/whip/{}", room.id),
                bearer,
                &webrtc_offer("sendrecv"),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.header("location").to_owned()
    }

    /// The conference's participants as the Kazoo face lists them.
    async fn kazoo_participants(&self, room: &Room) -> Vec<Value> {
        let answer = self
            .request(
                Method::GET,
                &format!(
                    "/v2/accounts/{}/conferences/{}/participants",
                    room.account.simple(),
                    room.id
                ),
                &[("x-auth-token", &room.token)],
                "",
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.json()["data"].as_array().unwrap().clone()
    }
}

fn assert_text_error(answer: &Answer, status: StatusCode, text: &str) {
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (status, text),
        "{:?}",
        answer.headers
    );
    assert_eq!(answer.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(answer.header("access-control-allow-origin"), "*");
}

#[tokio::test]
async fn whip_answers_201_with_the_sdp_answer_and_the_session_location() {
    let api = Api::new();
    let room = api.standard_room();
    let offer = webrtc_offer("sendrecv");
    let answer = api
        .request(
            Method::POST,
            &format!("/whip/{}?name=Ann%20B", room.id),
            &[
                ("content-type", "application/sdp"),
                ("authorization", &format!("Bearer {}", room.token)),
            ],
            offer.clone(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.header("content-type"), "application/sdp");
    assert_eq!(answer.body, webrtc_answer(&offer));
    assert!(
        answer.body.contains("a=sendrecv"),
        "sendrecv is answered sendrecv"
    );
    let location = answer.header("location");
    let session = location
        .strip_prefix(&format!("/whip/{}/sessions/", room.id))
        .unwrap_or_else(|| panic!("Location {location}"));
    assert_eq!(session.len(), 32);
    assert!(session.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        answer.header("link"),
        "<stun:stun.example.net:3478>; rel=\"ice-server\""
    );
    assert_eq!(answer.header("access-control-allow-origin"), "*");
    assert_eq!(
        answer.header("access-control-expose-headers"),
        "Location, Link, ETag"
    );

    // An ordinary participant in every face, named by ?name= or the header.
    api.request(
        Method::POST,
        &format!("/whip/{}", room.id),
        &[
            ("content-type", "application/sdp; charset=utf-8"),
            ("authorization", &format!("bearer {}", room.token)),
            ("x-tutti-caller-name", "Bob"),
        ],
        offer,
    )
    .await;
    let participants = api.kazoo_participants(&room).await;
    let names: Vec<&Value> = participants.iter().map(|p| &p["caller_id_name"]).collect();
    assert_eq!(names, [&json!("Ann B"), &json!("Bob")]);
    assert_eq!(participants[0]["speak"], json!(true));
    assert_eq!(participants[0]["is_moderator"], json!(false));

    // Each join has its own session.
    let again = api.whip(&room, &room.token).await;
    assert_ne!(again, location);
}

#[tokio::test]
async fn whep_joins_listen_only_at_a_whep_location() {
    let api = Api::new();
    let room = api.standard_room();
    let offer = webrtc_offer("recvonly");
    let answer = api
        .post_offer(&format!("/whep/{}", room.id), "1111", &offer)
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.header("content-type"), "application/sdp");
    assert!(answer.body.contains("a=sendonly"));
    assert!(answer
        .header("location")
        .starts_with(&format!("/whep/{}/sessions/", room.id)));
    let participants = api.kazoo_participants(&room).await;
    assert_eq!(participants.len(), 1);
    assert_eq!(participants[0]["speak"], json!(false), "WHEP listens only");
}

#[tokio::test]
async fn refusals_have_exact_statuses_and_name_the_problem() {
    let api = Api::new();
    let room = api.standard_room();
    let path = format!("/whip/{}", room.id);
    let offer = webrtc_offer("sendrecv");

    let answer = api
        .request(
            Method::POST,
            &path,
            &[("content-type", "application/sdp")],
            offer.clone(),
        )
        .await;
    assert_text_error(
        &answer,
        StatusCode::UNAUTHORIZED,
        "credentials required: Authorization: Bearer <token or PIN>",
    );
    assert_eq!(answer.header("www-authenticate"), "Bearer");
    assert_text_error(
        &api.post_offer(&path, "not-a-token", &offer).await,
        StatusCode::UNAUTHORIZED,
        "invalid credentials: the token is unknown or expired",
    );
    let wrong_type = api
        .request(
            Method::POST,
            &path,
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {}", room.token)),
            ],
            offer.clone(),
        )
        .await;
    assert_text_error(
        &wrong_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "the body must be application/sdp (Content-Type was \"application/json\")",
    );
    assert_text_error(
        &api.post_offer(&path, &room.token, "").await,
        StatusCode::BAD_REQUEST,
        "the SDP offer is empty",
    );
    assert_text_error(
        &api.post_offer(&path, &room.token, "v=0\r\nm=audio 4000 RTP/AVP 0\r\n")
            .await,
        StatusCode::BAD_REQUEST,
        "the offer is not a WebRTC offer: it needs an m=audio line with UDP/TLS/RTP/SAVPF",
    );
    assert_text_error(
        &api.post_offer(
            &path,
            &room.token,
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "the WebRTC offer has no DTLS fingerprint",
    );

    // Unknown conferences and other accounts' look the same to a token.
    let unknown = Uuid::now_v7().simple().to_string();
    assert_text_error(
        &api.post_offer(&format!("/whip/{unknown}"), &room.token, &offer)
            .await,
        StatusCode::NOT_FOUND,
        &format!("no conference {unknown}"),
    );
    let other = api.standard_room();
    assert_text_error(
        &api.post_offer(&path, &other.token, &offer).await,
        StatusCode::NOT_FOUND,
        &format!("no conference {}", room.id),
    );

    // A wrong PIN, or a PIN for an id that does not exist, says only that.
    let wrong_pin = "the PIN does not match this conference";
    assert_text_error(
        &api.post_offer(&path, "0000", &offer).await,
        StatusCode::FORBIDDEN,
        wrong_pin,
    );
    assert_text_error(
        &api.post_offer(&format!("/whip/{unknown}"), "1111", &offer)
            .await,
        StatusCode::FORBIDDEN,
        wrong_pin,
    );
    assert_text_error(
        &api.post_offer(&path, &other.pin, &offer).await,
        StatusCode::FORBIDDEN,
        wrong_pin,
    );

    // Full and locked.
    let small = api.room(json!({"max_participants": 1, "member": {"pins": ["1111"]}}));
    api.whip(&small, "1111").await;
    assert_text_error(
        &api.post_offer(&format!("/whip/{}", small.id), "1111", &offer)
            .await,
        StatusCode::CONFLICT,
        "the conference is full (1 participants)",
    );
    let conference = api.service().conference(room.account, &room.id).unwrap();
    api.service().set_locked(&conference, true).unwrap();
    assert_text_error(
        &api.post_offer(&path, &room.token, &offer).await,
        StatusCode::LOCKED,
        "the conference is locked",
    );
}

#[tokio::test]
async fn pins_set_the_role_and_failed_pins_are_limited_per_address() {
    let api = Api::with_state(|state| {
        state.with_login_limit(LoginLimit {
            failures: 2,
            per: Duration::from_secs(600),
            max_addresses: 10,
        })
    });
    let room = api.standard_room();
    api.whip(&room, "1111").await;
    api.whip(&room, "9999").await;
    api.whip(&room, &room.pin).await;
    let moderators: Vec<Value> = api
        .kazoo_participants(&room)
        .await
        .iter()
        .map(|p| p["is_moderator"].clone())
        .collect();
    assert_eq!(
        moderators,
        [json!(false), json!(true), json!(false)],
        "member PIN, moderator PIN, generated PIN"
    );

    // Two wrong PINs fill the bucket: then even the right one waits.
    let path = format!("/whip/{}", room.id);
    let offer = webrtc_offer("sendrecv");
    for _ in 0..2 {
        assert_eq!(
            api.post_offer(&path, "0000", &offer).await.status,
            StatusCode::FORBIDDEN
        );
    }
    let limited = api.post_offer(&path, "1111", &offer).await;
    assert_text_error(
        &limited,
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed PINs from this address: try again later",
    );
    assert!(limited.header("retry-after").parse::<u64>().unwrap() >= 1);
    // Tokens are not PINs: they still join.
    assert_eq!(
        api.post_offer(&path, &room.token, &offer).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn patch_trickles_candidates_and_restarts_ice() {
    let api = Api::new();
    let room = api.standard_room();
    let session = api.whip(&room, &room.token).await;
    let sdpfrag = |body: &str| {
        (
            [("content-type", "application/trickle-ice-sdpfrag")],
            body.to_owned(),
        )
    };
    let (headers, body) = sdpfrag("a=candidate:1 1 udp 2122260223 192.0.2.7 54400 typ host\r\n");
    let trickle = api
        .request(Method::PATCH, &session, &headers, body.clone())
        .await;
    assert_eq!(trickle.status, StatusCode::NO_CONTENT, "{}", trickle.body);
    assert_eq!(trickle.body, "");
    assert_eq!(trickle.header("access-control-allow-origin"), "*");
    let participant = api.kazoo_participants(&room).await[0]["participant_id"]
        .as_u64()
        .unwrap() as u32;
    let conference = Uuid::parse_str(&room.id).unwrap();
    assert_eq!(
        *api.media.patches.lock().unwrap(),
        [(conference, participant, body)]
    );

    let (headers, body) = sdpfrag("a=ice-ufrag:new1\r\na=ice-pwd:newpasswordnewpasswordnew\r\n");
    let restart = api.request(Method::PATCH, &session, &headers, body).await;
    assert_eq!(restart.status, StatusCode::OK);
    assert_eq!(
        restart.header("content-type"),
        "application/trickle-ice-sdpfrag"
    );
    assert_eq!(
        restart.body,
        "a=ice-ufrag:srv2\r\na=ice-pwd:restartedpasswordrestarted\r\n"
    );

    let wrong_type = api
        .request(
            Method::PATCH,
            &session,
            &[("content-type", "application/sdp")],
            "a=candidate:x",
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The session id is the capability: another id, another kind or another conference in
    // the path is no session.
    let no_session = "no such session (it ended, or never existed)";
    let (headers, body) = sdpfrag("a=candidate:x");
    for path in [
        format!("/whip/{}/sessions/{}", room.id, Uuid::new_v4().simple()),
        session.replacen("/whip/", "/whep/", 1),
        session.replace(&room.id, &Uuid::now_v7().simple().to_string()),
    ] {
        let answer = api
            .request(Method::PATCH, &path, &headers, body.clone())
            .await;
        assert_text_error(&answer, StatusCode::NOT_FOUND, no_session);
    }
}

#[tokio::test]
async fn delete_makes_the_participant_leave_and_ends_the_session() {
    let api = Api::new();
    let room = api.standard_room();
    let first = api.whip(&room, &room.token).await;
    let second = api.whip(&room, "1111").await;
    assert_eq!(api.kazoo_participants(&room).await.len(), 2);

    let gone = api.request(Method::DELETE, &first, &[], "").await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    assert_eq!(gone.header("access-control-allow-origin"), "*");
    assert_eq!(api.kazoo_participants(&room).await.len(), 1);
    assert_text_error(
        &api.request(Method::DELETE, &first, &[], "").await,
        StatusCode::NOT_FOUND,
        "no such session (it ended, or never existed)",
    );

    // A kick through another face ends the session too.
    let participant = api.kazoo_participants(&room).await[0]["participant_id"].clone();
    let kick = api
        .request(
            Method::PUT,
            &format!(
                "/v2/accounts/{}/conferences/{}/participants/{participant}",
                room.account.simple(),
                room.id
            ),
            &[("x-auth-token", &room.token)],
            json!({"data": {"action": "kick"}}).to_string(),
        )
        .await;
    assert_eq!(kick.status, StatusCode::ACCEPTED, "{}", kick.body);
    assert_eq!(
        api.request(Method::POST, &format!("{second}/mute"), &[], "")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(api.kazoo_participants(&room).await.is_empty());
}

#[tokio::test]
async fn options_answers_the_cors_preflight_on_every_path() {
    let api = Api::new();
    let room = api.standard_room();
    let session = api.whip(&room, &room.token).await;
    for path in [
        format!("/whip/{}", room.id),
        format!("/whep/{}", room.id),
        session.clone(),
        format!("{session}/mute"),
        format!("{session}/unmute"),
        format!("/whep/{}/sessions/{}", room.id, Uuid::new_v4().simple()),
    ] {
        let answer = api
            .request(
                Method::OPTIONS,
                &path,
                &[
                    ("origin", "https://app.example"),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization, content-type",
                    ),
                ],
                "",
            )
            .await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(answer.header("access-control-allow-origin"), "*");
        assert_eq!(
            answer.header("access-control-allow-methods"),
            "POST, PATCH, DELETE, OPTIONS"
        );
        assert_eq!(
            answer.header("access-control-allow-headers"),
            "Authorization, Content-Type, If-Match"
        );
        assert_eq!(
            answer.header("access-control-expose-headers"),
            "Location, Link, ETag"
        );
    }
}

#[tokio::test]
async fn mute_and_unmute_are_seen_in_every_face() {
    let api = Api::new();
    let room = api.standard_room();
    let session = api.whip(&room, "1111").await;
    let speaks = |participants: Vec<Value>| participants[0]["speak"].clone();
    assert_eq!(speaks(api.kazoo_participants(&room).await), json!(true));
    let mut events = api.service().subscribe();

    let muted = api
        .request(Method::POST, &format!("{session}/mute"), &[], "")
        .await;
    assert_eq!(muted.status, StatusCode::NO_CONTENT, "{}", muted.body);
    assert_eq!(muted.header("access-control-allow-origin"), "*");
    assert_eq!(speaks(api.kazoo_participants(&room).await), json!(false));
    let unmuted = api
        .request(Method::POST, &format!("{session}/unmute"), &[], "")
        .await;
    assert_eq!(unmuted.status, StatusCode::NO_CONTENT);
    assert_eq!(speaks(api.kazoo_participants(&room).await), json!(true));

    let mut names = Vec::new();
    while let Ok(event) = events.try_recv() {
        names.push(event.name);
    }
    assert_eq!(names, ["mute-member", "unmute-member"]);
}

#[tokio::test]
async fn kazoo_and_voipbin_joins_answer_a_webrtc_offer_with_the_media_planes_answer() {
    let api = Api::new();
    let room = api.standard_room();
    let offer = webrtc_offer("sendrecv");
    let kazoo = api
        .request(
            Method::PUT,
            &format!(
                "/v2/accounts/{}/conferences/{}/participants",
                room.account.simple(),
                room.id
            ),
            &[("x-auth-token", &room.token)],
            json!({"data": {"sdp": offer, "caller_id_name": "Browser"}}).to_string(),
        )
        .await;
    assert_eq!(kazoo.status, StatusCode::CREATED, "{}", kazoo.body);
    assert_eq!(kazoo.json()["data"]["sdp"], json!(webrtc_answer(&offer)));

    let voipbin = api
        .request(
            Method::POST,
            "/v1.0/conferencecalls",
            &[
                ("authorization", &format!("Bearer {}", room.token)),
                ("content-type", "application/json"),
            ],
            json!({"conference_id": Uuid::parse_str(&room.id).unwrap().to_string(), "sdp": offer})
                .to_string(),
        )
        .await;
    assert_eq!(voipbin.status, StatusCode::OK, "{}", voipbin.body);
    assert_eq!(voipbin.json()["sdp"], json!(webrtc_answer(&offer)));
}

#[tokio::test]
async fn the_join_page_and_its_assets_are_served_with_their_types_and_a_strict_csp() {
    let api = Api::new();
    let room = api.standard_room();
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
               img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    let get = |path: String| {
        let api = &api;
        async move { api.request(Method::GET, &path, &[], "").await }
    };

    let page = get(format!("/join/{}", room.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("content-security-policy"), csp);
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    for needed in [
        "<meta name=\"viewport\"",
        "<script src=\"assets/join.js\" defer></script>",
        "<link rel=\"stylesheet\" href=\"assets/join.css\">",
        "id=\"join\"",
        "id=\"mute\"",
        "id=\"leave\"",
        "id=\"roster\"",
        "id=\"status\"",
        "<audio id=\"room\" autoplay>",
    ] {
        assert!(page.body.contains(needed), "the page has {needed}");
    }
    // Nothing inline for the CSP to block.
    assert_eq!(page.body.matches("<script").count(), 1);
    assert!(!page.body.contains("style=") && !page.body.contains("<style"));
    assert!(!page.body.contains(" on"), "no inline event handlers");

    let script = get("/join/assets/join.js".into()).await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(
        script.header("content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(script.header("content-security-policy"), csp);
    for needed in [
        "window.tutti = tutti",
        "createAnalyser",
        "/whip/",
        "'/mute'",
        "method: 'DELETE'",
        "'removed'",
    ] {
        assert!(script.body.contains(needed), "the script has {needed}");
    }
    let style = get("/join/assets/join.css".into()).await;
    assert_eq!(style.status, StatusCode::OK);
    assert_eq!(style.header("content-type"), "text/css; charset=utf-8");

    let config = get(format!("/join/{}/config.json", room.id)).await;
    assert_eq!(config.status, StatusCode::OK);
    assert_eq!(config.header("content-type"), "application/json");
    assert_eq!(
        config.json(),
        json!({"conference_id": room.id, "ice_servers": common::ice_servers()})
    );

    // Any conference id gets the page (it tells nothing about which exist); other names none.
    let unknown = get(format!("/join/{}", Uuid::now_v7())).await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(
        get("/join/nothing".into()).await.status,
        StatusCode::NOT_FOUND
    );
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next message within 2 s.
async fn next_message(socket: &mut Socket) -> Message {
    tokio::time::timeout(Duration::from_secs(2), socket.next())
        .await
        .expect("a message within 2 s")
        .expect("the socket stays open")
        .expect("a readable message")
}

async fn next_json(socket: &mut Socket) -> Value {
    match next_message(socket).await {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn entry(id: u32, name: &str, talking: bool, muted: bool, moderator: bool, you: bool) -> Value {
    json!({"participant_id": id, "name": name, "talking": talking, "muted": muted, "moderator": moderator, "you": you})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_socket_follows_the_roster_and_says_when_the_participant_is_removed() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let media = Arc::new(MemoryMedia::default());
    let service = ConferenceService::new(store, media.clone(), Duration::from_secs(3600));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(tutti_api::serve(
        listener,
        AppState::new(service.clone(), "tutti@test"),
        std::future::pending(),
    ));
    let account = service.create_account("a").unwrap().id;
    let conference = service
        .create_conference(
            account,
            &json!({"member": {"pins": ["1111"], "join_muted": false}, "moderator": {"pins": ["9999"]}}),
        )
        .unwrap();
    let id = conference.id.simple().to_string();
    let join = |pin: &str, name: &str| {
        let request = JoinRequest {
            offer: webrtc_offer("sendrecv"),
            caller_id_name: Some(name.into()),
            ..JoinRequest::default()
        };
        service
            .join_web(&id, &WebCredential::Pin(pin.into()), WebKind::Whip, request)
            .unwrap()
            .0
    };
    let ann = join("9999", "Ann");
    let bob = join("1111", "Bob");
    let url = format!("ws://{address}/whip/{id}/sessions/{}/events", bob.id);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (a, b) = (ann.participant_id, bob.participant_id);
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "roster", "you": b, "participants": [
            entry(a, "Ann", false, false, true, false),
            entry(b, "Bob", false, false, false, true),
        ]})
    );

    // Ann talks.
    media.set_talking(conference.id, a, true);
    service.on_media_event(&MediaEvent {
        conference: conference.id,
        participant_id: a,
        kind: MediaEventKind::StartTalking,
    });
    assert_eq!(
        next_json(&mut socket).await["participants"][0],
        entry(a, "Ann", true, false, true, false)
    );
    // Bob is muted through another face.
    service
        .act_on_participant(&conference, b, &ParticipantAction::Mute)
        .unwrap();
    assert_eq!(
        next_json(&mut socket).await["participants"][1],
        entry(b, "Bob", false, true, false, true)
    );
    // Cy joins; Ann leaves.
    let cy = join("1111", "Cy");
    assert_eq!(
        next_json(&mut socket).await["participants"][2],
        entry(cy.participant_id, "Cy", false, false, false, false)
    );
    service.leave_web(&ann).unwrap();
    let roster = next_json(&mut socket).await;
    let ids: Vec<&Value> = roster["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["participant_id"])
        .collect();
    assert_eq!(ids, [&json!(b), &json!(cy.participant_id)]);

    // Bob is kicked: the socket says so and closes. The roster without Bob may come first:
    // his departure and the end of his session are two events.
    service
        .act_on_participant(&conference, b, &ParticipantAction::Kick)
        .unwrap();
    let removed = loop {
        let message = next_json(&mut socket).await;
        if message["type"] != "roster" {
            break message;
        }
        assert!(
            message["participants"]
                .as_array()
                .is_some_and(|p| p.iter().all(|p| p["participant_id"] != json!(b))),
            "a roster after the kick lists Bob: {message}"
        );
    };
    assert_eq!(removed, json!({"type": "removed", "reason": "kick"}));
    let Message::Close(Some(frame)) = next_message(&mut socket).await else {
        panic!("expected a close frame");
    };
    assert_eq!(u16::from(frame.code), 1000);

    // A session that ended has no events.
    let gone = reqwest::get(format!(
        "http://{address}/whip/{id}/sessions/{}/events",
        bob.id
    ))
    .await
    .unwrap();
    assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND);
}
