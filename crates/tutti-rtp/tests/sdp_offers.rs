//! SDP offer/answer against offers as real endpoints write them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tutti_rtp::sdp::{answer_offer, AnswerConfig, Direction, SdpError};

fn config() -> AnswerConfig {
    AnswerConfig {
        address: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        port: 20_002,
        preference: AnswerConfig::default_preference(),
        session_id: 42,
        ptime_ms: 20,
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/sdp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn baresip_gets_opus_and_telephone_events() {
    let n = answer_offer(&fixture("baresip-opus.sdp"), &config()).unwrap();
    assert_eq!(n.codec.name, "opus");
    assert_eq!(n.codec.payload_type, 96);
    assert_eq!(n.codec.channels, 2);
    assert_eq!(
        n.telephone_event.as_ref().map(|t| t.payload_type),
        Some(101)
    );
    assert_eq!(
        n.remote_rtp,
        "192.168.1.23:10468".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        n.remote_rtcp,
        "192.168.1.23:10469".parse::<SocketAddr>().unwrap()
    );
    assert!(!n.rtcp_mux);
    assert_eq!(n.remote_ptime_ms, Some(20));
    assert_eq!(n.direction, Direction::SendRecv);
    assert_eq!(
        n.answer,
        "v=0\r\no=tutti 42 42 IN IP4 198.51.100.1\r\ns=tutti\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
         m=audio 20002 RTP/AVP 96 101\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 minptime=10;useinbandfec=1\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\na=rtcp:20002\r\n"
    );
}

#[test]
fn a_pcmu_only_caller_gets_pcmu() {
    let n = answer_offer(&fixture("gstreamer-pcmu.sdp"), &config()).unwrap();
    assert_eq!(
        (
            n.codec.name.as_str(),
            n.codec.payload_type,
            n.codec.clock_rate
        ),
        ("PCMU", 0, 8000)
    );
    assert_eq!(n.telephone_event, None);
    assert!(n.answer.contains("m=audio 20002 RTP/AVP 0\r\n"));
}

#[test]
fn hold_is_answered_recvonly_and_video_is_declined() {
    let n = answer_offer(&fixture("asterisk-hold-pcma.sdp"), &config()).unwrap();
    assert_eq!(
        n.codec.name, "PCMU",
        "PCMU is preferred over PCMA, whatever the offer's order"
    );
    assert_eq!(n.direction, Direction::RecvOnly);
    assert!(!n.direction.sends());
    assert!(n.answer.contains("a=recvonly\r\n"));
    assert!(n.answer.ends_with("m=video 0 RTP/AVP 99\r\n"));
}

#[test]
fn ipv6_rtcp_mux_and_the_audio_level_extension() {
    let n = answer_offer(&fixture("linphone-ipv6-video.sdp"), &config()).unwrap();
    assert_eq!(n.codec.name, "opus");
    assert_eq!(
        n.telephone_event
            .as_ref()
            .map(|t| (t.payload_type, t.clock_rate)),
        Some((110, 48_000))
    );
    assert_eq!(
        n.remote_rtp,
        "[2001:db8::1]:49170".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        n.remote_rtcp,
        "[2001:db8::1]:49171".parse::<SocketAddr>().unwrap()
    );
    assert!(n.rtcp_mux);
    assert_eq!(n.audio_level_id, Some(1));
    assert_eq!(n.direction, Direction::SendOnly);
    assert!(n
        .answer
        .starts_with("v=0\r\no=tutti 42 42 IN IP4 198.51.100.1"));
    assert!(n
        .answer
        .contains("m=video 0 RTP/AVP 99\r\nm=audio 20002 RTP/AVP 111 110\r\n"));
    assert!(n
        .answer
        .contains("a=rtcp-mux\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"));
}

#[test]
fn browsers_are_sent_to_whip() {
    let error = answer_offer(&fixture("chrome-webrtc.sdp"), &config()).unwrap_err();
    assert_eq!(
        error,
        SdpError::UnsupportedTransport("UDP/TLS/RTP/SAVPF".into())
    );
    assert!(error.to_string().contains("use WHIP"));
}

#[test]
fn no_common_codec_says_what_was_offered() {
    let error = answer_offer(&fixture("g729-only.sdp"), &config()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "no common codec: the offer has G729/8000, G723/8000, GSM/8000, tutti speaks opus/48000, G722/8000, PCMU/8000, PCMA/8000"
    );
}

#[test]
fn preference_is_configurable_and_lf_only_offers_parse() {
    let mut config = config();
    config.preference = vec![("PCMA".into(), 8000)];
    let offer = fixture("baresip-opus.sdp").replace("\r\n", "\n");
    let n = answer_offer(&offer, &config).unwrap();
    assert_eq!(n.codec.name, "PCMA");
}

#[test]
fn garbage_is_refused_not_panicked_on() {
    for offer in [
        "",
        "hello",
        "v=0\r\n",
        "v=0\r\nm=audio x RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
    ] {
        assert!(answer_offer(offer, &config()).is_err(), "{offer:?}");
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let _ = answer_offer(&text, &config());
        }

        #[test]
        fn mangled_offers_never_panic(cut in 0usize..600, junk in "[a-z0-9=: /\r\n-]{0,40}") {
            let offer = fixture("linphone-ipv6-video.sdp");
            let cut = cut.min(offer.len());
            let cut = (0..=cut).rev().find(|&i| offer.is_char_boundary(i)).unwrap_or(0);
            let mangled = format!("{}{}{}", &offer[..cut], junk, &offer[cut..]);
            let _ = answer_offer(&mangled, &config());
        }
    }
}

#[test]
fn a_captured_baresip_offer_gets_opus() {
    let n = answer_offer(&fixture("baresip-1.0.0-captured.sdp"), &config()).unwrap();
    assert_eq!(
        (
            n.codec.name.as_str(),
            n.codec.payload_type,
            n.codec.clock_rate,
            n.codec.channels
        ),
        ("opus", 96, 48_000, 2)
    );
    assert_eq!(
        n.codec.fmtp.as_deref(),
        Some("stereo=1;sprop-stereo=1;maxaveragebitrate=32000")
    );
    assert_eq!(
        n.telephone_event.as_ref().map(|t| t.payload_type),
        Some(101)
    );
    assert_eq!(
        n.remote_rtp,
        "192.0.2.2:2470".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(n.remote_ptime_ms, Some(20));
    assert_eq!(n.direction, Direction::SendRecv);
}

#[test]
fn opus_receiver_parameters_are_read_from_the_offered_fmtp() {
    use tutti_rtp::sdp::OpusParameters;
    let baresip = answer_offer(&fixture("baresip-1.0.0-captured.sdp"), &config()).unwrap();
    assert_eq!(
        baresip.codec.opus_parameters(),
        OpusParameters {
            max_average_bitrate: Some(32_000),
            use_inband_fec: false
        }
    );
    let browser_like = fixture("gstreamer-pcmu.sdp")
        .replace("RTP/AVP 0", "RTP/AVP 111")
        .replace(
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1",
        );
    let browser_like = answer_offer(&browser_like, &config()).unwrap();
    assert_eq!(
        browser_like.codec.opus_parameters(),
        OpusParameters {
            max_average_bitrate: None,
            use_inband_fec: true
        }
    );
    let pcmu = answer_offer(&fixture("gstreamer-pcmu.sdp"), &config()).unwrap();
    assert_eq!(pcmu.codec.opus_parameters(), OpusParameters::default());

    assert_eq!(
        OpusParameters::parse(" MaxAverageBitrate = 20000 ; useinbandfec=1;stereo=0"),
        OpusParameters {
            max_average_bitrate: Some(20_000),
            use_inband_fec: true
        }
    );
    // Out of RFC 7587's range, not a number, or FEC declined: ignored.
    for fmtp in [
        "maxaveragebitrate=5999",
        "maxaveragebitrate=510001",
        "maxaveragebitrate=lots",
        "useinbandfec=0",
        "useinbandfec",
        ";;=;",
    ] {
        assert_eq!(
            OpusParameters::parse(fmtp),
            OpusParameters::default(),
            "{fmtp}"
        );
    }
}
