//! Dial-out: the API asks for a SIP endpoint to be called into a conference; the SIP layer
//! (a registered [`Dialer`]) sends the INVITE and reports back. The call is visible while it
//! rings (status `dialing`), joins like any caller when answered, and a failure is recorded
//! with its SIP status.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use crate::dialin::{CallInner, CallState, LiveCall, Place};
use crate::lifecycle::{Call, CallStatus};
use crate::media::{MediaError, OfferedMedia};
use crate::service::{now_us, Conference, ConferenceService, ServiceError};

/// A call the SIP layer is asked to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialRequest {
    /// The conference's account.
    pub account: Uuid,
    /// The conference the callee joins.
    pub conference: Uuid,
    /// The call's id (report back with it).
    pub call_id: Uuid,
    /// A `sip:` or `sips:` URI.
    pub target: String,
    /// Caller id name to send.
    pub caller_id_name: Option<String>,
    /// Caller id number to send.
    pub caller_id_number: Option<String>,
    /// How long to ring before giving up (report 408).
    pub timeout: Duration,
}

/// The SIP layer's side of dial-out; registered once with
/// [`ConferenceService::set_dialer`].
pub trait Dialer: Send + Sync {
    /// Starts calling; returns at once and reports through
    /// [`ConferenceService::dial_progress`], [`ConferenceService::dial_answered`] and
    /// [`ConferenceService::dial_failed`].
    fn dial(&self, request: DialRequest);
    /// Stops ringing `call_id` (a CANCEL); the service has already recorded the call as
    /// cancelled, so the dialer reports nothing more for it.
    fn cancel(&self, call_id: Uuid);
}

/// How a ringing call progresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialProgress {
    /// 180.
    Ringing,
    /// 183 with SDP.
    EarlyMedia,
}

/// What the API asks for when it dials out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialOut {
    /// A `sip:` or `sips:` URI.
    pub target: String,
    /// Caller id name to send.
    pub caller_id_name: Option<String>,
    /// Caller id number to send.
    pub caller_id_number: Option<String>,
    /// How long to ring.
    pub timeout: Duration,
    /// Joins as a moderator.
    pub moderator: bool,
    /// Joins muted.
    pub muted: bool,
    /// Joins deaf.
    pub deaf: bool,
}

/// How long a dial-out rings when the request says nothing.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// A dial-out call waiting for its answer.
#[derive(Clone, Debug)]
pub(crate) struct PendingDial {
    account: Uuid,
    conference: Uuid,
    out: DialOut,
}

/// Checks that `uri` is a `sip:` or `sips:` URI with something after the scheme; the error
/// says what is wrong.
pub fn check_sip_uri(uri: &str) -> Result<(), String> {
    let lower = uri.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"))
        .ok_or_else(|| format!("{uri:?} is not a sip: or sips: URI"))?;
    if rest.is_empty()
        || rest.starts_with('@')
        || uri.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("{uri:?} is not a valid SIP URI"));
    }
    Ok(())
}

impl ConferenceService {
    /// Registers the SIP layer's dialer (once, at start).
    pub fn set_dialer(&self, dialer: Arc<dyn Dialer>) {
        if let Ok(mut slot) = self.sip.dialer.write() {
            *slot = Some(dialer);
        }
    }

    /// Whether a dialer is registered (dial-out is offered).
    pub fn can_dial(&self) -> bool {
        self.sip.dialer.read().is_ok_and(|d| d.is_some())
    }

    /// Calls a SIP endpoint into a conference: the call is recorded (`dialing`) and the
    /// dialer asked to ring it. Returns the call.
    pub fn dial(&self, conference: &Conference, out: &DialOut) -> Result<Call, ServiceError> {
        let dialer = self
            .sip
            .dialer
            .read()
            .ok()
            .and_then(|d| d.clone())
            .ok_or_else(|| {
                MediaError::Unavailable("dial-out needs SIP, which is not configured".into())
            })?;
        check_sip_uri(&out.target).map_err(ServiceError::BadRequest)?;
        if conference.state.status.is_ending() {
            return Err(ServiceError::Precondition(format!(
                "the conference is {}",
                conference.state.status.as_str()
            )));
        }
        let at = now_us();
        let call = Call {
            id: Uuid::now_v7(),
            account_id: conference.account_id,
            conference_id: conference.id,
            participant_id: 0,
            status: CallStatus::Dialing,
            moderator: out.moderator,
            caller_id_name: None,
            caller_id_number: Some(out.target.clone()),
            created_us: at,
            modified_us: at,
            left_us: None,
            failure: None,
            node: self.node(),
        };
        self.put_call(&call)?;
        if let Ok(mut dialing) = self.sip.dialing.lock() {
            dialing.insert(
                call.id,
                PendingDial {
                    account: conference.account_id,
                    conference: conference.id,
                    out: out.clone(),
                },
            );
        }
        tracing::info!(conference = %conference.id, call = %call.id, "dialing out");
        dialer.dial(DialRequest {
            account: conference.account_id,
            conference: conference.id,
            call_id: call.id,
            target: out.target.clone(),
            caller_id_name: out.caller_id_name.clone(),
            caller_id_number: out.caller_id_number.clone(),
            timeout: out.timeout,
        });
        Ok(call)
    }

