//! The signalling side: how a caller gets into a room of the server under test.

pub mod janus;
pub mod kazoo;

use std::net::SocketAddr;

use crate::LoadError;

/// A server's API for rooms of plain-RTP Opus callers (payload type 111, 48 kHz).
///
/// Joins are made from several threads at once, so `join` takes `&self`.
pub trait Face: Send + Sync {
    /// Creates room number `index`; its handle for [`Face::join`] and [`Face::close_room`].
    fn create_room(&self, index: usize) -> Result<String, LoadError>;

    /// Joins a caller that sends from and receives on `local` to `room`; where to send its
    /// RTP (the server's port, whose packets then come from the same address).
    fn join(&self, room: &str, local: SocketAddr, name: &str) -> Result<SocketAddr, LoadError>;

    /// Ends the room and everybody in it.
    fn close_room(&self, room: &str) -> Result<(), LoadError>;
}

/// An SDP offer for a plain-RTP Opus caller at `local`.
pub fn opus_offer(local: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=tutti-loadgen\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n",
        ip = local.ip(),
        port = local.port()
    )
}

/// The address an SDP answer tells the caller to send to: its `c=` address (or `fallback`
/// when it names none) and its `m=audio` port.
pub fn answer_address(answer: &str, fallback: std::net::IpAddr) -> Option<SocketAddr> {
    let port: u16 = answer
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    let ip = answer
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or(fallback);
    Some(SocketAddr::new(ip, port))
}

/// The JSON body of a successful answer to `what`, or the API error.
pub(crate) fn json_body(
    answer: Result<ureq::Response, ureq::Error>,
    what: &str,
) -> Result<serde_json::Value, LoadError> {
    let text = answer.map_err(|e| api_error(what, e))?.into_string()?;
    serde_json::from_str(&text).map_err(|e| LoadError::Api {
        what: what.into(),
        detail: format!("the answer is not JSON ({e}): {text}"),
    })
}

/// The API error for a failed `what`, from ureq's result.
pub(crate) fn api_error(what: impl Into<String>, error: ureq::Error) -> LoadError {
    let detail = match error {
        ureq::Error::Status(code, response) => {
            format!("{code} {}", response.into_string().unwrap_or_default())
        }
        other => other.to_string(),
    };
    LoadError::Api {
        what: what.into(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_names_where_to_send() {
        let answer = "v=0\r\nc=IN IP4 127.0.0.2\r\nm=audio 20044 RTP/AVP 111\r\n";
        let fallback = "127.0.0.1".parse().unwrap();
        assert_eq!(
            answer_address(answer, fallback),
            Some("127.0.0.2:20044".parse().unwrap())
        );
        assert_eq!(
            answer_address("m=audio 7 RTP/AVP 0", fallback),
            Some("127.0.0.1:7".parse().unwrap())
        );
        assert_eq!(answer_address("v=0", fallback), None);
        assert!(opus_offer("127.0.0.1:4000".parse().unwrap()).contains("m=audio 4000 RTP/AVP 111"));
    }
}
