//! Kazoo's websocket over a real socket: subscribe with a token, receive the account's events
//! within 100 ms, never another account's; nothing but auth errors before a token, and the
//! socket closes when the token expires.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tutti_api::AppState;
use tutti_conference::{ConferenceService, JoinRequest};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_millis(100), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no message within 100 ms"))
            .expect("the socket stays open")
            .expect("a readable message");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

async fn nothing_within(socket: &mut Socket, wait: Duration) -> bool {
    tokio::time::timeout(wait, socket.next()).await.is_err()
}

/// A server on a free port: its service and address.
async fn start() -> (Arc<ConferenceService>, std::net::SocketAddr) {
    let service = common::memory_service();
    let state = AppState::new(service.clone(), "tutti@test");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(tutti_api::serve(listener, state, std::future::pending()));
    (service, address)
}

fn text(message: Value) -> Message {
    Message::Text(message.to_string().into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_before_a_token_and_the_socket_closes_when_the_token_expires() {
    let (service, address) = start().await;
    let a = service.create_account("a").unwrap();
    let conference = service
        .create_conference(a.id, &json!({"member": {"join_muted": false}}))
        .unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/v2/websocket"))
        .await
        .unwrap();
    let account = a.id.simple().to_string();

    // No token yet: every message gets the auth error, and events do not come.
    for message in [
        json!({"action": "ping", "request_id": "p1"}),
        json!({"action": "unsubscribe", "request_id": "u1", "data": {"binding": "conference.event.*.*"}}),
        json!({"action": "subscribe", "request_id": "s1", "data": {"account_id": account, "binding": "conference.event.*.*"}}),
    ] {
        socket.send(text(message.clone())).await.unwrap();
        assert_eq!(
            next_json(&mut socket).await,
            json!({"action": "reply", "request_id": message["request_id"], "status": "error", "data": {"message": "invalid credentials: send an auth_token first"}})
        );
    }
    socket
        .send(text(
            json!({"action": "ping", "request_id": "p2", "auth_token": "nope"}),
        ))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut socket).await["data"]["message"],
        "invalid credentials"
    );
    service
        .join(
            a.id,
            &conference.id.to_string(),
            &JoinRequest {
                offer: "v=0\r\n".into(),
                ..JoinRequest::default()
            },
        )
        .unwrap();
    assert!(nothing_within(&mut socket, Duration::from_millis(200)).await);

    // A token that lives two seconds: subscriptions, then the close when it expires.
    let session = service
        .authenticate_for(&a.api_key, Duration::from_secs(2))
        .unwrap();
    socket
        .send(text(json!({"action": "subscribe", "auth_token": session.token, "request_id": "s2", "data": {"account_id": account, "binding": "conference.event.*.*"}})))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["status"], "success");
    socket
        .send(text(json!({"action": "ping", "request_id": "p3"})))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut socket).await["data"],
        json!({"response": "pong"})
    );
    assert_eq!(
        common::expiry_notice(&mut socket, session.expires).await,
        json!({"action": "error", "status": "error", "data": {"message": "the token expired"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_their_accounts_events_and_nothing_else() {
    let (service, address) = start().await;

    let a = service.create_account("a").unwrap();
    let b = service.create_account("b").unwrap();
    let token_a = service.authenticate(&a.api_key).unwrap().token;
    let token_b = service.authenticate(&b.api_key).unwrap().token;
    let conference = service
        .create_conference(
            a.id,
            &json!({"name": "Live", "member": {"join_muted": false}}),
        )
        .unwrap();
    let other = service
        .create_conference(b.id, &json!({"name": "Theirs"}))
        .unwrap();

    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/v2/websocket"))
        .await
        .unwrap();
    // Someone else's account with my token: refused.
    let subscribe = |token: &str, account: uuid::Uuid, binding: &str| {
        Message::Text(json!({"action": "subscribe", "auth_token": token, "request_id": "r1", "data": {"account_id": account.simple().to_string(), "binding": binding}}).to_string().into())
    };
    socket
        .send(subscribe(&token_b, a.id, "conference.event.*.*"))
        .await
        .unwrap();
    let refused = next_json(&mut socket).await;
    assert_eq!(
        (refused["action"].clone(), refused["status"].clone()),
        (json!("reply"), json!("error"))
    );
    socket
        .send(subscribe(&token_a, a.id, "conference.event.*.*"))
        .await
        .unwrap();
    let reply = next_json(&mut socket).await;
    assert_eq!(
        reply,
        json!({"action": "reply", "request_id": "r1", "status": "success", "data": {"subscribed": ["conference.event.*.*"]}})
    );

    // A join: conference-create, then add-member, within 100 ms each.
    let join = JoinRequest {
        offer: "v=0\r\n".into(),
        ..JoinRequest::default()
    };
    let conference_id = conference.id.simple().to_string();
    let (participant, _) = service.join(a.id, &conference_id, &join).unwrap();
    let created = next_json(&mut socket).await;
    assert_eq!(created["name"], "conference-create");
    let added = next_json(&mut socket).await;
    assert_eq!(added["action"], "event");
    assert_eq!(added["name"], "add-member");
    assert_eq!(added["subscribed_key"], "conference.event.*.*");
    assert_eq!(
        added["routing_key"],
        json!(format!(
            "conference.event.{conference_id}.{}",
            participant.call_id.simple()
        ))
    );
    assert_eq!(
        added["data"]["participant_id"],
        json!(participant.state.participant_id)
    );
    assert_eq!(
        added["data"]["account_id"],
        json!(a.id.simple().to_string())
    );

    // Actions announce themselves.
    service
        .act_on_participant(
            &conference,
            participant.state.participant_id,
            &tutti_conference::ParticipantAction::Mute,
        )
        .unwrap();
    assert_eq!(next_json(&mut socket).await["name"], "mute-member");
    service.set_locked(&conference, true).unwrap();
    assert_eq!(next_json(&mut socket).await["name"], "lock");

    // Another account's conference: nothing reaches this socket.
    service
        .join(b.id, &other.id.simple().to_string(), &join)
        .unwrap();
    assert!(
        nothing_within(&mut socket, Duration::from_millis(200)).await,
        "another account's events leaked"
    );

    // A narrower binding after unsubscribing from all.
    socket.send(Message::Text(json!({"action": "unsubscribe", "request_id": "r2", "data": {"binding": "conference.event.*.*"}}).to_string().into())).await.unwrap();
    assert_eq!(
        next_json(&mut socket).await["data"]["subscribed"],
        json!([])
    );
    socket
        .send(subscribe(
            &token_a,
            a.id,
            &format!("conference.event.{conference_id}.*"),
        ))
        .await
        .unwrap();
    next_json(&mut socket).await;
    service
        .act_on_participant(
            &conference,
            participant.state.participant_id,
            &tutti_conference::ParticipantAction::Kick,
        )
        .unwrap();
    let kicked = next_json(&mut socket).await;
    assert_eq!(
        (
            kicked["name"].clone(),
            kicked["data"]["participant_id"].clone()
        ),
        (json!("del-member"), json!(participant.state.participant_id))
    );
    assert_eq!(
        next_json(&mut socket).await["name"],
        "conference-destroy",
        "the room stops with its last participant"
    );

    socket.send(Message::Text("garbage".into())).await.unwrap();
    assert_eq!(
        next_json(&mut socket).await["status"],
        "error",
        "garbage gets an error reply, not a closed socket"
    );
}
