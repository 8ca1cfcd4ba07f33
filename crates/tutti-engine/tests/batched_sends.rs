//! Mixes for callers who do not latch leave from one port per mixer thread, many per system
//! call; latching callers keep getting theirs from the port their answer named.

mod common;

use common::{engine, join_latching, talk, Caller};
use tutti_engine::{RoomId, RoomSettings};
use tutti_mix::ParticipantSettings;

#[test]
fn callers_who_do_not_latch_get_batched_mixes_and_latching_callers_their_own_port() {
    let engine = engine(44000..=44999);
    let room = RoomId(1);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let settings = ParticipantSettings {
        energy_level: 0.0,
        ..Default::default()
    };
    let mut asymmetric: Vec<Caller> = [300.0, 500.0, 700.0].map(Caller::new).into();
    let mut latching = Caller::new(900.0);
    for caller in &mut asymmetric {
        join_latching(&engine, room, caller, settings, Some(false));
    }
    join_latching(&engine, room, &mut latching, settings, Some(true));
    let mut everyone: Vec<&mut Caller> = asymmetric.iter_mut().collect();
    everyone.push(&mut latching);
    talk(&mut everyone, 1.5);

    // Everyone hears the others.
    assert!(asymmetric[0].level(500.0, 0.5) > 0.02 && asymmetric[0].level(900.0, 0.5) > 0.02);
    assert!(latching.level(300.0, 0.5) > 0.02 && latching.level(700.0, 0.5) > 0.02);
    // The latching caller's media came from its own port only.
    assert_eq!(
        latching.heard_from.iter().collect::<Vec<_>>(),
        vec![&latching.server],
        "a latching caller hears from the port its answer named"
    );
    // The others' from one shared port, not theirs.
    let shared = asymmetric[0].heard_from.clone();
    assert_eq!(shared.len(), 1);
    for caller in &asymmetric {
        assert_eq!(caller.heard_from, shared);
        assert!(!caller.heard_from.contains(&caller.server));
    }
    let metrics = engine.metrics();
    assert!(metrics.batched_sends >= 3 * 60, "{metrics:?}");
    assert!(
        metrics.send_calls * 2 <= metrics.batched_sends,
        "three callers' packets leave in fewer calls than packets: {metrics:?}"
    );
    assert_eq!(metrics.batched_send_failures, 0);
}
