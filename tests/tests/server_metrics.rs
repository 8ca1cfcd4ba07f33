//! `/metrics` of the real server: every series with its type, and per-room series for the
//! largest rooms only, gone when their room ends.

use std::time::{Duration, Instant};

use serde_json::json;
use tutti_e2e::gst::{free_port, tempdir, Codec};
use tutti_e2e::kazoo::Session;

fn scrape(session: &Session) -> String {
    let (status, text) = session.server.call("GET", "/metrics", None, None);
    assert_eq!(status, 200);
    text.as_str().unwrap().to_owned()
}

/// The `tutti_room_participants` lines, sorted.
fn room_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("tutti_room_participants{"))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn every_series_has_its_type_and_only_the_largest_rooms_have_their_own() {
    let dir = tempdir("metrics");
    let session = Session::start_with(
        &dir,
        (33_700, 33_799),
        &[("TUTTI_METRICS_ROOM_SERIES", "1")],
    );
    let small = session.create(json!({"name": "Small"}));
    let large = session.create(json!({"name": "Large"}));
    for (room, joins) in [(&small, 1), (&large, 2)] {
        for _ in 0..joins {
            let (status, body) = session.call(
                "PUT",
                &format!("/{room}/participants"),
                Some(json!({"data": {"sdp": Codec::Pcmu.sdp(free_port())}})),
            );
            assert_eq!(status, 201, "{body}");
        }
    }
    let text = scrape(&session);
    // Every family once, with its type, and no other.
    let mut families: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    families.sort();
    let mut expected: Vec<String> = [
        ("tutti_rooms", "gauge"),
        ("tutti_participants", "gauge"),
        ("tutti_room_participants", "gauge"),
        ("tutti_tick_duration_seconds", "histogram"),
        ("tutti_tick_overruns_total", "counter"),
        ("tutti_rtp_packets_total", "counter"),
        ("tutti_rtp_lost_packets_total", "counter"),
        ("tutti_rtp_dropped_total", "counter"),
        ("tutti_audio_packets_total", "counter"),
        ("tutti_api_requests_total", "counter"),
        ("tutti_api_request_duration_seconds", "histogram"),
        ("tutti_webhooks_total", "counter"),
        ("tutti_sip_calls_total", "counter"),
        ("tutti_sip_malformed_total", "counter"),
        ("tutti_sip_active_calls", "gauge"),
        ("tutti_webrtc_peers", "gauge"),
        ("tutti_webrtc_connected_total", "counter"),
        ("tutti_webrtc_failed_total", "counter"),
        ("tutti_webrtc_dropped_total", "counter"),
        ("tutti_webrtc_packets_in_total", "counter"),
        ("tutti_webrtc_packets_out_total", "counter"),
        ("tutti_webrtc_rtp_in_total", "counter"),
        ("tutti_webrtc_rtp_out_total", "counter"),
        ("tutti_store_operations_total", "counter"),
        ("tutti_store_errors_total", "counter"),
    ]
    .iter()
    .map(|(name, kind)| format!("# TYPE {name} {kind}"))
    .collect();
    expected.sort();
    assert_eq!(families, expected, "{text}");
    assert!(text.lines().any(|l| l == "tutti_rooms 2"), "{text}");
    assert!(text.lines().any(|l| l == "tutti_participants 3"), "{text}");
    // Ids are label values of the per-room gauge only, never of a route.
    assert!(!text.contains(&session.account), "{text}");
    assert_eq!(
        room_lines(&text),
        [
            format!("tutti_room_participants{{room=\"{large}\"}} 2"),
            "tutti_room_participants{room=\"other\"} 1".to_owned(),
        ]
    );

    // The large room ends: its series goes, the small one is now the largest.
    let (status, body) = session.call("DELETE", &format!("/{large}"), None);
    assert_eq!(status, 200, "{body}");
    let expected = [
        format!("tutti_room_participants{{room=\"{small}\"}} 1"),
        "tutti_room_participants{room=\"other\"} 0".to_owned(),
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = room_lines(&scrape(&session));
        if lines == expected {
            break;
        }
        assert!(Instant::now() < deadline, "{lines:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    session.server.stop();
}
