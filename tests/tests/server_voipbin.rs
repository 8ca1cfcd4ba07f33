//! The real server through the VoIPbin face with GStreamer callers: a `connect` conference
//! ends when one side leaves, a recording holds both talkers' tones, a `timeout` ends a
//! conference with a caller in it, and the account's webhooks arrive signed, retried after
//! the receiver first fails.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tutti_api::webhooks::{verify, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use tutti_e2e::gst::{answer_target, free_port, tempdir, Caller, Codec};
use tutti_e2e::hooks::{Hook, HookReceiver};
use tutti_e2e::kazoo;
use tutti_e2e::server::Server;
use tutti_e2e::{amplitude_at, http, rms};

struct Session {
    server: Server,
    token: String,
    account: String,
}

impl Session {
    fn start(dir: &std::path::Path, media_ports: (u16, u16)) -> Self {
        // Tokens are shared between faces: Kazoo's api_auth gives one VoIPbin accepts.
        let kazoo::Session {
            server,
            token,
            account,
            ..
        } = kazoo::Session::start(dir, media_ports);
        Session {
            server,
            token,
            account,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.server.call_bearer(&self.token, method, path, body)
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {body}");
        body
    }

    /// Joins a GStreamer caller as a conferencecall; returns it and the call's id.
    fn join(&self, conference: &str, hz: f64, recording: std::path::PathBuf) -> (Caller, String) {
        let listen = free_port();
        let call = self.ok(
            "POST",
            "/v1.0/conferencecalls",
            // GStreamer sends from one port and receives on another: no latching.
            Some(json!({"conference_id": conference, "sdp": Codec::Pcmu.sdp(listen), "latching": false})),
        );
        let to = answer_target(call["sdp"].as_str().unwrap());
        (
            Caller::start(Codec::Pcmu, hz, listen, to, recording),
            call["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Reads `path` until `check` holds, for at most 15 s.
    fn wait_for(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let body = self.ok("GET", path, None);
            if check(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never got there: {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn delivered_types(hooks: &[Hook]) -> Vec<String> {
    hooks
        .iter()
        .filter(|h| h.answered == 200)
        .map(|h| h.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn connect_recording_timeout_and_signed_webhooks_with_real_callers() {
    let dir = tempdir("voipbin");
    let session = Session::start(&dir, (33_300, 33_399));
    let receiver = HookReceiver::start(1);
    let customer = session.ok(
        "PUT",
        "/v1.0/customer",
        Some(json!({"webhook_method": "POST", "webhook_uri": receiver.url("/hooks")})),
    );
    let secret = customer["webhook_secret"].as_str().unwrap().to_owned();

    // A two-party connect conference with two tone callers, recorded.
    let conference = session.ok(
        "POST",
        "/v1.0/conferences",
        Some(json!({"type": "connect", "name": "pair"})),
    );
    let id = conference["id"].as_str().unwrap().to_owned();
    let (low, low_call) = session.join(&id, 440.0, dir.join("low.wav"));
    let (high, high_call) = session.join(&id, 1320.0, dir.join("high.wav"));
    session.wait_for(&format!("/v1.0/conferences/{id}"), |c| {
        c["status"] == "progressing"
            && c["conferencecall_ids"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
    });
    // Through the Kazoo face, wait until both callers are heard talking.
    let kazoo = format!(
        "/v2/accounts/{}/conferences/{}",
        session.account,
        id.replace('-', "")
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, body) = session
            .server
            .call("GET", &kazoo, Some(&session.token), None);
        let talking = body["data"]["_read_only"]["participants"]
            .as_array()
            .map_or(0, |p| {
                p.iter().filter(|p| p["talking"] == json!(true)).count()
            });
        if talking == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the callers never talked: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = session.ok(
        "POST",
        &format!("/v1.0/conferences/{id}/recording_start"),
        Some(json!({"format": "wav", "duration": 60})),
    );
    let recording_id = started["recording_id"].as_str().unwrap().to_owned();
    // Record two seconds of the room.
    std::thread::sleep(Duration::from_secs(2));
    let (status, again) = session.call(
        "POST",
        &format!("/v1.0/conferences/{id}/recording_start"),
        Some(json!({})),
    );
    assert_eq!(
        (status, again["error"]["status"].clone()),
        (409, json!("FAILED_PRECONDITION"))
    );
    session.ok(
        "POST",
        &format!("/v1.0/conferences/{id}/recording_stop"),
        None,
    );

    // The recording downloads as a WAV file holding both tones.
    let bearer = format!("Bearer {}", session.token);
    let path = format!("/v1.0/recordings/{recording_id}/file");
    let file = dir.join("download.wav");
    let deadline = Instant::now() + Duration::from_secs(10);
    while download(session.server.address, &path, &bearer, &file) != 200 {
        assert!(
            Instant::now() < deadline,
            "the recording never became downloadable"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (mix, rate) = tutti_e2e::read_wav(&file);
    assert!(
        mix.len() as f64 > 1.5 * f64::from(rate),
        "{} samples",
        mix.len()
    );
    let middle = &mix[mix.len() / 4..mix.len() * 3 / 4];
    for hz in [440.0, 1320.0] {
        assert!(
            amplitude_at(middle, rate, hz) > 0.02,
            "{hz} Hz missing from the recording"
        );
    }
    assert!(
        amplitude_at(middle, rate, 880.0) < 0.01,
        "a tone that nobody sent is in the recording"
    );

    // Kicking one side of a connect conference removes the other and ends it.
    let kicked = session.ok("DELETE", &format!("/v1.0/conferencecalls/{low_call}"), None);
    assert!(
        ["leaving", "leaved"].contains(&kicked["status"].as_str().unwrap()),
        "{kicked}"
    );
    session.wait_for(&format!("/v1.0/conferencecalls/{high_call}"), |c| {
        c["status"] == "leaved"
    });
    let ended = session.wait_for(&format!("/v1.0/conferences/{id}"), |c| {
        c["status"] == "terminated"
    });
    assert_eq!(ended["conferencecall_ids"], json!([]));
    assert_ne!(ended["tm_delete"], "9999-01-01 00:00:00.000000");
    let (low_heard, rate) = low.finish();
    let _ = high.finish();
    assert!(
        amplitude_at(&low_heard[low_heard.len() / 4..], rate, 1320.0) > 0.02,
        "the 440 Hz caller did not hear the other"
    );

    // A conference with a 2-second timeout ends by itself with its caller in it.
    let timed = session.ok("POST", "/v1.0/conferences", Some(json!({"timeout": 2})));
    let timed_id = timed["id"].as_str().unwrap().to_owned();
    let (caller, call) = session.join(&timed_id, 660.0, dir.join("timed.wav"));
    let joined_at = Instant::now();
    session.wait_for(&format!("/v1.0/conferences/{timed_id}"), |c| {
        c["status"] == "terminated"
    });
    assert!(joined_at.elapsed() < Duration::from_secs(5));
    assert_eq!(
        session.ok("GET", &format!("/v1.0/conferencecalls/{call}"), None)["status"],
        "leaved"
    );
    let (heard, rate) = caller.finish();
    let last = tutti_e2e::gst::tail(&heard, rate, 0.5);
    assert!(
        last.is_empty() || rms(last) < 0.01,
        "the kicked caller still hears something"
    );

    // The webhooks: every step arrived signed; the first delivery was retried after a 500.
    let hooks = receiver.collect_until(Duration::from_secs(20), |hooks| {
        let types = delivered_types(hooks);
        types
            .iter()
            .filter(|t| *t == "conferencecall_leaved")
            .count()
            >= 3
            && types.iter().any(|t| t == "conference_deleted")
    });
    assert_eq!(hooks[0].answered, 500);
    let first_retry = hooks.iter().find(|h| h.answered == 200).unwrap();
    assert_eq!(
        first_retry.headers["x-tutti-delivery"],
        hooks[0].headers["x-tutti-delivery"]
    );
    for hook in &hooks {
        assert_eq!(hook.path, "/hooks");
        let timestamp: i64 = hook.headers[&TIMESTAMP_HEADER.to_ascii_lowercase()]
            .parse()
            .unwrap();
        let signature = &hook.headers[&SIGNATURE_HEADER.to_ascii_lowercase()];
        assert!(
            verify(&secret, timestamp, hook.body.as_bytes(), signature),
            "bad signature on {}",
            hook.body
        );
        assert!(!verify(
            "another secret",
            timestamp,
            hook.body.as_bytes(),
            signature
        ));
    }
    let types = delivered_types(&hooks);
    for expected in [
        "conference_created",
        "conferencecall_joining",
        "conferencecall_joined",
        "conference_updated",
        "conferencecall_leaving",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "no {expected} in {types:?}"
        );
    }
    let joined = hooks
        .iter()
        .map(Hook::json)
        .find(|h| h["type"] == "conferencecall_joined")
        .unwrap();
    assert_eq!(joined["data"]["conference_id"], json!(id));
    assert_eq!(joined["data"]["status"], "joined");

    // A FoneStorm conference with a callback_url: a caller joining through VoIPbin by the
    // conference's id is announced to it (join, status, leave), signed the same way.
    let callbacks = HookReceiver::start(0);
    let (status, created) = http(
        session.server.address,
        "POST",
        "/v2/conferences",
        &[("token", &session.token)],
        Some(&json!({"label": "scheduled", "callback_url": callbacks.url("/fonestorm"), "organizer": "ann"}).to_string()),
    )
    .unwrap();
    assert_eq!(status, 201, "{created}");
    let created: Value = serde_json::from_str(&created).unwrap();
    let scheduled = created["conference"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["conference"]["conference_pin"]
            .as_str()
            .unwrap()
            .len(),
        6
    );
    let (caller, call) = session.join(&scheduled, 550.0, dir.join("scheduled.wav"));
    session.ok("DELETE", &format!("/v1.0/conferencecalls/{call}"), None);
    drop(caller);
    let got = callbacks.collect_until(Duration::from_secs(20), |hooks| {
        hooks.iter().any(|h| h.json()["event"] == "leave")
    });
    let events: Vec<Value> = got.iter().map(Hook::json).collect();
    let join = events
        .iter()
        .find(|e| e["event"] == "join")
        .expect("a join callback");
    assert_eq!(join["conference"]["id"], json!(scheduled));
    assert_eq!(join["conference"]["label"], "scheduled");
    assert!(events.iter().any(|e| e["event"] == "status"), "{events:?}");
    for hook in &got {
        let timestamp: i64 = hook.headers[&TIMESTAMP_HEADER.to_ascii_lowercase()]
            .parse()
            .unwrap();
        assert!(verify(
            &secret,
            timestamp,
            hook.body.as_bytes(),
            &hook.headers[&SIGNATURE_HEADER.to_ascii_lowercase()]
        ));
    }
    session.server.stop();
}

/// Downloads `path` to `file` (binary body); returns the status.
fn download(address: SocketAddr, path: &str, bearer: &str, file: &std::path::Path) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = response[split..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    std::fs::write(file, body).unwrap();
    status
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

#[test]
fn a_talk_pre_action_is_spoken_to_the_caller_alone_before_it_joins() {
    let dir = tempdir("voipbin-talk");
    let session = Session::start(&dir, (33_400, 33_499));
    let conference = session.ok(
        "POST",
        "/v1.0/conferences",
        Some(json!({"pre_actions": [{"type": "talk", "option": {"text": "Welcome to the conference. Please wait while we connect you.", "language": "en-US", "gender": "female"}}]})),
    );
    let id = conference["id"].as_str().unwrap().to_owned();
    // A caller already in the room sends a tone the newcomer must not hear while it waits.
    let (talker, talker_call) = session.join(&id, 440.0, dir.join("talker.wav"));
    session.wait_for(&format!("/v1.0/conferencecalls/{talker_call}"), |c| {
        c["status"] == "joined"
    });
    let (newcomer, call) = session.join(&id, 0.0, dir.join("newcomer.wav"));
    let joining = session.ok("GET", &format!("/v1.0/conferencecalls/{call}"), None);
    assert_eq!(joining["status"], "joining");
    session.wait_for(&format!("/v1.0/conferencecalls/{call}"), |c| {
        c["status"] == "joined"
    });
    let (heard, rate) = newcomer.finish();
    let _ = talker.finish();
    // What it heard before joining (the last half second may already be the room).
    let seconds = heard.len() as f64 / f64::from(rate);
    assert!(seconds > 1.0, "only {seconds:.2} s heard");
    let waiting = tutti_e2e::gst::window(&heard, rate, 0.0, seconds - 0.5);
    assert!(
        rms(waiting) > 0.01,
        "no speech heard (rms {})",
        rms(waiting)
    );
    let tone = amplitude_at(waiting, rate, 440.0);
    assert!(
        tone < 0.005,
        "the room's 440 Hz was heard while joining ({tone})"
    );
    session.server.stop();
}
