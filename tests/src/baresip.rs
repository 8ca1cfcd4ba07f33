//! baresip as an independent SIP phone: its own configuration folder, a sine tone as its
//! microphone (the ausine module), what it hears written to a WAV file (the sndfile module),
//! no audio hardware; commands and call events over its ctrl_tcp module (JSON in netstrings).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How a phone is set up.
#[derive(Clone, Debug)]
pub struct PhoneSettings {
    /// The user part of its address of record, `sip:USER@127.0.0.1`.
    pub user: String,
    /// Digest username and password it answers a challenge with.
    pub auth: Option<(String, String)>,
    /// The tone it sends, Hz (0: silence).
    pub tone_hz: u32,
    /// The codecs it offers, in order (baresip names: `PCMU`, `PCMA`, `G722`, `opus`).
    pub codecs: Vec<&'static str>,
    /// Whether it answers incoming calls at once (`answermode=auto`).
    pub auto_answer: bool,
}

impl PhoneSettings {
    /// A phone named `user` sending `tone_hz`, offering PCMU, without credentials.
    pub fn new(user: &str, tone_hz: u32) -> Self {
        PhoneSettings {
            user: user.to_owned(),
            auth: None,
            tone_hz,
            codecs: vec!["PCMU"],
            auto_answer: false,
        }
    }

    /// The same phone answering incoming calls at once.
    pub fn answering(mut self) -> Self {
        self.auto_answer = true;
        self
    }

    /// The same phone answering digest challenges as `username` with `password`.
    pub fn with_auth(mut self, username: &str, password: &str) -> Self {
        self.auth = Some((username.to_owned(), password.to_owned()));
        self
    }

    /// The account line of baresip's `accounts` file.
    fn account_line(&self) -> String {
        let mut line = format!(
            "<sip:{}@127.0.0.1>;regint=0;audio_codecs={}",
            self.user,
            self.codecs.join(",")
        );
        if self.auto_answer {
            line.push_str(";answermode=auto");
        }
        if let Some((username, password)) = &self.auth {
            line.push_str(&format!(";auth_user={username};auth_pass={password}"));
        }
        line
    }
}

/// A running baresip, killed when dropped.
pub struct Phone {
    child: Child,
    control: TcpStream,
    /// Bytes read from the control connection, not yet a whole netstring.
    unread: Vec<u8>,
    /// Events read while waiting for something else.
    events: VecDeque<Value>,
    tokens: u64,
    dir: PathBuf,
    /// Where SIP listens (UDP and TCP).
    pub sip: SocketAddr,
    /// baresip's own output.
    pub log: PathBuf,
}

