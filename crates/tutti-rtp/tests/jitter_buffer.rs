//! The jitter buffer driven by a simulated network: a sender every 20 ms, seeded delay, loss,
//! reordering and duplication, and a receiver that pops every 20 ms.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use tutti_rtp::jitter::{JitterBuffer, JitterConfig, Playout, PushOutcome};

/// Small deterministic generator for the network model.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Default)]
struct Network {
    loss_percent: u64,
    duplicate_percent: u64,
    /// Extra delay drawn uniformly from 0..jitter_ms.
    jitter_ms: u64,
    /// Percentage of packets held back one extra packet interval (reordering).
    reorder_percent: u64,
}

struct Outcome {
    played: Vec<u32>,
    lost_reports: u64,
    nothing_after_start: u64,
    injected_losses: u64,
    buffer: JitterBuffer,
}

/// Sends `count` packets (payload = index as 4 bytes) starting at `seq0`/`ts0`, with
/// `edit(index, seq, ts, ssrc)` to tamper, and runs the receiver until everything is out.
fn simulate(
    count: u32,
    network: Network,
    seed: u64,
    seq0: u16,
    ts0: u32,
    edit: impl Fn(u32, &mut u16, &mut u32, &mut u32),
) -> Outcome {
    let start = Instant::now();
    let mut rng = Rng(seed);
    let mut arrivals: Vec<(Duration, u16, u32, u32, u32)> = Vec::new();
    let mut injected_losses = 0;
    for i in 0..count {
        let mut seq = seq0.wrapping_add(i as u16);
        let mut ts = ts0.wrapping_add(i * 960);
        let mut ssrc = 0x1111;
        edit(i, &mut seq, &mut ts, &mut ssrc);
        if rng.chance(network.loss_percent) {
            injected_losses += 1;
            continue;
        }
        let mut delay = 5 + rng.below(network.jitter_ms + 1);
        if rng.chance(network.reorder_percent) {
            delay += 25;
        }
        let sent = Duration::from_millis(u64::from(i) * 20);
        arrivals.push((sent + Duration::from_millis(delay), seq, ts, ssrc, i));
        if rng.chance(network.duplicate_percent) {
            arrivals.push((sent + Duration::from_millis(delay + 3), seq, ts, ssrc, i));
        }
    }
    arrivals.sort_by_key(|a| a.0);

    let mut buffer = JitterBuffer::new(JitterConfig::new(48_000));
    let mut played = Vec::new();
    let mut lost_reports = 0;
    let mut nothing_after_start = 0;
    let mut next_arrival = 0;
    let end = Duration::from_millis(u64::from(count) * 20 + 1000);
    let mut tick = Duration::from_millis(1);
    while tick < end {
        while next_arrival < arrivals.len() && arrivals[next_arrival].0 <= tick {
            let (_, seq, ts, ssrc, i) = arrivals[next_arrival];
            buffer.push(
                ssrc,
                seq,
                ts,
                111,
                false,
                &i.to_be_bytes(),
                start + arrivals[next_arrival].0,
            );
            next_arrival += 1;
        }
        match buffer.pop(start + tick) {
            Playout::Packet { payload, .. } => {
                played.push(u32::from_be_bytes(payload.try_into().unwrap()));
            }
            Playout::Lost { .. } => lost_reports += 1,
            Playout::Nothing => {
                // A gap while the sender is still sending: the engine conceals it.
                if !played.is_empty() && next_arrival < arrivals.len() {
                    nothing_after_start += 1;
                }
            }
        }
        tick += Duration::from_millis(20);
    }
    Outcome {
        played,
        lost_reports,
        nothing_after_start,
        injected_losses,
        buffer,
    }
}

#[test]
fn a_clean_network_plays_everything_in_order_at_minimum_delay() {
    let out = simulate(500, Network::default(), 1, 100, 5000, |_, _, _, _| {});
    assert_eq!(out.played, (0..500).collect::<Vec<_>>());
    let stats = out.buffer.stats();
    assert_eq!((stats.lost, stats.late, stats.duplicate), (0, 0, 0));
    assert_eq!(stats.target_delay, Duration::from_millis(20));
    assert_eq!(out.nothing_after_start, 0);
}

