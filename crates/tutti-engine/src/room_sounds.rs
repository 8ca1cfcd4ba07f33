//! A room's entry and exit sounds, played by players made ahead and rewound for each play, so
//! that a join or a leave starts its sound without allocating on the mixer thread.

use tutti_mix::{AudioSource, Room, SourceId, SourceTarget};

use crate::reaper::{Garbage, Reaper};
use crate::room::{RoomSettings, RoomSound};

/// Plays of one sound that may overlap: when joins (or leaves) come faster than the sound
/// lasts, the ones beyond this play no further copy of a sound already sounding eight times.
pub(crate) const PLAYERS: usize = 8;

/// Which of the room's sounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    Entry,
    Exit,
}

/// Idle players of one sound.
struct Players {
    idle: Vec<Box<dyn AudioSource>>,
}

impl Players {
    fn new(sound: Option<&RoomSound>) -> Self {
        let idle = match sound {
            Some(sound) => (0..PLAYERS).map(|_| sound.source()).collect(),
            None => Vec::new(),
        };
        Self { idle }
    }
}

/// The entry and exit sounds of a room and the plays under way.
pub(crate) struct RoomSounds {
    entry: Players,
    exit: Players,
    /// Plays under way: the source, its sound, and the settings it was made for.
    playing: Vec<(SourceId, Which, u32)>,
    /// Counts settings changes; a player of older settings is not reused.
    generation: u32,
}

impl RoomSounds {
    pub(crate) fn new(settings: &RoomSettings) -> Self {
        Self {
            entry: Players::new(settings.entry_sound.as_ref()),
            exit: Players::new(settings.exit_sound.as_ref()),
            playing: Vec::with_capacity(4 * PLAYERS),
            generation: 0,
        }
    }

    /// Takes the sounds of new settings; players of the old ones are freed by the reaper.
    pub(crate) fn replace(&mut self, settings: &RoomSettings, reaper: &Reaper) {
        for player in self.entry.idle.drain(..).chain(self.exit.idle.drain(..)) {
            reaper.discard(Garbage::Source(player));
        }
        self.entry = Players::new(settings.entry_sound.as_ref());
        self.exit = Players::new(settings.exit_sound.as_ref());
        self.generation = self.generation.wrapping_add(1);
    }

    /// Starts the sound (if the room has one) for the whole room with an idle player, rewound;
    /// nothing when every player is busy.
    pub(crate) fn start(&mut self, which: Which, mix: &mut Room) {
        let players = match which {
            Which::Entry => &mut self.entry,
            Which::Exit => &mut self.exit,
        };
        let Some(mut player) = players.idle.pop() else {
            return;
        };
        if !player.rewind() {
            // Every player of a room sound can rewind; one that cannot is not played twice.
            return;
        }
        if let Ok(id) = mix.add_source(player, SourceTarget::Room) {
            if self.playing.len() < self.playing.capacity() {
                self.playing.push((id, which, self.generation));
            }
        }
    }

    /// Takes back a finished source: a player of the current sounds waits for the next play,
    /// anything else goes to the reaper.
    pub(crate) fn finished(&mut self, id: SourceId, source: Box<dyn AudioSource>, reaper: &Reaper) {
        let Some(position) = self.playing.iter().position(|(playing, ..)| *playing == id) else {
            reaper.discard(Garbage::Source(source));
            return;
        };
        let (_, which, generation) = self.playing.swap_remove(position);
        let players = match which {
            Which::Entry => &mut self.entry,
            Which::Exit => &mut self.exit,
        };
        if generation == self.generation && players.idle.len() < players.idle.capacity() {
            players.idle.push(source);
        } else {
            reaper.discard(Garbage::Source(source));
        }
    }
}