/// A port for baresip's SIP: free on UDP and TCP, with the next one free on TCP too, where
/// baresip opens its SIP/TLS transport (and gives up entirely when it cannot).
fn sip_port() -> u16 {
    loop {
        let port = crate::sip::free_port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

impl Phone {
    /// Starts baresip in `dir` (created; its config, accounts, log and recordings go there)
    /// and connects to its control port.
    pub fn start(dir: &Path, settings: &PhoneSettings) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let sip: SocketAddr = format!("127.0.0.1:{}", sip_port()).parse().unwrap();
        let control_port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // ausine makes 48 kHz stereo only; baresip resamples it to the codec's rate.
        let config = format!(
            "poll_method epoll\n\
             sip_listen {sip}\n\
             net_interface 127.0.0.1\n\
             audio_source ausine,{tone}\n\
             ausrc_srate 48000\n\
             ausrc_channels 2\n\
             audio_player aubridge,nowhere\n\
             audio_alert aubridge,nowhere\n\
             statmode_default off\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module g722.so\n\
             module opus.so\n\
             module ausine.so\n\
             module aubridge.so\n\
             module sndfile.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{control_port}\n\
             snd_path {dir}\n",
            tone = settings.tone_hz,
            dir = dir.display(),
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(dir.join("accounts"), settings.account_line() + "\n").unwrap();
        std::fs::write(dir.join("contacts"), "").unwrap();
        let log = dir.join("baresip.log");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("baresip must be installed (scripts/install-system-deps installs it)");
        let mut child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let control = loop {
            match TcpStream::connect(("127.0.0.1", control_port)) {
                // Before baresip listens, a connection to a port of the ephemeral range can
                // be given that very port as its source and connect to itself.
                Ok(stream) if stream.local_addr().ok() == stream.peer_addr().ok() => {
                    drop(stream);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => {
                    if let Some(mut child) = child.take() {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    panic!(
                        "baresip's control port did not open: {e}\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        Phone {
            child: child.take().unwrap(),
            control,
            unread: Vec::new(),
            events: VecDeque::new(),
            tokens: 0,
            dir: dir.to_owned(),
            sip,
            log,
        }
    }

    /// Runs a menu command (`dial`, `hangup`, `hold`, `resume`, `sndcode`…) with `params`;
    /// panics unless baresip answers it as done within 5 s.
    pub fn command(&mut self, command: &str, params: &str) {
        self.tokens += 1;
        let token = self.tokens.to_string();
        let message = json!({"command": command, "params": params, "token": token}).to_string();
        self.control
            .write_all(format!("{}:{message},", message.len()).as_bytes())
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let Some(message) = self.read(deadline) else {
                panic!("baresip did not answer {command} {params}");
            };
            if message["response"] == true && message["token"] == json!(token) {
                assert_eq!(message["ok"], true, "{command} {params}: {message}");
                return;
            }
            if message["event"] == true {
                self.events.push_back(message);
            }
        }
    }

    /// Calls `uri`.
    pub fn dial(&mut self, uri: &str) {
        self.command("dial", uri);
    }

    /// Sends `digits` as DTMF in the call (RFC 4733 telephone-events, one after the other).
    pub fn send_digits(&mut self, digits: &str) {
        self.command("sndcode", digits);
    }

    /// Puts the call on hold (re-INVITE with `a=sendonly`).
    pub fn hold(&mut self) {
        self.command("hold", "");
    }

    /// Takes the call off hold (re-INVITE with `a=sendrecv`).
    pub fn resume(&mut self) {
        self.command("resume", "");
    }

    /// Hangs up the call (BYE, or CANCEL before an answer).
    pub fn hang_up(&mut self) {
        self.command("hangup", "");
    }

    /// The next call event of `kind` (`CALL_ESTABLISHED`, `CALL_CLOSED`…), skipping others;
    /// panics after `within`, naming the events seen. A `CALL_CLOSED` event's `param` is the
    /// reason, e.g. `Connection reset by peer` for the far end's BYE or `403 Forbidden`.
    pub fn wait_for(&mut self, kind: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let Some(event) = self.next_event(deadline) else {
                panic!("no {kind} within {within:?}; saw {seen:?}");
            };
            if event["type"] == kind {
                return event;
            }
            seen.push(format!("{} {}", event["type"], event["param"]));
        }
    }

    /// Whether an event of `kind` arrives within `within` (others are skipped).
    pub fn sees(&mut self, kind: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while let Some(event) = self.next_event(deadline) {
            if event["type"] == kind {
                return true;
            }
        }
        false
    }

    /// The next event: one read earlier, or the next from the connection before `deadline`.
    fn next_event(&mut self, deadline: Instant) -> Option<Value> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        while let Some(message) = self.read(deadline) {
            if message["event"] == true {
                return Some(message);
            }
        }
        None
    }

    /// The next netstring message from the control connection, or None at `deadline`.
    /// How baresip ended, if it did (a peer that crashed says so, with its signal).
    fn exit_status(&mut self) -> String {
        std::thread::sleep(Duration::from_millis(100));
        match self.child.try_wait() {
            Ok(Some(status)) => format!("baresip exited: {status}"),
            _ => "baresip is still running".to_owned(),
        }
    }

    fn read(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            if let Some(colon) = self.unread.iter().position(|&b| b == b':') {
                let length: usize = std::str::from_utf8(&self.unread[..colon])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .expect("a netstring length");
                let end = colon + 1 + length;
                if self.unread.len() > end {
                    let message = serde_json::from_slice(&self.unread[colon + 1..end])
                        .expect("baresip sends JSON");
                    self.unread.drain(..=end); // the payload and its trailing comma
                    return Some(message);
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.control
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut buffer = [0; 4096];
            match self.control.read(&mut buffer) {
                Ok(0) => panic!(
                    "baresip closed its control connection ({}); its log:\n{}",
                    self.exit_status(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
                Ok(n) => self.unread.extend_from_slice(&buffer[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!(
                    "baresip's control connection: {e} ({}); its log:\n{}",
                    self.exit_status(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
            }
        }
    }

    /// What the phone heard in its calls, as written by the sndfile module (complete once the
    /// call closed): each call's decoded audio, oldest first, concatenated, with its rate.
    pub fn heard(&self) -> (Vec<f32>, u32) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "the phone recorded nothing");
        let mut heard = Vec::new();
        let mut rate = 0;
        for file in files {
            let (samples, r) = crate::read_wav(&file);
            heard.extend(samples);
            rate = r;
        }
        (heard, rate)
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
