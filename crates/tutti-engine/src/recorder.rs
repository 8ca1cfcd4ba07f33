//! Recording a room's mix to a WAV file on its own thread: the mixer hands over frames from a
//! recycled pool and never waits for the disk.

use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tutti_mix::{Frame, FRAME_MS};

use crate::{EngineError, EngineEvent, RoomId};

const POOL: usize = 64;

/// The mixer thread's end of a recording.
pub struct Recorder {
    frames: Sender<Box<Frame>>,
    pool: Receiver<Box<Frame>>,
    remaining: Option<u64>,
    /// Frames lost because the disk fell behind.
    pub dropped: u64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates the file and starts the writer thread. `max` caps the length.
    pub fn start(
        room: RoomId,
        path: PathBuf,
        max: Option<Duration>,
        events: Sender<EngineEvent>,
    ) -> Result<Self, EngineError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: tutti_mix::SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(&path, spec).map_err(|source| EngineError::Wav {
            path: path.clone(),
            source,
        })?;
        let (frames, inbound) = crossbeam_channel::bounded::<Box<Frame>>(POOL);
        let (give_back, pool) = crossbeam_channel::bounded::<Box<Frame>>(POOL);
        for _ in 0..POOL {
            let _ = give_back.send(Box::new(Frame::silent()));
        }
        std::thread::Builder::new()
            .name("tutti-recorder".into())
            .spawn(move || {
                let mut writer = writer;
                let mut written = 0u64;
                let mut pcm = [0i16; tutti_mix::FRAME_SAMPLES];
                for frame in inbound.iter() {
                    frame.write_i16(&mut pcm);
                    for &s in &pcm {
                        let _ = writer.write_sample(s);
                    }
                    written += 1;
                    let _ = give_back.send(frame);
                }
                let _ = writer.finalize();
                let _ = events.try_send(EngineEvent::RecordingFinished {
                    room,
                    path,
                    duration: Duration::from_millis(written * u64::from(FRAME_MS)),
                });
            })
            .map_err(EngineError::Thread)?;
        let remaining = max.map(|d| d.as_millis() as u64 / u64::from(FRAME_MS));
        Ok(Self {
            frames,
            pool,
            remaining,
            dropped: 0,
        })
    }

    /// Hands one frame to the writer. Returns false once the length cap is reached.
    pub fn push(&mut self, frame: &Frame) -> bool {
        if let Some(remaining) = &mut self.remaining {
            if *remaining == 0 {
                return false;
            }
            *remaining -= 1;
        }
        match self.pool.try_recv() {
            Ok(mut buffer) => {
                (*buffer).clone_from(frame);
                if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                    self.frames.try_send(buffer)
                {
                    self.dropped += 1;
                }
            }
            Err(_) => self.dropped += 1,
        }
        true
    }
}
