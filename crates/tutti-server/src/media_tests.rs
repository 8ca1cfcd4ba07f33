//! The engine adapter's SIP operations: offers on reserved ports, answers to them, detach
//! keeping the port, renegotiation, and the errors the SIP layer turns into responses.

use std::path::PathBuf;

use tutti_conference::{JoinSpec, MediaError, MediaPlane, RoomSpec};
use tutti_engine::{Engine, EngineConfig};
use uuid::Uuid;

use super::EngineMedia;
use crate::prompts::{PromptSettings, Prompts};

fn media(ports: std::ops::RangeInclusive<u16>) -> EngineMedia {
    let scratch = std::env::temp_dir();
    EngineMedia {
        engine: Some(
            Engine::start(EngineConfig {
                mixer_threads: 1,
                ports,
                ..Default::default()
            })
            .unwrap(),
        ),
        recordings: scratch.clone(),
        prompts: Prompts::new(PromptSettings::new(
            PathBuf::from("."),
            scratch.clone(),
            scratch,
        )),
        recorders: Default::default(),
    }
}

fn room_spec() -> RoomSpec {
    RoomSpec {
        max_participants: 0,
        entry_tone: None,
        exit_tone: None,
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
