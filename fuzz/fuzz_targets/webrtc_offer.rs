//! Any text as a browser's offer to the WebRTC endpoint: a summary and an answer, or a
//! `WebRtcError` naming the problem, never a panic. A summary is consistent with
//! `is_webrtc_offer`, and the engine offer written from it is plain RTP/AVP Opus.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use str0m::config::DtlsCert;
use tutti_webrtc::is_webrtc_offer;
use tutti_webrtc::offer::{accept, certificate, engine_offer, parse_fragment, parse_offer};

static CERT: OnceLock<DtlsCert> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_fragment(text);
    let webrtc = is_webrtc_offer(text);
    let Ok(summary) = parse_offer(text) else {
        return;
    };
    assert!(webrtc, "a WebRTC offer not recognised as one");
    let level_id = summary.audio_level_id.unwrap_or(1);
    let offer = engine_offer(&summary, level_id);
    assert!(offer.contains(&format!("m=audio 9 RTP/AVP {}\r\n", summary.opus_pt)));
    let cert = CERT.get_or_init(|| certificate().expect("certificate"));
    let candidate: SocketAddr = "198.51.100.1:7882".parse().expect("address");
    if let Ok((_rtc, answer)) = accept(summary, level_id, cert, candidate) {
        assert!(answer.contains("a=ice-lite"));
        assert!(!answer.contains("transport-cc"));
    }
});
