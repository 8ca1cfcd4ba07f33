//! Who may call: a configured trunk by its source address, or a caller that proves an
//! account's SIP credentials by digest authentication.

use std::net::SocketAddr;

use rsipstack::sip::{Request, StatusCode};
use uuid::Uuid;

use crate::digest::{Challenge, Verdict};
use crate::server::Context;

/// The outcome of checking a request's caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The call belongs to this account.
    Account(Uuid),
    /// Ask for credentials (`stale`: the caller's were right but its nonce old).
    Challenge { stale: bool },
    /// Refused with this status and reason.
    Refused(StatusCode, String),
}

/// Decides whose call `request` is.
pub(crate) fn admit(
    context: &Context,
    request: &Request,
    source: Option<SocketAddr>,
    dialed: &str,
) -> Admission {
    if let Some(trunk) = source.and_then(|source| context.config.trunk_of(source.ip())) {
        if let Some(account) = trunk.account {
            return Admission::Account(account);
        }
        return match context.service.sip_number_account(dialed) {
            Ok(Some(account)) => Admission::Account(account),
            Ok(None) => Admission::Refused(
                StatusCode::NotFound,
                format!("no account has the number {dialed}"),
            ),
            Err(error) => Admission::Refused(StatusCode::ServerInternalError, error.to_string()),
        };
    }
    let Some(answer) = Challenge::read(request) else {
        return Admission::Challenge { stale: false };
    };
    let credential = match context.service.sip_credential(&answer.username) {
        Ok(Some(credential)) => credential,
        Ok(None) => return Admission::Refused(StatusCode::Forbidden, "wrong credentials".into()),
        Err(error) => {
            return Admission::Refused(StatusCode::ServerInternalError, error.to_string())
        }
    };
    match context.digest.verify(
        &answer,
        request.method.to_string().as_str(),
        &credential.ha1_md5,
        &credential.ha1_sha256,
    ) {
        Verdict::Valid => Admission::Account(credential.account),
        Verdict::Stale => Admission::Challenge { stale: true },
        Verdict::Invalid => Admission::Refused(StatusCode::Forbidden, "wrong credentials".into()),
    }
}
