//! VoIPbin's websocket over a real socket: the token at the upgrade, topic subscriptions by
//! prefix, `{type, data, topic}` messages for the customer's own events only, and the close
//! when the token expires.

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
        let message = tokio::time::timeout(Duration::from_secs(2), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no message within 2 s"))
            .expect("the socket stays open")
            .expect("a readable message");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

fn subscribe(kind: &str, topics: &[String]) -> Message {
    Message::Text(json!({"type": kind, "topics": topics}).to_string().into())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_closes_when_its_token_expires() {
    let (service, address) = start().await;
    let a = service.create_account("a").unwrap();
    let session = service
        .authenticate_for(&a.api_key, Duration::from_secs(2))
        .unwrap();
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{address}/v1.0/ws?token={}", session.token))
            .await
            .unwrap();
    let mine = format!("customer_id:{}:conference", a.id);
    socket
        .send(subscribe("subscribe", std::slice::from_ref(&mine)))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    assert_eq!(
        common::expiry_notice(&mut socket, session.expires).await,
        json!({"type": "error", "message": "the token expired"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_their_topics_and_nothing_else() {
    let (service, address) = start().await;

    let a = service.create_account("a").unwrap();
    let b = service.create_account("b").unwrap();
    let token = service.authenticate(&a.api_key).unwrap().token;

    // No token, no socket.
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{address}/v1.0/ws?token=nope")).await;
    assert!(refused.is_err());

    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{address}/v1.0/ws?token={token}"))
            .await
            .unwrap();
    let foreign = format!("customer_id:{}:conference", b.id);
    socket
        .send(subscribe("subscribe", &[foreign]))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "error");
    let mine = format!("customer_id:{}:conference", a.id);
    socket
        .send(subscribe("subscribe", std::slice::from_ref(&mine)))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "subscribed", "topics": [mine]})
    );

    // The other customer's conference says nothing; ours is announced, then its call (the
    // prefix covers conferencecall topics too).
    service
        .create_conference(b.id, &json!({"name": "theirs"}))
        .unwrap();
    let conference = service
        .create_conference(
            a.id,
            &json!({"name": "ours", "member": {"join_muted": false}}),
        )
        .unwrap();
    let created = next_json(&mut socket).await;
    assert_eq!(created["type"], "conference_created");
    assert_eq!(created["data"]["name"], "ours");
    assert_eq!(
        created["topic"],
        format!("customer_id:{}:conference:{}", a.id, conference.id)
    );
    let join = JoinRequest {
        offer: "v=0\r\n".into(),
        ..JoinRequest::default()
    };
    let (participant, _) = service
        .join(a.id, &conference.id.to_string(), &join)
        .unwrap();
    let mut kinds = Vec::new();
    while !kinds.contains(&"conferencecall_joined".to_owned()) {
        let message = next_json(&mut socket).await;
        if message["type"] == "conferencecall_joined" {
            assert_eq!(message["data"]["id"], json!(participant.call_id));
            assert_eq!(
                message["topic"],
                format!(
                    "customer_id:{}:conferencecall:{}",
                    a.id, participant.call_id
                )
            );
        }
        kinds.push(message["type"].as_str().unwrap().to_owned());
    }
    assert!(
        kinds.contains(&"conferencecall_joining".to_owned()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"conference_updated".to_owned()),
        "{kinds:?}"
    );

    // Unsubscribed: quiet.
    socket
        .send(subscribe("unsubscribe", &[mine]))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["topics"], json!([]));
    service
        .create_conference(a.id, &json!({"name": "unheard"}))
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), socket.next())
            .await
            .is_err()
    );
}
