//! One participant's media on its mixer thread: datagrams in, one 20 ms frame out per tick;
//! mixed audio in, RTP out. Everything is allocated when the participant joins.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use mio::net::UdpSocket;
use tutti_codec::{
    AudioDecoder, AudioEncoder, CodecKind, EncoderSettings, VoiceActivity, FRAME_SAMPLES_48K,
    MAX_PACKET_SAMPLES,
};
use tutti_mix::Frame;
use tutti_rtp::dtmf::{DtmfDigit, DtmfReceiver};
use tutti_rtp::jitter::{JitterBuffer, JitterConfig, Playout};
use tutti_rtp::packet::{parse_datagram, write_rtp, AudioLevel, Datagram as Parsed, OutgoingRtp};
use tutti_rtp::rtcp::RtcpSession;
use tutti_rtp::sdp::{Direction, Negotiated};

use crate::inbox::{DropReason, Inbox};
use crate::relay::RelayPort;
use crate::send_batch::SendBatch;

/// Largest RTP packet tutti writes.
const MAX_OUT: usize = 1500;
/// Consecutive concealed frames after which a silent line counts as silent, not as speech lost.
const MAX_CONCEALED: u32 = 5;
/// An RFC 6464 level this quiet or quieter (−dBov) is silence: far below the quietest talk
/// threshold a room uses by default, so nothing audible is skipped.
const SILENT_LEVEL: u8 = 70;
/// Longest silent payload kept to bring the decoder up to date when the caller speaks again.
const PRIME_MAX: usize = 256;
/// Decoded frames of "no speech" (Opus VAD off) that must be quiet before such packets are
/// skipped: a steady tone or music is "no speech" to the sender's VAD but loud.
const CONFIRM_QUIET: u32 = 10;
/// Mean absolute amplitude (full scale 1.0) under which a decoded frame counts as quiet:
/// about −72 dBFS, a third of the quietest default talk threshold.
const QUIET_MEAN: f32 = 8.0 / 32_768.0;

/// Counters of one participant's media.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegCounters {
    /// RTP packets accepted.
    pub packets_in: u64,
    /// RTP packets sent.
    pub packets_out: u64,
    /// Datagrams dropped as not RTP/RTCP or malformed.
    pub malformed: u64,
    /// RTP packets with a payload type that was not negotiated.
    pub unexpected_payload_type: u64,
    /// Datagrams from anywhere but the source the signalling proved (see the engine's
    /// source rule).
    pub foreign_source: u64,
    /// Datagrams dropped because the mixer fell behind.
    pub overflow: u64,
    /// Packets not sent because the caller's address had not proven itself yet.
    pub unproven_suppressed: u64,
    /// Sends the OS refused (a full socket buffer).
    pub send_failures: u64,
    /// Frames concealed (PLC) or recovered (FEC).
    pub concealed: u64,
    /// Frames recovered from FEC.
    pub fec_recovered: u64,
    /// Packets decoded.
    pub decoded: u64,
    /// Packets not decoded because they hold silence (Opus voice flags, DTX, RFC 6464 level).
    pub decode_skipped: u64,
}

/// What negotiation fixed for a leg.
#[derive(Clone, Debug)]
pub struct LegMedia {
    /// The negotiated SDP.
    pub negotiated: Negotiated,
    /// The codec.
    pub codec: CodecKind,
    /// How this leg's encoder encodes (what Opus listeners get follows their offer).
    pub encoding: EncoderSettings,
    /// Send to the source the caller's stream was pinned to rather than the SDP address.
    pub latching: bool,
    /// How long media may go to the offer's address before a packet from the caller has
    /// proven it (see [`crate::EngineConfig::unproven_send_window`]).
    pub unproven_send_window: std::time::Duration,
    /// The `o=` session id of the SDP tutti sent.
    pub session_id: u64,
    /// The `o=` session version of the SDP tutti sent last.
    pub session_version: u64,
    /// Where the caller's signalling came from, when the join said.
    pub signalled_source: Option<IpAddr>,
}

