//! A room on its mixer thread: the tutti-mix room plus every participant's call leg, ticked
//! together.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tutti_codec::{AudioEncoder, CodecKind, EncoderSettings};
use tutti_mix::{
    AudioSource, DetachedParticipant, Frame, MixEvent, ParticipantId, Room, RoomConfig, SourceId,
    SourceTarget, ToneGenerator, ToneProgram,
};

use crate::leg::{CallLeg, LegState};
use crate::player::{clip_duration, ClipPlayer};
use crate::reaper::{Garbage, Reaper};
use crate::receiver::ReceiverCommand;
use crate::recorder::Recorder;
use crate::room_sounds::{RoomSounds, Which};
use crate::send_batch::SendBatch;
use crate::snapshot::{PacketTotals, ParticipantSnapshot, RoomSnapshot};
use crate::{EngineError, EngineEvent, LeaveReason, ParticipantKey, RoomId};

/// How a room behaves. Given when the room is created;
/// [`Engine::set_room_settings`](crate::Engine::set_room_settings) changes it while the room
/// runs.
#[derive(Clone, Debug, Default)]
pub struct RoomSettings {
    /// Mixing parameters.
    pub mix: RoomConfig,
    /// Most participants at once (0: no limit). Lowering it below the current number refuses
    /// joins until enough leave; nobody is removed.
    pub max_participants: usize,
    /// A locked room refuses joins. Only read at creation: later the lock is changed with
    /// [`Engine::set_locked`](crate::Engine::set_locked).
    pub locked: bool,
    /// Played to the room when someone joins (at most eight plays at once: joins faster than
    /// that add no further copy).
    pub entry_sound: Option<RoomSound>,
    /// Played to the room when someone leaves (once for several who leave together).
    pub exit_sound: Option<RoomSound>,
}

/// A sound a room plays by itself: its entry and exit tones.
#[derive(Clone, Debug, PartialEq)]
pub enum RoomSound {
    /// A tone string, parsed.
    Tone(ToneProgram),
    /// A decoded prompt, 48 kHz mono (see [`read_prompt`](crate::wav::read_prompt)), shared
    /// by every play rather than copied.
    Clip(Arc<[f32]>),
}

impl RoomSound {
    /// How long the sound plays; `Duration::MAX` for a tone that repeats until stopped.
    pub fn duration(&self) -> Duration {
        match self {
            Self::Tone(program) => program.duration().unwrap_or(Duration::MAX),
            Self::Clip(samples) => clip_duration(samples.len()),
        }
    }

    /// A player of the sound, at its start.
    pub(crate) fn source(&self) -> Box<dyn AudioSource> {
        match self {
            Self::Tone(program) => Box::new(ToneGenerator::new(program.clone())),
            Self::Clip(samples) => Box::new(ClipPlayer::new(samples.clone())),
        }
    }
}

impl From<ToneProgram> for RoomSound {
    fn from(program: ToneProgram) -> Self {
        Self::Tone(program)
    }
}

const NO_MEMBER: u32 = u32::MAX;
/// Participants a room without a limit makes room for when it starts: up to this many join
/// without the mixer thread allocating; beyond it the room's lists grow (doubling).
const RESERVED_PARTICIPANTS: usize = 64;
/// Most participants a room reserves for at its start, whatever its limit.
const MAX_RESERVED_PARTICIPANTS: usize = 1024;
/// How many participants a room with `settings` makes room for when it starts.
pub(crate) fn reserved_participants(settings: &RoomSettings) -> usize {
    match settings.max_participants {
        0 => RESERVED_PARTICIPANTS,
        max => max.min(MAX_RESERVED_PARTICIPANTS),
    }
}

/// Sources (prompts, tones) a room makes room for when it starts.
const RESERVED_SOURCES: usize = 16;
/// Distinct shared encoders a room makes room for (codecs and their settings).
const RESERVED_ENCODERS: usize = 8;

/// The position in `members` of the participant `id`, through `member_at`.
fn member_position(member_at: &[u32], members: &[Member], id: ParticipantId) -> Option<usize> {
    let position = *member_at.get(id.index())? as usize;
    members
        .get(position)
        .filter(|m| m.id == id)
        .map(|_| position)
}

