//! The room mixer: one call per 20 ms tick turns every participant's frame into what every
//! listener hears, with O(N) work.

use crate::event::MixEvent;
use crate::kernels;
use crate::limiter::{Limiter, LimiterConfig};
use crate::output::{BufferRef, GroupSpan, TickOutput};
use crate::participant::{
    sane_gain, sane_level, DetachedParticipant, Participant, ParticipantId, ParticipantSettings,
};
use crate::select::{select_loudest, Candidate};
use crate::source::{AudioSource, SourceEntry, SourceId, SourceState, SourceTarget};
use crate::talk::{frame_energy, TalkConfig};
use crate::{Frame, MixError, ParticipantStatus};

/// Room-wide mixing parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoomConfig {
    /// Mix at most this many contributors, the loudest (moderators first); 0 mixes everyone
    /// whose gate is open.
    pub max_contributors: usize,
    /// Talk detection hysteresis.
    pub talk: TalkConfig,
    /// Output limiter.
    pub limiter: LimiterConfig,
}

/// Largest number of participants one room holds.
pub const MAX_PARTICIPANTS: usize = 1 << 16;
/// Largest number of sources one room plays at once.
pub const MAX_SOURCES: usize = 1 << 12;

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    occupant: Option<T>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            generation: 0,
            occupant: None,
        }
    }
}

/// Where a listener's audio is this tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Heard {
    Silence,
    Buffer(BufferRef),
}

/// A mixing room. Participants and sources are added and removed between ticks; [`Room::tick`]
/// does the per-frame work without allocating.
#[derive(Debug)]
pub struct Room {
    config: RoomConfig,
    participants: Vec<Slot<Participant>>,
    free_participants: Vec<u32>,
    participant_count: usize,
    sources: Vec<Slot<SourceEntry>>,
    free_sources: Vec<u32>,
    source_count: usize,
    /// Sum of every contributor and room source, before limiting.
    sum: Box<Frame>,
    /// `sum` through the room limiter: what a recorder hears and non-contributors share.
    room_mix: Box<Frame>,
    room_limiter: Limiter,
    room_mix_silent: bool,
    scratch: Box<Frame>,
    // Per-tick work lists, sized when participants and sources are added.
    pub(crate) events: Vec<MixEvent>,
    candidates: Vec<Candidate>,
    unique_listeners: Vec<u32>,
    volume_order: Vec<(u32, u32)>,
    pub(crate) group_members: Vec<ParticipantId>,
    pub(crate) groups: Vec<GroupSpan>,
    pub(crate) heard: Vec<Heard>,
    /// Slot indices of the listeners who do not hear someone (see [`Room::set_hears`]).
    related_listeners: Vec<u32>,
    /// Number of (listener, speaker) exclusions in the room.
    relation_count: usize,
    contributor_count: usize,
    ticks: u64,
}

/// Weight of the newest frame in the smoothed energy that ranks contributors (≈ 60 ms).
const SMOOTHING: f32 = 0.3;
/// A selected contributor keeps its place until a newcomer is this much louder (≈ 3.5 dB).
const INCUMBENT_BONUS: f32 = 1.5;

impl Room {
    /// An empty room.
    pub fn new(config: RoomConfig) -> Self {
        let mut room = Self {
            config,
            participants: Vec::new(),
            free_participants: Vec::new(),
            participant_count: 0,
            sources: Vec::new(),
            free_sources: Vec::new(),
            source_count: 0,
            sum: Box::new(Frame::silent()),
            room_mix: Box::new(Frame::silent()),
            room_limiter: Limiter::default(),
            room_mix_silent: true,
            scratch: Box::new(Frame::silent()),
            events: Vec::new(),
            candidates: Vec::new(),
            unique_listeners: Vec::new(),
            volume_order: Vec::new(),
            group_members: Vec::new(),
            groups: Vec::new(),
            heard: Vec::new(),
            related_listeners: Vec::new(),
            relation_count: 0,
            contributor_count: 0,
            ticks: 0,
        };
        room.groups.reserve(1);
        room
    }

