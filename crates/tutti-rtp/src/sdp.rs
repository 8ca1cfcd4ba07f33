//! SDP offer/answer for one audio stream (RFC 3264), as real endpoints write their offers:
//! static and dynamic payload types, `telephone-event`, `ptime`, direction, `rtcp` and
//! `rtcp-mux`, the RFC 6464 audio-level extension. Video and further audio streams are
//! declined (port 0), as RFC 3264 asks.

use std::fmt::Write as _;
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use sdp::description::media::MediaDescription;
use sdp::description::session::SessionDescription;

#[path = "sdp_offer.rs"]
mod offer;
pub use offer::{
    accept_answer, make_offer, OfferConfig, EVENT_PAYLOAD_TYPE_48K, EVENT_PAYLOAD_TYPE_8K,
    OPUS_PAYLOAD_TYPE,
};

/// URI of the RFC 6464 client-to-mixer audio level header extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Why an offer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// Not parseable as SDP.
    #[error("the offer is not valid SDP: {0}")]
    Malformed(String),
    /// No `m=audio` line with a port.
    #[error("the offer has no audio stream")]
    NoAudio,
    /// The audio stream uses a profile tutti does not speak on plain RTP.
    #[error("the audio stream's transport {0} is not supported here (plain RTP/AVP or RTP/AVPF; use WHIP for WebRTC)")]
    UnsupportedTransport(String),
    /// No connection address for the audio stream.
    #[error("the offer gives no connection address (c=) for its audio stream")]
    NoConnectionAddress,
    /// A connection address that is not an IP address.
    #[error("the connection address {0:?} is not an IP address")]
    BadAddress(String),
    /// No codec in common.
    #[error("no common codec: the offer has {offered}, tutti speaks {supported}")]
    NoCommonCodec {
        /// What the offer listed.
        offered: String,
        /// What tutti accepts.
        supported: String,
    },
}

/// Which way media flows, from the point of view of the side that wrote the description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Sends and receives.
    SendRecv,
    /// Only sends.
    SendOnly,
    /// Only receives.
    RecvOnly,
    /// Neither (on hold).
    Inactive,
}

impl Direction {
    /// The SDP attribute name.
    pub fn attribute(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// The direction an answer takes to this offered direction (RFC 3264 §6.1).
    pub fn answer(self) -> Self {
        match self {
            Self::SendRecv => Self::SendRecv,
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            Self::Inactive => Self::Inactive,
        }
    }

    /// Whether this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }
}

/// An audio format as SDP names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadFormat {
    /// Payload type number.
    pub payload_type: u8,
    /// Encoding name, as written (`opus`, `PCMU`, …).
    pub name: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channels (1 unless the rtpmap says otherwise).
    pub channels: u8,
    /// The `a=fmtp` parameters, if any.
    pub fmtp: Option<String>,
}

impl PayloadFormat {
    /// The Opus parameters of this format's `a=fmtp` (all absent when it has none).
    pub fn opus_parameters(&self) -> OpusParameters {
        self.fmtp
            .as_deref()
            .map(OpusParameters::parse)
            .unwrap_or_default()
    }
}

/// What an Opus receiver asks of the stream sent to it, from its `a=fmtp` (RFC 7587 §6.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpusParameters {
    /// `maxaveragebitrate`: the most it wants to receive, in bits per second (6000 to 510000;
    /// other values are ignored, as RFC 7587 says).
    pub max_average_bitrate: Option<u32>,
    /// `useinbandfec=1`: it decodes in-band FEC, so sending some helps it through loss.
    pub use_inband_fec: bool,
}

impl OpusParameters {
    /// Reads `key=value` pairs separated by `;`, ignoring spaces, the case of keys, unknown
    /// keys and values that do not parse.
    pub fn parse(fmtp: &str) -> Self {
        let mut parameters = Self::default();
        for pair in fmtp.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if key.eq_ignore_ascii_case("maxaveragebitrate") {
                parameters.max_average_bitrate = value
                    .parse::<u32>()
                    .ok()
                    .filter(|rate| (6_000..=510_000).contains(rate));
            } else if key.eq_ignore_ascii_case("useinbandfec") {
                parameters.use_inband_fec = value == "1";
            }
        }
        parameters
    }
}

/// What tutti offers to answer with.
#[derive(Clone, Debug)]
pub struct AnswerConfig {
    /// Address tutti receives media on (in `c=` and `o=`).
    pub address: IpAddr,
    /// tutti's RTP port for this participant.
    pub port: u16,
    /// Encoding names in order of preference (case-insensitive, with their clock rates).
    pub preference: Vec<(String, u32)>,
    /// Session id for `o=`.
    pub session_id: u64,
    /// Packet time tutti sends, in ms.
    pub ptime_ms: u32,
}

