//! RTCP for one call leg (RFC 3550 §6): receiver statistics and report blocks for what we
//! receive, sender reports for what we send, and round-trip time from the report blocks the
//! caller sends back.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtcp_types::{Compound, Packet, ReportBlock};

use crate::packet::DropReason;
use crate::rtcp_report::{write_compound, ReceptionReport, SenderInfo};

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Maps monotonic instants to 64-bit NTP timestamps, anchored to the wall clock once.
#[derive(Clone, Copy, Debug)]
pub struct NtpClock {
    epoch: Instant,
    epoch_ntp: u64,
}

impl NtpClock {
    /// A clock on which `now` is the wall-clock time `wall`.
    pub fn new(now: Instant, wall: SystemTime) -> Self {
        let since_unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            epoch: now,
            epoch_ntp: to_ntp(since_unix + Duration::from_secs(NTP_UNIX_OFFSET)),
        }
    }

    /// The NTP timestamp of `now`.
    pub fn ntp(&self, now: Instant) -> u64 {
        self.epoch_ntp
            .wrapping_add(to_ntp(now.saturating_duration_since(self.epoch)))
    }
}

fn to_ntp(d: Duration) -> u64 {
    (d.as_secs() << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

/// The middle 32 bits of an NTP timestamp, as LSR and DLSR use them (1/65536 s units).
fn middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

fn from_short(units: u32) -> Duration {
    Duration::from_nanos(u64::from(units) * 1_000_000_000 / 65_536)
}

fn to_short(d: Duration) -> u32 {
    ((d.as_nanos() * 65_536) / 1_000_000_000).min(u128::from(u32::MAX)) as u32
}

/// What RTCP learned about the call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RtcpStats {
    /// Round-trip time from the caller's last report about our stream.
    pub rtt: Option<Duration>,
    /// Fraction of our packets the caller lost (0..=1), from its last report.
    pub remote_fraction_lost: Option<f32>,
    /// Packets of ours the caller lost in all.
    pub remote_cumulative_lost: Option<u32>,
    /// Jitter the caller measured on our stream, in its RTP timestamp units.
    pub remote_jitter: Option<u32>,
    /// Reports received.
    pub reports_received: u64,
    /// RTCP packets dropped as malformed.
    pub malformed: u64,
}

/// RTCP state of one call leg.
#[derive(Clone, Debug)]
pub struct RtcpSession {
    ssrc: u32,
    cname: String,
    clock: NtpClock,
    remote_ssrc: Option<u32>,
    // Reception (RFC 3550 A.3).
    base_sequence: Option<u64>,
    highest_sequence: u64,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    last_sr: Option<(u32, Instant)>,
    // Sending.
    packets_sent: u32,
    octets_sent: u32,
    sent_since_report: bool,
    stats: RtcpStats,
}

impl RtcpSession {
    /// A session for our stream `ssrc`, with the canonical name `cname`.
    pub fn new(ssrc: u32, cname: impl Into<String>, clock: NtpClock) -> Self {
        Self {
            ssrc,
            cname: cname.into(),
            clock,
            remote_ssrc: None,
            base_sequence: None,
            highest_sequence: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            last_sr: None,
            packets_sent: 0,
            octets_sent: 0,
            sent_since_report: false,
            stats: RtcpStats::default(),
        }
    }

    /// What RTCP learned so far.
    pub fn stats(&self) -> RtcpStats {
        self.stats
    }

    /// Records a received RTP packet.
    pub fn on_rtp_received(&mut self, ssrc: u32, sequence: u16) {
        if self.remote_ssrc != Some(ssrc) {
            self.remote_ssrc = Some(ssrc);
            self.base_sequence = None;
            self.received = 0;
            self.expected_prior = 0;
            self.received_prior = 0;
        }
        let extended = match self.base_sequence {
            None => {
                let first = (1u64 << 32) + u64::from(sequence);
                self.base_sequence = Some(first);
                self.highest_sequence = first;
                first
            }
            Some(_) => {
                let delta = i64::from(sequence.wrapping_sub(self.highest_sequence as u16) as i16);
                (self.highest_sequence as i64 + delta) as u64
            }
        };
        self.highest_sequence = self.highest_sequence.max(extended);
        self.received += 1;
    }

    /// Records an RTP packet we sent.
    pub fn on_rtp_sent(&mut self, payload_len: usize) {
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload_len as u32);
        self.sent_since_report = true;
    }

    /// Handles an incoming RTCP compound packet.
    pub fn handle(&mut self, data: &[u8], now: Instant) -> Result<(), DropReason> {
        let compound = Compound::parse(data).map_err(|_| {
            self.stats.malformed += 1;
            DropReason::MalformedRtcp
        })?;
        for packet in compound {
            let Ok(packet) = packet else {
                self.stats.malformed += 1;
                return Err(DropReason::MalformedRtcp);
            };
            match packet {
                Packet::Sr(sr) => {
                    self.last_sr = Some((middle(sr.ntp_timestamp()), now));
                    for block in sr.report_blocks() {
                        self.on_report_block(&block, now);
                    }
                }
                Packet::Rr(rr) => {
                    for block in rr.report_blocks() {
                        self.on_report_block(&block, now);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_report_block(&mut self, block: &ReportBlock<'_>, now: Instant) {
        if block.ssrc() != self.ssrc {
            return;
        }
        self.stats.reports_received += 1;
        self.stats.remote_fraction_lost = Some(f32::from(block.fraction_lost()) / 256.0);
        self.stats.remote_cumulative_lost = Some(block.cumulative_lost());
        self.stats.remote_jitter = Some(block.interarrival_jitter());
        let lsr = block.last_sender_report_timestamp();
        if lsr != 0 {
            let arrival = middle(self.clock.ntp(now));
            let rtt = arrival
                .wrapping_sub(lsr)
                .wrapping_sub(block.delay_since_last_sender_report_timestamp());
            if rtt < u32::MAX / 2 {
                self.stats.rtt = Some(from_short(rtt));
            }
        }
    }

    fn report_block(
        &mut self,
        jitter: Duration,
        clock_rate: u32,
        now: Instant,
    ) -> Option<ReceptionReport> {
        let remote = self.remote_ssrc?;
        let base = self.base_sequence?;
        let expected = self.highest_sequence - base + 1;
        let lost = expected.saturating_sub(self.received);
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8);
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => (lsr, to_short(now.saturating_duration_since(at))),
            None => (0, 0),
        };
        let jitter_units = (jitter.as_secs_f64() * f64::from(clock_rate)) as u32;
        Some(ReceptionReport {
            ssrc: remote,
            fraction_lost: fraction,
            cumulative_lost: lost.min(0x7F_FFFF) as u32,
            extended_highest_sequence: self.highest_sequence as u32,
            jitter: jitter_units,
            last_sr: lsr,
            delay_since_last_sr: dlsr,
        })
    }

    /// Writes the periodic report into `out`: a sender report when we sent since the last one
    /// (with `rtp_timestamp`, our stream's timestamp at `now`), otherwise a receiver report;
    /// then SDES with our CNAME. `jitter` and `clock_rate` describe what we receive. Returns
    /// the length, or `None` when `out` is too small.
    pub fn write_report(
        &mut self,
        now: Instant,
        rtp_timestamp: u32,
        jitter: Duration,
        clock_rate: u32,
        out: &mut [u8],
    ) -> Option<usize> {
        let block = self.report_block(jitter, clock_rate, now);
        let sender = std::mem::take(&mut self.sent_since_report).then(|| SenderInfo {
            ntp: self.clock.ntp(now),
            rtp_timestamp,
            packets: self.packets_sent,
            octets: self.octets_sent,
        });
        write_compound(out, self.ssrc, sender, block, self.cname.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn reports_carry_loss_and_rtt_comes_back() {
        let start = Instant::now();
        let wall = SystemTime::now();
        let mut tutti = RtcpSession::new(0xAAAA, "tutti@example", NtpClock::new(start, wall));
        // The caller's clock is 3 s off: RTT must not care.
        let mut caller = RtcpSession::new(
            0xBBBB,
            "caller",
            NtpClock::new(start, wall + Duration::from_secs(3)),
        );
        let mut buf = [0u8; 512];

        // tutti sends 50 packets, the caller receives 45 of them (every 10th lost).
        for seq in 0..50u16 {
            tutti.on_rtp_sent(160);
            if seq % 10 != 3 {
                caller.on_rtp_received(0xAAAA, seq);
            }
        }
        let len = tutti
            .write_report(at(start, 1000), 8000, Duration::ZERO, 8000, &mut buf)
            .unwrap();
        caller.handle(&buf[..len], at(start, 1010)).unwrap(); // 10 ms one way
                                                              // The caller reports 100 ms later; it arrives after 20 ms more.
        let len = caller
            .write_report(at(start, 1110), 0, Duration::from_millis(5), 8000, &mut buf)
            .unwrap();
        tutti.handle(&buf[..len], at(start, 1130)).unwrap();

        let stats = tutti.stats();
        let rtt = stats.rtt.unwrap().as_secs_f64() * 1000.0;
        assert!((rtt - 30.0).abs() < 0.5, "rtt {rtt} ms");
        assert_eq!(stats.remote_cumulative_lost, Some(5));
        let fraction = stats.remote_fraction_lost.unwrap();
        assert!((fraction - 0.1).abs() < 0.01, "fraction {fraction}");
        assert_eq!(stats.remote_jitter, Some(40));
        assert_eq!(stats.reports_received, 1);
    }

    #[test]
    fn a_receiver_only_session_sends_receiver_reports() {
        let start = Instant::now();
        let mut session = RtcpSession::new(1, "x", NtpClock::new(start, SystemTime::now()));
        session.on_rtp_received(9, 65_535);
        session.on_rtp_received(9, 1); // wrap, one lost
        let mut buf = [0u8; 256];
        let len = session
            .write_report(start, 0, Duration::ZERO, 8000, &mut buf)
            .unwrap();
        let kinds: Vec<bool> = Compound::parse(&buf[..len])
            .unwrap()
            .map(|p| matches!(p.unwrap(), Packet::Rr(_)))
            .collect();
        assert_eq!(kinds, vec![true, false], "RR then SDES");
        let Some(Ok(Packet::Rr(rr))) = Compound::parse(&buf[..len]).unwrap().next() else {
            panic!()
        };
        let block = rr.report_blocks().next().unwrap();
        assert_eq!(block.cumulative_lost(), 1);
    }

    proptest! {
        #[test]
        fn garbage_is_dropped_and_counted(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let start = Instant::now();
            let mut session = RtcpSession::new(1, "x", NtpClock::new(start, SystemTime::now()));
            let _ = session.handle(&data, start);
        }
    }
}
