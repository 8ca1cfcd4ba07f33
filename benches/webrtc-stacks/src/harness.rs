//! What both stacks share: phases, counters, CPU and heap probes, socket waiting.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::Report;

/// One 20 ms Opus frame's worth of bytes.
pub const PAYLOAD: [u8; 100] = [0x5a; 100];
/// Packet interval: 50 packets per second.
pub const TICK: Duration = Duration::from_millis(20);

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Peers are being offered, answered and connected.
    Connect,
    /// Both sides send audio.
    Media,
    /// Sending stopped; packets in flight still count.
    Drain,
    /// Threads exit.
    Stop,
}

/// Counters both threads update.
#[derive(Default)]
pub struct Shared {
    phase: AtomicU8,
    server_connected: AtomicUsize,
    client_connected: AtomicUsize,
    server_sent: AtomicU64,
    server_received: AtomicU64,
    client_sent: AtomicU64,
    client_received: AtomicU64,
}

impl Shared {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Connect,
            1 => Phase::Media,
            2 => Phase::Drain,
            _ => Phase::Stop,
        }
    }

    fn set(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Release);
    }

    /// Counts a peer that connected and media packets that came in.
    pub fn count(&self, server: bool, became_connected: bool, media: u64) {
        if became_connected {
            let c = if server {
                &self.server_connected
            } else {
                &self.client_connected
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
        if media > 0 {
            let c = if server {
                &self.server_received
            } else {
                &self.client_received
            };
            c.fetch_add(media, Ordering::Relaxed);
        }
    }

    /// Counts media packets handed to the stack.
    pub fn sent(&self, server: bool, n: u64) {
        let c = if server {
            &self.server_sent
        } else {
            &self.client_sent
        };
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Server thread CPU and heap at the first sight of each phase.
pub struct Probe {
    start: (Duration, i64),
    at: [Option<(Duration, i64)>; 4],
}

impl Probe {
    /// Samples the calling (server) thread now.
    pub fn start() -> Self {
        Probe {
            start: (crate::thread_cpu(), crate::server_heap()),
            at: [None; 4],
        }
    }

    /// Samples once per phase.
    pub fn observe(&mut self, p: Phase) {
        let slot = &mut self.at[p as usize];
        if slot.is_none() {
            *slot = Some((crate::thread_cpu(), crate::server_heap()));
        }
    }

    /// Completes a report with the server side's figures.
    pub fn fill(&self, mut r: Report) -> Report {
        let media = self.at[Phase::Media as usize].unwrap_or(self.start);
        let drain = self.at[Phase::Drain as usize]
            .or(self.at[Phase::Stop as usize])
            .unwrap_or(media);
        r.connect_server_cpu_ms = (media.0 - self.start.0).as_secs_f64() * 1000.0;
        r.media_server_cpu_ms = (drain.0.saturating_sub(media.0)).as_secs_f64() * 1000.0;
        r.server_heap_connect_bytes = media.1 - self.start.1;
        r.server_heap_end_bytes = drain.1 - self.start.1;
        r
    }
}

/// Bytes of receive buffer asked for on the server socket: every client sends its packet in
/// the same 20 ms tick, so at hundreds of peers the bursts outgrow the kernel default.
const SERVER_RCVBUF: libc::c_int = 8 << 20;

/// Binds the server's one UDP socket on loopback, non-blocking, with a large receive buffer
/// (`SO_RCVBUFFORCE` when allowed, else `SO_RCVBUF` up to `net.core.rmem_max`).
#[allow(unsafe_code)]
pub fn server_socket() -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind server socket");
    sock.set_nonblocking(true).expect("nonblocking");
    let size = SERVER_RCVBUF;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: `size` outlives the call and its length is passed with it.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            break;
        }
    }
    sock
}

/// Waits up to `timeout` for any socket to become readable; returns the readable indices.
#[allow(unsafe_code)]
pub fn poll_fds(socks: &[&UdpSocket], timeout: Duration) -> Vec<usize> {
    let mut fds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(1000) as libc::c_int;
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return Vec::new();
    }
    fds.iter()
        .enumerate()
        .filter(|(_, f)| f.revents & libc::POLLIN != 0)
        .map(|(i, _)| i)
        .collect()
}

/// Drives the phases from the main thread and collects what both sides counted.
pub fn orchestrate(
    shared: &Shared,
    n: usize,
    twcc: bool,
    media: Duration,
    t0: Instant,
    rss0: u64,
) -> Report {
    let deadline = t0 + Duration::from_secs(60);
    let all = || {
        shared.server_connected.load(Ordering::Relaxed) >= n
            && shared.client_connected.load(Ordering::Relaxed) >= n
    };
    while !all() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let connect_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let connected = shared
        .server_connected
        .load(Ordering::Relaxed)
        .min(shared.client_connected.load(Ordering::Relaxed));
    let rss1 = crate::rss_kib();
    shared.set(Phase::Media);
    let m0 = Instant::now();
    std::thread::sleep(media);
    shared.set(Phase::Drain);
    let media_secs = m0.elapsed().as_secs_f64();
    let drain_deadline = Instant::now() + Duration::from_secs(1);
    let drained = || {
        shared.server_received.load(Ordering::Relaxed) >= shared.client_sent.load(Ordering::Relaxed)
            && shared.client_received.load(Ordering::Relaxed)
                >= shared.server_sent.load(Ordering::Relaxed)
    };
    while !drained() && Instant::now() < drain_deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    shared.set(Phase::Stop);
    Report {
        peers: n,
        connected,
        connect_ms,
        media_secs,
        server_sent: shared.server_sent.load(Ordering::Relaxed),
        server_received: shared.server_received.load(Ordering::Relaxed),
        client_sent: shared.client_sent.load(Ordering::Relaxed),
        client_received: shared.client_received.load(Ordering::Relaxed),
        rss_connect_kib: rss1 as i64 - rss0 as i64,
        twcc,
        ..Report::default()
    }
}

/// With `WEBRTC_STACKS_SDP` set, prints the first peer's offer and answer to stderr (to check
/// what was negotiated, e.g. that no transport-wide sequence number is).
pub fn show_sdp(first: bool, offer: &str, answer: &str) {
    if first && std::env::var_os("WEBRTC_STACKS_SDP").is_some() {
        eprintln!("--- offer\n{offer}--- answer\n{answer}");
    }
}
