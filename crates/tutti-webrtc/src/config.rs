//! The `[webrtc]` settings.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// `[webrtc]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcConfig {
    /// Whether browsers can join over WebRTC.
    pub enabled: bool,
    /// The one UDP port of every peer (ICE, DTLS and SRTP share it).
    pub listen: SocketAddr,
    /// The address of the host candidate browsers are given; `None`: the media plane's public
    /// address.
    pub public_address: Option<IpAddr>,
    /// STUN/TURN servers handed to browsers for their side of NAT (the join page's
    /// `RTCPeerConnection`); tutti itself is ICE-lite and uses none.
    pub ice_servers: Vec<IceServer>,
    /// The Opus bitrate browsers are asked to send at, bit/s (`maxaveragebitrate` in the
    /// answer); 0 leaves it to the browser (about 32 kb/s).
    pub browser_bitrate: u32,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7882),
            public_address: None,
            ice_servers: Vec::new(),
            browser_bitrate: 64_000,
        }
    }
}

/// One STUN or TURN server for browsers, shaped like the WebRTC `RTCIceServer` dictionary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:` / `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// The TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}
