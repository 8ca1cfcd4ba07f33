//! Three `tutti serve` nodes sharing one throwaway PostgreSQL, with GStreamer callers and a
//! webhook receiver: a room placed on node B is joined through node A (its media goes to B),
//! every node reports B as its focus, B is killed with SIGKILL, its calls are closed as
//! `node_lost`, the callers rejoin through A and C and hear each other again, and every
//! webhook was delivered exactly once across the nodes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tutti_e2e::gst::{answer_target, free_port, tempdir, Caller, Codec, RECORDING_RATE};
use tutti_e2e::hooks::{Hook, HookReceiver};
use tutti_e2e::server::Server;
use tutti_e2e::{amplitude_at, http, workspace_binary};
use tutti_pg_harness::TempPostgres;

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// A Kazoo websocket on `server` subscribed to the conference's events.
fn subscribe(server: &Server, token: &str, account: &str, conference: &str) -> Socket {
    let (mut socket, _) =
        tungstenite::connect(format!("ws://{}/v2/websocket", server.address)).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    let subscribe = json!({"action": "subscribe", "auth_token": token, "request_id": "1", "data": {"account_id": account, "binding": format!("conference.event.{conference}.*")}});
    socket
        .send(tungstenite::Message::Text(subscribe.to_string().into()))
        .unwrap();
    let reply: Value = serde_json::from_str(socket.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(reply["status"], "success", "{reply}");
    socket
}

/// The (event, call) pairs a socket receives until `done` holds for them, then for one more
/// second (so that a second copy of any would show).
fn events_until(
    socket: &mut Socket,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut settled: Option<Instant> = None;
    loop {
        if let Ok(message) = socket.read() {
            if let Ok(event) = serde_json::from_str::<Value>(message.to_text().unwrap_or("")) {
                if event["action"] == "event" {
                    let call = event["data"]["call_id"].as_str().unwrap_or("*").to_owned();
                    seen.push((event["name"].as_str().unwrap_or("").to_owned(), call));
                }
            }
        }
        if settled.is_none() && done(&seen) {
            settled = Some(Instant::now());
        }
        if settled.is_some_and(|at| at.elapsed() > Duration::from_secs(1)) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "the websocket never saw it all: {seen:?}"
        );
    }
}

fn count(seen: &[(String, String)], name: &str, call: &str) -> usize {
    let call = call.replace('-', "");
    seen.iter().filter(|(n, c)| n == name && *c == call).count()
}

/// The rate of the callers' recordings.
const RATE: u32 = RECORDING_RATE;

fn node(dir: &std::path::Path, name: &str, url: &str, ports: (u16, u16)) -> Server {
    Server::start_with(
        &dir.join(format!("{name}.db")),
        ports,
        &[
            ("TUTTI_STORAGE_URL", url),
            ("TUTTI_HTTP_NODE", name),
            ("TUTTI_CLUSTER_ENABLED", "true"),
            ("TUTTI_CLUSTER_HEARTBEAT_MS", "200"),
            ("TUTTI_CLUSTER_LEASE_MS", "2000"),
        ],
    )
}

fn ok(server: &Server, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, body) = server.call_bearer(token, method, path, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {body}"
    );
    body
}

/// Joins a PCMU caller sending `hz` through `server`: the caller, its call id, and where its
/// media goes.
fn join(
    server: &Server,
    token: &str,
    conference: &str,
    hz: f64,
    recording: std::path::PathBuf,
) -> (Caller, String, SocketAddr) {
    let listen = free_port();
    let joined = ok(
        server,
        token,
        "POST",
        "/v1.0/conferencecalls",
        Some(
            json!({"conference_id": conference, "sdp": Codec::Pcmu.sdp(listen), "latching": false}),
        ),
    );
    let to = answer_target(joined["sdp"].as_str().unwrap());
    (
        Caller::start(Codec::Pcmu, hz, listen, to, recording),
        joined["id"].as_str().unwrap().to_owned(),
        to,
    )
}

