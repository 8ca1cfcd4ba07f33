//! A SIP server over a conference service with an in-memory store and a media plane that
//! answers offers without media, and a raw UDP SIP client to talk to it.

#![allow(dead_code, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tutti_conference::{
    ConferenceService, JoinSpec, JoinedMedia, MediaError, MediaPlane, ParticipantState,
    ParticipantUpdate, RoomSpec, RoomState,
};
use tutti_sip::{SipConfig, SipServer, TrunkConfig};
use uuid::Uuid;

/// Rooms of participants; an offer must look like SDP with an audio line.
#[derive(Default)]
pub struct AnsweringMedia {
    rooms: Mutex<HashMap<Uuid, Vec<ParticipantState>>>,
}

impl MediaPlane for AnsweringMedia {
    fn check_tone(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn ensure_room(&self, room: Uuid, _: &RoomSpec) -> Result<(), MediaError> {
        self.rooms.lock().unwrap().entry(room).or_default();
        Ok(())
    }
    fn end_room(&self, room: Uuid) {
        self.rooms.lock().unwrap().remove(&room);
    }
    fn join(&self, room: Uuid, spec: &JoinSpec) -> Result<JoinedMedia, MediaError> {
        if !spec.offer.starts_with("v=0") || !spec.offer.contains("m=audio") {
            return Err(MediaError::Offer("no audio stream in the offer".into()));
        }
        if spec.offer.contains("a=x-slow") {
            // A media plane that takes its time, so that a caller can give up meanwhile.
            std::thread::sleep(Duration::from_millis(700));
        }
        let mut rooms = self.rooms.lock().unwrap();
        let participants = rooms.entry(room).or_default();
        let participant_id = participants.len() as u32 + 1;
        participants.push(ParticipantState {
            participant_id,
            talking: false,
            mute_detect: false,
            current_energy: 0.0,
            energy_level: spec.energy_level,
            speak: !spec.muted,
            hear: !spec.deaf,
            moderator: spec.moderator,
        });
        let port = spec.port.unwrap_or(40_000 + participant_id as u16);
        Ok(JoinedMedia {
            participant_id,
            answer: answer(port, 1, "sendrecv"),
            port,
        })
    }
    fn kick(&self, room: Uuid, participant: u32) -> Result<(), MediaError> {
        if let Some(participants) = self.rooms.lock().unwrap().get_mut(&room) {
            participants.retain(|p| p.participant_id != participant);
        }
        Ok(())
    }
    fn renegotiate(&self, _: Uuid, participant: u32, offer: &str) -> Result<String, MediaError> {
        if !offer.contains("m=audio") {
            return Err(MediaError::Offer("no audio stream in the offer".into()));
        }
        let direction = if offer.contains("a=sendonly") {
            "recvonly"
        } else if offer.contains("a=inactive") {
            "inactive"
        } else {
            "sendrecv"
        };
        Ok(answer(40_000 + participant as u16, 2, direction))
    }
    fn offer(&self) -> Result<tutti_conference::OfferedMedia, MediaError> {
        Ok(tutti_conference::OfferedMedia {
            offer: answer(41_000, 1, "sendrecv"),
            port: 41_000,
        })
    }
    fn update_room(&self, _: Uuid, _: &RoomSpec) -> Result<(), MediaError> {
        Ok(())
    }
    fn relate(&self, _: Uuid, _: u32, _: u32, _: bool) -> Result<(), MediaError> {
        Ok(())
    }
    fn update(
        &self,
        room: Uuid,
        participant: Option<u32>,
        update: ParticipantUpdate,
        skip_moderators: bool,
    ) -> Result<(), MediaError> {
        let mut rooms = self.rooms.lock().unwrap();
        for p in rooms.get_mut(&room).into_iter().flatten() {
            if participant.is_some_and(|id| id != p.participant_id)
                || (skip_moderators && p.moderator)
            {
                continue;
            }
            match update {
                ParticipantUpdate::Speak(speak) => p.speak = speak,
                ParticipantUpdate::Hear(hear) => p.hear = hear,
            }
        }
        Ok(())
    }
    fn set_locked(&self, _: Uuid, _: bool) -> Result<(), MediaError> {
        Ok(())
    }
    fn play(&self, _: Uuid, _: Option<u32>, _: &str) -> Result<Duration, MediaError> {
        Ok(Duration::from_millis(10))
    }
    fn room_state(&self, room: Uuid) -> Option<RoomState> {
        self.rooms.lock().unwrap().get(&room).map(|p| RoomState {
            locked: false,
            participants: p.clone(),
        })
    }
    fn start_recording(&self, _: Uuid, _: Option<Duration>) -> Result<String, MediaError> {
        Err(MediaError::Unavailable("no recording here".into()))
    }
    fn stop_recording(&self, _: Uuid) -> Result<(), MediaError> {
        Ok(())
    }
}

/// tutti's side of a session on `port`.
fn answer(port: u16, version: u32, direction: &str) -> String {
    format!(
        "v=0\r\no=tutti 1 {version} IN IP4 127.0.0.1\r\ns=tutti\r\nc=IN IP4 127.0.0.1\r\n\
         t=0 0\r\nm=audio {port} RTP/AVP 0\r\na={direction}\r\n"
    )
}

/// A service with one account and one conference numbered 1000.
pub struct World {
    pub service: Arc<ConferenceService>,
    pub account: Uuid,
    pub conference: Uuid,
}

impl World {
    pub fn new() -> Self {
        let store = Arc::new(tutti_store::SqliteStore::in_memory().unwrap());
        let media = Arc::new(AnsweringMedia::default());
        let service = ConferenceService::new(store, media, Duration::from_secs(3600));
        let account = service.create_account("acme").unwrap().id;
        let conference = service
            .create_conference(
                account,
                &serde_json::json!({
                    "name": "standup",
                    "conference_numbers": ["1000"],
                    "play_welcome": false
                }),
            )
            .unwrap()
            .id;
        Self {
            service,
            account,
            conference,
        }
    }

