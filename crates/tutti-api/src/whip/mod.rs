//! WebRTC signalling: WHIP (`POST /whip/{conference_id}`, RFC 9725) and WHEP
//! (`POST /whep/{conference_id}`) with an SDP offer, the session's `PATCH` (trickle ICE, ICE
//! restart) and `DELETE` (leave), tutti's extensions — `sendrecv` WHIP offers hear the room,
//! `…/mute` and `…/unmute`, and a websocket of the session's roster at `…/events` — and the
//! join page at `/join/{conference_id}` (see [`page`]).
//!
//! Credentials: `Authorization: Bearer <token>` with an API token of any face, or `Bearer
//! <PIN>` (digits only) with the conference's generated PIN or a member or moderator PIN of its
//! document (which sets the role). A session's id (in `Location`) is the capability for the
//! session's other requests. Failed PINs count against the client address's login limit (429
//! with `Retry-After` beyond it). Errors are `text/plain` naming the problem. Every response
//! carries CORS headers (any origin), and `OPTIONS` answers 204 with the preflight's.

mod events;
pub(crate) mod page;

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, AUTHORIZATION, CONTENT_TYPE, LINK,
    LOCATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::Value;
use tutti_conference::{JoinRequest, MediaError, ServiceError, WebCredential, WebKind, WebSession};

use crate::logins::ClientAddr;
use crate::AppState;

/// The media type of WHIP/WHEP offers and answers.
const SDP: &str = "application/sdp";
/// The media type of a `PATCH` body and its answer.
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";
/// The longest caller name kept (longer ones are cut).
const MAX_NAME_CHARS: usize = 64;

/// The WHIP and WHEP routes and the join page.
pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for kind in [WebKind::Whip, WebKind::Whep] {
        let base = format!("/{}/{{conference_id}}", kind.as_str());
        let session = format!("{base}/sessions/{{session_id}}");
        router = router
            .route(
                &base,
                post(move |state, client, path, query, headers, body| {
                    create(kind, state, client, path, query, headers, body)
                })
                .options(preflight),
            )
            .route(
                &session,
                axum::routing::patch(move |state, path, headers, body| {
                    patch(kind, state, path, headers, body)
                })
                .delete(move |state, path| delete(kind, state, path))
                .options(preflight),
            )
            .route(
                &format!("{session}/mute"),
                post(move |state, path| mute(kind, state, path, true)).options(preflight),
            )
            .route(
                &format!("{session}/unmute"),
                post(move |state, path| mute(kind, state, path, false)).options(preflight),
            )
            .route(
                &format!("{session}/events"),
                get(move |state, path, upgrade| events::upgrade(kind, state, path, upgrade)),
            );
    }
    router
        .layer(axum::middleware::map_response(cors))
        .merge(page::routes())
}

/// Adds the CORS headers every WHIP/WHEP response carries.
async fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Link, ETag"),
    );
    response
}

/// `OPTIONS`: 204 with what a CORS preflight needs.
async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST, PATCH, DELETE, OPTIONS"),
            ),
            (
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type, If-Match"),
            ),
            (ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400")),
        ],
    )
        .into_response()
}

/// Why a WHIP/WHEP request failed: a status and a text naming the problem.
#[derive(Debug)]
pub(crate) struct WhipError {
    status: StatusCode,
    text: String,
    retry_after: Option<u64>,
}

impl WhipError {
    fn new(status: StatusCode, text: impl Into<String>) -> Self {
        Self {
            status,
            text: text.into(),
            retry_after: None,
        }
    }

    fn no_session() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "no such session (it ended, or never existed)",
        )
    }

    fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl From<ServiceError> for WhipError {
    fn from(error: ServiceError) -> Self {
        let status = match &error {
            ServiceError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::NotAdmitted(_) => StatusCode::FORBIDDEN,
            ServiceError::Validation(_) | ServiceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServiceError::Precondition(_) => StatusCode::CONFLICT,
            ServiceError::Media(media) => match media {
                MediaError::Offer(_) | MediaError::Media(_) => StatusCode::BAD_REQUEST,
                MediaError::Full(_) => StatusCode::CONFLICT,
                MediaError::Locked => StatusCode::LOCKED,
                MediaError::NoParticipant(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            },
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let text = match &error {
            ServiceError::InvalidCredentials => {
                "invalid credentials: the token is unknown or expired".to_owned()
            }
            ServiceError::NotFound(id) => format!("no conference {id}"),
            ServiceError::Store(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        Self::new(status, text)
    }
}

impl IntoResponse for WhipError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.text,
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(wait) = self.retry_after {
            response.headers_mut().insert(RETRY_AFTER, wait.into());
        }
        response
    }
}

/// Runs `f` off the async threads (the service reads the store).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WhipError> + Send + 'static,
) -> Result<T, WhipError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(WhipError::internal()))
}

