//! Frees, on a thread of its own, what a mixer thread is done with: a leg that left (its
//! socket, codec state and buffers), a finished prompt, a closed recording, replaced settings,
//! a destroyed room. It also closes reserved media ports nobody joined on in time. The mixer thread hands them over without allocating or freeing, so its
//! tick never waits on the allocator or on a socket's close.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use tutti_mix::{AudioSource, DetachedParticipant};

use crate::leg::CallLeg;
use crate::recorder::Recorder;
use crate::reserved_ports::ReservedPorts;
use crate::room::{EngineRoom, RoomSettings, SharedEncoder};
use crate::{EngineError, ParticipantKey};

/// How many things may wait to be freed before a mixer thread frees them itself.
const CAPACITY: usize = 1024;

/// Something a mixer thread no longer needs. Its contents are never read, only dropped.
#[allow(dead_code)]
pub(crate) enum Garbage {
    Leg(Box<CallLeg>),
    Participant(DetachedParticipant),
    Source(Box<dyn AudioSource>),
    SharedEncoder(SharedEncoder),
    Recorder(Recorder),
    Settings(Box<RoomSettings>),
    Room(Box<EngineRoom>),
    Keys(Vec<ParticipantKey>),
    Reply(Sender<Result<(), EngineError>>),
    Barrier(Sender<()>),
    SocketReply(Sender<Option<std::sync::Arc<mio::net::UdpSocket>>>),
    StateReply(Sender<Option<crate::leg::LegState>>),
}

/// The mixer threads' side of the reaper.
#[derive(Clone)]
pub(crate) struct Reaper {
    garbage: Sender<Garbage>,
}

impl Reaper {
    /// Starts the thread that frees what it is given, and closes `reserved` ports whose time
    /// ran out; it ends when every `Reaper` is dropped.
    pub(crate) fn spawn(
        reserved: Arc<ReservedPorts>,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        let (garbage, bin) = crossbeam_channel::bounded(CAPACITY);
        let join = std::thread::Builder::new()
            .name("tutti-reaper".into())
            .spawn(move || run(bin, &reserved))?;
        Ok((Self { garbage }, join))
    }

    /// Hands `garbage` over to be freed. Should the reaper fall that far behind, it is freed
    /// here instead.
    pub(crate) fn discard(&self, garbage: Garbage) {
        match self.garbage.try_send(garbage) {
            Ok(()) => {}
            Err(TrySendError::Full(garbage) | TrySendError::Disconnected(garbage)) => drop(garbage),
        }
    }
}

/// How often expired port reservations are looked for.
const EXPIRY_CHECK: Duration = Duration::from_millis(500);

fn run(bin: Receiver<Garbage>, reserved: &ReservedPorts) {
    let mut next_check = Instant::now() + EXPIRY_CHECK;
    loop {
        match bin.recv_deadline(next_check) {
            Ok(garbage) => drop(garbage),
            Err(RecvTimeoutError::Timeout) => {
                reserved.expire_now();
                next_check = Instant::now() + EXPIRY_CHECK;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
