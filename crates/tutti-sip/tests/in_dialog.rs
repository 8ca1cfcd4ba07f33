//! What a caller does inside an answered call: digest-authenticated calls, INFO keys acting as
//! caller controls, re-INVITE holds, and a late offer completed by the ACK.

mod common;

use common::{header, to_tag, Peer, World, OFFER};
use rsipstack::dialog::authenticate::compute_digest;
use rsipstack::sip::headers::auth::{Algorithm, AuthQop};
use rsipstack::sip::Method;

const CONFERENCE: &str = "sip:1000@127.0.0.1";
const SDP: &str = "Content-Type: application/sdp\r\n";

/// Joins a trusted caller; returns the To tag.
async fn joined(peer: &Peer, call: &str) -> String {
    peer.send(&peer.request("INVITE", CONFERENCE, (call, 1, None), SDP, OFFER))
        .await;
    let tag = to_tag(&peer.expect("SIP/2.0 200").await);
    peer.send(&peer.request("ACK", CONFERENCE, (call, 1, Some(&tag)), "", ""))
        .await;
    tag
}

#[tokio::test]
async fn an_accounts_sip_credentials_admit_its_callers_and_a_wrong_password_does_not() {
    let world = World::new();
    world
        .service
        .replace_sip_directory(
            world.account,
            &serde_json::json!({"credentials": [{"username": "alice", "password": "correct horse"}]}),
        )
        .unwrap();
    let server = world.sip(false).await;
    let peer = Peer::new(&server).await;
    for (attempt, (password, status)) in [("wrong horse", "403"), ("correct horse", "200")]
        .into_iter()
        .enumerate()
    {
        let call = format!("d{attempt}");
        peer.send(&peer.request("INVITE", CONFERENCE, (&call, 1, None), SDP, OFFER))
            .await;
        let challenge = peer.final_response().await;
        assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
        let offered = challenge
            .lines()
            .find(|l| l.contains("algorithm=MD5"))
            .expect("an MD5 challenge");
        let nonce = offered
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        // The response as rsipstack's own client computes it.
        let qop = AuthQop::Auth {
            cnonce: "f00d".into(),
            nc: 1,
        };
        let response = compute_digest(
            "alice",
            password,
            "tutti",
            nonce,
            &Method::Invite,
            CONFERENCE,
            Algorithm::Md5,
            Some(&qop),
        );
        let authorization = format!(
            "Authorization: Digest username=\"alice\", realm=\"tutti\", nonce=\"{nonce}\", \
             uri=\"{CONFERENCE}\", response=\"{response}\", algorithm=MD5, qop=auth, \
             nc=00000001, cnonce=\"f00d\"\r\n{SDP}"
        );
        peer.send(&peer.request(
            "INVITE",
            CONFERENCE,
            (&call, 2, None),
            &authorization,
            OFFER,
        ))
        .await;
        let answer = peer.final_response().await;
        assert!(answer.starts_with(&format!("SIP/2.0 {status}")), "{answer}");
    }
    assert_eq!(world.participants(), 1);
}

#[tokio::test]
async fn info_keys_work_the_caller_controls() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let tag = joined(&peer, "i1").await;
    // Members join muted; *3 unmutes, *2 mutes.
    assert!(!world.participant(1).speak);
    let relay = "Content-Type: application/dtmf-relay\r\n";
    let mut cseq = 1;
    for (keys, speaks) in [(["*", "3"], true), (["*", "2"], false)] {
        for key in keys {
            cseq += 1;
            let body = format!("Signal={key}\r\nDuration=160\r\n");
            peer.send(&peer.request("INFO", CONFERENCE, ("i1", cseq, Some(&tag)), relay, &body))
                .await;
            assert!(peer.final_response().await.starts_with("SIP/2.0 200"));
        }
        assert_eq!(world.participant(1).speak, speaks);
    }
    let text = "Content-Type: text/plain\r\n";
    peer.send(&peer.request(
        "INFO",
        CONFERENCE,
        ("i1", cseq + 1, Some(&tag)),
        text,
        "hello",
    ))
    .await;
    assert!(peer.final_response().await.starts_with("SIP/2.0 415"));
}

#[tokio::test]
async fn a_reinvite_holds_and_resumes_the_call_with_a_new_session_version() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    let tag = joined(&peer, "h1").await;
    let hold = OFFER.replace("a=sendrecv", "a=sendonly");
    peer.send(&peer.request("INVITE", CONFERENCE, ("h1", 2, Some(&tag)), SDP, &hold))
        .await;
    let held = peer.final_response().await;
    assert!(held.starts_with("SIP/2.0 200"), "{held}");
    assert!(held.contains("a=recvonly"), "{held}");
    assert!(held.contains("o=tutti 1 2 "), "{held}");
    peer.send(&peer.request("ACK", CONFERENCE, ("h1", 2, Some(&tag)), "", ""))
        .await;
    let garbage = "v=0\r\ns=nothing\r\n";
    peer.send(&peer.request("INVITE", CONFERENCE, ("h1", 3, Some(&tag)), SDP, garbage))
        .await;
    assert!(peer.final_response().await.starts_with("SIP/2.0 488"));
    peer.send(&peer.request("UPDATE", CONFERENCE, ("h1", 4, Some(&tag)), SDP, OFFER))
        .await;
    let resumed = peer.final_response().await;
    assert!(resumed.contains("a=sendrecv"), "{resumed}");
    assert_eq!(world.participants(), 1);
}

#[tokio::test]
async fn an_invite_without_sdp_gets_an_offer_and_joins_with_the_acks_answer() {
    let world = World::new();
    let server = world.sip(true).await;
    let peer = Peer::new(&server).await;
    peer.send(&peer.request("INVITE", CONFERENCE, ("l1", 1, None), "", ""))
        .await;
    let offer = peer.expect("SIP/2.0 200").await;
    assert!(offer.contains("m=audio 41000 RTP/AVP 0"), "{offer}");
    assert_eq!(header(&offer, "Content-Type"), Some("application/sdp"));
    assert_eq!(world.participants(), 0);
    let tag = to_tag(&offer);
    peer.send(&peer.request("ACK", CONFERENCE, ("l1", 1, Some(&tag)), SDP, OFFER))
        .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while world.participants() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the caller never joined"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