/// Waits until the last half second `caller` heard carries `hz`.
fn wait_to_hear(caller: &Caller, hz: f64, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let heard = caller.heard_so_far();
        let tail = &heard[heard.len().saturating_sub(RATE as usize / 2)..];
        let level = amplitude_at(tail, RATE, hz);
        if tail.len() == RATE as usize / 2 && level > 0.03 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who} never heard {hz} Hz (level {level:.4})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn in_range(address: SocketAddr, ports: (u16, u16)) -> bool {
    (ports.0..=ports.1).contains(&address.port())
}

/// The conferencecall webhooks: (call id, type) → how many were delivered.
fn call_hooks(hooks: &[Hook]) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for hook in hooks.iter().filter(|h| h.answered == 200) {
        let body = hook.json();
        let kind = body["type"].as_str().unwrap_or_default();
        if kind.starts_with("conferencecall_") {
            let id = body["data"]["id"].as_str().unwrap_or_default().to_owned();
            *counts.entry((id, kind.to_owned())).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn three_nodes_place_a_room_once_survive_a_killed_node_and_send_each_webhook_once() {
    let Some(url) = TempPostgres::database_for("three_nodes") else {
        return;
    };
    let dir = tempdir("cluster-nodes");
    let ports = [(31000, 31099), (31100, 31199), (31200, 31299)];

    // Node B starts alone, so the room's first join places it there.
    let created = Command::new(workspace_binary("tutti"))
        .args(["accounts", "create", "e2e", "--database"])
        .arg(dir.join("b.db"))
        .env("TUTTI_STORAGE_URL", &url)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let printed = String::from_utf8_lossy(&created.stdout).into_owned();
    let key = printed
        .lines()
        .find_map(|l| l.strip_prefix("api_key: "))
        .unwrap()
        .to_owned();
    let b = node(&dir, "b", &url, ports[1]);
    let (status, auth) = {
        let body = json!({"data": {"api_key": key}}).to_string();
        let (status, text) = http(b.address, "PUT", "/v2/api_auth", &[], Some(&body)).unwrap();
        (status, serde_json::from_str::<Value>(&text).unwrap())
    };
    assert_eq!(status, 201, "{auth}");
    let token = auth["auth_token"].as_str().unwrap().to_owned();
    let account = printed
        .lines()
        .find_map(|l| l.strip_prefix("account_id: "))
        .unwrap()
        .to_owned();
    let receiver = HookReceiver::start(0);
    ok(
        &b,
        &token,
        "PUT",
        "/v1.0/customer",
        Some(json!({"webhook_method": "POST", "webhook_uri": receiver.url("/hooks")})),
    );
    let conference = ok(
        &b,
        &token,
        "POST",
        "/v1.0/conferences",
        Some(json!({"name": "shared"})),
    );
    let conference = conference["id"].as_str().unwrap().to_owned();
    let (low, first_call, to) = join(&b, &token, &conference, 440.0, dir.join("low-1.wav"));
    assert!(in_range(to, ports[1]), "B runs the room: {to}");

    // A and C join the cluster; a caller joining through A is sent to B, media and all.
    let a = node(&dir, "a", &url, ports[0]);
    let c = node(&dir, "c", &url, ports[2]);
    // A websocket client of node C sees the room on B.
    let simple = conference.replace('-', "");
    let mut socket = subscribe(&c, &token, &account, &simple);
    let (high, second_call, to) = join(&a, &token, &conference, 880.0, dir.join("high-1.wav"));
    assert!(in_range(to, ports[1]), "the answer names B's media: {to}");
    let seen = events_until(&mut socket, |seen| {
        count(seen, "add-member", &second_call) > 0
    });
    assert_eq!(
        count(&seen, "add-member", &second_call),
        1,
        "once: {seen:?}"
    );
    wait_to_hear(&low, 880.0, "the caller on B");
    wait_to_hear(&high, 440.0, "the caller who joined through A");

    // Every node names B as the focus; a request through C is answered by B.
    let kazoo = format!(
        "/v2/accounts/{account}/conferences/{}",
        conference.replace('-', "")
    );
    for server in [&a, &b, &c] {
        let (status, body) = server.call("GET", &kazoo, Some(&token), None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["focus"], "b", "{body}");
        assert_eq!(body["node"], "b", "answered by the focus node");
        assert_eq!(
            body["data"]["_read_only"]["participants"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
    let joined = |hooks: &[Hook]| {
        let counts = call_hooks(hooks);
        [&first_call, &second_call]
            .iter()
            .all(|id| counts.contains_key(&((*id).clone(), "conferencecall_joined".into())))
    };
    let early = receiver.collect_until(Duration::from_secs(10), joined);

    // B dies without a word. The survivors close its calls and announce them once.
    let killed = Command::new("kill")
        .args(["-KILL", &b.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for id in [&first_call, &second_call] {
        let path = format!("/v1.0/conferencecalls/{id}");
        wait_for("the lost call to be closed", || {
            a.call_bearer(&token, "GET", &path, None).1["status"] == "leaved"
        });
        let (_, closed) = c.call_bearer(&token, "GET", &path, None);
        assert_eq!(closed["hangup_reason"], "node_lost", "{closed}");
    }
    let seen = events_until(&mut socket, |seen| {
        count(seen, "del-member", &first_call) > 0 && count(seen, "del-member", &second_call) > 0
    });
    for id in [&first_call, &second_call] {
        assert_eq!(count(&seen, "del-member", id), 1, "once: {seen:?}");
    }
    drop(low);
    drop(high);

    // The callers rejoin through A and C: the room starts again on one live node.
    let (low, third_call, to_low) = join(&a, &token, &conference, 440.0, dir.join("low-2.wav"));
    let (high, fourth_call, to_high) = join(&c, &token, &conference, 880.0, dir.join("high-2.wav"));
    assert_eq!(
        to_low.port() / 100,
        to_high.port() / 100,
        "one node: {to_low} {to_high}"
    );
    assert!(
        in_range(to_low, ports[0]) || in_range(to_low, ports[2]),
        "{to_low}"
    );
    wait_to_hear(&low, 880.0, "the rejoined caller");
    wait_to_hear(&high, 440.0, "the other rejoined caller");
    let (_, body) = a.call("GET", &kazoo, Some(&token), None);
    let focus = body["data"]["focus"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(focus == "a" || focus == "c", "{body}");
    assert_eq!(in_range(to_low, ports[0]), focus == "a");

    // The callers are removed by call id, one through the node that does not run the room
    // (the request finds the room's node through the call's record).
    let (focus_node, other_node) = if focus == "a" { (&a, &c) } else { (&c, &a) };
    for (server, id) in [(other_node, &third_call), (focus_node, &fourth_call)] {
        let removed = ok(
            server,
            &token,
            "DELETE",
            &format!("/v1.0/conferencecalls/{id}"),
            None,
        );
        assert_eq!(removed["id"], json!(id), "{removed}");
    }
    drop(low);
    drop(high);

    // Every call's webhooks arrived once each, whichever node sent them.
    let calls = [&first_call, &second_call, &third_call, &fourth_call];
    let later = receiver.collect_until(Duration::from_secs(15), |more| {
        let all: Vec<Hook> = early.iter().chain(more).cloned().collect();
        let counts = call_hooks(&all);
        calls
            .iter()
            .all(|id| counts.contains_key(&((*id).clone(), "conferencecall_leaved".into())))
    });
    // A second copy of any of them would come within a moment.
    let straggling = receiver.collect_for(Duration::from_secs(2));
    let hooks: Vec<Hook> = early.into_iter().chain(later).chain(straggling).collect();
    let counts = call_hooks(&hooks);
    for id in calls {
        for kind in ["conferencecall_joined", "conferencecall_leaved"] {
            assert_eq!(
                counts.get(&(id.clone(), kind.into())),
                Some(&1),
                "{kind} of {id}: {counts:?}"
            );
        }
    }
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let mut deliveries: Vec<&String> = hooks
        .iter()
        .map(|h| &h.headers["x-tutti-delivery"])
        .collect();
    let all = deliveries.len();
    deliveries.sort();
    deliveries.dedup();
    assert_eq!(deliveries.len(), all, "no delivery twice");
    let lost = hooks
        .iter()
        .filter(|h| h.json()["type"] == "conferencecall_leaved")
        .filter(|h| h.json()["data"]["hangup_reason"] == "node_lost")
        .count();
    assert_eq!(lost, 2, "the two calls on B, announced once each");
    a.stop();
    c.stop();
}