    /// The room's parameters.
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// Changes the room's parameters; they apply from the next tick.
    pub fn set_config(&mut self, config: RoomConfig) {
        self.config = config;
    }

    /// Number of participants in the room.
    pub fn participant_count(&self) -> usize {
        self.participant_count
    }

    /// Number of sources currently held (playing or finished and not yet removed).
    pub fn source_count(&self) -> usize {
        self.source_count
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Makes room for `participants` participants and `sources` sources at once, so that
    /// adding up to that many allocates nothing (see [`Room::attach_participant`]).
    pub fn reserve(&mut self, participants: usize, sources: usize) {
        let participants = participants.min(MAX_PARTICIPANTS);
        let sources = sources.min(MAX_SOURCES);
        ensure_capacity(&mut self.participants, participants);
        ensure_capacity(&mut self.free_participants, participants);
        ensure_capacity(&mut self.heard, participants);
        ensure_capacity(&mut self.sources, sources);
        ensure_capacity(&mut self.free_sources, sources);
        ensure_capacity(&mut self.events, 2 * participants + sources);
        ensure_capacity(&mut self.candidates, participants);
        ensure_capacity(&mut self.unique_listeners, participants);
        ensure_capacity(&mut self.volume_order, participants);
        ensure_capacity(&mut self.group_members, participants);
        ensure_capacity(&mut self.groups, participants + 1);
    }

    /// Adds a participant. Allocates its buffers; call between ticks.
    pub fn add_participant(
        &mut self,
        settings: ParticipantSettings,
    ) -> Result<ParticipantId, MixError> {
        self.attach_participant(DetachedParticipant::new(settings))
            .map_err(|(error, _)| error)
    }

    /// Adds a participant whose buffers were built elsewhere. Within the room's reserved
    /// capacity ([`Room::reserve`]) this allocates nothing; call between ticks. A refused
    /// participant is handed back, so the caller chooses where it is freed.
    // Handed back by value: boxing it would allocate on the refusing thread.
    #[allow(clippy::result_large_err)]
    pub fn attach_participant(
        &mut self,
        participant: DetachedParticipant,
    ) -> Result<ParticipantId, (MixError, DetachedParticipant)> {
        if self.participant_count >= MAX_PARTICIPANTS {
            let full = MixError::RoomFull {
                limit: MAX_PARTICIPANTS,
            };
            return Err((full, participant));
        }
        let participant = participant.0;
        let index = match self.free_participants.pop() {
            Some(index) => index,
            None => {
                self.participants.push(Slot::default());
                self.participants.len() as u32 - 1
            }
        };
        let slot = &mut self.participants[index as usize];
        slot.occupant = Some(participant);
        let generation = slot.generation;
        self.participant_count += 1;
        self.heard.resize(self.participants.len(), Heard::Silence);
        self.reserve_work_lists();
        Ok(ParticipantId { index, generation })
    }

    /// Removes a participant and returns its last status (a participant who leaves while
    /// talking gets no stop-talking event from the room: `status.talking` tells the caller to
    /// close it). Sources addressed to it finish at the next tick.
    ///
    /// Every relation it is part of, as listener or as speaker, goes with it.
    pub fn remove_participant(&mut self, id: ParticipantId) -> Result<ParticipantStatus, MixError> {
        self.detach_participant(id).map(|(status, _)| status)
    }

    /// Removes a participant like [`Room::remove_participant`] and hands back its buffers
    /// instead of freeing them. Allocates nothing.
    pub fn detach_participant(
        &mut self,
        id: ParticipantId,
    ) -> Result<(ParticipantStatus, DetachedParticipant), MixError> {
        self.clear_relations(id)?;
        let slot = self.participant_slot_mut(id)?;
        let participant = slot.occupant.take().ok_or(MixError::UnknownParticipant)?;
        slot.generation = slot.generation.wrapping_add(1);
        self.heard[id.index()] = Heard::Silence;
        self.free_participants.push(id.index);
        self.participant_count -= 1;
        Ok((participant.status, DetachedParticipant(participant)))
    }

    /// Says whether `listener` hears `speaker`, like FreeSWITCH's `conference relate`: with
    /// `hears == false` nothing `speaker` says reaches `listener` (`relate speaker listener
    /// nospeak`, seen from the other side: `relate listener speaker nohear`); `true` clears
    /// that. Call between ticks; it applies from the next one.
    ///
    /// A listener with such exclusions gets a mix of its own (the room's sum less itself and
    /// less each excluded speaker) only on the ticks when an excluded speaker contributes;
    /// every other listener keeps the shared O(N) path, so a room without relations pays
    /// nothing for them. The first exclusion of a listener allocates its buffer.
    ///
    /// Stale ids are refused ([`MixError::UnknownParticipant`]), and so is relating a
    /// participant to itself ([`MixError::SelfRelation`]). Mute and deafness are separate and
    /// unchanged.
    pub fn set_hears(
        &mut self,
        listener: ParticipantId,
        speaker: ParticipantId,
        hears: bool,
    ) -> Result<(), MixError> {
        self.participant(speaker)?;
        self.participant(listener)?;
        if listener == speaker {
            return Err(MixError::SelfRelation);
        }
        let p = self.participant_mut(listener)?;
        let position = p.not_heard.iter().position(|&s| s == speaker);
        match (hears, position) {
            (false, None) => {
                if p.related.is_none() {
                    p.related = Some(Box::new(Frame::silent()));
                }
                p.not_heard.push(speaker);
                if p.not_heard.len() == 1 {
                    self.related_listeners.push(listener.index);
                }
                self.relation_count += 1;
            }
            (true, Some(position)) => {
                p.not_heard.swap_remove(position);
                if p.not_heard.is_empty() {
                    self.related_listeners.retain(|&i| i != listener.index);
                }
                self.relation_count -= 1;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether `listener` hears `speaker` as far as relations go (see [`Room::set_hears`]):
    /// false when excluded, and for a participant and itself. Mute and deafness aside.
    pub fn hears(&self, listener: ParticipantId, speaker: ParticipantId) -> Result<bool, MixError> {
        self.participant(speaker)?;
        let p = self.participant(listener)?;
        Ok(listener != speaker && !p.not_heard.contains(&speaker))
    }

    /// Clears every relation `id` is part of, as listener or as speaker (FreeSWITCH's
    /// `relate … clear` for all of them at once); returns how many there were.
    pub fn clear_relations(&mut self, id: ParticipantId) -> Result<usize, MixError> {
        self.participant(id)?;
        if self.relation_count == 0 {
            return Ok(0);
        }
        let mut cleared = 0;
        let participants = &mut self.participants;
        self.related_listeners.retain(|&index| {
            let slot = &mut participants[index as usize];
            let Some(p) = slot.occupant.as_mut() else {
                return false;
            };
            if index == id.index && slot.generation == id.generation {
                cleared += p.not_heard.len();
                p.not_heard.clear();
            } else if let Some(position) = p.not_heard.iter().position(|&s| s == id) {
                p.not_heard.swap_remove(position);
                cleared += 1;
            }
            !p.not_heard.is_empty()
        });
        self.relation_count -= cleared;
        Ok(cleared)
    }

    /// Number of (listener, speaker) exclusions in the room.
    pub fn relation_count(&self) -> usize {
        self.relation_count
    }

    /// Whether `id` names a participant of this room.
    pub fn contains(&self, id: ParticipantId) -> bool {
        self.participant(id).is_ok()
    }

    /// Ids of every participant, in slot order.
    pub fn participant_ids(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.participants
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.occupant.is_some())
            .map(|(index, slot)| ParticipantId {
                index: index as u32,
                generation: slot.generation,
            })
    }

    /// A participant's settings.
    pub fn settings(&self, id: ParticipantId) -> Result<&ParticipantSettings, MixError> {
        Ok(&self.participant(id)?.settings)
    }

    /// A participant's settings, to change between ticks (mute, deaf, gains, threshold, role).
    pub fn settings_mut(
        &mut self,
        id: ParticipantId,
    ) -> Result<&mut ParticipantSettings, MixError> {
        Ok(&mut self.participant_mut(id)?.settings)
    }

    /// A participant's realtime status after the last tick.
    pub fn status(&self, id: ParticipantId) -> Result<&ParticipantStatus, MixError> {
        Ok(&self.participant(id)?.status)
    }

    /// The buffer for a participant's next frame. Writing it marks the frame as arrived; a
    /// participant whose buffer is not asked for before a tick counts as silent for that tick.
    pub fn input_mut(&mut self, id: ParticipantId) -> Result<&mut Frame, MixError> {
        let participant = self.participant_mut(id)?;
        participant.input_ready = true;
        Ok(&mut participant.input)
    }

    /// Lets `fill` write a participant's next frame straight into the mixer's buffer; the frame
    /// counts as arrived only when `fill` returns true (otherwise the participant is silent for
    /// the next tick, whatever `fill` left in the buffer). Returns what `fill` returned.
    pub fn fill_input(
        &mut self,
        id: ParticipantId,
        fill: impl FnOnce(&mut Frame) -> bool,
    ) -> Result<bool, MixError> {
        let participant = self.participant_mut(id)?;
        let filled = fill(&mut participant.input);
        participant.input_ready |= filled;
        Ok(filled)
    }

    /// Copies a participant's next frame in.
    pub fn push_input(&mut self, id: ParticipantId, frame: &Frame) -> Result<(), MixError> {
        self.input_mut(id)?.clone_from(frame);
        Ok(())
    }

    /// Adds a source (a tone, a prompt, a file) for the room or one listener. Call between
    /// ticks; the source starts playing at the next one.
    pub fn add_source(
        &mut self,
        source: Box<dyn AudioSource>,
        target: SourceTarget,
    ) -> Result<SourceId, MixError> {
        if let SourceTarget::Listener(listener) = target {
            self.participant(listener)?;
        }
        if self.source_count >= MAX_SOURCES {
            return Err(MixError::TooManySources { limit: MAX_SOURCES });
        }
        let entry = SourceEntry {
            source,
            target,
            finished: false,
        };
        let index = match self.free_sources.pop() {
            Some(index) => index,
            None => {
                self.sources.push(Slot::default());
                self.sources.len() as u32 - 1
            }
        };
        let slot = &mut self.sources[index as usize];
        slot.occupant = Some(entry);
        let generation = slot.generation;
        self.source_count += 1;
        self.reserve_work_lists();
        Ok(SourceId { index, generation })
    }

    /// Removes a source, playing or finished, and hands it back (so the caller chooses where it
    /// is dropped).
    pub fn remove_source(&mut self, id: SourceId) -> Result<Box<dyn AudioSource>, MixError> {
        let slot = self
            .sources
            .get_mut(id.index as usize)
            .filter(|slot| slot.generation == id.generation)
            .ok_or(MixError::UnknownSource)?;
        let entry = slot.occupant.take().ok_or(MixError::UnknownSource)?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free_sources.push(id.index);
        self.source_count -= 1;
        Ok(entry.source)
    }

    /// Whether a source has played its last frame.
    pub fn source_finished(&self, id: SourceId) -> Result<bool, MixError> {
        self.sources
            .get(id.index as usize)
            .filter(|slot| slot.generation == id.generation)
            .and_then(|slot| slot.occupant.as_ref())
            .map(|entry| entry.finished)
            .ok_or(MixError::UnknownSource)
    }

    /// The results of the last tick, without running another.
    pub fn last_output(&self) -> TickOutput<'_> {
        TickOutput::new(self)
    }

    /// Mixes one 20 ms frame for everyone: measures energy, updates talk state and the gate,
    /// picks contributors, sums them once, gives each contributor `sum − own`, each listener
    /// who does not hear one of the contributors `sum − own − excluded`, and every other
    /// listener a shared buffer, plays sources, applies output volume and the limiter.
    ///
    /// Inputs not written since the last tick count as silence. Never allocates and never
    /// panics, whatever the samples hold.
    pub fn tick(&mut self) -> TickOutput<'_> {
        self.ticks += 1;
        self.events.clear();
        self.candidates.clear();
        self.unique_listeners.clear();
        self.volume_order.clear();
        self.group_members.clear();
        self.groups.clear();

        self.measure_and_detect();
        self.choose_contributors();
        let room_sources_played = self.sum_contributors_and_room_sources();
        if self.relation_count > 0 && self.contributor_count > 0 {
            self.mix_related_listeners(room_sources_played);
        }
        self.room_mix.clone_from(&self.sum);
        self.room_limiter
            .process(&mut self.room_mix, &self.config.limiter);
        self.room_mix_silent = self.contributor_count == 0 && !room_sources_played;

        self.assign_listeners();
        self.play_listener_sources();
        self.finish_unique_outputs(room_sources_played);
        self.finish_volume_groups();
        TickOutput::new(self)
    }

    pub(crate) fn frame_of(&self, buffer: BufferRef) -> &Frame {
        match buffer {
            BufferRef::RoomMix => &self.room_mix,
            BufferRef::Listener(index) => match &self.participants[index as usize].occupant {
                Some(participant) => &participant.output,
                None => &self.scratch,
            },
        }
    }

    pub(crate) fn heard_by(&self, id: ParticipantId) -> Option<Heard> {
        self.participant(id).ok()?;
        self.heard.get(id.index()).copied()
    }

    pub(crate) fn room_mix(&self) -> (&Frame, bool) {
        (&self.room_mix, self.room_mix_silent)
    }

    pub(crate) fn contributor_count(&self) -> usize {
        self.contributor_count
    }

    fn participant(&self, id: ParticipantId) -> Result<&Participant, MixError> {
        self.participants
            .get(id.index())
            .filter(|slot| slot.generation == id.generation)
            .and_then(|slot| slot.occupant.as_ref())
            .ok_or(MixError::UnknownParticipant)
    }

    fn participant_mut(&mut self, id: ParticipantId) -> Result<&mut Participant, MixError> {
        self.participant_slot_mut(id)?
            .occupant
            .as_mut()
            .ok_or(MixError::UnknownParticipant)
    }

    fn participant_slot_mut(
        &mut self,
        id: ParticipantId,
    ) -> Result<&mut Slot<Participant>, MixError> {
        self.participants
            .get_mut(id.index())
            .filter(|slot| slot.generation == id.generation && slot.occupant.is_some())
            .ok_or(MixError::UnknownParticipant)
    }

    /// Makes every per-tick list big enough for the current participants and sources.
    fn reserve_work_lists(&mut self) {
        let listeners = self.participants.len();
        let events = 2 * listeners + self.sources.len();
        ensure_capacity(&mut self.events, events);
        ensure_capacity(&mut self.candidates, listeners);
        ensure_capacity(&mut self.unique_listeners, listeners);
        ensure_capacity(&mut self.volume_order, listeners);
        ensure_capacity(&mut self.group_members, listeners);
        ensure_capacity(&mut self.groups, listeners + 1);
    }

    /// Energy, talk state, events and gate for everyone; collects the gate's candidates.
    fn measure_and_detect(&mut self) {
        let talk = self.config.talk;
        for (index, slot) in self.participants.iter_mut().enumerate() {
            let generation = slot.generation;
            let Some(p) = slot.occupant.as_mut() else {
                continue;
            };
            let id = ParticipantId {
                index: index as u32,
                generation,
            };
            let gain = sane_gain(p.settings.input_gain);
            let energy = if p.input_ready {
                frame_energy(&p.input, gain)
            } else {
                0.0
            };
            p.detector
                .update(energy, sane_level(p.settings.energy_level), &talk);
            p.smoothed_energy += SMOOTHING * (energy - p.smoothed_energy);

            let active = p.detector.is_active();
            let talking = active && p.settings.speak;
            let mute_detect = active && !p.settings.speak;
            if talking != p.status.talking {
                self.events.push(if talking {
                    MixEvent::StartTalking(id)
                } else {
                    MixEvent::StopTalking(id)
                });
            }
            if mute_detect && !p.status.mute_detect {
                self.events.push(MixEvent::MuteDetect(id));
            }
            p.status = ParticipantStatus {
                current_energy: energy,
                talking,
                mute_detect,
                contributing: false,
                had_input: p.input_ready,
            };
            p.private_sources = 0;
            p.related_mix = false;
            let candidate =
                p.settings.speak && p.input_ready && gain > 0.0 && p.detector.gate_open();
            if candidate {
                let bonus = if p.selected { INCUMBENT_BONUS } else { 1.0 };
                self.candidates.push(Candidate {
                    index: index as u32,
                    moderator: p.settings.moderator,
                    score: p.smoothed_energy * bonus,
                });
            }
            p.selected = false;
        }
    }

    fn choose_contributors(&mut self) {
        let chosen = select_loudest(&mut self.candidates, self.config.max_contributors);
        self.contributor_count = chosen.len();
        for candidate in chosen.iter() {
            if let Some(p) = self.participants[candidate.index as usize]
                .occupant
                .as_mut()
            {
                p.selected = true;
                p.status.contributing = true;
            }
        }
    }

    /// Builds `sum`; leaves each contributor's cleaned, scaled signal in its output buffer.
    /// Returns whether any room source played.
    fn sum_contributors_and_room_sources(&mut self) -> bool {
        self.sum.clear();
        for candidate in &self.candidates[..self.contributor_count] {
            if let Some(p) = self.participants[candidate.index as usize]
                .occupant
                .as_mut()
            {
                kernels::clean_scaled_into(
                    &mut p.output,
                    &p.input,
                    sane_gain(p.settings.input_gain),
                );
                kernels::add_assign(&mut self.sum, &p.output);
            }
        }
        let mut played = false;
        for (index, slot) in self.sources.iter_mut().enumerate() {
            let generation = slot.generation;
            let Some(entry) = slot.occupant.as_mut().filter(|e| !e.finished) else {
                continue;
            };
            match entry.target {
                SourceTarget::Room => {
                    played = true;
                    let state = entry.source.render(&mut self.scratch);
                    kernels::add_assign(&mut self.sum, &self.scratch);
                    if state == SourceState::Finished {
                        entry.finished = true;
                        self.events.push(MixEvent::SourceFinished(SourceId {
                            index: index as u32,
                            generation,
                        }));
                    }
                }
                SourceTarget::Listener(listener) => {
                    match self
                        .participants
                        .get_mut(listener.index())
                        .filter(|slot| slot.generation == listener.generation)
                        .and_then(|slot| slot.occupant.as_mut())
                    {
                        Some(p) => p.private_sources = p.private_sources.saturating_add(1),
                        None => {
                            entry.finished = true;
                            self.events.push(MixEvent::SourceFinished(SourceId {
                                index: index as u32,
                                generation,
                            }));
                        }
                    }
                }
            }
        }
        played
    }

    /// Builds the mix of each listener who does not hear one of this tick's contributors, in
    /// its `related` buffer: `sum`, less its own signal when it contributes, less each
    /// excluded contributor's. Runs while every contributor's output buffer still holds its
    /// cleaned, scaled signal.
    fn mix_related_listeners(&mut self, room_sources_played: bool) {
        let participants = &mut self.participants;
        for &index in &self.related_listeners {
            let Some(p) = participants[index as usize].occupant.as_ref() else {
                continue;
            };
            if !p.settings.hear {
                continue;
            }
            let excluded = p
                .not_heard
                .iter()
                .filter(|&&s| contribution(participants, s).is_some())
                .count();
            if excluded == 0 {
                continue;
            }
            let hidden = excluded + usize::from(p.status.contributing);
            if hidden == self.contributor_count && !room_sources_played {
                // Nothing of the room is left to hear: exact silence, not rounding residue.
                self.scratch.clear();
            } else {
                self.scratch.clone_from(&self.sum);
                if p.status.contributing {
                    kernels::sub_assign(&mut self.scratch, &p.output);
                }
                for &speaker in &p.not_heard {
                    if let Some(signal) = contribution(participants, speaker) {
                        kernels::sub_assign(&mut self.scratch, signal);
                    }
                }
            }
            let Some(p) = participants[index as usize].occupant.as_mut() else {
                continue;
            };
            if let Some(related) = p.related.as_mut() {
                (**related).clone_from(&self.scratch);
                p.related_mix = true;
                p.hidden_contributors = hidden as u32;
            }
        }
    }

    /// Decides what each listener hears and prepares unique buffers (`sum − own`, the mix of a
    /// listener who does not hear someone, a copy of `sum` for a listener with private sources,
    /// or silence for a deaf one with private sources, which are then all it hears). Clears the
    /// inputs for the next tick.
    fn assign_listeners(&mut self) {
        for (index, slot) in self.participants.iter_mut().enumerate() {
            let generation = slot.generation;
            let Some(p) = slot.occupant.as_mut() else {
                continue;
            };
            p.input_ready = false;
            let id = ParticipantId {
                index: index as u32,
                generation,
            };
            let heard = if !p.settings.hear {
                if p.private_sources > 0 {
                    // Deaf to the room, not to what is played to it alone.
                    p.output.clear();
                    self.unique_listeners.push(index as u32);
                    Heard::Buffer(BufferRef::Listener(index as u32))
                } else {
                    Heard::Silence
                }
            } else if p.related_mix {
                if let Some(related) = p.related.as_mut() {
                    std::mem::swap(&mut p.output, related);
                }
                self.unique_listeners.push(index as u32);
                Heard::Buffer(BufferRef::Listener(index as u32))
            } else if p.status.contributing || p.private_sources > 0 {
                if p.status.contributing {
                    kernels::subtract_from(&mut p.output, &self.sum);
                } else {
                    p.output.clone_from(&self.sum);
                }
                self.unique_listeners.push(index as u32);
                Heard::Buffer(BufferRef::Listener(index as u32))
            } else if sane_gain(p.settings.output_volume) == 1.0 {
                self.group_members.push(id);
                Heard::Buffer(BufferRef::RoomMix)
            } else {
                let volume = sane_gain(p.settings.output_volume);
                self.volume_order.push((volume.to_bits(), index as u32));
                Heard::Silence // assigned when the volume group is built
            };
            self.heard[index] = heard;
        }
        if !self.group_members.is_empty() {
            self.groups.push(GroupSpan {
                buffer: BufferRef::RoomMix,
                silent: self.room_mix_silent,
                start: 0,
                len: self.group_members.len() as u32,
            });
        }
    }

    /// Renders sources addressed to single listeners into those listeners' buffers (deaf
    /// listeners included: their buffer holds nothing else).
    fn play_listener_sources(&mut self) {
        for (index, slot) in self.sources.iter_mut().enumerate() {
            let generation = slot.generation;
            let Some(entry) = slot.occupant.as_mut().filter(|e| !e.finished) else {
                continue;
            };
            let SourceTarget::Listener(listener) = entry.target else {
                continue;
            };
            let Some(p) = self
                .participants
                .get_mut(listener.index())
                .filter(|slot| slot.generation == listener.generation)
                .and_then(|slot| slot.occupant.as_mut())
            else {
                continue;
            };
            let state = entry.source.render(&mut self.scratch);
            kernels::add_assign(&mut p.output, &self.scratch);
            if state == SourceState::Finished {
                entry.finished = true;
                self.events.push(MixEvent::SourceFinished(SourceId {
                    index: index as u32,
                    generation,
                }));
            }
        }
    }

    /// Output volume and limiter for every listener with a buffer of its own.
    fn finish_unique_outputs(&mut self, room_sources_played: bool) {
        let limiter = self.config.limiter;
        for &index in &self.unique_listeners {
            let Some(p) = self.participants[index as usize].occupant.as_mut() else {
                continue;
            };
            let volume = sane_gain(p.settings.output_volume);
            if volume != 1.0 {
                kernels::scale(&mut p.output, volume);
            }
            p.limiter.process(&mut p.output, &limiter);
            let hidden = if p.related_mix {
                p.hidden_contributors as usize
            } else {
                usize::from(p.status.contributing)
            };
            let silent = p.private_sources == 0
                && (!p.settings.hear || (!room_sources_played && self.contributor_count == hidden));
            let start = self.group_members.len() as u32;
            self.group_members.push(ParticipantId {
                index,
                generation: self.participants[index as usize].generation,
            });
            self.groups.push(GroupSpan {
                buffer: BufferRef::Listener(index),
                silent,
                start,
                len: 1,
            });
        }
    }

    /// Non-contributors who hear the room at the same non-unity volume share one buffer, kept
    /// in the first member's output buffer.
    fn finish_volume_groups(&mut self) {
        self.volume_order.sort_unstable();
        let limiter_config = self.config.limiter;
        let mut run_start = 0;
        while run_start < self.volume_order.len() {
            let (key, first) = self.volume_order[run_start];
            let run_end = self.volume_order[run_start..]
                .iter()
                .position(|&(k, _)| k != key)
                .map_or(self.volume_order.len(), |offset| run_start + offset);
            let volume = f32::from_bits(key);
            let limiter = match self.participants[first as usize].occupant.as_mut() {
                Some(p) => {
                    kernels::scaled_into(&mut p.output, &self.sum, volume);
                    p.limiter.process(&mut p.output, &limiter_config);
                    p.limiter
                }
                None => Limiter::default(),
            };
            let start = self.group_members.len() as u32;
            for &(_, index) in &self.volume_order[run_start..run_end] {
                let slot = &mut self.participants[index as usize];
                if let Some(p) = slot.occupant.as_mut() {
                    p.limiter = limiter;
                }
                self.heard[index as usize] = Heard::Buffer(BufferRef::Listener(first));
                self.group_members.push(ParticipantId {
                    index,
                    generation: slot.generation,
                });
            }
            self.groups.push(GroupSpan {
                buffer: BufferRef::Listener(first),
                silent: self.room_mix_silent,
                start,
                len: (run_end - run_start) as u32,
            });
            run_start = run_end;
        }
    }
}

/// The cleaned, scaled signal of `id` if it contributes this tick (valid until the listeners
/// are assigned).
fn contribution(participants: &[Slot<Participant>], id: ParticipantId) -> Option<&Frame> {
    participants
        .get(id.index())
        .filter(|slot| slot.generation == id.generation)
        .and_then(|slot| slot.occupant.as_ref())
        .filter(|p| p.status.contributing)
        .map(|p| &*p.output)
}

fn ensure_capacity<T>(list: &mut Vec<T>, needed: usize) {
    if list.capacity() < needed {
        list.reserve_exact(needed - list.len());
    }
}