impl AnswerConfig {
    /// tutti's default preference: Opus, G.722, PCMU, PCMA.
    pub fn default_preference() -> Vec<(String, u32)> {
        vec![
            ("opus".into(), 48_000),
            ("G722".into(), 8_000),
            ("PCMU".into(), 8_000),
            ("PCMA".into(), 8_000),
        ]
    }
}

/// The outcome of a successful negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec both sides use.
    pub codec: PayloadFormat,
    /// The payload type for RFC 4733 events, when offered at the codec's clock rate (or any).
    pub telephone_event: Option<PayloadFormat>,
    /// The payload type the remote side sends the codec with: the codec's own, unless tutti
    /// made the offer and the answer numbered the codec differently, when it is the number
    /// of tutti's offer (the numbers of a description are those its writer receives,
    /// RFC 3264 §5.1).
    pub receive_payload_type: u8,
    /// The payload type the remote side sends telephone events with (as for the codec).
    pub receive_event_payload_type: Option<u8>,
    /// Where the caller wants RTP.
    pub remote_rtp: SocketAddr,
    /// Where the caller wants RTCP.
    pub remote_rtcp: SocketAddr,
    /// RTP and RTCP share one port.
    pub rtcp_mux: bool,
    /// The caller's packet time preference, if stated.
    pub remote_ptime_ms: Option<u32>,
    /// tutti's direction (the answer's).
    pub direction: Direction,
    /// Header extension id of the RFC 6464 audio level, when offered.
    pub audio_level_id: Option<u8>,
    /// The answer to send back (when tutti made the offer, see [`accept_answer`]: that offer).
    pub answer: String,
}

fn direction_of(media: &MediaDescription, session: &SessionDescription) -> Direction {
    let has = |key: &str| {
        media.has_attribute(key)
            || session.attribute(key).is_some()
            || session.attributes.iter().any(|a| a.key == key)
    };
    if media.has_attribute("sendonly") {
        Direction::SendOnly
    } else if media.has_attribute("recvonly") {
        Direction::RecvOnly
    } else if media.has_attribute("inactive") {
        Direction::Inactive
    } else if media.has_attribute("sendrecv") {
        Direction::SendRecv
    } else if has("sendonly") {
        Direction::SendOnly
    } else if has("recvonly") {
        Direction::RecvOnly
    } else if has("inactive") {
        Direction::Inactive
    } else {
        Direction::SendRecv
    }
}

/// Static payload types of RFC 3551 that tutti can use.
fn static_format(payload_type: u8) -> Option<(&'static str, u32)> {
    match payload_type {
        0 => Some(("PCMU", 8_000)),
        8 => Some(("PCMA", 8_000)),
        9 => Some(("G722", 8_000)),
        _ => None,
    }
}

/// The formats of an `m=` line, with their rtpmap and fmtp.
fn formats(media: &MediaDescription) -> Vec<PayloadFormat> {
    let mut out = Vec::new();
    for format in &media.media_name.formats {
        let Ok(payload_type) = format.parse::<u8>() else {
            continue;
        };
        let rtpmap = media.attributes.iter().find_map(|a| {
            let value = a.value.as_deref()?;
            let (pt, rest) = value.split_once(' ')?;
            (a.key == "rtpmap" && pt.trim().parse::<u8>().ok()? == payload_type)
                .then_some(rest.trim())
        });
        let (name, clock_rate, channels) = match rtpmap {
            Some(map) => {
                let mut parts = map.split('/');
                let name = parts.next().unwrap_or_default().to_owned();
                let Some(clock) = parts.next().and_then(|c| c.trim().parse::<u32>().ok()) else {
                    continue;
                };
                let channels = parts
                    .next()
                    .and_then(|c| c.trim().parse::<u8>().ok())
                    .unwrap_or(1);
                (name, clock, channels)
            }
            None => match static_format(payload_type) {
                Some((name, clock)) => (name.to_owned(), clock, 1),
                None => continue,
            },
        };
        let fmtp = media.attributes.iter().find_map(|a| {
            let value = a.value.as_deref()?;
            let (pt, rest) = value.split_once(' ')?;
            (a.key == "fmtp" && pt.trim().parse::<u8>().ok()? == payload_type)
                .then(|| rest.trim().to_owned())
        });
        out.push(PayloadFormat {
            payload_type,
            name,
            clock_rate,
            channels,
            fmtp,
        });
    }
    out
}

fn parse_address(text: &str) -> Result<IpAddr, SdpError> {
    text.split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|_| SdpError::BadAddress(text.to_owned()))
}

