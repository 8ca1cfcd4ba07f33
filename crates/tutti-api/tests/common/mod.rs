//! Test doubles shared by the API's tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tutti_conference::{
    ConferenceService, JoinSpec, JoinedMedia, MediaError, MediaMetrics, MediaPlane,
    ParticipantState, ParticipantUpdate, RoomSpec, RoomState,
};
use uuid::Uuid;

/// A media plane in memory: rooms and participants without audio. Tones with `!` are refused,
/// and so is media whose name starts with `missing` (as media that cannot be fetched).
/// Everything played or spoken is remembered (`played`), each for 50 ms; relations too.
#[derive(Default)]
pub struct MemoryMedia {
    rooms: Mutex<HashMap<Uuid, (RoomSpec, RoomState)>>,
    /// (room, participant, what) in the order they were played; speech as `talk:<text>`.
    pub played: Mutex<Vec<(Uuid, Option<u32>, String)>>,
    /// (room, listener, speaker, hears) in the order they were set.
    pub relations: Mutex<Vec<(Uuid, u32, u32, bool)>>,
    /// Whether this media plane offers text to speech.
    pub speech: bool,
    /// (room, participant, fragment) of every WHIP/WHEP `PATCH`, in order.
    pub patches: Mutex<Vec<(Uuid, u32, String)>>,
    /// The rooms and their sizes `metrics()` reports (set by tests; the plane plays no audio).
    pub room_sizes: Mutex<Vec<(Uuid, u64)>>,
    /// What `metrics()` reports of the ticks: cumulative counts per bucket of
    /// [`TICK_BOUNDS`] and `+Inf`, and their sum in seconds.
    pub ticks: Mutex<(Vec<u64>, f64)>,
}

/// The tick-duration buckets MemoryMedia reports, seconds.
pub const TICK_BOUNDS: [f64; 3] = [0.001, 0.005, 0.02];

/// The ICE servers MemoryMedia gives browsers.
pub fn ice_servers() -> serde_json::Value {
    serde_json::json!([{"urls": ["stun:stun.example.net:3478"]}])
}

/// What MemoryMedia answers a WebRTC offer (`UDP/TLS/RTP/SAVPF`) with: ICE-lite, a DTLS
/// fingerprint, Opus, the offer's `mid` and direction mirrored, port 7882 (enough for a
/// browser's `setRemoteDescription`; no media flows).
pub fn webrtc_answer(offer: &str) -> String {
    let direction = if offer.contains("a=recvonly") {
        "sendonly"
    } else if offer.contains("a=sendonly") {
        "recvonly"
    } else {
        "sendrecv"
    };
    let mid = offer
        .lines()
        .find_map(|l| l.strip_prefix("a=mid:"))
        .unwrap_or("0")
        .trim();
    let fingerprint = vec!["AB"; 32].join(":");
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
         a=group:BUNDLE {mid}\r\nm=audio 7882 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\n\
         a=ice-ufrag:srv1\r\na=ice-pwd:serverpasswordserverpass\r\n\
         a=fingerprint:sha-256 {fingerprint}\r\na=setup:passive\r\na=mid:{mid}\r\n\
         a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na={direction}\r\n\
         a=candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host\r\n"
    )
}

/// A browser's WebRTC offer, `sendrecv` unless `direction` says otherwise.
pub fn webrtc_offer(direction: &str) -> String {
    format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:brws\r\na=ice-pwd:browserpasswordbrowserpass\r\n\
         a=fingerprint:sha-256 CC:DD\r\na=setup:actpass\r\na=mid:0\r\n\
         a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
         a={direction}\r\n"
    )
}

/// A service over an in-memory store and [`MemoryMedia`]; tokens live an hour.
pub fn memory_service() -> Arc<ConferenceService> {
    ConferenceService::new(
        Arc::new(tutti_store::SqliteStore::in_memory().unwrap()),
        Arc::new(MemoryMedia::default()),
        Duration::from_secs(3600),
    )
}

