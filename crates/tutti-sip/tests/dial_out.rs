//! Dial-out through the SIP layer: tutti calls a raw SIP peer, which rings and answers or
//! refuses.

mod common;

use std::time::Duration;

use common::{header, Peer, World, OFFER};
use tutti_conference::{CallStatus, DialOut};

/// Dials `peer` from the conference; returns the call's id.
fn dial(world: &World, peer: &Peer, timeout: Duration) -> uuid::Uuid {
    let conference = world
        .service
        .conference(world.account, &world.conference.to_string())
        .unwrap();
    let out = DialOut {
        target: format!("sip:bob@127.0.0.1:{}", peer.port()),
        caller_id_name: Some("Standup".into()),
        caller_id_number: Some("1000".into()),
        timeout,
        moderator: false,
        muted: false,
        deaf: false,
    };
    world.service.dial(&conference, &out).unwrap().id
}

/// Answers `invite` with `status`, copying its dialog headers; `body` as SDP when given.
fn reply(invite: &str, status: &str, body: Option<&str>) -> String {
    let contact = header(invite, "To")
        .and_then(|to| to.split("127.0.0.1:").nth(1))
        .map(|rest| rest.trim_end_matches('>').to_owned())
        .unwrap_or_default();
    let mut text = format!("SIP/2.0 {status}\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        text.push_str(&format!("{name}: {}\r\n", header(invite, name).unwrap()));
    }
    text.push_str(&format!(
        "To: {};tag=bob\r\n",
        header(invite, "To").unwrap()
    ));
    text.push_str(&format!("Contact: <sip:bob@127.0.0.1:{contact}>\r\n"));
    match body {
        Some(sdp) => text.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )),
        None => text.push_str("Content-Length: 0\r\n\r\n"),
    }
    text
}

/// Waits for tutti's CANCEL of `invite`; the phone confirms it and ends the INVITE with 487.
async fn confirm_cancel(peer: &Peer, invite: &str) -> String {
    let cancel = peer.expect("CANCEL ").await;
    for answer in [
        reply(&cancel, "200 OK", None),
        reply(invite, "487 Request Terminated", None),
    ] {
        peer.socket
            .send_to(answer.as_bytes(), peer.server)
            .await
            .unwrap();
    }
    cancel
}

async fn status_becomes(
    world: &World,
    call: uuid::Uuid,
    status: CallStatus,
) -> tutti_conference::Call {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let found = world
            .service
            .call(world.account, &call.to_string())
            .unwrap();
        if found.status == status {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{call} stayed {:?}",
            found.status
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_dialed_phone_that_answers_joins_the_conference() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let call = dial(&world, &peer, Duration::from_secs(10));
    let invite = peer.expect("INVITE ").await;
    assert!(invite.starts_with(&format!("INVITE sip:bob@127.0.0.1:{}", peer.port())));
    assert!(invite.contains("m=audio 41000 RTP/AVP 0"), "{invite}");
    assert!(header(&invite, "From").unwrap().contains("Standup"));
    peer.socket
        .send_to(reply(&invite, "180 Ringing", None).as_bytes(), peer.server)
        .await
        .unwrap();
    assert_eq!(
        world
            .service
            .call(world.account, &call.to_string())
            .unwrap()
            .status,
        CallStatus::Dialing
    );
    peer.socket
        .send_to(
            reply(&invite, "200 OK", Some(OFFER)).as_bytes(),
            peer.server,
        )
        .await
        .unwrap();
    peer.expect("ACK ").await;
    status_becomes(&world, call, CallStatus::Joined).await;
    assert_eq!(world.participants(), 1);
}

#[tokio::test]
async fn a_busy_phone_is_reported_with_its_sip_status() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let call = dial(&world, &peer, Duration::from_secs(10));
    let invite = peer.expect("INVITE ").await;
    peer.socket
        .send_to(
            reply(&invite, "486 Busy Here", None).as_bytes(),
            peer.server,
        )
        .await
        .unwrap();
    let failed = status_becomes(&world, call, CallStatus::Leaved).await;
    assert_eq!(failed.failure.as_deref(), Some("SIP 486 Busy Here"));
    assert_eq!(world.participants(), 0);
}

#[tokio::test]
async fn a_phone_that_never_answers_is_given_up_with_408() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let call = dial(&world, &peer, Duration::from_millis(300));
    let invite = peer.expect("INVITE ").await;
    peer.socket
        .send_to(reply(&invite, "180 Ringing", None).as_bytes(), peer.server)
        .await
        .unwrap();
    confirm_cancel(&peer, &invite).await;
    let failed = status_becomes(&world, call, CallStatus::Leaved).await;
    assert_eq!(failed.failure.as_deref(), Some("SIP 408 no answer"));
}

#[tokio::test]
async fn a_ringing_call_removed_through_the_api_is_cancelled() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let call = dial(&world, &peer, Duration::from_secs(30));
    let invite = peer.expect("INVITE ").await;
    peer.socket
        .send_to(reply(&invite, "180 Ringing", None).as_bytes(), peer.server)
        .await
        .unwrap();
    // A VoIPbin DELETE or a Kazoo kick of the ringing call.
    let service = world.service.clone();
    let account = world.account;
    tokio::task::spawn_blocking(move || service.kick_call(account, &call.to_string()))
        .await
        .unwrap()
        .unwrap();
    let cancel = confirm_cancel(&peer, &invite).await;
    assert_eq!(header(&cancel, "Call-ID"), header(&invite, "Call-ID"));
    let cancelled = status_becomes(&world, call, CallStatus::Leaved).await;
    assert_eq!(cancelled.failure.as_deref(), Some("cancelled"));
    assert_eq!(world.participants(), 0);
}
