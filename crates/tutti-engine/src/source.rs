//! Which datagrams a participant's port accepts: only the source the signalling proved.
//!
//! The rule is checked on the receive thread, before a datagram is queued for the mixer, so a
//! stranger can neither be heard, take over the call, nor crowd the caller's own packets out
//! of its inbox with a flood.
//!
//! - The **expected host** is the offer's connection address (`c=`). When that address is
//!   private (RFC 1918, CGNAT, link-local, IPv6 unique-local or link-local) the caller is behind
//!   NAT: the host the signalling came from is expected instead when the join names it
//!   ([`JoinRequest::signalled_source`](crate::JoinRequest)); otherwise, only when the operator
//!   allows it ([`EngineConfig::nat_any_source`](crate::EngineConfig)), any host may latch. An
//!   offer on hold (`c=0.0.0.0`) expects nothing.
//! - The **port** must be the offer's `m=` port, unless the caller is behind NAT (NATs rewrite
//!   ports) or the leg does not latch (an endpoint that sends from one port and listens on
//!   another, such as a GStreamer pipeline): then any port of the expected host.
//! - The first RTP packet of the negotiated codec that passes those checks **pins** the stream:
//!   its source address and SSRC. Comfort noise and telephone events never pin. Afterwards only
//!   the pinned address is accepted; an SSRC change is accepted from that address only.
//!   Packets from the offer's exact address and port always win: they re-pin the stream.
//! - RTCP is accepted from the expected host (from the offer's RTCP or RTP port when ports are
//!   checked) and never pins.

use std::net::{IpAddr, SocketAddr};

use tutti_rtp::packet::{parse_datagram, Datagram as Parsed};
use tutti_rtp::sdp::Negotiated;

/// Why the receive thread refused a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not from the source the signalling proved (or not from the pinned stream).
    ForeignSource,
    /// Neither RTP nor RTCP, or a header that does not hold together.
    Malformed,
}

/// What to do with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Queue it.
    Accept,
    /// Queue it; it (re)pinned the stream to its source.
    AcceptAndPin,
    /// Drop and count it.
    Refuse(Refusal),
}

/// Which hosts may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hosts {
    /// This one only.
    Exact(IpAddr),
    /// Any (a caller behind NAT whose public address nobody knows; operator's choice).
    Any,
    /// None: the offer is on hold.
    Nothing,
}

/// The source rule of one participant, with its pinned stream.
#[derive(Debug)]
pub(crate) struct SourceGuard {
    hosts: Hosts,
    any_port: bool,
    sdp_rtp: SocketAddr,
    sdp_rtcp: SocketAddr,
    codec_payload_type: u8,
    pinned: Option<(SocketAddr, u32)>,
}

/// Whether `ip` is an address a caller behind NAT would offer: one the server could not
/// reach from outside its own network.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

impl SourceGuard {
    /// The rule for a negotiated call. `latching`: the leg sends to the pinned source;
    /// `signalled_source`: the caller's address as the signalling saw it; `nat_any_source`:
    /// the operator lets any host latch onto a NATed caller whose public address is unknown.
    pub(crate) fn new(
        negotiated: &Negotiated,
        latching: bool,
        signalled_source: Option<IpAddr>,
        nat_any_source: bool,
    ) -> Self {
        let offered = negotiated.remote_rtp.ip();
        let (hosts, any_port) = if offered.is_unspecified() {
            (Hosts::Nothing, false)
        } else if is_private(offered) {
            match signalled_source {
                Some(source) if source != offered => (Hosts::Exact(source), true),
                _ if nat_any_source && latching => (Hosts::Any, true),
                _ => (Hosts::Exact(offered), !latching),
            }
        } else {
            (Hosts::Exact(offered), !latching)
        };
        Self {
            hosts,
            any_port,
            sdp_rtp: negotiated.remote_rtp,
            sdp_rtcp: negotiated.remote_rtcp,
            codec_payload_type: negotiated.receive_payload_type,
            pinned: None,
        }
    }

