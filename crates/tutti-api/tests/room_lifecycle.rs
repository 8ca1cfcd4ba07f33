//! Rooms start with their first admitted participant and stop after the last one; every
//! departure is booked once however many reports of it race; key presses reach Kazoo's and
//! VoIPbin's websockets.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::MemoryMedia;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tutti_api::AppState;
use tutti_conference::{
    ConferenceService, Departure, Digit, JoinRequest, MediaEvent, MediaEventKind,
    ParticipantAction, ServiceError,
};
use tutti_store::SqliteStore;
use uuid::Uuid;

fn service() -> (Arc<ConferenceService>, Arc<MemoryMedia>) {
    let media = Arc::new(MemoryMedia::default());
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let service = ConferenceService::new(store, media.clone(), Duration::from_secs(3600));
    (service, media)
}

fn offer() -> JoinRequest {
    JoinRequest {
        offer: "v=0\r\n".into(),
        ..JoinRequest::default()
    }
}

#[test]
fn a_refused_join_or_a_lock_starts_no_room() {
    let (service, media) = service();
    let account = service.create_account("a").unwrap().id;
    let conference = service
        .create_conference(account, &json!({"name": "Idle"}))
        .unwrap();
    let id = conference.id.to_string();
    let mut events = service.subscribe();

    let bad = JoinRequest {
        offer: "not sdp".into(),
        ..JoinRequest::default()
    };
    assert!(service.join(account, &id, &bad).is_err());
    assert!(
        media.spec(conference.id).is_none(),
        "no room after a refused join"
    );

    // Locking an idle conference keeps the lock for later without starting a room.
    service.set_locked(&conference, true).unwrap();
    assert!(media.spec(conference.id).is_none(), "no room after a lock");
    let read = service.conference(account, &id).unwrap();
    assert!(service.realtime(&read).is_locked);
    assert!(matches!(
        service.join(account, &id, &offer()),
        Err(ServiceError::Media(tutti_conference::MediaError::Locked))
    ));
    assert!(media.spec(conference.id).is_none());
    // Nothing to play or record to an empty conference.
    assert!(matches!(
        service.play(&conference, "tone_stream://%(100,0,440)"),
        Err(ServiceError::Precondition(_))
    ));

    service.set_locked(&conference, false).unwrap();
    service.join(account, &id, &offer()).unwrap();
    assert!(
        media.spec(conference.id).is_some(),
        "the first join starts it"
    );
    let mut names = Vec::new();
    while let Ok(event) = events.try_recv() {
        names.push(event.name);
    }
    assert_eq!(
        names.iter().filter(|n| **n == "conference-create").count(),
        1,
        "{names:?}"
    );
}

#[test]
fn the_room_stops_after_the_last_participant_and_starts_again() {
    let (service, media) = service();
    let account = service.create_account("a").unwrap().id;
    let conference = service
        .create_conference(account, &json!({"name": "Daily"}))
        .unwrap();
    let id = conference.id.to_string();
    let mut events = service.subscribe();
    let (first, _) = service.join(account, &id, &offer()).unwrap();
    let (second, _) = service.join(account, &id, &offer()).unwrap();
    let room_left = |participant: u32, why| {
        service.on_media_event(&MediaEvent {
            conference: conference.id,
            participant_id: participant,
            kind: MediaEventKind::Left(why),
        });
    };
    room_left(first.state.participant_id, Departure::Timeout);
    assert!(media.spec(conference.id).is_some(), "one is still there");
    service
        .act_on_participant(
            &conference,
            second.state.participant_id,
            &ParticipantAction::Kick,
        )
        .unwrap();
    assert!(media.spec(conference.id).is_none(), "the room stopped");
    let names: Vec<&str> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.name)
        .collect();
    assert_eq!(names.last(), Some(&"conference-destroy"), "{names:?}");
    // The document stays, and the next caller starts the room again.
    service.conference(account, &id).unwrap();
    service.join(account, &id, &offer()).unwrap();
    assert!(media.spec(conference.id).is_some());
}

