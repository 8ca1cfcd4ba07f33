//! The engine's public face: rooms, joins and commands in; events and snapshots out.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use tutti_codec::CodecKind;
use tutti_mix::{DetachedParticipant, ParticipantSettings, ToneGenerator, ToneProgram};
use tutti_rtp::rtcp::{NtpClock, RtcpSession};
use tutti_rtp::sdp::{
    accept_answer, answer_offer, make_offer, AnswerConfig, Negotiated, OfferConfig,
};

use crate::histogram::HistogramSnapshot;
use crate::inbox::{DropCounters, DropReason, Inbox};
use crate::leg::{CallLeg, LegMedia, Transport};
use crate::mixer::{Command, MixerThread, ParticipantChange, ThreadMetrics};
use crate::player::ClipPlayer;
use crate::reaper::Reaper;
use crate::receiver::{self, ReceiverCommand, ReceiverHandle};
use crate::recorder::Recorder;
use crate::relay::{RelayLink, RelayPort, RelayWaker};
use crate::reserved_ports::{Reserved, ReservedPorts};
use crate::room::{reserved_participants, Arrival, RoomSettings, SharedEncoder};
use crate::snapshot::{PacketTotals, RoomSnapshot};
use crate::source::SourceGuard;
use crate::{wav, EngineConfig, EngineError, EngineEvent, ParticipantKey, RoomId};

#[path = "renegotiate.rs"]
mod renegotiate;

/// A participant asking to join.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    /// The caller's SDP offer.
    pub offer: String,
    /// Mute, deaf, gains, threshold, moderator.
    pub settings: ParticipantSettings,
    /// Overrides the engine's latching default for this caller.
    pub latching: Option<bool>,
    /// Where the caller's signalling came from (a SIP message's source), when known: a
    /// caller behind NAT, whose offer names a private address, is expected from this host.
    pub signalled_source: Option<IpAddr>,
    /// The local media port to join on: one reserved by [`Engine::offer`] or
    /// [`Engine::detach`], else bound exactly (an error when it cannot be). When tutti offered
    /// on it, [`JoinRequest::offer`] is the remote side's answer to that offer.
    pub port: Option<u16>,
    /// Join without a UDP port: the participant's packets pass through another endpoint of
    /// this process, woken with the token (see [`crate::relay`]). [`JoinRequest::offer`] is then
    /// a plain RTP/AVP offer describing what that endpoint negotiated.
    pub relay: Option<(Arc<dyn RelayWaker>, u64)>,
}

/// A participant that joined.
#[derive(Clone, Debug)]
pub struct Joined {
    /// Its key in the room.
    pub key: ParticipantKey,
    /// The SDP answer for the caller (tutti's offer, when the join carried an answer to it).
    pub answer: String,
    /// The local media port.
    pub port: u16,
    /// The codec negotiated.
    pub codec: CodecKind,
    /// The endpoint's link to a participant joined with [`JoinRequest::relay`].
    pub relay: Option<RelayLink>,
}

/// Counters of the whole engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineMetrics {
    /// Rooms per mixer thread.
    pub rooms: Vec<usize>,
    /// Participants per mixer thread.
    pub participants: Vec<usize>,
    /// Tick duration, all threads.
    pub tick_duration: Vec<HistogramSnapshot>,
    /// Tick lateness, all threads.
    pub lateness: Vec<HistogramSnapshot>,
    /// Ticks that ran more than a whole tick late.
    pub overruns: u64,
    /// Events dropped because nobody read them fast enough.
    pub dropped_events: u64,
    /// Participants per room (as its last snapshot counted them).
    pub room_participants: Vec<(RoomId, usize)>,
    /// RTP packets received since the engine started (as the rooms' snapshots counted them).
    pub packets_in: u64,
    /// RTP packets sent since the engine started.
    pub packets_out: u64,
    /// Packets lost on the way in since the engine started (jitter-buffer losses).
    pub packets_lost: u64,
    /// Datagrams dropped since the engine started, by reason (every participant, past and
    /// present).
    pub drops: Vec<(DropReason, u64)>,
    /// Audio packets decoded since the engine started.
    pub decoded: u64,
    /// Silent audio packets not decoded since the engine started.
    pub decode_skipped: u64,
    /// Packets sent in batches (to callers who do not latch) since the engine started.
    pub batched_sends: u64,
    /// The `sendmmsg` calls that sent them.
    pub send_calls: u64,
    /// Batched packets the OS refused.
    pub batched_send_failures: u64,
    /// Mixer threads running at a raised priority (see [`EngineConfig::raise_priority`]).
    pub raised_priority_threads: usize,
    /// Media ports held for a join to come (offers awaiting answers, detached participants).
    pub reserved_ports: usize,
}

