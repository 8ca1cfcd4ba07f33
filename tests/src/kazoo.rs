//! A running server with one account, driven through the Kazoo face (`/v2`), with GStreamer
//! callers joined through it.

use serde_json::{json, Value};

use crate::gst::{answer_target, free_port, Caller, Codec};
use crate::server::{create_account, Server};

/// A server, an account on it and an API token for the account.
pub struct Session {
    /// The server.
    pub server: Server,
    /// The account's API token.
    pub token: String,
    /// The account's id.
    pub account: String,
    /// `/v2/accounts/{account}/conferences`.
    pub base: String,
}

impl Session {
    /// A server with a database in `dir`, media ports from `media_ports`.
    pub fn start(dir: &std::path::Path, media_ports: (u16, u16)) -> Self {
        Self::start_with(dir, media_ports, &[])
    }

    /// [`Session::start`] with more `TUTTI_*` settings.
    pub fn start_with(
        dir: &std::path::Path,
        media_ports: (u16, u16),
        settings: &[(&str, &str)],
    ) -> Self {
        Self::start_configured(dir, media_ports, settings, |_| String::new())
    }

    /// [`Session::start_with`] with a TOML configuration made for the new account's id.
    pub fn start_configured(
        dir: &std::path::Path,
        media_ports: (u16, u16),
        settings: &[(&str, &str)],
        config: impl FnOnce(&str) -> String,
    ) -> Self {
        let database = dir.join("tutti.db");
        let (account, key) = create_account(&database, "e2e");
        let server = Server::start_configured(&database, media_ports, settings, &config(&account));
        let (_, auth) = server.call(
            "PUT",
            "/v2/api_auth",
            None,
            Some(json!({"data": {"api_key": key}})),
        );
        let token = auth["auth_token"].as_str().unwrap().to_owned();
        Session {
            server,
            token,
            base: format!("/v2/accounts/{account}/conferences"),
            account,
        }
    }

    /// Calls `method` on the account's conferences path followed by `path`.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.server.call(
            method,
            &format!("{}{path}", self.base),
            Some(&self.token),
            body,
        )
    }

    /// Creates a conference from `document`; its id.
    pub fn create(&self, document: Value) -> String {
        let (status, body) = self.call("PUT", "", Some(json!({"data": document})));
        assert_eq!(status, 201, "{body}");
        body["data"]["id"].as_str().unwrap().to_owned()
    }

    /// Joins a GStreamer caller through the API; returns it and its participant id.
    pub fn join(
        &self,
        conference: &str,
        codec: Codec,
        hz: f64,
        moderator: bool,
        recording: std::path::PathBuf,
    ) -> (Caller, u64) {
        let listen = free_port();
        let (status, body) = self.call(
            "PUT",
            &format!("/{conference}/participants"),
            // GStreamer sends from one port and receives on another: no latching.
            Some(json!({"data": {"sdp": codec.sdp(listen), "moderator": moderator, "caller_id_name": format!("{hz} Hz"), "latching": false}})),
        );
        assert_eq!(status, 201, "{body}");
        let to = answer_target(body["data"]["sdp"].as_str().unwrap());
        (
            Caller::start(codec, hz, listen, to, recording),
            body["data"]["participant_id"].as_u64().unwrap(),
        )
    }
}
