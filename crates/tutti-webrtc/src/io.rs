//! The one IO thread: the socket, every peer's stack, the engine's wakes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use crossbeam_queue::ArrayQueue;
use rtp_types::{RtpPacket, RtpPacketBuilder};
use str0m::media::{Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tutti_engine::{Engine, ParticipantKey, RelayLink, RelayWaker, RoomId};

use crate::demux::{Demux, DropReason, PeerToken, Route};
use crate::endpoint::{CONNECT_TIMEOUT, DISCONNECTED_TIMEOUT};
use crate::metrics::{Counters, FailReason};
use crate::offer::IceFragment;
use crate::WebRtcError;

/// The socket's poll token.
const SOCKET: mio::Token = mio::Token(0);
/// The waker's poll token.
pub(crate) const WAKE: mio::Token = mio::Token(1);
/// Wakes the engine may queue before the IO thread looks (beyond: every peer is serviced).
const WAKE_QUEUE: usize = 16_384;
/// Datagrams read in one go before the thread looks at its other work.
const READ_BATCH: usize = 256;
/// How often peers are checked for timeouts and closed relays.
const SWEEP: Duration = Duration::from_millis(250);
/// The largest datagram read.
const MAX_DATAGRAM: usize = 2048;

/// A peer built by `join`, handed to the IO thread.
pub(crate) struct NewPeer {
    pub token: PeerToken,
    pub room: RoomId,
    pub key: ParticipantKey,
    pub rtc: Rtc,
    pub link: RelayLink,
    pub mid: Option<Mid>,
    pub audio_level_id: u8,
    pub candidate: SocketAddr,
    pub remote_creds: str0m::IceCreds,
}

/// What the endpoint asks of the IO thread.
pub(crate) enum Command {
    /// A new peer.
    Add(Box<NewPeer>),
    /// A trickle-ICE / ICE-restart fragment for a peer.
    Patch {
        room: RoomId,
        participant: ParticipantKey,
        fragment: IceFragment,
        reply: Sender<Result<Option<String>, WebRtcError>>,
    },
}

/// Coalesced wakes of the IO thread: the engine's (per peer token) and the endpoint's.
pub(crate) struct Wakeup {
    tokens: ArrayQueue<PeerToken>,
    overflow: AtomicBool,
    pending: AtomicBool,
    waker: mio::Waker,
}

impl std::fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeup")
            .field("queued", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

impl Wakeup {
    pub(crate) fn new(waker: mio::Waker) -> Self {
        Self {
            tokens: ArrayQueue::new(WAKE_QUEUE),
            overflow: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            waker,
        }
    }

    /// Wakes the IO thread unless a wake is already pending.
    pub(crate) fn wake_io(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }
}

impl RelayWaker for Wakeup {
    fn wake(&self, token: u64) {
        if self.tokens.push(token).is_err() {
            self.overflow.store(true, Ordering::Release);
        }
        self.wake_io();
    }
}

/// Extends 16-bit RTP sequence numbers for SRTP's rollover counter.
#[derive(Debug, Default)]
struct SeqExtender {
    last: Option<u64>,
}

impl SeqExtender {
    fn extend(&mut self, seq: u16) -> SeqNo {
        let ext = match self.last {
            None => u64::from(seq),
            Some(last) => {
                let mut c = (last & !0xFFFF) | u64::from(seq);
                if c + 0x8000 < last {
                    c += 0x1_0000;
                } else if c > last + 0x8000 && c >= 0x1_0000 {
                    c -= 0x1_0000;
                }
                c
            }
        };
        self.last = Some(self.last.map_or(ext, |l| l.max(ext)));
        ext.into()
    }
}

/// One browser's peer.
struct Peer {
    room: RoomId,
    key: ParticipantKey,
    rtc: Rtc,
    link: RelayLink,
    mid: Option<Mid>,
    audio_level_id: u8,
    candidate: SocketAddr,
    ufrag: String,
    remote_creds: str0m::IceCreds,
    created: Instant,
    connected: bool,
    disconnected_since: Option<Instant>,
    /// When its stack wants a timeout.
    next: Instant,
    /// The deadline last put in the timer heap.
    scheduled: Option<Instant>,
    out_seq: SeqExtender,
    /// Set when it must go: why (`None`: it hung up or left the room).
    ending: Option<Option<FailReason>>,
}

/// The IO thread's state.
pub(crate) struct IoThread {
    poll: mio::Poll,
    socket: mio::net::UdpSocket,
    commands: Receiver<Command>,
    wakeup: Arc<Wakeup>,
    counters: Arc<Counters>,
    engine: Arc<Engine>,
    stop: Arc<AtomicBool>,
    demux: Demux,
    peers: HashMap<PeerToken, Peer>,
    by_key: HashMap<(RoomId, ParticipantKey), PeerToken>,
    timers: BinaryHeap<Reverse<(Instant, PeerToken)>>,
    next_sweep: Instant,
    readable: bool,
    buf: Vec<u8>,
    rtp_buf: Vec<u8>,
}

impl IoThread {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        poll: mio::Poll,
        mut socket: mio::net::UdpSocket,
        commands: Receiver<Command>,
        wakeup: Arc<Wakeup>,
        counters: Arc<Counters>,
        engine: Arc<Engine>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        poll.registry()
            .register(&mut socket, SOCKET, mio::Interest::READABLE)?;
        Ok(Self {
            poll,
            socket,
            commands,
            wakeup,
            counters,
            engine,
            stop,
            demux: Demux::new(),
            peers: HashMap::new(),
            by_key: HashMap::new(),
            timers: BinaryHeap::new(),
            next_sweep: Instant::now() + SWEEP,
            readable: true,
            buf: vec![0; MAX_DATAGRAM],
            rtp_buf: vec![0; MAX_DATAGRAM],
        })
    }

    pub(crate) fn run(mut self) {
        let mut events = mio::Events::with_capacity(16);
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            let mut deadline = self.next_sweep;
            if let Some(Reverse((t, _))) = self.timers.peek() {
                deadline = deadline.min(*t);
            }
            let timeout = if self.readable {
                Duration::ZERO
            } else {
                deadline.saturating_duration_since(now)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    tracing::error!("WebRTC endpoint poll: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for event in events.iter() {
                if event.token() == SOCKET {
                    self.readable = true;
                }
            }
            self.wakeup.pending.store(false, Ordering::Release);
            while let Ok(command) = self.commands.try_recv() {
                self.command(command);
            }
            self.engine_wakes();
            if self.readable {
                self.read();
            }
            self.timeouts();
            if Instant::now() >= self.next_sweep {
                self.sweep();
            }
        }
        let tokens: Vec<PeerToken> = self.peers.keys().copied().collect();
        for token in tokens {
            if let Some(peer) = self.peers.get_mut(&token) {
                peer.ending = Some(None);
            }
            self.finish(token, true);
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Add(new) => {
                let NewPeer {
                    token,
                    room,
                    key,
                    mut rtc,
                    link,
                    mid,
                    audio_level_id,
                    candidate,
                    remote_creds,
                } = *new;
                let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
                self.demux.add_peer(token, &ufrag);
                self.by_key.insert((room, key), token);
                let now = Instant::now();
                self.peers.insert(
                    token,
                    Peer {
                        room,
                        key,
                        rtc,
                        link,
                        mid,
                        audio_level_id,
                        candidate,
                        ufrag,
                        remote_creds,
                        created: now,
                        connected: false,
                        disconnected_since: None,
                        next: now,
                        scheduled: None,
                        out_seq: SeqExtender::default(),
                        ending: None,
                    },
                );
                self.outbound(token);
                self.drive(token, None);
            }
            Command::Patch {
                room,
                participant,
                fragment,
                reply,
            } => {
                let result = self.patch(room, participant, &fragment);
                let _ = reply.send(result);
            }
        }
    }

    fn patch(
        &mut self,
        room: RoomId,
        participant: ParticipantKey,
        fragment: &IceFragment,
    ) -> Result<Option<String>, WebRtcError> {
        let unknown = WebRtcError::UnknownParticipant { room, participant };
        let token = *self.by_key.get(&(room, participant)).ok_or(unknown)?;
        let Some(peer) = self.peers.get_mut(&token) else {
            return Err(WebRtcError::UnknownParticipant { room, participant });
        };
        let mut candidates = Vec::with_capacity(fragment.candidates.len());
        for line in &fragment.candidates {
            match Candidate::from_sdp_string(line) {
                Ok(c) => candidates.push(c),
                // Browsers may hide host addresses behind mDNS names, which tutti cannot
                // resolve: such candidates are skipped, as browsers skip unresolvable ones.
                Err(_) if line.contains(".local ") => {}
                Err(e) => {
                    return Err(WebRtcError::BadFragment(format!(
                        "the candidate {line:?} does not parse: {e}"
                    )))
                }
            }
        }
        let mut answer = None;
        if let (Some(ufrag), Some(pwd)) = (&fragment.ufrag, &fragment.pwd) {
            if peer.remote_creds.ufrag != *ufrag || peer.remote_creds.pass != *pwd {
                let local = str0m::IceCreds::new();
                peer.remote_creds = str0m::IceCreds {
                    ufrag: ufrag.clone(),
                    pass: pwd.clone(),
                };
                let mut api = peer.rtc.direct_api();
                api.set_local_ice_credentials(local.clone());
                api.set_remote_ice_credentials(peer.remote_creds.clone());
                self.demux.change_ufrag(token, &peer.ufrag, &local.ufrag);
                peer.ufrag = local.ufrag.clone();
                answer = Some(answer_fragment(peer, &local));
            }
        }
        for c in candidates {
            peer.rtc.add_remote_candidate(c);
        }
        self.drive(token, None);
        Ok(answer)
    }

    /// Services the peers the engine woke.
    fn engine_wakes(&mut self) {
        if self.wakeup.overflow.swap(false, Ordering::AcqRel) {
            while self.wakeup.tokens.pop().is_some() {}
            let tokens: Vec<PeerToken> = self.peers.keys().copied().collect();
            for token in tokens {
                self.outbound(token);
            }
            return;
        }
        while let Some(token) = self.wakeup.tokens.pop() {
            self.outbound(token);
        }
    }

    /// Writes what the mixer wrote for a peer into its stack, or closes it when it left.
    fn outbound(&mut self, token: PeerToken) {
        let Some(peer) = self.peers.get_mut(&token) else {
            return;
        };
        if peer.link.is_closed() {
            if peer.ending.is_none() {
                peer.ending = Some(None);
            }
            self.finish(token, false);
            return;
        }
        let now = Instant::now();
        let mut written = 0u64;
        let Peer {
            rtc,
            link,
            mid,
            out_seq,
            connected,
            ..
        } = peer;
        let stream = match (*connected, *mid) {
            (true, Some(mid)) => rtc.direct_api().stream_tx_by_mid(mid, None).is_some(),
            _ => false,
        };
        link.take(|bytes| {
            if !stream {
                return;
            }
            let Ok(packet) = RtpPacket::parse(bytes) else {
                return;
            };
            let Some(mid) = *mid else { return };
            let mut api = rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                return;
            };
            let seq = out_seq.extend(packet.sequence_number());
            tx.write_rtp(
                RtpWrite::new(
                    Pt::from(packet.payload_type()),
                    seq,
                    packet.timestamp(),
                    now,
                    packet.payload(),
                )
                .marker(packet.marker_bit()),
            );
            written += 1;
        });
        if written > 0 {
            self.counters.rtp_out.fetch_add(written, Ordering::Relaxed);
            self.drive(token, None);
        }
    }

    /// Reads datagrams until the socket is empty (or a batch is done).
    fn read(&mut self) {
        for _ in 0..READ_BATCH {
            let (len, source) = match self.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.readable = false;
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors surface here (a browser went away): nothing to read now.
                    tracing::debug!("WebRTC socket: {e}");
                    continue;
                }
            };
            self.counters.packets_in.fetch_add(1, Ordering::Relaxed);
            let token = match self.demux.route(source, &self.buf[..len]) {
                Route::Peer(token) => token,
                Route::Drop(reason) => {
                    self.counters.count_drop(reason);
                    continue;
                }
            };
            self.receive(token, source, len);
        }
    }

    /// Gives a datagram (in `self.buf[..len]`) to a peer's stack.
    fn receive(&mut self, token: PeerToken, source: SocketAddr, len: usize) {
        let Some(peer) = self.peers.get_mut(&token) else {
            self.counters.count_drop(DropReason::UnknownSource);
            return;
        };
        let Ok(contents) = self.buf[..len].try_into() else {
            self.counters.count_drop(DropReason::Malformed);
            return;
        };
        let now = Instant::now();
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: peer.candidate,
                contents,
            },
        );
        if !peer.rtc.accepts(&input) {
            self.counters.count_drop(DropReason::PeerError);
            return;
        }
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(room = %peer.room, participant = peer.key, "WebRTC peer input: {e}");
            self.counters.count_drop(DropReason::PeerError);
            if !peer.rtc.is_alive() && peer.ending.is_none() {
                peer.ending = Some(Some(FailReason::PeerError));
            }
        }
        self.drive(token, Some(now));
    }

    /// Runs a peer's stack until it waits: sends its datagrams, hands its RTP to the engine,
    /// notes its state; removes it when it must go.
    fn drive(&mut self, token: PeerToken, now: Option<Instant>) {
        let Some(peer) = self.peers.get_mut(&token) else {
            return;
        };
        let now = now.unwrap_or_else(Instant::now);
        loop {
            match peer.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    peer.next = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    // The stack only answers checks that carried the right credentials and
                    // only sends media to its nominated pair: where it sends, the peer is.
                    self.demux.learn(token, t.destination);
                    match self.socket.send_to(&t.contents, t.destination) {
                        Ok(_) => {
                            self.counters.packets_out.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => self.counters.count_drop(DropReason::SendFailed),
                    }
                }
                Ok(Output::Event(event)) => match event {
                    Event::Connected if !peer.connected => {
                        peer.connected = true;
                        self.counters.connected.fetch_add(1, Ordering::Relaxed);
                    }
                    Event::IceConnectionStateChange(state) => match state {
                        IceConnectionState::Connected | IceConnectionState::Completed => {
                            peer.disconnected_since = None;
                        }
                        // An ICE-lite agent drops a pair the browser stopped checking (15 s):
                        // it is then disconnected, or checking again when it has no
                        // candidates of the browser's to give up on.
                        IceConnectionState::Disconnected | IceConnectionState::Checking
                            if peer.connected =>
                        {
                            peer.disconnected_since.get_or_insert(now);
                        }
                        _ => {}
                    },
                    Event::RtpPacket(packet) => {
                        let level = packet.header.ext_vals.audio_level.map(|l| {
                            let voice = packet.header.ext_vals.voice_activity.unwrap_or(false);
                            (u8::from(voice) << 7) | (l.unsigned_abs().min(127))
                        });
                        let ext = level.map(|l| [(peer.audio_level_id << 4), l, 0, 0]);
                        let mut builder = RtpPacketBuilder::<&[u8], &[u8]>::new()
                            .payload_type(*packet.header.payload_type)
                            .sequence_number(packet.header.sequence_number)
                            .timestamp(packet.header.timestamp)
                            .ssrc(*packet.header.ssrc)
                            .marker_bit(packet.header.marker)
                            .payload(&packet.payload[..]);
                        if let Some(ext) = &ext {
                            builder = builder.extension(0xBEDE, &ext[..]);
                        }
                        if let Ok(n) = builder.write_into(&mut self.rtp_buf) {
                            if peer.link.deliver(&self.rtp_buf[..n], packet.timestamp) {
                                self.counters.rtp_in.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Event::Closed if peer.ending.is_none() => peer.ending = Some(None),
                    _ => {}
                },
                Err(e) => {
                    tracing::debug!(room = %peer.room, participant = peer.key, "WebRTC peer: {e}");
                    if peer.ending.is_none() {
                        peer.ending = Some(Some(FailReason::PeerError));
                    }
                    peer.next = now + Duration::from_secs(3600);
                    break;
                }
            }
        }
        if !peer.rtc.is_alive() && peer.ending.is_none() {
            peer.ending = Some(None);
        }
        if peer.ending.is_some() {
            self.finish(token, true);
            return;
        }
        if peer.scheduled != Some(peer.next) {
            peer.scheduled = Some(peer.next);
            self.timers.push(Reverse((peer.next, token)));
        }
    }

    /// Gives due peers their timeouts.
    fn timeouts(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((t, token))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(&token) else {
                continue;
            };
            if peer.scheduled != Some(t) {
                continue;
            }
            peer.scheduled = None;
            if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(room = %peer.room, participant = peer.key, "WebRTC peer timeout: {e}");
                if peer.ending.is_none() {
                    peer.ending = Some(Some(FailReason::PeerError));
                }
            }
            self.drive(token, Some(now));
        }
    }

    /// Every peer, now and then: connect and disconnect timeouts, relays closed.
    fn sweep(&mut self) {
        let now = Instant::now();
        self.next_sweep = now + SWEEP;
        let mut ending = Vec::new();
        for (&token, peer) in &mut self.peers {
            if peer.ending.is_none() {
                if peer.link.is_closed() {
                    peer.ending = Some(None);
                } else if !peer.connected && now - peer.created > CONNECT_TIMEOUT {
                    peer.ending = Some(Some(FailReason::ConnectTimeout));
                } else if peer
                    .disconnected_since
                    .is_some_and(|since| now - since > DISCONNECTED_TIMEOUT)
                {
                    peer.ending = Some(Some(FailReason::IceDisconnected));
                }
            }
            if peer.ending.is_some() {
                ending.push(token);
            }
        }
        for token in ending {
            self.finish(token, true);
        }
    }

    /// Removes a peer that must go: it leaves its room (unless the room let it go), its stack
    /// says goodbye (RTCP BYE, DTLS close_notify) and is dropped.
    fn finish(&mut self, token: PeerToken, leave_room: bool) {
        let Some(mut peer) = self.peers.remove(&token) else {
            return;
        };
        if let Some(Some(reason)) = peer.ending {
            self.counters.fail(reason);
            tracing::info!(room = %peer.room, participant = peer.key, reason = reason.label(), "WebRTC peer failed");
        }
        self.demux.remove_peer(token, &peer.ufrag);
        self.by_key.remove(&(peer.room, peer.key));
        self.counters.peers.fetch_sub(1, Ordering::Relaxed);
        if leave_room && !peer.link.is_closed() {
            // Not `leave`: waiting a tick per peer would stall every other browser.
            let _ = self.engine.leave_soon(peer.room, peer.key);
        }
        if peer.rtc.is_alive() {
            let _ = peer.rtc.close();
            for _ in 0..64 {
                match peer.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => {
                        if self.socket.send_to(&t.contents, t.destination).is_ok() {
                            self.counters.packets_out.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(Output::Event(_)) => {}
                    Ok(Output::Timeout(_)) | Err(_) => break,
                }
                if !peer.rtc.is_alive() {
                    break;
                }
            }
            peer.rtc.disconnect();
        }
    }
}

