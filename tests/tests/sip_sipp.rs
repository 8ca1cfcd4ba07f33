//! The real server's SIP side against SIPp scenarios (tests/sipp/) over UDP and TCP, and
//! against malformed requests sent by hand: each gets its SIP answer, and the server keeps
//! answering OPTIONS afterwards.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tutti_e2e::gst::tempdir;
use tutti_e2e::kazoo::Session;
use tutti_e2e::sip::{self, exchange, status, wait_until_up};
use tutti_e2e::sipp::{scenario, Scenario, Sipp};

const WITHIN: Duration = Duration::from_secs(15);

/// Runs tests/sipp/`name`.xml from a free port with `args`; panics unless it passes.
fn run(dir: &std::path::Path, name: &str, args: &[&str], what: &str) {
    let local: SocketAddr = format!("127.0.0.1:{}", sip::free_port()).parse().unwrap();
    let path = scenario(name);
    Sipp::start(dir, local, Scenario::File(&path), args)
        .finish(WITHIN)
        .assert_passed(what);
}

/// A server whose account has conference number 4000, loopback its trunk.
fn start(dir: &std::path::Path, media_ports: (u16, u16)) -> Session {
    let session =
        Session::start_configured(dir, media_ports, &[], |account| sip::config(Some(account)));
    session.create(json!({"name": "SIPp", "conference_numbers": ["4000"], "play_welcome": false, "play_entry_tone": false, "play_exit_tone": false}));
    wait_until_up(session.server.sip, WITHIN);
    session
}

#[test]
fn sipp_scenarios_get_their_answers_over_udp_and_tcp() {
    let dir = tempdir("sip-sipp");
    let session = start(&dir, (34_000, 34_099));
    let remote = session.server.sip.to_string();
    for transport in ["u1", "t1"] {
        for (name, number) in [
            ("options", "4000"),
            ("unknown_number", "9999"),
            ("garbage_sdp", "4000"),
            ("no_common_codec", "4000"),
            ("unknown_dialog", "4000"),
            ("cancel", "4000"),
            ("session_timer", "4000"),
        ] {
            run(
                &dir,
                name,
                &[&remote, "-s", number, "-t", transport, "-m", "1"],
                &format!("{name} over {transport}"),
            );
        }
    }
    session.server.stop();
}

/// tutti_sip_malformed_total from the server's metrics.
fn malformed_total(session: &Session) -> u64 {
    let (_, text) = session.server.call("GET", "/metrics", None, None);
    text.as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("tutti_sip_malformed_total "))
        .and_then(|n| n.parse().ok())
        .expect("tutti_sip_malformed_total in /metrics")
}

#[test]
fn malformed_requests_get_400_or_a_counted_drop_and_the_server_stays_up() {
    let dir = tempdir("sip-malformed");
    let session = start(&dir, (34_700, 34_799));
    let listen = session.server.sip;
    let before = malformed_total(&session);
    // Requests that parse as SIP, wrong by the rules: each is answered 400.
    let answerable = [
        (
            "a CSeq naming another method",
            sip::INVITE_HEADERS.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
        ),
        (
            "a Content-Length beyond the datagram",
            sip::INVITE_HEADERS.replace("Content-Length: {length}", "Content-Length: 9000"),
        ),
    ];
    // Requests missing what an answer is made of: answered 400, or dropped and counted.
    let broken = [
        (
            "no Call-ID",
            sip::INVITE_HEADERS.replace("Call-ID: {call_id}\n", ""),
        ),
        (
            "no CSeq",
            sip::INVITE_HEADERS.replace("CSeq: 1 INVITE\n", ""),
        ),
        (
            "no From",
            sip::INVITE_HEADERS.replace("From: <sip:caller@127.0.0.1>;tag={call_id}\n", ""),
        ),
        (
            "no To",
            sip::INVITE_HEADERS.replace("To: <sip:4000@127.0.0.1>\n", ""),
        ),
        (
            "a CSeq without a number",
            sip::INVITE_HEADERS.replace("CSeq: 1 INVITE", "CSeq: one INVITE"),
        ),
        (
            "a From that is no address",
            sip::INVITE_HEADERS.replace("From: <sip:caller@127.0.0.1>", "From: <<>>@@"),
        ),
    ];
    let answer = |index: usize, headers: &str| {
        let request = sip::invite("4000", &format!("malformed-{index}"), headers);
        exchange(listen, &request, Duration::from_secs(2))
            .as_deref()
            .and_then(status)
    };
    let answered: Vec<(&str, Option<u16>)> = answerable
        .iter()
        .enumerate()
        .map(|(index, (what, headers))| (*what, answer(index, headers)))
        .collect();
    let refused: Vec<(&str, Option<u16>)> = broken
        .iter()
        .enumerate()
        .map(|(index, (what, headers))| (*what, answer(answerable.len() + index, headers)))
        .collect();
    let expected: Vec<(&str, Option<u16>)> = answerable
        .iter()
        .map(|(what, _)| (*what, Some(400)))
        .collect();
    assert_eq!(answered, expected);
    assert!(
        refused
            .iter()
            .all(|(_, status)| matches!(status, None | Some(400))),
        "{refused:?}"
    );
    let dropped = refused
        .iter()
        .filter(|(_, status)| status.is_none())
        .count() as u64;
    assert_eq!(
        malformed_total(&session) - before,
        answered.len() as u64 + refused.len() as u64,
        "every malformed request is counted; {dropped} were dropped: {refused:?}"
    );
    // Garbage that is not SIP at all gets no answer.
    assert_eq!(
        exchange(listen, "\u{1}\u{2}garbage\n\n", Duration::from_millis(500)),
        None
    );
    let remote = listen.to_string();
    run(
        &dir,
        "options",
        &[&remote, "-m", "1"],
        "OPTIONS after the rest",
    );
    session.server.stop();
}
