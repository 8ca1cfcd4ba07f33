//! tutti's UDP socket under the SIP stack. The stack drops a datagram it cannot parse without
//! a word; this socket looks first, so that every such datagram is counted and, when it still
//! names what an answer is made of (Via, From, To, Call-ID, CSeq), answered 400 with the
//! reason. Datagrams that parse go to the stack untouched.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rsipstack::sip::SipMessage;

use crate::server::SipCounters;

/// The SIP UDP socket, checking datagrams before the stack sees them.
pub(crate) struct GuardedSocket {
    socket: tokio::net::UdpSocket,
    counters: Arc<SipCounters>,
}

impl GuardedSocket {
    pub(crate) fn new(socket: tokio::net::UdpSocket, counters: Arc<SipCounters>) -> Self {
        Self { socket, counters }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for GuardedSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (len, from) = self.socket.recv_from(buf).await?;
            let datagram = &buf[..len];
            if datagram.iter().all(u8::is_ascii_whitespace) || usable(datagram) {
                return Ok((len, from));
            }
            self.counters.malformed.fetch_add(1, Ordering::Relaxed);
            if let Some(answer) = bad_request(datagram) {
                let _ = self.socket.send_to(answer.as_bytes(), from).await;
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

/// Whether the stack can take the datagram: it parses, and a request has the headers a
/// transaction is keyed and answered by, each readable (the stack drops the others silently).
fn usable(datagram: &[u8]) -> bool {
    match SipMessage::try_from(datagram) {
        Ok(SipMessage::Request(request)) => crate::inspect::essentials(&request).is_ok(),
        Ok(SipMessage::Response(_)) => true,
        Err(_) => false,
    }
}

/// A 400 for a request that does not parse but carries the headers a response repeats; `None`
/// for a response, or when one of them is missing (then nobody could match an answer).
pub(crate) fn bad_request(datagram: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(datagram).ok()?;
    let (head, _) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines = head.split("\r\n");
    let start = lines.next()?;
    // Responses and ACKs are never answered (RFC 3261 §17).
    if start.starts_with("SIP/") || start.starts_with("ACK ") || !start.ends_with("SIP/2.0") {
        return None;
    }
    let mut repeated = Vec::new();
    for wanted in [
        ("via", "v"),
        ("from", "f"),
        ("to", "t"),
        ("call-id", "i"),
        ("cseq", ""),
    ] {
        let mut found = false;
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            if name == wanted.0 || (!wanted.1.is_empty() && name == wanted.1) {
                repeated.push(format!("{}: {}", canonical(wanted.0), value.trim()));
                found = true;
            }
        }
        if !found || repeated.iter().any(|line| line.contains(['\r', '\n'])) {
            return None;
        }
    }
    Some(format!(
        "SIP/2.0 400 Bad Request\r\n{}\r\nWarning: 399 tutti \"the request cannot be parsed\"\r\n\
         Content-Length: 0\r\n\r\n",
        repeated.join("\r\n")
    ))
}

fn canonical(name: &str) -> &'static str {
    match name {
        "via" => "Via",
        "from" => "From",
        "to" => "To",
        "call-id" => "Call-ID",
        _ => "CSeq",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKEN: &str = "INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
                          From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: c\r\n\
                          CSeq: one INVITE\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn a_request_that_names_its_dialog_is_answered_400_and_one_that_does_not_is_not() {
        let answer = bad_request(BROKEN.as_bytes()).unwrap();
        assert!(answer.starts_with(
            "SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
        ));
        assert!(answer.contains("\r\nCSeq: one INVITE\r\n") && answer.contains("Call-ID: c\r\n"));
        assert_eq!(
            bad_request(BROKEN.replace("Call-ID: c\r\n", "").as_bytes()),
            None
        );
        assert_eq!(bad_request(b"SIP/2.0 200 OK\r\n\r\n"), None);
        let ack = BROKEN
            .replace("INVITE sip:1000@127.0.0.1", "ACK ")
            .replace("one INVITE", "1 ACK");
        assert_eq!(bad_request(ack.as_bytes()), None);
        assert_eq!(bad_request(&[0xff, 0x00, 0x13]), None);
        assert!(!usable(BROKEN.as_bytes()));
        assert!(usable(BROKEN.replace("one INVITE", "1 INVITE").as_bytes()));
        assert!(!usable(
            BROKEN
                .replace("From: <sip:a@127.0.0.1>;tag=1\r\n", "")
                .as_bytes()
        ));
    }
}
