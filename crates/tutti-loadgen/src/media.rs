//! The media loop: one thread sends every caller's RTP at 20 ms pacing and receives every
//! listener's mix, over a handful of UDP sockets shared by many callers.
//!
//! All callers on a socket offer that socket's address, so the server sends all their mixes to
//! it; a packet is told apart by the server port it comes from (each caller has its own). Sends
//! are spread over the 20 ms in 1 ms slots (caller `i` sends in slot `i mod 20`), each slot's
//! packets leaving in one `sendmmsg` per socket; receives drain each readable socket with
//! `recvmmsg`. Deadlines are absolute (slot `k` is due `k` ms after the start), so pacing never
//! drifts; a late loop sends the slots it missed at once, with their own timestamps.
//!
//! Arrival times are the kernel's (`SO_TIMESTAMPNS`), so the loop's own scheduling does not
//! show as network jitter.

use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use nix::sys::socket::{
    recvmmsg, sendmmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, MultiHeaders,
    SockaddrIn,
};
use nix::sys::time::TimeSpec;
use std::io::{IoSlice, IoSliceMut};
use tutti_codec::{AudioDecoder, OpusDecoder, FRAME_SAMPLES_48K, MAX_PACKET_SAMPLES};
use tutti_rtp::packet::{parse_datagram, write_rtp, Datagram, OutgoingRtp};

use crate::fixtures::Fixtures;
use crate::stats::Histogram;
use crate::LoadError;

/// Slots per 20 ms frame (1 ms each).
const SLOTS: u64 = 20;
/// Messages per `recvmmsg`/`sendmmsg` call.
const BATCH: usize = 64;
/// Largest datagram kept.
const MTU: usize = 1500;
/// RTP payload type of Opus in every offer.
const OPUS_PT: u8 = 111;

/// What a caller sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Speech, from this frame of the loop on.
    Talker {
        /// First frame of the loop it sends.
        offset: usize,
    },
    /// Opus-coded silence.
    Silent,
    /// The measurement room's talker: silence, then the speech loop from its first frame at
    /// the start of the window, then silence.
    MeasureTalker,
}

/// A joined caller, handed to the loop.
#[derive(Clone, Debug)]
pub struct CallerSpec {
    /// Its number (0-based, unique).
    pub index: u32,
    /// Its room's number.
    pub room: u32,
    /// What it sends.
    pub role: Role,
    /// Which of the loop's sockets it uses.
    pub socket: usize,
    /// The server's address for it.
    pub remote: SocketAddr,
    /// Whether somebody else in its room talks, so its mix should be audible.
    pub expects_sound: bool,
    /// Whether every packet it receives is decoded and its level measured.
    pub decode: bool,
    /// Whether its decoded audio is recorded (the measurement room's listener).
    pub record: bool,
}

/// The measured window, and how long the measurement room records.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Counting starts.
    pub start: Instant,
    /// Counting ends.
    pub end: Instant,
    /// Seconds of speech the measurement talker sends from `start`.
    pub speech: Duration,
    /// Seconds recorded from `start` (the speech and a tail for the path's delay).
    pub record: Duration,
}

/// Orders to the loop.
#[derive(Debug)]
pub enum Control {
    /// A caller joined: start sending.
    Add(CallerSpec),
    /// The window to measure.
    Window(Window),
    /// Stop and report.
    Stop,
}

/// Thresholds of the audibility check.
#[derive(Clone, Copy, Debug)]
pub struct Audibility {
    /// A payload longer than this many bytes counts as sound (the cheap rule, every listener).
    pub loud_bytes: usize,
    /// A decoded 20 ms frame whose RMS exceeds this counts as sound (sampled listeners).
    pub rms: f32,
}

