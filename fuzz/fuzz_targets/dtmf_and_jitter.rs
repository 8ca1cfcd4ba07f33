//! A call leg's receive path fed any sequence of packets and clock ticks, as the engine drives
//! it: each datagram is parsed, audio goes into the jitter buffer (then the DTMF receiver is
//! polled), telephone events into the DTMF receiver; each tick pops what is due. Packets are
//! written from fuzzed header fields (so sequence and timestamp games are reached quickly) or
//! taken as raw bytes. Nothing may panic, and what comes out stays consistent.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tutti_rtp::dtmf::DtmfReceiver;
use tutti_rtp::jitter::{JitterBuffer, JitterConfig, Playout, MAX_PAYLOAD};
use tutti_rtp::packet::{parse_datagram, write_rtp, Datagram, OutgoingRtp};

/// The negotiated codec's payload type (Opus) and telephone-event's.
const AUDIO_PT: u8 = 111;
const EVENT_PT: u8 = 101;
/// The negotiated audio-level extension id.
const AUDIO_LEVEL_ID: u8 = 1;

#[derive(Arbitrary, Debug)]
enum Step {
    /// A packet from header fields; sequence and timestamp move by the given deltas.
    Packet {
        /// Microseconds since the previous step.
        after_us: u16,
        /// Which of four SSRCs sends it.
        ssrc: u8,
        sequence_delta: i16,
        timestamp_delta: i32,
        /// Audio, a telephone event, or another payload type.
        kind: u8,
        marker: bool,
        payload: Vec<u8>,
    },
    /// A datagram as received.
    Raw { after_us: u16, bytes: Vec<u8> },
    /// The mixer's tick: pops up to eight times.
    Tick { after_us: u16 },
    /// A long silence.
    Wait { seconds: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// 8 kHz or 48 kHz, or any rate.
    clock_rate: u32,
    steps: Vec<Step>,
}

fuzz_target!(|input: Input| {
    let clock_rate = match input.clock_rate % 3 {
        0 => 8_000,
        1 => 48_000,
        _ => input.clock_rate,
    };
    let mut jitter = JitterBuffer::new(JitterConfig::new(clock_rate));
    let mut dtmf = DtmfReceiver::new(if input.clock_rate & 1 == 0 {
        8_000
    } else {
        clock_rate
    });
    let mut now = Instant::now();
    let (mut sequence, mut timestamp) = (0u16, 0u32);
    let mut buf = [0u8; 2048];
    for step in input.steps.iter().take(4096) {
        let datagram: &[u8] = match step {
            Step::Packet {
                after_us,
                ssrc,
                sequence_delta,
                timestamp_delta,
                kind,
                marker,
                payload,
            } => {
                now += Duration::from_micros(u64::from(*after_us));
                sequence = sequence.wrapping_add(*sequence_delta as u16);
                timestamp = timestamp.wrapping_add(*timestamp_delta as u32);
                let header = OutgoingRtp {
                    payload_type: match kind % 4 {
                        0 | 1 => AUDIO_PT,
                        2 => EVENT_PT,
                        _ => kind & 0x7F,
                    },
                    sequence,
                    timestamp,
                    ssrc: u32::from(ssrc % 4),
                    marker: *marker,
                };
                let Some(len) = write_rtp(&mut buf, &header, payload) else {
                    continue;
                };
                &buf[..len]
            }
            Step::Raw { after_us, bytes } => {
                now += Duration::from_micros(u64::from(*after_us));
                bytes
            }
            Step::Tick { after_us } => {
                now += Duration::from_micros(u64::from(*after_us));
                for _ in 0..8 {
                    match jitter.pop(now) {
                        Playout::Packet { payload, .. } => assert!(payload.len() <= MAX_PAYLOAD),
                        Playout::Lost { next } => {
                            assert!(next.is_none_or(|p| p.len() <= MAX_PAYLOAD))
                        }
                        Playout::Nothing => break,
                    }
                }
                continue;
            }
            Step::Wait { seconds } => {
                now += Duration::from_secs(u64::from(*seconds));
                continue;
            }
        };
        let Ok(Datagram::Rtp(packet)) = parse_datagram(datagram, Some(AUDIO_LEVEL_ID)) else {
            continue;
        };
        if packet.payload_type == AUDIO_PT {
            jitter.push_rtp(&packet, now);
            if let Some(digit) = dtmf.poll(packet.timestamp) {
                assert!("0123456789*#ABCD".contains(digit.digit));
            }
        } else if packet.payload_type == EVENT_PT {
            if let Some(digit) = dtmf.push(packet.timestamp, packet.payload) {
                assert!("0123456789*#ABCD".contains(digit.digit));
            }
        }
    }
    let stats = jitter.stats();
    assert!(stats.target_delay <= Duration::from_millis(200));
});
