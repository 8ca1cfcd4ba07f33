//! Stand-in for the conference service's SIP contract until it lands: direct dialing of a
//! conference number in a trunk's account, joined through the ordinary join.

#![allow(dead_code, missing_docs)] // Until the service side of SIP lands.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tutti_conference::{ConferenceService, JoinRequest, ParticipantAction, ServiceError};
use uuid::Uuid;

/// A SIP call arriving.
pub struct IncomingCall {
    pub account: Uuid,
    pub dialed: String,
    pub offer: Option<String>,
    pub caller_id_name: Option<String>,
    pub caller_id_number: Option<String>,
    pub signalled_source: Option<IpAddr>,
}

/// A SIP username's secrets.
pub struct SipCredential {
    pub account: Uuid,
    pub username: String,
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

/// Where a call is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallState {
    Lobby,
    Joined {
        conference: Uuid,
        participant_id: u32,
        call_id: Uuid,
    },
    Ended {
        reason: String,
    },
}

/// One call.
#[derive(Clone)]
pub struct LiveCall {
    service: Arc<ConferenceService>,
    account: Uuid,
    sdp: String,
    state: watch::Receiver<CallState>,
    _sender: Arc<watch::Sender<CallState>>,
}

impl LiveCall {
    pub fn sdp(&self) -> &str {
        &self.sdp
    }
    pub fn complete(&self, _answer: &str) -> Result<(), ServiceError> {
        Ok(())
    }
    pub fn state(&self) -> watch::Receiver<CallState> {
        self.state.clone()
    }
    pub fn hang_up(&self) {
        if let CallState::Joined {
            conference,
            participant_id,
            ..
        } = *self.state.borrow()
        {
            if let Ok(c) = self
                .service
                .conference(self.account, &conference.to_string())
            {
                let _ =
                    self.service
                        .act_on_participant(&c, participant_id, &ParticipantAction::Kick);
            }
        }
    }
    pub fn press(&self, _digit: char, _duration_ms: u32) {}
    pub fn renegotiate(&self, _offer: &str) -> Result<String, ServiceError> {
        Ok(self.sdp.clone())
    }
}

/// The contract's service calls.
pub trait SipService {
    fn sip_number_account(&self, dialed: &str) -> Result<Option<Uuid>, ServiceError>;
    fn sip_credential(&self, username: &str) -> Result<Option<SipCredential>, ServiceError>;
    fn answer_call(self: &Arc<Self>, call: IncomingCall) -> Result<LiveCall, ServiceError>;
}

impl SipService for ConferenceService {
    fn sip_number_account(&self, _dialed: &str) -> Result<Option<Uuid>, ServiceError> {
        Ok(None)
    }
    fn sip_credential(&self, _username: &str) -> Result<Option<SipCredential>, ServiceError> {
        Ok(None)
    }
    fn answer_call(self: &Arc<Self>, call: IncomingCall) -> Result<LiveCall, ServiceError> {
        let conference = self
            .all_conferences(call.account)?
            .into_iter()
            .find(|c| {
                c.document
                    .get("conference_numbers")
                    .and_then(serde_json::Value::as_array)
                    .is_some_and(|numbers| numbers.iter().any(|n| n.as_str() == Some(&call.dialed)))
            })
            .ok_or_else(|| ServiceError::NotFound(call.dialed.clone()))?;
        let (participant, sdp) = self.join(
            call.account,
            &conference.id.to_string(),
            &JoinRequest {
                offer: call.offer.unwrap_or_default(),
                caller_id_name: call.caller_id_name,
                caller_id_number: call.caller_id_number,
                signalled_source: call.signalled_source,
                ..JoinRequest::default()
            },
        )?;
        let (sender, state) = watch::channel(CallState::Joined {
            conference: conference.id,
            participant_id: participant.state.participant_id,
            call_id: participant.call_id,
        });
        let sender = Arc::new(sender);
        let mut events = self.subscribe();
        let watcher = sender.clone();
        let call_id = participant.call_id;
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if event.name == "del-member" && event.call_id == Some(call_id) {
                    let _ = watcher.send(CallState::Ended {
                        reason: "left".into(),
                    });
                    break;
                }
            }
        });
        Ok(LiveCall {
            service: self.clone(),
            account: call.account,
            sdp,
            state,
            _sender: sender,
        })
    }
}

/// A dial-out request.
pub struct DialRequest {
    pub account: Uuid,
    pub conference: Uuid,
    pub call_id: Uuid,
    pub target: String,
    pub caller_id_name: Option<String>,
    pub caller_id_number: Option<String>,
    pub timeout: std::time::Duration,
}

/// The SIP layer's dial-out side.
pub trait Dialer: Send + Sync {
    fn dial(&self, request: DialRequest);
}

/// How a dial-out call progresses.
pub enum DialProgress {
    Ringing,
    EarlyMedia,
}

/// The contract's dial-out service calls.
pub trait DialService {
    fn offer_media(&self) -> Result<tutti_conference::OfferedMedia, ServiceError>;
    fn dial_progress(&self, call_id: Uuid, progress: DialProgress);
    fn dial_answered(
        &self,
        call_id: Uuid,
        answer: &str,
        port: u16,
    ) -> Result<LiveCall, ServiceError>;
    fn dial_failed(&self, call_id: Uuid, status: u16, reason: &str);
    fn release_port(&self, port: u16);
}

impl DialService for ConferenceService {
    fn offer_media(&self) -> Result<tutti_conference::OfferedMedia, ServiceError> {
        Err(ServiceError::Precondition(
            "dial-out is not available yet".into(),
        ))
    }
    fn dial_progress(&self, _call_id: Uuid, _progress: DialProgress) {}
    fn dial_answered(&self, _: Uuid, _: &str, _: u16) -> Result<LiveCall, ServiceError> {
        Err(ServiceError::Precondition(
            "dial-out is not available yet".into(),
        ))
    }
    fn dial_failed(&self, _call_id: Uuid, _status: u16, _reason: &str) {}
    fn release_port(&self, _port: u16) {}
}
