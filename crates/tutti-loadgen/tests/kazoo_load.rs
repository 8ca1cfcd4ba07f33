//! The loadgen against the real server through the Kazoo face: it joins every caller, counts
//! every mix, and reports listeners that hear nothing. Behaviour only: no figure of speed or
//! CPU is asserted beyond its presence.

use std::time::Duration;

use tutti_e2e::gst::tempdir;
use tutti_e2e::server::{create_account, Server};
use tutti_loadgen::face::kazoo::Kazoo;
use tutti_loadgen::{LoadConfig, Summary};

fn run(name: &str, ports: (u16, u16), config: impl FnOnce(&mut LoadConfig)) -> Summary {
    let dir = tempdir(name);
    let database = dir.join("tutti.db");
    let (account, key) = create_account(&database, "load");
    let server = Server::start(&database, ports);
    let face = Kazoo::login(&format!("http://{}", server.address), &account, &key).unwrap();
    let mut load = LoadConfig {
        callers: 50,
        room_size: 25,
        talkers: 3,
        duration: Duration::from_secs(3),
        warmup: Duration::from_secs(1),
        sockets: 3,
        decode_per_room: usize::MAX,
        server_pid: Some(server.pid()),
        metrics_url: Some(format!("http://{}/metrics", server.address)),
        ..LoadConfig::default()
    };
    config(&mut load);
    let summary = tutti_loadgen::run(&load, &face).unwrap();
    server.stop();
    summary
}

#[test]
fn fifty_callers_in_two_rooms_all_receive_and_hear_their_talkers() {
    let dir = tempdir("load-quality");
    let (degraded, reference) = (dir.join("listener.wav"), dir.join("reference.wav"));
    let summary = run("load-heard", (37_000, 37_199), |c| {
        c.record_listener = Some(degraded.clone());
        c.reference = Some(reference.clone());
    });
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(
        (summary.joined, summary.failed, summary.rooms),
        (50, 0, 2),
        "{json:#}"
    );
    // Every caller sends one packet per 20 ms of the window and receives its mix as often.
    assert_eq!(summary.packets.expected_per_caller, 150.0);
    assert!(summary.packets.sent_per_caller >= 149.0, "{json:#}");
    assert!(summary.packets.received_percent_min >= 95.0, "{json:#}");
    // Everybody has somebody else talking in the room (talkers hear the other two), and every
    // listener was decoded and heard speech.
    assert_eq!(summary.audibility.listeners_expecting_sound, 50);
    assert_eq!(summary.audibility.listeners_decoded, 44, "{json:#}");
    assert_eq!(summary.audibility.inaudible, Vec::<u32>::new(), "{json:#}");
    // The server's CPU and metrics were read over the window.
    assert!(summary.server.cpu_percent.is_some(), "{json:#}");
    let metrics = summary.server.metrics.as_ref().expect("metrics deltas");
    assert!(metrics.ticks > 0.0, "{json:#}");
    assert_eq!(metrics.participants, 52.0, "{json:#}");
    assert!(json["jitter_ms"]["interarrival_deviation"]["p99"].is_number());
    // The measurement room's listener heard speech, written beside its reference at 16 kHz.
    let (heard, rate) = tutti_e2e::read_wav(&degraded);
    let (clean, _) = tutti_e2e::read_wav(&reference);
    assert_eq!(rate, 16_000);
    assert_eq!(heard.len(), clean.len());
    assert!(
        tutti_e2e::rms(&heard) > 0.01,
        "the recorded listener is silent"
    );

    // The summary as the binary writes it makes a row of the side-by-side table.
    let file = dir.join("tutti-50.json");
    std::fs::write(&file, json.to_string()).unwrap();
    std::fs::write(dir.join("tutti-50.pesq"), "4.12\n").unwrap();
    let table = tutti_loadgen::table(&[file]).unwrap();
    let row: Vec<&str> = table
        .lines()
        .nth(2)
        .unwrap()
        .split('|')
        .map(str::trim)
        .collect();
    // server, callers, joined, …, inaudible, PESQ
    assert_eq!(&row[1..4], ["tutti", "50", "50"], "{table}");
    assert_eq!(&row[8..10], ["0", "4.12"], "{table}");
}

#[test]
fn listeners_of_silent_talkers_are_reported_inaudible() {
    let summary = run("load-silent", (37_200, 37_399), |c| c.silent_talkers = true);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!((summary.joined, summary.failed), (50, 0), "{json:#}");
    // Packets still flow: the server sends every listener its (silent) mix.
    assert!(summary.packets.received_percent_min >= 95.0, "{json:#}");
    assert_eq!(summary.audibility.inaudible_count, 50, "{json:#}");
    assert_eq!(summary.audibility.inaudible, (0..50).collect::<Vec<u32>>());
    assert_eq!(summary.audibility.inaudible_decoded, 44, "{json:#}");
}
