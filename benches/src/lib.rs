//! Shared set-up for tutti's benchmarks: rooms in a steady state, ready to tick.

use tutti_mix::{Frame, ParticipantId, ParticipantSettings, Room, RoomConfig, FRAME_SAMPLES};

/// A room of `participants` where `talkers` send a loud tone and everyone else sends line noise
/// below the talk threshold, already past the talk detector's attack.
pub struct SteadyRoom {
    /// The room.
    pub room: Room,
    /// Its participants, talkers first.
    pub ids: Vec<ParticipantId>,
    /// The frame each participant sends every tick (the same bytes the copy baseline moves).
    pub inputs: Vec<Frame>,
}

impl SteadyRoom {
    /// Builds the room and ticks it until the talkers are talking.
    pub fn new(participants: usize, talkers: usize) -> Self {
        let mut room = Room::new(RoomConfig::default());
        let ids: Vec<_> = (0..participants)
            .map(|_| {
                room.add_participant(ParticipantSettings::default())
                    .expect("room has space")
            })
            .collect();
        let inputs: Vec<Frame> = (0..participants)
            .map(|n| {
                if n < talkers {
                    tone(200.0 + 50.0 * n as f32, 0.2)
                } else {
                    noise(n as u32, 5.0 / 32768.0)
                }
            })
            .collect();
        let mut steady = Self { room, ids, inputs };
        for _ in 0..10 {
            steady.write_inputs();
            steady.room.tick();
        }
        steady
    }

    /// Copies every participant's frame into the room, as the engine does after decoding.
    pub fn write_inputs(&mut self) {
        for (id, frame) in self.ids.iter().zip(&self.inputs) {
            if let Ok(input) = self.room.input_mut(*id) {
                input.clone_from(frame);
            }
        }
    }

    /// Marks every participant's frame as arrived without copying (the tick leaves inputs as
    /// they are, so the last written frames are mixed again).
    pub fn mark_inputs(&mut self) {
        for id in &self.ids {
            let _ = self.room.input_mut(*id);
        }
    }
}

/// A sine frame.
pub fn tone(hz: f32, amplitude: f32) -> Frame {
    let mut frame = Frame::silent();
    for (i, s) in frame.iter_mut().enumerate() {
        *s = amplitude * (i as f32 * 2.0 * std::f32::consts::PI * hz / 48_000.0).sin();
    }
    frame
}

/// Uniform noise with peak `amplitude`, from a small deterministic generator.
pub fn noise(seed: u32, amplitude: f32) -> Frame {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut frame = Frame::silent();
    for s in frame.iter_mut() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        *s = amplitude * (state as f32 / u32::MAX as f32 * 2.0 - 1.0);
    }
    frame
}

/// Bytes of audio one participant sends per tick.
pub const FRAME_BYTES: usize = FRAME_SAMPLES * std::mem::size_of::<f32>();
