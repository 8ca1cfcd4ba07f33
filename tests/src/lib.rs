//! Helpers for tutti's tests, end to end and per crate: locating the built binaries and
//! analysing audio.

pub mod baresip;
pub mod chromium;
pub mod gst;
pub mod hooks;
pub mod kazoo;
pub mod server;
pub mod sip;
pub mod sipp;

use std::path::PathBuf;

/// Path of a binary built from this workspace (`cargo build --workspace --bins`), next to the
/// test executable's own folder.
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// The folder of the binaries built with the test executable (`target/debug`, …).
fn profile_dir() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test executable path");
    dir.pop(); // the test executable
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// `target/artifacts` of this workspace (created): files a test leaves to be looked at, such
/// as screenshots.
pub fn artifacts_dir() -> PathBuf {
    let mut dir = profile_dir();
    dir.pop();
    let dir = dir.join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Amplitude of the `hz` component of `samples` at `rate` (single-bin DFT).
pub fn amplitude_at(samples: &[f32], rate: u32, hz: f64) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &s) in samples.iter().enumerate() {
        let phase = 2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate);
        re += f64::from(s) * phase.cos();
        im += f64::from(s) * phase.sin();
    }
    2.0 * (re * re + im * im).sqrt() / samples.len().max(1) as f64
}

/// Root-mean-square level of `samples`.
pub fn rms(samples: &[f32]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// Reads a mono or multi-channel 16-bit WAV file as f32 samples of its first channel, with
/// its sample rate.
pub fn read_wav(path: &std::path::Path) -> (Vec<f32>, u32) {
    let mut reader =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .step_by(channels)
        .map(|s| f32::from(s.unwrap_or(0)) / 32768.0)
        .collect();
    (samples, spec.sample_rate)
}

/// A minimal HTTP/1.1 client for the end-to-end tests: one request per connection.
pub fn http(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(5))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
