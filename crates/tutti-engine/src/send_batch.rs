//! Mixes for callers who do not latch go out in batches: a mixer thread queues them on one
//! socket of its own and sends up to [`SEND_BATCH`] with a single `sendmmsg` call.
//!
//! Only callers who do not latch are served this way: such a caller sends from a port other
//! than the one it receives on (a GStreamer pipeline, a media gateway), so it cannot expect
//! tutti's packets from the port in the answer either. A latching caller (a phone, behind NAT)
//! gets its packets from its own port, as the answer says.

use std::io::IoSlice;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};

/// Packets queued before a send is forced.
pub(crate) const SEND_BATCH: usize = 32;
/// Largest packet queued.
pub(crate) const MAX_PACKET: usize = 1500;

/// One mixer thread's queue of outgoing packets and the socket they leave from.
pub(crate) struct SendBatch {
    socket: UdpSocket,
    headers: MultiHeaders<SockaddrStorage>,
    buffers: Box<[[u8; MAX_PACKET]; SEND_BATCH]>,
    lens: [usize; SEND_BATCH],
    destinations: [Option<SockaddrStorage>; SEND_BATCH],
    queued: usize,
    /// `sendmmsg` calls made.
    pub(crate) calls: u64,
    /// Packets the OS took.
    pub(crate) sent: u64,
    /// Packets it refused (a full socket buffer).
    pub(crate) failures: u64,
}

impl SendBatch {
    /// A queue sending from `socket` (made non-blocking here).
    pub(crate) fn new(socket: UdpSocket) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            headers: MultiHeaders::preallocate(SEND_BATCH, None),
            buffers: Box::new([[0; MAX_PACKET]; SEND_BATCH]),
            lens: [0; SEND_BATCH],
            destinations: [None; SEND_BATCH],
            queued: 0,
            calls: 0,
            sent: 0,
            failures: 0,
        })
    }

    /// Queues the packet `write` puts into the buffer it is given (returning its length) for
    /// `to`; sends the queue when it is full. Returns false when nothing was queued.
    pub(crate) fn queue(
        &mut self,
        to: SocketAddr,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> bool {
        if self.queued == SEND_BATCH {
            self.flush();
        }
        let slot = self.queued;
        let Some(len) = write(&mut self.buffers[slot][..]) else {
            return false;
        };
        self.lens[slot] = len;
        self.destinations[slot] = Some(SockaddrStorage::from(to));
        self.queued += 1;
        true
    }

    /// Sends everything queued. What the OS does not take is counted and dropped: a late
    /// packet is worth nothing to a listener.
    pub(crate) fn flush(&mut self) {
        let queued = std::mem::take(&mut self.queued);
        let mut from = 0;
        while from < queued {
            let Self {
                socket,
                headers,
                buffers,
                lens,
                destinations,
                ..
            } = self;
            let slices: [[IoSlice<'_>; 1]; SEND_BATCH] =
                std::array::from_fn(|i| [IoSlice::new(&buffers[i][..lens[i]])]);
            self.calls += 1;
            let result = sendmmsg(
                socket.as_raw_fd(),
                headers,
                slices[from..queued].iter(),
                &destinations[from..queued],
                [],
                MsgFlags::MSG_DONTWAIT,
            );
            match result.map(|sent| sent.count()) {
                Ok(sent) if sent > 0 => {
                    self.sent += sent as u64;
                    from += sent;
                }
                _ => {
                    // A full buffer (or any other refusal) drops the rest of this tick's
                    // packets rather than retrying in a loop.
                    self.failures += (queued - from) as u64;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_packets_reach_their_destinations_in_few_calls() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::new(socket).unwrap();
        let receivers: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for n in 0..40u8 {
            let to = receivers[usize::from(n) % 3].local_addr().unwrap();
            assert!(batch.queue(to, |buf| {
                buf[..2].copy_from_slice(&[n, n]);
                Some(2)
            }));
        }
        batch.flush();
        assert_eq!((batch.sent, batch.failures), (40, 0));
        assert_eq!(batch.calls, 2, "32 at once, then the other 8");
        for (i, receiver) in receivers.iter().enumerate() {
            receiver.set_nonblocking(true).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            while let Ok((len, from)) = receiver.recv_from(&mut buf) {
                assert_eq!(from, batch.socket.local_addr().unwrap());
                assert_eq!(len, 2);
                got.push(buf[0]);
            }
            let expected: Vec<u8> = (0..40).filter(|n| usize::from(*n) % 3 == i).collect();
            assert_eq!(got, expected);
        }
        batch.flush();
        assert_eq!(batch.calls, 2, "nothing queued, no call");
        assert!(!batch.queue(receivers[0].local_addr().unwrap(), |_| None));
    }
}
