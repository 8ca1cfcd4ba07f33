//! A browser's offer, checked and summarised without side effects (no peer, no engine), and
//! the plain RTP offer written from it for the engine.

use std::fmt::Write as _;
use std::io::Cursor;
use std::net::SocketAddr;
use std::time::Instant;

use sdp::description::media::MediaDescription;
use sdp::description::session::SessionDescription;
use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::rtp::Extension;
use str0m::{Candidate, Rtc};

use crate::WebRtcError;

/// URI of the RFC 6464 client-to-mixer audio level header extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// URI of the BUNDLE `mid` header extension.
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// The WebRTC media profile.
pub const WEBRTC_PROFILE: &str = "UDP/TLS/RTP/SAVPF";

/// Which way the browser wants audio to flow, from its side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrowserDirection {
    /// Talks and listens.
    SendRecv,
    /// Only listens (WHEP).
    RecvOnly,
    /// Only talks.
    SendOnly,
}

impl BrowserDirection {
    /// The SDP attribute.
    pub fn attribute(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::RecvOnly => "recvonly",
            Self::SendOnly => "sendonly",
        }
    }
}

/// What tutti takes from a browser's offer.
#[derive(Debug)]
pub struct OfferSummary {
    /// The offer as the WebRTC stack parsed it.
    pub offer: SdpOffer,
    /// The Opus payload type.
    pub opus_pt: u8,
    /// The browser's `a=fmtp` parameters for Opus (`minptime=10;useinbandfec=1`…).
    pub opus_fmtp: Option<String>,
    /// The id of the audio level extension, when offered.
    pub audio_level_id: Option<u8>,
    /// The id of the `mid` extension, when offered.
    pub mid_id: Option<u8>,
    /// The audio stream's `a=mid`.
    pub mid: Option<String>,
    /// The direction.
    pub direction: BrowserDirection,
    /// The browser's ICE credentials (`a=ice-ufrag`, `a=ice-pwd`).
    pub ice_creds: str0m::IceCreds,
}

/// Whether an SDP offer is a WebRTC one: an audio m-line with `UDP/TLS/RTP/SAVPF`.
pub fn is_webrtc_offer(sdp: &str) -> bool {
    sdp.lines().any(|line| {
        let mut words = line.trim().split_ascii_whitespace();
        words.next() == Some("m=audio") && words.nth(1) == Some(WEBRTC_PROFILE)
    })
}

/// Checks a browser's offer and summarises what tutti needs from it.
pub fn parse_offer(text: &str) -> Result<OfferSummary, WebRtcError> {
    let session = SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
        .map_err(|e| WebRtcError::Malformed(e.to_string()))?;
    let media = session
        .media_descriptions
        .iter()
        .find(|m| m.media_name.media == "audio" && m.media_name.port.value != 0)
        .ok_or(WebRtcError::NoAudio)?;
    let profile = media.media_name.protos.join("/");
    if profile != WEBRTC_PROFILE {
        return Err(WebRtcError::NotWebRtc(profile));
    }
    let value = |key: &'static str| values(media, key);
    let opus_pt = value("rtpmap")
        .find_map(|v| {
            let (pt, encoding) = v.split_once(' ')?;
            let name = encoding.split('/').next()?;
            let pt: u8 = pt.trim().parse().ok()?;
            (name.eq_ignore_ascii_case("opus") && pt < 128).then_some(pt)
        })
        .ok_or(WebRtcError::NoOpus)?;
    let opus_fmtp = value("fmtp").find_map(|v| {
        let (pt, params) = v.split_once(' ')?;
        (pt.trim().parse::<u8>().ok()? == opus_pt).then(|| params.trim().to_owned())
    });
    let extmap = |uri: &'static str| {
        value("extmap").find_map(|v| {
            let mut words = v.split_ascii_whitespace();
            let id = words.next()?.split('/').next()?.parse::<u8>().ok()?;
            (words.next()? == uri && (1..=14).contains(&id)).then_some(id)
        })
    };
    let audio_level_id = extmap(AUDIO_LEVEL_URI);
    let mid_id = extmap(MID_URI).filter(|&id| Some(id) != audio_level_id);
    let mid = value("mid").next().map(str::to_owned);
    let has = |key: &'static str| {
        media.attributes.iter().any(|a| a.key == key)
            || session.attributes.iter().any(|a| a.key == key)
    };
    let direction = if media.attributes.iter().any(|a| a.key == "inactive") {
        return Err(WebRtcError::Inactive);
    } else if has("recvonly") && !media.attributes.iter().any(|a| a.key == "sendrecv") {
        BrowserDirection::RecvOnly
    } else if has("sendonly") && !media.attributes.iter().any(|a| a.key == "sendrecv") {
        BrowserDirection::SendOnly
    } else if has("inactive") {
        return Err(WebRtcError::Inactive);
    } else {
        BrowserDirection::SendRecv
    };
    let ice = |key: &'static str| {
        value(key)
            .next()
            .or_else(|| session.attribute(key).map(String::as_str))
            .map(str::to_owned)
    };
    let ice_creds = match (ice("ice-ufrag"), ice("ice-pwd")) {
        (Some(ufrag), Some(pass)) => str0m::IceCreds { ufrag, pass },
        _ => {
            return Err(WebRtcError::Refused(
                "the offer has no ICE credentials (a=ice-ufrag, a=ice-pwd)".into(),
            ))
        }
    };
    let offer =
        SdpOffer::from_sdp_string(text).map_err(|e| WebRtcError::Malformed(e.to_string()))?;
    Ok(OfferSummary {
        offer,
        opus_pt,
        opus_fmtp,
        audio_level_id,
        mid_id,
        mid,
        direction,
        ice_creds,
    })
}

