//! Mixer threads raise their priority when the process may. A test binary of its own: the
//! threads are found by name in /proc, and no other test's engine may be running beside it.

use tutti_engine::{Engine, EngineConfig, RoomId, RoomSettings};

/// The nice value of each of this process's threads named `prefix…`, from /proc.
fn nice_values(prefix: &str) -> Vec<i64> {
    let mut values = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is the 3rd field, nice the 19th.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        if let Some(nice) = after_name.split_whitespace().nth(16) {
            values.push(nice.parse().unwrap());
        }
    }
    values
}

#[test]
fn mixer_threads_run_at_a_raised_priority_when_the_process_may() {
    let engine = Engine::start(EngineConfig {
        mixer_threads: 2,
        ports: 45000..=45099,
        ..Default::default()
    })
    .unwrap();
    // A barrier per thread: each has started and set its priority.
    for room in [RoomId(71), RoomId(72), RoomId(73)] {
        engine.create_room(room, RoomSettings::default()).unwrap();
        engine.set_locked(room, false).unwrap();
    }
    let raised = engine.metrics().raised_priority_threads;
    let nice = nice_values("tutti-mix-");
    assert_eq!(nice.len(), 2, "two mixer threads: {nice:?}");
    // Raising needs root or CAP_SYS_NICE; without it the threads stay at the normal priority.
    let may = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if may {
        assert_eq!(raised, 2);
        assert!(nice.iter().all(|&n| n < 0), "nice values {nice:?}");
    } else {
        assert_eq!(raised, 0);
    }
    let normal = Engine::start(EngineConfig {
        mixer_threads: 1,
        ports: 45100..=45199,
        raise_priority: false,
        ..Default::default()
    })
    .unwrap();
    normal
        .create_room(RoomId(74), RoomSettings::default())
        .unwrap();
    normal.set_locked(RoomId(74), false).unwrap();
    assert_eq!(normal.metrics().raised_priority_threads, 0);
}
