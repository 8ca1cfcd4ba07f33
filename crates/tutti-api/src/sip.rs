//! tutti's SIP extensions as every face shows them: the account's SIP directory (numbers and
//! usernames, never secrets) and the SIP URIs a dial-out may call.

use serde_json::{json, Value};
use tutti_conference::SipDirectory;
use uuid::Uuid;

/// An account's SIP numbers and usernames, with conference ids written by `id`.
pub(crate) fn directory(directory: &SipDirectory, id: fn(&Uuid) -> String) -> Value {
    json!({
        "numbers": directory.numbers.iter().map(|n| json!({
            "number": n.number,
            "conference_id": n.conference_id.as_ref().map(id),
        })).collect::<Vec<_>>(),
        "credentials": directory.credentials.iter().map(|c| json!({
            "username": c.username,
            "realm": c.realm,
        })).collect::<Vec<_>>(),
    })
}

/// A conference id in its simple form (Kazoo).
pub(crate) fn simple(id: &Uuid) -> String {
    id.simple().to_string()
}

/// A conference id in its hyphenated form (VoIPbin, FoneStorm).
pub(crate) fn hyphenated(id: &Uuid) -> String {
    id.to_string()
}
