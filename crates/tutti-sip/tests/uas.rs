//! The SIP server as a UAS, driven with raw SIP over UDP: answers, refusals, and the call's
//! life in the conference.

mod common;

use common::{header, to_tag, Peer, World, OFFER};

const CONFERENCE: &str = "sip:1000@127.0.0.1";

#[tokio::test]
async fn options_outside_a_call_say_what_tutti_allows() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    peer.send(&peer.request("OPTIONS", "sip:127.0.0.1", ("o1", 1, None), "", ""))
        .await;
    let answer = peer.final_response().await;
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    let allow = header(&answer, "Allow").unwrap();
    for method in [
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE",
    ] {
        assert!(allow.contains(method), "{allow}");
    }
    assert_eq!(header(&answer, "Supported"), Some("timer"));
}

#[tokio::test]
async fn a_call_to_a_conference_number_joins_it_until_the_caller_hangs_up() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let sdp = "Content-Type: application/sdp\r\n";
    peer.send(&peer.request("INVITE", CONFERENCE, ("c1", 1, None), sdp, OFFER))
        .await;
    let ok = peer.expect("SIP/2.0 200").await;
    assert_eq!(header(&ok, "Content-Type"), Some("application/sdp"));
    assert!(ok.contains("m=audio 40001 RTP/AVP 0"), "{ok}");
    let tag = to_tag(&ok);
    // Without an ACK the 200 is sent again.
    let again = peer.expect("SIP/2.0 200").await;
    assert_eq!(to_tag(&again), tag);
    peer.send(&peer.request("ACK", CONFERENCE, ("c1", 1, Some(&tag)), "", ""))
        .await;
    assert_eq!(world.participants(), 1);
    peer.send(&peer.request("BYE", CONFERENCE, ("c1", 2, Some(&tag)), "", ""))
        .await;
    let bye_ok = peer.expect("SIP/2.0 200").await;
    assert!(header(&bye_ok, "CSeq").unwrap().ends_with("BYE"));
    wait_until(|| world.participants() == 0).await;
}

#[tokio::test]
async fn a_kicked_caller_gets_a_bye() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let sdp = "Content-Type: application/sdp\r\n";
    peer.send(&peer.request("INVITE", CONFERENCE, ("k1", 1, None), sdp, OFFER))
        .await;
    let tag = to_tag(&peer.expect("SIP/2.0 200").await);
    peer.send(&peer.request("ACK", CONFERENCE, ("k1", 1, Some(&tag)), "", ""))
        .await;
    let conference = world
        .service
        .conference(world.account, &world.conference.to_string())
        .unwrap();
    world
        .service
        .act_on_participant(&conference, 1, &tutti_conference::ParticipantAction::Kick)
        .unwrap();
    let bye = peer.expect("BYE ").await;
    assert_eq!(header(&bye, "Call-ID"), Some("k1"));
}

#[tokio::test]
async fn refusals_name_the_problem_with_the_right_status() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let sdp = "Content-Type: application/sdp\r\n";
    let cases = [
        ("sip:999@127.0.0.1", sdp, OFFER, "404"),
        (CONFERENCE, sdp, "v=0\r\ns=no media\r\n", "488"),
        (CONFERENCE, "Content-Type: text/plain\r\n", "hello", "415"),
        (
            CONFERENCE,
            "Session-Expires: soon\r\nContent-Type: application/sdp\r\n",
            OFFER,
            "400",
        ),
        (
            CONFERENCE,
            "Supported: timer\r\nSession-Expires: 30\r\nContent-Type: application/sdp\r\n",
            OFFER,
            "422",
        ),
    ];
    for (i, (uri, extra, body, status)) in cases.iter().enumerate() {
        let call = format!("r{i}");
        peer.send(&peer.request("INVITE", uri, (&call, 1, None), extra, body))
            .await;
        let answer = peer.final_response().await;
        let line = answer.lines().next().unwrap();
        assert!(
            line.starts_with(&format!("SIP/2.0 {status}")),
            "{uri} {extra}: {line}"
        );
        if *status == "422" {
            assert_eq!(header(&answer, "Min-SE"), Some("90"));
        }
    }
    // Requests for a dialog tutti does not know.
    peer.send(&peer.request("BYE", CONFERENCE, ("nobody", 2, Some("x")), "", ""))
        .await;
    assert!(peer.final_response().await.starts_with("SIP/2.0 481"));
    assert_eq!(world.participants(), 0);
}