/// What a leg is built from, off the mixer thread.
struct LegParts {
    media: LegMedia,
    decoder: Box<dyn tutti_codec::AudioDecoder>,
    encoder: Box<dyn tutti_codec::AudioEncoder>,
    /// One more encoder like the leg's, for the room to share if it has none of the kind.
    shared_encoder: Option<SharedEncoder>,
    guard: Box<SourceGuard>,
}

struct ThreadHandle {
    commands: Sender<Command>,
    receiver: ReceiverHandle,
    metrics: Arc<ThreadMetrics>,
    rooms: AtomicUsize,
    join: Option<std::thread::JoinHandle<()>>,
    receiver_join: Option<std::thread::JoinHandle<()>>,
}

struct RoomHandle {
    thread: usize,
    snapshot: Arc<Mutex<RoomSnapshot>>,
    next_key: AtomicU32,
}

/// The real-time media plane.
pub struct Engine {
    config: EngineConfig,
    threads: Vec<ThreadHandle>,
    rooms: Mutex<HashMap<RoomId, RoomHandle>>,
    events: Receiver<EngineEvent>,
    event_sender: Sender<EngineEvent>,
    /// The thread that frees what mixer threads are done with; it ends after them.
    reaper_join: Option<std::thread::JoinHandle<()>>,
    next_token: AtomicUsize,
    drops: Arc<DropCounters>,
    /// Sockets held for joins to come; the reaper thread closes expired ones.
    reserved: Arc<ReservedPorts>,
    /// RTP packets of the rooms destroyed, as their last snapshots counted them. Changed and
    /// read with `rooms` locked, so a room's packets are counted once, in one or the other.
    closed: Mutex<PacketTotals>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

/// Commands that may wait for a mixer thread (and for a receive thread) before senders block:
/// a burst of API calls is absorbed, a stuck thread cannot make memory grow without bound.
pub(crate) const COMMAND_CAPACITY: usize = 1024;

fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

fn codec_kind(name: &str) -> Option<CodecKind> {
    [
        CodecKind::Opus,
        CodecKind::G722,
        CodecKind::Pcmu,
        CodecKind::Pcma,
    ]
    .into_iter()
    .find(|kind| kind.encoding_name().eq_ignore_ascii_case(name))
}

/// A new outgoing RTP stream: a random SSRC and its RTCP session.
fn new_stream(now: Instant) -> (u32, RtcpSession) {
    let ssrc = random_u64() as u32;
    let rtcp = RtcpSession::new(
        ssrc,
        format!("tutti-{ssrc:08x}"),
        NtpClock::new(now, SystemTime::now()),
    );
    (ssrc, rtcp)
}

/// The loopback address of `address`'s family.
fn loopback_like(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    }
}

/// Binds a media socket on a port picked at random in the range, so the next caller's port
/// cannot be guessed from this one's.
fn bind_media_socket(config: &EngineConfig) -> Result<(std::net::UdpSocket, u16), EngineError> {
    let (first, last) = (
        u32::from(*config.ports.start()),
        u32::from(*config.ports.end()),
    );
    let span = last.saturating_sub(first) + 1;
    let bind = |offset: u32| {
        let port = (first + offset % span) as u16;
        std::net::UdpSocket::bind(SocketAddr::new(config.bind_address, port))
            .ok()
            .map(|socket| (socket, port))
    };
    // Random picks first; when the range is nearly full, a scan from a random start.
    let bound = (0..16).find_map(|_| bind(random_u64() as u32)).or_else(|| {
        let start = random_u64() as u32;
        (0..span).find_map(|i| bind(start.wrapping_add(i)))
    });
    bound.ok_or(EngineError::NoPortAvailable {
        first: first as u16,
        last: last as u16,
    })
}

