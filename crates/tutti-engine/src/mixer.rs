//! A mixer thread: owns some rooms, ticks them every 20 ms on absolute deadlines.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use tutti_mix::{AudioSource, FRAME_MS};

use crate::histogram::Histogram;
use crate::leg::{CallLeg, LegState};
use crate::reaper::{Garbage, Reaper};
use crate::receiver::ReceiverCommand;
use crate::recorder::Recorder;
use crate::room::{Arrival, EngineRoom, RoomSettings, TickContext};
use crate::send_batch::SendBatch;
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
        arrival: Arrival,
        reply: Sender<Result<(), EngineError>>,
    },
    Leave {
        room: RoomId,
        key: ParticipantKey,
    },
    /// Leaves as `Leave` does, handing the participant's socket back.
    Detach {
        room: RoomId,
        key: ParticipantKey,
        reply: Sender<Option<Arc<mio::net::UdpSocket>>>,
    },
    /// Reads what a renegotiation keeps of a participant's leg.
    LegState {
        room: RoomId,
        key: ParticipantKey,
        reply: Sender<Option<LegState>>,
    },
    /// Swaps in a renegotiated leg (see [`CallLeg::take_over`]).
    Renegotiate {
        room: RoomId,
        key: ParticipantKey,
        leg: Box<CallLeg>,
        shared_encoder: Option<crate::room::SharedEncoder>,
        reply: Sender<Result<(), EngineError>>,
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
    /// Audio packets decoded.
    pub decoded: AtomicU64,
    /// Silent audio packets not decoded.
    pub decode_skipped: AtomicU64,
    /// `sendmmsg` calls of the thread's batched sends.
    pub send_calls: AtomicU64,
    /// Packets sent in batches.
    pub batched_sends: AtomicU64,
    /// Batched packets the OS refused.
    pub batched_send_failures: AtomicU64,
    /// The thread runs at a raised priority (see [`EngineConfig::raise_priority`]).
    pub priority_raised: std::sync::atomic::AtomicBool,
}

pub(crate) struct MixerThread {
    pub(crate) index: usize,
    pub(crate) commands: Receiver<Command>,
    pub(crate) events: Sender<EngineEvent>,
    pub(crate) receiver: Sender<ReceiverCommand>,
    pub(crate) waker: Arc<mio::Waker>,
    pub(crate) reaper: Reaper,
    /// The socket that sends, in batches, to callers who do not latch (when batching).
    pub(crate) send_socket: Option<std::net::UdpSocket>,
    pub(crate) metrics: Arc<ThreadMetrics>,
    pub(crate) config: EngineConfig,
}

const TICK: Duration = Duration::from_millis(FRAME_MS as u64);
/// Snapshots are published every this many ticks (100 ms).
const SNAPSHOT_EVERY: u64 = 5;

