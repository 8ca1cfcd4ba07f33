//! Headless Chromium as an independent WebRTC client: a WAV file as its fake microphone, driven
//! over the Chrome DevTools protocol (JSON over one websocket, commands for one page).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long one DevTools command may take before the driver gives up.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How many console lines of the page are kept for failure messages.
const CONSOLE_LINES: usize = 50;

/// Whether a `chromium` executable is on the PATH.
pub fn installed() -> bool {
    Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether a test needing Chromium should run: yes when it is installed; no (the caller skips,
/// saying why) when it is not and `TUTTI_REQUIRE_PEERS` is unset; a panic when it is not but
/// the environment requires every peer program.
pub fn available(test: &str) -> bool {
    if installed() {
        return true;
    }
    assert!(
        std::env::var_os("TUTTI_REQUIRE_PEERS").is_none(),
        "{test}: chromium is not installed and TUTTI_REQUIRE_PEERS is set \
         (scripts/install-system-deps installs it)"
    );
    // Straight to the process's stderr: the test harness would swallow eprintln! of a test
    // that passes.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: SKIPPED, chromium is not installed (scripts/install-system-deps installs it; \
         set TUTTI_REQUIRE_PEERS=1 to make this a failure)"
    );
    false
}

/// A running headless Chromium with one page attached, killed when dropped.
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    /// The DevTools session of the page the commands go to.
    session: String,
    next_id: u64,
    /// The page's recent console messages and uncaught exceptions.
    console: Vec<String>,
    profile: PathBuf,
}

impl Browser {
    /// Starts Chromium with `microphone` (a WAV file, looped) as its fake microphone, a fresh
    /// profile in `dir`, and attaches to a new blank page. Its stderr goes to
    /// `dir/chromium.log`.
    pub fn launch(dir: &Path, microphone: &Path) -> Self {
        let profile = dir.join("chromium-profile");
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let mut command = Command::new("chromium");
        command
            .args([
                "--headless=new",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-gpu",
            ])
            .arg(format!(
                "--use-file-for-fake-audio-capture={}",
                microphone.display()
            ))
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if running_as_root() {
            // Chromium refuses to run as root with its sandbox on.
            command.arg("--no-sandbox");
        }
        let mut child = command
            .spawn()
            .expect("chromium must be installed (scripts/install-system-deps installs it)");
        let url = devtools_url(&mut child, &dir.join("chromium.log"));
        let socket = connect(&url);
        let mut browser = Browser {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            console: Vec::new(),
            profile,
        };
        let target = browser.send("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.send(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a DevTools session id")
            .to_owned();
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser
    }

    /// Calls a DevTools `method` on the page; its result. Panics on a protocol error.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.command(method, params, Some(&session))
    }

    /// Calls a DevTools `method` on the browser itself (no page session).
    fn send(&mut self, method: &str, params: Value) -> Value {
        self.command(method, params, None)
    }

    fn command(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .unwrap_or_else(|e| panic!("DevTools {method}: {e}"));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "DevTools {method}: no answer in {COMMAND_TIMEOUT:?}"
            );
            let text = match self.socket.read() {
                Ok(Message::Text(text)) => text,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => panic!("DevTools {method}: {e}"),
            };
            let Ok(reply) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            if reply["id"] == json!(id) {
                if let Some(error) = reply.get("error") {
                    panic!(
                        "DevTools {method} {params}: {error}",
                        params = message["params"]
                    );
                }
                return reply["result"].clone();
            }
            self.note_event(&reply);
        }
    }

    /// Keeps console messages and uncaught exceptions of the page, for failure messages.
    fn note_event(&mut self, event: &Value) {
        let line = match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = event["params"]["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| match &a["value"] {
                        Value::String(s) => s.clone(),
                        Value::Null => a["description"].as_str().unwrap_or("").to_owned(),
                        other => other.to_string(),
                    })
                    .collect();
                format!("{}: {}", event["params"]["type"], args.join(" "))
            }
            Some("Runtime.exceptionThrown") => {
                let details = &event["params"]["exceptionDetails"];
                format!(
                    "exception: {}",
                    details["exception"]["description"]
                        .as_str()
                        .unwrap_or(details["text"].as_str().unwrap_or("?"))
                )
            }
            _ => return,
        };
        if self.console.len() == CONSOLE_LINES {
            self.console.remove(0);
        }
        self.console.push(line);
    }

    /// The page's recent console messages and uncaught exceptions, one a line.
    pub fn console(&self) -> String {
        self.console.join("\n")
    }

    /// Opens `url` in the page and waits until its document has loaded.
    pub fn navigate(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({"url": url}));
        if let Some(error) = result.get("errorText") {
            panic!("{url}: {error}");
        }
        self.wait_for("document.readyState == 'complete'", COMMAND_TIMEOUT);
    }

    /// Evaluates the JavaScript `expression` in the page, awaiting it when it is a promise; its
    /// value as JSON (`null` for `undefined`). Panics, with the page's console, when it throws.
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(details) = result.get("exceptionDetails") {
            panic!(
                "{expression} threw {}\nconsole:\n{}",
                details["exception"]["description"]
                    .as_str()
                    .unwrap_or(&details.to_string()),
                self.console()
            );
        }
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` every 100 ms until it gives a truthy value (not `false`, `null`,
    /// `0` or `""`), and returns that; panics after `within`, with the last value and the
    /// page's console.
    pub fn wait_for(&mut self, expression: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let value = self.evaluate(expression);
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() >= deadline {
                panic!(
                    "`{expression}` still {value} after {within:?}\nconsole:\n{}",
                    self.console()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Makes the page a phone's: `width`×`height` CSS pixels, touch, mobile layout.
    pub fn emulate_phone(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 2, "mobile": true}),
        );
        self.call(
            "Emulation.setTouchEmulationEnabled",
            json!({"enabled": true}),
        );
    }

    /// Saves a PNG screenshot of the page's viewport at `path` (its folder is created).
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::File::create(path)
            .and_then(|mut f| f.write_all(&png))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// Reads Chromium's stderr until it prints `DevTools listening on ws://…`; copies every line to
/// `log`, also afterwards (so the pipe never fills up).
fn devtools_url(child: &mut Child, log: &Path) -> String {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut log = std::fs::File::create(log).unwrap();
    let (found, url) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("ws://") {
                if line.contains("DevTools listening on") {
                    let _ = found.send(line[at..].trim().to_owned());
                }
            }
            let _ = writeln!(log, "{line}");
        }
    });
    url.recv_timeout(COMMAND_TIMEOUT).unwrap_or_else(|_| {
        let status = child.try_wait().ok().flatten();
        panic!("chromium printed no DevTools address (exit status {status:?})")
    })
}

/// Opens the DevTools websocket at `url`.
fn connect(url: &str) -> WebSocket<TcpStream> {
    let authority = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("not a DevTools address: {url}"));
    let stream = TcpStream::connect(authority).unwrap_or_else(|e| panic!("{url}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let (socket, _) = tungstenite::client(url, stream).unwrap_or_else(|e| panic!("{url}: {e}"));
    socket
}
