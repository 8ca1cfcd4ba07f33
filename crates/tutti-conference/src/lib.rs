//! # tutti-conference: the domain of tutti's control plane
//!
//! Accounts and their API keys, tokens, conference documents and their validation: the rules
//! every API face (Kazoo, VoIPbin, FoneStorm) shares, so a face only translates. Documents use
//! Kazoo's field names internally; validation errors come in Kazoo's shape, which the other
//! faces re-shape.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod media;
pub mod schema;
mod service;

pub use media::MediaPlane;

pub use schema::{validate_conference, ValidationErrors};
pub use service::{
    Conference, ConferenceService, NewAccount, ServiceError, Session, DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
};

#[cfg(test)]
mod tests {
    /// A media plane that refuses tone strings containing "abc" with "bad tone".
    pub(crate) struct FakeMedia;

    impl crate::MediaPlane for FakeMedia {
        fn check_tone(&self, tone: &str) -> Result<(), String> {
            if tone.contains("abc") {
                Err("bad tone".into())
            } else {
                Ok(())
            }
        }
    }
}
