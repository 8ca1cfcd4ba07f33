//! Dial-out: tutti calls a SIP URI (through the configured outbound proxy, answering its
//! digest challenges), reports ringing and early media, and on answer joins the callee to the
//! conference like any caller. Failures are reported with the SIP status.

use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::{StatusCode, StatusCodeKind, Uri};
use rsipstack::transport::SipAddr;

use crate::in_call::{self, CallLeg};
use crate::server::Context;
use tutti_conference::{DialProgress, DialRequest, Dialer};

/// The SIP layer's dial-out side, registered with the conference service.
pub struct SipDialer {
    context: Arc<Context>,
    runtime: tokio::runtime::Handle,
}

impl SipDialer {
    pub(crate) fn new(context: Arc<Context>, runtime: tokio::runtime::Handle) -> Self {
        Self { context, runtime }
    }
}

impl Dialer for SipDialer {
    fn dial(&self, request: DialRequest) {
        self.runtime.spawn(dial(self.context.clone(), request));
    }

    fn cancel(&self, call_id: uuid::Uuid) {
        let ringing = self
            .context
            .ringing
            .lock()
            .ok()
            .and_then(|mut ringing| ringing.remove(&call_id));
        if let Some(dialog) = ringing {
            self.runtime.spawn(async move {
                let _ = dialog.cancel().await;
            });
        }
    }
}

/// A status tutti reports for a call that got no final answer.
const NO_ANSWER: u16 = 408;
/// A status tutti reports when it could not send the INVITE at all.
const UNREACHABLE: u16 = 503;

async fn dial(context: Arc<Context>, request: DialRequest) {
    let service = context.service.clone();
    let call_id = request.call_id;
    let failed = |status: u16, reason: String| {
        tracing::info!(call = %call_id, status, %reason, "dial-out failed");
        service.dial_failed(call_id, status, &reason);
    };
    let callee = match Uri::try_from(request.target.as_str()) {
        Ok(uri) => uri,
        Err(_) => return failed(400, format!("{} is not a SIP URI", request.target)),
    };
    let offering = context.service.clone();
    let offered = match tokio::task::spawn_blocking(move || offering.offer_media()).await {
        Ok(Ok(offered)) => offered,
        Ok(Err(error)) => return failed(UNREACHABLE, error.to_string()),
        Err(_) => return failed(UNREACHABLE, "the media offer failed".into()),
    };
    let user = request
        .caller_id_number
        .clone()
        .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '+'))
        .unwrap_or_else(|| "tutti".into());
    let host = context.contact.host_with_port.to_string();
    let Ok(caller) = Uri::try_from(format!("sip:{user}@{host}").as_str()) else {
        return failed(UNREACHABLE, "no caller URI".into());
    };
    let outbound = &context.config.outbound;
    let destination = match &outbound.proxy {
        None => None,
        Some(proxy) => match Uri::try_from(proxy.as_str())
            .ok()
            .and_then(|uri| SipAddr::try_from(&uri).ok())
        {
            Some(address) => Some(address),
            None => {
                return failed(
                    UNREACHABLE,
                    format!("the outbound proxy {proxy} is not a SIP URI"),
                )
            }
        },
    };
    let credential = outbound.username.clone().map(|username| Credential {
        username,
        password: outbound.password.clone().unwrap_or_default(),
        realm: None,
        auth_username: None,
    });
    let option = InviteOption {
        caller_display_name: request.caller_id_name.clone(),
        caller,
        callee,
        destination,
        content_type: Some("application/sdp".into()),
        offer: Some(offered.offer.clone().into_bytes()),
        contact: context.contact.clone(),
        credential,
        call_id: Some(call_id.simple().to_string()),
        ..InviteOption::default()
    };
    let (state_sender, mut states) = context.dialogs.new_dialog_state_channel();
    let (dialog, mut outcome) = match context.dialogs.do_invite_async(option, state_sender) {
        Ok(started) => started,
        Err(error) => {
            context.service.release_port(offered.port);
            return failed(UNREACHABLE, error.to_string());
        }
    };
    if let Ok(mut ringing) = context.ringing.lock() {
        ringing.insert(call_id, dialog.clone());
    }
    let ring_limit = Duration::from_secs(u64::from(outbound.ring_timeout_seconds.max(1)));
    let deadline = tokio::time::sleep(request.timeout.min(ring_limit));
    tokio::pin!(deadline);
    let mut gave_up = false;
    let result = loop {
        tokio::select! {
            result = &mut outcome => break result,
            Some(state) = states.recv() => {
                if let DialogState::Early(_, response) = state {
                    let progress = if response.body.is_empty() {
                        DialProgress::Ringing
                    } else {
                        DialProgress::EarlyMedia
                    };
                    context.service.dial_progress(call_id, progress);
                }
            }
            () = &mut deadline, if !gave_up => {
                gave_up = true;
                let _ = dialog.cancel().await;
            }
        }
    };
    if let Ok(mut ringing) = context.ringing.lock() {
        ringing.remove(&call_id);
    }
    let response = match result {
        Ok(Ok((_, Some(response)))) => response,
        Ok(Ok((_, None))) | Ok(Err(_)) | Err(_) if gave_up => {
            context.service.release_port(offered.port);
            return failed(NO_ANSWER, "no answer".into());
        }
        Ok(Ok((_, None))) => {
            context.service.release_port(offered.port);
            return failed(NO_ANSWER, "no response".into());
        }
        Ok(Err(error)) => {
            context.service.release_port(offered.port);
            return failed(UNREACHABLE, error.to_string());
        }
        Err(_) => {
            context.service.release_port(offered.port);
            return failed(UNREACHABLE, "the INVITE was lost".into());
        }
    };
    if response.status_code.kind() != StatusCodeKind::Successful {
        context.service.release_port(offered.port);
        let status = u16::from(response.status_code.clone());
        if gave_up && response.status_code == StatusCode::RequestTerminated {
            return failed(NO_ANSWER, "no answer".into());
        }
        // The stack keeps the status line's number; its standard text names it.
        return failed(status, response.status_code.text().to_owned());
    }
    let answer = String::from_utf8_lossy(&response.body).into_owned();
    let answering = context.service.clone();
    let port = offered.port;
    let joined =
        tokio::task::spawn_blocking(move || answering.dial_answered(call_id, &answer, port)).await;
    let live = match joined {
        Ok(Ok(live)) => live,
        Ok(Err(error)) => {
            let _ = dialog.bye().await;
            context.dialogs.remove_dialog(&dialog.id());
            return failed(488, error.to_string());
        }
        Err(_) => {
            let _ = dialog.bye().await;
            context.dialogs.remove_dialog(&dialog.id());
            return failed(500, "joining the answered call failed".into());
        }
    };
    tracing::info!(call = %call_id, "dial-out answered");
    in_call::run(
        &context,
        CallLeg {
            dialog,
            states,
            live,
            timer: None,
            awaiting_answer: false,
        },
    )
    .await;
}