#[test]
fn racing_reports_of_one_departure_are_booked_once() {
    let (service, _) = service();
    let account = service.create_account("a").unwrap().id;
    let conference = service
        .create_conference(account, &json!({"name": "Busy"}))
        .unwrap();
    let id = conference.id.to_string();
    // Someone who stays, so the room keeps running.
    service.join(account, &id, &offer()).unwrap();
    let mut events = service.subscribe();
    let mut calls = Vec::new();
    for _ in 0..20 {
        let (participant, _) = service.join(account, &id, &offer()).unwrap();
        calls.push((participant.state.participant_id, participant.call_id));
    }
    for &(participant, call) in &calls {
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let mut racers = Vec::new();
        for racer in 0..4 {
            let service = service.clone();
            let conference = conference.clone();
            let barrier = barrier.clone();
            racers.push(std::thread::spawn(move || {
                barrier.wait();
                match racer {
                    0 => {
                        let _ = service.act_on_participant(
                            &conference,
                            participant,
                            &ParticipantAction::Kick,
                        );
                    }
                    1 => {
                        let _ = service.kick_call(account, &call.to_string());
                    }
                    2 => service.on_media_event(&MediaEvent {
                        conference: conference.id,
                        participant_id: participant,
                        kind: MediaEventKind::Left(Departure::Timeout),
                    }),
                    _ => service.on_media_event(&MediaEvent {
                        conference: conference.id,
                        participant_id: participant,
                        kind: MediaEventKind::Left(Departure::Hangup),
                    }),
                }
            }));
        }
        for racer in racers {
            racer.join().unwrap();
        }
    }
    let mut counts: HashMap<(Uuid, &str), usize> = HashMap::new();
    while let Ok(event) = events.try_recv() {
        if let Some(call) = event.call_id {
            *counts.entry((call, event.name)).or_default() += 1;
        }
    }
    for &(_, call) in &calls {
        assert_eq!(counts.get(&(call, "call-leaving")), Some(&1), "{call}");
        assert_eq!(counts.get(&(call, "del-member")), Some(&1), "{call}");
        let stored = service.call(account, &call.to_string()).unwrap();
        assert_eq!(stored.status.as_str(), "leaved");
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_named(socket: &mut Socket, field: &str, name: &str) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(2), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {name} within 2 s"))
            .expect("the socket stays open")
            .expect("a readable message");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(text.as_str()).unwrap();
            if value[field] == name {
                return value;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_presses_reach_kazoo_and_voipbin_subscribers() {
    let (service, _) = service();
    let state = AppState::new(service.clone(), "tutti@test");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(tutti_api::serve(listener, state, std::future::pending()));
    let account = service.create_account("a").unwrap();
    let token = service.authenticate(&account.api_key).unwrap().token;
    let conference = service
        .create_conference(account.id, &json!({"name": "Keys"}))
        .unwrap();

    let (mut kazoo, _) = tokio_tungstenite::connect_async(format!("ws://{address}/v2/websocket"))
        .await
        .unwrap();
    kazoo
        .send(Message::Text(
            json!({"action": "subscribe", "auth_token": token, "request_id": "1", "data": {"account_id": account.id.simple().to_string(), "binding": "conference.event.*.*"}})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    next_named(&mut kazoo, "action", "reply").await;
    let (mut voipbin, _) =
        tokio_tungstenite::connect_async(format!("ws://{address}/v1.0/ws?token={token}"))
            .await
            .unwrap();
    voipbin
        .send(Message::Text(
            json!({"type": "subscribe", "topics": [format!("customer_id:{}:conferencecall", account.id)]})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    next_named(&mut voipbin, "type", "subscribed").await;

    let (participant, _) = service
        .join(account.id, &conference.id.to_string(), &offer())
        .unwrap();
    next_named(&mut voipbin, "type", "conferencecall_joined").await;
    service.on_media_event(&MediaEvent {
        conference: conference.id,
        participant_id: participant.state.participant_id,
        kind: MediaEventKind::Dtmf(Digit {
            digit: '7',
            duration_ms: 120,
        }),
    });
    let pressed = next_named(&mut kazoo, "name", "dtmf").await;
    assert_eq!(pressed["data"]["digit"], "7");
    assert_eq!(pressed["data"]["duration"], 120);
    assert_eq!(
        pressed["data"]["call_id"],
        json!(participant.call_id.simple().to_string())
    );
    let received = next_named(&mut voipbin, "type", "conferencecall_dtmf_received").await;
    assert_eq!(received["data"]["digit"], "7");
    assert_eq!(received["data"]["id"], json!(participant.call_id));
}