pub(crate) struct Member {
    pub(crate) key: ParticipantKey,
    pub(crate) id: ParticipantId,
    pub(crate) leg: Box<CallLeg>,
    /// The leg's socket on the receive thread.
    token: mio::Token,
    served: bool,
}

/// A participant ready to join, everything allocated by the thread that asked.
pub(crate) struct Arrival {
    pub(crate) key: ParticipantKey,
    pub(crate) leg: Box<CallLeg>,
    pub(crate) participant: DetachedParticipant,
    /// An encoder with the leg's codec and settings, for the room to share among listeners
    /// with the same ones if it has none yet.
    pub(crate) shared_encoder: Option<SharedEncoder>,
    pub(crate) token: mio::Token,
}

impl Arrival {
    /// Undoes a refused join off the mixer's hands: the socket leaves the receive thread, the
    /// rest goes to the reaper.
    pub(crate) fn refuse(self, ctx: &mut TickContext<'_>) {
        let _ = ctx.receiver.send(ReceiverCommand::Remove(self.token));
        let _ = ctx.waker.wake();
        self.leg.close();
        ctx.reaper.discard(Garbage::Leg(self.leg));
        ctx.reaper.discard(Garbage::Participant(self.participant));
        if let Some(encoder) = self.shared_encoder {
            ctx.reaper.discard(Garbage::SharedEncoder(encoder));
        }
    }
}

/// An encoder shared by every listener of the common mix with one codec and one set of
/// encoder settings.
pub(crate) struct SharedEncoder {
    encoder: Box<dyn AudioEncoder>,
    payload: Box<[u8; 1500]>,
    len: usize,
    fresh: bool,
}

impl SharedEncoder {
    /// Wraps `encoder` with its payload buffer, allocated here, off the mixer thread.
    pub(crate) fn new(encoder: Box<dyn AudioEncoder>) -> Self {
        Self {
            encoder,
            payload: Box::new([0; 1500]),
            len: 0,
            fresh: false,
        }
    }
}

pub(crate) struct EngineRoom {
    pub(crate) id: RoomId,
    pub(crate) settings: RoomSettings,
    pub(crate) mix: Room,
    pub(crate) members: Vec<Member>,
    /// Position in `members` of the participant in each mixer slot (`NO_MEMBER` if none), so
    /// a tick finds a listener's leg in O(1) rather than searching.
    member_at: Vec<u32>,
    shared: Vec<((CodecKind, EncoderSettings), SharedEncoder)>,
    sources: Vec<SourceId>,
    finished: Vec<SourceId>,
    /// Participants removed by the last tick for RTP inactivity.
    pub(crate) timed_out: Vec<ParticipantKey>,
    pub(crate) recorder: Option<Recorder>,
    sounds: RoomSounds,
    pub(crate) snapshot: Arc<Mutex<RoomSnapshot>>,
    /// RTP packets of the participants who left.
    departed: PacketTotals,
    silence: Box<Frame>,
    own_payload: Box<[u8; 1500]>,
}

/// Everything a room needs from its thread while ticking.
pub(crate) struct TickContext<'a> {
    pub(crate) now: Instant,
    pub(crate) events: &'a Sender<EngineEvent>,
    /// Where what the room is done with is freed.
    pub(crate) reaper: &'a Reaper,
    /// The receive thread's commands, and its waker: a leaving leg's socket is dropped there.
    pub(crate) receiver: &'a Sender<ReceiverCommand>,
    pub(crate) waker: &'a mio::Waker,
    /// The thread's queue of outgoing packets for callers who do not latch, if batching.
    pub(crate) sends: Option<&'a mut SendBatch>,
    pub(crate) dropped_events: &'a mut u64,
    pub(crate) rtp_timeout: Duration,
    pub(crate) rtcp_interval: Duration,
    /// Packets decoded by this tick so far.
    pub(crate) decoded: u64,
    /// Silent packets not decoded by this tick so far.
    pub(crate) decode_skipped: u64,
}