#[test]
fn loss_reordering_and_duplicates_match_what_was_injected() {
    let network = Network {
        loss_percent: 5,
        duplicate_percent: 3,
        jitter_ms: 30,
        reorder_percent: 10,
    };
    let out = simulate(3000, network, 7, 0, 0, |_, _, _, _| {});
    let stats = out.buffer.stats();
    assert!(
        out.played.windows(2).all(|w| w[0] < w[1]),
        "played out of order"
    );
    assert_eq!(
        out.played.len() as u64 + stats.lost + stats.discarded,
        3000,
        "every packet is played, counted lost, or dropped to shrink the delay: {stats:?}"
    );
    assert!(
        stats.discarded <= 30,
        "at most 1% dropped to follow the delay down: {stats:?}"
    );
    assert_eq!(
        stats.lost, out.injected_losses,
        "lost = injected (nothing arrived too late)"
    );
    assert_eq!(stats.late, 0);
    assert!(
        stats.duplicate > 50,
        "duplicates counted: {}",
        stats.duplicate
    );
    assert_eq!(stats.received, 3000 - out.injected_losses);
    assert_eq!(out.lost_reports, stats.lost);
    // After start-up, nearly every tick has a packet or a loss to conceal; the rest are the
    // ticks in which the delay grew to follow the jitter (the engine conceals those too).
    assert!(
        out.nothing_after_start <= 30,
        "{} empty ticks",
        out.nothing_after_start
    );
    let target = stats.target_delay.as_millis();
    assert!((20..=200).contains(&target), "target {target} ms");
}

#[test]
fn the_delay_follows_the_jitter() {
    let calm = simulate(
        1000,
        Network {
            jitter_ms: 2,
            ..Default::default()
        },
        3,
        0,
        0,
        |_, _, _, _| {},
    );
    let rough = simulate(
        1000,
        Network {
            jitter_ms: 60,
            ..Default::default()
        },
        3,
        0,
        0,
        |_, _, _, _| {},
    );
    let wild = simulate(
        1000,
        Network {
            jitter_ms: 400,
            ..Default::default()
        },
        3,
        0,
        0,
        |_, _, _, _| {},
    );
    let calm_target = calm.buffer.stats().target_delay;
    let rough_target = rough.buffer.stats().target_delay;
    assert_eq!(calm_target, Duration::from_millis(20));
    assert!(rough_target > Duration::from_millis(50), "{rough_target:?}");
    assert_eq!(wild.buffer.stats().target_delay, Duration::from_millis(200));
    assert!(
        rough.buffer.stats().late < 10,
        "late {}",
        rough.buffer.stats().late
    );
    let jitter = rough.buffer.stats().jitter.as_millis();
    assert!(
        (10..=30).contains(&jitter),
        "RFC 3550 jitter of uniform 0..60 ms ≈ 20 ms, got {jitter}"
    );
}

#[test]
fn sequence_and_timestamp_wrap() {
    let out = simulate(
        400,
        Network {
            jitter_ms: 20,
            reorder_percent: 5,
            ..Default::default()
        },
        5,
        65_400,
        u32::MAX - 100_000,
        |_, _, _, _| {},
    );
    assert_eq!(out.played, (0..400).collect::<Vec<_>>());
}

#[test]
fn a_new_ssrc_restarts_the_stream_without_a_stall() {
    let out = simulate(400, Network::default(), 9, 1000, 0, |i, seq, ts, ssrc| {
        if i >= 200 {
            *ssrc = 0x2222;
            *seq = seq.wrapping_add(30_000);
            *ts = ts.wrapping_add(1_234_567);
        }
    });
    // The switch may cut the old stream's last packet short; it is counted, never replayed.
    let stats = out.buffer.stats();
    let expected: Vec<u32> = (0..400).filter(|i| out.played.contains(i)).collect();
    assert_eq!(out.played, expected);
    assert!(out.played.len() >= 398);
    assert_eq!(
        out.played.len() as u64 + stats.discarded + stats.lost,
        400,
        "{stats:?}"
    );
    assert_eq!(stats.restarts, 1);
    assert!(
        out.nothing_after_start <= 2,
        "stalled {} ticks",
        out.nothing_after_start
    );
}

