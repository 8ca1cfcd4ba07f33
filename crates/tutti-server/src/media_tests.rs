//! The engine adapter's SIP operations (offers on reserved ports, answers to them, detach
//! keeping the port, renegotiation, and the errors the SIP layer turns into responses) and its
//! routing of WebRTC offers to the WebRTC endpoint.

use std::path::PathBuf;
use std::sync::Arc;

use tutti_conference::{JoinSpec, MediaError, MediaPlane, RoomSpec};
use tutti_engine::{Engine, EngineConfig};
use uuid::Uuid;

use super::EngineMedia;
use crate::prompts::{PromptSettings, Prompts};

fn media(ports: std::ops::RangeInclusive<u16>) -> EngineMedia {
    let scratch = std::env::temp_dir();
    EngineMedia {
        engine: Some(Arc::new(
            Engine::start(EngineConfig {
                mixer_threads: 1,
                ports,
                ..Default::default()
            })
            .unwrap(),
        )),
        webrtc: None,
        ice_servers: serde_json::json!([]),
        recordings: scratch.clone(),
        prompts: Prompts::new(PromptSettings::new(
            PathBuf::from("."),
            scratch.clone(),
            scratch,
        )),
        recorders: Default::default(),
        cluster: std::sync::OnceLock::new(),
    }
}

fn room_spec() -> RoomSpec {
    RoomSpec {
        max_participants: 0,
        entry_tone: None,
        exit_tone: None,
        conference: true,
    }
}

fn spec(offer: String, port: Option<u16>) -> JoinSpec {
    JoinSpec {
        offer,
        muted: false,
        deaf: false,
        moderator: false,
        energy_level: 0.0,
        latching: None,
        signalled_source: None,
        port,
    }
}

fn sdp(port: u16, formats: &str, attributes: &str) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {formats}\r\n{attributes}")
}

#[test]
fn offers_answers_detach_and_renegotiation_reach_the_engine() {
    let media = media(36_500..=36_549);
    let (lobby, room) = (Uuid::from_u128(1), Uuid::from_u128(2));
    media.ensure_room(lobby, &room_spec()).unwrap();
    media.ensure_room(room, &room_spec()).unwrap();

    // Dial-out: tutti offers, the callee's answer joins on the offered port.
    let offered = media.offer().unwrap();
    assert!(offered
        .offer
        .contains(&format!("m=audio {} RTP/AVP", offered.port)));
    let joined = media
        .join(
            room,
            &spec(sdp(40_000, "0", "a=sendrecv\r\n"), Some(offered.port)),
        )
        .unwrap();
    assert_eq!(joined.port, offered.port);
    assert_eq!(joined.answer, offered.offer);

    // An unused offer is released.
    let unused = media.offer().unwrap();
    media.release_port(unused.port);
    std::net::UdpSocket::bind(("0.0.0.0", unused.port)).expect("released");

    // Dial-in: the lobby, then the conference on the same port.
    let caller = media
        .join(lobby, &spec(sdp(40_002, "0", "a=sendrecv\r\n"), None))
        .unwrap();
    let port = media.detach(lobby, caller.participant_id).unwrap();
    assert_eq!(port, caller.port);
    let moved = media
        .join(room, &spec(sdp(40_002, "0", "a=sendrecv\r\n"), Some(port)))
        .unwrap();
    assert_eq!(moved.port, port);

    // Hold, then an offer with no common codec: 488 for the SIP layer.
    let answer = media
        .renegotiate(
            room,
            moved.participant_id,
            &sdp(40_002, "0", "a=sendonly\r\n"),
        )
        .unwrap();
    assert!(answer.contains("a=recvonly\r\n"), "{answer}");
    let refused = media.renegotiate(
        room,
        moved.participant_id,
        &sdp(40_002, "3", "a=rtpmap:3 GSM/8000\r\n"),
    );
    assert!(matches!(refused, Err(MediaError::Offer(_))), "{refused:?}");
    let gone = media.detach(lobby, caller.participant_id);
    assert!(
        matches!(gone, Err(MediaError::NoParticipant(_))),
        "{gone:?}"
    );
}

/// A browser's offer, made by str0m as a browser would make it (ICE, DTLS fingerprint,
/// `UDP/TLS/RTP/SAVPF`, Opus).
fn browser_offer() -> String {
    let mut rtc = str0m::Rtc::builder().build(std::time::Instant::now());
    let host = str0m::Candidate::host("127.0.0.1:40100".parse().unwrap(), "udp").unwrap();
    rtc.add_local_candidate(host);
    let mut api = rtc.sdp_api();
    api.add_media(
        str0m::media::MediaKind::Audio,
        str0m::media::Direction::SendRecv,
        None,
        None,
        None,
    );
    api.apply().unwrap().0.to_sdp_string()
}

#[test]
fn webrtc_offers_go_to_the_webrtc_endpoint_and_plain_ones_to_the_engine() {
    let mut media = media(36_550..=36_599);
    let room = Uuid::from_u128(3);
    media.ensure_room(room, &room_spec()).unwrap();
    let offer = browser_offer();

    // Without an endpoint, a WebRTC offer is refused in words that say why.
    let refused = media.join(room, &spec(offer.clone(), None));
    assert!(
        matches!(&refused, Err(MediaError::Offer(text)) if text.contains("[webrtc] is disabled")),
        "{refused:?}"
    );

    let engine = media.engine.clone().unwrap();
    let config = tutti_webrtc::WebRtcConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let endpoint =
        tutti_webrtc::WebRtcEndpoint::start(&config, "127.0.0.1".parse().unwrap(), engine).unwrap();
    let port = endpoint.local_port();
    media.webrtc = Some(endpoint);

    let browser = media.join(room, &spec(offer, None)).unwrap();
    assert_eq!(browser.port, port, "the answer names the WebRTC port");
    assert!(browser.answer.contains("a=ice-lite"), "{}", browser.answer);
    assert!(
        browser
            .answer
            .contains(&format!("127.0.0.1 {port} typ host")),
        "{}",
        browser.answer
    );
    let phone = media
        .join(room, &spec(sdp(40_004, "0", "a=sendrecv\r\n"), None))
        .unwrap();
    assert_ne!(phone.port, port, "a plain offer gets a port of its own");
    // Snapshots are published every 100 ms.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while media.room_state(room).map_or(0, |s| s.participants.len()) < 2 {
        assert!(std::time::Instant::now() < deadline, "both are in the room");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // Trickle ICE reaches the browser's peer; an unknown participant is named.
    assert_eq!(
        media
            .patch_ice(
                room,
                browser.participant_id,
                "a=candidate:1 1 udp 2130706431 127.0.0.1 40101 typ host\r\n"
            )
            .unwrap(),
        None
    );
    let unknown = media.patch_ice(room, 999, "a=end-of-candidates\r\n");
    assert!(
        matches!(unknown, Err(MediaError::NoParticipant(999))),
        "{unknown:?}"
    );
}
