//! A mixer thread: owns some rooms, ticks them every 20 ms on absolute deadlines.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use tutti_mix::{AudioSource, FRAME_MS};

use crate::histogram::Histogram;
use crate::leg::CallLeg;
use crate::receiver::ReceiverCommand;
use crate::recorder::Recorder;
use crate::room::{EngineRoom, RoomSettings, TickContext};
use crate::snapshot::RoomSnapshot;
use crate::{EngineConfig, EngineError, EngineEvent, LeaveReason, ParticipantKey, RoomId};

/// A change to one participant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParticipantChange {
    /// Allow or forbid speaking (unmute / mute).
    Speak(bool),
    /// Allow or forbid hearing (undeaf / deaf).
    Hear(bool),
    /// Linear input gain.
    InputGain(f32),
    /// Linear output volume.
    OutputVolume(f32),
    /// Talk threshold.
    EnergyLevel(f32),
    /// Moderator flag.
    Moderator(bool),
}

pub(crate) enum Command {
    CreateRoom {
        room: RoomId,
        settings: RoomSettings,
        snapshot: Arc<Mutex<RoomSnapshot>>,
    },
    DestroyRoom {
        room: RoomId,
    },
    Join {
        room: RoomId,
        key: ParticipantKey,
        leg: Box<CallLeg>,
        settings: tutti_mix::ParticipantSettings,
        token: mio::Token,
        reply: Sender<Result<(), EngineError>>,
    },
    Leave {
        room: RoomId,
        key: ParticipantKey,
    },
    LeaveMany {
        room: RoomId,
        keys: Vec<ParticipantKey>,
    },
    Relate {
        room: RoomId,
        listener: ParticipantKey,
        speaker: ParticipantKey,
        hears: bool,
        reply: Sender<Result<(), EngineError>>,
    },
    SetRoomSettings {
        room: RoomId,
        settings: Box<RoomSettings>,
    },
    Update {
        room: RoomId,
        key: Option<ParticipantKey>,
        change: ParticipantChange,
        skip_moderators: bool,
    },
    Play {
        room: RoomId,
        target: Option<ParticipantKey>,
        source: Box<dyn AudioSource>,
    },
    SetLocked {
        room: RoomId,
        locked: bool,
    },
    StartRecording {
        room: RoomId,
        recorder: Recorder,
    },
    StopRecording {
        room: RoomId,
    },
    /// Answered once every earlier command is applied and published.
    Barrier {
        reply: Sender<()>,
    },
    Stop,
}

/// Live counters of one mixer thread.
#[derive(Debug, Default)]
pub struct ThreadMetrics {
    /// How long ticks take.
    pub tick_duration: Histogram,
    /// How late ticks start relative to their deadline.
    pub lateness: Histogram,
    /// Ticks that started more than a whole tick late.
    pub overruns: AtomicU64,
    /// Rooms on the thread.
    pub rooms: AtomicUsize,
    /// Participants on the thread.
    pub participants: AtomicUsize,
    /// Events dropped because the channel was full.
    pub dropped_events: AtomicU64,
}

pub(crate) struct MixerThread {
    pub(crate) index: usize,
    pub(crate) commands: Receiver<Command>,
    pub(crate) events: Sender<EngineEvent>,
    pub(crate) receiver: Sender<ReceiverCommand>,
    pub(crate) waker: Arc<mio::Waker>,
    pub(crate) metrics: Arc<ThreadMetrics>,
    pub(crate) config: EngineConfig,
}

const TICK: Duration = Duration::from_millis(FRAME_MS as u64);
/// Snapshots are published every this many ticks (100 ms).
const SNAPSHOT_EVERY: u64 = 5;

impl MixerThread {
    pub(crate) fn run(self) {
        let mut rooms: HashMap<RoomId, EngineRoom> = HashMap::new();
        let mut tokens: HashMap<(RoomId, ParticipantKey), mio::Token> = HashMap::new();
        let mut dropped_events = 0u64;
        let mut deadline = Instant::now() + TICK;
        let mut tick_count = 0u64;
        loop {
            let now = Instant::now();
            let mut ctx = TickContext {
                now,
                events: &self.events,
                dropped_events: &mut dropped_events,
                rtp_timeout: self.config.rtp_timeout,
                rtcp_interval: self.config.rtcp_interval,
            };
            while let Ok(command) = self.commands.try_recv() {
                if !self.apply(command, &mut rooms, &mut tokens, &mut ctx) {
                    self.shut_down(&mut rooms, &mut tokens, &mut ctx);
                    return;
                }
            }
            let started = Instant::now();
            ctx.now = started;
            tick_count += 1;
            for room in rooms.values_mut() {
                room.tick(&mut ctx, tick_count % SNAPSHOT_EVERY == 0);
                for &key in &room.timed_out {
                    self.forget(&mut tokens, room.id, key);
                }
            }
            let participants = rooms.values().map(|r| r.members.len()).sum();
            self.metrics
                .participants
                .store(participants, Ordering::Relaxed);
            self.metrics.rooms.store(rooms.len(), Ordering::Relaxed);
            self.metrics
                .dropped_events
                .store(dropped_events, Ordering::Relaxed);
            self.metrics.tick_duration.observe(started.elapsed());

            // Absolute deadlines: no drift. A tick that starts late runs once and the schedule
            // moves on; missed ticks are not replayed in a burst.
            let after = Instant::now();
            if after >= deadline + TICK {
                let late_by = after - deadline;
                self.metrics.overruns.fetch_add(1, Ordering::Relaxed);
                if self
                    .events
                    .try_send(EngineEvent::TickOverrun {
                        thread: self.index,
                        late_by,
                    })
                    .is_err()
                {
                    dropped_events += 1;
                }
                let missed = (late_by.as_nanos() / TICK.as_nanos()) as u32;
                deadline += TICK * missed;
            }
            if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            self.metrics
                .lateness
                .observe(Instant::now().saturating_duration_since(deadline));
            deadline += TICK;
        }
    }

