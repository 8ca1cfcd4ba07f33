//! The SIP drivers proved against independent peers before tutti takes a side: baresip calls
//! SIPp's built-in UAS and SIPp scenarios (a far end that hangs up, a digest challenge).

use std::net::SocketAddr;
use std::time::Duration;

use tutti_e2e::baresip::{Phone, PhoneSettings};
use tutti_e2e::gst::{free_port, tempdir};
use tutti_e2e::sipp::{scenario, Scenario, Sipp};

const WITHIN: Duration = Duration::from_secs(10);

fn local() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

#[test]
fn baresip_calls_sipp_sends_digits_and_hangs_up() {
    let dir = tempdir("baresip-uas");
    let far = local();
    let sipp = Sipp::start(&dir, far, Scenario::BuiltIn("uas"), &["-m", "1"]);
    let mut phone = Phone::start(&dir.join("phone"), &PhoneSettings::new("caller", 440));
    phone.dial(&format!("sip:service@{far}"));
    let established = phone.wait_for("CALL_ESTABLISHED", WITHIN);
    assert_eq!(established["direction"], "outgoing", "{established}");
    phone.send_digits("12#");
    phone.hang_up();
    let closed = phone.wait_for("CALL_CLOSED", WITHIN);
    assert_eq!(closed["param"], "Connection reset by user", "{closed}");
    sipp.finish(WITHIN).assert_passed("uas");
}

#[test]
fn a_bye_from_the_far_end_closes_the_call() {
    let dir = tempdir("baresip-bye");
    let far = local();
    let sipp = Sipp::start(
        &dir,
        far,
        Scenario::File(&scenario("uas_answer_then_bye")),
        &["-m", "1"],
    );
    let mut phone = Phone::start(&dir.join("phone"), &PhoneSettings::new("caller", 440));
    phone.dial(&format!("sip:service@{far}"));
    phone.wait_for("CALL_ESTABLISHED", WITHIN);
    let closed = phone.wait_for("CALL_CLOSED", WITHIN);
    assert_eq!(closed["param"], "Connection reset by peer", "{closed}");
    sipp.finish(WITHIN).assert_passed("answer then BYE");
}

#[test]
fn baresip_answers_a_digest_challenge_and_a_wrong_password_is_refused() {
    let dir = tempdir("baresip-digest");
    for (password, accepted) in [("s3cret", true), ("wrong", false)] {
        let far = local();
        let sipp = Sipp::start(
            &dir,
            far,
            Scenario::File(&scenario("uas_digest")),
            &[
                "-m", "1", "-set", "user", "alice", "-set", "password", "s3cret",
            ],
        );
        let settings = PhoneSettings::new("alice", 440).with_auth("alice", password);
        let mut phone = Phone::start(&dir.join(password), &settings);
        phone.dial(&format!("sip:service@{far}"));
        if accepted {
            phone.wait_for("CALL_ESTABLISHED", WITHIN);
            phone.hang_up();
        }
        let closed = phone.wait_for("CALL_CLOSED", WITHIN);
        if !accepted {
            assert_eq!(closed["param"], "403 Forbidden", "{closed}");
        }
        sipp.finish(WITHIN).assert_passed(password);
    }
}

#[test]
fn an_answering_baresip_takes_a_call_from_sipp() {
    let dir = tempdir("baresip-incoming");
    let mut phone = Phone::start(
        &dir.join("phone"),
        &PhoneSettings::new("alice", 440).answering(),
    );
    let sipp = Sipp::start(
        &dir,
        local(),
        Scenario::BuiltIn("uac"),
        &[
            &phone.sip.to_string(),
            "-s",
            "alice",
            "-m",
            "1",
            "-d",
            "1000",
        ],
    );
    let established = phone.wait_for("CALL_ESTABLISHED", WITHIN);
    assert_eq!(established["direction"], "incoming", "{established}");
    let closed = phone.wait_for("CALL_CLOSED", WITHIN);
    assert_eq!(closed["param"], "Connection reset by peer", "{closed}");
    sipp.finish(WITHIN).assert_passed("uac");
}
