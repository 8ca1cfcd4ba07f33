//! The endpoint's counters and their Prometheus series.

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

/// Stores a snapshot with the `metrics` macros (`tutti_webrtc_*`), in the recorder in force.
pub fn record(m: &WebRtcMetrics) {
    use metrics::{counter, describe_counter, describe_gauge, gauge};
    describe_gauge!(
        "tutti_webrtc_peers",
        "WebRTC peers now (connecting or connected)."
    );
    gauge!("tutti_webrtc_peers").set(m.peers as f64);
    describe_counter!(
        "tutti_webrtc_failed_total",
        "WebRTC peers removed because they failed, by reason."
    );
    for (reason, count) in &m.failed {
        counter!("tutti_webrtc_failed_total", "reason" => reason.label()).absolute(*count);
    }
    describe_counter!(
        "tutti_webrtc_dropped_total",
        "Datagrams dropped on the WebRTC port, by reason."
    );
    for (reason, count) in &m.dropped {
        counter!("tutti_webrtc_dropped_total", "reason" => reason.label()).absolute(*count);
    }
    for (name, help, value) in [
        (
            "tutti_webrtc_connected_total",
            "WebRTC peers that completed ICE and DTLS.",
            m.connected,
        ),
        (
            "tutti_webrtc_packets_in_total",
            "Datagrams received on the WebRTC port.",
            m.packets_in,
        ),
        (
            "tutti_webrtc_packets_out_total",
            "Datagrams sent from the WebRTC port.",
            m.packets_out,
        ),
        (
            "tutti_webrtc_rtp_in_total",
            "RTP packets from browsers handed to the engine.",
            m.rtp_in,
        ),
        (
            "tutti_webrtc_rtp_out_total",
            "RTP packets from the engine sent to browsers.",
            m.rtp_out,
        ),
    ] {
        describe_counter!(name, help);
        counter!(name).absolute(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_becomes_the_webrtc_series_with_their_types() {
        let snapshot = WebRtcMetrics {
            peers: 2,
            connected: 5,
            failed: vec![(FailReason::ConnectTimeout, 1)],
            dropped: vec![(DropReason::Malformed, 4)],
            packets_in: 10,
            packets_out: 11,
            rtp_in: 7,
            rtp_out: 8,
        };
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, || record(&snapshot));
        let text = recorder.handle().render();
        for line in [
            "# TYPE tutti_webrtc_peers gauge",
            "tutti_webrtc_peers 2",
            "# TYPE tutti_webrtc_connected_total counter",
            "tutti_webrtc_connected_total 5",
            "# TYPE tutti_webrtc_failed_total counter",
            "tutti_webrtc_failed_total{reason=\"connect_timeout\"} 1",
            "# TYPE tutti_webrtc_dropped_total counter",
            "tutti_webrtc_dropped_total{reason=\"malformed\"} 4",
            "# TYPE tutti_webrtc_packets_in_total counter",
            "tutti_webrtc_packets_in_total 10",
            "# TYPE tutti_webrtc_packets_out_total counter",
            "tutti_webrtc_packets_out_total 11",
            "# TYPE tutti_webrtc_rtp_in_total counter",
            "tutti_webrtc_rtp_in_total 7",
            "# TYPE tutti_webrtc_rtp_out_total counter",
            "tutti_webrtc_rtp_out_total 8",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
