//! `ws://HOST:PORT/v2/websocket`: Kazoo's realtime events. A client subscribes to bindings
//! `conference.event.{CONFERENCE_ID|*}.{CALL_ID|*}` with its token and account; it then gets
//! every matching event of that account, and only of that account.
//!
//! Nothing but an `invalid credentials` reply comes before a message carries a valid
//! `auth_token`. The connection then speaks for that token's account until the token expires,
//! when the server sends `{"action":"error", …}` and closes the socket (1008, "the token
//! expired"). A later message's `auth_token` renews it; one of another account ends the
//! subscriptions of the previous account.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tutti_conference::ConferenceEvent;
use uuid::Uuid;

use crate::{expiry, AppState};

/// One binding a client holds.
#[derive(Clone, Debug, PartialEq)]
struct Subscription {
    binding: String,
    account: Uuid,
    conference: Option<Uuid>,
    call: Option<Uuid>,
}

impl Subscription {
    fn matches(&self, event: &ConferenceEvent) -> bool {
        event.account == self.account
            && self.conference.is_none_or(|c| c == event.conference)
            && self.call.is_none_or(|c| Some(c) == event.call_id)
    }
}

/// Parses `conference.event.{conference|*}.{call|*}` (the last part may be left out).
fn parse_binding(binding: &str) -> Option<(Option<Uuid>, Option<Uuid>)> {
    let rest = binding.strip_prefix("conference.event.")?;
    let mut parts = rest.split('.');
    let id = |part: Option<&str>| -> Option<Option<Uuid>> {
        match part {
            None | Some("*") => Some(None),
            Some(text) => Uuid::parse_str(text).ok().map(Some),
        }
    };
    let conference = id(parts.next())?;
    let call = id(parts.next())?;
    parts.next().is_none().then_some((conference, call))
}

pub(crate) async fn upgrade(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    ws.on_upgrade(move |socket| session(socket, state))
}

fn reply(request_id: &Value, result: Result<Value, String>) -> Message {
    let body = match result {
        Ok(data) => {
            json!({"action": "reply", "request_id": request_id, "status": "success", "data": data})
        }
        Err(message) => {
            json!({"action": "reply", "request_id": request_id, "status": "error", "data": {"message": message}})
        }
    };
    Message::Text(body.to_string().into())
}

fn render(event: &ConferenceEvent, binding: &str) -> Message {
    let call = event
        .call_id
        .map_or_else(|| "*".to_owned(), |c| c.simple().to_string());
    let mut data = json!({
        "event": event.name,
        "account_id": event.account.simple().to_string(),
        "conference_id": event.conference.simple().to_string(),
        "call_id": event.call_id.map(|c| c.simple().to_string()),
        "participant_id": event.participant_id,
    });
    if let Some(digit) = event.digit {
        data["digit"] = json!(digit.digit.to_string());
        data["duration"] = json!(digit.duration_ms);
    }
    let body = json!({
        "action": "event",
        "subscribed_key": binding,
        "subscription_key": binding,
        "name": event.name,
        "routing_key": format!("conference.event.{}.{call}", event.conference.simple()),
        "data": data,
    });
    Message::Text(body.to_string().into())
}

/// The account a connection speaks for, and when its token expires (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Authority {
    account: Uuid,
    expires: i64,
}

/// Applies a message's `auth_token`, if it has one, to the connection's authority; the error
/// reply when the token is not valid.
async fn authenticate(
    state: &AppState,
    request: &Value,
    authority: &mut Option<Authority>,
    subscriptions: &mut Vec<Subscription>,
) -> Result<(), String> {
    let Some(token) = request.get("auth_token") else {
        return Ok(());
    };
    let token = token.as_str().unwrap_or_default().to_owned();
    let service = state.service.clone();
    let Ok(Ok(session)) = tokio::task::spawn_blocking(move || service.session(&token)).await else {
        return Err("invalid credentials".into());
    };
    let expires = match *authority {
        Some(current) if current.account == session.account_id => {
            current.expires.max(session.expires)
        }
        _ => {
            subscriptions.retain(|s| s.account == session.account_id);
            session.expires
        }
    };
    *authority = Some(Authority {
        account: session.account_id,
        expires,
    });
    Ok(())
}

