//! What Opus listeners are sent follows their offers: wideband CELT by default, SILK to a
//! listener that asks for in-band FEC or caps the bitrate below what CELT needs.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use tutti_engine::{RoomId, RoomSettings};
use tutti_mix::ParticipantSettings;
use tutti_rtp::packet::{parse_datagram, Datagram};

mod common;

use common::{engine, join, join_offer, Caller};

/// An Opus listener on a raw socket, collecting the payloads it is sent.
struct Listener {
    socket: UdpSocket,
    payloads: Vec<Vec<u8>>,
}

impl Listener {
    fn join(engine: &tutti_engine::Engine, room: RoomId, fmtp: Option<&str>) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let port = socket.local_addr().unwrap().port();
        let fmtp = fmtp.map_or(String::new(), |f| format!("a=fmtp:111 {f}\r\n"));
        let offer = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n{fmtp}a=sendrecv\r\n");
        join_offer(engine, room, offer).unwrap();
        Self {
            socket,
            payloads: Vec::new(),
        }
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 1500];
        while let Ok((len, _)) = self.socket.recv_from(&mut buf) {
            if let Ok(Datagram::Rtp(packet)) = parse_datagram(&buf[..len], None) {
                self.payloads.push(packet.payload.to_vec());
            }
        }
    }

    /// The Opus configurations (RFC 6716 §3.1) and the mean payload size of the last second.
    fn configs_and_mean_size(&self) -> (Vec<u8>, usize) {
        let recent = &self.payloads[self.payloads.len().saturating_sub(50)..];
        assert!(recent.len() >= 40, "{} packets", self.payloads.len());
        let mut configs: Vec<u8> = recent.iter().map(|p| p[0] >> 3).collect();
        configs.sort_unstable();
        configs.dedup();
        let mean = recent.iter().map(Vec::len).sum::<usize>() / recent.len();
        (configs, mean)
    }
}

#[test]
fn opus_listeners_get_celt_silk_with_fec_or_a_capped_bitrate_as_their_offers_ask() {
    let engine = engine(35_000..=35_099);
    let room = RoomId(1);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let mut talker = Caller::new(440.0);
    join(&engine, room, &mut talker, ParticipantSettings::default());
    let mut plain = Listener::join(&engine, room, None);
    let mut plain_too = Listener::join(&engine, room, Some("minptime=10"));
    let mut fec = Listener::join(&engine, room, Some("minptime=10;useinbandfec=1"));
    let mut capped = Listener::join(&engine, room, Some("maxaveragebitrate=20000"));

    let start = Instant::now();
    for frame in 0..75u32 {
        talker.send_frame();
        for listener in [&mut plain, &mut plain_too, &mut fec, &mut capped] {
            listener.drain();
        }
        let next = start + Duration::from_millis(u64::from(frame + 1) * 20);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }

    // CELT-only wideband is configurations 20–23; SILK-only wideband 8–11.
    let (configs, mean) = plain.configs_and_mean_size();
    assert_eq!(configs, [23], "wideband CELT, 20 ms");
    assert!((200..=280).contains(&mean), "96 kb/s is 240 bytes: {mean}");
    // Listeners asking alike are sent the same encoding (one encoder for both).
    let recent = |l: &Listener| l.payloads[l.payloads.len() - 40..].to_vec();
    assert!(
        recent(&plain_too)
            .iter()
            .all(|p| recent(&plain).contains(p)),
        "the same payloads"
    );

    let (configs, mean) = fec.configs_and_mean_size();
    assert_eq!(configs, [9], "wideband SILK, 20 ms");
    assert!(mean <= 170, "at most 64 kb/s: {mean}");

    let (configs, mean) = capped.configs_and_mean_size();
    assert!(configs.iter().all(|c| *c < 12), "SILK: {configs:?}");
    assert!(
        mean <= 70,
        "about 20 kb/s, 50 bytes (VBR overshoots on a tone): {mean}"
    );
}
