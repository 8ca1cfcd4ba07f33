//! RTP and RTCP on the wire: demultiplexing (RFC 5761/7983), parsing with `rtp-types`, header
//! extensions (RFC 8285, one- and two-byte) and the RFC 6464 audio level; writing outgoing
//! packets.

use rtp_types::{RtpPacket, RtpPacketBuilder};

/// Why a datagram was dropped. Every drop is counted by the caller; none panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Not RTP or RTCP (STUN, DTLS, garbage): the first byte says so.
    #[error("not RTP or RTCP")]
    NotRtp,
    /// RTP version 2 header that does not hold together.
    #[error("malformed RTP packet")]
    MalformedRtp,
    /// A payload type the call did not negotiate.
    #[error("unexpected payload type")]
    UnexpectedPayloadType,
    /// From an address other than the caller's latched one.
    #[error("packet from a foreign address")]
    ForeignSource,
    /// Malformed RTCP.
    #[error("malformed RTCP packet")]
    MalformedRtcp,
    /// A payload longer than tutti buffers.
    #[error("payload too large")]
    TooLarge,
}

/// RFC 6464 audio level: how loud the sender measured its own frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioLevel {
    /// Level in −dBov, 0 (loudest) to 127 (silence).
    pub level: u8,
    /// The sender's voice-activity flag.
    pub voice: bool,
}

/// An RTP packet as received, borrowing the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedRtp<'a> {
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Marker bit (start of a talkspurt for audio).
    pub marker: bool,
    /// The payload, padding removed.
    pub payload: &'a [u8],
    /// The audio level extension, when negotiated and present.
    pub audio_level: Option<AudioLevel>,
}

/// One datagram from a media port, sorted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// An RTP packet.
    Rtp(ReceivedRtp<'a>),
    /// An RTCP compound packet, to hand to [`crate::rtcp`].
    Rtcp(&'a [u8]),
}

/// Sorts and parses one datagram. `audio_level_id` is the negotiated RFC 6464 extension id.
pub fn parse_datagram(data: &[u8], audio_level_id: Option<u8>) -> Result<Datagram<'_>, DropReason> {
    // RFC 7983: RTP and RTCP start with 128..=191.
    let first = *data.first().ok_or(DropReason::NotRtp)?;
    if !(128..=191).contains(&first) {
        return Err(DropReason::NotRtp);
    }
    // RFC 5761: RTCP packet types 192..=223 sit where RTP has marker + payload type 64..=95.
    if let Some(&second) = data.get(1) {
        if (192..=223).contains(&second) {
            return if data.len() >= 8 {
                Ok(Datagram::Rtcp(data))
            } else {
                Err(DropReason::MalformedRtcp)
            };
        }
    }
    let packet = RtpPacket::parse(data).map_err(|_| DropReason::MalformedRtp)?;
    let audio_level = audio_level_id.and_then(|id| {
        let (profile, extension) = packet.extension()?;
        let value = find_extension(profile, extension, id)?;
        let byte = *value.first()?;
        Some(AudioLevel {
            level: byte & 0x7F,
            voice: byte & 0x80 != 0,
        })
    });
    // `payload()` borrows the parser; the same bytes, borrowed from the datagram:
    let offset = packet.payload_offset();
    let payload = data
        .get(offset..offset + packet.payload_len())
        .ok_or(DropReason::MalformedRtp)?;
    Ok(Datagram::Rtp(ReceivedRtp {
        payload_type: packet.payload_type(),
        sequence: packet.sequence_number(),
        timestamp: packet.timestamp(),
        ssrc: packet.ssrc(),
        marker: packet.marker_bit(),
        payload,
        audio_level,
    }))
}

/// Finds extension element `id` in an RTP header extension block (RFC 8285 one-byte form,
/// profile 0xBEDE, or two-byte form, profile 0x100x).
pub fn find_extension(profile: u16, data: &[u8], id: u8) -> Option<&[u8]> {
    let mut rest = data;
    if profile == 0xBEDE {
        while let Some((&header, tail)) = rest.split_first() {
            let element_id = header >> 4;
            if element_id == 0 {
                rest = tail; // padding
                continue;
            }
            if element_id == 15 {
                return None; // reserved: stop
            }
            let len = usize::from(header & 0x0F) + 1;
            let value = tail.get(..len)?;
            if element_id == id {
                return Some(value);
            }
            rest = &tail[len..];
        }
    } else if profile & 0xFFF0 == 0x1000 {
        while let Some((&element_id, tail)) = rest.split_first() {
            if element_id == 0 {
                rest = tail;
                continue;
            }
            let (&len, tail) = tail.split_first()?;
            let value = tail.get(..usize::from(len))?;
            if element_id == id {
                return Some(value);
            }
            rest = &tail[usize::from(len)..];
        }
    }
    None
}

