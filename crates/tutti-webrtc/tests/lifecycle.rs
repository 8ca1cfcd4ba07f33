//! Peers end with their participants and the other way round; strangers' datagrams are
//! counted drops; trickle ICE and ICE restarts.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use str0m::ice::{StunMessage, TransId};
use str0m::media::Direction;
use tutti_engine::EngineEvent;
use tutti_mix::ParticipantSettings;
use tutti_webrtc::{DropReason, FailReason, WebRtcError, CONNECT_TIMEOUT, DISCONNECTED_TIMEOUT};

mod common;

use common::engine::{join, wait_for, Caller};
use common::{connect, setup, talk, Browser};

#[test]
fn a_kicked_participant_s_browser_sees_its_connection_close() {
    let (engine, endpoint, room) = setup(36_080..=36_099);
    let mut browser = Browser::new(Direction::SendRecv, 440.0);
    let key = connect(&endpoint, room, &mut browser).participant;
    assert_eq!(endpoint.metrics().peers, 1);

    engine.leave(room, key).unwrap();

    browser.wait("the close", Duration::from_secs(5), |b| b.closed);
    let deadline = Instant::now() + Duration::from_secs(5);
    while endpoint.metrics().peers != 0 {
        assert!(Instant::now() < deadline, "the peer was not freed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let metrics = endpoint.metrics();
    assert_eq!(
        metrics.failed.iter().map(|(_, n)| n).sum::<u64>(),
        0,
        "{metrics:?}"
    );
    assert_eq!(metrics.peers, 0);
}

#[test]
fn a_browser_that_closes_leaves_the_room() {
    let (engine, endpoint, room) = setup(36_100..=36_119);
    let mut browser = Browser::new(Direction::SendRecv, 440.0);
    let key = connect(&endpoint, room, &mut browser).participant;
    wait_for(
        &engine,
        |e| matches!(e, EngineEvent::Joined { participant: k, .. } if *k == key),
    );

    browser.hang_up();

    wait_for(
        &engine,
        |e| matches!(e, EngineEvent::Left { participant: k, .. } if *k == key),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while endpoint.metrics().peers != 0 {
        assert!(Instant::now() < deadline, "the peer was not freed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_browser_that_never_connects_leaves_the_room_and_is_counted() {
    let (engine, endpoint, room) = setup(36_120..=36_139);
    let browser = Browser::new(Direction::SendRecv, 440.0);
    // Only the offer: the browser never runs ICE.
    let joined = endpoint
        .join(room, &browser.offer, ParticipantSettings::default())
        .unwrap();
    assert_eq!(endpoint.metrics().peers, 1);
    wait_for(
        &engine,
        |e| matches!(e, EngineEvent::Joined { participant, .. } if *participant == joined.participant),
    );

    let deadline = Instant::now() + CONNECT_TIMEOUT + Duration::from_secs(5);
    while endpoint.metrics().failed(FailReason::ConnectTimeout) == 0 {
        assert!(Instant::now() < deadline, "{:?}", endpoint.metrics());
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for(
        &engine,
        |e| matches!(e, EngineEvent::Left { participant, .. } if *participant == joined.participant),
    );
    assert_eq!(endpoint.metrics().peers, 0);
    assert_eq!(endpoint.metrics().failed(FailReason::ConnectTimeout), 1);
}

#[test]
fn a_browser_that_vanishes_leaves_the_room_and_is_counted() {
    let (engine, endpoint, room) = setup(36_220..=36_239);
    let mut browser = Browser::new(Direction::SendRecv, 440.0);
    let key = connect(&endpoint, room, &mut browser).participant;
    // The tab is killed: no goodbye, no more consent checks.
    drop(browser);

    // str0m's ICE-lite agent gives a pair up after 15 s without checks; the endpoint then
    // waits DISCONNECTED_TIMEOUT.
    let deadline = Instant::now() + Duration::from_secs(15) + DISCONNECTED_TIMEOUT * 2;
    while endpoint.metrics().failed(FailReason::IceDisconnected) == 0 {
        assert!(Instant::now() < deadline, "{:?}", endpoint.metrics());
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(
        &engine,
        |e| matches!(e, EngineEvent::Left { participant, .. } if *participant == key),
    );
    assert_eq!(endpoint.metrics().peers, 0);
}

#[test]
fn strangers_datagrams_are_counted_drops_and_the_peer_keeps_working() {
    let (engine, endpoint, room) = setup(36_140..=36_159);
    let mut caller = Caller::new(880.0);
    join(&engine, room, &mut caller, ParticipantSettings::default());
    let mut browser = Browser::new(Direction::SendRecv, 440.0);
    let joined = connect(&endpoint, room, &mut browser);
    let server_ufrag = joined
        .answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap()
        .to_owned();
    talk(&mut [&mut browser], &mut [&mut caller], 0.5);
    let before = endpoint.metrics();
    let heard_before = browser.packets_heard;

    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = format!("127.0.0.1:{}", endpoint.local_port());
    let stun = |username: &str| {
        let mut buf = [0u8; 200];
        let message = StunMessage::binding_request(username, TransId::new(), true, 1, 100, true);
        let len = message
            .to_bytes(Some(b"not the password"), &mut buf, |_, _| [7; 20])
            .unwrap();
        buf[..len].to_vec()
    };
    let mut rtp = vec![0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
    rtp.extend_from_slice(&[0x55; 40]);
    let datagrams: Vec<Vec<u8>> = vec![
        vec![0xff; 40],                             // malformed: no RFC 7983 range
        vec![0x00, 0x01, 0x00],                     // malformed: a STUN header cut short
        vec![22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 1], // DTLS from nobody: unknown_source
        rtp.clone(),                                // SRTP from nobody: unknown_source
        stun("nosuchufrag:browser"),                // stun_unmatched
        stun(&format!("{server_ufrag}:browser")),   // the right ufrag, a wrong password
        rtp,                                        // still nobody: unknown_source
    ];
    for d in &datagrams {
        stranger.send_to(d, &server).unwrap();
    }
    let expected = [
        (DropReason::Malformed, 2),
        (DropReason::UnknownSource, 3),
        (DropReason::StunUnmatched, 1),
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = endpoint.metrics();
        let counted: Vec<(DropReason, u64)> = expected
            .iter()
            .map(|&(r, _)| (r, now.dropped(r) - before.dropped(r)))
            .collect();
        if counted == expected {
            break;
        }
        assert!(Instant::now() < deadline, "{counted:?}");
        browser.poll();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(endpoint.metrics().dropped(DropReason::Malformed), 2);

    // The browser's peer is undisturbed.
    talk(&mut [&mut browser], &mut [&mut caller], 1.0);
    assert!(
        browser.packets_heard >= heard_before + 40,
        "{}",
        browser.packets_heard
    );
    let level = browser.level(880.0, 0.8);
    assert!(
        level > 0.05,
        "{level} after {} packets",
        browser.packets_heard
    );
    assert!(!browser.closed);
    assert_eq!(endpoint.metrics().peers, 1);
}

#[test]
fn trickled_candidates_are_taken_and_bad_fragments_named() {
    let (_engine, endpoint, room) = setup(36_160..=36_179);
    let mut browser = Browser::new(Direction::SendRecv, 440.0);
    let key = connect(&endpoint, room, &mut browser).participant;

    let trickle =
        "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n";
    assert_eq!(endpoint.patch(room, key, trickle).unwrap(), None);
    let mdns = "a=candidate:2 1 udp 2130706431 0b1e7f5a-1234.local 5001 typ host\r\n";
    assert_eq!(endpoint.patch(room, key, mdns).unwrap(), None);

    let error = endpoint
        .patch(room, key, "a=candidate:garbage\r\n")
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the ICE fragment is not valid: the candidate"),
        "{error}"
    );
    let error = endpoint
        .patch(room, key, "a=ice-ufrag:abcd\r\n")
        .unwrap_err();
    assert!(
        error.to_string().contains("both a=ice-ufrag and a=ice-pwd"),
        "{error}"
    );
    let error = endpoint.patch(room, key + 1, trickle).unwrap_err();
    assert!(
        matches!(error, WebRtcError::UnknownParticipant { .. }),
        "{error}"
    );
}

#[test]
fn an_ice_restart_fragment_gets_new_credentials_and_the_browser_reconnects() {
    let (engine, endpoint, room) = setup(36_180..=36_199);
    let mut caller = Caller::new(880.0);
    join(&engine, room, &mut caller, ParticipantSettings::default());
    let mut browser = Browser::new(Direction::SendRecv, 440.0);
    let joined = connect(&endpoint, room, &mut browser);
    let attribute = |sdp: &str, name: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .to_owned()
    };
    let old = (
        attribute(&joined.answer, "a=ice-ufrag:"),
        attribute(&joined.answer, "a=ice-pwd:"),
    );

    // The browser restarts ICE: new credentials of its own in a PATCH fragment.
    let mut api = browser.rtc.sdp_api();
    let creds = api.ice_restart(true);
    let (_offer, pending) = api.apply().unwrap();
    let fragment = format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:{}\r\n",
        creds.ufrag, creds.pass, browser.mid
    );
    let answer = endpoint
        .patch(room, joined.participant, &fragment)
        .unwrap()
        .unwrap();
    let new = (
        attribute(&answer, "a=ice-ufrag:"),
        attribute(&answer, "a=ice-pwd:"),
    );
    assert_ne!(new.0, old.0, "{answer}");
    assert_ne!(new.1, old.1, "{answer}");
    assert!(
        answer.contains(&format!(
            "a=candidate:1 1 UDP 2130706431 127.0.0.1 {} typ host\r\n",
            endpoint.local_port()
        )),
        "{answer}"
    );
    // The same fragment again is no restart.
    assert_eq!(
        endpoint.patch(room, joined.participant, &fragment).unwrap(),
        None
    );

    // The browser takes the new credentials (its answer is the first one with them) and
    // checks again: media flows on.
    let restarted = joined
        .answer
        .replace(
            &format!("a=ice-ufrag:{}", old.0),
            &format!("a=ice-ufrag:{}", new.0),
        )
        .replace(
            &format!("a=ice-pwd:{}", old.1),
            &format!("a=ice-pwd:{}", new.1),
        )
        .replace(&format!("ufrag {}", old.0), &format!("ufrag {}", new.0));
    let restarted = str0m::change::SdpAnswer::from_sdp_string(&restarted).unwrap();
    browser
        .rtc
        .sdp_api()
        .accept_answer(pending, restarted)
        .unwrap();
    browser.ice = None;
    browser.wait("the reconnection", Duration::from_secs(10), |b| {
        matches!(
            b.ice,
            Some(str0m::IceConnectionState::Connected | str0m::IceConnectionState::Completed)
        )
    });
    let heard = browser.packets_heard;
    talk(&mut [&mut browser], &mut [&mut caller], 1.0);
    assert!(
        browser.packets_heard >= heard + 40,
        "{}",
        browser.packets_heard
    );
    assert!(
        caller.level(440.0, 0.8) > 0.05,
        "{}",
        caller.level(440.0, 0.8)
    );
}