/// The audio stream of a remote description (an offer or an answer), parsed.
pub(crate) struct RemoteAudio {
    pub(crate) session: SessionDescription,
    pub(crate) audio_index: usize,
    pub(crate) formats: Vec<PayloadFormat>,
    pub(crate) remote_rtp: SocketAddr,
    pub(crate) remote_rtcp: SocketAddr,
    pub(crate) rtcp_mux: bool,
    pub(crate) remote_ptime_ms: Option<u32>,
    pub(crate) audio_level_id: Option<u8>,
    /// The direction the remote side wrote (its own point of view).
    pub(crate) direction: Direction,
}

impl RemoteAudio {
    /// Parses `text` (LF line ends are accepted) and finds its first audio stream.
    pub(crate) fn parse(text: &str) -> Result<Self, SdpError> {
        let normalized;
        let text = if text.contains("\r\n") {
            text
        } else {
            normalized = text.replace('\n', "\r\n");
            &normalized
        };
        let session = SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
            .map_err(|e| SdpError::Malformed(e.to_string()))?;

        let audio_index = session
            .media_descriptions
            .iter()
            .position(|m| m.media_name.media == "audio" && m.media_name.port.value != 0)
            .ok_or(SdpError::NoAudio)?;
        let media = &session.media_descriptions[audio_index];
        let protos = media.media_name.protos.join("/");
        if protos != "RTP/AVP" && protos != "RTP/AVPF" {
            return Err(SdpError::UnsupportedTransport(protos));
        }
        let connection = media
            .connection_information
            .as_ref()
            .or(session.connection_information.as_ref())
            .and_then(|c| c.address.as_ref())
            .ok_or(SdpError::NoConnectionAddress)?;
        let remote_ip = parse_address(&connection.address)?;
        let remote_port = u16::try_from(media.media_name.port.value)
            .map_err(|_| SdpError::Malformed("audio port out of range".into()))?;

        let rtcp_mux = media.has_attribute("rtcp-mux");
        let remote_rtcp = match media.attribute("rtcp").flatten() {
            Some(value) => {
                let mut parts = value.split_whitespace();
                let port = parts
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(|| SdpError::Malformed(format!("a=rtcp:{value}")))?;
                let address = match (parts.next(), parts.next(), parts.next()) {
                    (Some("IN"), Some(_), Some(addr)) => parse_address(addr)?,
                    _ => remote_ip,
                };
                SocketAddr::new(address, port)
            }
            None if rtcp_mux => SocketAddr::new(remote_ip, remote_port),
            None => SocketAddr::new(remote_ip, remote_port.saturating_add(1)),
        };
        let remote_ptime_ms = media
            .attribute("ptime")
            .flatten()
            .and_then(|p| p.trim().parse::<u32>().ok());
        let audio_level_id = media.attributes.iter().find_map(|a| {
            let value = a.value.as_deref()?;
            if a.key != "extmap" || !value.contains(AUDIO_LEVEL_URI) {
                return None;
            }
            let id = value.split_whitespace().next()?.split('/').next()?;
            id.parse::<u8>().ok().filter(|id| (1..=14).contains(id))
        });
        let direction = direction_of(media, &session);
        let formats = formats(media);
        Ok(Self {
            session,
            audio_index,
            formats,
            remote_rtp: SocketAddr::new(remote_ip, remote_port),
            remote_rtcp,
            rtcp_mux,
            remote_ptime_ms,
            audio_level_id,
            direction,
        })
    }

