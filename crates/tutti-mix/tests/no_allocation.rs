//! A tick never allocates, and no input makes it panic. A counting global allocator proves the
//! first; rooms of every shape with hostile samples probe the second.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tutti_mix::{ParticipantSettings, Room, RoomConfig, SourceTarget, ToneGenerator, ToneProgram};

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every method forwards to the system allocator unchanged; counting touches only
// const-initialised thread-locals, which never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations and frees made by `f` on this thread.
fn allocations_during(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(|n| n.get())
}

const HOSTILE: [f32; 8] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::MAX,
    f32::MIN,
    1e-45,
    -0.0,
    3.0,
];

#[test]
fn ticks_never_allocate_whatever_the_room_holds() {
    let mut room = Room::new(RoomConfig {
        max_contributors: 5,
        ..Default::default()
    });
    let mut ids = Vec::new();
    for i in 0..1000 {
        let settings = ParticipantSettings {
            speak: i % 7 != 0,
            hear: i % 11 != 0,
            output_volume: match i % 13 {
                0 => 0.5,
                1 => 2.0,
                2 => f32::NAN,
                _ => 1.0,
            },
            input_gain: if i % 17 == 0 { f32::INFINITY } else { 1.0 },
            energy_level: if i % 19 == 0 { f32::NAN } else { 20.0 },
            moderator: i % 100 == 0,
        };
        ids.push(room.add_participant(settings).unwrap());
    }
    // Relations: some listeners do not hear some talkers (the first eight always talk), and
    // some talkers do not hear each other.
    for n in (0..ids.len()).step_by(10) {
        for speaker in [1, 3, 5 + n % 3, 500 + n % 97] {
            if speaker != n {
                room.set_hears(ids[n], ids[speaker], false).unwrap();
            }
        }
    }
    room.set_hears(ids[2], ids[4], false).unwrap();
    room.set_hears(ids[4], ids[2], false).unwrap();
    room.set_hears(ids[4], ids[3], false).unwrap();
    assert!(room.relation_count() > 300);
    let tone = ToneProgram::parse("%(100,100,440,880);loops=-1").unwrap();
    room.add_source(
        Box::new(ToneGenerator::new(tone.clone())),
        SourceTarget::Room,
    )
    .unwrap();
    for &id in ids.iter().step_by(50) {
        room.add_source(
            Box::new(ToneGenerator::new(tone.clone())),
            SourceTarget::Listener(id),
        )
        .unwrap();
    }
    let short = ToneProgram::parse("%(40,0,1000)").unwrap();
    room.add_source(Box::new(ToneGenerator::new(short)), SourceTarget::Room)
        .unwrap();

    let frames: Vec<_> = (0..4)
        .map(|t| common::sine_frame(300.0 + 100.0 * t as f64, 0.5, t))
        .collect();
    let mut hostile = common::sine_frame(440.0, 0.5, 0);
    for (s, &h) in hostile.iter_mut().zip(HOSTILE.iter().cycle()) {
        *s = h;
    }

    for tick in 0..60 {
        for (n, &id) in ids.iter().enumerate() {
            let talking_now = n % 97 == tick % 97 || n < 8;
            if n % 3 == 0 {
                room.push_input(id, &hostile).unwrap();
            } else if talking_now {
                room.push_input(id, &frames[tick % 4]).unwrap();
            }
        }
        let mut groups = 0;
        let allocations = allocations_during(|| {
            let output = room.tick();
            groups = output.group_count();
            for group in output.groups() {
                assert!(group.frame.iter().all(|s| s.is_finite() && s.abs() < 1.0));
            }
        });
        assert_eq!(allocations, 0, "tick {tick} allocated");
        assert!(groups >= 1);
    }
}

#[test]
fn empty_rooms_and_rooms_without_input_tick() {
    let mut room = Room::new(RoomConfig::default());
    assert_eq!(
        allocations_during(|| assert_eq!(room.tick().group_count(), 0)),
        0
    );
    let id = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    room.remove_participant(id).unwrap();
    assert_eq!(
        allocations_during(|| assert_eq!(room.tick().group_count(), 0)),
        0
    );
    let lone = room
        .add_participant(ParticipantSettings::default())
        .unwrap();
    let allocations = allocations_during(|| {
        let output = room.tick();
        assert!(output.heard_by(lone).unwrap().is_silent());
        assert!(output.room_is_silent());
    });
    assert_eq!(allocations, 0);
}

#[test]
fn joins_and_leaves_within_the_reserved_capacity_allocate_nothing() {
    let mut room = Room::new(RoomConfig::default());
    room.reserve(32, 8);
    let ready: Vec<_> = (0..32)
        .map(|_| tutti_mix::DetachedParticipant::new(ParticipantSettings::default()))
        .collect();
    let mut ready = ready.into_iter();
    let mut left = Vec::with_capacity(32);
    let mut ids = Vec::with_capacity(32);
    let allocations = allocations_during(|| {
        for participant in ready.by_ref().take(20) {
            ids.push(room.attach_participant(participant).unwrap());
        }
        room.tick();
        for id in ids.drain(..10) {
            left.push(room.detach_participant(id).unwrap().1);
        }
        room.tick();
        for participant in ready.by_ref() {
            room.attach_participant(participant).unwrap();
        }
        room.tick();
    });
    assert_eq!(allocations, 0);
    assert_eq!(room.participant_count(), 22);
    assert_eq!(left.len(), 10);
}