/// Header fields of an outgoing RTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutgoingRtp {
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Marker bit.
    pub marker: bool,
}

/// Writes an RTP packet into `buf`; returns its length, or `None` when `buf` is too small.
pub fn write_rtp(buf: &mut [u8], header: &OutgoingRtp, payload: &[u8]) -> Option<usize> {
    RtpPacketBuilder::<&[u8], &[u8]>::new()
        .payload_type(header.payload_type)
        .sequence_number(header.sequence)
        .timestamp(header.timestamp)
        .ssrc(header.ssrc)
        .marker_bit(header.marker)
        .payload(payload)
        .write_into(buf)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with_extension(profile: u16, ext: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(111)
            .sequence_number(7)
            .timestamp(960)
            .ssrc(0xDEAD_BEEF)
            .extension(profile, ext)
            .payload(&[1, 2, 3][..])
            .write_vec()
            .unwrap()
    }

    #[test]
    fn writes_and_reads_back() {
        let mut buf = [0u8; 64];
        let header = OutgoingRtp {
            payload_type: 0,
            sequence: 65535,
            timestamp: u32::MAX,
            ssrc: 1,
            marker: true,
        };
        let len = write_rtp(&mut buf, &header, &[9; 20]).unwrap();
        assert_eq!(len, 32);
        let Datagram::Rtp(p) = parse_datagram(&buf[..len], None).unwrap() else {
            panic!("not rtp")
        };
        assert_eq!(
            (p.payload_type, p.sequence, p.timestamp, p.ssrc, p.marker),
            (0, 65535, u32::MAX, 1, true)
        );
        assert_eq!(p.payload, &[9; 20]);
        assert!(write_rtp(&mut [0u8; 10], &header, &[0; 20]).is_none());
    }

    #[test]
    fn audio_level_in_one_and_two_byte_extensions() {
        // one-byte: padding, id 3 (len 2), id 1 (len 1) = voice, -42 dBov
        let one = with_extension(0xBEDE, &[0x00, 0x31, 0xAA, 0xBB, 0x10, 0x80 | 42, 0, 0]);
        let Datagram::Rtp(p) = parse_datagram(&one, Some(1)).unwrap() else {
            panic!()
        };
        assert_eq!(
            p.audio_level,
            Some(AudioLevel {
                level: 42,
                voice: true
            })
        );
        assert_eq!(p.payload, &[1, 2, 3]);
        // two-byte: id 5 len 1
        let two = with_extension(0x1000, &[0x05, 0x01, 17, 0]);
        let Datagram::Rtp(p) = parse_datagram(&two, Some(5)).unwrap() else {
            panic!()
        };
        assert_eq!(
            p.audio_level,
            Some(AudioLevel {
                level: 17,
                voice: false
            })
        );
        let Datagram::Rtp(p) = parse_datagram(&two, Some(1)).unwrap() else {
            panic!()
        };
        assert_eq!(p.audio_level, None);
    }

    #[test]
    fn sorts_rtcp_stun_and_garbage() {
        let rr = [0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(parse_datagram(&rr, None), Ok(Datagram::Rtcp(_))));
        let stun = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        assert_eq!(parse_datagram(&stun, None), Err(DropReason::NotRtp));
        assert_eq!(parse_datagram(&[], None), Err(DropReason::NotRtp));
        assert_eq!(
            parse_datagram(&[0x80, 0, 0], None),
            Err(DropReason::MalformedRtp)
        );
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_drop_without_panicking(data in prop::collection::vec(any::<u8>(), 0..200), id in 0u8..16) {
            let _ = parse_datagram(&data, Some(id));
        }

        #[test]
        fn any_extension_block_is_safe(profile in prop::sample::select(vec![0xBEDEu16, 0x1000, 0x1001, 0]), data in prop::collection::vec(any::<u8>(), 0..64), id in 0u8..16) {
            let _ = find_extension(profile, &data, id);
        }
    }
}
