//! A mixer thread allocates and frees nothing while its rooms run: not per packet, and not when
//! participants join, leave, time out, are renegotiated (hold, a codec change) or detached and
//! joined again on their port, when relayed (WebRTC) legs are written to, or when prompts and
//! entry/exit tones start and finish. A counting global allocator watches the mixer threads
//! only (the API side prepares legs, and a reaper thread frees what the mixer hands back).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{join, talk, wait_for, Caller};
use tutti_engine::{
    Engine, EngineConfig, EngineEvent, JoinRequest, LeaveReason, RoomId, RoomSettings, RoomSound,
};
use tutti_mix::{ParticipantSettings, ToneProgram};

struct CountingAllocator;

// Whether this thread is a mixer thread: unknown (0), no (1), yes (2).
thread_local! {
    static MIXER: Cell<u8> = const { Cell::new(0) };
}

static COUNTING: AtomicBool = AtomicBool::new(false);
static MIXER_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Size of the last allocation a mixer thread made, for the failure message.
static LAST_SIZE: AtomicU64 = AtomicU64::new(0);

fn note(size: usize) {
    if !COUNTING.load(Ordering::Relaxed) {
        return;
    }
    let _ = MIXER.try_with(|mixer| {
        if mixer.get() == 0 {
            // Marked first: looking the name up must not count (nor recurse).
            mixer.set(1);
            let named = std::thread::current()
                .name()
                .is_some_and(|name| name.starts_with("tutti-mix-"));
            mixer.set(if named { 2 } else { 1 });
        }
        if mixer.get() == 2 {
            MIXER_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LAST_SIZE.store(size as u64, Ordering::Relaxed);
        }
    });
}

// SAFETY: every method forwards to the system allocator unchanged; counting touches only a
// const-initialised thread-local and atomics, which never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// A relay endpoint with nothing to wake.
#[derive(Debug)]
struct NoWake;

impl tutti_engine::RelayWaker for NoWake {
    fn wake(&self, _token: u64) {}
}

fn left(engine: &Engine, key: u32, why: LeaveReason) {
    wait_for(
        engine,
        |e| matches!(e, EngineEvent::Left { participant, reason, .. } if *participant == key && *reason == why),
    );
}

#[test]
fn joins_leaves_timeouts_prompts_and_tones_allocate_nothing_on_the_mixer_thread() {
    let engine = Engine::start(EngineConfig {
        mixer_threads: 1,
        ports: 43000..=43999,
        rtp_timeout: Duration::from_millis(400),
        ..Default::default()
    })
    .unwrap();
    let room = RoomId(1);
    let tone = |spec: &str| Some(RoomSound::Tone(ToneProgram::parse(spec).unwrap()));
    engine
        .create_room(
            room,
            RoomSettings {
                entry_sound: tone("%(100,0,600)"),
                exit_sound: tone("%(100,0,400)"),
                ..Default::default()
            },
        )
        .unwrap();
    let mut callers: Vec<Caller> = (0..8)
        .map(|i| Caller::new(300.0 + 100.0 * i as f64))
        .collect();
    let settings = ParticipantSettings {
        energy_level: 0.0,
        ..Default::default()
    };
    let mut keys = Vec::new();
    // Warm up: the first participants, a tick's lazy first uses, an entry tone's first play.
    for caller in callers.iter_mut().take(3) {
        keys.push(join(&engine, room, caller, settings));
    }
    talk(&mut callers.iter_mut().take(3).collect::<Vec<_>>(), 0.6);

    COUNTING.store(true, Ordering::SeqCst);
    // Joins (each with its entry tone), media both ways.
    for caller in callers.iter_mut().skip(3) {
        keys.push(join(&engine, room, caller, settings));
    }
    // A relayed listener (a WebRTC browser's leg): the mixer writes its packets into the link.
    let relayed = engine
        .join(
            room,
            JoinRequest {
                offer: "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=recvonly\r\n".into(),
                settings,
                latching: None,
                signalled_source: None,
                port: None,
                relay: Some((std::sync::Arc::new(NoWake), 7)),
            },
        )
        .unwrap();
    talk(&mut callers.iter_mut().collect::<Vec<_>>(), 0.5);
    let mut relayed_packets = 0;
    relayed
        .relay
        .as_ref()
        .unwrap()
        .take(|_| relayed_packets += 1);
    assert!(
        relayed_packets > 10,
        "the relayed listener got {relayed_packets} packets"
    );
    // A prompt starts and finishes.
    engine.play_tone(room, None, "%(200,0,440)").unwrap();
    engine
        .play_tone(room, Some(keys[0]), "%(100,0,880)")
        .unwrap();
    talk(&mut callers.iter_mut().collect::<Vec<_>>(), 0.4);
    // Signalling while media flows: renegotiations (hold, a codec change and back, each leg
    // built off the mixer thread), and a participant detached keeping its port and joined
    // again on it.
    let port = callers[3].socket.local_addr().unwrap().port();
    let offer = |formats: &str, direction: &str| {
        format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {formats}\r\na={direction}\r\n")
    };
    let rejoin_offer = callers[4].offer();
    let (renegotiated, detached) = (keys[3], keys[4]);
    keys[4] = std::thread::scope(|scope| {
        let signalling = scope.spawn(|| {
            for (formats, direction) in [("0", "sendonly"), ("9", "sendrecv"), ("0", "sendrecv")] {
                engine
                    .renegotiate(room, renegotiated, &offer(formats, direction))
                    .unwrap();
            }
            let port = engine.detach(room, detached).unwrap();
            left(&engine, detached, LeaveReason::Kicked);
            let request = JoinRequest {
                offer: rejoin_offer,
                settings,
                latching: None,
                signalled_source: None,
                port: Some(port),
                relay: None,
            };
            engine.join(room, request).unwrap().key
        });
        while !signalling.is_finished() {
            talk(&mut callers.iter_mut().collect::<Vec<_>>(), 0.1);
        }
        signalling.join().unwrap()
    });
    talk(&mut callers.iter_mut().collect::<Vec<_>>(), 0.3);
    // Leaves, one and several (exit tones).
    engine.leave(room, keys[7]).unwrap();
    engine
        .leave_many(room, &[keys[6], keys[5], relayed.key])
        .unwrap();
    left(&engine, keys[5], LeaveReason::Kicked);
    assert!(relayed.relay.as_ref().unwrap().is_closed());
    // A caller who stops sending times out.
    let (quiet, talking) = callers.split_at_mut(1);
    let _ = quiet;
    talk(&mut talking.iter_mut().take(4).collect::<Vec<_>>(), 0.8);
    left(&engine, keys[0], LeaveReason::RtpTimeout);
    talk(&mut talking.iter_mut().take(4).collect::<Vec<_>>(), 0.3);
    COUNTING.store(false, Ordering::SeqCst);

    let heard = callers[1].level(400.0, 0.3) + callers[2].level(300.0, 0.3);
    assert!(heard > 0.0, "the room kept mixing");
    assert_eq!(
        MIXER_ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "the mixer thread allocated or freed (last size {} bytes)",
        LAST_SIZE.load(Ordering::SeqCst)
    );
}
