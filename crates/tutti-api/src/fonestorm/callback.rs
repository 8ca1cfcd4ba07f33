//! FoneStorm's `callback_url`: what to POST there when a participant joins or leaves and
//! when the conference's status changes. The notifier delivers it.
//!
//! The body is `{"event": "join" | "leave" | "status", "conference": {…}, "participant":
//! {"call_id", "participant_id"}, "timestamp"}`: `conference` as `GET /v2/conferences/{id}`
//! shows it when the callback is rendered, `participant` only for `join` and `leave`,
//! `timestamp` RFC 3339 in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tutti_conference::fields::format_time;
use tutti_conference::{ConferenceEvent, ConferenceService};

use super::render;

/// The FoneStorm event an event of the service is, if any.
fn event_name(event: &ConferenceEvent) -> Option<&'static str> {
    match event.name {
        "add-member" => Some("join"),
        "del-member" => Some("leave"),
        "status-changed" | "conference-destroy" => Some("status"),
        _ => None,
    }
}

/// The callback URL and JSON body to POST for `event`, when its conference has a
/// `callback_url` and the event is one FoneStorm reports. A deleted conference has no
/// document, and so no URL left to call: its events answer `None`.
pub(crate) fn callback(
    service: &ConferenceService,
    event: &ConferenceEvent,
) -> Option<(String, Value)> {
    let name = event_name(event)?;
    let conference = service
        .conference(event.account, &event.conference.to_string())
        .ok()?;
    let url = conference.text("callback_url")?.to_owned();
    let mut body = json!({
        "event": name,
        "conference": render::conference(service, &conference),
        "timestamp": format_time(unix_now()),
    });
    if name != "status" {
        body["participant"] = json!({
            "call_id": event.call_id.map(|id| id.hyphenated().to_string()),
            "participant_id": event.participant_id,
        });
    }
    Some((url, body))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
#[path = "../../tests/common/mod.rs"]
mod memory_media;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::broadcast::Receiver;
    use tutti_conference::JoinRequest;
    use tutti_store::SqliteStore;
    use uuid::Uuid;

    use super::memory_media::MemoryMedia;
    use super::*;

    fn service() -> (Arc<ConferenceService>, Uuid) {
        let service = ConferenceService::new(
            Arc::new(SqliteStore::in_memory().unwrap()),
            Arc::new(MemoryMedia::default()),
            Duration::from_secs(3600),
        );
        let account = service.create_account("acme").unwrap().id;
        (service, account)
    }

    fn drain(events: &mut Receiver<ConferenceEvent>) -> Vec<ConferenceEvent> {
        std::iter::from_fn(|| events.try_recv().ok()).collect()
    }

    fn join(service: &ConferenceService, account: Uuid, id: Uuid, moderator: bool) -> u32 {
        let request = JoinRequest {
            offer: "v=0\r\n".into(),
            moderator,
            ..JoinRequest::default()
        };
        let (participant, _) = service.join(account, &id.to_string(), &request).unwrap();
        participant.state.participant_id
    }

    #[test]
    fn joins_leaves_and_status_changes_are_posted_to_the_callback_url() {
        let (service, account) = service();
        let conference = service
            .create_conference(
                account,
                &json!({"name": "Standup", "callback_url": "https://example.com/hook"}),
            )
            .unwrap();
        let mut events = service.subscribe();
        let organizer = join(&service, account, conference.id, true);
        join(&service, account, conference.id, false);

        let rendered: Vec<(String, Value)> = drain(&mut events)
            .iter()
            .filter_map(|event| callback(&service, event))
            .collect();
        let names: Vec<&str> = rendered
            .iter()
            .map(|(_, body)| body["event"].as_str().unwrap())
            .collect();
        // The service reports its lifecycle (progressing) and presence (somebody is there)
        // as separate status changes; both render as the conference is now.
        assert_eq!(names[0], "status", "{names:?}");
        let joins: Vec<&Value> = rendered
            .iter()
            .map(|(_, body)| body)
            .filter(|body| body["event"] == "join")
            .collect();
        assert_eq!(joins.len(), 2, "{names:?}");
        for (url, body) in &rendered {
            assert_eq!(url, "https://example.com/hook");
            assert_eq!(
                body["conference"]["id"],
                json!(conference.id.hyphenated().to_string())
            );
            assert_eq!(body["conference"]["label"], "Standup");
            assert_eq!(body["conference"]["conference_status"], "active");
            assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        }
        assert_eq!(joins[0]["participant"]["participant_id"], json!(organizer));
        assert_eq!(
            joins[0]["participant"]["call_id"].as_str().unwrap().len(),
            36
        );
        assert!(rendered[0].1.get("participant").is_none());

        // Everyone leaves: two leaves, then the conference is scheduled again.
        let current = service
            .conference(account, &conference.id.to_string())
            .unwrap();
        service
            .act_on_all(&current, &tutti_conference::ParticipantAction::Kick)
            .unwrap();
        let rendered: Vec<Value> = drain(&mut events)
            .iter()
            .filter_map(|event| callback(&service, event))
            .map(|(_, body)| body)
            .collect();
        let names: Vec<&str> = rendered
            .iter()
            .map(|b| b["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            names.iter().filter(|n| **n == "leave").count(),
            2,
            "{names:?}"
        );
        assert_eq!(names.last(), Some(&"status"), "{names:?}");
        let last = rendered.last().unwrap();
        assert_eq!(last["conference"]["conference_status"], "scheduled");
        assert_eq!(last["conference"]["attendees_status"], 0);
        assert_eq!(last["conference"]["organizer_status"], "not_connected");
    }

    #[test]
    fn nothing_is_posted_without_a_callback_url_other_events_or_after_deletion() {
        let (service, account) = service();
        let plain = service
            .create_conference(account, &json!({"name": "No hook"}))
            .unwrap();
        let hooked = service
            .create_conference(
                account,
                &json!({"callback_url": "http://hooks.example:9/cb"}),
            )
            .unwrap();
        let event = |conference: Uuid, name: &'static str| ConferenceEvent {
            account,
            conference,
            name,
            call_id: None,
            participant_id: None,
            digit: None,
            remote: false,
        };
        assert!(callback(&service, &event(plain.id, "status-changed")).is_none());
        assert!(callback(&service, &event(hooked.id, "start-talking")).is_none());
        assert!(callback(&service, &event(hooked.id, "document-updated")).is_none());
        let other_account = service.create_account("other").unwrap().id;
        assert!(callback(
            &service,
            &ConferenceEvent {
                account: other_account,
                ..event(hooked.id, "status-changed")
            }
        )
        .is_none());
        let (url, body) = callback(&service, &event(hooked.id, "conference-destroy")).unwrap();
        assert_eq!(url, "http://hooks.example:9/cb");
        assert_eq!(body["event"], "status");

        let mut events = service.subscribe();
        join(&service, account, hooked.id, false);
        drain(&mut events);
        service
            .delete_conference(account, &hooked.id.to_string())
            .unwrap();
        let after: Vec<(String, Value)> = drain(&mut events)
            .iter()
            .filter_map(|event| callback(&service, event))
            .collect();
        assert!(after.is_empty(), "{after:#?}");
    }
}