impl Engine {
    /// Starts the mixer and receive threads.
    pub fn start(config: EngineConfig) -> Result<Self, EngineError> {
        let (event_sender, events) = crossbeam_channel::bounded(config.event_capacity.max(16));
        let reserved = Arc::new(ReservedPorts::new(config.reserved_port_ttl));
        let (reaper, reaper_join) = Reaper::spawn(reserved.clone()).map_err(EngineError::Thread)?;
        let mut threads = Vec::new();
        for index in 0..config.mixer_threads.max(1) {
            let (receiver, receiver_join) =
                receiver::spawn(format!("tutti-rx-{index}")).map_err(EngineError::Thread)?;
            let (commands, inbox) = crossbeam_channel::bounded(COMMAND_CAPACITY);
            let metrics = Arc::new(ThreadMetrics::default());
            let send_socket = if config.batch_sends {
                Some(bind_media_socket(&config)?.0)
            } else {
                None
            };
            let mixer = MixerThread {
                send_socket,
                index,
                commands: inbox,
                events: event_sender.clone(),
                receiver: receiver.commands.clone(),
                waker: receiver.waker.clone(),
                reaper: reaper.clone(),
                metrics: metrics.clone(),
                config: config.clone(),
            };
            let join = std::thread::Builder::new()
                .name(format!("tutti-mix-{index}"))
                .spawn(move || mixer.run())
                .map_err(EngineError::Thread)?;
            threads.push(ThreadHandle {
                commands,
                receiver,
                metrics,
                rooms: AtomicUsize::new(0),
                join: Some(join),
                receiver_join: Some(receiver_join),
            });
        }
        Ok(Self {
            threads,
            rooms: Mutex::new(HashMap::new()),
            events,
            event_sender,
            reaper_join: Some(reaper_join),
            next_token: AtomicUsize::new(1),
            drops: Arc::new(DropCounters::default()),
            closed: Mutex::default(),
            reserved,
            config,
        })
    }