#[test]
fn a_timestamp_jump_does_not_stall_playout() {
    let out = simulate(400, Network::default(), 11, 0, 0, |i, _, ts, _| {
        if i >= 200 {
            *ts = ts.wrapping_add(48_000 * 30); // 30 s ahead
        }
    });
    assert_eq!(out.played, (0..400).collect::<Vec<_>>());
    assert!(
        out.nothing_after_start <= 2,
        "stalled {} ticks",
        out.nothing_after_start
    );
}

#[test]
fn a_talkspurt_after_a_pause_that_left_the_timestamps_behind_plays_at_once() {
    // 100 packets, a 300 ms pause during which the sender's timestamps stood still (a phone
    // back from hold, or silent without DTX), then 100 more: the first of them marks a new
    // talkspurt.
    let arrival =
        |i: u32| Duration::from_millis(u64::from(i) * 20 + 5 + if i >= 100 { 300 } else { 0 });
    let start = Instant::now();
    let mut buffer = JitterBuffer::new(JitterConfig::new(48_000));
    let mut played = Vec::new();
    let mut resumed_at = None;
    let mut next = 0;
    let mut tick = Duration::from_millis(1);
    while tick < arrival(199) + Duration::from_millis(500) {
        while next < 200 && arrival(next) <= tick {
            buffer.push(
                0x1111,
                next as u16,
                next * 960,
                111,
                next == 100,
                &next.to_be_bytes(),
                start + arrival(next),
            );
            next += 1;
        }
        if let Playout::Packet { payload, .. } = buffer.pop(start + tick) {
            let index = u32::from_be_bytes(payload.try_into().unwrap());
            if index == 100 {
                resumed_at = Some(tick);
            }
            played.push(index);
        }
        tick += Duration::from_millis(20);
    }
    assert_eq!(played, (0..200).collect::<Vec<_>>());
    let waited = resumed_at.unwrap() - arrival(100);
    assert!(
        waited <= Duration::from_millis(60),
        "the talkspurt waited {waited:?}"
    );
    let stats = buffer.stats();
    assert_eq!((stats.late, stats.discarded), (0, 0));
}

#[test]
fn a_packet_after_its_turn_is_late() {
    let start = Instant::now();
    let at = |ms: u64| start + Duration::from_millis(ms);
    let mut jb = JitterBuffer::new(JitterConfig::new(48_000));
    jb.push(1, 10, 0, 111, false, b"a", at(0));
    jb.push(1, 12, 1920, 111, false, b"c", at(40));
    assert!(matches!(
        jb.pop(at(20)),
        Playout::Packet { payload: b"a", .. }
    ));
    assert_eq!(jb.pop(at(39)), Playout::Nothing, "11 may still come");
    assert_eq!(
        jb.pop(at(40)),
        Playout::Lost {
            next: Some(&b"c"[..])
        },
        "11's turn"
    );
    assert_eq!(
        jb.push(1, 11, 960, 111, false, b"b", at(41)),
        PushOutcome::Late
    );
    assert!(matches!(
        jb.pop(at(60)),
        Playout::Packet { payload: b"c", .. }
    ));
    assert_eq!(
        jb.push(1, 12, 1920, 111, false, b"c", at(61)),
        PushOutcome::Duplicate
    );
    let stats = jb.stats();
    assert_eq!(
        (stats.received, stats.lost, stats.late, stats.duplicate),
        (2, 1, 1, 1)
    );
}

