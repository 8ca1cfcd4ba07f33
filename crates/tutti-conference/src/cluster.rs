//! The service in a cluster of nodes sharing one store: which node runs a room, events that
//! happened on other nodes, and the calls of rooms lost with a node.

use std::sync::Arc;

use tutti_store::Collection;
use uuid::Uuid;

use crate::events::ConferenceEvent;
use crate::lifecycle::{Call, CallStatus};
use crate::service::{now_us, ConferenceService};

/// What the service asks of the cluster it runs in.
pub trait ClusterView: Send + Sync {
    /// This node's id.
    fn node(&self) -> &str;
    /// The node running `conference`'s room, as last known (cheap; may lag a heartbeat).
    fn focus(&self, conference: Uuid) -> Option<String>;
    /// Whether another live node runs `conference`'s room now (asks the database).
    fn runs_elsewhere(&self, conference: Uuid) -> bool;
}

/// The `failure` (VoIPbin's `hangup_reason`) of a call whose node was lost.
pub const NODE_LOST: &str = "node_lost";

impl ConferenceService {
    /// Joins the service to a cluster (once; later calls are ignored).
    pub fn set_cluster(&self, cluster: Arc<dyn ClusterView>) {
        let _ = self.cluster.set(cluster);
    }

    /// The node whose room runs `conference`: this node when the room runs here, else the
    /// cluster's record; `None` when it runs nowhere (or there is no cluster and it does not
    /// run here).
    pub fn focus(&self, conference: Uuid) -> Option<String> {
        let cluster = self.cluster.get();
        if self.running_account(conference).is_some() {
            return cluster.map(|c| c.node().to_owned());
        }
        cluster.and_then(|c| c.focus(conference))
    }

    /// This node's id in its cluster, if it is in one.
    pub(crate) fn node(&self) -> Option<String> {
        self.cluster.get().map(|c| c.node().to_owned())
    }

    /// Whether another live node runs `conference`'s room.
    pub(crate) fn runs_elsewhere(&self, conference: Uuid) -> bool {
        self.cluster
            .get()
            .is_some_and(|c| c.runs_elsewhere(conference))
    }

    /// Shows subscribers of this node an event that happened on another node.
    pub fn publish_remote(&self, event: ConferenceEvent) {
        self.publish_event(ConferenceEvent {
            remote: true,
            ..event
        });
    }