    fn host_allowed(&self, from: SocketAddr) -> bool {
        match self.hosts {
            Hosts::Exact(host) => same_host(host, from.ip()),
            Hosts::Any => true,
            Hosts::Nothing => false,
        }
    }

    /// Judges one datagram from `from`.
    pub(crate) fn check(&mut self, bytes: &[u8], from: SocketAddr) -> Verdict {
        if !self.host_allowed(from) {
            return Verdict::Refuse(Refusal::ForeignSource);
        }
        let packet = match parse_datagram(bytes, None) {
            Ok(Parsed::Rtp(packet)) => packet,
            Ok(Parsed::Rtcp(_)) => return self.check_rtcp(from),
            Err(_) => return Verdict::Refuse(Refusal::Malformed),
        };
        let exact = from == self.sdp_rtp;
        let codec = packet.payload_type == self.codec_payload_type;
        match self.pinned {
            Some((address, _)) if address == from => {
                if codec {
                    self.pinned = Some((address, packet.ssrc));
                }
                Verdict::Accept
            }
            // The offer's own address and port win over an earlier pin.
            Some(_) if exact && codec => {
                self.pinned = Some((from, packet.ssrc));
                Verdict::AcceptAndPin
            }
            Some(_) => Verdict::Refuse(Refusal::ForeignSource),
            None if !(exact || self.any_port) => Verdict::Refuse(Refusal::ForeignSource),
            // Comfort noise and telephone events never pin; before a pin they are taken from
            // the offer's exact address only.
            None if !codec => {
                if exact {
                    Verdict::Accept
                } else {
                    Verdict::Refuse(Refusal::ForeignSource)
                }
            }
            None => {
                self.pinned = Some((from, packet.ssrc));
                Verdict::AcceptAndPin
            }
        }
    }

    fn check_rtcp(&self, from: SocketAddr) -> Verdict {
        let allowed = match (self.hosts, self.pinned) {
            // Any host may latch: RTCP only from the pinned caller's host.
            (Hosts::Any, Some((address, _))) => same_host(address.ip(), from.ip()),
            (Hosts::Any, None) => false,
            _ if self.any_port => true,
            _ => {
                from == self.sdp_rtcp
                    || from == self.sdp_rtp
                    || self.pinned.is_some_and(|(a, _)| a == from)
            }
        };
        if allowed {
            Verdict::Accept
        } else {
            Verdict::Refuse(Refusal::ForeignSource)
        }
    }
}