    fn forget(
        &self,
        tokens: &mut HashMap<(RoomId, ParticipantKey), mio::Token>,
        room: RoomId,
        key: ParticipantKey,
    ) {
        if let Some(token) = tokens.remove(&(room, key)) {
            let _ = self.receiver.send(ReceiverCommand::Remove(token));
            let _ = self.waker.wake();
        }
    }

    /// Applies one command; returns false to stop the thread.
    fn apply(
        &self,
        command: Command,
        rooms: &mut HashMap<RoomId, EngineRoom>,
        tokens: &mut HashMap<(RoomId, ParticipantKey), mio::Token>,
        ctx: &mut TickContext<'_>,
    ) -> bool {
        match command {
            Command::CreateRoom {
                room,
                settings,
                snapshot,
            } => {
                rooms
                    .entry(room)
                    .or_insert_with(|| EngineRoom::new(room, settings, snapshot));
            }
            Command::DestroyRoom { room } => {
                if let Some(mut engine_room) = rooms.remove(&room) {
                    self.empty(&mut engine_room, tokens, ctx, LeaveReason::RoomDestroyed);
                }
            }
            Command::Join {
                room,
                key,
                leg,
                settings,
                token,
                reply,
            } => {
                let result = match rooms.get_mut(&room) {
                    None => Err(EngineError::UnknownRoom(room)),
                    Some(r) if r.settings.locked => Err(EngineError::RoomLocked(room)),
                    Some(r) if r.is_full() => Err(EngineError::RoomFull {
                        room,
                        max: r.settings.max_participants,
                    }),
                    Some(r) => {
                        let added = r.add(key, leg, settings).map_err(EngineError::from);
                        if added.is_ok() {
                            tokens.insert((room, key), token);
                            if ctx
                                .events
                                .try_send(EngineEvent::Joined {
                                    room,
                                    participant: key,
                                })
                                .is_err()
                            {
                                *ctx.dropped_events += 1;
                            }
                        }
                        added
                    }
                };
                if result.is_err() {
                    let _ = self.receiver.send(ReceiverCommand::Remove(token));
                    let _ = self.waker.wake();
                }
                let _ = reply.send(result);
            }
            Command::Leave { room, key } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.remove(key, ctx, LeaveReason::Kicked);
                    r.publish_snapshot();
                }
                self.forget(tokens, room, key);
            }
            Command::LeaveMany { room, keys } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.remove_many(&keys, ctx, LeaveReason::Kicked);
                    r.publish_snapshot();
                }
                for key in keys {
                    self.forget(tokens, room, key);
                }
            }
            Command::Relate {
                room,
                listener,
                speaker,
                hears,
                reply,
            } => {
                let result = match rooms.get_mut(&room) {
                    Some(r) => r.relate(listener, speaker, hears),
                    None => Err(EngineError::UnknownRoom(room)),
                };
                let _ = reply.send(result);
            }
            Command::SetRoomSettings { room, settings } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.set_settings(*settings);
                    r.publish_snapshot();
                }
            }
            Command::Update {
                room,
                key,
                change,
                skip_moderators,
            } => {
                if let Some(r) = rooms.get_mut(&room) {
                    for member in r.members.iter().filter(|m| key.is_none_or(|k| k == m.key)) {
                        let Ok(settings) = r.mix.settings_mut(member.id) else {
                            continue;
                        };
                        if skip_moderators && settings.moderator {
                            continue;
                        }
                        match change {
                            ParticipantChange::Speak(v) => settings.speak = v,
                            ParticipantChange::Hear(v) => settings.hear = v,
                            ParticipantChange::InputGain(v) => settings.input_gain = v,
                            ParticipantChange::OutputVolume(v) => settings.output_volume = v,
                            ParticipantChange::EnergyLevel(v) => settings.energy_level = v,
                            ParticipantChange::Moderator(v) => settings.moderator = v,
                        }
                    }
                    r.publish_snapshot();
                }
            }
            Command::Play {
                room,
                target,
                source,
            } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.play(source, target);
                }
            }
            Command::SetLocked { room, locked } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.settings.locked = locked;
                    r.publish_snapshot();
                }
            }
            Command::StartRecording { room, recorder } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.recorder = Some(recorder);
                }
            }
            Command::StopRecording { room } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.recorder = None;
                }
            }
            Command::Barrier { reply } => {
                let _ = reply.send(());
            }
            Command::Stop => return false,
        }
        true
    }

    /// Everyone leaves `room` for `reason`; its recording is closed.
    fn empty(
        &self,
        room: &mut EngineRoom,
        tokens: &mut HashMap<(RoomId, ParticipantKey), mio::Token>,
        ctx: &mut TickContext<'_>,
        reason: LeaveReason,
    ) {
        let keys: Vec<_> = room.members.iter().map(|m| m.key).collect();
        for key in keys {
            room.remove(key, ctx, reason);
            self.forget(tokens, room.id, key);
        }
        room.recorder = None;
    }

    fn shut_down(
        &self,
        rooms: &mut HashMap<RoomId, EngineRoom>,
        tokens: &mut HashMap<(RoomId, ParticipantKey), mio::Token>,
        ctx: &mut TickContext<'_>,
    ) {
        for room in rooms.values_mut() {
            self.empty(room, tokens, ctx, LeaveReason::Shutdown);
        }
        let _ = self.receiver.send(ReceiverCommand::Stop);
        let _ = self.waker.wake();
    }
}
