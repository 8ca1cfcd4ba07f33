//! tutti as the offerer (RFC 3264 §5): the offer for a call tutti places (or for a SIP INVITE
//! that came without SDP), and what the remote side's answer to it fixes.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{Negotiated, RemoteAudio, SdpError, AUDIO_LEVEL_URI};

/// Payload type of Opus in tutti's offers.
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Payload type of `telephone-event/8000` in tutti's offers.
pub const EVENT_PAYLOAD_TYPE_8K: u8 = 101;
/// Payload type of `telephone-event/48000` in tutti's offers.
pub const EVENT_PAYLOAD_TYPE_48K: u8 = 110;
/// The audio level extension's id in tutti's offers.
const AUDIO_LEVEL_ID: u8 = 1;

/// What tutti offers.
#[derive(Clone, Debug)]
pub struct OfferConfig {
    /// Address tutti receives media on (in `c=` and `o=`).
    pub address: IpAddr,
    /// tutti's RTP port for this call.
    pub port: u16,
    /// Encoding names in order of preference, with their clock rates (those tutti speaks:
    /// opus/48000, G722/8000, PCMU/8000, PCMA/8000; others are left out).
    pub preference: Vec<(String, u32)>,
    /// Session id for `o=`.
    pub session_id: u64,
    /// Session version for `o=`.
    pub session_version: u64,
    /// Packet time tutti sends, in ms.
    pub ptime_ms: u32,
}

/// The payload type, `a=rtpmap` value and `a=fmtp` value tutti offers a codec with.
fn offered_format(name: &str, clock: u32) -> Option<(u8, &'static str, Option<&'static str>)> {
    let known = [
        ("opus", 48_000, OPUS_PAYLOAD_TYPE, "opus/48000/2"),
        ("G722", 8_000, 9, "G722/8000"),
        ("PCMU", 8_000, 0, "PCMU/8000"),
        ("PCMA", 8_000, 8, "PCMA/8000"),
    ];
    known
        .into_iter()
        .find(|(n, c, ..)| n.eq_ignore_ascii_case(name) && *c == clock)
        .map(|(n, _, pt, rtpmap)| {
            (
                pt,
                rtpmap,
                (n == "opus").then_some("minptime=10;useinbandfec=1"),
            )
        })
}

/// Writes tutti's offer: one audio stream with the codecs of `config.preference` in that
/// order, `telephone-event` at 8 and 48 kHz, `a=ptime`, `a=sendrecv`, RTCP on the RTP port and
/// the RFC 6464 audio level extension.
pub fn make_offer(config: &OfferConfig) -> String {
    let family = if config.address.is_ipv6() {
        "IP6"
    } else {
        "IP4"
    };
    let address = config.address;
    let codecs: Vec<_> = config
        .preference
        .iter()
        .filter_map(|(name, clock)| offered_format(name, *clock))
        .collect();
    let mut sdp = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        sdp,
        "v=0\r\no=tutti {} {} IN {family} {address}\r\ns=tutti\r\nc=IN {family} {address}\r\nt=0 0\r\nm=audio {} RTP/AVP",
        config.session_id, config.session_version, config.port
    );
    for (pt, ..) in &codecs {
        let _ = write!(sdp, " {pt}");
    }
    let _ = write!(sdp, " {EVENT_PAYLOAD_TYPE_8K} {EVENT_PAYLOAD_TYPE_48K}\r\n");
    for (pt, rtpmap, fmtp) in &codecs {
        let _ = write!(sdp, "a=rtpmap:{pt} {rtpmap}\r\n");
        if let Some(fmtp) = fmtp {
            let _ = write!(sdp, "a=fmtp:{pt} {fmtp}\r\n");
        }
    }
    for (pt, clock) in [
        (EVENT_PAYLOAD_TYPE_8K, 8_000),
        (EVENT_PAYLOAD_TYPE_48K, 48_000),
    ] {
        let _ = write!(
            sdp,
            "a=rtpmap:{pt} telephone-event/{clock}\r\na=fmtp:{pt} 0-16\r\n"
        );
    }
    let _ = write!(
        sdp,
        "a=ptime:{}\r\na=sendrecv\r\na=rtcp:{}\r\na=extmap:{AUDIO_LEVEL_ID} {AUDIO_LEVEL_URI}\r\n",
        config.ptime_ms, config.port
    );
    sdp
}

/// Reads the remote side's answer to the offer `config` describes: the codec is the first of
/// the answer's formats that tutti offered (the answerer's choice, RFC 3264 §6.1), sent with
/// the answer's payload type numbers; the direction is the answer's, seen from tutti's side
/// (`recvonly` in the answer: tutti only sends). What the remote side sends is expected with
/// the offer's numbers ([`Negotiated::receive_payload_type`]). [`Negotiated::answer`] holds
/// tutti's offer.
pub fn accept_answer(answer: &str, config: &OfferConfig) -> Result<Negotiated, SdpError> {
    let remote = RemoteAudio::parse(answer)?;
    let offered = |name: &str, clock: u32| {
        offered_format(name, clock).is_some()
            && config
                .preference
                .iter()
                .any(|(n, c)| n.eq_ignore_ascii_case(name) && *c == clock)
    };
    let codec = remote
        .formats
        .iter()
        .find(|f| offered(&f.name, f.clock_rate))
        .cloned()
        .ok_or_else(|| remote.no_common_codec(&config.preference))?;
    let direction = remote.direction.answer();
    let receive = offered_format(&codec.name, codec.clock_rate).map_or(codec.payload_type, |f| f.0);
    let mut negotiated = remote.negotiated(codec, direction, make_offer(config));
    negotiated.receive_payload_type = receive;
    negotiated.receive_event_payload_type =
        negotiated
            .telephone_event
            .as_ref()
            .map(|event| match event.clock_rate {
                48_000 => EVENT_PAYLOAD_TYPE_48K,
                _ => EVENT_PAYLOAD_TYPE_8K,
            });
    Ok(negotiated)
}