/// Equal hosts, treating an IPv4-mapped IPv6 address as its IPv4 address.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_rtp::packet::{write_rtp, OutgoingRtp};
    use tutti_rtp::sdp::{answer_offer, AnswerConfig};

    fn negotiated(address: &str, port: u16) -> Negotiated {
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 13 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        );
        answer_offer(
            &offer,
            &AnswerConfig {
                address: "127.0.0.1".parse().unwrap(),
                port: 20_000,
                preference: AnswerConfig::default_preference(),
                session_id: 1,
                ptime_ms: 20,
            },
        )
        .unwrap()
    }

    fn rtp(payload_type: u8, ssrc: u32) -> Vec<u8> {
        let mut buf = vec![0u8; 200];
        let header = OutgoingRtp {
            payload_type,
            sequence: 1,
            timestamp: 0,
            ssrc,
            marker: false,
        };
        let len = write_rtp(&mut buf, &header, &[0xff; 160]).unwrap();
        buf.truncate(len);
        buf
    }

    fn at(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_public_offer_pins_its_exact_address_only() {
        let mut guard = SourceGuard::new(&negotiated("203.0.113.7", 4000), true, None, false);
        let stranger = at("198.51.100.1:4000");
        let other_port = at("203.0.113.7:4002");
        assert_eq!(
            guard.check(&rtp(0, 1), stranger),
            Verdict::Refuse(Refusal::ForeignSource)
        );
        assert_eq!(
            guard.check(&rtp(0, 1), other_port),
            Verdict::Refuse(Refusal::ForeignSource)
        );
        assert_eq!(
            guard.check(&rtp(0, 7), at("203.0.113.7:4000")),
            Verdict::AcceptAndPin
        );
        assert_eq!(
            guard.check(&rtp(0, 8), at("203.0.113.7:4000")),
            Verdict::Accept
        );
    }

    #[test]
    fn comfort_noise_and_events_never_pin() {
        let mut guard = SourceGuard::new(&negotiated("203.0.113.7", 4000), false, None, false);
        let other_port = at("203.0.113.7:5555");
        for payload_type in [13, 101] {
            assert_eq!(
                guard.check(&rtp(payload_type, 1), other_port),
                Verdict::Refuse(Refusal::ForeignSource)
            );
        }
        assert_eq!(
            guard.check(&rtp(0, 2), at("203.0.113.7:6000")),
            Verdict::AcceptAndPin
        );
        // The pinned stream holds: another port of the same host is refused, even with the
        // pinned SSRC.
        assert_eq!(
            guard.check(&rtp(0, 2), other_port),
            Verdict::Refuse(Refusal::ForeignSource)
        );
        // The offer's own port wins.
        assert_eq!(
            guard.check(&rtp(0, 3), at("203.0.113.7:4000")),
            Verdict::AcceptAndPin
        );
        assert_eq!(
            guard.check(&rtp(0, 2), at("203.0.113.7:6000")),
            Verdict::Refuse(Refusal::ForeignSource)
        );
    }

    #[test]
    fn nat_rules() {
        let private = negotiated("192.168.1.20", 4000);
        // Unknown public address, operator did not allow any source: only the private host.
        let mut strict = SourceGuard::new(&private, true, None, false);
        assert_eq!(
            strict.check(&rtp(0, 1), at("198.51.100.9:31000")),
            Verdict::Refuse(Refusal::ForeignSource)
        );
        // The signalling's source is expected instead, on any port.
        let mut signalled =
            SourceGuard::new(&private, true, Some("198.51.100.9".parse().unwrap()), false);
        assert_eq!(
            signalled.check(&rtp(0, 1), at("203.0.113.50:31000")),
            Verdict::Refuse(Refusal::ForeignSource)
        );
        assert_eq!(
            signalled.check(&rtp(0, 1), at("198.51.100.9:31000")),
            Verdict::AcceptAndPin
        );
        // The operator allowed any source: the first codec packet pins, RTCP only from it.
        let mut any = SourceGuard::new(&private, true, None, true);
        assert_eq!(
            any.check(&[0x80, 201, 0, 1, 0, 0, 0, 1], at("198.51.100.9:31001")),
            Verdict::Refuse(Refusal::ForeignSource)
        );
        assert_eq!(
            any.check(&rtp(0, 1), at("198.51.100.9:31000")),
            Verdict::AcceptAndPin
        );
        assert_eq!(
            any.check(&[0x80, 201, 0, 1, 0, 0, 0, 1], at("198.51.100.9:31001")),
            Verdict::Accept
        );
        assert_eq!(
            any.check(&rtp(0, 1), at("203.0.113.50:31000")),
            Verdict::Refuse(Refusal::ForeignSource)
        );
    }

    #[test]
    fn hold_accepts_nothing_and_garbage_is_malformed() {
        let mut hold = SourceGuard::new(&negotiated("0.0.0.0", 4000), true, None, true);
        assert_eq!(
            hold.check(&rtp(0, 1), at("198.51.100.9:4000")),
            Verdict::Refuse(Refusal::ForeignSource)
        );
        let mut guard = SourceGuard::new(&negotiated("127.0.0.1", 4000), true, None, false);
        assert_eq!(
            guard.check(b"\x16\xfe\xfd garbage", at("127.0.0.1:4000")),
            Verdict::Refuse(Refusal::Malformed)
        );
    }

    #[test]
    fn private_ranges() {
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["127.0.0.1", "8.8.8.8", "100.128.0.1", "2001:db8::1", "::1"] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }
}