    /// The stream of events (joins, leaves, talking, DTMF, overruns).
    pub fn events(&self) -> &Receiver<EngineEvent> {
        &self.events
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn send(&self, thread: usize, command: Command) -> Result<(), EngineError> {
        self.threads[thread]
            .commands
            .send(command)
            .map_err(|_| EngineError::Stopped)
    }

    /// Sends `command` to the room's thread and waits (at most one tick, normally) until it is
    /// applied, so a snapshot read afterwards shows it.
    fn apply(&self, room: RoomId, command: Command) -> Result<(), EngineError> {
        let thread = self.room_thread(room)?;
        self.send(thread, command)?;
        let (reply, applied) = crossbeam_channel::bounded(1);
        self.send(thread, Command::Barrier { reply })?;
        applied
            .recv_timeout(Duration::from_secs(2))
            .map_err(|_| EngineError::Stopped)
    }

    fn room_thread(&self, room: RoomId) -> Result<usize, EngineError> {
        let rooms = self.rooms.lock().map_err(|_| EngineError::Stopped)?;
        rooms
            .get(&room)
            .map(|h| h.thread)
            .ok_or(EngineError::UnknownRoom(room))
    }

    /// Creates a room on the least loaded mixer thread.
    pub fn create_room(&self, room: RoomId, settings: RoomSettings) -> Result<(), EngineError> {
        let mut rooms = self.rooms.lock().map_err(|_| EngineError::Stopped)?;
        if rooms.contains_key(&room) {
            return Err(EngineError::RoomExists(room));
        }
        let thread = (0..self.threads.len())
            .min_by_key(|&i| self.threads[i].rooms.load(Ordering::Relaxed))
            .unwrap_or(0);
        self.threads[thread].rooms.fetch_add(1, Ordering::Relaxed);
        // Sized here, so the mixer thread never grows it while it publishes.
        let participants = Vec::with_capacity(reserved_participants(&settings));
        let snapshot = Arc::new(Mutex::new(RoomSnapshot {
            locked: settings.locked,
            participants,
            ..RoomSnapshot::default()
        }));
        self.send(
            thread,
            Command::CreateRoom {
                room,
                settings,
                snapshot: snapshot.clone(),
            },
        )?;
        rooms.insert(
            room,
            RoomHandle {
                thread,
                snapshot,
                next_key: AtomicU32::new(1),
            },
        );
        Ok(())
    }

    /// Ends a room: everyone leaves.
    pub fn destroy_room(&self, room: RoomId) -> Result<(), EngineError> {
        let handle = {
            let mut rooms = self.rooms.lock().map_err(|_| EngineError::Stopped)?;
            let handle = rooms.remove(&room).ok_or(EngineError::UnknownRoom(room))?;
            if let (Ok(mut closed), Ok(snapshot)) = (self.closed.lock(), handle.snapshot.lock()) {
                let room = snapshot.packet_totals();
                closed.add(room.packets_in, room.packets_out, room.packets_lost);
            }
            handle
        };
        self.threads[handle.thread]
            .rooms
            .fetch_sub(1, Ordering::Relaxed);
        self.send(handle.thread, Command::DestroyRoom { room })
    }

    /// Joins a plain-RTP participant: binds its port (or takes the one asked for), answers
    /// its offer (or reads its answer to tutti's offer), and puts it in the room once the room
    /// accepts it (not locked, not full). A join on a port asked for that fails leaves the
    /// port reserved.
    pub fn join(&self, room: RoomId, request: JoinRequest) -> Result<Joined, EngineError> {
        let (thread, key) = {
            let rooms = self.rooms.lock().map_err(|_| EngineError::Stopped)?;
            let handle = rooms.get(&room).ok_or(EngineError::UnknownRoom(room))?;
            (
                handle.thread,
                handle.next_key.fetch_add(1, Ordering::Relaxed),
            )
        };
        if let Some((waker, token)) = &request.relay {
            return self.join_relayed(thread, room, key, &request, waker.clone(), *token);
        }
        let (socket, port, offer) = self.join_socket(request.port)?;
        let result = self.join_on(thread, room, key, &request, &socket, port, offer.as_ref());
        if result.is_err() && request.port.is_some() {
            self.reserve(thread, socket, offer);
        }
        result
    }

    /// The socket a join uses: the reserved one of `port` (with the offer made on it), the
    /// port bound exactly, or a fresh port of the range.
    fn join_socket(
        &self,
        port: Option<u16>,
    ) -> Result<(Arc<mio::net::UdpSocket>, u16, Option<OfferConfig>), EngineError> {
        let Some(port) = port else {
            let (socket, port) = bind_media_socket(&self.config)?;
            socket.set_nonblocking(true)?;
            return Ok((Arc::new(mio::net::UdpSocket::from_std(socket)), port, None));
        };
        if let Some(reserved) = self.reserved.take(port) {
            return Ok((reserved.socket, port, reserved.offer));
        }
        let bound = std::net::UdpSocket::bind(SocketAddr::new(self.config.bind_address, port))
            .and_then(|socket| socket.set_nonblocking(true).map(|()| socket))
            .map_err(|source| EngineError::PortUnavailable { port, source })?;
        Ok((Arc::new(mio::net::UdpSocket::from_std(bound)), port, None))
    }

    /// Holds `socket` for a later join, off `thread`'s receive thread.
    fn reserve(
        &self,
        thread: usize,
        socket: Arc<mio::net::UdpSocket>,
        offer: Option<OfferConfig>,
    ) -> u16 {
        // Not registered (a join refused before it was) is fine too.
        let _ = receiver::deregister(&self.threads[thread].receiver.registry, &socket);
        let port = socket.local_addr().map_or(0, |a| a.port());
        self.reserved.insert(port, Reserved::new(socket, offer));
        port
    }

    #[allow(clippy::too_many_arguments)]
    fn join_on(
        &self,
        thread: usize,
        room: RoomId,
        key: ParticipantKey,
        request: &JoinRequest,
        socket: &Arc<mio::net::UdpSocket>,
        port: u16,
        offer: Option<&OfferConfig>,
    ) -> Result<Joined, EngineError> {
        let (negotiated, session_id, session_version) = match offer {
            Some(offer) => (
                accept_answer(&request.offer, offer)?,
                offer.session_id,
                offer.session_version,
            ),
            None => {
                let session_id = random_u64() >> 1;
                let answer = answer_offer(&request.offer, &self.answer_config(port, session_id))?;
                (answer, session_id, session_id)
            }
        };
        let latching = request.latching.unwrap_or(self.config.latching);
        let parts = self.leg_parts(
            negotiated,
            latching,
            request.signalled_source,
            session_id,
            session_version,
        )?;
        let codec = parts.media.codec;
        let answer = parts.media.negotiated.answer.clone();
        let now = Instant::now();
        let (ssrc, rtcp) = new_stream(now);
        let token = mio::Token(self.next_token.fetch_add(1, Ordering::Relaxed));
        let receiver = &self.threads[thread].receiver;
        receiver::register(&receiver.registry, socket, token)?;
        let inbox = Arc::new(Inbox::new(self.drops.clone()));
        let leg = CallLeg::new(
            Transport::Udp(socket.clone()),
            inbox.clone(),
            parts.media,
            parts.decoder,
            parts.encoder,
            rtcp,
            ssrc,
            now,
        );
        let _ = receiver.commands.send(ReceiverCommand::Add(
            token,
            socket.clone(),
            inbox,
            parts.guard,
        ));
        let _ = receiver.waker.wake();
        self.arrive(thread, room, key, leg, request, parts.shared_encoder, token)?;
        Ok(Joined {
            key,
            answer,
            port,
            codec,
            relay: None,
        })
    }

    /// Joins a participant whose packets pass through another endpoint (see
    /// [`crate::relay`]): no port, no receive thread, no source guard (the endpoint proved its
    /// peer).
    fn join_relayed(
        &self,
        thread: usize,
        room: RoomId,
        key: ParticipantKey,
        request: &JoinRequest,
        waker: Arc<dyn RelayWaker>,
        relay_token: u64,
    ) -> Result<Joined, EngineError> {
        let session_id = random_u64() >> 1;
        let mut negotiated = answer_offer(&request.offer, &self.answer_config(9, session_id))?;
        // Nothing is sent to the offer's address: it only has to be a live one of the media
        // address family (an unspecified address would put the call on hold).
        let relayed = SocketAddr::new(loopback_like(self.config.public_address), 9);
        negotiated.remote_rtp = relayed;
        negotiated.remote_rtcp = relayed;
        let parts = self.leg_parts(negotiated, false, None, session_id, session_id)?;
        let codec = parts.media.codec;
        let answer = parts.media.negotiated.answer.clone();
        let now = Instant::now();
        let (ssrc, rtcp) = new_stream(now);
        let inbox = Arc::new(Inbox::new(self.drops.clone()));
        let (port, link) = RelayPort::new(inbox.clone(), waker, relay_token);
        let leg = CallLeg::new(
            Transport::Relay(port),
            inbox,
            parts.media,
            parts.decoder,
            parts.encoder,
            rtcp,
            ssrc,
            now,
        );
        // Never registered with the receive thread: its removal there is a no-op.
        let token = mio::Token(self.next_token.fetch_add(1, Ordering::Relaxed));
        self.arrive(thread, room, key, leg, request, parts.shared_encoder, token)?;
        Ok(Joined {
            key,
            answer,
            port: 0,
            codec,
            relay: Some(link),
        })
    }

    /// Hands a new leg to its room's mixer thread and waits for the room to take it (or
    /// refuse it: locked, full).
    #[allow(clippy::too_many_arguments)]
    fn arrive(
        &self,
        thread: usize,
        room: RoomId,
        key: ParticipantKey,
        leg: CallLeg,
        request: &JoinRequest,
        shared_encoder: Option<SharedEncoder>,
        token: mio::Token,
    ) -> Result<(), EngineError> {
        let (reply, result) = crossbeam_channel::bounded(1);
        self.send(
            thread,
            Command::Join {
                room,
                arrival: Arrival {
                    key,
                    leg: Box::new(leg),
                    participant: DetachedParticipant::new(request.settings),
                    shared_encoder,
                    token,
                },
                reply,
            },
        )?;
        result
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| EngineError::Stopped)?
    }

