//! Nodes of one cluster on a throwaway PostgreSQL: membership, placement, loss and events.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tutti_cluster::{Claim, Cluster, ClusterConfig, ClusterError, ClusterHooks, Load};
use tutti_pg_harness::TempPostgres;
use uuid::Uuid;

/// What a node's hooks saw.
#[derive(Default)]
struct Recorder {
    participants: Mutex<u32>,
    events: Mutex<Vec<(String, serde_json::Value)>>,
    lost: Mutex<Vec<(String, Vec<Uuid>)>>,
    /// Rooms that run on the node (all of them unless `rooms_stop` is set).
    rooms_stop: std::sync::atomic::AtomicBool,
}

impl ClusterHooks for Recorder {
    fn load(&self) -> Load {
        Load {
            participants: *self.participants.lock().unwrap(),
            tick_load: 0.0,
        }
    }
    fn remote_event(&self, origin: &str, payload: serde_json::Value) {
        self.events.lock().unwrap().push((origin.into(), payload));
    }
    fn rooms_lost(&self, node: &str, conferences: Vec<Uuid>) {
        self.lost.lock().unwrap().push((node.into(), conferences));
    }
    fn room_runs(&self, _: Uuid) -> bool {
        !self.rooms_stop.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn start(url: &str, node: &str) -> (Cluster, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let cluster = Cluster::start(config(url, node), recorder.clone()).expect("the node starts");
    (cluster, recorder)
}

fn config(url: &str, node: &str) -> ClusterConfig {
    let mut config = ClusterConfig::new(url, node, format!("http://{node}.invalid:8080"));
    config.heartbeat = Duration::from_millis(100);
    config.lease = Duration::from_millis(1000);
    config
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn block<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

fn ids(cluster: &Cluster) -> Vec<String> {
    block(cluster.nodes())
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect()
}

#[test]
fn nodes_see_each_other_and_a_node_id_is_held_by_one_process() {
    let Some(url) = TempPostgres::database_for("nodes_see_each_other") else {
        return;
    };
    let (a, _) = start(&url, "a");
    let (b, _) = start(&url, "b");
    assert_eq!(ids(&a), ["a", "b"]);
    let second = Cluster::start(config(&url, "a"), Arc::new(Recorder::default()));
    assert!(
        matches!(second, Err(ClusterError::NodeTaken(ref id)) if id == "a"),
        "{second:?}"
    );
    b.stop();
    assert_eq!(ids(&a), ["a"]);
}

#[test]
fn a_room_is_placed_once_on_the_least_loaded_node_and_claims_agree() {
    let Some(url) = TempPostgres::database_for("a_room_is_placed_once") else {
        return;
    };
    let (a, load_a) = start(&url, "a");
    let (b, _) = start(&url, "b");
    *load_a.participants.lock().unwrap() = 10;
    // The heartbeat carries the load.
    std::thread::sleep(Duration::from_millis(300));
    let room = Uuid::now_v7();
    let placed = block(a.place(room)).unwrap();
    assert_eq!(placed.id, "b");
    assert_eq!(placed.api_url, "http://b.invalid:8080");
    assert_eq!(block(b.place(room)).unwrap().id, "b", "placed once");
    assert_eq!(b.claim(room).unwrap(), Claim::Here);
    match a.claim(room).unwrap() {
        Claim::Elsewhere(node) => assert_eq!(node.id, "b"),
        Claim::Here => panic!("a room runs on one node"),
    }
    assert_eq!(
        block(a.locate(room)).unwrap().map(|n| n.id),
        Some("b".into())
    );
    assert_eq!(
        a.focus(room).as_deref(),
        Some("b"),
        "the placing node knows at once"
    );
    wait_for("b's focus cache", || b.focus(room).as_deref() == Some("b"));
    // b, with one room, is still less loaded than a with ten participants.
    let second = Uuid::now_v7();
    assert_eq!(block(a.place(second)).unwrap().id, "b");
    b.release(room);
    b.release(second);
    assert_eq!(block(a.locate(room)).unwrap(), None);
    // A claim places the room on the claiming node, whatever the load.
    assert_eq!(a.claim(room).unwrap(), Claim::Here);
    assert_eq!(
        block(b.locate(room)).unwrap().map(|n| n.id),
        Some("a".into())
    );
}

#[test]
fn a_dead_node_is_swept_once_and_its_rooms_are_placed_again() {
    let Some(url) = TempPostgres::database_for("a_dead_node_is_swept") else {
        return;
    };
    let (a, seen_a) = start(&url, "a");
    let (c, seen_c) = start(&url, "c");
    let (b, _) = start(&url, "b");
    let room = Uuid::now_v7();
    assert_eq!(b.claim(room).unwrap(), Claim::Here);
    // The process dies without leaving: its connections close, PostgreSQL frees its lock.
    let died = Instant::now();
    drop(b);
    wait_for("b's rooms to be handed on", || {
        seen_a.lost.lock().unwrap().len() + seen_c.lost.lock().unwrap().len() == 1
    });
    let noticed = died.elapsed();
    assert!(
        noticed < Duration::from_secs(1),
        "seen before the lease ran out: {noticed:?}"
    );
    let lost: Vec<_> = seen_a
        .lost
        .lock()
        .unwrap()
        .iter()
        .chain(seen_c.lost.lock().unwrap().iter())
        .cloned()
        .collect();
    assert_eq!(lost, [("b".to_string(), vec![room])]);
    assert_eq!(ids(&a), ["a", "c"]);
    assert_eq!(block(a.locate(room)).unwrap(), None);
    let again = block(c.place(room)).unwrap();
    assert!(again.id == "a" || again.id == "c");
    // Sweeps go on; nobody reports the loss twice.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        seen_a.lost.lock().unwrap().len() + seen_c.lost.lock().unwrap().len(),
        1
    );
    // A node that ran no room is handed on too (its other work is taken over).
    let (d, _) = start(&url, "d");
    drop(d);
    wait_for("d to be handed on", || {
        seen_a.lost.lock().unwrap().len() + seen_c.lost.lock().unwrap().len() == 2
    });
    let all: Vec<_> = seen_a
        .lost
        .lock()
        .unwrap()
        .iter()
        .chain(seen_c.lost.lock().unwrap().iter())
        .cloned()
        .collect();
    assert!(all.contains(&("d".to_string(), vec![])), "{all:?}");
}

#[test]
fn a_restarted_node_closes_what_its_previous_run_left() {
    let Some(url) = TempPostgres::database_for("a_restarted_node_closes") else {
        return;
    };
    let (a, _) = start(&url, "a");
    let room = Uuid::now_v7();
    assert_eq!(a.claim(room).unwrap(), Claim::Here);
    drop(a);
    // The lock is freed as the connection closes; the new process may have to wait for it.
    let first = Arc::new(Recorder::default());
    let mut restarted = None;
    wait_for("the node id to be free", || {
        match Cluster::start(config(&url, "a"), first.clone()) {
            Ok(cluster) => {
                restarted = Some(cluster);
                true
            }
            Err(ClusterError::NodeTaken(_)) => false,
            Err(other) => panic!("{other}"),
        }
    });
    wait_for("the previous run's rooms", || {
        !first.lost.lock().unwrap().is_empty()
    });
    assert_eq!(*first.lost.lock().unwrap(), [("a".to_string(), vec![room])]);
    drop(restarted);
    let recorder = Arc::new(Recorder::default());
    let mut again = None;
    wait_for("the node id to be free again", || {
        match Cluster::start(config(&url, "a"), recorder.clone()) {
            Ok(cluster) => {
                again = Some(cluster);
                true
            }
            Err(_) => false,
        }
    });
    // The first restart took the room over and reported it: the second finds nothing left.
    std::thread::sleep(Duration::from_millis(300));
    assert!(recorder.lost.lock().unwrap().is_empty());
}

#[test]
fn events_reach_every_other_node_once_and_not_their_origin() {
    let Some(url) = TempPostgres::database_for("events_reach_every_other_node") else {
        return;
    };
    let nodes: Vec<_> = ["a", "b", "c"].iter().map(|n| start(&url, n)).collect();
    // Listening starts on the cluster's runtime: give it a moment before the first event.
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..20 {
        nodes[i % 3].0.publish(&json!({"n": i}));
    }
    wait_for("every event on every other node", || {
        nodes
            .iter()
            .all(|(_, seen)| seen.events.lock().unwrap().len() >= 13)
    });
    std::thread::sleep(Duration::from_millis(300));
    for (k, (cluster, seen)) in nodes.iter().enumerate() {
        let events = seen.events.lock().unwrap();
        let mut got: Vec<u64> = events
            .iter()
            .map(|(_, p)| p["n"].as_u64().unwrap())
            .collect();
        assert!(events.iter().all(|(origin, _)| origin != cluster.node()));
        got.sort_unstable();
        let expected: Vec<u64> = (0..20u64).filter(|i| (*i as usize) % 3 != k).collect();
        assert_eq!(got, expected, "node {}", cluster.node());
        assert_eq!(cluster.metrics().events_received, expected.len() as u64);
    }
    let sent: u64 = nodes.iter().map(|(c, _)| c.metrics().events_sent).sum();
    assert_eq!(sent, 20);
}

#[test]
fn a_placement_whose_room_never_started_is_removed() {
    let Some(url) = TempPostgres::database_for("a_placement_whose_room_never_started") else {
        return;
    };
    let (a, hooks) = start(&url, "a");
    let room = Uuid::now_v7();
    assert_eq!(a.claim(room).unwrap(), Claim::Here);
    // Ten heartbeats (1 s here) pass with the room running: it stays.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(a.locate_now(room).unwrap().map(|n| n.id), Some("a".into()));
    hooks
        .rooms_stop
        .store(true, std::sync::atomic::Ordering::Relaxed);
    wait_for("the stale placement to go", || {
        a.locate_now(room).unwrap().is_none()
    });
    assert!(
        hooks.lost.lock().unwrap().is_empty(),
        "nothing was lost: nothing ran"
    );
}

#[test]
fn a_join_that_finds_its_room_on_a_dead_node_moves_it_and_the_loss_is_still_reported() {
    let Some(url) = TempPostgres::database_for("a_join_that_finds_its_room_on_a_dead_node") else {
        return;
    };
    // Slow sweeps: the join comes before any of them.
    let recorder = Arc::new(Recorder::default());
    let mut slow = config(&url, "a");
    slow.heartbeat = Duration::from_secs(2);
    slow.lease = Duration::from_secs(10);
    let a = Cluster::start(slow, recorder.clone()).unwrap();
    let (b, _) = start(&url, "b");
    let room = Uuid::now_v7();
    assert_eq!(b.claim(room).unwrap(), Claim::Here);
    drop(b);
    // b's lock goes with its connection; its lease still runs.
    wait_for("b to be dead", || block(a.locate(room)).unwrap().is_none());
    assert_eq!(a.claim(room).unwrap(), Claim::Here);
    wait_for("the loss to be reported", || {
        !recorder.lost.lock().unwrap().is_empty()
    });
    let lost = recorder.lost.lock().unwrap().clone();
    assert_eq!(lost, [("b".to_string(), vec![room])]);
    assert_eq!(a.locate_now(room).unwrap().map(|n| n.id), Some("a".into()));
}

#[test]
fn nodes_claiming_one_room_at_once_agree_on_one_node() {
    let Some(url) = TempPostgres::database_for("nodes_claiming_one_room_at_once") else {
        return;
    };
    let nodes: Vec<_> = ["a", "b", "c"].iter().map(|n| start(&url, n).0).collect();
    for _ in 0..10 {
        let room = Uuid::now_v7();
        let barrier = Arc::new(std::sync::Barrier::new(nodes.len()));
        let claims: Vec<(String, Claim)> = std::thread::scope(|scope| {
            let handles: Vec<_> = nodes
                .iter()
                .map(|node| {
                    let barrier = barrier.clone();
                    scope.spawn(move || {
                        barrier.wait();
                        (node.node().to_owned(), node.claim(room).unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let here: Vec<&String> = claims
            .iter()
            .filter(|(_, claim)| *claim == Claim::Here)
            .map(|(node, _)| node)
            .collect();
        assert_eq!(here.len(), 1, "{claims:?}");
        for (_, claim) in &claims {
            if let Claim::Elsewhere(node) = claim {
                assert_eq!(&node.id, here[0], "{claims:?}");
            }
        }
    }
}
