//! tutti (or any server speaking Kazoo's conference API): a conference per room, a
//! participant per caller joined with an SDP offer.

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::{answer_address, api_error, opus_offer, Face};
use crate::LoadError;

/// Kazoo's `/v2` conference API, logged in.
#[derive(Debug)]
pub struct Kazoo {
    agent: ureq::Agent,
    base: String,
    conferences: String,
    token: String,
    fallback_ip: std::net::IpAddr,
}

impl Kazoo {
    /// Logs in to `base` (e.g. `http://127.0.0.1:8000`) with an account's API key.
    pub fn login(base: &str, account: &str, api_key: &str) -> Result<Self, LoadError> {
        let agent = ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(30))
            .max_idle_connections_per_host(16)
            .build();
        let base = base.trim_end_matches('/').to_owned();
        let answer = super::json_body(
            agent
                .put(&format!("{base}/v2/api_auth"))
                .send_string(&json!({"data": {"api_key": api_key}}).to_string()),
            "login (PUT /v2/api_auth)",
        )?;
        let token = answer["auth_token"]
            .as_str()
            .ok_or_else(|| LoadError::Api {
                what: "login (PUT /v2/api_auth)".into(),
                detail: format!("no auth_token in {answer}"),
            })?
            .to_owned();
        let host = base
            .split("://")
            .nth(1)
            .and_then(|h| h.split(['/', ':']).next())
            .and_then(|h| h.parse().ok())
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        Ok(Self {
            agent,
            conferences: format!("{base}/v2/accounts/{account}/conferences"),
            base,
            token,
            fallback_ip: host,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The session's API token (accepted by every face, and as a WHIP bearer token).
    pub fn token(&self) -> &str {
        &self.token
    }

    fn put(&self, url: &str, what: &str, body: Value) -> Result<Value, LoadError> {
        super::json_body(
            self.agent
                .put(url)
                .set("X-Auth-Token", &self.token)
                .send_string(&body.to_string()),
            what,
        )
    }
}

impl Face for Kazoo {
    fn create_room(&self, index: usize) -> Result<String, LoadError> {
        let answer = self.put(
            &self.conferences,
            "create a conference",
            json!({"data": {"name": format!("load {index}"), "member": {"join_muted": false},
                "play_entry_tone": false, "play_exit_tone": false}}),
        )?;
        answer["data"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| LoadError::Api {
                what: "create a conference".into(),
                detail: format!("no id in {answer}"),
            })
    }

    fn join(&self, room: &str, local: SocketAddr, name: &str) -> Result<SocketAddr, LoadError> {
        let what = format!("join {name}");
        // Latching: the caller sends from exactly the address its offer names.
        let answer = self.put(
            &format!("{}/{room}/participants", self.conferences),
            &what,
            json!({"data": {"sdp": opus_offer(local), "latching": true, "caller_id_name": name}}),
        )?;
        answer["data"]["sdp"]
            .as_str()
            .and_then(|sdp| answer_address(sdp, self.fallback_ip))
            .ok_or_else(|| LoadError::Api {
                what,
                detail: format!("no usable SDP answer in {answer}"),
            })
    }

    fn close_room(&self, room: &str) -> Result<(), LoadError> {
        self.agent
            .delete(&format!("{}/{room}", self.conferences))
            .set("X-Auth-Token", &self.token)
            .call()
            .map_err(|e| api_error("delete a conference", e))?;
        Ok(())
    }
}
