//! Janus's AudioBridge plugin over its HTTP transport, with plain-RTP participants: a room per
//! room (`allow_rtp_participants`), a plugin handle per caller whose `join` carries an `rtp`
//! object naming the caller's address; the `joined` event names where to send.
//!
//! `join` is asynchronous in Janus: the request is acknowledged and the `joined` event comes
//! on the session's long poll, which one thread reads and files by transaction.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{json_body, Face};
use crate::LoadError;

/// How rooms are made and what each participant's mix encoder uses.
#[derive(Clone, Copy, Debug)]
pub struct JanusRoomSettings {
    /// The rooms' mixing rate (8000, 12000, 16000, 24000 or 48000; Janus's default 16000).
    pub sampling_rate: u32,
    /// Each participant's Opus bitrate; 0 leaves it to Janus (libopus's automatic choice).
    pub bitrate: u32,
    /// Each participant's Opus complexity (Janus's `quality`, 1 to 10; its default 4).
    pub quality: u8,
    /// In-band FEC in what each participant receives.
    pub fec: bool,
}

/// Events from the long poll, by transaction.
type Inbox = Arc<(Mutex<HashMap<String, Value>>, Condvar)>;

/// A Janus session with the AudioBridge plugin attached.
#[derive(Debug)]
pub struct Janus {
    agent: ureq::Agent,
    session: String,
    control: String,
    settings: JanusRoomSettings,
    transactions: AtomicU64,
    inbox: Inbox,
    stop: Arc<AtomicBool>,
}

const PLUGIN: &str = "janus.plugin.audiobridge";
/// Room numbers start here, so a run's rooms do not meet rooms configured in the plugin.
const FIRST_ROOM: u64 = 700_000;

impl Janus {
    /// Opens a session on `base` (e.g. `http://127.0.0.1:8088/janus`) and starts reading its
    /// events.
    pub fn connect(base: &str, settings: JanusRoomSettings) -> Result<Self, LoadError> {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .max_idle_connections_per_host(16)
            .build();
        let base = base.trim_end_matches('/').to_owned();
        let created = janus_call(
            &agent,
            &base,
            "create a session",
            json!({"janus": "create"}),
        )?;
        let session = id_of(&created, "create a session")?;
        let session_url = format!("{base}/{session}");
        let attached = janus_call(
            &agent,
            &session_url,
            "attach the AudioBridge plugin",
            json!({"janus": "attach", "plugin": PLUGIN}),
        )?;
        let control = format!("{session_url}/{}", id_of(&attached, "attach")?);
        let inbox: Inbox = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (agent, url, inbox, stop) = (
                agent.clone(),
                format!("{session_url}?maxev=50"),
                Arc::clone(&inbox),
                Arc::clone(&stop),
            );
            std::thread::Builder::new()
                .name("janus-events".into())
                .spawn(move || poll_events(&agent, &url, &inbox, &stop))?;
        }
        Ok(Self {
            agent,
            session: session_url,
            control,
            settings,
            transactions: AtomicU64::new(1),
            inbox,
            stop,
        })
    }

    fn transaction(&self) -> String {
        format!("t{}", self.transactions.fetch_add(1, Ordering::Relaxed))
    }

    /// A synchronous AudioBridge request on the control handle; the plugin's data.
    fn request(&self, what: &str, body: Value) -> Result<Value, LoadError> {
        let answer = janus_call(
            &self.agent,
            &self.control,
            what,
            json!({"janus": "message", "body": body, "transaction": self.transaction()}),
        )?;
        plugin_data(&answer, what)
    }

    fn wait_event(&self, transaction: &str, what: &str) -> Result<Value, LoadError> {
        let event = self.wait_raw_event(transaction, what)?;
        plugin_data(&event, what)
    }

    /// Attaches a handle for a participant and asks AudioBridge to join it to `room` with
    /// `media` (more fields of the join) and `jsep`; the handle's URL and the join's
    /// transaction, whose event answers it.
    fn send_join(
        &self,
        room: &str,
        name: &str,
        what: &str,
        media: Value,
        jsep: Option<Value>,
    ) -> Result<(String, String), LoadError> {
        let room: u64 = room
            .parse()
            .map_err(|_| LoadError::Setting(format!("room {room}")))?;
        let attached = janus_call(
            &self.agent,
            &self.session,
            what,
            json!({"janus": "attach", "plugin": PLUGIN}),
        )?;
        let handle = format!("{}/{}", self.session, id_of(&attached, what)?);
        let transaction = self.transaction();
        let settings = self.settings;
        let mut body = json!({"request": "join", "room": room, "display": name,
            "muted": false, "codec": "opus", "bitrate": settings.bitrate,
            "quality": settings.quality});
        if let (Some(body), Some(media)) = (body.as_object_mut(), media.as_object()) {
            body.extend(media.clone());
        }
        let mut message = json!({"janus": "message", "transaction": transaction, "body": body});
        if let Some(jsep) = jsep {
            message["jsep"] = jsep;
        }
        let ack = janus_call(&self.agent, &handle, what, message)?;
        if ack["janus"] != "ack" {
            return Err(LoadError::Api {
                what: what.into(),
                detail: ack.to_string(),
            });
        }
        Ok((handle, transaction))
    }

    /// The whole event answering `transaction` (plugin data and JSEP).
    fn wait_raw_event(&self, transaction: &str, what: &str) -> Result<Value, LoadError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (events, arrived) = &*self.inbox;
        let mut events = events.lock().map_err(|_| LoadError::Api {
            what: what.into(),
            detail: "the event reader failed".into(),
        })?;
        loop {
            if let Some(event) = events.remove(transaction) {
                return Ok(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LoadError::Api {
                    what: what.into(),
                    detail: "no answer from Janus within 30 s".into(),
                });
            }
            events = arrived
                .wait_timeout(events, left)
                .map_err(|_| LoadError::Api {
                    what: what.into(),
                    detail: "the event reader failed".into(),
                })?
                .0;
        }
    }
}