/// Whether the request's `Content-Type` is `expected` (parameters and case aside).
fn has_type(headers: &HeaderMap, expected: &str) -> Result<(), WhipError> {
    let given = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = given.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(WhipError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the body must be {expected} (Content-Type was {given:?})"),
        ))
    }
}

/// The credential of `Authorization: Bearer …`.
fn credential(headers: &HeaderMap) -> Result<WebCredential, WhipError> {
    let missing = || {
        WhipError::new(
            StatusCode::UNAUTHORIZED,
            "credentials required: Authorization: Bearer <token or PIN>",
        )
    };
    let value = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let (scheme, rest) = value.split_once(' ').ok_or_else(missing)?;
    let bearer = rest.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || bearer.is_empty() {
        return Err(missing());
    }
    Ok(WebCredential::from_bearer(bearer))
}

/// A body as UTF-8 text.
fn text(body: &Bytes, what: &str) -> Result<String, WhipError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| WhipError::new(StatusCode::BAD_REQUEST, format!("the {what} is not UTF-8")))?;
    if text.trim().is_empty() {
        return Err(WhipError::new(
            StatusCode::BAD_REQUEST,
            format!("the {what} is empty"),
        ));
    }
    Ok(text.to_owned())
}

/// Whether an SDP offer has an audio m-line over `UDP/TLS/RTP/SAVPF` (a WebRTC offer).
fn is_webrtc_offer(sdp: &str) -> bool {
    sdp.lines().any(|line| {
        let mut words = line.trim().split_ascii_whitespace();
        words.next() == Some("m=audio")
            && words
                .nth(1)
                .is_some_and(|proto| proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVPF"))
    })
}

/// `?name=` of a join.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct JoinQuery {
    name: Option<String>,
}

