//! Reading what tutti needs from SIP requests: the dialed number, the caller's id, the SDP
//! body, session-timer headers and INFO digits. Pure functions over parsed messages, so that
//! garbage becomes a clear SIP error (and the fuzz targets reach every path).

use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Request, SipMessage, StatusCode};

/// Why a request is refused before anything is done with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The SIP status to answer.
    pub status: StatusCode,
    /// Why, for the reason phrase's `Warning`/log.
    pub reason: String,
}

impl Refusal {
    fn bad(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BadRequest,
            reason: reason.into(),
        }
    }
}

/// What an INVITE asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteFacts {
    /// The Request-URI's user part: the number dialed.
    pub dialed: String,
    /// The From header's display name.
    pub caller_id_name: Option<String>,
    /// The From header's user part.
    pub caller_id_number: Option<String>,
    /// The SDP offer; `None` for an INVITE without a body (late offer).
    pub offer: Option<String>,
    /// The session timer the caller asked for, if any.
    pub timer: Option<TimerRequest>,
}

/// Session-timer headers of a request (RFC 4028).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerRequest {
    /// `Session-Expires`, seconds; `None` when only `Supported: timer` was sent.
    pub session_expires: Option<u32>,
    /// `Min-SE`, seconds.
    pub min_se: Option<u32>,
    /// The `refresher` parameter, when given.
    pub refresher: Option<Refresher>,
    /// `Supported: timer` or `Require: timer`.
    pub supported: bool,
}

/// Which side refreshes the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresher {
    /// The caller.
    Uac,
    /// tutti.
    Uas,
}

/// Longest dialed number or caller id tutti keeps.
const MAX_USER_LENGTH: usize = 64;

/// Checks that a request has, readable, the headers a transaction is keyed and answered by:
/// Via, From, To, Call-ID and CSeq with its number.
pub fn essentials(request: &Request) -> Result<(), Refusal> {
    request
        .via_header()
        .ok()
        .and_then(|via| via.typed().ok())
        .ok_or_else(|| Refusal::bad("no readable Via header"))?;
    request
        .from_header()
        .ok()
        .and_then(|from| from.typed().ok())
        .ok_or_else(|| Refusal::bad("no readable From header"))?;
    request
        .to_header()
        .ok()
        .and_then(|to| to.typed().ok())
        .ok_or_else(|| Refusal::bad("no readable To header"))?;
    request
        .call_id_header()
        .map_err(|_| Refusal::bad("no Call-ID header"))?;
    request
        .cseq_header()
        .ok()
        .and_then(|cseq| cseq.seq().ok())
        .ok_or_else(|| Refusal::bad("no CSeq header with a number"))?;
    Ok(())
}

/// Checks what every request must hold together: its CSeq names its own method, and its body
/// is as long as its Content-Length says (RFC 3261 §8.1.1.5, §18.3).
pub fn framing(request: &Request) -> Result<(), Refusal> {
    let cseq = request
        .cseq_header()
        .map_err(|_| Refusal::bad("no CSeq header"))?
        .value()
        .to_owned();
    let method = cseq.split_whitespace().nth(1).unwrap_or_default();
    if !method.eq_ignore_ascii_case(&request.method.to_string()) {
        return Err(Refusal::bad(format!(
            "the CSeq names {method}, the request is {}",
            request.method
        )));
    }
    if let Some(declared) = request.header_value("Content-Length") {
        let declared: usize = declared
            .trim()
            .parse()
            .map_err(|_| Refusal::bad("the Content-Length is not a number"))?;
        if declared > request.body.len() {
            return Err(Refusal::bad(format!(
                "the Content-Length says {declared} bytes, the body has {}",
                request.body.len()
            )));
        }
    }
    Ok(())
}

/// The SIP extensions tutti supports when a request requires them.
const SUPPORTED_EXTENSIONS: [&str; 1] = ["timer"];

/// The option tags a request's `Require` names that tutti does not support (answer 420 with
/// them in `Unsupported`).
pub fn unsupported_requirements(request: &Request) -> Vec<String> {
    request
        .headers
        .iter()
        .filter_map(|header| match header {
            // Displayed as the whole header line.
            rsipstack::sip::Header::Require(value) => value
                .to_string()
                .split_once(':')
                .map(|(_, tags)| tags.to_owned()),
            rsipstack::sip::Header::Other(name, value) if name.eq_ignore_ascii_case("Require") => {
                Some(value.clone())
            }
            _ => None,
        })
        .flat_map(|value| {
            value
                .split(',')
                .map(|tag| tag.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|tag| !tag.is_empty() && !SUPPORTED_EXTENSIONS.contains(&tag.as_str()))
        .collect()
}

/// Reads an INVITE.
pub fn invite_facts(request: &Request) -> Result<InviteFacts, Refusal> {
    let dialed = dialed_number(request)?;
    let (caller_id_name, caller_id_number) = caller_id(request)?;
    Ok(InviteFacts {
        dialed,
        caller_id_name,
        caller_id_number,
        offer: sdp_body(request)?,
        timer: timer_request(request)?,
    })
}

/// The Request-URI's user part; 404 when there is none (nothing to route by).
pub fn dialed_number(request: &Request) -> Result<String, Refusal> {
    let user = request
        .uri
        .auth
        .as_ref()
        .map(|auth| auth.user.trim().to_owned())
        .unwrap_or_default();
    if user.is_empty() {
        return Err(Refusal {
            status: StatusCode::NotFound,
            reason: "the Request-URI names no number".into(),
        });
    }
    if user.len() > MAX_USER_LENGTH || !user.chars().all(is_number_char) {
        return Err(Refusal {
            status: StatusCode::NotFound,
            reason: "the Request-URI's user part is not a number".into(),
        });
    }
    Ok(user)
}

fn is_number_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '#' | '-' | '.' | '_')
}

