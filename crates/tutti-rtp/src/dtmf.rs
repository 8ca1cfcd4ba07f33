//! RFC 4733 telephone events: each digit reported once, with its duration, however many end
//! packets the sender repeats and whichever of them are lost.

/// A digit pressed by a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfDigit {
    /// `0`–`9`, `*`, `#`, `A`–`D`.
    pub digit: char,
    /// How long it was held, in ms.
    pub duration_ms: u32,
}

const DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// One RFC 4733 event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0–15 are DTMF digits).
    pub event: u8,
    /// The end bit.
    pub end: bool,
    /// Volume in −dBm0.
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event of a payload; `None` when it is shorter than 4 bytes.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let bytes: [u8; 4] = payload.get(..4)?.try_into().ok()?;
        Some(Self {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let [hi, lo] = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            hi,
            lo,
        ]
    }
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    timestamp: u32,
    event: u8,
    duration: u16,
    ended: bool,
}

/// Turns a stream of telephone-event packets into digits.
#[derive(Clone, Debug)]
pub struct DtmfReceiver {
    clock_rate: u32,
    pending: Option<Pending>,
    /// Start timestamp of the last event reported, so repeated end packets are ignored.
    reported: Option<u32>,
}

impl DtmfReceiver {
    /// A receiver for events at `clock_rate` (the telephone-event rtpmap's rate).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            pending: None,
            reported: None,
        }
    }

    fn digit(&self, pending: Pending) -> Option<DtmfDigit> {
        let digit = *DIGITS.get(usize::from(pending.event))?;
        let duration_ms = (u64::from(pending.duration) * 1000 / u64::from(self.clock_rate)) as u32;
        Some(DtmfDigit { digit, duration_ms })
    }

    /// Feeds one telephone-event packet (its RTP timestamp and payload). Returns a digit when
    /// one is complete: at its first end packet, or when a new event starts before an end
    /// packet of the previous one arrived.
    pub fn push(&mut self, timestamp: u32, payload: &[u8]) -> Option<DtmfDigit> {
        let event = TelephoneEvent::parse(payload)?;
        if self.reported == Some(timestamp) {
            return None; // a retransmitted end packet of a digit already reported
        }
        let mut older = None;
        if let Some(pending) = self.pending.filter(|p| p.timestamp != timestamp) {
            // A new event began while the previous one's end packets were all lost.
            older = Some(pending);
            self.pending = None;
        }
        let previous = self.pending.map_or(0, |p| p.duration);
        self.pending = Some(Pending {
            timestamp,
            event: event.event,
            duration: event.duration.max(previous),
            ended: event.end,
        });
        match older {
            Some(older) => self.report(older),
            None => self.report_if_ended(),
        }
    }

    /// Reports a digit whose end packets never came, once the stream has moved on: call when
    /// audio at `timestamp` arrives, or on a timeout. Events silent for 500 ms are complete.
    pub fn poll(&mut self, timestamp: u32) -> Option<DtmfDigit> {
        if let Some(digit) = self.report_if_ended() {
            return Some(digit);
        }
        let pending = self.pending?;
        let end = pending.timestamp.wrapping_add(u32::from(pending.duration));
        let since = timestamp.wrapping_sub(end);
        if since < u32::MAX / 2 && since >= self.clock_rate / 2 {
            self.pending = None;
            return self.report(pending);
        }
        None
    }

    fn report_if_ended(&mut self) -> Option<DtmfDigit> {
        let pending = self.pending.filter(|p| p.ended)?;
        self.pending = None;
        self.report(pending)
    }

    fn report(&mut self, pending: Pending) -> Option<DtmfDigit> {
        self.reported = Some(pending.timestamp);
        self.digit(pending)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn packet(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    #[test]
    fn each_digit_once_with_its_duration_despite_three_end_packets() {
        let mut rx = DtmfReceiver::new(8000);
        let mut digits = Vec::new();
        for duration in [160, 320, 480, 640] {
            digits.extend(rx.push(1000, &packet(5, false, duration)));
        }
        for _ in 0..3 {
            digits.extend(rx.push(1000, &packet(5, true, 800)));
        }
        for duration in [160, 320] {
            digits.extend(rx.push(3000, &packet(11, false, duration)));
        }
        for _ in 0..3 {
            digits.extend(rx.push(3000, &packet(11, true, 480)));
        }
        assert_eq!(
            digits,
            vec![
                DtmfDigit {
                    digit: '5',
                    duration_ms: 100
                },
                DtmfDigit {
                    digit: '#',
                    duration_ms: 60
                }
            ]
        );
    }

    #[test]
    fn lost_end_packets_are_covered_by_the_next_event_or_a_timeout() {
        let mut rx = DtmfReceiver::new(8000);
        assert_eq!(rx.push(1000, &packet(1, false, 400)), None);
        // next digit starts: the first is complete
        assert_eq!(
            rx.push(5000, &packet(2, false, 160)),
            Some(DtmfDigit {
                digit: '1',
                duration_ms: 50
            })
        );
        assert_eq!(
            rx.poll(5000 + 160 + 1000),
            None,
            "not yet 500 ms of silence"
        );
        assert_eq!(
            rx.poll(5000 + 160 + 4000),
            Some(DtmfDigit {
                digit: '2',
                duration_ms: 20
            })
        );
        assert_eq!(rx.poll(99_999), None, "reported once");
    }

    #[test]
    fn garbage_is_ignored() {
        let mut rx = DtmfReceiver::new(8000);
        assert_eq!(rx.push(1, &[1, 2]), None);
        assert_eq!(
            rx.push(1, &packet(200, true, 100)),
            None,
            "not a DTMF digit"
        );
    }
}