    /// How tutti answers an offer on `port`.
    fn answer_config(&self, port: u16, session_id: u64) -> AnswerConfig {
        AnswerConfig {
            address: self.config.public_address,
            port,
            preference: self.config.codec_preference.clone(),
            session_id,
            ptime_ms: 20,
        }
    }

    /// Everything a leg needs for `negotiated`, built here, off the mixer thread.
    fn leg_parts(
        &self,
        negotiated: Negotiated,
        latching: bool,
        signalled_source: Option<IpAddr>,
        session_id: u64,
        session_version: u64,
    ) -> Result<LegParts, EngineError> {
        let offered = negotiated.remote_rtp.ip();
        if !offered.is_unspecified() && offered.is_ipv4() != self.config.public_address.is_ipv4() {
            return Err(EngineError::AddressFamily {
                offered,
                media: self.config.public_address,
            });
        }
        let codec = codec_kind(&negotiated.codec.name)
            .ok_or_else(|| EngineError::UnsupportedCodec(negotiated.codec.name.clone()))?;
        let decoder = tutti_codec::decoder_for(codec)?;
        let opus = negotiated.codec.opus_parameters();
        let encoding = self
            .config
            .opus
            .toward_listener(opus.max_average_bitrate, opus.use_inband_fec);
        let encoder = tutti_codec::encoder_for(codec, &encoding)?;
        let guard = Box::new(SourceGuard::new(
            &negotiated,
            latching,
            signalled_source,
            self.config.nat_any_source,
        ));
        Ok(LegParts {
            media: LegMedia {
                negotiated,
                codec,
                encoding,
                latching,
                unproven_send_window: self.config.unproven_send_window,
                session_id,
                session_version,
                signalled_source,
            },
            decoder,
            encoder,
            shared_encoder: tutti_codec::encoder_for(codec, &encoding)
                .ok()
                .map(SharedEncoder::new),
            guard,
        })
    }

