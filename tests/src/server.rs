//! The `tutti` binary as a server process, and calls to its HTTP API.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{http, workspace_binary};

/// A running `tutti serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// Its HTTP address.
    pub address: SocketAddr,
    /// Its SIP address (UDP and TCP).
    pub sip: SocketAddr,
    /// Its WebRTC address (UDP): every browser's ICE, DTLS and SRTP.
    pub webrtc: SocketAddr,
    /// Where its log goes (beside the database).
    pub log: std::path::PathBuf,
}

impl Server {
    /// Starts a server on a free port with `database`, media ports from `media_ports`, and
    /// waits until it answers.
    pub fn start(database: &std::path::Path, media_ports: (u16, u16)) -> Self {
        Self::start_with(database, media_ports, &[])
    }

    /// [`Server::start`] with more `TUTTI_*` settings in its environment.
    pub fn start_with(
        database: &std::path::Path,
        media_ports: (u16, u16),
        settings: &[(&str, &str)],
    ) -> Self {
        Self::start_configured(database, media_ports, settings, "")
    }

    /// [`Server::start_with`] reading `config` (TOML, e.g. a `[sip]` section with trunks) from
    /// a file beside the database.
    pub fn start_configured(
        database: &std::path::Path,
        media_ports: (u16, u16),
        settings: &[(&str, &str)],
        config: &str,
    ) -> Self {
        let config_file = database.with_extension("toml");
        std::fs::write(&config_file, config).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // SIP and WebRTC on free ports of their own, so servers run side by side.
        let sip = SocketAddr::from(([127, 0, 0, 1], crate::sip::free_port()));
        let webrtc = SocketAddr::from(([127, 0, 0, 1], crate::sip::free_port()));
        let log = database.with_extension("log");
        let child = Command::new(workspace_binary("tutti"))
            .args(["serve", "--listen", &address.to_string(), "--database"])
            .arg(database)
            .arg("--config")
            .arg(&config_file)
            .env("TUTTI_MEDIA_PORT_FIRST", media_ports.0.to_string())
            .env("TUTTI_MEDIA_PORT_LAST", media_ports.1.to_string())
            // The tests' webhook receivers and prompt servers listen on loopback, which the
            // server refuses to call unless told otherwise.
            .env("TUTTI_FETCH_ALLOW_HOSTS", "127.0.0.1")
            .env("TUTTI_SIP_LISTEN", sip.to_string())
            .env("TUTTI_WEBRTC_LISTEN", webrtc.to_string())
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            address,
            sip,
            webrtc,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while http(address, "GET", "/healthz", &[], None)
            .map(|(s, _)| s)
            .ok()
            != Some(200)
        {
            assert!(Instant::now() < deadline, "the server did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Calls the API; the answer's status and JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let headers: Vec<(&str, &str)> = token.map(|t| ("X-Auth-Token", t)).into_iter().collect();
        let body = body.map(|b| b.to_string());
        let (status, text) = http(self.address, method, path, &headers, body.as_deref()).unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Calls the API with a bearer token (the VoIPbin and FoneStorm faces, WHIP); the
    /// answer's status and JSON body (a string when it is not JSON).
    pub fn call_bearer(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let bearer = format!("Bearer {token}");
        let body = body.map(|b| b.to_string());
        let headers = [("Authorization", bearer.as_str())];
        let (status, text) = http(self.address, method, path, &headers, body.as_deref()).unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "tutti exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "tutti did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates an account with `tutti accounts create` on `database`; its id and API key.
pub fn create_account(database: &std::path::Path, name: &str) -> (String, String) {
    create_account_with(database, name, &[])
}

/// [`create_account`] with `TUTTI_*` settings in its environment (e.g. `TUTTI_STORAGE_URL`).
pub fn create_account_with(
    database: &std::path::Path,
    name: &str,
    settings: &[(&str, &str)],
) -> (String, String) {
    let output = Command::new(workspace_binary("tutti"))
        .args(["accounts", "create", name, "--database"])
        .arg(database)
        .envs(settings.iter().copied())
        .output()
        .expect("tutti runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {printed:?}"))
            .to_owned()
    };
    (field("account_id"), field("api_key"))
}
