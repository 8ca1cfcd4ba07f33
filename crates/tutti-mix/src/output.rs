//! What a tick produced: one buffer per distinct mix, who hears which, and the events.

use crate::event::MixEvent;
use crate::room::{Heard, Room};
use crate::{Frame, ParticipantId};

/// Which buffer holds a mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BufferRef {
    /// The room mix, shared by every non-contributor at unity volume.
    RoomMix,
    /// A buffer kept in a participant's slot (its own mix, or its volume group's).
    Listener(u32),
}

/// A run of `group_members` that share one buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GroupSpan {
    pub(crate) buffer: BufferRef,
    pub(crate) silent: bool,
    pub(crate) start: u32,
    pub(crate) len: u32,
}

/// Listeners who hear exactly the same audio this tick: encode `frame` once per codec setting
/// and send it to each of them.
#[derive(Clone, Copy, Debug)]
pub struct OutputGroup<'r> {
    /// The mixed, limited audio.
    pub frame: &'r Frame,
    /// Nothing was mixed into `frame` (it is digital silence): a chance for DTX or comfort noise.
    pub silent: bool,
    /// Who hears it.
    pub listeners: &'r [ParticipantId],
}

/// The results of one tick, borrowed from the room until the next change.
#[derive(Clone, Copy, Debug)]
pub struct TickOutput<'r> {
    room: &'r Room,
}

impl<'r> TickOutput<'r> {
    pub(crate) fn new(room: &'r Room) -> Self {
        Self { room }
    }

    /// Talk, mute-detect and source events of the tick, in participant order.
    pub fn events(&self) -> &'r [MixEvent] {
        &self.room.events
    }

    /// Every distinct buffer and its listeners. Deaf participants are in no group, unless a
    /// source is played to them alone this tick.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = OutputGroup<'r>> + 'r {
        let room = self.room;
        room.groups.iter().map(move |span| OutputGroup {
            frame: room.frame_of(span.buffer),
            silent: span.silent,
            listeners: &room.group_members[span.start as usize..(span.start + span.len) as usize],
        })
    }

    /// Number of distinct buffers, i.e. encodes needed per codec setting.
    pub fn group_count(&self) -> usize {
        self.room.groups.len()
    }

    /// What one participant hears: `None` for unknown ids and for deaf participants with no
    /// source played to them alone.
    pub fn heard_by(&self, id: ParticipantId) -> Option<&'r Frame> {
        match self.room.heard_by(id)? {
            Heard::Silence => None,
            Heard::Buffer(buffer) => Some(self.room.frame_of(buffer)),
        }
    }

    /// Everything mixed in the room (every contributor and room source, limited): what a
    /// recording of the room holds.
    pub fn room_mix(&self) -> &'r Frame {
        self.room.room_mix().0
    }

    /// Whether nothing was mixed into the room this tick.
    pub fn room_is_silent(&self) -> bool {
        self.room.room_mix().1
    }

    /// Number of participants mixed this tick.
    pub fn contributor_count(&self) -> usize {
        self.room.contributor_count()
    }
}
