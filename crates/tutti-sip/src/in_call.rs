//! A call once answered: in-dialog requests (re-INVITE, UPDATE, INFO, OPTIONS, BYE), the
//! session timer, and the conference's side (a kick or the end of the conference sends BYE).
//! Shared by dial-in and dial-out calls.

use std::sync::atomic::Ordering;

use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle,
};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Request, StatusCode};
use tokio::time::Instant;

use crate::call::status_of;
use crate::inspect::{info_digit, sdp_body, timer_request};
use crate::server::Context;
use crate::session_timer::{negotiate, SessionTimer};
use tutti_conference::{CallState, LiveCall};

/// What a running call is made of.
pub(crate) struct CallLeg {
    pub(crate) dialog: InviteDialog,
    pub(crate) states: DialogStateReceiver,
    pub(crate) live: LiveCall,
    pub(crate) timer: Option<SessionTimer>,
    /// tutti sent the offer (the caller's INVITE had none): the ACK carries the answer.
    pub(crate) awaiting_answer: bool,
}

/// Why the call ended, for the log.
#[derive(Debug)]
enum Ending {
    CallerHungUp,
    ServerEnded(String),
    SessionExpired,
    Stopping,
}

/// Runs the call until it ends; sends BYE when the conference side ends it.
pub(crate) async fn run(context: &Context, mut leg: CallLeg) {
    context
        .counters
        .active_calls
        .fetch_add(1, Ordering::Relaxed);
    let mut call_state = leg.live.state();
    let mut refreshed = Instant::now();
    let ending = loop {
        let expiry = leg
            .timer
            .and_then(|t| t.expires_after())
            .map(|after| refreshed + after);
        let refresh = leg
            .timer
            .and_then(|t| t.refresh_after())
            .map(|after| refreshed + after);
        tokio::select! {
            state = leg.states.recv() => match state {
                None => break Ending::CallerHungUp,
                Some(DialogState::Terminated(_, reason)) => {
                    if matches!(reason, TerminatedReason::UasBye) {
                        break Ending::ServerEnded("ended".into());
                    }
                    break Ending::CallerHungUp;
                }
                Some(DialogState::Confirmed(..)) => {
                    if leg.awaiting_answer {
                        leg.awaiting_answer = false;
                        if !complete_late_offer(&leg).await {
                            break Ending::ServerEnded("no usable SDP answer in the ACK".into());
                        }
                    }
                }
                Some(DialogState::Updated(_, request, handle)) => {
                    if let Some(timer) = refresh_offer(context, &mut leg, &request, handle).await {
                        leg.timer = timer;
                        refreshed = Instant::now();
                    }
                }
                Some(DialogState::Info(_, request, handle)) => info(&leg, &request, handle).await,
                Some(DialogState::Options(_, _, handle)) => {
                    let _ = handle.respond(StatusCode::OK, Some(crate::server::capabilities()), None).await;
                }
                Some(
                    DialogState::Notify(_, _, handle)
                    | DialogState::Refer(_, _, handle)
                    | DialogState::Message(_, _, handle)
                    | DialogState::Publish(_, _, handle),
                ) => {
                    let _ = handle.reply(StatusCode::NotImplemented).await;
                }
                Some(_) => {}
            },
            changed = call_state.changed() => {
                if changed.is_err() {
                    break Ending::ServerEnded("the call's conference side is gone".into());
                }
                let ended = match &*call_state.borrow_and_update() {
                    CallState::Ended { reason } => Some(reason.clone()),
                    _ => None,
                };
                if let Some(reason) = ended {
                    break Ending::ServerEnded(reason);
                }
            }
            () = sleep_until(expiry) => break Ending::SessionExpired,
            () = sleep_until(refresh) => {
                let headers = leg.timer.map(|t| t.headers()).unwrap_or_default();
                if leg.dialog.update(Some(headers), None).await.is_err() {
                    break Ending::SessionExpired;
                }
                refreshed = Instant::now();
            }
            () = context.stopping.cancelled() => break Ending::Stopping,
        }
    };
    tracing::info!(call = %leg.dialog.id(), ending = ?ending, "SIP call ended");
    let live = leg.live.clone();
    let hang_up = || async move {
        let _ = tokio::task::spawn_blocking(move || live.hang_up()).await;
    };
    match ending {
        Ending::CallerHungUp => hang_up().await,
        Ending::ServerEnded(reason) => {
            let _ = leg
                .dialog
                .bye_with_reason(format!("SIP;cause=200;text=\"{reason}\""))
                .await;
        }
        Ending::SessionExpired | Ending::Stopping => {
            let _ = leg.dialog.bye().await;
            hang_up().await;
        }
    }
    context.dialogs.remove_dialog(&leg.dialog.id());
    context
        .counters
        .active_calls
        .fetch_sub(1, Ordering::Relaxed);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Gives the service the answer a late-offer caller put in its ACK.
async fn complete_late_offer(leg: &CallLeg) -> bool {
    let Some(ack) = leg.dialog.last_remote_ack() else {
        return false;
    };
    let Ok(Some(answer)) = sdp_body(&ack) else {
        return false;
    };
    let live = leg.live.clone();
    tokio::task::spawn_blocking(move || live.complete(&answer).is_ok())
        .await
        .unwrap_or(false)
}

/// A re-INVITE or UPDATE: a new offer (hold, resume, new address or codec) and/or a session
/// refresh. Returns the session timer now agreed, when the request was accepted.
async fn refresh_offer(
    context: &Context,
    leg: &mut CallLeg,
    request: &Request,
    handle: TransactionHandle,
) -> Option<Option<SessionTimer>> {
    let timer = match timer_request(request).map(|asked| negotiate(asked, context.limits)) {
        Ok(Ok(timer)) => timer.or(leg.timer),
        Ok(Err(min_se)) => {
            let headers = vec![Header::Other("Min-SE".into(), min_se.to_string())];
            let _ = handle
                .respond(StatusCode::SessionIntervalTooSmall, Some(headers), None)
                .await;
            return None;
        }
        Err(refusal) => {
            let _ = handle.reply(refusal.status).await;
            return None;
        }
    };
    let mut headers: Vec<Header> = timer.iter().flat_map(|t| t.headers()).collect();
    let body = match sdp_body(request) {
        Err(refusal) => {
            let _ = handle.reply(refusal.status).await;
            return None;
        }
        Ok(None) if request.method == rsipstack::sip::Method::Update => None,
        // A re-INVITE without SDP asks for an offer: the current session is one.
        Ok(None) => Some(leg.live.sdp().to_owned()),
        Ok(Some(offer)) => {
            let live = leg.live.clone();
            match tokio::task::spawn_blocking(move || live.renegotiate(&offer)).await {
                Ok(Ok(answer)) => Some(answer),
                Ok(Err(error)) => {
                    let (status, _) = status_of(&error);
                    let _ = handle.reply(status).await;
                    return None;
                }
                Err(_) => {
                    let _ = handle.reply(StatusCode::ServerInternalError).await;
                    return None;
                }
            }
        }
    };
    if body.is_some() {
        headers.push(Header::ContentType("application/sdp".into()));
    }
    let _ = handle
        .respond(StatusCode::OK, Some(headers), body.map(String::into_bytes))
        .await;
    Some(timer)
}

/// An INFO: a DTMF key goes to the conference like an RFC 4733 one.
async fn info(leg: &CallLeg, request: &Request, handle: TransactionHandle) {
    let content_type = request.header_value("Content-Type").unwrap_or_default();
    if request.body.is_empty() {
        let _ = handle.reply(StatusCode::OK).await;
        return;
    }
    match info_digit(&content_type, &request.body) {
        Some((digit, duration)) => {
            let live = leg.live.clone();
            let _ = tokio::task::spawn_blocking(move || live.press(digit, duration)).await;
            let _ = handle.reply(StatusCode::OK).await;
        }
        None => {
            let _ = handle.reply(StatusCode::UnsupportedMediaType).await;
        }
    }
}