    /// Binds a media port, keeps it reserved, and returns tutti's SDP offer on it with the
    /// port: a join with [`JoinRequest::port`] set to it and the remote side's answer as
    /// [`JoinRequest::offer`] starts the call. Unused, the port is closed by
    /// [`Engine::release_port`] or after [`EngineConfig::reserved_port_ttl`].
    pub fn offer(&self) -> Result<(String, u16), EngineError> {
        let (socket, port) = bind_media_socket(&self.config)?;
        socket.set_nonblocking(true)?;
        let session_id = random_u64() >> 1;
        let config = OfferConfig {
            address: self.config.public_address,
            port,
            preference: self.config.codec_preference.clone(),
            session_id,
            session_version: session_id,
            ptime_ms: 20,
        };
        let offer = make_offer(&config);
        let socket = Arc::new(mio::net::UdpSocket::from_std(socket));
        self.reserved
            .insert(port, Reserved::new(socket, Some(config)));
        Ok((offer, port))
    }

    /// Closes a reserved port nobody joined on; returns whether it was reserved.
    pub fn release_port(&self, port: u16) -> bool {
        self.reserved.release(port)
    }

    /// Takes a participant out of its room as [`Engine::leave`] does (its
    /// [`EngineEvent::Left`] with [`crate::LeaveReason::Kicked`], the exit tone) but keeps its
    /// socket reserved and returns the port: a join with [`JoinRequest::port`] set to it, in
    /// any room, goes on receiving what the caller sends there.
    pub fn detach(&self, room: RoomId, key: ParticipantKey) -> Result<u16, EngineError> {
        let thread = self.room_thread(room)?;
        let (reply, detached) = crossbeam_channel::bounded(1);
        self.send(thread, Command::Detach { room, key, reply })?;
        let socket = detached
            .recv_timeout(Duration::from_secs(2))
            .map_err(|_| EngineError::Stopped)?
            .ok_or(EngineError::UnknownParticipant {
                room,
                participant: key,
            })?;
        Ok(self.reserve(thread, socket, None))
    }

    /// Removes a participant (kick or hang-up).
    pub fn leave(&self, room: RoomId, key: ParticipantKey) -> Result<(), EngineError> {
        self.apply(room, Command::Leave { room, key })
    }

    /// Removes a participant as [`Engine::leave`] does, without waiting for its mixer thread
    /// to have done it: for a thread that must not wait on ticks, such as the WebRTC
    /// endpoint's IO thread, which serves every browser. The `Left` event follows as usual.
    pub fn leave_soon(&self, room: RoomId, key: ParticipantKey) -> Result<(), EngineError> {
        let thread = self.room_thread(room)?;
        self.send(thread, Command::Leave { room, key })
    }