    /// The `telephone-event` format at `clock` (or the first one at any rate).
    pub(crate) fn telephone_event(&self, clock: u32) -> Option<PayloadFormat> {
        let mut events = self
            .formats
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("telephone-event"));
        let first = events.clone().next();
        events.find(|f| f.clock_rate == clock).or(first).cloned()
    }

    /// The error for a description with no codec of `preference`.
    pub(crate) fn no_common_codec(&self, preference: &[(String, u32)]) -> SdpError {
        SdpError::NoCommonCodec {
            offered: if self.formats.is_empty() {
                "no usable format".into()
            } else {
                self.formats
                    .iter()
                    .map(|f| format!("{}/{}", f.name, f.clock_rate))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            supported: preference
                .iter()
                .map(|(n, c)| format!("{n}/{c}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The negotiation with `codec`, tutti's `direction` and the SDP tutti sends.
    pub(crate) fn negotiated(
        self,
        codec: PayloadFormat,
        direction: Direction,
        sdp: String,
    ) -> Negotiated {
        let telephone_event = self.telephone_event(codec.clock_rate);
        Negotiated {
            receive_payload_type: codec.payload_type,
            receive_event_payload_type: telephone_event.as_ref().map(|e| e.payload_type),
            codec,
            telephone_event,
            remote_rtp: self.remote_rtp,
            remote_rtcp: self.remote_rtcp,
            rtcp_mux: self.rtcp_mux,
            remote_ptime_ms: self.remote_ptime_ms,
            direction,
            audio_level_id: self.audio_level_id,
            answer: sdp,
        }
    }
}

/// Answers an audio offer: picks the first codec of `config.preference` the offer contains,
/// keeps `telephone-event`, mirrors the direction (`inactive` to an offer on `c=0.0.0.0`), honours `rtcp-mux` and the audio level
/// extension, and declines every other stream. The answer's `o=` line carries
/// `config.session_id` as both session id and version.
pub fn answer_offer(offer: &str, config: &AnswerConfig) -> Result<Negotiated, SdpError> {
    answer_reoffer(offer, config, config.session_id)
}

/// Answers an offer made within a running session (a SIP re-INVITE or UPDATE) like
/// [`answer_offer`], with `session_version` in the `o=` line: RFC 3264 §8 keeps the session id
/// of the previous answer and increments its version.
pub fn answer_reoffer(
    offer: &str,
    config: &AnswerConfig,
    session_version: u64,
) -> Result<Negotiated, SdpError> {
    let remote = RemoteAudio::parse(offer)?;
    let codec = config
        .preference
        .iter()
        .find_map(|(name, clock)| {
            remote
                .formats
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(name) && f.clock_rate == *clock)
        })
        .cloned()
        .ok_or_else(|| remote.no_common_codec(&config.preference))?;
    let telephone_event = remote.telephone_event(codec.clock_rate);
    // An offer on hold the old way (RFC 2543's `c=0.0.0.0`) can receive nothing.
    let direction = if remote.remote_rtp.ip().is_unspecified() {
        Direction::Inactive
    } else {
        remote.direction.answer()
    };
    let answer = build_answer(
        &remote.session,
        remote.audio_index,
        config,
        session_version,
        &codec,
        telephone_event.as_ref(),
        direction,
        remote.rtcp_mux,
        remote.audio_level_id,
    );
    Ok(remote.negotiated(codec, direction, answer))
}

#[allow(clippy::too_many_arguments)]
fn build_answer(
    offer: &SessionDescription,
    audio_index: usize,
    config: &AnswerConfig,
    session_version: u64,
    codec: &PayloadFormat,
    telephone_event: Option<&PayloadFormat>,
    direction: Direction,
    rtcp_mux: bool,
    audio_level_id: Option<u8>,
) -> String {
    let family = if config.address.is_ipv6() {
        "IP6"
    } else {
        "IP4"
    };
    let address = config.address;
    let mut sdp = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        sdp,
        "v=0\r\no=tutti {id} {session_version} IN {family} {address}\r\ns=tutti\r\nc=IN {family} {address}\r\nt=0 0\r\n",
        id = config.session_id
    );
    for (index, media) in offer.media_descriptions.iter().enumerate() {
        let name = &media.media_name;
        if index != audio_index {
            // Declined (RFC 3264 §6): same media and transport, port 0, the formats echoed.
            let _ = write!(
                sdp,
                "m={} 0 {} {}\r\n",
                name.media,
                name.protos.join("/"),
                name.formats.join(" ")
            );
            continue;
        }
        let mut formats = codec.payload_type.to_string();
        if let Some(event) = telephone_event {
            let _ = write!(formats, " {}", event.payload_type);
        }
        let _ = write!(sdp, "m=audio {} RTP/AVP {formats}\r\n", config.port);
        let channels = if codec.channels > 1 {
            format!("/{}", codec.channels)
        } else {
            String::new()
        };
        let _ = write!(
            sdp,
            "a=rtpmap:{} {}/{}{channels}\r\n",
            codec.payload_type, codec.name, codec.clock_rate
        );
        if codec.name.eq_ignore_ascii_case("opus") {
            let _ = write!(
                sdp,
                "a=fmtp:{} minptime=10;useinbandfec=1\r\n",
                codec.payload_type
            );
        }
        if let Some(event) = telephone_event {
            let _ = write!(
                sdp,
                "a=rtpmap:{pt} telephone-event/{clock}\r\na=fmtp:{pt} 0-16\r\n",
                pt = event.payload_type,
                clock = event.clock_rate
            );
        }
        let _ = write!(
            sdp,
            "a=ptime:{}\r\na={}\r\n",
            config.ptime_ms,
            direction.attribute()
        );
        if rtcp_mux {
            sdp.push_str("a=rtcp-mux\r\n");
        } else {
            // One port per participant: RTCP comes to the RTP port (RFC 3605).
            let _ = write!(sdp, "a=rtcp:{}\r\n", config.port);
        }
        if let Some(id) = audio_level_id {
            let _ = write!(sdp, "a=extmap:{id} {AUDIO_LEVEL_URI}\r\n");
        }
    }
    sdp
}
