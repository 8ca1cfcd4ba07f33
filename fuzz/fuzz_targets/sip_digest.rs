//! Digest authentication as tutti-sip checks it: any `Authorization` value is read and
//! checked without panicking and never passes for a password it was not made with; an answer
//! computed correctly (RFC 2617/8760, MD5 or SHA-256, with or without qop) to a fresh challenge
//! passes, and the same answer with one character of its response changed does not.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use md5::Md5;
use rsipstack::sip::{Request, SipMessage};
use sha2::{Digest, Sha256};
use tutti_sip::digest::{Challenge, DigestAuthority, Verdict};

#[derive(Arbitrary, Debug)]
struct Input {
    /// An `Authorization` value as a caller might send anything.
    raw: String,
    username: String,
    password: String,
    cnonce: String,
    sha256: bool,
    qop: bool,
    /// Which character of the computed response to change.
    tamper: u8,
}

const REALM: &str = "tutti";
const URI: &str = "sip:4000@127.0.0.1";

/// An INVITE carrying `authorization`, parsed as the server would.
fn request(authorization: &str) -> Option<Request> {
    let text = format!(
        "INVITE {URI} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <{URI}>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
         Authorization: {authorization}\r\nContent-Length: 0\r\n\r\n"
    );
    match SipMessage::try_from(text.as_str()).ok()? {
        SipMessage::Request(request) => Some(request),
        SipMessage::Response(_) => None,
    }
}

fn hash(sha256: bool, text: &str) -> String {
    if sha256 {
        hex::encode(Sha256::digest(text.as_bytes()))
    } else {
        hex::encode(Md5::digest(text.as_bytes()))
    }
}

/// The HA1 secrets tutti stores for a password: (MD5, SHA-256) of `username:realm:password`.
fn ha1(username: &str, realm: &str, password: &str) -> (String, String) {
    let input = format!("{username}:{realm}:{password}");
    (hash(false, &input), hash(true, &input))
}

/// Keeps the characters a username or cnonce can carry unquoted and unescaped.
fn token(text: &str, fallback: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(64)
        .collect();
    if kept.is_empty() {
        fallback.to_owned()
    } else {
        kept
    }
}

fuzz_target!(|input: Input| {
    let authority = DigestAuthority::new(REALM, true);
    let (ha1_md5, ha1_sha256) = ha1(&input.username, REALM, &input.password);

    // Anything: read and checked without a panic, and not valid for a password it never saw.
    if !input.raw.contains(['\r', '\n']) {
        if let Some(answer) = request(&input.raw).as_ref().and_then(Challenge::read) {
            let (other_md5, other_sha256) = ha1(&input.username, REALM, "not the password");
            if other_md5 != ha1_md5 {
                let verdict = authority.verify(&answer, "INVITE", &other_md5, &other_sha256);
                let right = authority.verify(&answer, "INVITE", &ha1_md5, &ha1_sha256);
                assert!(!(verdict == Verdict::Valid && right == Verdict::Valid));
            }
        }
    }

    // A correct answer to a fresh challenge passes; a tampered one does not.
    let algorithm = if input.sha256 { "SHA-256" } else { "MD5" };
    let challenge = authority
        .challenges(false)
        .into_iter()
        .find(|c| c.contains(&format!("algorithm={algorithm}")))
        .expect("a challenge for each algorithm");
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a nonce");
    let username = token(&input.username, "alice");
    let (ha1_md5, ha1_sha256) = ha1(&username, REALM, &input.password);
    let ha1 = if input.sha256 { &ha1_sha256 } else { &ha1_md5 };
    let ha2 = hash(input.sha256, &format!("INVITE:{URI}"));
    let cnonce = token(&input.cnonce, "c");
    let (response, qop) = if input.qop {
        (
            hash(
                input.sha256,
                &format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"),
            ),
            format!(", qop=auth, nc=00000001, cnonce=\"{cnonce}\""),
        )
    } else {
        (
            hash(input.sha256, &format!("{ha1}:{nonce}:{ha2}")),
            String::new(),
        )
    };
    let header = |response: &str| {
        format!(
            "Digest username=\"{username}\", realm=\"{REALM}\", nonce=\"{nonce}\", \
             uri=\"{URI}\", response=\"{response}\", algorithm={algorithm}{qop}"
        )
    };
    let answer = request(&header(&response))
        .as_ref()
        .and_then(Challenge::read)
        .expect("a well-formed answer reads");
    assert_eq!(
        authority.verify(&answer, "INVITE", &ha1_md5, &ha1_sha256),
        Verdict::Valid
    );
    let at = usize::from(input.tamper) % response.len();
    let mut tampered: Vec<u8> = response.into_bytes();
    tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).expect("hex");
    let answer = request(&header(&tampered))
        .as_ref()
        .and_then(Challenge::read)
        .expect("a well-formed answer reads");
    assert_eq!(
        authority.verify(&answer, "INVITE", &ha1_md5, &ha1_sha256),
        Verdict::Invalid
    );
});
