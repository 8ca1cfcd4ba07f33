//! Engine settings, with defaults that work on a laptop.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::time::Duration;

use tutti_codec::EncoderSettings;

/// How the media plane runs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Mixer threads (default: one per core).
    pub mixer_threads: usize,
    /// UDP ports handed to participants, one each (default 20000–29999).
    pub ports: RangeInclusive<u16>,
    /// Address media sockets bind to (default: all interfaces).
    pub bind_address: IpAddr,
    /// Address written into SDP answers (default: 127.0.0.1; set the public one in production).
    pub public_address: IpAddr,
    /// Send to the source the caller's stream is pinned to rather than the SDP address
    /// (default on; NATed phones need it). Which sources may pin a stream is the engine's
    /// source rule, described in the crate documentation; it holds with or without latching.
    pub latching: bool,
    /// Lets any host latch onto a caller whose offer names a private address (behind NAT)
    /// when the join does not say where its signalling came from. Off by default: such a
    /// caller is then accepted only from the private address it offered.
    pub nat_any_source: bool,
    /// How long media may go to an offer's address before a packet from the caller has
    /// proven the address is the caller's (default 2 s, at most 100 packets): an offer naming
    /// somebody else's address cannot make the server flood it.
    pub unproven_send_window: Duration,
    /// A participant who sends no RTP for this long leaves (default 30 s).
    pub rtp_timeout: Duration,
    /// Opus encoder settings for what tutti sends (default: [`EncoderSettings::default`],
    /// wideband CELT at 96 kb/s). Each Opus listener gets them adapted to its offer (see
    /// [`EncoderSettings::toward_listener`]).
    pub opus: EncoderSettings,
    /// Codec preference for answers, as SDP encoding names with clock rates.
    pub codec_preference: Vec<(String, u32)>,
    /// Capacity of the event channel; events beyond it are counted and dropped.
    pub event_capacity: usize,
    /// Interval between RTCP reports per participant (default 5 s, RFC 3550's minimum).
    pub rtcp_interval: Duration,
    /// Send the mixes of callers who do not latch (asymmetric RTP: they send from another
    /// port than the one they receive on) from one port per mixer thread, many packets per
    /// system call (default on). Latching callers always get media from their own port.
    pub batch_sends: bool,
    /// Run mixer threads at a raised priority (a lower nice value) when the process may (root,
    /// or `CAP_SYS_NICE`, e.g. systemd's `Nice=` or `AmbientCapabilities`): a tick then starts
    /// on time even while other work shares the cores. Default on; without the permission the
    /// threads run at the normal priority.
    pub raise_priority: bool,
    /// How long a reserved media port (an offer awaiting its answer, a participant detached
    /// to join another room) waits to be joined on before it is closed (default 3 minutes).
    pub reserved_port_ttl: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            mixer_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ports: 20_000..=29_999,
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            public_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            latching: true,
            nat_any_source: false,
            unproven_send_window: Duration::from_secs(2),
            rtp_timeout: Duration::from_secs(30),
            opus: EncoderSettings::default(),
            codec_preference: tutti_rtp::sdp::AnswerConfig::default_preference(),
            event_capacity: 65_536,
            rtcp_interval: Duration::from_secs(5),
            batch_sends: true,
            raise_priority: true,
            reserved_port_ttl: Duration::from_secs(180),
        }
    }
}
