//! Pushes conference events out: each account's VoIPbin webhook, and each conference's
//! FoneStorm `callback_url`. Rendering reads the store, so it runs on a thread of its own;
//! delivery is the [`WebhookSender`]'s, which never blocks.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tutti_conference::{ConferenceEvent, ConferenceService};

use crate::webhooks::{Delivery, WebhookSender};

/// Starts forwarding `service`'s events to webhooks through `sender`; runs until the
/// service's event stream closes.
pub fn spawn_notifier(
    service: Arc<ConferenceService>,
    sender: WebhookSender,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut events = service.subscribe();
    std::thread::Builder::new()
        .name("tutti-notifier".into())
        .spawn(move || loop {
            match events.blocking_recv() {
                Ok(event) => notify(&service, &sender, &event),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "the webhook notifier fell behind; events were dropped"
                    )
                }
                Err(RecvError::Closed) => return,
            }
        })
}

/// Delivers one event to whoever wants it. Both kinds are signed with the account's webhook
/// secret when it has one. An event from another node of the cluster is that node's to
/// deliver, so each is delivered once.
fn notify(service: &ConferenceService, sender: &WebhookSender, event: &ConferenceEvent) {
    if event.remote {
        return;
    }
    let webhook = service.webhook(event.account).ok().flatten();
    let secret = webhook
        .as_ref()
        .map(|(_, secret)| secret.clone())
        .filter(|s| !s.is_empty());
    if let Some((url, _)) = &webhook {
        if let Some(message) = crate::voipbin::webhook::message(service, event) {
            sender.deliver(Delivery::new(
                url.clone(),
                message.body.to_string(),
                secret.clone(),
            ));
        }
    }
    if let Some((url, body)) = crate::fonestorm::callback::callback(service, event) {
        sender.deliver(Delivery::new(url, body.to_string(), secret));
    }
}
