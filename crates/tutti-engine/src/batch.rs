//! Reading a socket's waiting datagrams with one `recvmmsg` call instead of one `recvfrom` per
//! datagram plus the one that finds the socket empty: a call that returns fewer datagrams than
//! it asked for has emptied the socket.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrLike, SockaddrStorage};
use std::io::IoSliceMut;

use crate::inbox::MAX_DATAGRAM;

/// Datagrams one call reads at most.
pub(crate) const BATCH: usize = 8;

/// Buffers for one batched read, allocated once per receive thread.
pub(crate) struct Batch {
    headers: MultiHeaders<SockaddrStorage>,
    buffers: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    received: [(usize, Option<SocketAddr>); BATCH],
}

impl Batch {
    pub(crate) fn new() -> Self {
        Self {
            headers: MultiHeaders::preallocate(BATCH, None),
            buffers: Box::new([[0; MAX_DATAGRAM]; BATCH]),
            received: [(0, None); BATCH],
        }
    }

    /// Reads what `socket` holds, up to [`BATCH`] datagrams, without blocking. Returns how many
    /// were read (0 when it was empty).
    pub(crate) fn read(&mut self, socket: &impl AsRawFd) -> Result<usize, Errno> {
        let mut slices = self.buffers.each_mut().map(|b| [IoSliceMut::new(b)]);
        let messages = match recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(messages) => messages,
            Err(Errno::EAGAIN) => return Ok(0),
            Err(error) => return Err(error),
        };
        let mut count = 0;
        for (slot, message) in self.received.iter_mut().zip(messages) {
            *slot = (message.bytes, message.address.and_then(socket_addr));
            count += 1;
        }
        Ok(count)
    }

    /// The `index`th datagram of the last read: its bytes and its sender.
    pub(crate) fn datagram(&self, index: usize) -> Option<(&[u8], SocketAddr)> {
        let (len, from) = *self.received.get(index)?;
        let bytes = self.buffers.get(index)?.get(..len)?;
        Some((bytes, from?))
    }
}

fn socket_addr(address: SockaddrStorage) -> Option<SocketAddr> {
    match address.family()? {
        nix::sys::socket::AddressFamily::Inet => address.as_sockaddr_in().map(|a| (*a).into()),
        nix::sys::socket::AddressFamily::Inet6 => address.as_sockaddr_in6().map(|a| (*a).into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_read_takes_what_is_waiting_and_says_when_the_socket_is_empty() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = Batch::new();
        assert_eq!(batch.read(&socket), Ok(0));
        for n in 0..11u8 {
            sender
                .send_to(&[n; 3], socket.local_addr().unwrap())
                .unwrap();
        }
        assert_eq!(batch.read(&socket), Ok(BATCH));
        for i in 0..BATCH {
            let (bytes, from) = batch.datagram(i).unwrap();
            assert_eq!(bytes, &[i as u8; 3]);
            assert_eq!(from, sender.local_addr().unwrap());
        }
        assert_eq!(batch.read(&socket), Ok(3));
        assert_eq!(batch.datagram(2).unwrap().0, &[10; 3]);
        assert_eq!(batch.read(&socket), Ok(0));
    }
}
