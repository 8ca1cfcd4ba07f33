//! GStreamer pipelines as independent RTP callers, and the recordings they leave.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::read_wav;

/// The sample rate of callers' recordings.
pub const RECORDING_RATE: u32 = 16_000;

/// The codec a GStreamer caller uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// G.711 µ-law.
    Pcmu,
    /// Opus.
    Opus,
}

impl Codec {
    /// An SDP offer for a caller receiving on `port`.
    pub fn sdp(self, port: u16) -> String {
        let (pt, map) = match self {
            Codec::Pcmu => (0, "PCMU/8000"),
            Codec::Opus => (111, "opus/48000/2"),
        };
        format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=gst\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {map}\r\na=sendrecv\r\n")
    }

    /// A pipeline fragment sending a tone (0 Hz: silence) to `to`.
    pub fn sender(self, hz: f64, to: SocketAddr) -> String {
        let source = if hz > 0.0 {
            format!("audiotestsrc is-live=true wave=sine freq={hz} volume=0.3")
        } else {
            "audiotestsrc is-live=true wave=silence".to_string()
        };
        let encode = match self {
            Codec::Pcmu => {
                "audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay max-ptime=20000000"
            }
            Codec::Opus => "audio/x-raw,rate=48000,channels=1 ! opusenc ! rtpopuspay pt=111",
        };
        format!(
            "{source} ! audioconvert ! audioresample ! {encode} ! udpsink host={} port={}",
            to.ip(),
            to.port()
        )
    }

    /// A pipeline fragment recording what arrives on `port` into a [`RECORDING_RATE`] WAV file.
    pub fn receiver(self, port: u16, file: &std::path::Path) -> String {
        let (caps, decode) = match self {
            Codec::Pcmu => (
                "application/x-rtp,media=audio,clock-rate=8000,encoding-name=PCMU,payload=0",
                "rtppcmudepay ! mulawdec",
            ),
            Codec::Opus => (
                "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=111",
                "rtpopusdepay ! opusdec",
            ),
        };
        format!(
            "udpsrc port={port} caps={caps} ! rtpjitterbuffer latency=80 ! {decode} ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate={RECORDING_RATE},channels=1 ! wavenc ! filesink buffer-mode=unbuffered location={}",
            file.display()
        )
    }
}

/// Where a caller on this host sends to by an SDP answer: loopback at its `m=audio` port.
pub fn answer_target(answer: &str) -> SocketAddr {
    let port: u16 = answer
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio port in {answer:?}"));
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A gst-launch-1.0 process, killed when dropped (a failing test must not leave pipelines
/// sending into later runs).
pub struct Pipeline(pub Child);

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A UDP port free at the moment of asking.
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `gst-launch-1.0 -e -q` with `pipeline`.
pub fn gst_launch(pipeline: &str) -> Pipeline {
    let child = Command::new("gst-launch-1.0")
        .arg("-e")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gst-launch-1.0 must be installed (scripts/install-system-deps installs it)");
    Pipeline(child)
}

/// A caller: a pipeline sending a tone and recording what it hears.
pub struct Caller {
    pipeline: Pipeline,
    recording: PathBuf,
}

impl Caller {
    /// Starts a caller that sends to `to` and records what comes to `listen`.
    pub fn start(codec: Codec, hz: f64, listen: u16, to: SocketAddr, recording: PathBuf) -> Self {
        let pipeline = format!(
            "{} {}",
            codec.sender(hz, to),
            codec.receiver(listen, &recording)
        );
        Caller {
            pipeline: gst_launch(&pipeline),
            recording,
        }
    }

    /// What the caller has recorded so far: the WAV file's samples while it is being written
    /// (its header's sizes are only filled in at the end).
    pub fn heard_so_far(&self) -> Vec<f32> {
        let bytes = std::fs::read(&self.recording).unwrap_or_default();
        let start = bytes
            .windows(4)
            .take(512)
            .position(|w| w == b"data")
            .map_or(bytes.len(), |at| (at + 8).min(bytes.len()));
        bytes[start..]
            .chunks_exact(2)
            .map(|s| f32::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0)
            .collect()
    }

    /// Stops the pipeline (EOS, so the WAV header is written) and returns the recording.
    pub fn finish(mut self) -> (Vec<f32>, u32) {
        let child = &mut self.pipeline.0;
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        read_wav(&self.recording)
    }
}

/// The last `seconds` of `samples`.
pub fn tail(samples: &[f32], rate: u32, seconds: f64) -> &[f32] {
    &samples[samples
        .len()
        .saturating_sub((seconds * f64::from(rate)) as usize)..]
}

/// `samples` between `from` and `to` seconds.
pub fn window(samples: &[f32], rate: u32, from: f64, to: f64) -> &[f32] {
    let start = ((from * f64::from(rate)) as usize).min(samples.len());
    let end = ((to * f64::from(rate)) as usize).clamp(start, samples.len());
    &samples[start..end]
}

/// A fresh folder for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tutti-gst-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
