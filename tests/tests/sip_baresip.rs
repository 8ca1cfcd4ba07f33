//! The real server with baresip as the phone: it dials conference numbers, is heard by and
//! hears a GStreamer caller joined through the API, enters PINs (RFC 4733 from baresip, SIP
//! INFO from SIPp), is kicked, holds and resumes, hangs up, and is challenged for credentials;
//! the `dial` action calls an answering baresip in, and a busy target leaves with its status.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tutti_e2e::amplitude_at;
use tutti_e2e::baresip::{Phone, PhoneSettings};
use tutti_e2e::gst::{tempdir, window, Caller, Codec};
use tutti_e2e::kazoo::Session;
use tutti_e2e::sip::{self, wait_until_up};
use tutti_e2e::sipp::{scenario, Scenario, Sipp};

const WITHIN: Duration = Duration::from_secs(10);

/// A server with SIP on a free port, loopback a trunk of its account when `trunk`.
fn start(dir: &std::path::Path, media_ports: (u16, u16), trunk: bool) -> (Session, SocketAddr) {
    let session = Session::start_configured(dir, media_ports, &[], |account| {
        sip::config(trunk.then_some(account))
    });
    let sip = session.server.sip;
    wait_until_up(sip, WITHIN);
    (session, sip)
}

/// A conference with `document`'s fields over quiet defaults (no prompts, no tones, members
/// speak); its id.
fn conference(session: &Session, document: Value) -> String {
    let mut full = json!({"name": "SIP", "play_welcome": false, "play_entry_tone": false, "play_exit_tone": false, "member": {"join_muted": false}});
    for (key, value) in document.as_object().unwrap() {
        full[key] = value.clone();
    }
    session.create(full)
}

