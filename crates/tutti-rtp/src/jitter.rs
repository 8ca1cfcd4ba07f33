//! The jitter buffer: reorders, drops duplicates and late packets, survives sequence and
//! timestamp wrap, SSRC changes and timestamp jumps, and delays playout just enough for the
//! measured jitter.
//!
//! # Timing
//! Time enters as an argument. Each packet's *transit* is its arrival time minus its RTP
//! timestamp in seconds. The playout anchor is the smallest transit seen over the last two
//! 2-second windows, so it follows clock drift in both directions; a packet plays at
//! `timestamp + anchor + target delay`. The target delay is four times the RFC 3550
//! interarrival jitter, between [`JitterConfig::min_delay`] (20 ms) and
//! [`JitterConfig::max_delay`] (200 ms); it grows at once and shrinks slowly.
//!
//! # Playout
//! The engine calls [`JitterBuffer::pop`] when it needs the next packet. It gets the next packet
//! in sequence once it is due, [`Playout::Lost`] (with the following packet, for Opus FEC) once
//! the expected one is due, has not come and a later one has, or [`Playout::Nothing`]
//! while waiting (start-up, a gap in sending such as DTX, an underrun). When it falls more than
//! 60 ms behind its schedule it skips ahead rather than keeping the extra delay.
//!
//! Storage is allocated once (128 slots of 1500 bytes); pushing and popping never allocate.

use std::time::{Duration, Instant};

use crate::packet::{AudioLevel, ReceivedRtp};

/// Largest payload buffered.
pub const MAX_PAYLOAD: usize = 1500;
const SLOTS: usize = 128;
/// A sequence number this far from the highest seen restarts the stream (RFC 3550 A.1).
const MAX_DROPOUT: i64 = 3000;
/// A transit this far from the anchor re-anchors at once (a timestamp jump).
const REANCHOR_SECONDS: f64 = 1.0;
const WINDOW_SECONDS: f64 = 2.0;
/// Playing a packet this much (seconds) after it was due drops it instead: the buffer is
/// behind its schedule (its delay shrank, or the consumer stalled). Counted in time, not in
/// packets, so short packets (some senders mix 20 ms and 8 ms ones) are not mistaken for a
/// backlog.
const MAX_LATENESS: f64 = 0.06;
/// Target delay = this × jitter.
const JITTER_FACTOR: f64 = 4.0;
/// The target shrinks by at most this much per packet.
const SHRINK_PER_PACKET: f64 = 0.000_5;

/// Jitter buffer parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate of the stream.
    pub clock_rate: u32,
    /// Smallest playout delay.
    pub min_delay: Duration,
    /// Largest playout delay.
    pub max_delay: Duration,
}

impl JitterConfig {
    /// Defaults (20 to 200 ms) for a stream at `clock_rate`.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        }
    }
}

impl JitterConfig {
    /// Defaults for a stream whose losses can be recovered from the next packet (Opus in-band
    /// FEC): at least 40 ms, one packet more, so that the packet after a lost one has come when
    /// the lost one's turn does. With 20 ms it arrives about as the turn comes, and recovery
    /// depends on the race (measured: 0.1 to 0.3 PESQ-WB lost on some runs at 5 % loss).
    pub fn with_fec(clock_rate: u32) -> Self {
        Self {
            min_delay: Duration::from_millis(40),
            ..Self::new(clock_rate)
        }
    }
}

/// Counters and gauges of one jitter buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JitterStats {
    /// Packets accepted into the buffer.
    pub received: u64,
    /// Packets that never came in time (reported as [`Playout::Lost`] or skipped).
    pub lost: u64,
    /// Packets that came after their turn.
    pub late: u64,
    /// Packets received twice.
    pub duplicate: u64,
    /// Packets dropped: to bring the delay down, when the stream restarted before they
    /// played, or for being too large.
    pub discarded: u64,
    /// Times the sender's SSRC changed (or its sequence restarted).
    pub restarts: u64,
    /// RFC 3550 interarrival jitter.
    pub jitter: Duration,
    /// Playout delay aimed at.
    pub target_delay: Duration,
    /// Time the last played packet spent in the buffer.
    pub current_delay: Duration,
}

/// What the buffer has for the engine now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// The next packet, in order and due.
    Packet {
        /// Its payload.
        payload: &'a [u8],
        /// Its RTP timestamp.
        timestamp: u32,
        /// Its payload type.
        payload_type: u8,
        /// Its marker bit.
        marker: bool,
        /// Its RFC 6464 audio level, when the sender measured one.
        audio_level: Option<AudioLevel>,
    },
    /// The next packet is lost; `next` is the one after it if already here (for FEC).
    Lost {
        /// The following packet's payload.
        next: Option<&'a [u8]>,
    },
    /// Nothing is due yet.
    Nothing,
}