/// Waits (5 s at most) for the server to close `socket` because its token, expiring at
/// `expires` (Unix seconds), expired: checks that it is not early and that the close frame is
/// 1008 "the token expired"; returns the message the server sent before closing.
pub async fn expiry_notice<S>(
    socket: &mut tokio_tungstenite::WebSocketStream<S>,
    expires: i64,
) -> serde_json::Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let notice = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the server closes within 5 s")
        .unwrap()
        .unwrap();
    let expiry = std::time::UNIX_EPOCH + Duration::from_secs(expires as u64);
    assert!(
        std::time::SystemTime::now() >= expiry,
        "not before the token expired"
    );
    let close = socket.next().await.unwrap().unwrap();
    let Message::Close(Some(frame)) = close else {
        panic!("expected a close frame, got {close:?}");
    };
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (1008, "the token expired")
    );
    serde_json::from_str(notice.to_text().unwrap()).unwrap()
}

/// How long anything MemoryMedia plays lasts.
pub const PLAY_LENGTH: Duration = Duration::from_millis(50);

impl MemoryMedia {
    /// A media plane with text to speech.
    pub fn with_speech() -> Self {
        Self {
            speech: true,
            ..Self::default()
        }
    }

    /// Marks a participant talking or not in its room's state.
    pub fn set_talking(&self, room: Uuid, participant: u32, talking: bool) {
        if let Some((_, state)) = self.rooms.lock().unwrap().get_mut(&room) {
            for p in state.participants.iter_mut() {
                if p.participant_id == participant {
                    p.talking = talking;
                }
            }
        }
    }

    /// The spec a room runs with now.
    pub fn spec(&self, room: Uuid) -> Option<RoomSpec> {
        self.rooms
            .lock()
            .unwrap()
            .get(&room)
            .map(|(spec, _)| spec.clone())
    }
}

