//! A local HTTP receiver for webhooks and callbacks: it records every request and answers
//! 500 to the first few, so retries show.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Hook {
    /// Request path.
    pub path: String,
    /// Headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: String,
    /// What the receiver answered.
    pub answered: u16,
}

impl Hook {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A receiver on 127.0.0.1.
pub struct HookReceiver {
    /// Where it listens.
    pub address: SocketAddr,
    hooks: mpsc::Receiver<Hook>,
}

impl HookReceiver {
    /// Starts a receiver that answers 500 to its first `failures` requests, 200 after.
    pub fn start(failures: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (sender, hooks) = mpsc::channel();
        let remaining = Arc::new(AtomicUsize::new(failures));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sender = sender.clone();
                let remaining = remaining.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut reader = BufReader::new(&stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let mut headers = HashMap::new();
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            headers
                                .insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                        }
                    }
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let fail = remaining
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let answered = if fail { 500 } else { 200 };
                    let mut stream = &stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {answered} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = sender.send(Hook {
                        path,
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                        answered,
                    });
                });
            }
        });
        HookReceiver { address, hooks }
    }

    /// Its URL with `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Collects requests until `done` holds for what arrived, for at most `limit`; returns
    /// everything that arrived.
    pub fn collect_until(&self, limit: Duration, done: impl Fn(&[Hook]) -> bool) -> Vec<Hook> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        while !done(&got) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.hooks.recv_timeout(left) {
                Ok(hook) => got.push(hook),
                Err(_) => panic!("the awaited webhooks did not all arrive: {got:#?}"),
            }
        }
        got
    }

    /// Everything that arrives within `period` (to see that nothing more comes).
    pub fn collect_for(&self, period: Duration) -> Vec<Hook> {
        let deadline = Instant::now() + period;
        let mut got = Vec::new();
        while let Ok(hook) = self
            .hooks
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            got.push(hook);
        }
        got
    }
}