/// Polls `read` every 50 ms until it gives something, at most `within`.
fn poll<T>(what: &str, within: Duration, mut read: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = read() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The conference's participants.
fn participants(session: &Session, conference: &str) -> Vec<Value> {
    let (status, body) = session.call("GET", &format!("/{conference}/participants"), None);
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

/// The one participant not in `others`, once there is exactly one.
fn newcomer(session: &Session, conference: &str, others: &[u64]) -> Value {
    poll("the SIP caller's arrival", WITHIN, || {
        let mut new: Vec<Value> = participants(session, conference)
            .into_iter()
            .filter(|p| !others.contains(&p["participant_id"].as_u64().unwrap_or(0)))
            .collect();
        (new.len() == 1).then(|| new.remove(0))
    })
}

/// Whether the participant `id` shows as talking in the conference's realtime data.
fn talking(session: &Session, conference: &str, id: u64) -> bool {
    let (_, body) = session.call("GET", &format!("/{conference}"), None);
    body["data"]["_read_only"]["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["participant_id"] == json!(id) && p["talking"] == json!(true))
}

/// The strongest `hz` component over any second of `samples` (half-second steps).
fn loudest(samples: &[f32], rate: u32, hz: f64) -> f64 {
    let seconds = samples.len() as f64 / f64::from(rate);
    let mut best: f64 = 0.0;
    let mut from = 0.0;
    while from + 1.0 <= seconds {
        best = best.max(amplitude_at(
            window(samples, rate, from, from + 1.0),
            rate,
            hz,
        ));
        from += 0.5;
    }
    best
}

/// Stops `caller` (sending 880 Hz) and asserts that it heard the phone's 440 Hz and the phone
/// (its call over) heard it and not itself.
fn heard_each_other(caller: Caller, phone: &Phone) {
    let (rtp_heard, rate) = caller.finish();
    let (phone_heard, phone_rate) = phone.heard();
    assert!(
        loudest(&rtp_heard, rate, 440.0) > 0.05,
        "the RTP caller hears the phone"
    );
    assert!(
        loudest(&phone_heard, phone_rate, 880.0) > 0.05,
        "the phone hears the RTP caller"
    );
    assert!(
        loudest(&phone_heard, phone_rate, 440.0) < 0.01,
        "the phone does not hear itself"
    );
}

/// Kicks participant `id` through the API; `phone`, its far end, gets a BYE.
fn kick(session: &Session, conference: &str, id: u64, phone: &mut Phone) {
    let (status, body) = session.call(
        "PUT",
        &format!("/{conference}/participants/{id}"),
        Some(json!({"action": "kick", "data": {}})),
    );
    assert_eq!(status, 202, "{body}");
    let closed = phone.wait_for("CALL_CLOSED", WITHIN);
    assert_eq!(closed["param"], "Connection reset by peer", "{closed}");
}

fn dial(phone: &mut Phone, number: &str, server: SocketAddr) {
    phone.dial(&format!("sip:{number}@{server}"));
    phone.wait_for("CALL_ESTABLISHED", WITHIN);
}

#[test]
fn baresip_and_an_rtp_caller_hear_each_other() {
    let dir = tempdir("sip-talk");
    let (session, server) = start(&dir, (34_100, 34_199), true);
    let id = conference(&session, json!({"conference_numbers": ["4000"]}));
    let (caller, caller_id) = session.join(&id, Codec::Pcmu, 880.0, false, dir.join("rtp.wav"));
    let mut phone = Phone::start(&dir.join("phone"), &PhoneSettings::new("alice", 440));
    dial(&mut phone, "4000", server);
    let sip_id = newcomer(&session, &id, &[caller_id])["participant_id"]
        .as_u64()
        .unwrap();
    poll("the phone talking", WITHIN, || {
        talking(&session, &id, sip_id).then_some(())
    });
    // Three seconds of conversation to measure.
    std::thread::sleep(Duration::from_secs(3));
    phone.hang_up();
    phone.wait_for("CALL_CLOSED", WITHIN);
    heard_each_other(caller, &phone);
    session.server.stop();
}

#[test]
fn pins_entered_by_rfc_4733_and_by_sip_info_at_the_general_number() {
    let dir = tempdir("sip-pins");
    let (session, server) = start(&dir, (34_200, 34_299), true);
    let id = conference(
        &session,
        json!({"conference_numbers": ["4001"], "member": {"join_muted": false, "pins": ["1111"]}, "moderator": {"pins": ["2222"]}}),
    );
    let (status, body) = session.server.call(
        "PUT",
        &format!("/v2/accounts/{}/sip", session.account),
        Some(&session.token),
        Some(json!({"data": {"numbers": [{"number": "5000"}]}})),
    );
    assert_eq!(status, 200, "{body}");

    // baresip: RFC 4733 telephone-events; the conference number, then the member PIN.
    let mut phone = Phone::start(&dir.join("phone"), &PhoneSettings::new("alice", 440));
    dial(&mut phone, "5000", server);
    phone.send_digits("4001#");
    phone.send_digits("1111#");
    let member = newcomer(&session, &id, &[]);
    assert_eq!(member["is_moderator"], false, "{member}");
    let member_id = member["participant_id"].as_u64().unwrap();

    // SIPp: the same through SIP INFO (application/dtmf-relay), with the moderator PIN.
    let digits = dir.join("digits.csv");
    std::fs::write(&digits, "SEQUENTIAL\n4;0;0;1;#;2;2;2;2;#\n").unwrap();
    let local: SocketAddr = format!("127.0.0.1:{}", sip::free_port()).parse().unwrap();
    let path = scenario("info_dtmf");
    let sipp = Sipp::start(
        &dir,
        local,
        Scenario::File(&path),
        &[
            &server.to_string(),
            "-s",
            "5000",
            "-m",
            "1",
            "-inf",
            &digits.to_string_lossy(),
        ],
    );
    let moderator = newcomer(&session, &id, &[member_id]);
    assert_eq!(moderator["is_moderator"], true, "{moderator}");
    sipp.finish(Duration::from_secs(30))
        .assert_passed("PIN by INFO");
    phone.hang_up();
    phone.wait_for("CALL_CLOSED", WITHIN);
    session.server.stop();
}

#[test]
fn a_caller_kicked_through_the_api_gets_a_bye() {
    let dir = tempdir("sip-kick");
    let (session, server) = start(&dir, (34_300, 34_399), true);
    let id = conference(&session, json!({"conference_numbers": ["4000"]}));
    let mut phone = Phone::start(&dir.join("phone"), &PhoneSettings::new("alice", 440));
    dial(&mut phone, "4000", server);
    let sip_id = newcomer(&session, &id, &[])["participant_id"]
        .as_u64()
        .unwrap();
    kick(&session, &id, sip_id, &mut phone);
    poll("the kicked caller's leaving", WITHIN, || {
        participants(&session, &id).is_empty().then_some(())
    });
    session.server.stop();
}

#[test]
fn a_call_on_hold_is_not_heard_and_is_again_once_resumed() {
    let dir = tempdir("sip-hold");
    let (session, server) = start(&dir, (34_400, 34_499), true);
    let id = conference(&session, json!({"conference_numbers": ["4000"]}));
    let (listener, listener_id) =
        session.join(&id, Codec::Pcmu, 0.0, false, dir.join("listener.wav"));
    let mut phone = Phone::start(&dir.join("phone"), &PhoneSettings::new("alice", 440));
    dial(&mut phone, "4000", server);
    let sip_id = newcomer(&session, &id, &[listener_id])["participant_id"]
        .as_u64()
        .unwrap();
    let is_talking = |talks: bool| {
        poll(
            if talks {
                "the phone talking"
            } else {
                "the phone falling silent"
            },
            WITHIN,
            || (talking(&session, &id, sip_id) == talks).then_some(()),
        )
    };
    is_talking(true);
    let talked = Instant::now();
    phone.hold();
    is_talking(false);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !phone.sees("CALL_CLOSED", Duration::ZERO),
        "the call survives the hold"
    );
    phone.resume();
    is_talking(true);
    let resumed = talked.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        newcomer(&session, &id, &[listener_id])["participant_id"],
        json!(sip_id)
    );
    phone.hang_up();
    phone.wait_for("CALL_CLOSED", WITHIN);

    let (heard, rate) = listener.finish();
    assert!(loudest(&heard, rate, 440.0) > 0.05, "heard before the hold");
    // The listener's recording started before the phone talked: its last 2 s are after the
    // resume, and a quiet second lies between.
    let after = window(
        &heard,
        rate,
        heard.len() as f64 / f64::from(rate) - 2.0,
        heard.len() as f64 / f64::from(rate) - 1.0,
    );
    assert!(
        amplitude_at(after, rate, 440.0) > 0.05,
        "heard after the resume"
    );
    let quietest = (0..((resumed * 2.0) as usize))
        .map(|half| {
            let from = half as f64 / 2.0;
            amplitude_at(window(&heard, rate, from, from + 1.0), rate, 440.0)
        })
        .fold(f64::MAX, f64::min);
    assert!(quietest < 0.01, "a silent second while on hold");
    session.server.stop();
}

#[test]
fn a_caller_who_hangs_up_is_leaved_in_the_voipbin_face() {
    let dir = tempdir("sip-leaved");
    let (session, server) = start(&dir, (34_500, 34_599), true);
    let id = conference(&session, json!({"conference_numbers": ["4000"]}));
    let mut phone = Phone::start(&dir.join("phone"), &PhoneSettings::new("alice", 440));
    dial(&mut phone, "4000", server);
    // The VoIPbin face takes the token as a query parameter.
    let token = &session.token;
    let call = poll("the VoIPbin conferencecall", WITHIN, || {
        let (_, calls) = session.server.call(
            "GET",
            &format!("/v1.0/conferencecalls?token={token}"),
            None,
            None,
        );
        calls["result"].as_array().and_then(|calls| {
            calls
                .iter()
                // VoIPbin writes ids hyphenated, Kazoo without hyphens.
                .find(|c| {
                    c["conference_id"]
                        .as_str()
                        .unwrap_or_default()
                        .replace('-', "")
                        == id
                        && c["status"] == "joined"
                })
                .map(|c| c["id"].as_str().unwrap().to_owned())
        })
    });
    phone.hang_up();
    phone.wait_for("CALL_CLOSED", WITHIN);
    poll("the call going leaved", WITHIN, || {
        let (_, found) = session.server.call(
            "GET",
            &format!("/v1.0/conferencecalls/{call}?token={token}"),
            None,
            None,
        );
        (found["status"] == "leaved").then_some(())
    });
    session.server.stop();
}

#[test]
fn callers_from_outside_the_trunks_are_challenged_and_a_wrong_password_is_refused() {
    let dir = tempdir("sip-digest");
    let (session, server) = start(&dir, (34_600, 34_699), false);
    let id = conference(&session, json!({"conference_numbers": ["4000"]}));
    // Without credentials: a digest challenge for the realm.
    let challenge = sip::exchange(
        server,
        &sip::invite("4000", "anonymous", sip::INVITE_HEADERS),
        WITHIN,
    )
    .expect("an answer");
    assert_eq!(sip::status(&challenge), Some(401), "{challenge}");
    assert!(
        challenge
            .lines()
            .any(|l| l.starts_with("WWW-Authenticate: Digest realm=\"tutti\"")),
        "{challenge}"
    );

    let (status, body) = session.server.call(
        "PUT",
        &format!("/v2/accounts/{}/sip", session.account),
        Some(&session.token),
        Some(
            json!({"data": {"credentials": [{"username": "alice", "password": "correct-horse"}]}}),
        ),
    );
    assert_eq!(status, 200, "{body}");

    // baresip reads an account parameter up to a space: passwords here have none.
    let wrong = PhoneSettings::new("alice", 440).with_auth("alice", "wrong-horse");
    let mut wrong = Phone::start(&dir.join("wrong"), &wrong);
    wrong.dial(&format!("sip:4000@{server}"));
    let closed = wrong.wait_for("CALL_CLOSED", WITHIN);
    assert_eq!(closed["param"], "403 Forbidden", "{closed}");
    assert!(participants(&session, &id).is_empty());

    let right = PhoneSettings::new("alice", 440).with_auth("alice", "correct-horse");
    let mut right = Phone::start(&dir.join("right"), &right);
    dial(&mut right, "4000", server);
    newcomer(&session, &id, &[]);
    right.hang_up();
    right.wait_for("CALL_CLOSED", WITHIN);
    session.server.stop();
}

#[test]
fn the_dial_action_calls_a_phone_into_the_conference() {
    let dir = tempdir("sip-dial");
    let (session, _) = start(&dir, (34_800, 34_899), true);
    let id = conference(&session, json!({}));
    let (caller, caller_id) = session.join(&id, Codec::Pcmu, 880.0, false, dir.join("rtp.wav"));
    let mut phone = Phone::start(
        &dir.join("phone"),
        &PhoneSettings::new("bob", 440).answering(),
    );
    let (status, body) = session.call(
        "PUT",
        &format!("/{id}"),
        Some(json!({"action": "dial", "data": {"data": {"endpoints": [format!("sip:bob@{}", phone.sip)], "caller_id_number": "100", "timeout": 20}}})),
    );
    assert_eq!(status, 202, "{body}");
    let established = phone.wait_for("CALL_ESTABLISHED", WITHIN);
    assert_eq!(established["direction"], "incoming", "{established}");
    let bob = newcomer(&session, &id, &[caller_id])["participant_id"]
        .as_u64()
        .unwrap();
    poll("the phone talking", WITHIN, || {
        talking(&session, &id, bob).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    // Kicked through the API, the dialed phone gets a BYE like a caller who dialed in.
    kick(&session, &id, bob, &mut phone);
    heard_each_other(caller, &phone);
    session.server.stop();
}

#[test]
fn a_busy_dial_target_leaves_with_its_sip_status_in_the_voipbin_face() {
    let dir = tempdir("sip-busy");
    let (session, _) = start(&dir, (34_900, 34_999), true);
    let id = conference(&session, json!({}));
    let far: SocketAddr = format!("127.0.0.1:{}", sip::free_port()).parse().unwrap();
    let path = scenario("uas_busy");
    let busy = Sipp::start(&dir, far, Scenario::File(&path), &["-m", "1"]);
    let token = &session.token;
    let conference_id = format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    );
    let (status, call) = session.server.call(
        "POST",
        &format!("/v1.0/conferences/{conference_id}/dial?token={token}"),
        None,
        Some(json!({"destination": format!("sip:carol@{far}")})),
    );
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["status"], "dialing", "{call}");
    let call_id = call["id"].as_str().unwrap().to_owned();
    let left = poll("the dialed call leaving", WITHIN, || {
        let (_, found) = session.server.call(
            "GET",
            &format!("/v1.0/conferencecalls/{call_id}?token={token}"),
            None,
            None,
        );
        (found["status"] == "leaved").then_some(found)
    });
    assert!(left["hangup_reason"].to_string().contains("486"), "{left}");
    busy.finish(WITHIN).assert_passed("busy");
    session.server.stop();
}
