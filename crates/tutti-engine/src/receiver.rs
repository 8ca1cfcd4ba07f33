//! The receive thread of a mixer thread: waits on all its participants' sockets at once and
//! moves datagrams into their inboxes, so the mixer thread never blocks on the network.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::inbox::Inbox;

/// Changes to the set of sockets a receiver watches.
pub enum ReceiverCommand {
    /// Start receiving on a socket.
    Add(Token, Arc<UdpSocket>, Arc<Inbox>),
    /// Stop receiving on a socket.
    Remove(Token),
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
    let (commands, inbox) = crossbeam_channel::unbounded();
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
    let mut sockets: HashMap<Token, (Arc<UdpSocket>, Arc<Inbox>)> = HashMap::new();
    let mut events = Events::with_capacity(1024);
    let mut scratch = [0u8; crate::inbox::MAX_DATAGRAM];
    loop {
        for command in commands.try_iter() {
            match command {
                ReceiverCommand::Add(token, socket, inbox) => {
                    sockets.insert(token, (socket, inbox));
                }
                ReceiverCommand::Remove(token) => {
                    sockets.remove(&token);
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
            let Some((socket, inbox)) = sockets.get(&event.token()) else {
                continue;
            };
            // Edge-triggered: read until the socket is empty.
            loop {
                match inbox.take_free() {
                    Some(mut datagram) => match socket.recv_from(&mut datagram.data) {
                        Ok((len, from)) => {
                            datagram.len = len;
                            datagram.from = from;
                            datagram.at = Instant::now();
                            inbox.deliver(datagram);
                        }
                        Err(_) => {
                            inbox.recycle(datagram);
                            break;
                        }
                    },
                    None => {
                        // Full: read and drop (counted by take_free) so the socket drains.
                        if socket.recv_from(&mut scratch).is_err() {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Registers `socket` for reading with `token`.
pub fn register(registry: &Registry, socket: &mut UdpSocket, token: Token) -> std::io::Result<()> {
    registry.register(socket, token, Interest::READABLE)
}
