//! Measures what a WebRTC audio peer costs a server, for two sans-IO stacks.
//!
//! One process: a server thread (ICE-lite, answerer, DTLS server) on one UDP socket and a
//! client thread with N full-ICE offering peers, each on its own loopback socket. The server
//! thread's CPU is read with `CLOCK_THREAD_CPUTIME_ID`; its heap is counted by a global
//! allocator that attributes each allocation and free to the thread that makes it.
//!
//! Usage: `webrtc-stacks <str0m|rtc> <peers> [--twcc] [--shared-cert] [--seconds S]`; prints
//! one JSON line. `--shared-cert` (str0m) gives every server peer the same DTLS certificate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

mod harness;
mod rtc_stack;
mod str0m_stack;

/// Counts live heap bytes allocated by threads marked as server threads.
struct CountingAlloc;

static SERVER_HEAP: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static IS_SERVER: Cell<bool> = const { Cell::new(false) };
}

fn account(delta: i64) {
    // `try_with`: the thread-local may already be gone while a thread exits.
    if IS_SERVER.try_with(Cell::get).unwrap_or(false) {
        SERVER_HEAP.fetch_add(delta, Ordering::Relaxed);
    }
}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as i64);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as i64));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as i64 - layout.size() as i64);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Marks the calling thread as the server: its allocations count as server heap.
pub fn mark_server_thread() {
    IS_SERVER.with(|s| s.set(true));
}

/// Runs `f` without counting its allocations and frees as the server's: for buffers that
/// cross between the server and client threads (SDP strings).
pub fn not_server<T>(f: impl FnOnce() -> T) -> T {
    let was = IS_SERVER.with(|s| s.replace(false));
    let out = f();
    IS_SERVER.with(|s| s.set(was));
    out
}

/// Live heap bytes held by the server thread's allocations.
pub fn server_heap() -> i64 {
    SERVER_HEAP.load(Ordering::Relaxed)
}

/// CPU time consumed so far by the calling thread.
#[allow(unsafe_code)]
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Resident set size of the process in KiB (VmRSS).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What one run measured.
#[derive(Debug, Default)]
pub struct Report {
    /// Peers asked for.
    pub peers: usize,
    /// Peers connected on both sides before the deadline.
    pub connected: usize,
    /// Wall time from the first offer to the last peer connected.
    pub connect_ms: f64,
    /// Server thread CPU spent while connecting.
    pub connect_server_cpu_ms: f64,
    /// Length of the media phase.
    pub media_secs: f64,
    /// Server thread CPU during the media phase.
    pub media_server_cpu_ms: f64,
    /// RTP packets the server handed to the stack / clients received.
    pub server_sent: u64,
    /// RTP packets clients received.
    pub client_received: u64,
    /// RTP packets clients handed to the stack.
    pub client_sent: u64,
    /// RTP packets the server received.
    pub server_received: u64,
    /// Server heap growth across connecting.
    pub server_heap_connect_bytes: i64,
    /// Server heap growth at the end of the media phase (from before connecting).
    pub server_heap_end_bytes: i64,
    /// Process RSS growth across connecting (both sides).
    pub rss_connect_kib: i64,
    /// Whether transport-wide congestion control was negotiated.
    pub twcc: bool,
}

impl Report {
    fn json(&self, stack: &str) -> serde_json::Value {
        let n = self.peers.max(1) as f64;
        let media_cpu_us = self.media_server_cpu_ms * 1000.0;
        let pkts = (self.server_sent + self.server_received).max(1) as f64;
        serde_json::json!({
            "stack": stack,
            "twcc": self.twcc,
            "peers": self.peers,
            "connected": self.connected,
            "connect_ms": round(self.connect_ms),
            "connect_server_cpu_ms": round(self.connect_server_cpu_ms),
            "media_secs": round(self.media_secs),
            "server_cpu_pct_of_core": round(self.media_server_cpu_ms / 10.0 / self.media_secs),
            "server_cpu_us_per_packet": round(media_cpu_us / pkts),
            "server_cpu_pct_per_peer": round(self.media_server_cpu_ms / 10.0 / self.media_secs / n),
            "server_sent": self.server_sent,
            "client_received": self.client_received,
            "client_sent": self.client_sent,
            "server_received": self.server_received,
            "lost_to_clients": self.server_sent.saturating_sub(self.client_received),
            "lost_to_server": self.client_sent.saturating_sub(self.server_received),
            "server_heap_kib_per_peer_connected": round(self.server_heap_connect_bytes as f64 / 1024.0 / n),
            "server_heap_kib_per_peer_after_media": round(self.server_heap_end_bytes as f64 / 1024.0 / n),
            "process_rss_kib_per_peer_both_sides": round(self.rss_connect_kib as f64 / n),
        })
    }
}

fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let stack = args.get(1).map(String::as_str).unwrap_or("str0m");
    let peers: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(50);
    let twcc = args.iter().any(|a| a == "--twcc");
    let shared_cert = args.iter().any(|a| a == "--shared-cert");
    let secs: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let report = match stack {
        "str0m" => str0m_stack::run(peers, twcc, shared_cert, Duration::from_secs(secs)),
        "rtc" => rtc_stack::run(peers, twcc, Duration::from_secs(secs)),
        other => {
            eprintln!("unknown stack {other}");
            std::process::exit(2);
        }
    };
    #[allow(clippy::print_stdout)]
    {
        println!("{}", report.json(stack));
    }
}