/// What one caller sent and received in the window.
#[derive(Clone, Debug, Default)]
pub struct CallerReport {
    /// The caller's number.
    pub index: u32,
    /// Its room.
    pub room: u32,
    /// Whether its mix should be audible.
    pub expects_sound: bool,
    /// Whether it was decoded.
    pub decoded: bool,
    /// RTP packets sent in the window.
    pub sent: u64,
    /// Mix packets received in the window.
    pub received: u64,
    /// Packets missing by sequence number in the window.
    pub gaps: u64,
    /// Received packets longer than the loud threshold.
    pub loud: u64,
    /// Decoded frames above the RMS threshold.
    pub decoded_sound: u64,
    /// Frames decoded.
    pub decoded_frames: u64,
    /// RFC 3550 interarrival jitter at the end, milliseconds.
    pub jitter_ms: Option<f64>,
}

/// What the loop measured.
#[derive(Debug, Default)]
pub struct MediaReport {
    /// Per caller, by number.
    pub callers: Vec<CallerReport>,
    /// Deviation of each interarrival time (consecutive packets) from 20 ms, all listeners.
    pub interarrival: Histogram,
    /// Datagrams from addresses no caller has, or neither RTP nor RTCP.
    pub strays: u64,
    /// RTCP packets received.
    pub rtcp: u64,
    /// Packets the kernel would not take (send buffer full).
    pub send_failures: u64,
    /// The measurement listener's decoded audio, 48 kHz.
    pub recording: Option<Vec<f32>>,
    /// Slots sent later than 5 ms after their deadline.
    pub late_slots: u64,
}

struct Caller {
    spec: CallerSpec,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    frames: u64,
    report: CallerReport,
    last_sequence: Option<u16>,
    last_arrival_ns: i128,
    last_rtp_ts: u32,
    jitter_ts: f64,
    decoder: Option<OpusDecoder>,
    recording: Option<Vec<f32>>,
}

impl Caller {
    fn new(spec: CallerSpec) -> Self {
        // Distinct, fixed per caller: a Weyl sequence over the caller's number.
        let ssrc = spec.index.wrapping_mul(0x9E37_79B9) ^ 0x5EED_0001;
        Self {
            ssrc,
            sequence: (ssrc >> 16) as u16,
            timestamp: ssrc.rotate_left(7),
            frames: 0,
            report: CallerReport {
                index: spec.index,
                room: spec.room,
                expects_sound: spec.expects_sound,
                decoded: spec.decode || spec.record,
                ..CallerReport::default()
            },
            last_sequence: None,
            last_arrival_ns: 0,
            last_rtp_ts: 0,
            jitter_ts: 0.0,
            decoder: None,
            recording: spec.record.then(Vec::new),
            spec,
        }
    }
}