/// How a leg's packets travel.
#[derive(Clone)]
pub(crate) enum Transport {
    /// Its own UDP port, read by its mixer thread's receive thread.
    Udp(Arc<UdpSocket>),
    /// Another endpoint of this process (see [`crate::relay`]).
    Relay(RelayPort),
}

/// What a renegotiation keeps of a leg, read on its mixer thread without allocating.
pub(crate) struct LegState {
    pub(crate) transport: Transport,
    pub(crate) inbox: Arc<Inbox>,
    /// The socket's token on the receive thread.
    pub(crate) token: mio::Token,
    pub(crate) ssrc: u32,
    pub(crate) session_id: u64,
    pub(crate) session_version: u64,
    pub(crate) latching: bool,
    pub(crate) signalled_source: Option<IpAddr>,
}

/// What one step of decoding produced.
enum Decoded {
    /// A whole frame, written straight into the mixer's buffer.
    IntoFrame,
    /// Samples appended to `pending`.
    Pending,
    /// Nothing to play.
    Nothing,
}

/// What a packet says about being silent, without decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Silence {
    /// Certainly nothing to hear: a quiet RFC 6464 level, a DTX frame, CELT digital silence.
    Certain,
    /// The sender's VAD found no speech: skippable once decoding has shown the caller quiet.
    Likely,
    /// Decode it.
    No,
}

/// The sender's RFC 6464 level when it sends one, else what the payload itself says (Opus
/// voice flags, DTX, CELT's silence flag).
fn silence_of(decoder: &dyn AudioDecoder, payload: &[u8], level: Option<AudioLevel>) -> Silence {
    if let Some(level) = level {
        return if level.level >= SILENT_LEVEL {
            Silence::Certain
        } else {
            Silence::No
        };
    }
    match decoder.voice_activity(payload) {
        VoiceActivity::Silent => Silence::Certain,
        VoiceActivity::NoSpeech => Silence::Likely,
        VoiceActivity::Unknown | VoiceActivity::Voice => Silence::No,
    }
}

/// Whether decoded samples are quiet (see [`QUIET_MEAN`]).
fn is_quiet(samples: &[f32]) -> bool {
    let sum: f32 = samples.iter().map(|s| s.abs()).sum();
    !samples.is_empty() && sum < QUIET_MEAN * samples.len() as f32
}

/// One participant's media state.
pub struct CallLeg {
    transport: Transport,
    pub(crate) inbox: Arc<Inbox>,
    media: LegMedia,
    latched: Option<SocketAddr>,
    /// A packet from the caller's expected source arrived: sending to it is safe.
    proven: bool,
    /// Sending is allowed this tick (proven, or still within the unproven window).
    may_send: bool,
    joined: Instant,
    jitter: JitterBuffer,
    decoder: Box<dyn AudioDecoder>,
    /// Decoded 48 kHz audio not yet handed to the mixer.
    pending: Vec<f32>,
    scratch: Vec<f32>,
    concealed_in_a_row: u32,
    /// The caller is silent: its packets are not being decoded.
    skipping: bool,
    /// Consecutive "no speech" frames decoded and found quiet (see [`CONFIRM_QUIET`]).
    quiet_frames: u32,
    /// The last silent payload, decoded (and discarded) before the first one with voice so the
    /// decoder continues from the silence, not from the last words before it.
    last_silent: Box<[u8; PRIME_MAX]>,
    last_silent_len: usize,
    dtmf: Option<DtmfReceiver>,
    pub(crate) rtcp: RtcpSession,
    pub(crate) next_rtcp: Instant,
    // Outgoing stream.
    pub(crate) encoder: Box<dyn AudioEncoder>,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    was_silent: bool,
    out: Box<[u8; MAX_OUT]>,
    pub(crate) last_received: Instant,
    pub(crate) counters: LegCounters,
}