    /// The ringing call `call_id`, no longer ringing from now on.
    fn take_pending_dial(&self, call_id: Uuid) -> Option<PendingDial> {
        self.sip
            .dialing
            .lock()
            .ok()
            .and_then(|mut dialing| dialing.remove(&call_id))
    }

    /// Gives up a dial-out call that is still ringing: the call leaves with the failure
    /// `cancelled` and the dialer sends CANCEL. Returns whether it was ringing.
    pub(crate) fn cancel_dial(&self, account: Uuid, call_id: Uuid) -> bool {
        let pending = self.take_pending_dial(call_id);
        if pending.is_none() {
            return false;
        }
        if let Some(dialer) = self.sip.dialer.read().ok().and_then(|d| d.clone()) {
            dialer.cancel(call_id);
        }
        tracing::info!(call = %call_id, "dial-out cancelled");
        self.fail_call(account, call_id, "cancelled");
        true
    }

    /// A reserved port and an SDP offer for a dial-out INVITE.
    pub fn offer_media(&self) -> Result<OfferedMedia, ServiceError> {
        Ok(self.media().offer()?)
    }

    /// Frees the port of an offer nobody answered (the dial-out failed).
    pub fn release_port(&self, port: u16) {
        self.media().release_port(port);
    }

    /// A ringing call's progress (180, 183).
    pub fn dial_progress(&self, call_id: Uuid, progress: DialProgress) {
        tracing::debug!(call = %call_id, ?progress, "dial-out progress");
    }

    /// The callee answered (`answer` to tutti's offer on `port`): it joins the conference like
    /// any caller, keeping the call's id.
    pub fn dial_answered(
        &self,
        call_id: Uuid,
        answer: &str,
        port: u16,
    ) -> Result<LiveCall, ServiceError> {
        let pending = self
            .take_pending_dial(call_id)
            .ok_or_else(|| ServiceError::NotFound(call_id.to_string()))?;
        let inner = Arc::new(CallInner {
            service: self
                .shared()
                .map(|s| Arc::downgrade(&s))
                .unwrap_or_default(),
            account: pending.account,
            sdp: std::sync::OnceLock::new(),
            remote: Mutex::new(answer.to_owned()),
            state: watch::channel(CallState::Lobby).0,
            place: Mutex::new(Place::Gone),
            keys: Mutex::default(),
            hung_up: AtomicBool::new(false),
            caller_id_name: None,
            caller_id_number: Some(pending.out.target.clone()),
            signalled_source: None,
        });
        let joined = self.join_dialed(&inner, &pending, call_id, port);
        match joined {
            Ok(sdp) => {
                let _ = inner.sdp.set(sdp);
                Ok(LiveCall { inner })
            }
            Err(error) => {
                self.media().release_port(port);
                self.fail_call(pending.account, call_id, &error.to_string());
                Err(error)
            }
        }
    }

    fn join_dialed(
        &self,
        call: &Arc<CallInner>,
        pending: &PendingDial,
        call_id: Uuid,
        port: u16,
    ) -> Result<String, ServiceError> {
        let request = crate::live::JoinRequest {
            moderator: pending.out.moderator,
            muted: pending.out.muted,
            deaf: pending.out.deaf,
            port: Some(port),
            call_id: Some(call_id),
            ..crate::live::JoinRequest::default()
        };
        self.join_call_as(call, pending.conference, request)
    }

    /// The INVITE failed with a SIP final status (408 on timeout, 503 unreachable).
    pub fn dial_failed(&self, call_id: Uuid, status: u16, reason: &str) {
        let pending = self.take_pending_dial(call_id);
        if let Some(pending) = pending {
            tracing::info!(call = %call_id, status, reason, "dial-out failed");
            self.fail_call(pending.account, call_id, &format!("SIP {status} {reason}"));
        }
    }

    /// Records why a call never joined and closes it (`leaved`).
    fn fail_call(&self, account: Uuid, call_id: Uuid, failure: &str) {
        if let Ok(mut call) = self.call(account, &call_id.to_string()) {
            call.failure = Some(failure.to_owned());
            let _ = self.put_call(&call);
        }
        self.set_call_status(account, call_id, CallStatus::Leaved);
    }
}