impl MediaPlane for MemoryMedia {
    fn check_tone(&self, tone: &str) -> Result<(), String> {
        if tone.contains('!') {
            Err(format!("cannot play {tone}"))
        } else {
            Ok(())
        }
    }
    fn ensure_room(&self, room: Uuid, spec: &RoomSpec) -> Result<(), MediaError> {
        self.rooms
            .lock()
            .unwrap()
            .entry(room)
            .or_insert_with(|| (spec.clone(), RoomState::default()));
        Ok(())
    }
    fn end_room(&self, room: Uuid) {
        self.rooms.lock().unwrap().remove(&room);
    }
    fn join(&self, room: Uuid, spec: &JoinSpec) -> Result<JoinedMedia, MediaError> {
        if !spec.offer.starts_with("v=0") {
            return Err(MediaError::Offer("the offer is not valid SDP".into()));
        }
        if spec.offer.contains("UDP/TLS/RTP/SAVPF") && !spec.offer.contains("a=fingerprint:") {
            return Err(MediaError::Offer(
                "the WebRTC offer has no DTLS fingerprint".into(),
            ));
        }
        let mut rooms = self.rooms.lock().unwrap();
        let (room_spec, state) = rooms
            .get_mut(&room)
            .ok_or_else(|| MediaError::Unavailable("no room".into()))?;
        if state.locked {
            return Err(MediaError::Locked);
        }
        if room_spec.max_participants != 0 && state.participants.len() >= room_spec.max_participants
        {
            return Err(MediaError::Full(room_spec.max_participants));
        }
        let participant_id = state
            .participants
            .iter()
            .map(|p| p.participant_id)
            .max()
            .unwrap_or(0)
            + 1;
        state.participants.push(ParticipantState {
            participant_id,
            talking: false,
            mute_detect: false,
            current_energy: 0.0,
            energy_level: spec.energy_level,
            speak: !spec.muted,
            hear: !spec.deaf,
            moderator: spec.moderator,
        });
        if spec.offer.contains("UDP/TLS/RTP/SAVPF") {
            return Ok(JoinedMedia {
                participant_id,
                answer: webrtc_answer(&spec.offer),
                port: 7882,
            });
        }
        Ok(JoinedMedia {
            participant_id,
            answer: format!("v=0\r\nm=audio {} RTP/AVP 0\r\n", 20_000 + participant_id),
            port: (20_000 + participant_id) as u16,
        })
    }
    fn kick(&self, room: Uuid, participant: u32) -> Result<(), MediaError> {
        let mut rooms = self.rooms.lock().unwrap();
        let (_, state) = rooms
            .get_mut(&room)
            .ok_or(MediaError::NoParticipant(participant))?;
        state
            .participants
            .retain(|p| p.participant_id != participant);
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
        let Some((_, state)) = rooms.get_mut(&room) else {
            return Ok(());
        };
        for p in state.participants.iter_mut() {
            if participant.is_some_and(|id| id != p.participant_id)
                || (skip_moderators && p.moderator)
            {
                continue;
            }
            match update {
                ParticipantUpdate::Speak(v) => p.speak = v,
                ParticipantUpdate::Hear(v) => p.hear = v,
            }
        }
        Ok(())
    }
    fn set_locked(&self, room: Uuid, locked: bool) -> Result<(), MediaError> {
        if let Some((_, state)) = self.rooms.lock().unwrap().get_mut(&room) {
            state.locked = locked;
        }
        Ok(())
    }
    fn play(
        &self,
        room: Uuid,
        participant: Option<u32>,
        media: &str,
    ) -> Result<Duration, MediaError> {
        if media.starts_with("missing") {
            return Err(MediaError::Unplayable);
        }
        self.check_tone(media).map_err(MediaError::Media)?;
        self.played
            .lock()
            .unwrap()
            .push((room, participant, media.to_owned()));
        Ok(PLAY_LENGTH)
    }
    fn can_speak(&self) -> bool {
        self.speech
    }
    fn speak(
        &self,
        room: Uuid,
        participant: Option<u32>,
        text: &str,
        _: &str,
        _: &str,
    ) -> Result<Duration, MediaError> {
        self.played
            .lock()
            .unwrap()
            .push((room, participant, format!("talk:{text}")));
        Ok(PLAY_LENGTH)
    }
    fn update_room(&self, room: Uuid, spec: &RoomSpec) -> Result<(), MediaError> {
        if let Some((current, _)) = self.rooms.lock().unwrap().get_mut(&room) {
            *current = spec.clone();
        }
        Ok(())
    }
    fn relate(
        &self,
        room: Uuid,
        listener: u32,
        speaker: u32,
        hears: bool,
    ) -> Result<(), MediaError> {
        self.relations
            .lock()
            .unwrap()
            .push((room, listener, speaker, hears));
        Ok(())
    }
    fn start_recording(&self, room: Uuid, _: Option<Duration>) -> Result<String, MediaError> {
        Ok(format!("memory://{room}"))
    }
    fn stop_recording(&self, _: Uuid) -> Result<(), MediaError> {
        Ok(())
    }
    fn metrics(&self) -> MediaMetrics {
        let rooms = self.room_sizes.lock().unwrap().clone();
        let (tick_buckets, tick_seconds_sum) = self.ticks.lock().unwrap().clone();
        let tick_buckets = if tick_buckets.is_empty() {
            vec![0; TICK_BOUNDS.len() + 1]
        } else {
            tick_buckets
        };
        // No audio, so no datagram was ever dropped; each reason is still reported.
        MediaMetrics {
            rooms: rooms.len() as u64,
            participants: rooms.iter().map(|(_, n)| n).sum(),
            room_participants: rooms,
            tick_bucket_bounds: TICK_BOUNDS.to_vec(),
            ticks: tick_buckets.last().copied().unwrap_or(0),
            tick_buckets,
            tick_seconds_sum,
            rtp_dropped: vec![
                ("foreign_source", 0),
                ("malformed", 0),
                ("unexpected_payload_type", 0),
                ("overflow", 0),
            ],
            ..MediaMetrics::default()
        }
    }
    /// Records the fragment; one with a new `ice-ufrag` is an ICE restart, answered with
    /// `a=ice-ufrag:srv2` and `a=ice-pwd:…`. A participant not in the room is refused.
    fn patch_ice(
        &self,
        room: Uuid,
        participant: u32,
        sdpfrag: &str,
    ) -> Result<Option<String>, MediaError> {
        let present = self
            .rooms
            .lock()
            .unwrap()
            .get(&room)
            .is_some_and(|(_, state)| {
                state
                    .participants
                    .iter()
                    .any(|p| p.participant_id == participant)
            });
        if !present {
            return Err(MediaError::NoParticipant(participant));
        }
        self.patches
            .lock()
            .unwrap()
            .push((room, participant, sdpfrag.to_owned()));
        Ok(sdpfrag
            .contains("a=ice-ufrag:")
            .then(|| "a=ice-ufrag:srv2\r\na=ice-pwd:restartedpasswordrestarted\r\n".to_owned()))
    }
    fn ice_servers(&self) -> serde_json::Value {
        ice_servers()
    }
    fn room_state(&self, room: Uuid) -> Option<RoomState> {
        self.rooms
            .lock()
            .unwrap()
            .get(&room)
            .map(|(_, state)| state.clone())
    }
}