fn emit(ctx: &mut TickContext<'_>, event: EngineEvent) {
    if ctx.events.try_send(event).is_err() {
        *ctx.dropped_events += 1;
    }
}

impl EngineRoom {
    /// A room with its lists reserved for the participants it expects (its limit, else
    /// [`RESERVED_PARTICIPANTS`]), so that joins, leaves, timeouts and prompts allocate nothing
    /// on the mixer thread.
    pub(crate) fn new(
        id: RoomId,
        settings: RoomSettings,
        snapshot: Arc<Mutex<RoomSnapshot>>,
    ) -> Self {
        let capacity = reserved_participants(&settings);
        let sounds = RoomSounds::new(&settings);
        let mut mix = Room::new(settings.mix);
        mix.reserve(capacity, RESERVED_SOURCES);
        Self {
            id,
            mix,
            settings,
            members: Vec::with_capacity(capacity),
            member_at: Vec::with_capacity(capacity),
            shared: Vec::with_capacity(RESERVED_ENCODERS),
            sources: Vec::with_capacity(RESERVED_SOURCES),
            finished: Vec::with_capacity(RESERVED_SOURCES),
            timed_out: Vec::with_capacity(capacity),
            recorder: None,
            sounds,
            snapshot,
            departed: PacketTotals::default(),
            silence: Box::new(Frame::silent()),
            own_payload: Box::new([0; 1500]),
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.settings.max_participants != 0 && self.members.len() >= self.settings.max_participants
    }

    pub(crate) fn play(
        &mut self,
        source: Box<dyn tutti_mix::AudioSource>,
        target: Option<ParticipantKey>,
    ) -> bool {
        let target = match target {
            None => SourceTarget::Room,
            Some(key) => match self.members.iter().find(|m| m.key == key) {
                Some(member) => SourceTarget::Listener(member.id),
                None => return false,
            },
        };
        match self.mix.add_source(source, target) {
            Ok(id) => {
                self.sources.push(id);
                true
            }
            Err(_) => false,
        }
    }

    /// Plays the entry or exit sound, if any, to the whole room.
    fn play_sound(&mut self, exit: bool) {
        let which = if exit { Which::Exit } else { Which::Entry };
        self.sounds.start(which, &mut self.mix);
    }

    /// Adds a participant. Within the room's reserved capacity nothing is allocated here: the
    /// leg, the mixer's buffers and a shared encoder come ready-made, and what is not needed
    /// goes to the reaper. A refused arrival is handed back whole.
    // Handed back by value: boxing it would allocate on the mixer thread.
    #[allow(clippy::result_large_err)]
    pub(crate) fn add(
        &mut self,
        arrival: Arrival,
        ctx: &mut TickContext<'_>,
    ) -> Result<(), (tutti_mix::MixError, Arrival)> {
        let Arrival {
            key,
            leg,
            participant,
            shared_encoder,
            token,
        } = arrival;
        let id = match self.mix.attach_participant(participant) {
            Ok(id) => id,
            Err((error, participant)) => {
                let arrival = Arrival {
                    key,
                    leg,
                    participant,
                    shared_encoder,
                    token,
                };
                return Err((error, arrival));
            }
        };
        self.share_encoder(leg.encoder_key(), shared_encoder, ctx);
        self.members.push(Member {
            key,
            id,
            leg,
            token,
            served: false,
        });
        if self.member_at.len() <= id.index() {
            self.member_at.resize(id.index() + 1, NO_MEMBER);
        }
        self.member_at[id.index()] = (self.members.len() - 1) as u32;
        let members = self.members.len();
        if self.timed_out.capacity() < members {
            self.timed_out.reserve(members - self.timed_out.len());
        }
        // Room for the snapshot to grow without allocating later; never wait for a reader.
        if let Ok(mut snapshot) = self.snapshot.try_lock() {
            if snapshot.participants.capacity() < members {
                snapshot.participants.reserve(members);
            }
        }
        self.play_sound(false);
        Ok(())
    }

    /// Keeps `encoder` as the room's shared encoder for `encoding` if it has none yet;
    /// otherwise it goes to the reaper.
    fn share_encoder(
        &mut self,
        encoding: (CodecKind, EncoderSettings),
        encoder: Option<SharedEncoder>,
        ctx: &mut TickContext<'_>,
    ) {
        let Some(encoder) = encoder else {
            return;
        };
        if self.shared.iter().any(|(shared, _)| *shared == encoding) {
            ctx.reaper.discard(Garbage::SharedEncoder(encoder));
        } else {
            self.shared.push((encoding, encoder));
        }
    }

    /// What a renegotiation keeps of a participant's leg.
    pub(crate) fn leg_state(&self, key: ParticipantKey) -> Option<LegState> {
        let member = self.members.iter().find(|m| m.key == key)?;
        Some(member.leg.state(member.token))
    }

    /// Replaces a participant's leg with a renegotiated one that takes over its call (see
    /// [`CallLeg::take_over`]); the old leg goes to the reaper. A participant no longer here
    /// hands the new leg back.
    pub(crate) fn replace_leg(
        &mut self,
        key: ParticipantKey,
        mut leg: Box<CallLeg>,
        shared_encoder: Option<SharedEncoder>,
        ctx: &mut TickContext<'_>,
    ) -> Result<(), (Box<CallLeg>, Option<SharedEncoder>)> {
        let Some(member) = self.members.iter_mut().find(|m| m.key == key) else {
            return Err((leg, shared_encoder));
        };
        leg.take_over(&mut member.leg);
        std::mem::swap(&mut member.leg, &mut leg);
        let encoding = member.leg.encoder_key();
        ctx.reaper.discard(Garbage::Leg(leg));
        self.share_encoder(encoding, shared_encoder, ctx);
        Ok(())
    }

    /// Removes a participant as a kick does (its `Left` event, the exit tone) but hands its
    /// socket back, to be joined on again. A relayed participant has no socket and stays.
    pub(crate) fn detach(
        &mut self,
        key: ParticipantKey,
        ctx: &mut TickContext<'_>,
    ) -> Option<Arc<mio::net::UdpSocket>> {
        let socket = self
            .members
            .iter()
            .find(|m| m.key == key)
            .and_then(|m| m.leg.udp_socket())?;
        self.remove(key, ctx, LeaveReason::Kicked);
        Some(socket)
    }

    /// Says whether the participant `listener` hears `speaker` (see
    /// [`Room::set_hears`](tutti_mix::Room::set_hears)).
    pub(crate) fn relate(
        &mut self,
        listener: ParticipantKey,
        speaker: ParticipantKey,
        hears: bool,
    ) -> Result<(), EngineError> {
        let id = |key| {
            self.members
                .iter()
                .find(|m| m.key == key)
                .map(|m| m.id)
                .ok_or(EngineError::UnknownParticipant {
                    room: self.id,
                    participant: key,
                })
        };
        let (listener, speaker) = (id(listener)?, id(speaker)?);
        Ok(self.mix.set_hears(listener, speaker, hears)?)
    }

    /// Applies new settings; the lock stays as it is (it changes through `SetLocked`). The old
    /// settings go to the reaper in the box the new ones came in.
    pub(crate) fn set_settings(&mut self, mut settings: Box<RoomSettings>, reaper: &Reaper) {
        settings.locked = self.settings.locked;
        if settings.entry_sound != self.settings.entry_sound
            || settings.exit_sound != self.settings.exit_sound
        {
            self.sounds.replace(&settings, reaper);
        }
        self.mix.set_config(settings.mix);
        std::mem::swap(&mut self.settings, &mut *settings);
        reaper.discard(Garbage::Settings(settings));
    }

    /// Removes a participant; returns whether it was there.
    pub(crate) fn remove(
        &mut self,
        key: ParticipantKey,
        ctx: &mut TickContext<'_>,
        reason: LeaveReason,
    ) -> bool {
        let removed = self.remove_member(key, ctx, reason);
        if removed && reason != LeaveReason::RoomDestroyed && reason != LeaveReason::Shutdown {
            self.play_sound(true);
        }
        removed
    }

    /// Removes several participants at once, with one exit tone for all of them; returns how
    /// many were there.
    pub(crate) fn remove_many(
        &mut self,
        keys: &[ParticipantKey],
        ctx: &mut TickContext<'_>,
        reason: LeaveReason,
    ) -> usize {
        let removed = keys
            .iter()
            .filter(|&&key| self.remove_member(key, ctx, reason))
            .count();
        if removed > 0 && reason != LeaveReason::RoomDestroyed && reason != LeaveReason::Shutdown {
            self.play_sound(true);
        }
        removed
    }

    /// Takes a participant out of the room and emits its events, without the exit tone. Its
    /// socket leaves the receive thread; its leg and buffers go to the reaper.
    fn remove_member(
        &mut self,
        key: ParticipantKey,
        ctx: &mut TickContext<'_>,
        reason: LeaveReason,
    ) -> bool {
        let Some(index) = self.members.iter().position(|m| m.key == key) else {
            return false;
        };
        let member = self.members.swap_remove(index);
        self.departed.add(
            member.leg.counters.packets_in,
            member.leg.counters.packets_out,
            member.leg.jitter_stats().lost,
        );
        self.member_at[member.id.index()] = NO_MEMBER;
        if let Some(moved) = self.members.get(index) {
            self.member_at[moved.id.index()] = index as u32;
        }
        let _ = ctx.receiver.send(ReceiverCommand::Remove(member.token));
        let _ = ctx.waker.wake();
        member.leg.close();
        if let Ok((last, participant)) = self.mix.detach_participant(member.id) {
            ctx.reaper.discard(Garbage::Participant(participant));
            if last.talking {
                emit(
                    ctx,
                    EngineEvent::StopTalking {
                        room: self.id,
                        participant: key,
                    },
                );
            }
        }
        emit(
            ctx,
            EngineEvent::Left {
                room: self.id,
                participant: key,
                reason,
                counters: member.leg.counters,
            },
        );
        ctx.reaper.discard(Garbage::Leg(member.leg));
        true
    }

    pub(crate) fn tick(&mut self, ctx: &mut TickContext<'_>, publish_snapshot: bool) {
        let room = self.id;
        let now = ctx.now;
        // 1. Network in, frames into the mixer.
        self.timed_out.clear();
        for member in &mut self.members {
            let key = member.key;
            let events = ctx.events;
            let dropped = &mut *ctx.dropped_events;
            let latched = member.leg.receive(now, |digit| {
                let event = EngineEvent::Dtmf {
                    room,
                    participant: key,
                    digit: digit.digit,
                    duration: Duration::from_millis(u64::from(digit.duration_ms)),
                };
                if events.try_send(event).is_err() {
                    *dropped += 1;
                }
            });
            if let Some(source) = latched {
                emit(
                    ctx,
                    EngineEvent::Latched {
                        room,
                        participant: key,
                        source,
                    },
                );
            }
            if member.leg.expects_media()
                && now.saturating_duration_since(member.leg.last_received) > ctx.rtp_timeout
            {
                self.timed_out.push(key);
                continue;
            }
            let leg = &mut member.leg;
            let before = (leg.counters.decoded, leg.counters.decode_skipped);
            let _ = self
                .mix
                .fill_input(member.id, |frame| leg.next_frame(now, frame));
            ctx.decoded += leg.counters.decoded - before.0;
            ctx.decode_skipped += leg.counters.decode_skipped - before.1;
            member.served = false;
        }

        // 2. Mix.
        self.mix.tick();
        let output = self.mix.last_output();
        for event in output.events() {
            let (id, make): (ParticipantId, fn(RoomId, ParticipantKey) -> EngineEvent) =
                match *event {
                    MixEvent::StartTalking(id) => (id, |room, participant| {
                        EngineEvent::StartTalking { room, participant }
                    }),
                    MixEvent::StopTalking(id) => (id, |room, participant| {
                        EngineEvent::StopTalking { room, participant }
                    }),
                    MixEvent::MuteDetect(id) => (id, |room, participant| EngineEvent::MuteDetect {
                        room,
                        participant,
                    }),
                    MixEvent::SourceFinished(source) => {
                        self.finished.push(source);
                        continue;
                    }
                    _ => continue,
                };
            if let Some(position) = member_position(&self.member_at, &self.members, id) {
                emit(ctx, make(room, self.members[position].key));
            }
        }

        // 3. Encode once per distinct mix and codec, send per listener.
        for (_, shared) in &mut self.shared {
            shared.fresh = false;
        }
        let room_mix = output.room_mix();
        for group in output.groups() {
            let common = std::ptr::eq(group.frame, room_mix) && group.listeners.len() > 1;
            for listener in group.listeners {
                let Some(position) = member_position(&self.member_at, &self.members, *listener)
                else {
                    continue;
                };
                let member = &mut self.members[position];
                member.served = true;
                if !member.leg.sends() {
                    continue;
                }
                let key = member.leg.encoder_key();
                let shared = common
                    .then(|| self.shared.iter_mut().find(|(shared, _)| *shared == key))
                    .flatten();
                match shared {
                    Some((_, shared)) => {
                        if !shared.fresh {
                            shared.len = shared
                                .encoder
                                .encode(&group.frame[..], &mut shared.payload[..])
                                .unwrap_or(0);
                            shared.fresh = true;
                        }
                        member.leg.send_payload(
                            &shared.payload[..shared.len],
                            group.silent,
                            ctx.sends.as_deref_mut(),
                        );
                    }
                    None => {
                        let len = member
                            .leg
                            .encode_own(group.frame, &mut self.own_payload[..]);
                        member.leg.send_payload(
                            &self.own_payload[..len],
                            group.silent,
                            ctx.sends.as_deref_mut(),
                        );
                    }
                }
            }
        }
        // Deaf listeners with nothing played to them alone hear silence, still as a stream
        // their phone can rely on.
        for member in &mut self.members {
            if !member.served && member.leg.sends() && !self.timed_out.contains(&member.key) {
                let len = member
                    .leg
                    .encode_own(&self.silence, &mut self.own_payload[..]);
                member
                    .leg
                    .send_payload(&self.own_payload[..len], true, ctx.sends.as_deref_mut());
            }
            member.leg.maybe_send_rtcp(now, ctx.rtcp_interval);
        }

        // 4. Recording.
        if let Some(recorder) = &mut self.recorder {
            if !recorder.push(output.room_mix()) {
                // The cap is reached; dropping the sender closes the file.
                if let Some(recorder) = self.recorder.take() {
                    ctx.reaper.discard(Garbage::Recorder(recorder));
                }
            }
        }

        // 5. Finished sources, timeouts, snapshot.
        for id in self.finished.drain(..) {
            if let Ok(source) = self.mix.remove_source(id) {
                self.sounds.finished(id, source, ctx.reaper);
            }
            self.sources.retain(|s| *s != id);
        }
        for index in 0..self.timed_out.len() {
            let key = self.timed_out[index];
            self.remove(key, ctx, LeaveReason::RtpTimeout);
        }
        if publish_snapshot {
            self.publish_snapshot();
        }
    }

    pub(crate) fn publish_snapshot(&self) {
        // Never wait: a reader holding the lock costs one skipped snapshot.
        let Ok(mut snapshot) = self.snapshot.try_lock() else {
            return;
        };
        snapshot.locked = self.settings.locked;
        snapshot.ticks = self.mix.ticks();
        snapshot.departed = self.departed;
        snapshot.participants.clear();
        for member in &self.members {
            let (Ok(status), Ok(settings)) =
                (self.mix.status(member.id), self.mix.settings(member.id))
            else {
                continue;
            };
            let jitter = member.leg.jitter_stats();
            snapshot.participants.push(ParticipantSnapshot {
                key: member.key,
                talking: status.talking,
                mute_detect: status.mute_detect,
                current_energy: status.current_energy,
                speak: settings.speak,
                hear: settings.hear,
                energy_level: settings.energy_level,
                moderator: settings.moderator,
                counters: member.leg.counters,
                jitter,
                rtt: member.leg.rtcp.stats().rtt,
            });
        }
    }
}