/// The loop's sockets, bound and tuned.
pub fn bind_sockets(
    ip: std::net::Ipv4Addr,
    count: usize,
    buffer_bytes: usize,
) -> Result<Vec<UdpSocket>, LoadError> {
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = UdpSocket::bind(SocketAddr::from((ip, 0)))?;
        // Beyond rmem_max only with CAP_NET_ADMIN (the Force options); else as large as allowed.
        let bytes = buffer_bytes.min(i32::MAX as usize);
        if setsockopt(&socket, sockopt::RcvBufForce, &bytes).is_err() {
            setsockopt(&socket, sockopt::RcvBuf, &bytes)?;
        }
        if setsockopt(&socket, sockopt::SndBufForce, &bytes).is_err() {
            setsockopt(&socket, sockopt::SndBuf, &bytes)?;
        }
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true)?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Runs the loop until [`Control::Stop`].
pub fn run(
    mut sockets: Vec<UdpSocket>,
    fixtures: Arc<Fixtures>,
    audibility: Audibility,
    control: Receiver<Control>,
) -> Result<MediaReport, LoadError> {
    let mut poll = Poll::new()?;
    for (i, socket) in sockets.iter_mut().enumerate() {
        poll.registry()
            .register(socket, Token(i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(64);
    let mut callers: Vec<Caller> = Vec::new();
    // Caller by the server port its mix comes from (+1; 0: none).
    let mut by_port = vec![0u32; 65_536];
    let mut slots: Vec<Vec<u32>> = vec![Vec::new(); SLOTS as usize];
    let mut window: Option<Window> = None;
    let mut report = MediaReport::default();
    let mut send = Sender::new(sockets.len());
    let mut receive = Inbox::new();
    let mut pcm = vec![0f32; MAX_PACKET_SAMPLES];

    let start = Instant::now();
    let mut next_slot: u64 = 0;
    loop {
        loop {
            match control.try_recv() {
                Ok(Control::Add(spec)) => {
                    let id = callers.len() as u32;
                    by_port[usize::from(spec.remote.port())] = id + 1;
                    slots[(spec.index as u64 % SLOTS) as usize].push(id);
                    let mut caller = Caller::new(spec);
                    if caller.spec.decode || caller.spec.record {
                        caller.decoder = Some(OpusDecoder::new()?);
                    }
                    callers.push(caller);
                }
                Ok(Control::Window(w)) => window = Some(w),
                Ok(Control::Stop) | Err(TryRecvError::Disconnected) => {
                    return Ok(finish(callers, report));
                }
                Err(TryRecvError::Empty) => break,
            }
        }

        // Send every slot that is due.
        let now = Instant::now();
        while start + Duration::from_millis(next_slot) <= now {
            let due = start + Duration::from_millis(next_slot);
            if now.duration_since(due) > Duration::from_millis(5) {
                report.late_slots += 1;
            }
            let in_window = window.is_some_and(|w| due >= w.start && due < w.end);
            for &id in &slots[(next_slot % SLOTS) as usize] {
                let caller = &mut callers[id as usize];
                let payload = payload_for(caller, &fixtures, window, due);
                let header = OutgoingRtp {
                    payload_type: OPUS_PT,
                    sequence: caller.sequence,
                    timestamp: caller.timestamp,
                    ssrc: caller.ssrc,
                    marker: caller.frames == 0,
                };
                caller.sequence = caller.sequence.wrapping_add(1);
                caller.timestamp = caller.timestamp.wrapping_add(FRAME_SAMPLES_48K as u32);
                caller.frames += 1;
                if in_window {
                    caller.report.sent += 1;
                }
                send.push(caller.spec.socket, caller.spec.remote, &header, payload);
            }
            for (i, socket) in sockets.iter().enumerate() {
                report.send_failures += send.flush(i, socket);
            }
            next_slot += 1;
        }

        let wait =
            (start + Duration::from_millis(next_slot)).saturating_duration_since(Instant::now());
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        for event in events.iter() {
            let Some(socket) = sockets.get(event.token().0) else {
                continue;
            };
            loop {
                let got = receive.batch(socket)?;
                if got == 0 {
                    break;
                }
                let now = Instant::now();
                let in_window = window.is_some_and(|w| now >= w.start && now < w.end);
                for i in 0..got {
                    let (data, from, arrival_ns) = receive.message(i);
                    let rtp = match parse_datagram(data, None) {
                        Ok(Datagram::Rtp(rtp)) => rtp,
                        Ok(Datagram::Rtcp(_)) => {
                            report.rtcp += 1; // reports, not part of the mix
                            continue;
                        }
                        Err(_) => {
                            report.strays += 1;
                            continue;
                        }
                    };
                    let id = from.map_or(0, |f| by_port[usize::from(f.port())]);
                    let Some(caller) = id
                        .checked_sub(1)
                        .and_then(|id| callers.get_mut(id as usize))
                    else {
                        report.strays += 1;
                        continue;
                    };
                    if from != Some(caller.spec.remote) {
                        report.strays += 1;
                        continue;
                    }
                    let recording =
                        window.is_some_and(|w| now >= w.start && now < w.start + w.record);
                    receive_packet(
                        caller,
                        &rtp,
                        arrival_ns,
                        in_window,
                        recording,
                        audibility,
                        &mut report.interarrival,
                        &mut pcm,
                    );
                }
            }
        }
    }
}

/// The payload `caller` sends at `due`.
fn payload_for<'f>(
    caller: &Caller,
    fixtures: &'f Fixtures,
    window: Option<Window>,
    due: Instant,
) -> &'f [u8] {
    let silence = &fixtures.silence[(caller.frames % fixtures.silence.len() as u64) as usize];
    match caller.spec.role {
        Role::Silent => silence,
        Role::Talker { offset } => {
            let n = (offset as u64 + caller.frames) % fixtures.speech.len() as u64;
            &fixtures.speech[n as usize]
        }
        Role::MeasureTalker => {
            let Some(w) = window else {
                return silence;
            };
            match due.checked_duration_since(w.start) {
                Some(since) if since < w.speech => {
                    let n = (since.as_millis() / 20) as usize;
                    fixtures.speech.get(n).map_or(silence, Vec::as_slice)
                }
                _ => silence,
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn receive_packet(
    caller: &mut Caller,
    rtp: &tutti_rtp::packet::ReceivedRtp<'_>,
    arrival_ns: i128,
    in_window: bool,
    recording: bool,
    audibility: Audibility,
    interarrival: &mut Histogram,
    pcm: &mut [f32],
) {
    let missing = caller
        .last_sequence
        .map_or(0, |last| rtp.sequence.wrapping_sub(last).wrapping_sub(1));
    // A reordered or repeated packet (a huge forward jump) is not a gap.
    let missing = if missing > 1000 { 0 } else { missing };
    let consecutive = caller.last_sequence.is_some() && missing == 0;
    if let Some(last) = caller.last_sequence {
        // RFC 3550 §6.4.1: D = (Rj − Ri) − (Sj − Si), in timestamp units (48 kHz).
        let transit_gap = (arrival_ns - caller.last_arrival_ns) as f64 * 48_000.0 / 1e9
            - f64::from(rtp.timestamp.wrapping_sub(caller.last_rtp_ts) as i32);
        if rtp.sequence != last {
            caller.jitter_ts += (transit_gap.abs() - caller.jitter_ts) / 16.0;
        }
        if consecutive && in_window {
            let delta_us = (arrival_ns - caller.last_arrival_ns) as f64 / 1000.0;
            interarrival.record((delta_us - 20_000.0).abs());
        }
    }
    caller.last_sequence = Some(rtp.sequence);
    caller.last_arrival_ns = arrival_ns;
    caller.last_rtp_ts = rtp.timestamp;

    if in_window {
        caller.report.received += 1;
        caller.report.gaps += u64::from(missing);
        if rtp.payload.len() > audibility.loud_bytes {
            caller.report.loud += 1;
        }
    }
    let Some(decoder) = caller.decoder.as_mut() else {
        return;
    };
    if let Some(recording) = caller.recording.as_mut().filter(|_| recording) {
        for _ in 0..missing.min(50) {
            if let Ok(n) = decoder.conceal(&mut pcm[..FRAME_SAMPLES_48K]) {
                recording.extend_from_slice(&pcm[..n]);
            }
        }
    }
    let Ok(n) = decoder.decode(rtp.payload, pcm) else {
        return;
    };
    let frame = &pcm[..n];
    if in_window && caller.spec.decode {
        let energy: f32 = frame.iter().map(|s| s * s).sum();
        let rms = (energy / n.max(1) as f32).sqrt();
        caller.report.decoded_frames += 1;
        if rms > audibility.rms {
            caller.report.decoded_sound += 1;
        }
    }
    if let Some(recording) = caller.recording.as_mut().filter(|_| recording) {
        recording.extend_from_slice(frame);
    }
}

fn finish(callers: Vec<Caller>, mut report: MediaReport) -> MediaReport {
    let mut out: Vec<CallerReport> = Vec::with_capacity(callers.len());
    for mut caller in callers {
        caller.report.jitter_ms = (caller.last_sequence.is_some()).then(|| caller.jitter_ts / 48.0);
        if caller.recording.is_some() {
            report.recording = caller.recording.take();
        }
        out.push(caller.report);
    }
    out.sort_by_key(|c| c.index);
    report.callers = out;
    report
}

/// Outgoing packets per socket, written into preallocated buffers, flushed with `sendmmsg`.
struct Sender {
    buffers: Vec<Vec<[u8; MTU]>>,
    lengths: Vec<Vec<usize>>,
    addresses: Vec<Vec<Option<SockaddrIn>>>,
    headers: Vec<MultiHeaders<SockaddrIn>>,
}

impl Sender {
    fn new(sockets: usize) -> Self {
        Self {
            buffers: (0..sockets).map(|_| Vec::new()).collect(),
            lengths: vec![Vec::new(); sockets],
            addresses: vec![Vec::new(); sockets],
            headers: (0..sockets)
                .map(|_| MultiHeaders::preallocate(BATCH, None))
                .collect(),
        }
    }

    fn push(&mut self, socket: usize, to: SocketAddr, header: &OutgoingRtp, payload: &[u8]) {
        let SocketAddr::V4(to) = to else {
            return; // offers are IPv4 only
        };
        let n = self.lengths[socket].len();
        if self.buffers[socket].len() <= n {
            self.buffers[socket].push([0u8; MTU]);
        }
        let len = write_rtp(&mut self.buffers[socket][n], header, payload).unwrap_or(0);
        self.lengths[socket].push(len);
        self.addresses[socket].push(Some(SockaddrIn::from(SocketAddrV4::new(
            *to.ip(),
            to.port(),
        ))));
    }

    /// Sends what `socket` holds; the packets the kernel refused.
    fn flush(&mut self, socket: usize, udp: &UdpSocket) -> u64 {
        let total = self.lengths[socket].len();
        let mut failed = 0;
        let mut done = 0;
        while done < total {
            let end = (done + BATCH).min(total);
            let slices: Vec<[IoSlice<'_>; 1]> = (done..end)
                .map(|i| {
                    [IoSlice::new(
                        &self.buffers[socket][i][..self.lengths[socket][i]],
                    )]
                })
                .collect();
            let sent = sendmmsg(
                udp.as_raw_fd(),
                &mut self.headers[socket],
                &slices,
                &self.addresses[socket][done..end],
                [],
                MsgFlags::MSG_DONTWAIT,
            )
            .map(Iterator::count);
            match sent {
                Ok(0) | Err(_) => {
                    // Refused (buffer full) or failed: count this one and go on with the rest.
                    failed += 1;
                    done += 1;
                }
                Ok(n) => done += n,
            }
        }
        self.lengths[socket].clear();
        self.addresses[socket].clear();
        failed
    }
}

/// Incoming datagrams of one `recvmmsg`, with their sources and kernel arrival times.
struct Inbox {
    buffers: Vec<[u8; MTU]>,
    headers: MultiHeaders<SockaddrIn>,
    meta: Vec<(usize, Option<SocketAddr>, i128)>,
}

impl Inbox {
    fn new() -> Self {
        Self {
            buffers: vec![[0u8; MTU]; BATCH],
            headers: MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec))),
            meta: Vec::with_capacity(BATCH),
        }
    }

    /// Receives up to a batch from `socket`; how many (0: nothing waiting).
    fn batch(&mut self, socket: &UdpSocket) -> Result<usize, LoadError> {
        self.meta.clear();
        let fallback = now_ns();
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .buffers
            .iter_mut()
            .map(|b| [IoSliceMut::new(&mut b[..])])
            .collect();
        let result = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        );
        match result {
            Ok(messages) => {
                for message in messages {
                    let arrival = message
                        .cmsgs()
                        .ok()
                        .and_then(|mut c| {
                            c.find_map(|m| match m {
                                ControlMessageOwned::ScmTimestampns(ts) => Some(
                                    i128::from(ts.tv_sec()) * 1_000_000_000
                                        + i128::from(ts.tv_nsec()),
                                ),
                                _ => None,
                            })
                        })
                        .unwrap_or(fallback);
                    let from = message
                        .address
                        .map(|a| SocketAddr::V4(SocketAddrV4::new(a.ip(), a.port())));
                    self.meta.push((message.bytes, from, arrival));
                }
                Ok(self.meta.len())
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Datagram `i` of the last batch: its bytes, source and arrival (ns, realtime clock).
    fn message(&self, i: usize) -> (&[u8], Option<SocketAddr>, i128) {
        let (len, from, arrival) = self.meta[i];
        (&self.buffers[i][..len.min(MTU)], from, arrival)
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}
