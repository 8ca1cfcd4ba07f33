//! The receive thread of a mixer thread: waits on all its participants' sockets at once and
//! moves datagrams into their inboxes, so the mixer thread never blocks on the network.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use mio::net::UdpSocket;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::batch::{Batch, BATCH};
use crate::inbox::{DropReason, Inbox};
use crate::source::{Refusal, SourceGuard, Verdict};

/// Changes to the set of sockets a receiver watches.
pub enum ReceiverCommand {
    /// Start receiving on a socket, accepting what its guard accepts.
    Add(Token, Arc<UdpSocket>, Arc<Inbox>, Box<SourceGuard>),
    /// Stop receiving on a socket.
    Remove(Token),
    /// Judge a socket's datagrams by a new rule (the call was renegotiated).
    SetGuard(Token, Box<SourceGuard>),
    /// End the thread.
    Stop,
}

/// Handle to a receive thread.
pub struct ReceiverHandle {
    /// Where to send changes.
    pub commands: Sender<ReceiverCommand>,
    /// Wakes the thread so it sees a change at once.
    pub waker: Arc<mio::Waker>,
    /// For registering sockets from other threads.
    pub registry: Registry,
}

const WAKE: Token = Token(usize::MAX);

/// Starts a receive thread.
pub fn spawn(name: String) -> std::io::Result<(ReceiverHandle, std::thread::JoinHandle<()>)> {
    let poll = Poll::new()?;
    let registry = poll.registry().try_clone()?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE)?);
    let (commands, inbox) = crossbeam_channel::bounded(crate::engine::COMMAND_CAPACITY);
    let join = std::thread::Builder::new()
        .name(name)
        .spawn(move || run(poll, inbox))?;
    Ok((
        ReceiverHandle {
            commands,
            waker,
            registry,
        },
        join,
    ))
}

fn run(mut poll: Poll, commands: Receiver<ReceiverCommand>) {
    let mut sockets: HashMap<Token, Watched> = HashMap::new();
    let mut events = Events::with_capacity(1024);
    let mut batch = Batch::new();
    loop {
        for command in commands.try_iter() {
            match command {
                ReceiverCommand::Add(token, socket, inbox, guard) => {
                    sockets.insert(
                        token,
                        Watched {
                            socket,
                            inbox,
                            guard,
                        },
                    );
                }
                ReceiverCommand::Remove(token) => {
                    sockets.remove(&token);
                }
                ReceiverCommand::SetGuard(token, guard) => {
                    if let Some(watched) = sockets.get_mut(&token) {
                        watched.guard = guard;
                    }
                }
                ReceiverCommand::Stop => return,
            }
        }
        if let Err(error) = poll.poll(&mut events, Some(Duration::from_millis(200))) {
            if error.kind() != ErrorKind::Interrupted {
                return;
            }
        }
        for event in events.iter() {
            if let Some(watched) = sockets.get_mut(&event.token()) {
                watched.drain(&mut batch);
            }
        }
    }
}

/// A socket the thread reads, its participant's inbox and source rule.
struct Watched {
    socket: Arc<UdpSocket>,
    inbox: Arc<Inbox>,
    guard: Box<SourceGuard>,
}

impl Watched {
    /// Reads until the socket is empty (edge-triggered), a batch per system call: the usual
    /// single datagram costs one call, not two. Each datagram is judged before it is queued: a
    /// stranger's packets, however many, never take a slot of the caller's inbox.
    fn drain(&mut self, batch: &mut Batch) {
        let mut errors = 0;
        loop {
            let count = match batch.read(&*self.socket) {
                Ok(count) => count,
                // An ICMP error queued by an earlier send (a caller's closed port) is
                // reported once; keep reading what follows it.
                Err(_) if errors < 8 => {
                    errors += 1;
                    continue;
                }
                Err(_) => return,
            };
            let at = Instant::now();
            for index in 0..count {
                if let Some((bytes, from)) = batch.datagram(index) {
                    self.accept(bytes, from, at);
                }
            }
            if count < BATCH {
                return;
            }
        }
    }

    /// Judges one datagram and queues it for the mixer thread if the source rule allows.
    fn accept(&mut self, bytes: &[u8], from: SocketAddr, at: Instant) {
        let pinned = match self.guard.check(bytes, from) {
            Verdict::Accept => false,
            Verdict::AcceptAndPin => true,
            Verdict::Refuse(Refusal::ForeignSource) => {
                self.inbox.count_drop(DropReason::ForeignSource);
                return;
            }
            Verdict::Refuse(Refusal::Malformed) => {
                self.inbox.count_drop(DropReason::Malformed);
                return;
            }
        };
        // A full inbox counts the drop in `take_free`.
        if let Some(mut datagram) = self.inbox.take_free() {
            datagram.data[..bytes.len()].copy_from_slice(bytes);
            datagram.len = bytes.len();
            datagram.from = from;
            datagram.at = at;
            datagram.pinned = pinned;
            self.inbox.deliver(datagram);
        }
    }
}

/// Registers `socket` for reading with `token`. By its descriptor: the socket is shared
/// with its leg, and may move to another receive thread (see [`deregister`]).
pub fn register(registry: &Registry, socket: &UdpSocket, token: Token) -> std::io::Result<()> {
    let fd = socket.as_raw_fd();
    registry.register(&mut SourceFd(&fd), token, Interest::READABLE)
}

/// Stops `registry`'s thread from waiting on `socket`, so another receive thread may.
pub fn deregister(registry: &Registry, socket: &UdpSocket) -> std::io::Result<()> {
    let fd = socket.as_raw_fd();
    registry.deregister(&mut SourceFd(&fd))
}
