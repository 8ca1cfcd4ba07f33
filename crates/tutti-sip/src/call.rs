//! An incoming INVITE: checks, admission, the answer, then the call until it ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use tutti_conference::{MediaError, ServiceError};

use crate::admission::{admit, Admission};
use crate::in_call::{self, CallLeg};
use crate::inspect::{invite_facts, unsupported_requirements};
use crate::server::{refuse, Context};
use crate::session_timer::negotiate;
use crate::source::source_of;
use tutti_conference::IncomingCall;

/// Answers a new INVITE and runs the call it starts.
pub(crate) async fn incoming_invite(context: Arc<Context>, mut tx: Transaction) {
    let request = tx.original.clone();
    let unsupported = unsupported_requirements(&request);
    if !unsupported.is_empty() {
        context
            .counters
            .calls_refused
            .fetch_add(1, Ordering::Relaxed);
        let header = Header::Other("Unsupported".into(), unsupported.join(", "));
        let _ = tx
            .reply_with(StatusCode::BadExtension, vec![header], None)
            .await;
        return;
    }
    let facts = match invite_facts(&request) {
        Ok(facts) => facts,
        Err(refusal) => {
            if refusal.status == StatusCode::BadRequest {
                context.counters.malformed.fetch_add(1, Ordering::Relaxed);
            }
            context
                .counters
                .calls_refused
                .fetch_add(1, Ordering::Relaxed);
            return refuse(&mut tx, refusal.status, &refusal.reason).await;
        }
    };
    let source = source_of(&request);
    let account = match admit(&context, &request, source, &facts.dialed) {
        Admission::Account(account) => account,
        Admission::Challenge { stale } => {
            context.counters.challenges.fetch_add(1, Ordering::Relaxed);
            let headers = context
                .digest
                .challenges(stale)
                .into_iter()
                .map(|value| Header::Other("WWW-Authenticate".into(), value))
                .collect();
            let _ = tx.reply_with(StatusCode::Unauthorized, headers, None).await;
            return;
        }
        Admission::Refused(status, reason) => {
            context
                .counters
                .calls_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(?source, dialed = %facts.dialed, %reason, "SIP call refused");
            return refuse(&mut tx, status, &reason).await;
        }
    };
    let timer = match negotiate(facts.timer, context.limits) {
        Ok(timer) => timer,
        Err(min_se) => {
            let _ = tx
                .reply_with(
                    StatusCode::SessionIntervalTooSmall,
                    vec![Header::Other("Min-SE".into(), min_se.to_string())],
                    None,
                )
                .await;
            return;
        }
    };
    let (state_sender, states) = context.dialogs.new_dialog_state_channel();
    let dialog = match context.dialogs.get_or_create_server_invite(
        &tx,
        state_sender,
        None,
        Some(context.contact.clone()),
    ) {
        Ok(dialog) => dialog,
        Err(error) => {
            context.counters.malformed.fetch_add(1, Ordering::Relaxed);
            return refuse(&mut tx, StatusCode::BadRequest, &error.to_string()).await;
        }
    };
    // The transaction runs on its own from here: 100 Trying, retransmissions, CANCEL, ACK.
    let mut handled = dialog.clone();
    tokio::spawn(async move {
        if let Err(error) = handled.handle(&mut tx).await {
            tracing::debug!(%error, "INVITE transaction ended with an error");
        }
    });
    let late_offer = facts.offer.is_none();
    let incoming = IncomingCall {
        account,
        dialed: facts.dialed.clone(),
        offer: facts.offer,
        caller_id_name: facts.caller_id_name,
        caller_id_number: facts.caller_id_number,
        signalled_source: source.map(|s| s.ip()),
    };
    let service = context.service.clone();
    let answered = tokio::task::spawn_blocking(move || service.answer_call(incoming)).await;
    let live = match answered {
        Ok(Ok(live)) => live,
        Ok(Err(error)) => {
            let (status, reason) = status_of(&error);
            tracing::info!(dialed = %facts.dialed, %reason, "SIP call refused");
            context
                .counters
                .calls_refused
                .fetch_add(1, Ordering::Relaxed);
            let _ = dialog.reject(Some(status), Some(reason));
            context.dialogs.remove_dialog(&dialog.id());
            return;
        }
        Err(_) => {
            let _ = dialog.reject(Some(StatusCode::ServerInternalError), None);
            context.dialogs.remove_dialog(&dialog.id());
            return;
        }
    };
    if dialog.state().is_terminated() {
        // Cancelled while it was being answered.
        let _ = tokio::task::spawn_blocking(move || live.hang_up()).await;
        context.dialogs.remove_dialog(&dialog.id());
        return;
    }
    let mut headers = vec![Header::ContentType("application/sdp".into())];
    headers.extend(timer.iter().flat_map(|timer| timer.headers()));
    headers.extend(crate::server::capabilities());
    if let Err(error) = dialog.accept(Some(headers), Some(live.sdp().as_bytes().to_vec())) {
        tracing::debug!(%error, "the answer could not be sent");
        let _ = tokio::task::spawn_blocking(move || live.hang_up()).await;
        context.dialogs.remove_dialog(&dialog.id());
        return;
    }
    context
        .counters
        .calls_answered
        .fetch_add(1, Ordering::Relaxed);
    in_call::run(
        &context,
        CallLeg {
            dialog,
            states,
            live,
            timer,
            awaiting_answer: late_offer,
        },
    )
    .await;
}

/// The SIP status that says why the service refused a call.
pub(crate) fn status_of(error: &ServiceError) -> (StatusCode, String) {
    let status = match error {
        ServiceError::NotFound(_) => StatusCode::NotFound,
        ServiceError::InvalidCredentials | ServiceError::NotAdmitted(_) => StatusCode::Forbidden,
        ServiceError::Media(MediaError::Offer(_)) => StatusCode::NotAcceptableHere,
        ServiceError::Media(MediaError::Full(_)) => StatusCode::BusyHere,
        ServiceError::Media(MediaError::Locked) | ServiceError::Precondition(_) => {
            StatusCode::TemporarilyUnavailable
        }
        ServiceError::Media(MediaError::Unavailable(_)) => StatusCode::ServiceUnavailable,
        ServiceError::BadRequest(_) | ServiceError::Validation(_) => StatusCode::BadRequest,
        _ => StatusCode::ServerInternalError,
    };
    let reason = match error {
        ServiceError::NotFound(_) => "no conference has that number".to_owned(),
        other => other.to_string(),
    };
    (status, reason)
}