struct Slot {
    occupied: bool,
    sequence: u64,
    timestamp: u32,
    extended_timestamp: i64,
    payload_type: u8,
    marker: bool,
    audio_level: Option<AudioLevel>,
    arrival: f64,
    len: usize,
    data: Box<[u8; MAX_PAYLOAD]>,
}

impl Slot {
    fn empty() -> Self {
        Self {
            occupied: false,
            sequence: 0,
            timestamp: 0,
            extended_timestamp: 0,
            payload_type: 0,
            marker: false,
            audio_level: None,
            arrival: 0.0,
            len: 0,
            data: Box::new([0; MAX_PAYLOAD]),
        }
    }
}

/// What became of a pushed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Buffered.
    Stored,
    /// Already received.
    Duplicate,
    /// Its turn has passed.
    Late,
    /// Larger than [`MAX_PAYLOAD`].
    TooLarge,
}

/// Anchor and jitter estimation.
#[derive(Clone, Copy, Debug, Default)]
struct Timing {
    last_transit: Option<f64>,
    jitter: f64,
    anchor: Option<f64>,
    window_min: f64,
    previous_window_min: f64,
    window_start: f64,
    target: f64,
}

/// A jitter buffer for one incoming stream.
pub struct JitterBuffer {
    config: JitterConfig,
    slots: Vec<Slot>,
    epoch: Option<Instant>,
    ssrc: Option<u32>,
    highest: Option<u64>,
    /// Bit i: packet `highest − i` was received.
    history: u128,
    last_extended_timestamp: i64,
    next: Option<u64>,
    /// Sequence and extended timestamp of the last packet played: with a later packet, they
    /// say when a missing one was due.
    last_played: Option<(u64, i64)>,
    started: bool,
    timing: Timing,
    stats: JitterStats,
}

