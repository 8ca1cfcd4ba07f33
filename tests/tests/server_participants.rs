//! The real server with GStreamer callers joined through the Kazoo face: talking shows in
//! `_read_only`, and mute and kick through the API are heard in another caller's audio.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tutti_e2e::amplitude_at;
use tutti_e2e::gst::{free_port, tail, tempdir, window, Codec};
use tutti_e2e::kazoo::Session;

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// A Kazoo websocket subscribed to the conference's events, reads timing out after
/// `read_timeout`.
fn subscribe(session: &Session, conference: &str, read_timeout: Duration) -> Socket {
    let (mut socket, _) =
        tungstenite::connect(format!("ws://{}/v2/websocket", session.server.address)).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream.set_read_timeout(Some(read_timeout)).unwrap();
    }
    let subscribe = json!({"action": "subscribe", "auth_token": session.token, "request_id": "1", "data": {"account_id": session.account, "binding": format!("conference.event.{conference}.*")}});
    socket
        .send(tungstenite::Message::Text(subscribe.to_string().into()))
        .unwrap();
    socket
}

#[test]
fn callers_joined_through_the_api_are_heard_muted_and_kicked() {
    let dir = tempdir("api-callers");
    let session = Session::start(&dir, (33_100, 33_199));
    let id = session.create(json!({"name": "E2E", "member": {"join_muted": false}, "play_entry_tone": false, "play_exit_tone": false}));

    // A websocket subscriber, as a Kazoo client would have.
    let mut socket = subscribe(&session, &id, Duration::from_secs(10));
    let reply: Value = serde_json::from_str(socket.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(reply["status"], "success", "{reply}");

    let (talker, talker_id) = session.join(&id, Codec::Pcmu, 440.0, false, dir.join("talker.wav"));
    let (moderator, moderator_id) =
        session.join(&id, Codec::Opus, 880.0, true, dir.join("moderator.wav"));
    let (listener, _) = session.join(&id, Codec::Pcmu, 0.0, false, dir.join("listener.wav"));

    // The tone's sender shows as talking, with its energy, in the conference's realtime data.
    // Talking comes from the engine's events and the energy from its periodic snapshot: the
    // two may show a moment apart.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = session.call("GET", &format!("/{id}"), None);
        let read_only = &body["data"]["_read_only"];
        let talking = read_only["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| {
                p["participant_id"] == json!(talker_id)
                    && p["talking"] == json!(true)
                    && p["current_energy"].as_i64().unwrap_or(0) > 1000
            });
        if talking {
            assert_eq!(read_only["members"], 2);
            assert_eq!(read_only["admins"], 1);
            let p = read_only["participants"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["participant_id"] == json!(talker_id))
                .unwrap();
            assert!(p["current_energy"].as_i64().unwrap() > 1000, "{p}");
            assert_eq!(p["caller_id_name"], "440 Hz");
            assert_eq!(p["conference_uuid"], json!(id));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "talking and its energy never showed: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Record the room while both talk.
    let record = |what: &str| {
        session.call(
            "PUT",
            &format!("/{id}"),
            Some(json!({"action": "record", "data": {"action": what}})),
        )
    };
    let (status, started) = record("start");
    assert_eq!(status, 202, "{started}");
    // The answer names the recording, not where the server keeps it (beside the database).
    let file = started["data"]["file"].as_str().unwrap();
    assert_eq!(
        file,
        format!("{}.wav", started["data"]["recording_id"].as_str().unwrap())
    );
    assert!(
        !started.to_string().contains(&*dir.to_string_lossy()),
        "{started}"
    );
    let recording = std::fs::read_dir(dir.join("recordings").join(&id))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "wav"))
        .expect("the recording's file");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(record("stop").0, 202);

    let (status, _) = session.call(
        "PUT",
        &format!("/{id}/participants/{talker_id}"),
        Some(json!({"data": {"action": "mute"}})),
    );
    assert_eq!(status, 202);
    let (status, _) = session.call(
        "PUT",
        &format!("/{id}/participants/{moderator_id}"),
        Some(json!({"action": "kick", "data": {}})),
    );
    assert_eq!(status, 202);
    let (_, participant) = session.call("GET", &format!("/{id}/participants/{talker_id}"), None);
    assert_eq!(participant["data"]["speak"], false);
    std::thread::sleep(Duration::from_millis(1500));
    let (_, participants) = session.call("GET", &format!("/{id}/participants"), None);
    let ids: Vec<u64> = participants["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["participant_id"].as_u64().unwrap())
        .collect();
    assert!(
        !ids.contains(&moderator_id) && ids.contains(&talker_id),
        "{ids:?}"
    );

    let (heard, rate) = listener.finish();
    drop((talker, moderator));
    let before = window(&heard, rate, 1.0, 2.5);
    assert!(
        amplitude_at(before, rate, 440.0) > 0.1,
        "the listener heard the talker"
    );
    assert!(
        amplitude_at(before, rate, 880.0) > 0.1,
        "the listener heard the moderator"
    );
    let after = tail(&heard, rate, 1.0);
    assert!(
        amplitude_at(after, rate, 440.0) < 0.01,
        "the muted talker is silent"
    );
    assert!(
        amplitude_at(after, rate, 880.0) < 0.01,
        "the kicked moderator is gone"
    );
    // The recording holds both talkers (the writer closes it right after the stop).
    let deadline = Instant::now() + Duration::from_secs(5);
    let (recorded, rate) = loop {
        if let Ok(reader) = hound::WavReader::open(&recording) {
            if reader.duration() > 48_000 {
                break tutti_e2e::read_wav(&recording);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no recording at {}",
            recording.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        (1.8..2.3).contains(&(recorded.len() as f64 / f64::from(rate))),
        "{} samples",
        recorded.len()
    );
    assert!(
        amplitude_at(&recorded, rate, 440.0) > 0.1 && amplitude_at(&recorded, rate, 880.0) > 0.1
    );
    session.server.stop();
}

#[test]
fn joins_are_refused_with_clear_errors() {
    let dir = tempdir("api-refusals");
    let session = Session::start(&dir, (33_200, 33_299));
    let id = session.create(json!({"name": "Small", "max_participants": 1}));
    let offer = |port: u16| Codec::Pcmu.sdp(port);

    let g729 = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7078 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let (status, body) = session.call(
        "PUT",
        &format!("/{id}/participants"),
        Some(json!({"data": {"sdp": g729}})),
    );
    assert_eq!(status, 400);
    assert!(
        body["data"]["message"]
            .as_str()
            .unwrap()
            .contains("no common codec"),
        "{body}"
    );
    let ipv6 =
        "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 7078 RTP/AVP 0\r\n";
    let (status, body) = session.call(
        "PUT",
        &format!("/{id}/participants"),
        Some(json!({"data": {"sdp": ipv6}})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["data"]["message"].as_str().unwrap().contains("IPv6"),
        "{body}"
    );
    // Refused joins leave no room running.
    let rooms = |session: &Session| {
        let (_, text) = session.server.call("GET", "/metrics", None, None);
        let text = text.as_str().unwrap_or_default().to_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("tutti_rooms "))
            .and_then(|n| n.parse::<u64>().ok())
    };
    assert_eq!(rooms(&session), Some(0));

    let (status, _) = session.call(
        "PUT",
        &format!("/{id}/participants"),
        Some(json!({"data": {"sdp": offer(free_port())}})),
    );
    assert_eq!(status, 201);
    let (status, body) = session.call(
        "PUT",
        &format!("/{id}/participants"),
        Some(json!({"data": {"sdp": offer(free_port())}})),
    );
    assert_eq!(
        (status, body["message"].clone()),
        (409, json!("conference_full")),
        "{body}"
    );

    let open = session.create(json!({"name": "Locked"}));
    let (status, _) = session.call(
        "PUT",
        &format!("/{open}"),
        Some(json!({"data": {"action": "lock"}})),
    );
    assert_eq!(status, 202);
    let (_, conference) = session.call("GET", &format!("/{open}"), None);
    assert_eq!(conference["data"]["_read_only"]["is_locked"], true);
    let (status, body) = session.call(
        "PUT",
        &format!("/{open}/participants"),
        Some(json!({"data": {"sdp": offer(free_port())}})),
    );
    assert_eq!(
        (status, body["message"].clone()),
        (409, json!("conference_locked"))
    );
    assert_eq!(
        rooms(&session),
        Some(1),
        "locking an empty conference starts no room"
    );

    let (status, body) = session.call(
        "PUT",
        &format!("/{open}"),
        Some(json!({"data": {"action": "dance"}})),
    );
    assert_eq!(
        (status, body["message"].clone()),
        (404, json!("faulty_request"))
    );
    let (status, body) = session.call(
        "PUT",
        &format!("/{open}/participants/77"),
        Some(json!({"data": {"action": "mute"}})),
    );
    assert_eq!(
        (status, body["message"].clone()),
        (404, json!("bad_identifier"))
    );
    session.server.stop();
}

/// The next websocket event named `name`; panics after `within`.
fn next_event(socket: &mut Socket, name: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        assert!(Instant::now() < deadline, "no {name} within {within:?}");
        let Ok(message) = socket.read() else {
            continue;
        };
        let Ok(text) = message.to_text() else {
            continue;
        };
        let event: Value = serde_json::from_str(text).unwrap_or_default();
        if event["name"] == name {
            return event;
        }
    }
}

#[test]
fn a_recording_room_whose_last_caller_times_out_stops_promptly() {
    let dir = tempdir("api-timeout-recording");
    let session = Session::start_with(
        &dir,
        (33_300, 33_399),
        &[("TUTTI_MEDIA_RTP_TIMEOUT_SECONDS", "1")],
    );
    let id =
        session.create(json!({"name": "Alone", "play_entry_tone": false, "play_exit_tone": false}));
    let mut socket = subscribe(&session, &id, Duration::from_millis(200));

    let (caller, _) = session.join(&id, Codec::Pcmu, 440.0, false, dir.join("alone.wav"));
    next_event(&mut socket, "add-member", Duration::from_secs(5));
    let (status, body) = session.call(
        "PUT",
        &format!("/{id}"),
        Some(json!({"action": "record", "data": {"action": "start"}})),
    );
    assert_eq!(status, 202, "{body}");
    // The caller hangs up without a word: the RTP timeout removes it, the room stops with
    // it and its recording is finished, without holding up the events that follow.
    drop(caller);
    next_event(&mut socket, "del-member", Duration::from_secs(10));
    next_event(&mut socket, "conference-destroy", Duration::from_secs(5));
    let (_, conference) = session.call("GET", &format!("/{id}"), None);
    assert_eq!(conference["data"]["_read_only"]["participants"], json!([]));
    // The operator's log says who came and why they went, with the drops of their media.
    let log = std::fs::read_to_string(&session.server.log).unwrap();
    for line in [
        "participant joined",
        "participant left",
        "reason=\"timeout\"",
        "participant's media closed",
        "reason=\"rtp_timeout\"",
        "dropped_foreign_source=0",
    ] {
        assert!(log.contains(line), "{line:?} not in the log:\n{log}");
    }
    session.server.stop();
}
