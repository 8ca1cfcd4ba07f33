//! tutti as the offerer: its offer, and the remote side's answer to it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tutti_rtp::sdp::{
    accept_answer, answer_offer, answer_reoffer, make_offer, AnswerConfig, Direction, OfferConfig,
    SdpError,
};

fn config() -> OfferConfig {
    OfferConfig {
        address: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        port: 20_004,
        preference: AnswerConfig::default_preference(),
        session_id: 77,
        session_version: 3,
        ptime_ms: 20,
    }
}

/// How tutti answers a running call's new offers: session 900 on port 20006.
fn answer_config() -> AnswerConfig {
    AnswerConfig {
        address: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        port: 20_006,
        preference: AnswerConfig::default_preference(),
        session_id: 900,
        ptime_ms: 20,
    }
}

fn answer(media: &str, attributes: &str) -> String {
    format!(
        "v=0\r\no=- 5 5 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n{media}\r\n{attributes}"
    )
}

#[test]
fn the_offer_lists_the_engines_codecs_in_order() {
    let offer = make_offer(&config());
    assert_eq!(
        offer,
        "v=0\r\no=tutti 77 3 IN IP4 198.51.100.1\r\ns=tutti\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
         m=audio 20004 RTP/AVP 111 9 0 8 101 110\r\n\
         a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
         a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
         a=rtpmap:110 telephone-event/48000\r\na=fmtp:110 0-16\r\n\
         a=ptime:20\r\na=sendrecv\r\na=rtcp:20004\r\n\
         a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    );
    // An answerer that prefers what tutti prefers picks Opus out of it.
    let answered = answer_offer(
        &offer,
        &AnswerConfig {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 4000,
            preference: AnswerConfig::default_preference(),
            session_id: 1,
            ptime_ms: 20,
        },
    )
    .unwrap();
    assert_eq!(answered.codec.name, "opus");
    assert_eq!(answered.codec.payload_type, 111);
    assert_eq!(answered.telephone_event.unwrap().payload_type, 110);
}

#[test]
fn the_offer_follows_the_preference_and_skips_unknown_codecs() {
    let mut config = config();
    config.preference = vec![
        ("PCMA".into(), 8_000),
        ("GSM".into(), 8_000),
        ("PCMU".into(), 8_000),
    ];
    let offer = make_offer(&config);
    assert!(
        offer.contains("m=audio 20004 RTP/AVP 8 0 101 110\r\n"),
        "{offer}"
    );
    assert!(!offer.contains("opus"));
    assert!(!offer.contains("GSM"));
}

#[test]
fn the_answerers_first_codec_is_used_even_when_tutti_prefers_another() {
    let n = accept_answer(
        &answer(
            "m=audio 4000 RTP/AVP 0 9 101",
            "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        ),
        &config(),
    )
    .unwrap();
    assert_eq!(n.codec.name, "PCMU");
    assert_eq!(n.codec.payload_type, 0);
    assert_eq!(n.telephone_event.unwrap().payload_type, 101);
    assert_eq!(
        n.remote_rtp,
        "203.0.113.5:4000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(n.direction, Direction::SendRecv);
    // What tutti hands back is its own offer, unchanged.
    assert_eq!(n.answer, make_offer(&config()));
}

#[test]
fn the_answers_payload_type_numbers_are_the_ones_sent() {
    let n = accept_answer(
        &answer(
            "m=audio 4000 RTP/AVP 96 97",
            "a=rtpmap:96 opus/48000/2\r\na=rtpmap:97 telephone-event/48000\r\n",
        ),
        &config(),
    )
    .unwrap();
    assert_eq!(n.codec.name, "opus");
    assert_eq!(n.codec.payload_type, 96);
    assert_eq!(n.telephone_event.unwrap().payload_type, 97);
    // What the answerer sends comes with the offer's numbers.
    assert_eq!(n.receive_payload_type, 111);
    assert_eq!(n.receive_event_payload_type, Some(110));
}

#[test]
fn the_answers_direction_is_read_from_tuttis_side() {
    let direction = |attribute: &str| {
        accept_answer(
            &answer("m=audio 4000 RTP/AVP 8", &format!("a={attribute}\r\n")),
            &config(),
        )
        .unwrap()
        .direction
    };
    assert_eq!(direction("recvonly"), Direction::SendOnly);
    assert_eq!(direction("sendonly"), Direction::RecvOnly);
    assert_eq!(direction("inactive"), Direction::Inactive);
    assert_eq!(direction("sendrecv"), Direction::SendRecv);
}

#[test]
fn an_answer_without_an_offered_codec_is_refused() {
    let error = accept_answer(
        &answer("m=audio 4000 RTP/AVP 3", "a=rtpmap:3 GSM/8000\r\n"),
        &config(),
    )
    .unwrap_err();
    assert!(matches!(error, SdpError::NoCommonCodec { .. }), "{error}");
    // A codec tutti speaks but did not offer is no answer to this offer either.
    let mut only_pcmu = config();
    only_pcmu.preference = vec![("PCMU".into(), 8_000)];
    let error = accept_answer(&answer("m=audio 4000 RTP/AVP 8", ""), &only_pcmu).unwrap_err();
    assert!(matches!(error, SdpError::NoCommonCodec { .. }), "{error}");
    let rejected = accept_answer(&answer("m=audio 0 RTP/AVP 0", ""), &config()).unwrap_err();
    assert_eq!(rejected, SdpError::NoAudio);
}

#[test]
fn a_reoffer_is_answered_with_the_same_session_id_and_the_next_version() {
    let offer = answer("m=audio 4000 RTP/AVP 0", "a=sendonly\r\n");
    let config = answer_config();
    let n = answer_reoffer(&offer, &config, 901).unwrap();
    assert!(
        n.answer.contains("o=tutti 900 901 IN IP4 198.51.100.1\r\n"),
        "{}",
        n.answer
    );
    assert!(n.answer.contains("a=recvonly\r\n"));
    assert_eq!(n.direction, Direction::RecvOnly);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_answers_never_panic(text in ".{0,400}") {
            let _ = accept_answer(&text, &config());
        }

        #[test]
        fn mangled_answers_never_panic(cut in 0usize..300, junk in "[a-z0-9=: /\r\n-]{0,40}") {
            let good = answer(
                "m=audio 4000 RTP/AVP 96 0 101",
                "a=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp:4001 IN IP4 203.0.113.6\r\n",
            );
            let cut = cut.min(good.len());
            let mangled = format!("{}{}{}", &good[..cut], junk, &good[cut..]);
            let _ = accept_answer(&mangled, &config());
            let _ = answer_reoffer(&mangled, &answer_config(), 901);
        }
    }
}

#[test]
fn an_offer_on_the_unspecified_address_is_answered_inactive() {
    let offer = "v=0\r\no=- 5 6 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";
    let config = answer_config();
    let n = answer_reoffer(offer, &config, 901).unwrap();
    assert_eq!(n.direction, Direction::Inactive);
    assert!(n.answer.contains("a=inactive\r\n"), "{}", n.answer);
}

#[test]
fn media_from_the_answerer_is_expected_with_the_offers_numbers() {
    let same = accept_answer(
        &answer(
            "m=audio 4000 RTP/AVP 0 101",
            "a=rtpmap:101 telephone-event/8000\r\n",
        ),
        &config(),
    )
    .unwrap();
    assert_eq!(
        (same.receive_payload_type, same.receive_event_payload_type),
        (0, Some(101))
    );
}