#[tokio::test]
async fn callers_from_outside_the_trunks_are_challenged() {
    let world = World::new();
    let server = world.sip(false).await;
    let peer = Peer::new(&server).await;
    let sdp = "Content-Type: application/sdp\r\n";
    peer.send(&peer.request("INVITE", CONFERENCE, ("a1", 1, None), sdp, OFFER))
        .await;
    let challenge = peer.final_response().await;
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let offered: Vec<&str> = challenge
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
        .collect();
    assert_eq!(offered.len(), 1, "{challenge}");
    assert!(offered[0].contains("algorithm=MD5"));
    assert!(offered
        .iter()
        .all(|h| h.contains("realm=\"tutti\"") && h.contains("qop=\"auth\"")));
    assert_eq!(world.participants(), 0);
}

#[tokio::test]
async fn session_timers_are_agreed_on_the_callers_interval() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let extra = "Supported: timer\r\nSession-Expires: 120;refresher=uac\r\nContent-Type: application/sdp\r\n";
    peer.send(&peer.request("INVITE", CONFERENCE, ("t1", 1, None), extra, OFFER))
        .await;
    let ok = peer.expect("SIP/2.0 200").await;
    assert_eq!(header(&ok, "Session-Expires"), Some("120;refresher=uac"));
    assert_eq!(header(&ok, "Require"), Some("timer"));
}

async fn wait_until(condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_counters_say_what_happened_as_prometheus_series() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let sdp = "Content-Type: application/sdp\r\n";
    peer.send(&peer.request("INVITE", "sip:999@127.0.0.1", ("m1", 1, None), sdp, OFFER))
        .await;
    peer.final_response().await;
    peer.send(&peer.request("INVITE", CONFERENCE, ("m2", 1, None), sdp, OFFER))
        .await;
    peer.final_response().await;
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || server.counters().record());
    let text = recorder.handle().render();
    for line in [
        "# TYPE tutti_sip_calls_total counter",
        "tutti_sip_calls_total{outcome=\"refused\"} 1",
        "tutti_sip_calls_total{outcome=\"answered\"} 1",
        "tutti_sip_calls_total{outcome=\"challenged\"} 0",
        "# TYPE tutti_sip_malformed_total counter",
        "tutti_sip_malformed_total 0",
        "# TYPE tutti_sip_active_calls gauge",
        "tutti_sip_active_calls 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn a_caller_that_gives_up_before_the_answer_gets_200_for_its_cancel_and_487() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let sdp = "Content-Type: application/sdp\r\n";
    let slow = format!("{OFFER}a=x-slow\r\n");
    let mut events = world.service.subscribe();
    let invite = peer.request("INVITE", CONFERENCE, ("x1", 1, None), sdp, &slow);
    peer.send(&invite).await;
    peer.expect("SIP/2.0 100").await;
    // A CANCEL repeats the INVITE's Via branch, Call-ID and CSeq number.
    let cancel = invite
        .replacen("INVITE ", "CANCEL ", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
        .replace(sdp, "")
        .replace(&slow, "")
        .replace(
            &format!("Content-Length: {}", slow.len()),
            "Content-Length: 0",
        );
    peer.send(&cancel).await;
    let mut cancelled = false;
    let mut terminated = false;
    while !(cancelled && terminated) {
        let response = peer.final_response().await;
        let cseq = header(&response, "CSeq").unwrap();
        if cseq.ends_with("CANCEL") {
            assert!(response.starts_with("SIP/2.0 200"), "{response}");
            cancelled = true;
        } else {
            assert!(response.starts_with("SIP/2.0 487"), "{response}");
            terminated = true;
        }
    }
    // The answer that came too late is undone: the participant joins and leaves at once.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the late participant leaves within 5 s")
            .unwrap();
        if event.name == "del-member" {
            break;
        }
    }
    assert_eq!(world.participants(), 0);
}