    /// Removes several participants in one command, applied between two ticks (a bulk kick
    /// waits for the mixer once, not once per participant). Each gets its `Left` event; the
    /// room's exit tone plays once. Keys not in the room are skipped.
    pub fn leave_many(&self, room: RoomId, keys: &[ParticipantKey]) -> Result<(), EngineError> {
        if keys.is_empty() {
            self.room_thread(room)?;
            return Ok(());
        }
        self.apply(
            room,
            Command::LeaveMany {
                room,
                keys: keys.to_vec(),
            },
        )
    }

    /// Says whether `listener` hears `speaker`, like FreeSWITCH's `conference relate`:
    /// `false` is `relate listener speaker nohear` (and `relate speaker listener nospeak`),
    /// `true` clears it. Returns once the mixer has applied it; the relation ends when either
    /// participant leaves. See [`tutti_mix::Room::set_hears`].
    pub fn relate(
        &self,
        room: RoomId,
        listener: ParticipantKey,
        speaker: ParticipantKey,
        hears: bool,
    ) -> Result<(), EngineError> {
        let thread = self.room_thread(room)?;
        let (reply, result) = crossbeam_channel::bounded(1);
        self.send(
            thread,
            Command::Relate {
                room,
                listener,
                speaker,
                hears,
                reply,
            },
        )?;
        result
            .recv_timeout(Duration::from_secs(2))
            .map_err(|_| EngineError::Stopped)?
    }

    /// Changes a running room's settings (a conference document changed): mixing parameters,
    /// maximum participants, entry and exit tones apply from the next tick. The lock is left
    /// as it is (`settings.locked` is ignored): it changes with [`Engine::set_locked`].
    /// Returns once the mixer has applied them.
    pub fn set_room_settings(
        &self,
        room: RoomId,
        settings: RoomSettings,
    ) -> Result<(), EngineError> {
        self.apply(
            room,
            Command::SetRoomSettings {
                room,
                settings: Box::new(settings),
            },
        )
    }

    /// Changes one participant.
    pub fn update(
        &self,
        room: RoomId,
        key: ParticipantKey,
        change: ParticipantChange,
    ) -> Result<(), EngineError> {
        self.apply(
            room,
            Command::Update {
                room,
                key: Some(key),
                change,
                skip_moderators: false,
            },
        )
    }

    /// Changes every participant of a room, or every one but the moderators.
    pub fn update_all(
        &self,
        room: RoomId,
        change: ParticipantChange,
        skip_moderators: bool,
    ) -> Result<(), EngineError> {
        self.apply(
            room,
            Command::Update {
                room,
                key: None,
                change,
                skip_moderators,
            },
        )
    }

    /// Plays a source (built off the mixer thread) to the room or to one participant.
    pub fn play(
        &self,
        room: RoomId,
        target: Option<ParticipantKey>,
        source: Box<dyn tutti_mix::AudioSource>,
    ) -> Result<(), EngineError> {
        let thread = self.room_thread(room)?;
        self.send(
            thread,
            Command::Play {
                room,
                target,
                source,
            },
        )
    }

    /// Plays a tone string to the room or to one participant. Returns how long it plays
    /// (`Duration::MAX` for a tone that repeats until stopped), so prompts can be sequenced.
    pub fn play_tone(
        &self,
        room: RoomId,
        target: Option<ParticipantKey>,
        tone: &str,
    ) -> Result<Duration, EngineError> {
        let program = ToneProgram::parse(tone)?;
        let duration = program.duration().unwrap_or(Duration::MAX);
        self.play(room, target, Box::new(ToneGenerator::new(program)))?;
        Ok(duration)
    }

    /// Plays a prompt file to the room or to one participant, and returns the clip's duration
    /// so prompts can be sequenced. WAV (any rate and sample format), Ogg Opus and Ogg Vorbis
    /// are recognised by content (see [`wav::read_prompt`]). The file is decoded here, off the
    /// mixer thread.
    pub fn play_file(
        &self,
        room: RoomId,
        target: Option<ParticipantKey>,
        path: &std::path::Path,
    ) -> Result<Duration, EngineError> {
        let samples = wav::read_prompt(path)?;
        let player = ClipPlayer::new(samples);
        let duration = player.duration();
        self.play(room, target, Box::new(player))?;
        Ok(duration)
    }

