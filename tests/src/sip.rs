//! SIP over UDP by hand, for requests no well-behaved user agent sends: one datagram out, the
//! server's final answer back.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

/// Sends `request` (CRLF line ends are added where a bare LF stands) in one datagram from a
/// fresh socket to `server`; returns the first final answer (status 200 or more) within
/// `within`, or None.
pub fn exchange(server: SocketAddr, request: &str, within: Duration) -> Option<String> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();
    let request = request
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .replace("LOCAL", &local.to_string());
    socket.send_to(request.as_bytes(), server).unwrap();
    let deadline = Instant::now() + within;
    let mut buffer = [0; 65_536];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let Ok((n, _)) = socket.recv_from(&mut buffer) else {
            return None;
        };
        let answer = String::from_utf8_lossy(&buffer[..n]).into_owned();
        if status(&answer).is_some_and(|code| code >= 200) {
            return Some(answer);
        }
    }
    None
}

/// The status code of a SIP response.
pub fn status(response: &str) -> Option<u16> {
    let line = response.lines().next()?;
    let mut words = line.split(' ');
    (words.next()? == "SIP/2.0").then_some(())?;
    words.next()?.parse().ok()
}

/// An OPTIONS request from `LOCAL` (replaced by [`exchange`] with its socket's address).
pub fn options(server: SocketAddr, call_id: &str) -> String {
    format!(
        "OPTIONS sip:{server} SIP/2.0\n\
         Via: SIP/2.0/UDP LOCAL;branch=z9hG4bK-{call_id}\n\
         Max-Forwards: 70\n\
         From: <sip:probe@127.0.0.1>;tag={call_id}\n\
         To: <sip:{server}>\n\
         Call-ID: {call_id}\n\
         CSeq: 1 OPTIONS\n\
         Content-Length: 0\n\n"
    )
}

/// An INVITE for `number` from `LOCAL`, with `headers` (e.g. [`INVITE_HEADERS`], altered)
/// between the start line and a valid PCMU offer; `{call_id}` and `{length}` in them stand
/// for `call_id` and the offer's length.
pub fn invite(number: &str, call_id: &str, headers: &str) -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let headers = headers
        .replace("{call_id}", call_id)
        .replace("{length}", &sdp.len().to_string());
    format!("INVITE sip:{number}@127.0.0.1 SIP/2.0\n{headers}\n{sdp}")
}

/// The headers of a well-formed INVITE for [`invite`] (to number 4000).
pub const INVITE_HEADERS: &str = "Via: SIP/2.0/UDP LOCAL;branch=z9hG4bK-{call_id}
Max-Forwards: 70
From: <sip:caller@127.0.0.1>;tag={call_id}
To: <sip:4000@127.0.0.1>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: <sip:caller@LOCAL>
Content-Type: application/sdp
Content-Length: {length}
";

/// Waits until `server` answers OPTIONS with 200, at most `within`.
pub fn wait_until_up(server: SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let probe = options(server, &format!("up-{attempt}"));
        let answer = exchange(server, &probe, Duration::from_millis(200));
        if answer.as_deref().and_then(status) == Some(200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "SIP on {server} did not answer OPTIONS"
        );
    }
}

/// A port free for both UDP and TCP on loopback at the moment of asking (SIP listens on both).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The `[sip]` section of a server trusting loopback as a trunk of `account` when given (no
/// trunk: every caller must authenticate). The server's address comes from
/// [`crate::server::Server`], which picks a free port.
pub fn config(trunk_account: Option<&str>) -> String {
    let mut config = "[sip]\nrealm = \"tutti\"\n".to_owned();
    if let Some(account) = trunk_account {
        config.push_str(&format!(
            "\n[[sip.trunks]]\nname = \"loopback\"\nnetworks = [\"127.0.0.0/8\"]\naccount = \"{account}\"\n"
        ));
    }
    config
}