proptest! {
    #[test]
    fn arbitrary_traffic_never_panics_and_never_replays(
        events in prop::collection::vec((any::<u16>(), any::<u32>(), 0u32..3, 0u64..200, any::<bool>()), 0..300)
    ) {
        let start = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::new(8_000));
        let mut clock = 0u64;
        let mut seen = std::collections::HashSet::new();
        for (n, (seq, ts, ssrc, advance, pop)) in events.into_iter().enumerate() {
            clock += advance;
            let payload = (n as u32).to_be_bytes();
            jb.push(ssrc, seq, ts, 0, false, &payload, start + Duration::from_millis(clock));
            if pop {
                if let Playout::Packet { payload, .. } = jb.pop(start + Duration::from_millis(clock)) {
                    prop_assert!(seen.insert(payload.to_vec()), "a packet came out twice");
                }
            }
        }
    }
}

#[test]
fn a_lost_packet_is_reported_at_its_own_turn_without_adding_delay() {
    let mut buffer = JitterBuffer::new(JitterConfig::new(48_000));
    let start = Instant::now();
    let at = |ms: u64| start + Duration::from_millis(ms);
    let mut played = Vec::new();
    let mut delays = Vec::new();
    for tick in 0..40u16 {
        // Packet n leaves every 20 ms and arrives 1 ms later; 10 and 25 are lost.
        if tick != 10 && tick != 25 {
            let payload = [tick as u8];
            buffer.push(
                7,
                tick,
                u32::from(tick) * 960,
                111,
                false,
                &payload,
                at(u64::from(tick) * 20 + 1),
            );
        }
        played.push(match buffer.pop(at(u64::from(tick) * 20 + 5)) {
            Playout::Packet { payload, .. } => format!("{}", payload[0]),
            Playout::Lost { next } => format!("lost, then {:?}", next.map(|n| n[0])),
            Playout::Nothing => "nothing".to_owned(),
        });
        delays.push(buffer.stats().current_delay);
    }
    // One tick of start-up delay, then every turn plays its packet or reports its loss, with
    // the next packet at hand for FEC; the delay stays what it was before the losses.
    let expected: Vec<String> = std::iter::once("nothing".to_owned())
        .chain((0..39u8).map(|n| match n {
            10 | 25 => format!("lost, then Some({})", n + 1),
            n => n.to_string(),
        }))
        .collect();
    assert_eq!(played, expected);
    assert_eq!(delays[9], delays[39], "{delays:?}");
}

#[test]
fn with_fec_the_packet_after_a_loss_is_at_hand_at_the_lost_ones_turn() {
    // Packet 10 is lost and 11 comes 4 ms later than the others: at 10's turn, 11 is not there
    // yet with the plain 20 ms minimum delay, and it is with the FEC minimum.
    let run = |config: JitterConfig| {
        let mut buffer = JitterBuffer::new(config);
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let push = |buffer: &mut JitterBuffer, n: u16, late: u64| {
            let arrival = at(u64::from(n) * 20 + late);
            buffer.push(1, n, u32::from(n) * 960, 111, false, &[n as u8], arrival);
        };
        let mut played = Vec::new();
        // Each tick pops 2 ms after its 20 ms boundary: packets arriving 1 ms after it come
        // before the pop, packet 11 (5 ms) after it.
        for tick in 0..20u16 {
            if tick != 10 && tick != 11 {
                push(&mut buffer, tick, 1);
            }
            played.push(match buffer.pop(at(u64::from(tick) * 20 + 2)) {
                Playout::Packet { payload, .. } => format!("{}", payload[0]),
                Playout::Lost { next } => format!("lost, then {:?}", next.map(|n| n[0])),
                Playout::Nothing => "nothing".to_owned(),
            });
            if tick == 11 {
                push(&mut buffer, tick, 5);
            }
        }
        let first = played
            .iter()
            .position(|p| p == "0")
            .expect("playout starts");
        played[first..].join(" ")
    };
    let fec = run(JitterConfig::with_fec(48_000));
    assert!(fec.contains("9 lost, then Some(11) 11"), "{fec}");
    let plain = run(JitterConfig::new(48_000));
    assert!(
        plain.contains("9 nothing lost, then Some(11) 11"),
        "{plain}"
    );
}
