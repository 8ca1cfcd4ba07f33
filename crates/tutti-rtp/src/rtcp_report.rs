//! Writing the periodic RTCP compound packet (RFC 3550 §6.4, §6.5) straight into a caller's
//! buffer. The layout is fixed and small; writing it by hand keeps the mixer thread, which sends
//! these reports, free of the allocations a packet builder makes.

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReceptionReport {
    pub(crate) ssrc: u32,
    pub(crate) fraction_lost: u8,
    pub(crate) cumulative_lost: u32,
    pub(crate) extended_highest_sequence: u32,
    pub(crate) jitter: u32,
    pub(crate) last_sr: u32,
    pub(crate) delay_since_last_sr: u32,
}

/// What a sender report adds to a receiver report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SenderInfo {
    pub(crate) ntp: u64,
    pub(crate) rtp_timestamp: u32,
    pub(crate) packets: u32,
    pub(crate) octets: u32,
}

const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const CNAME: u8 = 1;

/// Writes SR (with `sender`) or RR, then SDES with `cname`, into `out`. Returns the length,
/// or `None` when `out` is too small. A CNAME longer than 255 bytes is cut.
pub(crate) fn write_compound(
    out: &mut [u8],
    ssrc: u32,
    sender: Option<SenderInfo>,
    block: Option<ReceptionReport>,
    cname: &[u8],
) -> Option<usize> {
    let mut w = Writer { out, at: 0 };
    let blocks = u8::from(block.is_some());
    let words = 1 + if sender.is_some() { 5 } else { 0 } + 6 * usize::from(blocks);
    w.header(blocks, if sender.is_some() { SR } else { RR }, words)?;
    w.u32(ssrc)?;
    if let Some(info) = sender {
        w.u32((info.ntp >> 32) as u32)?;
        w.u32(info.ntp as u32)?;
        w.u32(info.rtp_timestamp)?;
        w.u32(info.packets)?;
        w.u32(info.octets)?;
    }
    if let Some(b) = block {
        w.u32(b.ssrc)?;
        w.u32((u32::from(b.fraction_lost) << 24) | (b.cumulative_lost & 0x00FF_FFFF))?;
        w.u32(b.extended_highest_sequence)?;
        w.u32(b.jitter)?;
        w.u32(b.last_sr)?;
        w.u32(b.delay_since_last_sr)?;
    }
    // SDES: one chunk (SSRC, CNAME item, end item), padded to a whole word.
    let cname = &cname[..cname.len().min(255)];
    let chunk = 4 + 2 + cname.len() + 1;
    let chunk_words = chunk.div_ceil(4);
    w.header(1, SDES, chunk_words)?;
    w.u32(ssrc)?;
    w.bytes(&[CNAME, cname.len() as u8])?;
    w.bytes(cname)?;
    // The end item (a zero byte) and the padding after it.
    for _ in chunk - 1..chunk_words * 4 {
        w.bytes(&[0])?;
    }
    Some(w.at)
}

struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    /// A common header: version 2, no padding, `count`, `kind`, and `words` 32-bit words after
    /// the header.
    fn header(&mut self, count: u8, kind: u8, words: usize) -> Option<()> {
        let words = u16::try_from(words).ok()?;
        self.bytes(&[0x80 | (count & 0x1F), kind])?;
        self.bytes(&words.to_be_bytes())
    }

    fn u32(&mut self, value: u32) -> Option<()> {
        self.bytes(&value.to_be_bytes())
    }

    fn bytes(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.at.checked_add(bytes.len())?;
        self.out.get_mut(self.at..end)?.copy_from_slice(bytes);
        self.at = end;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcp_types::{Compound, Packet};

    fn block() -> ReceptionReport {
        ReceptionReport {
            ssrc: 0xBBBB,
            fraction_lost: 25,
            cumulative_lost: 7,
            extended_highest_sequence: 70_000,
            jitter: 120,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 0x0001_0000,
        }
    }

    #[test]
    fn a_sender_report_and_its_cname_parse_back() {
        let mut out = [0u8; 200];
        let sender = SenderInfo {
            ntp: 0xE000_0001_8000_0000,
            rtp_timestamp: 960,
            packets: 50,
            octets: 4000,
        };
        let len =
            write_compound(&mut out, 0xAAAA, Some(sender), Some(block()), b"tutti-1").unwrap();
        assert_eq!(len % 4, 0);
        let mut packets = Compound::parse(&out[..len]).unwrap();
        let Some(Ok(Packet::Sr(sr))) = packets.next() else {
            panic!("a sender report first");
        };
        assert_eq!(sr.ssrc(), 0xAAAA);
        assert_eq!(sr.ntp_timestamp(), 0xE000_0001_8000_0000);
        assert_eq!(
            (sr.rtp_timestamp(), sr.packet_count(), sr.octet_count()),
            (960, 50, 4000)
        );
        let b = sr.report_blocks().next().unwrap();
        assert_eq!(b.ssrc(), 0xBBBB);
        assert_eq!(b.fraction_lost(), 25);
        assert_eq!(b.cumulative_lost(), 7);
        assert_eq!(b.extended_sequence_number(), 70_000);
        assert_eq!(b.interarrival_jitter(), 120);
        assert_eq!(b.last_sender_report_timestamp(), 0x1234_5678);
        assert_eq!(b.delay_since_last_sender_report_timestamp(), 0x0001_0000);
        let Some(Ok(Packet::Sdes(sdes))) = packets.next() else {
            panic!("SDES second");
        };
        let chunk = sdes.chunks().next().unwrap();
        assert_eq!(chunk.ssrc(), 0xAAAA);
        let item = chunk.items().next().unwrap();
        assert_eq!(item.type_(), 1);
        assert_eq!(item.value(), b"tutti-1");
        assert!(packets.next().is_none());
    }

    #[test]
    fn a_receiver_report_without_blocks_and_any_cname_length_parse_back() {
        for cname_len in 0..12 {
            let cname = vec![b'c'; cname_len];
            let mut out = [0u8; 100];
            let len = write_compound(&mut out, 1, None, None, &cname).unwrap();
            assert_eq!(len % 4, 0);
            let mut packets = Compound::parse(&out[..len]).unwrap();
            let Some(Ok(Packet::Rr(rr))) = packets.next() else {
                panic!("a receiver report first");
            };
            assert_eq!(rr.report_blocks().count(), 0);
            let Some(Ok(Packet::Sdes(sdes))) = packets.next() else {
                panic!("SDES second");
            };
            let value = sdes
                .chunks()
                .next()
                .unwrap()
                .items()
                .next()
                .unwrap()
                .value()
                .to_vec();
            assert_eq!(value, cname);
        }
    }

    #[test]
    fn a_buffer_too_small_is_refused() {
        let mut out = [0u8; 40];
        assert_eq!(
            write_compound(&mut out, 1, None, Some(block()), b"tutti"),
            None
        );
    }
}