/// The answer to an ICE restart fragment (RFC 9725 §4.3.2): the new credentials and the host
/// candidate.
fn answer_fragment(peer: &Peer, local: &str0m::IceCreds) -> String {
    let mut frag = format!(
        "a=ice-lite\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
        local.ufrag, local.pass
    );
    if let Some(mid) = peer.mid {
        let _ = write!(frag, "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:{mid}\r\n");
    }
    let c = peer.candidate;
    let _ = write!(
        frag,
        "a=candidate:1 1 UDP 2130706431 {} {} typ host\r\na=end-of-candidates\r\n",
        c.ip(),
        c.port()
    );
    frag
}

#[cfg(test)]
mod tests {
    use super::SeqExtender;

    #[test]
    fn sequence_numbers_extend_across_wraps_and_reordering() {
        let mut ext = SeqExtender::default();
        let got: Vec<u64> = [65_534u16, 65_535, 0, 65_535, 1, 2]
            .into_iter()
            .map(|s| *ext.extend(s))
            .collect();
        assert_eq!(got, vec![65_534, 65_535, 65_536, 65_535, 65_537, 65_538]);
        let mut ext = SeqExtender::default();
        assert_eq!(*ext.extend(3), 3);
        // A late packet from before the first one does not go below zero.
        assert_eq!(*ext.extend(65_530), 65_530);
    }
}