impl std::fmt::Debug for CallLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLeg")
            .field("codec", &self.media.codec)
            .field("latched", &self.latched)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl CallLeg {
    /// Builds a leg; allocates everything it will use.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        transport: Transport,
        inbox: Arc<Inbox>,
        media: LegMedia,
        decoder: Box<dyn AudioDecoder>,
        encoder: Box<dyn AudioEncoder>,
        rtcp: RtcpSession,
        ssrc: u32,
        now: Instant,
    ) -> Self {
        let clock = media.negotiated.codec.clock_rate;
        let dtmf = media
            .negotiated
            .telephone_event
            .as_ref()
            .map(|event| DtmfReceiver::new(event.clock_rate));
        Self {
            // A relayed participant's endpoint proved its peer before delivering anything.
            proven: matches!(transport, Transport::Relay(_)),
            transport,
            inbox,
            latched: None,
            may_send: true,
            joined: now,
            jitter: JitterBuffer::new(if media.codec == CodecKind::Opus {
                JitterConfig::with_fec(clock)
            } else {
                JitterConfig::new(clock)
            }),
            decoder,
            pending: Vec::with_capacity(MAX_PACKET_SAMPLES * 2),
            scratch: vec![0.0; MAX_PACKET_SAMPLES],
            concealed_in_a_row: MAX_CONCEALED,
            skipping: false,
            quiet_frames: 0,
            last_silent: Box::new([0; PRIME_MAX]),
            last_silent_len: 0,
            dtmf,
            rtcp,
            next_rtcp: now,
            encoder,
            ssrc,
            sequence: (ssrc >> 16) as u16,
            timestamp: ssrc.rotate_left(7),
            was_silent: true,
            out: Box::new([0; MAX_OUT]),
            last_received: now,
            counters: LegCounters::default(),
            media,
        }
    }

    /// Jitter buffer statistics.
    pub fn jitter_stats(&self) -> tutti_rtp::jitter::JitterStats {
        self.jitter.stats()
    }

    /// Where packets go now.
    fn destination(&self) -> SocketAddr {
        self.latched.unwrap_or(self.media.negotiated.remote_rtp)
    }

    /// The leg's own UDP socket; `None` for a relayed participant.
    pub(crate) fn udp_socket(&self) -> Option<Arc<UdpSocket>> {
        match &self.transport {
            Transport::Udp(socket) => Some(socket.clone()),
            Transport::Relay(_) => None,
        }
    }

    /// The participant has left: a relayed participant's endpoint is told to close its peer.
    pub(crate) fn close(&self) {
        if let Transport::Relay(port) = &self.transport {
            port.close();
        }
    }

    /// Whether silence from this caller means it is gone: media flows both ways and the call
    /// is not on hold. A listen-only caller (`recvonly`), one that put the call on hold
    /// (`sendonly`, `inactive`, `c=0.0.0.0`) is never timed out.
    pub fn expects_media(&self) -> bool {
        self.media.negotiated.direction == Direction::SendRecv && !self.on_hold()
    }

    /// What a renegotiation keeps of this leg (its socket on the receive thread is `token`).
    pub(crate) fn state(&self, token: mio::Token) -> LegState {
        LegState {
            transport: self.transport.clone(),
            inbox: self.inbox.clone(),
            token,
            ssrc: self.ssrc,
            session_id: self.media.session_id,
            session_version: self.media.session_version,
            latching: self.media.latching,
            signalled_source: self.media.signalled_source,
        }
    }

    /// Continues `old`'s call with this leg's newly negotiated media (built off the mixer
    /// thread with `old`'s socket, inbox and SSRC): the RTP stream goes on (sequence,
    /// timestamp, RTCP statistics, counters); the latch and the proof of the caller's address
    /// carry over while the address stays; the decoder, jitter buffer and encoder carry over
    /// while the codec stays. What this leg no longer needs is left in `old`, for the reaper.
    pub(crate) fn take_over(&mut self, old: &mut CallLeg) {
        std::mem::swap(&mut self.rtcp, &mut old.rtcp);
        self.next_rtcp = old.next_rtcp;
        self.sequence = old.sequence;
        self.timestamp = old.timestamp;
        self.was_silent = old.was_silent;
        self.counters = old.counters;
        if self.media.negotiated.remote_rtp == old.media.negotiated.remote_rtp {
            self.latched = old.latched;
            self.proven = old.proven;
            self.may_send = old.may_send;
            self.joined = old.joined;
        }
        let same_codec = self.media.codec == old.media.codec
            && self.media.negotiated.codec.clock_rate == old.media.negotiated.codec.clock_rate;
        if same_codec {
            std::mem::swap(&mut self.decoder, &mut old.decoder);
            std::mem::swap(&mut self.jitter, &mut old.jitter);
            std::mem::swap(&mut self.pending, &mut old.pending);
            self.skipping = old.skipping;
            self.quiet_frames = old.quiet_frames;
            self.concealed_in_a_row = old.concealed_in_a_row;
            std::mem::swap(&mut self.last_silent, &mut old.last_silent);
            self.last_silent_len = old.last_silent_len;
            if self.encoder_key() == old.encoder_key() {
                std::mem::swap(&mut self.encoder, &mut old.encoder);
            }
        }
    }

    /// The offer put the call on hold (`c=0.0.0.0`): nothing goes to it.
    fn on_hold(&self) -> bool {
        self.media.negotiated.remote_rtp.ip().is_unspecified()
    }

    /// Drains the inbox: RTP into the jitter buffer, DTMF into digits, RTCP into stats (RTCP
    /// counts as a sign of life too). Returns the caller's source when this drain latched onto
    /// it (or moved the latch).
    pub fn receive(
        &mut self,
        now: Instant,
        mut on_digit: impl FnMut(DtmfDigit),
    ) -> Option<SocketAddr> {
        let mut newly_latched = None;
        while let Some(datagram) = self.inbox.next() {
            self.proven = true;
            if datagram.pinned && self.media.latching && self.latched != Some(datagram.from) {
                self.latched = Some(datagram.from);
                newly_latched = Some(datagram.from);
            }
            self.receive_one(datagram.bytes(), datagram.at, &mut on_digit);
            self.inbox.recycle(datagram);
        }
        let drops = &self.inbox.drops;
        self.counters.foreign_source = drops.get(DropReason::ForeignSource);
        self.counters.malformed = drops.get(DropReason::Malformed);
        self.counters.unexpected_payload_type = drops.get(DropReason::UnexpectedPayloadType);
        self.counters.overflow = drops.get(DropReason::Overflow);
        self.may_send = self.proven
            || now.saturating_duration_since(self.joined) < self.media.unproven_send_window;
        newly_latched
    }

    fn receive_one(&mut self, bytes: &[u8], at: Instant, on_digit: &mut impl FnMut(DtmfDigit)) {
        let negotiated = &self.media.negotiated;
        match parse_datagram(bytes, negotiated.audio_level_id) {
            Ok(Parsed::Rtp(packet)) => {
                let event_pt = negotiated.receive_event_payload_type;
                if packet.payload_type == negotiated.receive_payload_type {
                    self.jitter.push_rtp(&packet, at);
                    if let Some(digit) = self.dtmf.as_mut().and_then(|d| d.poll(packet.timestamp)) {
                        on_digit(digit);
                    }
                } else if Some(packet.payload_type) == event_pt {
                    if let Some(digit) = self
                        .dtmf
                        .as_mut()
                        .and_then(|d| d.push(packet.timestamp, packet.payload))
                    {
                        on_digit(digit);
                    }
                } else if packet.payload_type == 13 {
                    // Comfort noise: the caller is silent; nothing to play.
                } else {
                    self.inbox.count_drop(DropReason::UnexpectedPayloadType);
                    return;
                }
                self.counters.packets_in += 1;
                self.rtcp.on_rtp_received(packet.ssrc, packet.sequence);
                self.last_received = at;
            }
            Ok(Parsed::Rtcp(data)) => {
                if self.rtcp.handle(data, at).is_ok() {
                    self.last_received = at;
                } else {
                    self.inbox.count_drop(DropReason::Malformed);
                }
            }
            Err(_) => self.inbox.count_drop(DropReason::Malformed),
        }
    }

    /// Produces the participant's next 20 ms into `frame` (the mixer's input buffer). Returns
    /// false when nothing is playing (the mixer then treats the participant as silent).
    ///
    /// A packet that decodes to exactly one frame while nothing is pending is decoded straight
    /// into `frame`; other packet lengths go through `pending`.
    pub fn next_frame(&mut self, now: Instant, frame: &mut Frame) -> bool {
        let frame = &mut frame[..];
        let mut attempts = 0;
        while self.pending.len() < FRAME_SAMPLES_48K && attempts < 8 {
            attempts += 1;
            match self.decode_next(now, frame) {
                Decoded::IntoFrame => return true,
                Decoded::Pending => {}
                Decoded::Nothing => break,
            }
        }
        if self.pending.len() < FRAME_SAMPLES_48K {
            self.pending.clear();
            return false;
        }
        frame.copy_from_slice(&self.pending[..FRAME_SAMPLES_48K]);
        self.pending.drain(..FRAME_SAMPLES_48K);
        true
    }

    /// Takes the next unit from the jitter buffer and decodes, skips or conceals it.
    fn decode_next(&mut self, now: Instant, frame: &mut [f32]) -> Decoded {
        let direct = self.pending.is_empty() && frame.len() == FRAME_SAMPLES_48K;
        match self.jitter.pop(now) {
            Playout::Packet {
                payload,
                audio_level,
                ..
            } => {
                let silence = silence_of(&*self.decoder, payload, audio_level);
                let skip = match silence {
                    Silence::Certain => true,
                    Silence::Likely => self.quiet_frames >= CONFIRM_QUIET,
                    Silence::No => false,
                };
                if skip {
                    self.counters.decode_skipped += 1;
                    self.skipping = true;
                    self.concealed_in_a_row = MAX_CONCEALED;
                    self.last_silent_len = if payload.len() <= PRIME_MAX {
                        self.last_silent[..payload.len()].copy_from_slice(payload);
                        payload.len()
                    } else {
                        0
                    };
                    return Decoded::Nothing;
                }
                if self.skipping {
                    self.skipping = false;
                    let last = &self.last_silent[..self.last_silent_len];
                    if !last.is_empty() {
                        let _ = self.decoder.decode(last, &mut self.scratch);
                    }
                }
                self.concealed_in_a_row = 0;
                self.counters.decoded += 1;
                let (decoded, samples) =
                    if direct && self.decoder.samples_in(payload) == Some(FRAME_SAMPLES_48K) {
                        match self.decoder.decode(payload, frame) {
                            Ok(FRAME_SAMPLES_48K) => (Decoded::IntoFrame, &frame[..]),
                            _ => (Decoded::Nothing, &frame[..0]),
                        }
                    } else {
                        let produced = self.decoder.decode(payload, &mut self.scratch).unwrap_or(0);
                        (Decoded::Pending, &self.scratch[..produced])
                    };
                self.quiet_frames = match silence {
                    Silence::Likely if is_quiet(samples) => self.quiet_frames + 1,
                    _ => 0,
                };
                match decoded {
                    Decoded::Pending => self.keep(samples.len()),
                    other => other,
                }
            }
            // A loss during silence is more silence: concealing it would replay the decoder's
            // last words.
            Playout::Lost { .. } if self.skipping => Decoded::Nothing,
            Playout::Lost { next } => {
                self.counters.concealed += 1;
                self.concealed_in_a_row += 1;
                let out = if direct {
                    &mut frame[..]
                } else {
                    &mut self.scratch[..FRAME_SAMPLES_48K]
                };
                let recovered =
                    next.and_then(|next| self.decoder.recover(next, out).ok().flatten());
                let produced = match recovered {
                    Some(n) => {
                        self.counters.fec_recovered += 1;
                        n
                    }
                    None => self.decoder.conceal(out).unwrap_or(0),
                };
                self.placed(direct, produced)
            }
            Playout::Nothing => {
                if self.concealed_in_a_row >= MAX_CONCEALED {
                    return Decoded::Nothing;
                }
                // A gap while talking (jitter, or the delay growing): conceal it.
                self.concealed_in_a_row += 1;
                self.counters.concealed += 1;
                let out = if direct {
                    &mut frame[..]
                } else {
                    &mut self.scratch[..FRAME_SAMPLES_48K]
                };
                let produced = self.decoder.conceal(out).unwrap_or(0);
                self.placed(direct, produced)
            }
        }
    }

    /// Where `produced` samples written to the frame (direct) or to `scratch` went.
    fn placed(&mut self, direct: bool, produced: usize) -> Decoded {
        match (direct, produced) {
            (true, FRAME_SAMPLES_48K) => Decoded::IntoFrame,
            (true, _) => Decoded::Nothing,
            (false, produced) => self.keep(produced),
        }
    }

    /// Appends `produced` samples of `scratch` to `pending`.
    fn keep(&mut self, produced: usize) -> Decoded {
        if produced == 0 {
            return Decoded::Nothing;
        }
        self.pending.extend_from_slice(&self.scratch[..produced]);
        Decoded::Pending
    }

    /// Whether this leg sends media to the caller: the answer says so and the offer is not on
    /// hold (`c=0.0.0.0`).
    pub fn sends(&self) -> bool {
        self.media.negotiated.direction.sends() && !self.on_hold()
    }

    /// The codec of what this leg sends.
    pub fn codec(&self) -> CodecKind {
        self.media.codec
    }

    /// The codec and encoder settings of what this leg sends: listeners with the same key can
    /// share an encoded payload.
    pub fn encoder_key(&self) -> (CodecKind, EncoderSettings) {
        (self.codec(), self.media.encoding)
    }

    /// Encodes with this leg's own encoder. Returns the payload length.
    pub fn encode_own(&mut self, frame: &Frame, payload: &mut [u8]) -> usize {
        self.encoder.encode(&frame[..], payload).unwrap_or(0)
    }

    /// Wraps `payload` in this leg's RTP stream and sends it: queued on `batch` for a caller
    /// who does not latch, from the leg's own socket otherwise.
    pub(crate) fn send_payload(
        &mut self,
        payload: &[u8],
        silent: bool,
        batch: Option<&mut SendBatch>,
    ) {
        let increment = self.encoder.timestamp_increment();
        self.timestamp = self.timestamp.wrapping_add(increment);
        self.sequence = self.sequence.wrapping_add(1);
        let marker = self.was_silent && !silent;
        self.was_silent = silent;
        if payload.is_empty() || !self.sends() {
            return;
        }
        if !self.may_send {
            self.counters.unproven_suppressed += 1;
            return;
        }
        let header = OutgoingRtp {
            payload_type: self.media.negotiated.codec.payload_type,
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            marker,
        };
        let socket = match &self.transport {
            Transport::Udp(socket) => socket,
            Transport::Relay(port) => {
                if port.send(|buf| write_rtp(buf, &header, payload)) {
                    self.counters.packets_out += 1;
                    self.rtcp.on_rtp_sent(payload.len());
                } else {
                    self.counters.send_failures += 1;
                }
                return;
            }
        };
        let destination = self.destination();
        if let Some(batch) = batch.filter(|_| !self.media.latching) {
            if batch.queue(destination, |buf| write_rtp(buf, &header, payload)) {
                self.counters.packets_out += 1;
                self.rtcp.on_rtp_sent(payload.len());
            }
            return;
        }
        let Some(len) = write_rtp(&mut self.out[..], &header, payload) else {
            return;
        };
        match socket.send_to(&self.out[..len], destination) {
            Ok(_) => {
                self.counters.packets_out += 1;
                self.rtcp.on_rtp_sent(payload.len());
            }
            Err(_) => self.counters.send_failures += 1,
        }
    }

    /// Sends an RTCP report when one is due.
    pub fn maybe_send_rtcp(&mut self, now: Instant, interval: std::time::Duration) {
        if now < self.next_rtcp {
            return;
        }
        self.next_rtcp = now + interval;
        // A relayed participant's endpoint makes its own RTCP.
        let Transport::Udp(socket) = &self.transport else {
            return;
        };
        if !self.may_send || self.on_hold() {
            return;
        }
        let jitter = self.jitter.stats().jitter;
        let clock = self.media.negotiated.codec.clock_rate;
        let destination = match self.latched {
            Some(latched) if self.media.negotiated.rtcp_mux => latched,
            _ => self.media.negotiated.remote_rtcp,
        };
        if let Some(len) =
            self.rtcp
                .write_report(now, self.timestamp, jitter, clock, &mut self.out[..])
        {
            let _ = socket.send_to(&self.out[..len], destination);
        }
    }
}

#[cfg(test)]
#[path = "leg_decode_tests.rs"]
mod tests;
