//! The endpoint's counters and their Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::demux::DropReason;

/// Why a peer was removed without hanging up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailReason {
    /// ICE and DTLS did not complete in time.
    ConnectTimeout,
    /// The connection stayed ICE-disconnected too long.
    IceDisconnected,
    /// The WebRTC stack failed (DTLS alert, SRTP error…).
    PeerError,
}

impl FailReason {
    /// Every reason, for metrics.
    pub const ALL: [Self; 3] = [Self::ConnectTimeout, Self::IceDisconnected, Self::PeerError];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::ConnectTimeout => "connect_timeout",
            Self::IceDisconnected => "ice_disconnected",
            Self::PeerError => "peer_error",
        }
    }
}

/// A snapshot of the endpoint's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebRtcMetrics {
    /// Peers now (connecting or connected).
    pub peers: usize,
    /// Peers that completed ICE and DTLS, ever.
    pub connected: u64,
    /// Peers removed because they failed, by reason.
    pub failed: Vec<(FailReason, u64)>,
    /// Datagrams dropped, by reason.
    pub dropped: Vec<(DropReason, u64)>,
    /// Datagrams received on the port.
    pub packets_in: u64,
    /// Datagrams sent from the port.
    pub packets_out: u64,
    /// RTP packets handed to the engine.
    pub rtp_in: u64,
    /// RTP packets from the engine handed to peers.
    pub rtp_out: u64,
}

impl WebRtcMetrics {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// Peers failed for `reason`.
    pub fn failed(&self, reason: FailReason) -> u64 {
        self.failed
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

/// The live counters, shared by the IO thread and the endpoint.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub peers: AtomicUsize,
    pub connected: AtomicU64,
    pub failed: [AtomicU64; FailReason::ALL.len()],
    pub dropped: [AtomicU64; DropReason::ALL.len()],
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub rtp_in: AtomicU64,
    pub rtp_out: AtomicU64,
}

impl Counters {
    pub fn count_drop(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn fail(&self, reason: FailReason) {
        self.failed[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> WebRtcMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WebRtcMetrics {
            peers: self.peers.load(Ordering::Relaxed),
            connected: get(&self.connected),
            failed: FailReason::ALL
                .iter()
                .map(|&r| (r, get(&self.failed[r as usize])))
                .collect(),
            dropped: DropReason::ALL
                .iter()
                .map(|&r| (r, get(&self.dropped[r as usize])))
                .collect(),
            packets_in: get(&self.packets_in),
            packets_out: get(&self.packets_out),
            rtp_in: get(&self.rtp_in),
            rtp_out: get(&self.rtp_out),
        }
    }
}

/// Prometheus text exposition of a snapshot (`tutti_webrtc_*`).
pub fn exposition(m: &WebRtcMetrics) -> String {
    let mut out = String::new();
    let mut section = |name: &str, kind: &str, help: &str, rows: Vec<(Option<String>, u64)>| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for (label, value) in rows {
            match label {
                Some(l) => {
                    let _ = writeln!(out, "{name}{{{l}}} {value}");
                }
                None => {
                    let _ = writeln!(out, "{name} {value}");
                }
            }
        }
    };
    section(
        "tutti_webrtc_peers",
        "gauge",
        "WebRTC peers now (connecting or connected).",
        vec![(None, m.peers as u64)],
    );
    section(
        "tutti_webrtc_connected_total",
        "counter",
        "WebRTC peers that completed ICE and DTLS.",
        vec![(None, m.connected)],
    );
    section(
        "tutti_webrtc_failed_total",
        "counter",
        "WebRTC peers removed because they failed, by reason.",
        m.failed
            .iter()
            .map(|(r, n)| (Some(format!("reason=\"{}\"", r.label())), *n))
            .collect(),
    );
    section(
        "tutti_webrtc_dropped_total",
        "counter",
        "Datagrams dropped on the WebRTC port, by reason.",
        m.dropped
            .iter()
            .map(|(r, n)| (Some(format!("reason=\"{}\"", r.label())), *n))
            .collect(),
    );
    section(
        "tutti_webrtc_packets_in_total",
        "counter",
        "Datagrams received on the WebRTC port.",
        vec![(None, m.packets_in)],
    );
    section(
        "tutti_webrtc_packets_out_total",
        "counter",
        "Datagrams sent from the WebRTC port.",
        vec![(None, m.packets_out)],
    );
    section(
        "tutti_webrtc_rtp_in_total",
        "counter",
        "RTP packets from browsers handed to the engine.",
        vec![(None, m.rtp_in)],
    );
    section(
        "tutti_webrtc_rtp_out_total",
        "counter",
        "RTP packets from the engine sent to browsers.",
        vec![(None, m.rtp_out)],
    );
    out
}