/// Handles one client message; returns the reply.
async fn handle(
    state: &AppState,
    authority: &mut Option<Authority>,
    subscriptions: &mut Vec<Subscription>,
    text: &str,
) -> Message {
    let Ok(request) = serde_json::from_str::<Value>(text) else {
        return reply(&Value::Null, Err("the message is not valid JSON".into()));
    };
    let request_id = request.get("request_id").cloned().unwrap_or(Value::Null);
    if let Err(refused) = authenticate(state, &request, authority, subscriptions).await {
        return reply(&request_id, Err(refused));
    }
    let Some(Authority { account, .. }) = *authority else {
        return reply(
            &request_id,
            Err("invalid credentials: send an auth_token first".into()),
        );
    };
    let action = request
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let data = request.get("data").cloned().unwrap_or(Value::Null);
    let bindings: Vec<String> = match (data.get("binding"), data.get("bindings")) {
        (Some(Value::String(b)), _) => vec![b.clone()],
        (_, Some(Value::Array(list))) => list
            .iter()
            .filter_map(|b| b.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    match action.as_str() {
        "subscribe" => {
            let asked = data
                .get("account_id")
                .and_then(Value::as_str)
                .and_then(|a| Uuid::parse_str(a).ok());
            if asked != Some(account) {
                return reply(
                    &request_id,
                    Err("the account_id is not the token's account".into()),
                );
            }
            if bindings.is_empty() {
                return reply(&request_id, Err("subscribe needs data.binding".into()));
            }
            for binding in &bindings {
                let Some((conference, call)) = parse_binding(binding) else {
                    return reply(&request_id, Err(format!("unsupported binding {binding:?}: use conference.event.{{CONFERENCE_ID|*}}.{{CALL_ID|*}}")));
                };
                subscriptions.retain(|s| &s.binding != binding);
                subscriptions.push(Subscription {
                    binding: binding.clone(),
                    account,
                    conference,
                    call,
                });
            }
            reply(
                &request_id,
                Ok(
                    json!({"subscribed": subscriptions.iter().map(|s| &s.binding).collect::<Vec<_>>()}),
                ),
            )
        }
        "unsubscribe" => {
            subscriptions.retain(|s| !bindings.contains(&s.binding));
            reply(
                &request_id,
                Ok(
                    json!({"subscribed": subscriptions.iter().map(|s| &s.binding).collect::<Vec<_>>()}),
                ),
            )
        }
        "ping" => reply(&request_id, Ok(json!({"response": "pong"}))),
        other => reply(
            &request_id,
            Err(format!(
                "unknown action {other:?} (subscribe, unsubscribe, ping)"
            )),
        ),
    }
}

async fn session(mut socket: WebSocket, state: AppState) {
    let mut events = state.service.subscribe();
    let mut subscriptions = Vec::new();
    let mut authority = None;
    loop {
        let deadline = authority.map(|a: Authority| expiry::deadline(a.expires));
        tokio::select! {
            () = expiry::reached(deadline) => {
                let notice = json!({"action": "error", "status": "error", "data": {"message": expiry::EXPIRED}});
                return expiry::close(&mut socket, notice).await;
            },
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    let answer = handle(&state, &mut authority, &mut subscriptions, text.as_str()).await;
                    if socket.send(answer).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            event = events.recv() => match event {
                Ok(event) => {
                    // One message per event: the first binding that matches names it.
                    let subscription = subscriptions.iter().find(|s| s.matches(&event));
                    if let Some(subscription) = subscription.filter(|_| event.is_kazoo()) {
                        if socket.send(render(&event, &subscription.binding)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(RecvError::Lagged(missed)) => tracing::warn!(missed, "a websocket client fell behind; events were dropped"),
                Err(RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_parse() {
        let id = Uuid::now_v7();
        assert_eq!(parse_binding("conference.event.*.*"), Some((None, None)));
        assert_eq!(parse_binding("conference.event.*"), Some((None, None)));
        assert_eq!(
            parse_binding(&format!("conference.event.{}.*", id.simple())),
            Some((Some(id), None))
        );
        assert_eq!(parse_binding("call.CHANNEL_CREATE.*"), None);
        assert_eq!(parse_binding("conference.event.nope.*"), None);
        assert_eq!(parse_binding("conference.event.*.*.*"), None);
    }
}
