//! Player sources: tones, prompts and files mixed like participants, addressed to the whole room
//! or to one listener.

use crate::{Frame, ParticipantId};

/// Whether a source has more audio after the frame it just rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceState {
    /// More audio follows.
    Playing,
    /// This was the last frame; the room stops rendering the source and reports it finished.
    Finished,
}

/// Anything that produces 20 ms of 48 kHz mono audio per tick.
///
/// `render` runs on the mixer thread inside a tick: it must not allocate, lock or block. Build
/// the source (parse, decode, resample) before handing it to the room.
pub trait AudioSource: Send {
    /// Overwrites `out` with the next 20 ms (padding with silence after the end).
    fn render(&mut self, out: &mut Frame) -> SourceState;

    /// Goes back to the start, so one source can be played again without building another
    /// (a room's entry tone). Returns false for a source that cannot (the default).
    fn rewind(&mut self) -> bool {
        false
    }
}

/// Who hears a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceTarget {
    /// Everyone who can hear, contributors included (recordings of the room too).
    Room,
    /// One listener only; nobody else hears it and it is not recorded. A deaf listener hears
    /// it too (deaf means deaf to the room), and nothing else.
    Listener(ParticipantId),
}

/// Handle of a source in one [`Room`](crate::Room).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

pub(crate) struct SourceEntry {
    pub(crate) source: Box<dyn AudioSource>,
    pub(crate) target: SourceTarget,
    pub(crate) finished: bool,
}

impl std::fmt::Debug for SourceEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceEntry")
            .field("target", &self.target)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
