//! `GET {session}/events`: a websocket of the session's conference, for the join page. The
//! session id in the path is the capability. Messages (JSON text):
//!
//! - `{"type":"roster","you":3,"participants":[{"participant_id":3,"name":"Ann","talking":false,"muted":false,"moderator":false,"you":true}, …]}`
//!   on connecting and whenever it changes (someone joins, leaves, talks, is muted);
//! - `{"type":"removed","reason":"kick"}` when the session's participant has left (`kick`,
//!   `hangup`, `timeout`, `conference_ended`, `shutdown`), after which the server closes the
//!   socket (1000).
//!
//! What the client sends is ignored.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tutti_conference::{ConferenceService, Departure, Participant, WebKind, WebSession};

use super::session;
use crate::AppState;

/// The roster message of `session`.
pub(crate) fn roster(session: &WebSession, participants: &[Participant]) -> Value {
    let participants: Vec<Value> = participants
        .iter()
        .map(|p| {
            json!({
                "participant_id": p.state.participant_id,
                "name": p.caller_id_name,
                "talking": p.state.talking,
                "muted": !p.state.speak,
                "moderator": p.state.moderator,
                "you": p.state.participant_id == session.participant_id,
            })
        })
        .collect();
    json!({"type": "roster", "you": session.participant_id, "participants": participants})
}

/// The message that the session's participant left.
pub(crate) fn removed(why: Option<Departure>) -> Value {
    json!({"type": "removed", "reason": why.map_or("left", Departure::as_str)})
}

pub(super) async fn upgrade(
    kind: WebKind,
    State(state): State<AppState>,
    Path((conference_id, session_id)): Path<(String, String)>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // No session is 404 whether or not the request is a websocket upgrade.
    match (session(&state, kind, &conference_id, &session_id), upgrade) {
        (Ok(session), Ok(upgrade)) => {
            let service = state.service.clone();
            upgrade.on_upgrade(move |socket| follow(socket, service, session))
        }
        (Err(error), _) => error.into_response(),
        (Ok(_), Err(rejection)) => rejection.into_response(),
    }
}

/// The current roster message (off the async threads: the media plane is asked).
async fn current(service: &std::sync::Arc<ConferenceService>, session: &WebSession) -> Value {
    let (service, for_blocking) = (service.clone(), session.clone());
    let participants = tokio::task::spawn_blocking(move || service.web_roster(&for_blocking))
        .await
        .unwrap_or_default();
    roster(session, &participants)
}

async fn follow(
    mut socket: WebSocket,
    service: std::sync::Arc<ConferenceService>,
    session: WebSession,
) {
    // Subscribed before the first roster is read, so no change falls between.
    let mut events = service.subscribe();
    let mut left = session.departure();
    let mut last = Value::Null;
    'following: loop {
        if left.borrow_and_update().is_some() {
            break;
        }
        let now = current(&service, &session).await;
        if now != last {
            if socket
                .send(Message::Text(now.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
            last = now;
        }
        // Wait for something that may change the roster.
        loop {
            tokio::select! {
                changed = left.changed() => {
                    if changed.is_err() {
                        break 'following; // the session is gone with the service
                    }
                    break;
                }
                event = events.recv() => match event {
                    Ok(event) if event.conference == session.conference && event.name != "dtmf" => break,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                },
                message = socket.recv() => match message {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    let why = *left.borrow();
    let _ = socket
        .send(Message::Text(removed(why).to_string().into()))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "the participant left".into(),
        })))
        .await;
}
