//! # tutti-mix: the mixing core of tutti
//!
//! Everything that turns each participant's 20 ms of audio into what every listener hears, with
//! no IO, no threads and no allocation inside a tick. The engine decodes audio into a
//! [`Room`]'s input buffers, calls [`Room::tick`] every 20 ms, and encodes what the returned
//! [`TickOutput`] lists: one buffer per distinct mix, with the listeners who share it.
//!
//! ```
//! use tutti_mix::{Frame, ParticipantSettings, Room, RoomConfig, ToneGenerator, ToneProgram, SourceTarget};
//!
//! let mut room = Room::new(RoomConfig::default());
//! let alice = room.add_participant(ParticipantSettings::default())?;
//! let bob = room.add_participant(ParticipantSettings::default())?;
//! let carol = room.add_participant(ParticipantSettings { speak: false, ..Default::default() })?;
//!
//! // Alice talks; Bob and Carol send nothing this tick (silence).
//! let input = room.input_mut(alice)?;
//! for (i, s) in input.iter_mut().enumerate() {
//!     *s = 0.25 * (i as f32 * 0.05).sin();
//! }
//! let entry = ToneProgram::parse("tone_stream://%(200,0,500,600,700)")?;
//! room.add_source(Box::new(ToneGenerator::new(entry)), SourceTarget::Listener(carol))?;
//!
//! let output = room.tick();
//! assert_eq!(output.contributor_count(), 1);
//! assert!(output.heard_by(alice).unwrap().is_silent()); // nobody else talks: N−1 is silence
//! assert!(!output.heard_by(bob).unwrap().is_silent()); // Bob hears Alice
//! for group in output.groups() {
//!     // encode group.frame once, send it to every id in group.listeners
//!     assert!(!group.listeners.is_empty());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## One tick, in order
//! 1. **Measure** each participant's frame: mean absolute amplitude on the 16-bit scale after
//!    the input gain ([`talk`] explains the scale and the defaults). A participant whose frame
//!    did not arrive counts as silence.
//! 2. **Detect talking** with FreeSWITCH's hysteresis; emit start/stop-talking and mute-detect.
//! 3. **Gate**: only participants who may speak and whose gate is open are candidates; the gate
//!    opens on the first loud frame and closes after the talk hangover.
//! 4. **Cap** (optional): keep the loudest K candidates on smoothed energy, moderators first,
//!    with a bonus for those already mixed so the set does not flap.
//! 5. **Sum** the contributors and the room's sources once.
//! 6. **Give** each contributor `sum − own`, each listener who does not hear one of the
//!    contributors ([`Room::set_hears`], FreeSWITCH's `relate`) `sum − own − excluded`,
//!    listeners with private sources their own copy, and everyone else a shared buffer (one per
//!    distinct output volume). Deaf listeners hear only the sources played to them alone.
//! 7. **Limit** each distinct buffer; below the threshold nothing changes, so one talker at unity
//!    gain arrives bit for bit.
//!
//! Work is O(N) in participants plus O(contributors) frame operations; encodes needed per codec
//! setting are `contributors + 1` at most (plus listeners with private sources, volumes, or
//! relations that exclude a current contributor).
//!
//! ## Robustness
//! Input samples are cleaned as they are read: NaN becomes silence, anything beyond full scale
//! (infinities too) is clamped to it. Gains and thresholds are sanitised the same way. No input
//! makes a tick panic.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod error;
mod event;
mod frame;
pub mod kernels;
mod limiter;
mod output;
mod participant;
mod room;
mod select;
mod source;
pub mod talk;
pub mod tone;

pub use error::MixError;
pub use event::MixEvent;
pub use frame::{Frame, FRAME_MS, FRAME_SAMPLES, I16_SCALE, SAMPLE_RATE};
pub use limiter::{Limiter, LimiterConfig};
pub use output::{OutputGroup, TickOutput};
pub use participant::{
    DetachedParticipant, ParticipantId, ParticipantSettings, ParticipantStatus, MAX_GAIN,
};
pub use room::{Room, RoomConfig, MAX_PARTICIPANTS, MAX_SOURCES};
pub use source::{AudioSource, SourceId, SourceState, SourceTarget};
pub use talk::{TalkConfig, TalkDetector};
pub use tone::{ToneError, ToneGenerator, ToneProgram};