/// The From header's display name and user part.
fn caller_id(request: &Request) -> Result<(Option<String>, Option<String>), Refusal> {
    let from = request
        .from_header()
        .map_err(|_| Refusal::bad("no From header"))?
        .typed()
        .map_err(|_| Refusal::bad("the From header cannot be read"))?;
    let name = from
        .display_name
        .map(|name| name.trim().trim_matches('"').to_owned())
        .filter(|name| !name.is_empty() && name.len() <= MAX_USER_LENGTH);
    let number = from
        .uri
        .auth
        .map(|auth| auth.user)
        .filter(|user| !user.is_empty() && user.len() <= MAX_USER_LENGTH);
    Ok((name, number))
}

/// The request's SDP body: `None` when it has no body; 415 for a body of another type.
pub fn sdp_body(request: &Request) -> Result<Option<String>, Refusal> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let content_type = request
        .header_value("Content-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !content_type.trim().starts_with("application/sdp") {
        return Err(Refusal {
            status: StatusCode::UnsupportedMediaType,
            reason: format!("the body is {content_type:?}, not application/sdp"),
        });
    }
    String::from_utf8(request.body.clone())
        .map(Some)
        .map_err(|_| Refusal::bad("the SDP body is not UTF-8"))
}

/// The session-timer headers, `None` when the caller uses none.
pub fn timer_request(request: &Request) -> Result<Option<TimerRequest>, Refusal> {
    let supported = ["Supported", "Require", "k"].iter().any(|name| {
        request.header_value(name).is_some_and(|value| {
            value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("timer"))
        })
    });
    let expires = request
        .header_value("Session-Expires")
        .or_else(|| request.header_value("x"));
    let min_se = request.header_value("Min-SE");
    if expires.is_none() && min_se.is_none() && !supported {
        return Ok(None);
    }
    let (session_expires, refresher) = match expires {
        None => (None, None),
        Some(value) => {
            let (seconds, refresher) = parse_session_expires(&value)
                .ok_or_else(|| Refusal::bad("the Session-Expires header cannot be read"))?;
            (Some(seconds), refresher)
        }
    };
    let min_se = match min_se {
        None => None,
        Some(value) => Some(
            delta_seconds(value.split(';').next().unwrap_or_default())
                .ok_or_else(|| Refusal::bad("the Min-SE header cannot be read"))?,
        ),
    };
    Ok(Some(TimerRequest {
        session_expires,
        min_se,
        refresher,
        supported,
    }))
}

fn parse_session_expires(value: &str) -> Option<(u32, Option<Refresher>)> {
    let mut parts = value.split(';');
    let seconds = delta_seconds(parts.next()?)?;
    let mut refresher = None;
    for param in parts {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        if name.trim().eq_ignore_ascii_case("refresher") {
            refresher = match value.trim().to_ascii_lowercase().as_str() {
                "uac" => Some(Refresher::Uac),
                "uas" => Some(Refresher::Uas),
                _ => return None,
            };
        }
    }
    Some((seconds, refresher))
}

fn delta_seconds(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The key an INFO request carries (`application/dtmf-relay` or `application/dtmf`) and how
/// long it was held, in milliseconds.
pub fn info_digit(content_type: &str, body: &[u8]) -> Option<(char, u32)> {
    let body = std::str::from_utf8(body).ok()?;
    let content_type = content_type.trim().to_ascii_lowercase();
    if content_type.starts_with("application/dtmf-relay") {
        let mut digit = None;
        let mut duration = 250;
        for line in body.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "signal" => digit = key(value.trim()),
                "duration" => duration = value.trim().parse().unwrap_or(duration).min(10_000),
                _ => {}
            }
        }
        digit.map(|d| (d, duration))
    } else if content_type.starts_with("application/dtmf") {
        key(body.trim()).map(|d| (d, 250))
    } else {
        None
    }
}