    /// The same as [`Engine::play_file`], under the name it had when prompts were WAV only.
    pub fn play_wav(
        &self,
        room: RoomId,
        target: Option<ParticipantKey>,
        path: &std::path::Path,
    ) -> Result<Duration, EngineError> {
        self.play_file(room, target, path)
    }

    /// Locks or unlocks a room: a locked room refuses joins.
    pub fn set_locked(&self, room: RoomId, locked: bool) -> Result<(), EngineError> {
        self.apply(room, Command::SetLocked { room, locked })
    }

    /// Records the room mix to a WAV file, for at most `max` when given.
    pub fn start_recording(
        &self,
        room: RoomId,
        path: PathBuf,
        max: Option<Duration>,
    ) -> Result<(), EngineError> {
        let thread = self.room_thread(room)?;
        let recorder = Recorder::start(room, path, max, self.event_sender.clone())?;
        self.send(thread, Command::StartRecording { room, recorder })
    }

    /// Stops a recording; the file is closed and [`EngineEvent::RecordingFinished`] follows.
    pub fn stop_recording(&self, room: RoomId) -> Result<(), EngineError> {
        self.send(self.room_thread(room)?, Command::StopRecording { room })
    }

    /// The room's realtime state as of its last snapshot (at most 100 ms old).
    pub fn snapshot(&self, room: RoomId) -> Option<RoomSnapshot> {
        let rooms = self.rooms.lock().ok()?;
        let handle = rooms.get(&room)?;
        let snapshot = handle.snapshot.lock().ok()?;
        Some(snapshot.clone())
    }

    /// Counters and histograms of every mixer thread.
    pub fn metrics(&self) -> EngineMetrics {
        let mut metrics = EngineMetrics::default();
        for thread in &self.threads {
            let m = &thread.metrics;
            metrics.rooms.push(m.rooms.load(Ordering::Relaxed));
            metrics
                .participants
                .push(m.participants.load(Ordering::Relaxed));
            metrics.tick_duration.push(m.tick_duration.snapshot());
            metrics.lateness.push(m.lateness.snapshot());
            metrics.overruns += m.overruns.load(Ordering::Relaxed);
            metrics.dropped_events += m.dropped_events.load(Ordering::Relaxed);
            metrics.decoded += m.decoded.load(Ordering::Relaxed);
            metrics.decode_skipped += m.decode_skipped.load(Ordering::Relaxed);
            metrics.batched_sends += m.batched_sends.load(Ordering::Relaxed);
            metrics.send_calls += m.send_calls.load(Ordering::Relaxed);
            metrics.batched_send_failures += m.batched_send_failures.load(Ordering::Relaxed);
            metrics.raised_priority_threads +=
                usize::from(m.priority_raised.load(Ordering::Relaxed));
        }
        metrics.reserved_ports = self.reserved.len();
        metrics.drops = DropReason::ALL
            .iter()
            .map(|&reason| (reason, self.drops.get(reason)))
            .collect();
        if let Ok(rooms) = self.rooms.lock() {
            let mut totals = self.closed.lock().map(|c| *c).unwrap_or_default();
            for (&id, handle) in rooms.iter() {
                // The mixer only ever try-locks snapshots, so reading here never stalls a tick.
                let Ok(snapshot) = handle.snapshot.lock() else {
                    continue;
                };
                let room = snapshot.packet_totals();
                totals.add(room.packets_in, room.packets_out, room.packets_lost);
                metrics
                    .room_participants
                    .push((id, snapshot.participants.len()));
            }
            metrics.packets_in = totals.packets_in;
            metrics.packets_out = totals.packets_out;
            metrics.packets_lost = totals.packets_lost;
        }
        metrics
    }

    /// Stops every thread: participants get their leave events, recordings are closed.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        for thread in &self.threads {
            let _ = thread.commands.send(Command::Stop);
        }
        for thread in &mut self.threads {
            if let Some(join) = thread.join.take() {
                let _ = join.join();
            }
            if let Some(join) = thread.receiver_join.take() {
                let _ = join.join();
            }
        }
        if let Some(join) = self.reaper_join.take() {
            let _ = join.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_threads();
    }
}