/// A new DTLS certificate (the endpoint makes one at start and every peer shares it).
pub fn certificate() -> Result<DtlsCert, WebRtcError> {
    str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate()
        .ok_or_else(|| WebRtcError::Certificate("the crypto provider made none".into()))
}

/// The peer for a checked offer (ICE-lite, the host candidate, Opus only, the audio level and
/// `mid` extensions at the browser's ids, RTP mode) and the SDP answer.
pub fn accept(
    summary: OfferSummary,
    audio_level_id: u8,
    cert: &DtlsCert,
    candidate: SocketAddr,
) -> Result<(Rtc, String), WebRtcError> {
    let mid_id = summary
        .mid_id
        .unwrap_or(if audio_level_id == 4 { 3 } else { 4 });
    let mut config = Rtc::builder()
        .set_ice_lite(true)
        .set_dtls_cert(cert.clone())
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .clear_extension_map()
        .set_extension(audio_level_id, Extension::AudioLevel)
        .set_extension(mid_id, Extension::RtpMid);
    // Transport-wide congestion control costs ~50 % more CPU for audio (see the README's
    // "WebRTC stacks"): neither its extension nor its feedback is answered.
    for params in config.codec_config().iter_mut() {
        params.set_fb_transport_cc(false);
    }
    let mut rtc = config.build(Instant::now());
    let candidate = Candidate::host(candidate, "udp")
        .map_err(|e| WebRtcError::Stopped(format!("host candidate: {e}")))?;
    rtc.add_local_candidate(candidate);
    let answer = rtc
        .sdp_api()
        .accept_offer(summary.offer)
        .map_err(|e| WebRtcError::Refused(e.to_string()))?;
    Ok((rtc, answer.to_sdp_string()))
}

/// `answer` asking the browser to send Opus at up to `bitrate` bit/s (RFC 7587's
/// `maxaveragebitrate` in the Opus payload type's `a=fmtp`, which browsers' encoders follow;
/// without it they send about 32 kb/s). 0 leaves the answer as it is.
pub fn with_sending_bitrate(answer: &str, opus_pt: u8, bitrate: u32) -> String {
    if bitrate == 0 {
        return answer.to_owned();
    }
    let fmtp = format!("a=fmtp:{opus_pt} ");
    let rtpmap = format!("a=rtpmap:{opus_pt} ");
    let has_fmtp = answer.lines().any(|line| line.starts_with(&fmtp));
    let mut out = String::with_capacity(answer.len() + 64);
    for line in answer.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        if bare.starts_with(&fmtp) {
            let kept: Vec<&str> = bare[fmtp.len()..]
                .split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty() && !p.starts_with("maxaveragebitrate="))
                .collect();
            let _ = write!(out, "{fmtp}{}", kept.join(";"));
            let separator = if kept.is_empty() { "" } else { ";" };
            let _ = write!(out, "{separator}maxaveragebitrate={bitrate}\r\n");
            continue;
        }
        out.push_str(line);
        if !has_fmtp && bare.starts_with(&rtpmap) {
            let _ = write!(out, "{fmtp}maxaveragebitrate={bitrate}\r\n");
        }
    }
    out
}

/// The values of a media description's attributes named `key`.
fn values<'a>(media: &'a MediaDescription, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    media
        .attributes
        .iter()
        .filter(move |a| a.key == key)
        .filter_map(|a| a.value.as_deref())
}

/// The plain RTP/AVP offer the engine is joined with: the browser's Opus payload type and
/// parameters, its audio level extension id and its direction.
pub fn engine_offer(summary: &OfferSummary, audio_level_id: u8) -> String {
    let pt = summary.opus_pt;
    let mut sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 9 RTP/AVP {pt}\r\na=rtpmap:{pt} opus/48000/2\r\n"
    );
    if let Some(fmtp) = &summary.opus_fmtp {
        let _ = write!(sdp, "a=fmtp:{pt} {fmtp}\r\n");
    }
    let _ = write!(
        sdp,
        "a=extmap:{audio_level_id} {AUDIO_LEVEL_URI}\r\na={}\r\n",
        summary.direction.attribute()
    );
    sdp
}

/// What a trickle-ICE / ICE-restart fragment (`application/trickle-ice-sdpfrag`) carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IceFragment {
    /// `a=ice-ufrag`.
    pub ufrag: Option<String>,
    /// `a=ice-pwd`.
    pub pwd: Option<String>,
    /// Each `a=candidate:` value (from `candidate:` on).
    pub candidates: Vec<String>,
}

/// Reads a trickle-ICE fragment (RFC 8840).
pub fn parse_fragment(text: &str) -> Result<IceFragment, WebRtcError> {
    let mut fragment = IceFragment::default();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
            fragment.ufrag = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
            fragment.pwd = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("a=") {
            if v.starts_with("candidate:") {
                fragment.candidates.push(v.to_owned());
            }
        } else if !line.starts_with("m=") && !line.starts_with("c=") {
            return Err(WebRtcError::BadFragment(format!(
                "the line {line:?} is not an SDP attribute or media line"
            )));
        }
    }
    if fragment.ufrag.is_some() != fragment.pwd.is_some() {
        return Err(WebRtcError::BadFragment(
            "an ICE restart needs both a=ice-ufrag and a=ice-pwd".into(),
        ));
    }
    Ok(fragment)
}