impl Janus {
    /// Joins a WebRTC participant to AudioBridge room `room` (made by [`Face::create_room`])
    /// with its SDP `offer`; Janus's SDP answer.
    pub fn join_webrtc(&self, room: &str, name: &str, offer: &str) -> Result<String, LoadError> {
        let what = format!("join {name} over WebRTC");
        let (handle, transaction) = self.send_join(
            room,
            name,
            &what,
            json!({}),
            Some(json!({"type": "offer", "sdp": offer})),
        )?;
        // The offer carries every candidate: no more will trickle.
        janus_call(
            &self.agent,
            &handle,
            &what,
            json!({"janus": "trickle", "candidate": {"completed": true}}),
        )?;
        let event = self.wait_raw_event(&transaction, &what)?;
        plugin_data(&event, &what)?;
        event["jsep"]["sdp"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| LoadError::Api {
                what,
                detail: format!("no JSEP answer in {event}"),
            })
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self
            .agent
            .post(&self.session)
            .send_string(&json!({"janus": "destroy", "transaction": "end"}).to_string());
    }
}

impl Face for Janus {
    fn create_room(&self, index: usize) -> Result<String, LoadError> {
        let room = FIRST_ROOM + index as u64;
        let what = format!("create AudioBridge room {room}");
        let data = self.request(
            &what,
            json!({"request": "create", "room": room, "description": format!("load {index}"),
                "sampling_rate": self.settings.sampling_rate, "allow_rtp_participants": true,
                "audiolevel_ext": false, "default_bitrate": self.settings.bitrate}),
        )?;
        if data["audiobridge"] != "created" {
            return Err(LoadError::Api {
                what,
                detail: data.to_string(),
            });
        }
        Ok(room.to_string())
    }

    fn join(&self, room: &str, local: SocketAddr, name: &str) -> Result<SocketAddr, LoadError> {
        let what = format!("join {name}");
        let rtp = json!({"rtp": {"ip": local.ip().to_string(), "port": local.port(),
            "payload_type": 111, "fec": self.settings.fec}});
        let (_, transaction) = self.send_join(room, name, &what, rtp, None)?;
        let joined = self.wait_event(&transaction, &what)?;
        let rtp = &joined["rtp"];
        let address = rtp["ip"]
            .as_str()
            .and_then(|ip| ip.parse().ok())
            .zip(rtp["port"].as_u64().and_then(|p| u16::try_from(p).ok()))
            .map(|(ip, port)| SocketAddr::new(ip, port));
        address.ok_or_else(|| LoadError::Api {
            what,
            detail: format!("no rtp address in {joined}"),
        })
    }

    fn close_room(&self, room: &str) -> Result<(), LoadError> {
        let room: u64 = room
            .parse()
            .map_err(|_| LoadError::Setting(format!("room {room}")))?;
        self.request(
            "destroy an AudioBridge room",
            json!({"request": "destroy", "room": room}),
        )?;
        Ok(())
    }
}

/// POSTs a Janus API message (with a transaction) and checks it is not an error.
fn janus_call(
    agent: &ureq::Agent,
    url: &str,
    what: &str,
    mut body: Value,
) -> Result<Value, LoadError> {
    if body.get("transaction").is_none() {
        body["transaction"] = json!("x");
    }
    let answer = json_body(agent.post(url).send_string(&body.to_string()), what)?;
    if answer["janus"] == "error" {
        return Err(LoadError::Api {
            what: what.into(),
            detail: answer["error"].to_string(),
        });
    }
    Ok(answer)
}

fn id_of(answer: &Value, what: &str) -> Result<u64, LoadError> {
    answer["data"]["id"].as_u64().ok_or_else(|| LoadError::Api {
        what: what.into(),
        detail: format!("no id in {answer}"),
    })
}

/// The plugin's data of an answer or event; its error as an error.
fn plugin_data(answer: &Value, what: &str) -> Result<Value, LoadError> {
    let data = &answer["plugindata"]["data"];
    if data.is_null() || data.get("error_code").is_some() {
        return Err(LoadError::Api {
            what: what.into(),
            detail: answer.to_string(),
        });
    }
    Ok(data.clone())
}

/// Reads the session's events until told to stop, filing those with a transaction.
fn poll_events(agent: &ureq::Agent, url: &str, inbox: &Inbox, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(answer) = agent.get(url).call() else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let Ok(text) = answer.into_string() else {
            continue;
        };
        let events = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(events)) => events,
            Ok(event) => vec![event],
            Err(_) => continue,
        };
        let (filed, arrived) = &**inbox;
        if let Ok(mut filed) = filed.lock() {
            for event in events {
                if let Some(transaction) = event["transaction"].as_str() {
                    filed.insert(transaction.to_owned(), event.clone());
                }
            }
        }
        arrived.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_errors_are_errors() {
        let ok = json!({"janus": "event", "plugindata": {"data": {"audiobridge": "joined",
            "rtp": {"ip": "127.0.0.1", "port": 5000}}}});
        assert_eq!(plugin_data(&ok, "x").unwrap()["audiobridge"], "joined");
        let refused = json!({"janus": "event", "plugindata": {"data": {"audiobridge": "event",
            "error_code": 485, "error": "No such room"}}});
        assert!(plugin_data(&refused, "join").is_err());
        assert!(plugin_data(&json!({"janus": "ack"}), "join").is_err());
    }
}
