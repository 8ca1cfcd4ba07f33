//! What the endpoint answers to browsers' offers, what it refuses and why, and the plain RTP
//! offer it writes for the engine.

use str0m::media::Direction;
use tutti_mix::ParticipantSettings;
use tutti_webrtc::offer::{engine_offer, parse_offer};
use tutti_webrtc::{WebRtcEndpoint, WebRtcError};

mod common;

use common::engine::{join, Caller};
use common::{connect, setup, talk, Browser};

/// An offer as Chrome writes it for one microphone (transport-cc offered, RED, G.722…).
fn chrome_offer(direction: &str) -> String {
    format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Xy3d\r\na=ice-pwd:kJ8sd9f8sdf7sd6f5sd4f3sd\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC\r\n\
a=setup:actpass\r\na=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a={direction}\r\na=msid:- 1b7d3c5e-aaaa-bbbb-cccc-0123456789ab\r\na=rtcp-mux\r\na=rtcp-rsize\r\n\
a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:3735928559 cname:abcdefgh\r\n"
    )
}

fn attribute<'a>(sdp: &'a str, name: &str) -> Vec<&'a str> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a="))
        .filter_map(|l| l.strip_prefix(name))
        .collect()
}

#[test]
fn the_answer_is_ice_lite_with_the_host_candidate_opus_and_no_transport_cc() {
    let (_engine, endpoint, room) = setup(36_020..=36_039);
    let port = endpoint.local_port();
    assert_ne!(port, 0);
    let joined = endpoint
        .join(
            room,
            &chrome_offer("sendrecv"),
            ParticipantSettings::default(),
        )
        .unwrap();
    let answer = &joined.answer;
    assert!(answer.lines().any(|l| l == "a=ice-lite"), "{answer}");
    let candidates = attribute(answer, "candidate:");
    assert_eq!(candidates.len(), 1, "{answer}");
    let words: Vec<&str> = candidates[0].split_ascii_whitespace().collect();
    assert_eq!(
        (
            words[2].to_ascii_lowercase().as_str(),
            words[4],
            words[5],
            words[7]
        ),
        ("udp", "127.0.0.1", port.to_string().as_str(), "host"),
        "{answer}"
    );
    let m = answer.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert_eq!(m, "m=audio 9 UDP/TLS/RTP/SAVPF 111", "{answer}");
    assert!(!answer.contains("transport-cc"), "{answer}");
    assert!(!answer.contains("transport-wide-cc"), "{answer}");
    assert_eq!(
        attribute(answer, "extmap:"),
        vec![
            "1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "4 urn:ietf:params:rtp-hdrext:sdes:mid"
        ],
        "{answer}"
    );
    assert_eq!(attribute(answer, "sendrecv"), vec![""], "{answer}");
    assert_eq!(attribute(answer, "setup:"), vec!["passive"], "{answer}");
    // Browsers are asked to send Opus at [webrtc] browser_bitrate (64 kb/s by default).
    let fmtp = attribute(answer, "fmtp:111 ");
    assert_eq!(fmtp.len(), 1, "{answer}");
    assert!(
        fmtp[0].split(';').any(|p| p == "maxaveragebitrate=64000"),
        "{answer}"
    );
}

#[test]
fn the_sending_bitrate_goes_into_the_opus_fmtp_of_the_answer() {
    let with =
        |answer: &str, bitrate| tutti_webrtc::offer::with_sending_bitrate(answer, 111, bitrate);
    let answer = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=sendrecv\r\n";
    assert_eq!(
        with(answer, 64_000),
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1;maxaveragebitrate=64000\r\na=sendrecv\r\n"
    );
    // One value only, whatever the answer said; an answer without a=fmtp gets one.
    assert_eq!(with(&with(answer, 40_000), 64_000), with(answer, 64_000),);
    let bare = "a=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n";
    assert_eq!(
        with(bare, 32_000),
        "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 maxaveragebitrate=32000\r\na=sendrecv\r\n"
    );
    assert_eq!(with(answer, 0), answer, "0 leaves it to the browser");
}