    /// The rooms of `conferences` ran on `node`, which is gone: their calls still present on
    /// that node are closed (`leaved`, with [`NODE_LOST`] as their failure) and announced, and each
    /// conference's room is announced destroyed. The conferences themselves stay as they were;
    /// their next join starts a room again.
    pub fn close_lost_rooms(&self, node: &str, conferences: &[Uuid]) {
        for &conference in conferences {
            let Ok(Some(record)) = self.store().conference_by_id(conference) else {
                continue;
            };
            let account = record.account_id;
            let calls = self.store().list_items(
                Collection::Calls,
                account,
                Some(conference),
                None,
                usize::MAX,
            );
            let mut closed = 0usize;
            for item in calls.unwrap_or_default() {
                let Ok(mut call) = serde_json::from_value::<Call>(item.document) else {
                    continue;
                };
                // Calls of the room that runs elsewhere now are not this loss's.
                let lost_here = call.node.as_deref().is_none_or(|n| n == node);
                if call.status == CallStatus::Leaved || !lost_here {
                    continue;
                }
                call.status = CallStatus::Leaved;
                call.modified_us = now_us();
                call.left_us = Some(call.modified_us);
                call.failure = Some(NODE_LOST.into());
                if let Err(error) = self.put_call(&call) {
                    tracing::warn!(%error, call = %call.id, "a lost call could not be closed");
                    continue;
                }
                closed += 1;
                self.publish(
                    account,
                    conference,
                    "del-member",
                    Some((call.participant_id, call.id)),
                );
            }
            tracing::warn!(%conference, node, calls = closed, "room lost with its node");
            self.publish(account, conference, "conference-destroy", None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    /// A cluster of node `a` where the rooms in `elsewhere` run on node `b`.
    struct TwoNodes {
        elsewhere: std::sync::Mutex<HashMap<Uuid, String>>,
    }

    impl ClusterView for TwoNodes {
        fn node(&self) -> &str {
            "a"
        }
        fn focus(&self, conference: Uuid) -> Option<String> {
            self.elsewhere.lock().unwrap().get(&conference).cloned()
        }
        fn runs_elsewhere(&self, conference: Uuid) -> bool {
            self.elsewhere.lock().unwrap().contains_key(&conference)
        }
    }

    fn call_in(service: &ConferenceService, account: Uuid, conference: Uuid, status: &str) -> Call {
        let call: Call = serde_json::from_value(json!({
            "id": Uuid::now_v7(), "account_id": account, "conference_id": conference,
            "participant_id": 3, "status": status, "created_us": 1, "modified_us": 1,
            "node": "b",
        }))
        .unwrap();
        service.put_call(&call).unwrap();
        call
    }

    #[test]
    fn a_lost_room_s_calls_are_closed_with_a_reason_and_announced() {
        let service = crate::tests::service();
        let account = service.create_account("acme").unwrap().id;
        let conference = service.create_conference(account, &json!({})).unwrap().id;
        let joined = call_in(&service, account, conference, "joined");
        let left = call_in(&service, account, conference, "leaved");
        // The room already started again on node c, with a new call in it.
        let mut on_c = call_in(&service, account, conference, "joined");
        on_c.node = Some("c".into());
        service.put_call(&on_c).unwrap();
        let mut events = service.subscribe();
        service.close_lost_rooms("b", &[conference, Uuid::now_v7()]);
        let now = service.call(account, &joined.id.to_string()).unwrap();
        assert_eq!(now.status, CallStatus::Leaved);
        assert_eq!(now.failure.as_deref(), Some(NODE_LOST));
        assert!(now.left_us.is_some());
        let untouched = service.call(account, &left.id.to_string()).unwrap();
        assert_eq!(untouched, left);
        assert_eq!(service.call(account, &on_c.id.to_string()).unwrap(), on_c);
        let first = events.try_recv().unwrap();
        assert_eq!(
            (first.name, first.call_id, first.remote),
            ("del-member", Some(joined.id), false)
        );
        assert_eq!(events.try_recv().unwrap().name, "conference-destroy");
        assert!(
            events.try_recv().is_err(),
            "nothing for the unknown conference"
        );
    }

    #[test]
    fn focus_names_the_node_running_the_room_and_restarts_spare_its_calls() {
        let service = crate::tests::service();
        let account = service.create_account("acme").unwrap().id;
        let there = service.create_conference(account, &json!({})).unwrap().id;
        let nowhere = service.create_conference(account, &json!({})).unwrap().id;
        assert_eq!(service.focus(there), None, "no cluster, not running here");
        let remote_call = call_in(&service, account, there, "joined");
        let orphan = call_in(&service, account, nowhere, "joined");
        service.set_cluster(Arc::new(TwoNodes {
            elsewhere: std::sync::Mutex::new(HashMap::from([(there, "b".to_string())])),
        }));
        assert_eq!(service.focus(there).as_deref(), Some("b"));
        assert_eq!(service.focus(nowhere), None);
        service.restore().unwrap();
        let remote_call_now = service.call(account, &remote_call.id.to_string()).unwrap();
        assert_eq!(
            remote_call_now.status,
            CallStatus::Joined,
            "node b still runs it"
        );
        let orphan_now = service.call(account, &orphan.id.to_string()).unwrap();
        assert_eq!(orphan_now.status, CallStatus::Leaved);
    }

    #[test]
    fn a_conference_due_to_end_is_ended_by_the_node_running_its_room() {
        let service = crate::tests::service();
        let account = service.create_account("acme").unwrap().id;
        let conference = service
            .create_conference(account, &json!({"timeout": 60}))
            .unwrap();
        let cluster = Arc::new(TwoNodes {
            elsewhere: std::sync::Mutex::new(HashMap::from([(conference.id, "b".to_string())])),
        });
        service.set_cluster(cluster.clone());
        let due = conference.created + 61;
        service.run_due(due);
        let status = |service: &ConferenceService| {
            service
                .conference(account, &conference.id.to_string())
                .unwrap()
                .state
                .status
        };
        assert!(!status(&service).is_ending(), "node b ends it");
        // Node b is lost before it does: this node looks again and ends it.
        cluster.elsewhere.lock().unwrap().clear();
        service.run_due(due + 1);
        assert!(!status(&service).is_ending(), "not before the second look");
        service.run_due(due + 5);
        assert!(status(&service).is_ending());
    }

    #[test]
    fn remote_events_reach_subscribers_marked_remote() {
        let service = crate::tests::service();
        let mut events = service.subscribe();
        let event = ConferenceEvent {
            account: Uuid::now_v7(),
            conference: Uuid::now_v7(),
            name: "start-talking",
            call_id: None,
            participant_id: Some(1),
            digit: None,
            remote: false,
        };
        service.publish_remote(event.clone());
        assert_eq!(
            events.try_recv().unwrap(),
            ConferenceEvent {
                remote: true,
                ..event
            }
        );
    }
}