impl std::fmt::Debug for JitterBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitterBuffer")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl JitterBuffer {
    /// An empty buffer; all storage is allocated here.
    pub fn new(config: JitterConfig) -> Self {
        let mut buffer = Self {
            config,
            slots: (0..SLOTS).map(|_| Slot::empty()).collect(),
            epoch: None,
            ssrc: None,
            highest: None,
            history: 0,
            last_extended_timestamp: 0,
            next: None,
            last_played: None,
            started: false,
            timing: Timing::default(),
            stats: JitterStats::default(),
        };
        buffer.timing.target = buffer.min_delay();
        buffer.stats.target_delay = config.min_delay;
        buffer
    }

    /// Counters and gauges.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The SSRC being played.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    fn min_delay(&self) -> f64 {
        self.config.min_delay.as_secs_f64()
    }

    fn seconds(&mut self, now: Instant) -> f64 {
        let epoch = *self.epoch.get_or_insert(now);
        now.saturating_duration_since(epoch).as_secs_f64()
    }

    /// Forgets the stream (a new SSRC or a sequence restart); keeps the jitter estimate.
    fn restart_stream(&mut self) {
        for slot in &mut self.slots {
            if slot.occupied {
                slot.occupied = false;
                self.stats.discarded += 1;
            }
        }
        self.highest = None;
        self.history = 0;
        self.next = None;
        self.last_played = None;
        self.started = false;
        self.timing.last_transit = None;
        self.timing.anchor = None;
        self.stats.restarts += 1;
    }

    fn extend_sequence(&self, sequence: u16) -> u64 {
        match self.highest {
            // Start far from zero so packets reordered before the first stay representable.
            None => (1 << 32) + u64::from(sequence),
            Some(highest) => {
                let delta = i64::from(sequence.wrapping_sub(highest as u16) as i16);
                (highest as i64 + delta) as u64
            }
        }
    }

    fn extend_timestamp(&mut self, timestamp: u32) -> i64 {
        let extended = if self.highest.is_none() && self.last_extended_timestamp == 0 {
            (1i64 << 33) + i64::from(timestamp)
        } else {
            let delta =
                i64::from(timestamp.wrapping_sub(self.last_extended_timestamp as u32) as i32);
            self.last_extended_timestamp + delta
        };
        self.last_extended_timestamp = extended;
        extended
    }

    fn playout_time(&self, extended_timestamp: i64) -> f64 {
        extended_timestamp as f64 / f64::from(self.config.clock_rate)
            + self.timing.anchor.unwrap_or(0.0)
            + self.timing.target
    }

    /// Feeds a received RTP packet.
    pub fn push_rtp(&mut self, packet: &ReceivedRtp<'_>, now: Instant) -> PushOutcome {
        self.store(
            packet.ssrc,
            packet.sequence,
            packet.timestamp,
            packet.payload_type,
            packet.marker,
            packet.payload,
            packet.audio_level,
            now,
        )
    }

    /// Feeds one packet's fields.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        payload_type: u8,
        marker: bool,
        payload: &[u8],
        now: Instant,
    ) -> PushOutcome {
        self.store(
            ssrc,
            sequence,
            timestamp,
            payload_type,
            marker,
            payload,
            None,
            now,
        )
    }

    /// Feeds one packet's fields and its audio level.
    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        payload_type: u8,
        marker: bool,
        payload: &[u8],
        audio_level: Option<AudioLevel>,
        now: Instant,
    ) -> PushOutcome {
        if payload.len() > MAX_PAYLOAD {
            self.stats.discarded += 1;
            return PushOutcome::TooLarge;
        }
        let arrival = self.seconds(now);
        if self.ssrc.is_some_and(|current| current != ssrc) {
            self.restart_stream();
        }
        self.ssrc = Some(ssrc);

        let mut sequence_ext = self.extend_sequence(sequence);
        if let Some(highest) = self.highest {
            if (sequence_ext as i64 - highest as i64).abs() > MAX_DROPOUT {
                self.restart_stream();
                sequence_ext = self.extend_sequence(sequence);
            }
        }
        // Duplicate and late checks against what was received and played.
        match self.highest {
            Some(highest) if sequence_ext <= highest => {
                let offset = highest - sequence_ext;
                if offset < 128 && self.history & (1u128 << offset) != 0 {
                    self.stats.duplicate += 1;
                    return PushOutcome::Duplicate;
                }
                if offset < 128 {
                    self.history |= 1u128 << offset;
                }
            }
            Some(highest) => {
                let shift = sequence_ext - highest;
                self.history = if shift >= 128 {
                    0
                } else {
                    self.history << shift
                };
                self.history |= 1;
                self.highest = Some(sequence_ext);
            }
            None => {
                self.history = 1;
                self.highest = Some(sequence_ext);
            }
        }
        if self.started && self.next.is_some_and(|next| sequence_ext < next) {
            self.stats.late += 1;
            return PushOutcome::Late;
        }

        let extended_timestamp = self.extend_timestamp(timestamp);
        self.update_timing(arrival, extended_timestamp, marker);

        match self.next {
            None => self.next = Some(sequence_ext),
            Some(next) if !self.started && sequence_ext < next => self.next = Some(sequence_ext),
            Some(next) if sequence_ext >= next + SLOTS as u64 => {
                // Far ahead of playout (the consumer stalled): drop what cannot fit.
                let new_next = sequence_ext + 1 - SLOTS as u64;
                for seq in next..new_next.min(next + SLOTS as u64) {
                    let slot = &mut self.slots[(seq % SLOTS as u64) as usize];
                    if slot.occupied && slot.sequence == seq {
                        slot.occupied = false;
                        self.stats.discarded += 1;
                    }
                }
                self.next = Some(new_next);
            }
            Some(_) => {}
        }

        let slot = &mut self.slots[(sequence_ext % SLOTS as u64) as usize];
        slot.occupied = true;
        slot.sequence = sequence_ext;
        slot.timestamp = timestamp;
        slot.extended_timestamp = extended_timestamp;
        slot.payload_type = payload_type;
        slot.marker = marker;
        slot.audio_level = audio_level;
        slot.arrival = arrival;
        slot.len = payload.len();
        slot.data[..payload.len()].copy_from_slice(payload);
        self.stats.received += 1;
        PushOutcome::Stored
    }

    /// `talkspurt`: the packet's marker bit, the first of a talkspurt (RFC 3551 §4.1). A
    /// talkspurt that would arrive late re-anchors playout: its sender paused (on hold, or
    /// silent without DTX) without advancing its timestamps, and its audio is new, not late.
    fn update_timing(&mut self, arrival: f64, extended_timestamp: i64, talkspurt: bool) {
        let clock = f64::from(self.config.clock_rate);
        let transit = arrival - extended_timestamp as f64 / clock;
        let timing = &mut self.timing;
        let resumed = talkspurt && timing.anchor.is_some_and(|a| transit - a > MAX_LATENESS);
        if let Some(last) = timing.last_transit {
            // RFC 3550 §6.4.1: J += (|D| − J) / 16. A timestamp jump is not jitter, nor is a
            // pause between talkspurts.
            let d = (transit - last).abs();
            if d < REANCHOR_SECONDS && !resumed {
                timing.jitter += (d - timing.jitter) / 16.0;
            }
        }
        timing.last_transit = Some(transit);
        match timing.anchor {
            Some(anchor) if (transit - anchor).abs() <= REANCHOR_SECONDS && !resumed => {
                timing.window_min = timing.window_min.min(transit);
                if arrival - timing.window_start > WINDOW_SECONDS {
                    timing.previous_window_min = timing.window_min;
                    timing.window_min = transit;
                    timing.window_start = arrival;
                }
                timing.anchor = Some(timing.window_min.min(timing.previous_window_min));
            }
            _ => {
                timing.anchor = Some(transit);
                timing.window_min = transit;
                timing.previous_window_min = transit;
                timing.window_start = arrival;
            }
        }
        let (min, max) = (
            self.config.min_delay.as_secs_f64(),
            self.config.max_delay.as_secs_f64(),
        );
        let wanted = (JITTER_FACTOR * timing.jitter).clamp(min, max.max(min));
        timing.target = if wanted > timing.target {
            wanted
        } else {
            (timing.target - SHRINK_PER_PACKET).max(wanted)
        };
        self.stats.jitter = Duration::from_secs_f64(timing.jitter);
        self.stats.target_delay = Duration::from_secs_f64(timing.target);
    }

    fn present(&self, sequence: u64) -> Option<&Slot> {
        let slot = &self.slots[(sequence % SLOTS as u64) as usize];
        (slot.occupied && slot.sequence == sequence).then_some(slot)
    }

    /// How long ago `sequence` was due (negative: not yet due; −∞ when absent).
    fn overdue_by(&self, sequence: u64, now: f64) -> f64 {
        self.present(sequence).map_or(f64::NEG_INFINITY, |slot| {
            now - self.playout_time(slot.extended_timestamp)
        })
    }

    fn due(&self, sequence: u64, now: f64) -> bool {
        self.present(sequence)
            .is_some_and(|slot| now >= self.playout_time(slot.extended_timestamp))
    }

    /// What to play now. Call once per packet's worth of audio the engine needs.
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        let now = self.seconds(now);
        let Some(mut next) = self.next else {
            return Playout::Nothing;
        };
        // Catch up when far behind: drop what is long overdue. A packet "overdue" by more than
        // the re-anchoring threshold predates a timestamp jump: it plays, it is not late.
        while (MAX_LATENESS..REANCHOR_SECONDS).contains(&self.overdue_by(next, now)) {
            let slot = &mut self.slots[(next % SLOTS as u64) as usize];
            slot.occupied = false;
            self.stats.discarded += 1;
            next += 1;
        }
        self.next = Some(next);

        if self.present(next).is_some() {
            if !self.due(next, now) {
                return Playout::Nothing;
            }
            self.started = true;
            return self.pop_at(next, now);
        }

        // The expected packet is missing: is a later one due?
        let Some((later, later_timestamp)) = (1..SLOTS as u64).find_map(|d| {
            self.present(next + d)
                .map(|slot| (next + d, slot.extended_timestamp))
        }) else {
            return Playout::Nothing;
        };
        // The missing packet is lost at its own turn, which lies between the last packet
        // played and the later one; waiting for the later one's turn would stall playout a
        // packet's time and keep the extra delay.
        let missing_timestamp = match self.last_played {
            Some((played, played_timestamp)) if played < next => {
                let step = (later_timestamp - played_timestamp) as f64 / (later - played) as f64;
                played_timestamp + (step * (next - played) as f64) as i64
            }
            _ => later_timestamp,
        };
        if now < self.playout_time(missing_timestamp) {
            return Playout::Nothing;
        }
        self.started = true;
        if (self.timing.target + MAX_LATENESS..REANCHOR_SECONDS)
            .contains(&self.overdue_by(later, now))
        {
            // Long gone: skip the whole gap at once rather than concealing it frame by frame.
            self.stats.lost += later - next;
            self.next = Some(later);
            return self.pop_at(later, now);
        }
        self.stats.lost += 1;
        self.next = Some(next + 1);
        let following = self.present(next + 1).map(|slot| &slot.data[..slot.len]);
        Playout::Lost { next: following }
    }

    fn pop_at(&mut self, sequence: u64, now: f64) -> Playout<'_> {
        let index = (sequence % SLOTS as u64) as usize;
        self.next = Some(sequence + 1);
        self.stats.current_delay =
            Duration::from_secs_f64((now - self.slots[index].arrival).max(0.0));
        let slot = &mut self.slots[index];
        slot.occupied = false;
        self.last_played = Some((sequence, slot.extended_timestamp));
        Playout::Packet {
            payload: &slot.data[..slot.len],
            timestamp: slot.timestamp,
            payload_type: slot.payload_type,
            marker: slot.marker,
            audio_level: slot.audio_level,
        }
    }
}