#[test]
fn a_recvonly_offer_is_answered_sendonly_and_listens() {
    let (engine, endpoint, room) = setup(36_040..=36_059);
    let joined = endpoint
        .join(
            room,
            &chrome_offer("recvonly"),
            ParticipantSettings::default(),
        )
        .unwrap();
    assert_eq!(
        attribute(&joined.answer, "sendonly"),
        vec![""],
        "{}",
        joined.answer
    );
    assert!(attribute(&joined.answer, "sendrecv").is_empty());

    // A listener hears the room.
    let mut caller = Caller::new(880.0);
    join(&engine, room, &mut caller, ParticipantSettings::default());
    let mut listener = Browser::new(Direction::RecvOnly, 0.0);
    connect(&endpoint, room, &mut listener);
    talk(&mut [&mut listener], &mut [&mut caller], 1.5);
    assert!(
        listener.level(880.0, 1.0) > 0.05,
        "{}",
        listener.level(880.0, 1.0)
    );
}

#[test]
fn the_engine_offer_carries_the_browsers_opus_parameters_level_id_and_direction() {
    let summary = parse_offer(&chrome_offer("recvonly").replace("extmap:1 ", "extmap:7 ")).unwrap();
    assert_eq!(summary.audio_level_id, Some(7));
    let offer = engine_offer(&summary, 7);
    assert!(offer.contains("m=audio 9 RTP/AVP 111\r\n"), "{offer}");
    assert!(offer.contains("a=rtpmap:111 opus/48000/2\r\n"), "{offer}");
    assert!(
        offer.contains("a=fmtp:111 minptime=10;useinbandfec=1\r\n"),
        "{offer}"
    );
    assert!(
        offer.contains("a=extmap:7 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"),
        "{offer}"
    );
    assert!(offer.contains("a=recvonly\r\n"), "{offer}");
    assert!(offer.contains("c=IN IP4 127.0.0.1\r\n"), "{offer}");
}

#[test]
fn is_webrtc_offer_tells_webrtc_from_plain_rtp() {
    assert!(WebRtcEndpoint::is_webrtc_offer(&chrome_offer("sendrecv")));
    assert!(!WebRtcEndpoint::is_webrtc_offer(
        &chrome_offer("sendrecv").replace("UDP/TLS/RTP/SAVPF", "RTP/AVP")
    ));
    assert!(!WebRtcEndpoint::is_webrtc_offer("hello"));
}

#[test]
fn bad_offers_are_refused_with_the_problem_named() {
    let (engine, endpoint, room) = setup(36_060..=36_079);
    let good = chrome_offer("sendrecv");
    let no_fingerprint: String = good
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let no_opus: String = good
        .lines()
        .filter(|l| !l.contains(":111 ") && !l.contains(" 111/"))
        .map(|l| format!("{l}\r\n"))
        .collect::<String>()
        .replace("SAVPF 111 63", "SAVPF 63");
    let cases: Vec<(String, &str)> = vec![
        ("hello".into(), "the offer is not valid SDP: "),
        (good.replace("m=audio", "m=video"), "the offer has no audio"),
        (
            good.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"),
            "the offer is not UDP/TLS/RTP/SAVPF (its audio is RTP/AVP)",
        ),
        (no_opus, "no common codec: the offer has no Opus"),
        (
            good.replace("a=sendrecv", "a=inactive"),
            "the offer's audio is inactive",
        ),
        (
            good.replace("a=ice-ufrag:Xy3d\r\n", ""),
            "the offer was refused: the offer has no ICE credentials",
        ),
        (no_fingerprint, "the offer was refused: "),
    ];
    for (offer, message) in cases {
        let error = endpoint
            .join(room, &offer, ParticipantSettings::default())
            .unwrap_err();
        assert!(
            error.to_string().starts_with(message),
            "{error} (expected {message:?})"
        );
        assert!(!matches!(error, WebRtcError::Engine(_)), "{error:?}");
    }
    let error = endpoint
        .join(
            room,
            &good.replace("a=fingerprint", "a=nothing"),
            Default::default(),
        )
        .unwrap_err();
    assert!(error.to_string().contains("fingerprint"), "{error}");
    // No peer was kept, nothing joined the room.
    assert_eq!(endpoint.metrics().peers, 0);
    assert!(engine.events().try_recv().is_err());
}