/// The caller's name from `?name=` or `X-Tutti-Caller-Name`, without control characters and
/// at most [`MAX_NAME_CHARS`] long.
fn caller_name(query: &JoinQuery, headers: &HeaderMap) -> Option<String> {
    let given = query.name.clone().or_else(|| {
        headers
            .get("x-tutti-caller-name")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })?;
    let name: String = given
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// `Link` headers (RFC 9725 §4.6) for the media plane's ICE servers.
fn ice_links(servers: &Value) -> Vec<HeaderValue> {
    let quoted = |v: &str| v.replace(['"', '\\'], "");
    let mut links = Vec::new();
    for server in servers.as_array().into_iter().flatten() {
        let urls: Vec<&str> = match server.get("urls") {
            Some(Value::String(url)) => vec![url.as_str()],
            Some(Value::Array(urls)) => urls.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        for url in urls {
            let mut link = format!("<{url}>; rel=\"ice-server\"");
            if let (Some(user), Some(credential)) = (
                server.get("username").and_then(Value::as_str),
                server.get("credential").and_then(Value::as_str),
            ) {
                link.push_str(&format!(
                    "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                    quoted(user),
                    quoted(credential)
                ));
            }
            if let Ok(value) = HeaderValue::from_str(&link) {
                links.push(value);
            }
        }
    }
    links
}

/// `POST /whip|whep/{conference_id}` with an SDP offer: 201, the answer and the session's
/// `Location`.
async fn create(
    kind: WebKind,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(conference_id): Path<String>,
    Query(query): Query<JoinQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WhipError> {
    has_type(&headers, SDP)?;
    let credential = credential(&headers)?;
    let offer = text(&body, "SDP offer")?;
    if !is_webrtc_offer(&offer) {
        return Err(WhipError::new(
            StatusCode::BAD_REQUEST,
            "the offer is not a WebRTC offer: it needs an m=audio line with UDP/TLS/RTP/SAVPF",
        ));
    }
    let attempt = match credential {
        WebCredential::Pin(_) => match state.logins.attempt(client, Instant::now()) {
            Ok(attempt) => Some(attempt),
            Err(wait) => {
                let mut error = WhipError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed PINs from this address: try again later",
                );
                error.retry_after = Some(wait);
                return Err(error);
            }
        },
        WebCredential::Token(_) => None,
    };
    let request = JoinRequest {
        offer,
        caller_id_name: caller_name(&query, &headers),
        ..JoinRequest::default()
    };
    let service = state.service.clone();
    let id = conference_id.clone();
    let joined = blocking(move || {
        let (session, _, answer) = service.join_web(&id, &credential, kind, request)?;
        Ok((session, answer, service.ice_servers()))
    })
    .await;
    let pin_refused = matches!(&joined, Err(e) if e.status == StatusCode::FORBIDDEN);
    if let Some(attempt) = attempt {
        if !pin_refused {
            state.logins.succeeded(attempt, Instant::now());
        }
    }
    let (session, answer, ice_servers) = joined?;
    let location = format!("/{}/{conference_id}/sessions/{}", kind.as_str(), session.id);
    let mut response = (StatusCode::CREATED, [(CONTENT_TYPE, SDP)], answer).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(LOCATION, location);
    }
    for link in ice_links(&ice_servers) {
        headers.append(LINK, link);
    }
    Ok(response)
}

/// The live session of a session path: its kind and conference must match the path's.
fn session(
    state: &AppState,
    kind: WebKind,
    conference_id: &str,
    session_id: &str,
) -> Result<WebSession, WhipError> {
    let conference = uuid::Uuid::parse_str(conference_id).ok();
    state
        .service
        .web_session(session_id)
        .filter(|s| s.kind == kind && Some(s.conference) == conference)
        .ok_or_else(WhipError::no_session)
}

/// `PATCH {session}` with a trickle-ICE fragment: 204, or 200 and the answer fragment on an
/// ICE restart.
async fn patch(
    kind: WebKind,
    State(state): State<AppState>,
    Path((conference_id, session_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WhipError> {
    let session = session(&state, kind, &conference_id, &session_id)?;
    has_type(&headers, SDPFRAG)?;
    let fragment = text(&body, "ICE fragment")?;
    let service = state.service.clone();
    let answer = blocking(move || Ok(service.patch_web_ice(&session, &fragment)?)).await?;
    Ok(match answer {
        Some(answer) => (StatusCode::OK, [(CONTENT_TYPE, SDPFRAG)], answer).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `DELETE {session}`: 200; the participant leaves (a hang-up).
async fn delete(
    kind: WebKind,
    State(state): State<AppState>,
    Path((conference_id, session_id)): Path<(String, String)>,
) -> Result<StatusCode, WhipError> {
    let session = session(&state, kind, &conference_id, &session_id)?;
    let service = state.service.clone();
    blocking(move || Ok(service.leave_web(&session)?)).await?;
    Ok(StatusCode::OK)
}

/// `POST {session}/mute` and `…/unmute`: 204; everyone sees the participant (un)muted.
async fn mute(
    kind: WebKind,
    State(state): State<AppState>,
    Path((conference_id, session_id)): Path<(String, String)>,
    muted: bool,
) -> Result<StatusCode, WhipError> {
    let session = session(&state, kind, &conference_id, &session_id)?;
    let service = state.service.clone();
    blocking(move || Ok(service.set_web_muted(&session, muted)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn webrtc_offers_are_told_from_plain_ones() {
        assert!(is_webrtc_offer(
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        ));
        assert!(!is_webrtc_offer("v=0\r\nm=audio 4000 RTP/AVP 0\r\n"));
        assert!(!is_webrtc_offer(
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        ));
        assert!(!is_webrtc_offer("m=audio"));
    }

    #[test]
    fn ice_servers_become_link_headers() {
        let links = ice_links(&json!([
            {"urls": "stun:stun.example.net:3478"},
            {"urls": ["turn:turn.example.net?transport=udp"], "username": "u\"x", "credential": "p"},
            {"nothing": true}
        ]));
        assert_eq!(
            links,
            [
                "<stun:stun.example.net:3478>; rel=\"ice-server\"",
                "<turn:turn.example.net?transport=udp>; rel=\"ice-server\"; username=\"ux\"; credential=\"p\"; credential-type=\"password\"",
            ]
        );
    }

    #[test]
    fn caller_names_are_cleaned_and_cut() {
        let mut headers = HeaderMap::new();
        headers.insert("x-tutti-caller-name", HeaderValue::from_static("Bob"));
        let query = |name: &str| JoinQuery {
            name: Some(name.into()),
        };
        assert_eq!(
            caller_name(&query(" Ann\u{7}\n "), &headers).as_deref(),
            Some("Ann")
        );
        assert_eq!(
            caller_name(&JoinQuery::default(), &headers).as_deref(),
            Some("Bob")
        );
        assert_eq!(
            caller_name(&query(&"x".repeat(100)), &headers)
                .unwrap()
                .len(),
            64
        );
        assert_eq!(caller_name(&query("\n"), &HeaderMap::new()), None);
    }
}
