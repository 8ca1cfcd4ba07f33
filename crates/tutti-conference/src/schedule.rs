//! Conferences that end by themselves: VoIPbin's `timeout` (seconds after creation) and
//! FoneStorm's `end_time`. A timer calls [`ConferenceService::run_due`] once a second.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::fields::parse_time;
use crate::lifecycle::ConferenceStatus;
use crate::service::{now, Conference, ConferenceService, ServiceError};

/// How often the timer looks for conferences that are due to end.
pub const SCHEDULE_INTERVAL: Duration = Duration::from_millis(250);

/// Seconds before a node looks again at a due conference whose room another node runs.
const ELSEWHERE_RECHECK: i64 = 5;

/// When a conference ends by itself, Unix seconds: the earlier of `created + timeout` and
/// `end_time`.
pub(crate) fn deadline(conference: &Conference) -> Option<i64> {
    let timeout = conference
        .document
        .get("timeout")
        .and_then(Value::as_i64)
        .filter(|&t| t > 0)
        // Validation caps timeouts far below overflow; a document stored before the cap
        // existed saturates to "never" rather than wrapping to "at once".
        .map(|t| conference.created.saturating_add(t));
    let end = conference.document.get("end_time").and_then(parse_time);
    match (timeout, end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl ConferenceService {
    /// Remembers when a conference ends by itself (or forgets it when it no longer does).
    pub(crate) fn schedule(&self, conference: &Conference) {
        let Ok(mut deadlines) = self.deadlines.lock() else {
            return;
        };
        match deadline(conference).filter(|_| !conference.state.status.is_ending()) {
            Some(at) => deadlines.insert(conference.id, (conference.account_id, at)),
            None => deadlines.remove(&conference.id),
        };
    }

    /// Forgets a conference's deadline.
    pub(crate) fn unschedule(&self, conference: Uuid) {
        if let Ok(mut deadlines) = self.deadlines.lock() {
            deadlines.remove(&conference);
        }
    }

    /// Ends every conference whose deadline has passed by `now` (Unix seconds).
    pub fn run_due(&self, now: i64) {
        let due: Vec<(Uuid, Uuid)> = match self.deadlines.lock() {
            Ok(mut deadlines) => {
                let due: Vec<(Uuid, Uuid)> = deadlines
                    .iter()
                    .filter(|(_, (_, at))| *at <= now)
                    .map(|(id, (account, _))| (*id, *account))
                    .collect();
                for (id, _) in &due {
                    deadlines.remove(id);
                }
                due
            }
            Err(_) => return,
        };
        for (id, account) in due {
            if self.runs_elsewhere(id) {
                // The node running the room ends it (it scheduled it when the room started);
                // look again later, in case that node is lost first.
                if let Ok(mut deadlines) = self.deadlines.lock() {
                    deadlines.insert(id, (account, now.saturating_add(ELSEWHERE_RECHECK)));
                }
                continue;
            }
            if let Err(error) = self.terminate(account, &id.to_string()) {
                tracing::warn!(%error, conference = %id, "a conference due to end could not be ended");
            }
        }
    }

    /// Rebuilds what lives only in memory after a start: deadlines of conferences still to
    /// end, and the end of calls and conferences whose rooms the restart closed.
    pub fn restore(&self) -> Result<(), ServiceError> {
        self.close_orphaned_calls()?;
        for record in self.store().every_conference()? {
            let conference = Conference::from(record);
            if conference.state.status == ConferenceStatus::Terminating {
                self.advance_status(
                    conference.account_id,
                    conference.id,
                    ConferenceStatus::Terminated,
                )?;
            } else {
                self.schedule(&conference);
            }
        }
        self.run_due(now());
        Ok(())
    }

    /// Starts the timer that ends conferences on time (on the current tokio runtime).
    pub fn spawn_scheduler(&self) -> Option<tokio::task::JoinHandle<()>> {
        let service = self.shared()?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(runtime.spawn(async move {
            let mut ticks = tokio::time::interval(SCHEDULE_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let service = service.clone();
                // Ending conferences talks to the media plane, which may wait for a tick.
                let _ = tokio::task::spawn_blocking(move || service.run_due(now())).await;
            }
        }))
    }
}

/// A conference as a schedule sees it (FoneStorm's `conference_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleStatus {
    /// Not ended, nobody connected.
    Scheduled,
    /// Somebody is connected.
    Active,
    /// Past its end time, deleted or terminated.
    Ended,
}

impl ScheduleStatus {
    /// FoneStorm's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::Scheduled => "scheduled",
            ScheduleStatus::Active => "active",
            ScheduleStatus::Ended => "ended",
        }
    }
}

/// Who is connected to a conference now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attendance {
    /// The conference's schedule status.
    pub status: ScheduleStatus,
    /// Whether the organizer (a moderator) is connected.
    pub organizer_connected: bool,
    /// Connected participants who are not moderators.
    pub attendees_connected: usize,
}

impl ConferenceService {
    /// Who is connected to `conference` now, and its schedule status.
    pub fn attendance(&self, conference: &Conference) -> Attendance {
        let known = self.participants_known(conference.id);
        let ended = conference.state.status.is_ending()
            || conference
                .document
                .get("end_time")
                .and_then(parse_time)
                .is_some_and(|end| now() >= end);
        Attendance {
            status: if ended {
                ScheduleStatus::Ended
            } else if known.is_empty() {
                ScheduleStatus::Scheduled
            } else {
                ScheduleStatus::Active
            },
            organizer_connected: known.values().any(|p| p.moderator),
            attendees_connected: known.values().filter(|p| !p.moderator).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn deadlines_never_wrap() {
        let conference = |document| Conference {
            id: Uuid::nil(),
            account_id: Uuid::nil(),
            document,
            state: Default::default(),
            revision: 1,
            created: 1_800_000_000,
            modified: 1_800_000_000,
        };
        assert_eq!(
            deadline(&conference(json!({"timeout": 60}))),
            Some(1_800_000_060)
        );
        assert_eq!(
            deadline(&conference(json!({"timeout": i64::MAX}))),
            Some(i64::MAX)
        );
        assert_eq!(deadline(&conference(json!({"timeout": 0}))), None);
    }
}
