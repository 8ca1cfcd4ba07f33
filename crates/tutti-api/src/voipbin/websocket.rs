//! `ws://HOST:PORT/v1.0/ws?token=…`: VoIPbin's event websocket. A client sends
//! `{"type":"subscribe","topics":["customer_id:<id>:conference[:<id>]"]}` (topics match by
//! prefix, so `customer_id:<id>:conference` also covers `…:conferencecall:…`) and receives
//! `{"type":…, "data":…, "topic":…}` for its own account's events only. When the token
//! expires the server sends `{"type":"error","message":"the token expired"}` and closes the
//! socket (1008); the client reconnects with a fresh token.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::{QueryParams, VoipbinError};
use crate::request::request_id;
use crate::{expiry, AppState};

pub(crate) async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    let request_id = request_id(&headers);
    let checked = state.clone();
    let session = tokio::task::spawn_blocking(move || {
        let params = params
            .map(|q| q.0)
            .map_err(|r| VoipbinError::InvalidArgument(r.body_text()))?;
        super::session(&checked, &headers, &params)
    })
    .await
    .unwrap_or(Err(VoipbinError::Internal));
    match session {
        Ok(session) => ws
            .on_upgrade(move |socket| {
                subscriptions(socket, state, session.account_id, session.expires)
            })
            .into_response(),
        Err(error) => error.into_response_with(&request_id),
    }
}

/// Applies a client message to `topics`; returns the reply.
fn handle(account: Uuid, topics: &mut Vec<String>, text: &str) -> Value {
    let Ok(request) = serde_json::from_str::<Value>(text) else {
        return json!({"type": "error", "message": "the message is not valid JSON"});
    };
    let asked: Vec<String> = request
        .get("topics")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let own = format!("customer_id:{account}:");
    match request.get("type").and_then(Value::as_str) {
        Some("subscribe") => {
            if let Some(foreign) = asked.iter().find(|t| !t.starts_with(&own)) {
                return json!({"type": "error", "message": format!("topic {foreign:?} is not under {own}")});
            }
            for topic in asked {
                if !topics.contains(&topic) {
                    topics.push(topic);
                }
            }
            json!({"type": "subscribed", "topics": topics})
        }
        Some("unsubscribe") => {
            topics.retain(|t| !asked.contains(t));
            json!({"type": "subscribed", "topics": topics})
        }
        _ => json!({"type": "error", "message": "expected type subscribe or unsubscribe"}),
    }
}

async fn subscriptions(mut socket: WebSocket, state: AppState, account: Uuid, expires: i64) {
    let mut events = state.service.subscribe();
    let mut topics: Vec<String> = Vec::new();
    let deadline = expiry::deadline(expires);
    loop {
        tokio::select! {
            () = expiry::reached(Some(deadline)) => {
                let notice = json!({"type": "error", "message": expiry::EXPIRED});
                return expiry::close(&mut socket, notice).await;
            },
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    let reply = handle(account, &mut topics, text.as_str());
                    if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            event = events.recv() => match event {
                Ok(event) if event.account == account && !topics.is_empty() => {
                    let service = state.service.clone();
                    let rendered = tokio::task::spawn_blocking(move || super::webhook::message(&service, &event)).await;
                    let Ok(Some(message)) = rendered else { continue };
                    if topics.iter().any(|t| message.topic.starts_with(t.as_str())) {
                        let mut body = message.body;
                        body["topic"] = Value::String(message.topic);
                        if socket.send(Message::Text(body.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => tracing::warn!(missed, "a websocket client fell behind; events were dropped"),
                Err(RecvError::Closed) => return,
            },
        }
    }
}
