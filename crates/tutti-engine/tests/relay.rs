//! A participant whose packets pass through another endpoint of the process (as a WebRTC
//! browser's do): it hears the room and is heard through its relay link, and leaving closes
//! the link.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{engine, join, wait_for, Caller};
use tutti_codec::g711;
use tutti_engine::{
    EngineError, EngineEvent, JoinRequest, LeaveReason, RelayLink, RelayWaker, RoomId, RoomSettings,
};
use tutti_mix::ParticipantSettings;
use tutti_rtp::packet::{parse_datagram, write_rtp, Datagram, OutgoingRtp};

/// Counts wakes for one token.
#[derive(Debug, Default)]
struct Wakes {
    token: AtomicU64,
    count: AtomicU64,
}

impl RelayWaker for Wakes {
    fn wake(&self, token: u64) {
        self.token.store(token, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

const OFFER: &str = "v=0\r\no=- 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";

/// The endpoint's side: sends a tone through the link, keeps what the room sends back.
struct Relayed {
    link: RelayLink,
    sent: u64,
    heard: Vec<f32>,
}

impl Relayed {
    fn send_frame(&mut self, hz: f64) {
        let mut payload = [0u8; 160];
        for (i, b) in payload.iter_mut().enumerate() {
            let t = (self.sent * 160 + i as u64) as f64 / 8000.0;
            let s = 0.3 * (2.0 * std::f64::consts::PI * hz * t).sin();
            *b = g711::linear_to_ulaw((s * 32767.0) as i16);
        }
        let header = OutgoingRtp {
            payload_type: 0,
            sequence: self.sent as u16,
            timestamp: (self.sent * 160) as u32,
            ssrc: 0xb0b,
            marker: self.sent == 0,
        };
        let mut packet = [0u8; 300];
        let len = write_rtp(&mut packet, &header, &payload).unwrap();
        assert!(self.link.deliver(&packet[..len], Instant::now()));
        self.sent += 1;
    }

    fn take(&mut self) {
        let heard = &mut self.heard;
        self.link.take(|packet| {
            if let Ok(Datagram::Rtp(rtp)) = parse_datagram(packet, None) {
                heard.extend(
                    rtp.payload
                        .iter()
                        .map(|&b| f32::from(g711::ulaw_to_linear(b)) / 32768.0),
                );
            }
        });
    }
}

#[test]
fn a_relayed_participant_hears_and_is_heard_and_leaving_closes_its_link() {
    let engine = engine(43_100..=43_199);
    let room = RoomId(0x5e1a7);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut caller = Caller::new(880.0);
    join(&engine, room, &mut caller, ParticipantSettings::default());

    let wakes = Arc::new(Wakes::default());
    let joined = engine
        .join(
            room,
            JoinRequest {
                offer: OFFER.into(),
                settings: ParticipantSettings::default(),
                latching: None,
                signalled_source: None,
                port: None,
                relay: Some((wakes.clone(), 42)),
            },
        )
        .unwrap();
    assert_eq!(
        joined.port, 0,
        "a relayed participant has no port of its own"
    );
    let mut relayed = Relayed {
        link: joined.relay.clone().expect("a relay link"),
        sent: 0,
        heard: Vec::new(),
    };

    let start = Instant::now();
    for frame in 0..75u32 {
        caller.send_frame();
        relayed.send_frame(440.0);
        caller.drain();
        relayed.take();
        let next = start + Duration::from_millis(u64::from(frame + 1) * 20);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    assert!(
        caller.level(440.0, 0.5) > 0.05,
        "the RTP caller hears the relayed participant"
    );
    let tail = &relayed.heard[relayed.heard.len().saturating_sub(4000)..];
    assert!(
        tutti_e2e::amplitude_at(tail, 8000, 880.0) > 0.05,
        "the relayed participant hears the RTP caller ({} samples)",
        relayed.heard.len()
    );
    assert_eq!(wakes.token.load(Ordering::Relaxed), 42);
    assert!(
        wakes.count.load(Ordering::Relaxed) >= 25,
        "woken per packet"
    );

    // The engine neither moves nor renegotiates a relayed participant's media.
    assert!(engine.detach(room, joined.key).is_err());
    assert!(matches!(
        engine.renegotiate(room, joined.key, OFFER),
        Err(EngineError::Relayed { .. })
    ));

    let before = wakes.count.load(Ordering::Relaxed);
    engine.leave(room, joined.key).unwrap();
    wait_for(
        &engine,
        |e| matches!(e, EngineEvent::Left { participant, reason: LeaveReason::Kicked, .. } if *participant == joined.key),
    );
    assert!(relayed.link.is_closed(), "leaving closes the link");
    assert!(
        wakes.count.load(Ordering::Relaxed) > before,
        "and wakes the endpoint"
    );
    assert!(!relayed.link.deliver(&[0x80, 0, 0, 1], Instant::now()));
}