impl MixerThread {
    pub(crate) fn run(mut self) {
        if self.config.raise_priority {
            let raised = 75u8
                .try_into()
                .map(thread_priority::ThreadPriority::Crossplatform)
                .map(thread_priority::set_current_thread_priority);
            self.metrics
                .priority_raised
                .store(matches!(raised, Ok(Ok(()))), Ordering::Relaxed);
        }
        // Built here: its system-call headers hold raw pointers and stay on this thread.
        let mut sends = self
            .send_socket
            .take()
            .and_then(|socket| SendBatch::new(socket).ok());
        let mut rooms: HashMap<RoomId, Box<EngineRoom>> = HashMap::new();
        let mut dropped_events = 0u64;
        let mut deadline = Instant::now() + TICK;
        let mut tick_count = 0u64;
        loop {
            let now = Instant::now();
            let mut ctx = TickContext {
                now,
                events: &self.events,
                reaper: &self.reaper,
                receiver: &self.receiver,
                waker: &self.waker,
                sends: sends.as_mut(),
                dropped_events: &mut dropped_events,
                rtp_timeout: self.config.rtp_timeout,
                rtcp_interval: self.config.rtcp_interval,
                decoded: 0,
                decode_skipped: 0,
            };
            while let Ok(command) = self.commands.try_recv() {
                if !self.apply(command, &mut rooms, &mut ctx) {
                    self.shut_down(&mut rooms, &mut ctx);
                    return;
                }
            }
            let started = Instant::now();
            ctx.now = started;
            tick_count += 1;
            for room in rooms.values_mut() {
                room.tick(&mut ctx, tick_count.is_multiple_of(SNAPSHOT_EVERY));
            }
            if let Some(batch) = ctx.sends.as_deref_mut() {
                batch.flush();
                self.metrics
                    .send_calls
                    .store(batch.calls, Ordering::Relaxed);
                self.metrics
                    .batched_sends
                    .store(batch.sent, Ordering::Relaxed);
                self.metrics
                    .batched_send_failures
                    .store(batch.failures, Ordering::Relaxed);
            }
            let (decoded, decode_skipped) = (ctx.decoded, ctx.decode_skipped);
            let participants = rooms.values().map(|r| r.members.len()).sum();
            self.metrics
                .participants
                .store(participants, Ordering::Relaxed);
            self.metrics.rooms.store(rooms.len(), Ordering::Relaxed);
            self.metrics
                .dropped_events
                .store(dropped_events, Ordering::Relaxed);
            self.metrics.decoded.fetch_add(decoded, Ordering::Relaxed);
            self.metrics
                .decode_skipped
                .fetch_add(decode_skipped, Ordering::Relaxed);
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

    /// Applies one command; returns false to stop the thread.
    fn apply(
        &self,
        command: Command,
        rooms: &mut HashMap<RoomId, Box<EngineRoom>>,
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
                    .or_insert_with(|| Box::new(EngineRoom::new(room, settings, snapshot)));
            }
            Command::DestroyRoom { room } => {
                if let Some(mut engine_room) = rooms.remove(&room) {
                    Self::empty(&mut engine_room, ctx, LeaveReason::RoomDestroyed);
                    ctx.reaper.discard(Garbage::Room(engine_room));
                }
            }
            Command::Join {
                room,
                arrival,
                reply,
            } => {
                let key = arrival.key;
                let target = match rooms.get_mut(&room) {
                    None => Err(EngineError::UnknownRoom(room)),
                    Some(r) if r.settings.locked => Err(EngineError::RoomLocked(room)),
                    Some(r) if r.is_full() => Err(EngineError::RoomFull {
                        room,
                        max: r.settings.max_participants,
                    }),
                    Some(r) => Ok(r),
                };
                let added = match target {
                    Err(error) => Err((error, arrival)),
                    Ok(r) => r
                        .add(arrival, ctx)
                        .map_err(|(error, arrival)| (EngineError::from(error), arrival)),
                };
                let result = match added {
                    Err((error, arrival)) => {
                        arrival.refuse(ctx);
                        Err(error)
                    }
                    Ok(()) => {
                        let joined = EngineEvent::Joined {
                            room,
                            participant: key,
                        };
                        if ctx.events.try_send(joined).is_err() {
                            *ctx.dropped_events += 1;
                        }
                        Ok(())
                    }
                };
                let _ = reply.send(result);
                ctx.reaper.discard(Garbage::Reply(reply));
            }
            Command::Leave { room, key } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.remove(key, ctx, LeaveReason::Kicked);
                    r.publish_snapshot();
                }
            }
            Command::Detach { room, key, reply } => {
                let socket = rooms.get_mut(&room).and_then(|r| {
                    let socket = r.detach(key, ctx);
                    r.publish_snapshot();
                    socket
                });
                let _ = reply.send(socket);
                ctx.reaper.discard(Garbage::SocketReply(reply));
            }
            Command::LegState { room, key, reply } => {
                let _ = reply.send(rooms.get(&room).and_then(|r| r.leg_state(key)));
                ctx.reaper.discard(Garbage::StateReply(reply));
            }
            Command::Renegotiate {
                room,
                key,
                leg,
                shared_encoder,
                reply,
            } => {
                let replaced = match rooms.get_mut(&room) {
                    Some(r) => r.replace_leg(key, leg, shared_encoder, ctx),
                    None => Err((leg, shared_encoder)),
                };
                let result = replaced.map_err(|(leg, encoder)| {
                    ctx.reaper.discard(Garbage::Leg(leg));
                    if let Some(encoder) = encoder {
                        ctx.reaper.discard(Garbage::SharedEncoder(encoder));
                    }
                    EngineError::UnknownParticipant {
                        room,
                        participant: key,
                    }
                });
                let _ = reply.send(result);
                ctx.reaper.discard(Garbage::Reply(reply));
            }
            Command::LeaveMany { room, keys } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.remove_many(&keys, ctx, LeaveReason::Kicked);
                    r.publish_snapshot();
                }
                ctx.reaper.discard(Garbage::Keys(keys));
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
                ctx.reaper.discard(Garbage::Reply(reply));
            }
            Command::SetRoomSettings { room, settings } => match rooms.get_mut(&room) {
                Some(r) => {
                    r.set_settings(settings, ctx.reaper);
                    r.publish_snapshot();
                }
                None => ctx.reaper.discard(Garbage::Settings(settings)),
            },
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
            } => match rooms.get_mut(&room) {
                Some(r) => {
                    r.play(source, target);
                }
                None => ctx.reaper.discard(Garbage::Source(source)),
            },
            Command::SetLocked { room, locked } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.settings.locked = locked;
                    r.publish_snapshot();
                }
            }
            Command::StartRecording { room, recorder } => match rooms.get_mut(&room) {
                Some(r) => {
                    if let Some(old) = r.recorder.replace(recorder) {
                        ctx.reaper.discard(Garbage::Recorder(old));
                    }
                }
                None => ctx.reaper.discard(Garbage::Recorder(recorder)),
            },
            Command::StopRecording { room } => {
                if let Some(recorder) = rooms.get_mut(&room).and_then(|r| r.recorder.take()) {
                    ctx.reaper.discard(Garbage::Recorder(recorder));
                }
            }
            Command::Barrier { reply } => {
                let _ = reply.send(());
                ctx.reaper.discard(Garbage::Barrier(reply));
            }
            Command::Stop => return false,
        }
        true
    }

    /// Everyone leaves `room` for `reason`; its recording is closed.
    fn empty(room: &mut EngineRoom, ctx: &mut TickContext<'_>, reason: LeaveReason) {
        while let Some(key) = room.members.last().map(|m| m.key) {
            room.remove(key, ctx, reason);
        }
        if let Some(recorder) = room.recorder.take() {
            ctx.reaper.discard(Garbage::Recorder(recorder));
        }
    }

    fn shut_down(&self, rooms: &mut HashMap<RoomId, Box<EngineRoom>>, ctx: &mut TickContext<'_>) {
        for room in rooms.values_mut() {
            Self::empty(room, ctx, LeaveReason::Shutdown);
        }
        let _ = self.receiver.send(ReceiverCommand::Stop);
        let _ = self.waker.wake();
    }
}