    /// The participant's media state.
    pub fn participant(&self, id: u32) -> tutti_conference::ParticipantState {
        let conference = self
            .service
            .conference(self.account, &self.conference.to_string())
            .unwrap();
        self.service
            .realtime(&conference)
            .participants
            .into_iter()
            .find(|p| p.state.participant_id == id)
            .expect("the participant")
            .state
    }

    /// Participants in the conference now.
    pub fn participants(&self) -> usize {
        let conference = self
            .service
            .conference(self.account, &self.conference.to_string())
            .unwrap();
        self.service.realtime(&conference).participants.len()
    }

    /// A SIP server on a free port; loopback is a trunk of the account when `trusted`.
    pub async fn sip(&self, trusted: bool) -> SipServer {
        let networks = if trusted {
            vec!["127.0.0.0/8".parse().unwrap()]
        } else {
            vec!["192.0.2.0/24".parse().unwrap()]
        };
        let config = SipConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            trunks: vec![TrunkConfig {
                name: "test".into(),
                networks,
                account: Some(self.account),
            }],
            ..SipConfig::default()
        };
        SipServer::start(config, self.service.clone())
            .await
            .unwrap()
    }
}

/// A SIP peer speaking raw text over UDP.
pub struct Peer {
    pub socket: UdpSocket,
    pub server: SocketAddr,
}

pub const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                         m=audio 49170 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
                         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

impl Peer {
    pub async fn new(server: &SipServer) -> Self {
        Self {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server: server.local_addresses()[0],
        }
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    /// A request from this peer in dialog `(call_id, cseq, to_tag)`: `extra` headers, then
    /// the body.
    pub fn request(
        &self,
        method: &str,
        uri: &str,
        (call_id, cseq, to_tag): (&str, u32, Option<&str>),
        extra: &str,
        body: &str,
    ) -> String {
        let port = self.port();
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}{cseq}{method}\r\n\
             Max-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@127.0.0.1:{port}>;tag=alice\r\n\
             To: <{uri}>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:alice@127.0.0.1:{port}>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    pub async fn send(&self, text: &str) {
        self.socket
            .send_to(text.as_bytes(), self.server)
            .await
            .unwrap();
    }

    /// The next message whose first line starts with `start` (others are skipped), within 5 s.
    pub async fn expect(&self, start: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut buffer = vec![0; 65_536];
        loop {
            let received = tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buffer))
                .await
                .unwrap_or_else(|_| panic!("no {start:?} within 5 s"))
                .unwrap();
            let text = String::from_utf8_lossy(&buffer[..received.0]).into_owned();
            if text.starts_with(start) {
                return text;
            }
        }
    }
}

impl Peer {
    /// The next final response (1xx are skipped).
    pub async fn final_response(&self) -> String {
        loop {
            let response = self.expect("SIP/2.0 ").await;
            if !response.starts_with("SIP/2.0 1") {
                return response;
            }
        }
    }
}

/// A header's value in a message.
pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The To tag of a response.
pub fn to_tag(message: &str) -> String {
    header(message, "To")
        .and_then(|to| to.split(";tag=").nth(1))
        .map(|tag| tag.split(';').next().unwrap_or(tag).to_owned())
        .expect("a To tag")
}
