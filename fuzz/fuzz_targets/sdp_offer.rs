//! Any text as an SDP offer: an answer or an `SdpError`, never a panic; an answer names the
//! port tutti gave it and one of the codecs tutti speaks.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use tutti_rtp::sdp::{answer_offer, AnswerConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = std::str::from_utf8(data) else {
        return;
    };
    let config = AnswerConfig {
        address: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        port: 20_002,
        preference: AnswerConfig::default_preference(),
        session_id: 42,
        ptime_ms: 20,
    };
    if let Ok(negotiated) = answer_offer(offer, &config) {
        assert!(negotiated.answer.contains("m=audio 20002 "));
        assert!(config.preference.iter().any(|(name, clock)| {
            negotiated.codec.name.eq_ignore_ascii_case(name)
                && negotiated.codec.clock_rate == *clock
        }));
    }
});
