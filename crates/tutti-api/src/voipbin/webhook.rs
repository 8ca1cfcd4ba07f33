//! Conference events as VoIPbin's `{"type":…, "data":…}` messages, for webhooks and the
//! websocket, with the topic each belongs to.

use serde_json::{json, Value};
use tutti_conference::{ConferenceEvent, ConferenceService, ConferenceStatus};

use super::render;

/// A VoIPbin message: its topic (`customer_id:<id>:conference:<id>` or
/// `customer_id:<id>:conferencecall:<id>`) and its `{type, data}` body.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Message {
    pub(crate) topic: String,
    pub(crate) body: Value,
}

/// The VoIPbin message for an event, if VoIPbin has one.
pub(crate) fn message(service: &ConferenceService, event: &ConferenceEvent) -> Option<Message> {
    let account = event.account;
    let call_type = match event.name {
        "call-joining" => Some("conferencecall_joining"),
        "add-member" => Some("conferencecall_joined"),
        "call-leaving" => Some("conferencecall_leaving"),
        "del-member" => Some("conferencecall_leaved"),
        "dtmf" => Some("conferencecall_dtmf_received"),
        _ => None,
    };
    if let Some(kind) = call_type {
        let call_id = event.call_id?;
        let call = service.call(account, &call_id.to_string()).ok()?;
        let mut data = render::call(&call);
        if let Some(digit) = event.digit {
            data["digit"] = json!(digit.digit.to_string());
            data["duration"] = json!(digit.duration_ms);
        }
        return Some(Message {
            topic: format!("customer_id:{account}:conferencecall:{call_id}"),
            body: json!({"type": kind, "data": data}),
        });
    }
    let topic = format!("customer_id:{account}:conference:{}", event.conference);
    let (kind, data) = match event.name {
        "document-created" | "document-updated" | "status-changed" => {
            let conference = service
                .conference(account, &event.conference.to_string())
                .ok()?;
            let kind = match event.name {
                "document-created" => "conference_created",
                _ if conference.state.status == ConferenceStatus::Terminated => {
                    "conference_deleted"
                }
                _ => "conference_updated",
            };
            (kind, render::conference(service, &conference))
        }
        "document-deleted" => (
            "conference_deleted",
            json!({"id": event.conference, "customer_id": account, "status": "terminated"}),
        ),
        _ => return None,
    };
    Some(Message {
        topic,
        body: json!({"type": kind, "data": data}),
    })
}
