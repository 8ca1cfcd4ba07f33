//! Digest authentication of callers (RFC 3261 §22, RFC 8760 SHA-256) against the HA1 secrets
//! the conference service keeps per account: tutti never sees or stores the password itself.
//! The header grammar is rsipstack's tokenizer; nonces are stateless (a time stamp signed with
//! a per-process key), so a challenge costs no memory.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use md5::Md5;
use rsipstack::sip::headers::typed::tokenizers::AuthTokenizer;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::Request;
use sha2::Sha256;

/// How long a nonce may be answered.
const NONCE_LIFETIME_SECONDS: u64 = 300;

/// The digest algorithms tutti offers, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// RFC 8760.
    Sha256,
    /// RFC 2617, what most phones speak.
    Md5,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Md5 => "MD5",
        }
    }

    fn hash(self, text: &str) -> String {
        match self {
            Self::Sha256 => hex::encode(<Sha256 as sha2::Digest>::digest(text.as_bytes())),
            Self::Md5 => hex::encode(<Md5 as md5::Digest>::digest(text.as_bytes())),
        }
    }
}

/// A caller's answer to a challenge: the `Authorization` header's parameters, verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The username.
    pub username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    algorithm: Algorithm,
    qop: Option<(String, String)>,
}

impl Challenge {
    /// Reads the request's `Authorization` header; `None` when it has none or it is not a
    /// digest answer tutti can check.
    pub fn read(request: &Request) -> Option<Self> {
        let value = request.header_value("Authorization")?;
        let token = AuthTokenizer::parse(&value).ok()?;
        if !token.scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let param = |name: &str| {
            token
                .params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.to_string())
        };
        let algorithm = match param("algorithm") {
            None => Algorithm::Md5,
            Some(name) if name.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
            Some(name) if name.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
            Some(_) => return None,
        };
        let qop = match param("qop") {
            None => None,
            Some(qop) if qop.eq_ignore_ascii_case("auth") => Some((param("cnonce")?, param("nc")?)),
            Some(_) => return None,
        };
        Some(Self {
            username: param("username")?,
            realm: param("realm")?,
            nonce: param("nonce")?,
            uri: param("uri")?,
            response: param("response")?.to_ascii_lowercase(),
            algorithm,
            qop,
        })
    }
}

/// What checking an answer found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The caller knows the password.
    Valid,
    /// Right password, old nonce: challenge again with `stale=true`.
    Stale,
    /// Wrong password, another realm or a forged nonce.
    Invalid,
}

/// Issues challenges and checks answers for one realm.
pub struct DigestAuthority {
    realm: String,
    key: [u8; 32],
    algorithms: &'static [Algorithm],
}