/// A telephone key by its name: `0`–`9`, `*`, `#`, `A`–`D`, or the event numbers 10 (`*`)
/// and 11 (`#`).
fn key(text: &str) -> Option<char> {
    match text {
        "10" => Some('*'),
        "11" => Some('#'),
        _ => {
            let mut chars = text.chars();
            let c = chars.next()?.to_ascii_uppercase();
            (chars.next().is_none() && matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')).then_some(c)
        }
    }
}

/// Runs every inspection on a datagram the way the server would meet it. For fuzzing: it
/// must return, whatever the bytes.
pub fn inspect_datagram(bytes: &[u8]) -> Option<InviteFacts> {
    let text = std::str::from_utf8(bytes).ok()?;
    let message = SipMessage::try_from(text).ok()?;
    let SipMessage::Request(request) = message else {
        return None;
    };
    let _ = crate::digest::Challenge::read(&request);
    let content_type = request.header_value("Content-Type").unwrap_or_default();
    let _ = info_digit(&content_type, &request.body);
    let _ = unsupported_requirements(&request);
    let _ = framing(&request);
    let _ = essentials(&request);
    invite_facts(&request).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Request {
        match SipMessage::try_from(text.replace('\n', "\r\n").as_str()).unwrap() {
            SipMessage::Request(request) => request,
            SipMessage::Response(_) => panic!("not a request"),
        }
    }

    const INVITE: &str = "INVITE sip:1000@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1
From: \"Alice Smith\" <sip:alice@127.0.0.1>;tag=a
To: <sip:1000@127.0.0.1>
Call-ID: c1
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.1:5070>
Supported: timer, 100rel
Session-Expires: 1800;refresher=uac
Min-SE: 90
Content-Type: application/sdp
Content-Length: 12

v=0
o=- 1 1
";

    #[test]
    fn an_invite_names_the_number_the_caller_and_the_timer() {
        let facts = invite_facts(&request(INVITE)).unwrap();
        assert_eq!(facts.dialed, "1000");
        assert_eq!(facts.caller_id_name.as_deref(), Some("Alice Smith"));
        assert_eq!(facts.caller_id_number.as_deref(), Some("alice"));
        assert!(facts.offer.unwrap().starts_with("v=0"));
        assert_eq!(
            facts.timer,
            Some(TimerRequest {
                session_expires: Some(1800),
                min_se: Some(90),
                refresher: Some(Refresher::Uac),
                supported: true,
            })
        );
    }

    #[test]
    fn bodies_of_other_types_and_missing_numbers_are_refused() {
        let other = INVITE.replace("application/sdp", "text/plain");
        assert_eq!(
            invite_facts(&request(&other)).unwrap_err().status,
            StatusCode::UnsupportedMediaType
        );
        let no_user = INVITE.replace("INVITE sip:1000@", "INVITE sip:");
        assert_eq!(
            invite_facts(&request(&no_user)).unwrap_err().status,
            StatusCode::NotFound
        );
        let bad_timer = INVITE.replace("1800;refresher=uac", "soon");
        assert_eq!(
            invite_facts(&request(&bad_timer)).unwrap_err().status,
            StatusCode::BadRequest
        );
    }

    #[test]
    fn requirements_other_than_timers_are_named() {
        let required = INVITE.replace("Min-SE: 90\n", "Min-SE: 90\nRequire: timer, 100rel\n");
        assert_eq!(unsupported_requirements(&request(&required)), ["100rel"]);
        assert!(unsupported_requirements(&request(INVITE)).is_empty());
    }

    #[test]
    fn a_cseq_of_another_method_and_a_short_body_are_refused() {
        assert_eq!(framing(&request(INVITE)), Ok(()));
        let other = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
        assert!(framing(&request(&other))
            .unwrap_err()
            .reason
            .contains("names BYE"));
        let long = INVITE.replace("Content-Length: 12", "Content-Length: 9000");
        assert!(framing(&request(&long))
            .unwrap_err()
            .reason
            .contains("9000"));
    }

    #[test]
    fn a_late_offer_has_no_sdp() {
        let late = INVITE
            .replace("Content-Type: application/sdp\n", "")
            .replace(
                "Content-Length: 12\n\nv=0\no=- 1 1\n",
                "Content-Length: 0\n\n",
            );
        assert_eq!(invite_facts(&request(&late)).unwrap().offer, None);
    }

    #[test]
    fn info_bodies_carry_digits() {
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', 160))
        );
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=#\r\n"),
            Some(('#', 250))
        );
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=11\r\n"),
            Some(('#', 250))
        );
        assert_eq!(info_digit("application/dtmf", b"*"), Some(('*', 250)));
        assert_eq!(info_digit("application/dtmf-relay", b"Signal=X\r\n"), None);
        assert_eq!(info_digit("text/plain", b"5"), None);
        assert_eq!(info_digit("application/dtmf", &[0xff, 0xfe]), None);
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = inspect_datagram(&bytes);
            let mut text = INVITE.replace('\n', "\r\n").into_bytes();
            let at = bytes.first().copied().unwrap_or(0) as usize % text.len();
            text.splice(at..at, bytes.iter().copied());
            let _ = inspect_datagram(&text);
        }
    }
}
