//! The endpoint's public face: start, join, patch, metrics.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use str0m::config::DtlsCert;
use tutti_engine::tutti_mix::ParticipantSettings;
use tutti_engine::{Engine, JoinRequest, ParticipantKey, RelayWaker, RoomId};

use crate::io::{Command, IoThread, NewPeer, Wakeup};
use crate::metrics::Counters;
use crate::offer;
use crate::{WebRtcConfig, WebRtcError, WebRtcMetrics};

/// How long a new peer has to complete ICE and DTLS.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a connected peer may stay ICE-disconnected before it leaves its room.
pub const DISCONNECTED_TIMEOUT: Duration = Duration::from_secs(5);
/// The socket receive buffer asked for (bursts of many peers' packets between two polls).
const RECEIVE_BUFFER: usize = 8 << 20;

/// A browser that joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebRtcJoined {
    /// Its key in the room.
    pub participant: ParticipantKey,
    /// The SDP answer for the browser.
    pub answer: String,
}

/// The WebRTC endpoint: the UDP socket and the one IO thread driving every peer.
#[derive(Debug)]
pub struct WebRtcEndpoint {
    engine: Arc<Engine>,
    candidate: SocketAddr,
    /// What browsers are asked to send Opus at (`[webrtc] browser_bitrate`).
    browser_bitrate: u32,
    cert: DtlsCert,
    commands: Sender<Command>,
    wakeup: Arc<Wakeup>,
    counters: Arc<Counters>,
    next_token: AtomicU64,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebRtcEndpoint {
    /// Opens the port, makes the DTLS certificate every peer shares and starts the IO thread.
    /// `candidate_ip` is the address browsers are told to reach (the host candidate).
    pub fn start(
        config: &WebRtcConfig,
        candidate_ip: IpAddr,
        engine: Arc<Engine>,
    ) -> Result<Self, WebRtcError> {
        let socket =
            mio::net::UdpSocket::bind(config.listen).map_err(|source| WebRtcError::Bind {
                addr: config.listen,
                source,
            })?;
        enlarge_receive_buffer(&socket);
        let local = socket.local_addr().map_err(|source| WebRtcError::Bind {
            addr: config.listen,
            source,
        })?;
        let cert = offer::certificate()?;
        let poll = mio::Poll::new().map_err(|e| WebRtcError::Stopped(e.to_string()))?;
        let waker = mio::Waker::new(poll.registry(), crate::io::WAKE)
            .map_err(|e| WebRtcError::Stopped(e.to_string()))?;
        let wakeup = Arc::new(Wakeup::new(waker));
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (commands, receiver): (Sender<Command>, Receiver<Command>) =
            crossbeam_channel::unbounded();
        let io = IoThread::new(
            poll,
            socket,
            receiver,
            wakeup.clone(),
            counters.clone(),
            engine.clone(),
            stop.clone(),
        )
        .map_err(|e| WebRtcError::Stopped(e.to_string()))?;
        let thread = std::thread::Builder::new()
            .name("tutti-webrtc".into())
            .spawn(move || io.run())
            .map_err(|e| WebRtcError::Stopped(e.to_string()))?;
        Ok(Self {
            engine,
            candidate: SocketAddr::new(candidate_ip, local.port()),
            browser_bitrate: config.browser_bitrate,
            cert,
            commands,
            wakeup,
            counters,
            next_token: AtomicU64::new(1),
            stop,
            thread: Some(thread),
        })
    }

    /// The UDP port every peer uses.
    pub fn local_port(&self) -> u16 {
        self.candidate.port()
    }

    /// Whether an SDP offer is a WebRTC one (an audio m-line with `UDP/TLS/RTP/SAVPF`).
    pub fn is_webrtc_offer(sdp: &str) -> bool {
        offer::is_webrtc_offer(sdp)
    }

    /// Accepts a browser's offer into a room: builds its peer (ICE-lite, the host candidate,
    /// Opus only, audio level and `mid` extensions), joins the engine with a relay leg and
    /// returns the SDP answer. A `recvonly` offer (WHEP) joins listen-only.
    pub fn join(
        &self,
        room: RoomId,
        offer: &str,
        settings: ParticipantSettings,
    ) -> Result<WebRtcJoined, WebRtcError> {
        let summary = offer::parse_offer(offer)?;
        let audio_level_id = summary.audio_level_id.unwrap_or(1);
        let engine_offer = offer::engine_offer(&summary, audio_level_id);
        let mid = summary.mid.as_deref().map(Into::into);
        let remote_creds = summary.ice_creds.clone();
        let opus_pt = summary.opus_pt;
        let (rtc, answer) = offer::accept(summary, audio_level_id, &self.cert, self.candidate)?;
        let answer = offer::with_sending_bitrate(&answer, opus_pt, self.browser_bitrate);
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let waker: Arc<dyn RelayWaker> = self.wakeup.clone();
        let joined = self.engine.join(
            room,
            JoinRequest {
                offer: engine_offer,
                settings,
                latching: None,
                signalled_source: None,
                port: None,
                relay: Some((waker, token)),
            },
        )?;
        let Some(link) = joined.relay else {
            let _ = self.engine.leave(room, joined.key);
            return Err(WebRtcError::Stopped(
                "the engine gave no relay link for a relay join".into(),
            ));
        };
        let peer = NewPeer {
            token,
            room,
            key: joined.key,
            rtc,
            link,
            mid,
            audio_level_id,
            candidate: self.candidate,
            remote_creds,
        };
        // Counted here, so the gauge includes the peer as soon as the answer is given.
        self.counters.peers.fetch_add(1, Ordering::Relaxed);
        if self.commands.send(Command::Add(Box::new(peer))).is_err() {
            self.counters.peers.fetch_sub(1, Ordering::Relaxed);
            let _ = self.engine.leave(room, joined.key);
            return Err(WebRtcError::Stopped("the IO thread has stopped".into()));
        }
        self.wakeup.wake_io();
        Ok(WebRtcJoined {
            participant: joined.key,
            answer,
        })
    }

    /// Trickle ICE / ICE restart from a WHIP PATCH (`application/trickle-ice-sdpfrag`): adds
    /// the candidates; when the fragment carries new ice-ufrag/ice-pwd, restarts ICE and
    /// returns the answer fragment (`Some`), else `None`.
    pub fn patch(
        &self,
        room: RoomId,
        participant: ParticipantKey,
        sdpfrag: &str,
    ) -> Result<Option<String>, WebRtcError> {
        let fragment = offer::parse_fragment(sdpfrag)?;
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.commands
            .send(Command::Patch {
                room,
                participant,
                fragment,
                reply,
            })
            .map_err(|_| WebRtcError::Stopped("the IO thread has stopped".into()))?;
        self.wakeup.wake_io();
        answer
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| WebRtcError::Stopped("the IO thread did not answer".into()))?
    }

    /// The endpoint's counters.
    pub fn metrics(&self) -> WebRtcMetrics {
        self.counters.snapshot()
    }

    /// Stores the counters with the `metrics` macros (`tutti_webrtc_*`), in the recorder in
    /// force.
    pub fn record_metrics(&self) {
        crate::metrics::record(&self.metrics());
    }
}

impl Drop for WebRtcEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.wakeup.wake_io();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Asks for an 8 MiB receive buffer: `SO_RCVBUFFORCE` when the process may (CAP_NET_ADMIN),
/// else `SO_RCVBUF`, which the kernel caps at `net.core.rmem_max`.
fn enlarge_receive_buffer(socket: &mio::net::UdpSocket) {
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(socket, sockopt::RcvBufForce, &RECEIVE_BUFFER).is_err() {
        if let Err(e) = setsockopt(socket, sockopt::RcvBuf, &RECEIVE_BUFFER) {
            tracing::warn!("cannot enlarge the WebRTC socket's receive buffer: {e}");
        }
    }
}