impl DigestAuthority {
    /// An authority for `realm` with a fresh random signing key, challenging with MD5 and,
    /// when `sha256`, SHA-256 first.
    pub fn new(realm: &str, sha256: bool) -> Self {
        let mut key = [0; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self {
            realm: realm.to_owned(),
            key,
            algorithms: if sha256 {
                &[Algorithm::Sha256, Algorithm::Md5]
            } else {
                &[Algorithm::Md5]
            },
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// `WWW-Authenticate` values for a new challenge, strongest first. Answers in either
    /// algorithm are checked whatever was offered.
    pub fn challenges(&self, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now());
        self.algorithms
            .iter()
            .map(|algorithm| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{}",
                    self.realm,
                    algorithm.name(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect()
    }

    /// Checks an answer for `method` against the account's HA1 for the answer's algorithm.
    pub fn verify(
        &self,
        answer: &Challenge,
        method: &str,
        ha1_md5: &str,
        ha1_sha256: &str,
    ) -> Verdict {
        if answer.realm != self.realm {
            return Verdict::Invalid;
        }
        let ha1 = match answer.algorithm {
            Algorithm::Md5 => ha1_md5,
            Algorithm::Sha256 => ha1_sha256,
        };
        let ha2 = answer.algorithm.hash(&format!("{method}:{}", answer.uri));
        let expected = match &answer.qop {
            Some((cnonce, nc)) => answer
                .algorithm
                .hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", answer.nonce)),
            None => answer
                .algorithm
                .hash(&format!("{ha1}:{}:{ha2}", answer.nonce)),
        };
        if !constant_time_eq(expected.as_bytes(), answer.response.as_bytes()) {
            return Verdict::Invalid;
        }
        match self.nonce_age(&answer.nonce, now()) {
            Some(age) if age <= NONCE_LIFETIME_SECONDS => Verdict::Valid,
            Some(_) => Verdict::Stale,
            None => Verdict::Invalid,
        }
    }

    fn nonce(&self, at: u64) -> String {
        format!("{at:x}.{}", self.sign(at))
    }

    /// Seconds since the nonce was issued, `None` when this authority did not issue it.
    fn nonce_age(&self, nonce: &str, now: u64) -> Option<u64> {
        let (stamp, signature) = nonce.split_once('.')?;
        let at = u64::from_str_radix(stamp, 16).ok()?;
        constant_time_eq(self.sign(at).as_bytes(), signature.as_bytes())
            .then(|| now.saturating_sub(at))
    }

    fn sign(&self, at: u64) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(&at.to_be_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::SipMessage;
    use tutti_conference::digest_ha1 as ha1;

    fn answer(authority: &DigestAuthority, password: &str, algorithm: Algorithm) -> Request {
        let nonce = authority.nonce(now());
        let (ha1_md5, ha1_sha) = ha1("alice", authority.realm(), password);
        let ha1 = if algorithm == Algorithm::Md5 {
            ha1_md5
        } else {
            ha1_sha
        };
        let ha2 = algorithm.hash("INVITE:sip:1000@127.0.0.1");
        let response = algorithm.hash(&format!("{ha1}:{nonce}:0000000a:xyz:auth:{ha2}"));
        let text = format!(
            "INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK2\r\n\
             From: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: x\r\n\
             CSeq: 2 INVITE\r\nAuthorization: Digest username=\"alice\", realm=\"{}\", \
             nonce=\"{nonce}\", uri=\"sip:1000@127.0.0.1\", response=\"{response}\", \
             algorithm={}, qop=auth, nc=0000000a, cnonce=\"xyz\"\r\nContent-Length: 0\r\n\r\n",
            authority.realm(),
            algorithm.name()
        );
        match SipMessage::try_from(text.as_str()).unwrap() {
            SipMessage::Request(request) => request,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn the_right_password_passes_in_md5_and_sha256_and_a_wrong_one_does_not() {
        let authority = DigestAuthority::new("tutti", true);
        let (md5, sha) = ha1("alice", "tutti", "correct horse");
        for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
            let good = Challenge::read(&answer(&authority, "correct horse", algorithm)).unwrap();
            assert_eq!(good.username, "alice");
            assert_eq!(
                authority.verify(&good, "INVITE", &md5, &sha),
                Verdict::Valid
            );
            assert_eq!(authority.verify(&good, "BYE", &md5, &sha), Verdict::Invalid);
            let bad = Challenge::read(&answer(&authority, "wrong", algorithm)).unwrap();
            assert_eq!(
                authority.verify(&bad, "INVITE", &md5, &sha),
                Verdict::Invalid
            );
        }
    }

    #[test]
    fn nonces_from_another_server_or_too_old_are_not_accepted() {
        let authority = DigestAuthority::new("tutti", true);
        let other = DigestAuthority::new("tutti", true);
        let (md5, sha) = ha1("alice", "tutti", "pw");
        let forged = Challenge::read(&answer(&other, "pw", Algorithm::Md5)).unwrap();
        assert_eq!(
            authority.verify(&forged, "INVITE", &md5, &sha),
            Verdict::Invalid
        );
        let old = authority.nonce(now() - NONCE_LIFETIME_SECONDS - 5);
        assert_eq!(
            authority.nonce_age(&old, now()),
            Some(NONCE_LIFETIME_SECONDS + 5)
        );
        assert!(authority.challenges(true)[0].contains("stale=true"));
        assert!(authority.challenges(false)[0].contains("algorithm=SHA-256"));
        assert!(authority.challenges(false)[1].contains("algorithm=MD5"));
        let md5_only = DigestAuthority::new("tutti", false).challenges(false);
        assert_eq!(md5_only.len(), 1);
        assert!(md5_only[0].contains("algorithm=MD5"));
    }
}
