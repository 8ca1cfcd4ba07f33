//! Recordings of a conference's mix: at most one at a time, only while the conference is
//! `progressing`, kept as records their owner can list and download.

use std::time::Duration;

use tutti_store::{Collection, ItemRecord};
use uuid::Uuid;

use crate::lifecycle::{ConferenceStatus, Recording, RecordingStatus};
use crate::service::{now, now_us, Conference, ConferenceService, ServiceError};

/// Longest recording a request may ask for, seconds (24 hours).
pub const MAX_RECORDING_SECONDS: u64 = 86_400;

impl ConferenceService {
    /// Starts recording a `progressing` conference's mix into a WAV file, for at most
    /// `max_seconds` (0: until stopped). Refused when the conference is not progressing or is
    /// already recording.
    pub fn start_recording(
        &self,
        conference: &Conference,
        max_seconds: u64,
    ) -> Result<Recording, ServiceError> {
        if conference.state.status != ConferenceStatus::Progressing {
            return Err(ServiceError::Precondition(format!(
                "the conference is {}; recordings need it progressing",
                conference.state.status.as_str()
            )));
        }
        if conference.state.recording_id.is_some() {
            return Err(ServiceError::Precondition(
                "the conference is already recording".into(),
            ));
        }
        if max_seconds > MAX_RECORDING_SECONDS {
            return Err(ServiceError::BadRequest(format!(
                "duration must be at most {MAX_RECORDING_SECONDS} seconds"
            )));
        }
        let cap = (max_seconds > 0).then(|| Duration::from_secs(max_seconds));
        let path = self.media().start_recording(conference.id, cap)?;
        let recording = Recording {
            id: Uuid::now_v7(),
            account_id: conference.account_id,
            conference_id: conference.id,
            status: RecordingStatus::Recording,
            format: "wav".into(),
            path,
            max_duration: max_seconds,
            started_us: now_us(),
            ended_us: None,
        };
        self.put_recording(&recording)?;
        let id = recording.id;
        let (_, started) = self.update_state(conference.account_id, conference.id, |state| {
            if state.recording_id.is_some() {
                return false;
            }
            state.recording_id = Some(id);
            state.recording_ids.push(id);
            true
        })?;
        if !started {
            let _ = self.media().stop_recording(conference.id);
            return Err(ServiceError::Precondition(
                "the conference is already recording".into(),
            ));
        }
        self.publish(conference.account_id, conference.id, "status-changed", None);
        if let (Some(cap), Some(service)) = (cap, self.shared()) {
            let (account, conference) = (conference.account_id, conference.id);
            crate::actions::spawn_after(cap, move || {
                let current = service.conference(account, &conference.to_string());
                if current.is_ok_and(|c| c.state.recording_id == Some(id)) {
                    // The recorder stops itself at its cap; this waits for its file.
                    let _ = service.media().stop_recording(conference);
                    service.finish_recording(account, conference, id);
                }
            });
        }
        Ok(recording)
    }

    /// Stops the conference's recording; refused when it is not recording.
    pub fn stop_recording(&self, conference: &Conference) -> Result<Recording, ServiceError> {
        let Some(id) = conference.state.recording_id else {
            return Err(ServiceError::Precondition(
                "the conference is not recording".into(),
            ));
        };
        self.media().stop_recording(conference.id)?;
        self.finish_recording(conference.account_id, conference.id, id);
        self.recording(conference.account_id, &id.to_string())
    }

    /// Starts (`true`) or stops recording a conference's mix, starting its room if needed
    /// (Kazoo's `record` action); starting returns the recording.
    pub fn record(
        &self,
        conference: &Conference,
        start: bool,
    ) -> Result<Option<Recording>, ServiceError> {
        if start {
            self.require_running(conference)?;
            let conference = self.conference(conference.account_id, &conference.id.to_string())?;
            Ok(Some(self.start_recording(&conference, 0)?))
        } else {
            self.stop_recording(conference)?;
            Ok(None)
        }
    }

    /// Marks a recording ended (its file is complete) and frees the conference for the next.
    pub(crate) fn finish_recording(&self, account: Uuid, conference: Uuid, id: Uuid) {
        if let Ok(mut recording) = self.recording(account, &id.to_string()) {
            if recording.status != RecordingStatus::Ended {
                recording.status = RecordingStatus::Ended;
                recording.ended_us = Some(now_us());
                if let Err(error) = self.put_recording(&recording) {
                    tracing::warn!(%error, recording = %id, "a recording's end could not be stored");
                }
            }
        }
        let cleared = self.update_state(account, conference, |state| {
            if state.recording_id == Some(id) {
                state.recording_id = None;
                true
            } else {
                false
            }
        });
        if matches!(cleared, Ok((_, true))) {
            self.publish(account, conference, "status-changed", None);
        }
    }

    /// Finishes the conference's running recording, if any (its room is closing).
    pub(crate) fn finish_active_recording(&self, account: Uuid, conference: Uuid) {
        if let Ok(current) = self.conference(account, &conference.to_string()) {
            if let Some(id) = current.state.recording_id {
                let _ = self.media().stop_recording(conference);
                self.finish_recording(account, conference, id);
            }
        }
    }

    fn put_recording(&self, recording: &Recording) -> Result<(), ServiceError> {
        let document =
            serde_json::to_value(recording).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        self.store().put_item(
            Collection::Recordings,
            &ItemRecord {
                account_id: recording.account_id,
                id: recording.id,
                conference_id: recording.conference_id,
                document,
                created: recording.started_us / 1_000_000,
                modified: now(),
            },
        )?;
        Ok(())
    }

    /// One recording of the account.
    pub fn recording(&self, account: Uuid, id: &str) -> Result<Recording, ServiceError> {
        let not_found = || ServiceError::NotFound(id.to_owned());
        let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
        let record = self
            .store()
            .item(Collection::Recordings, account, uuid)?
            .ok_or_else(not_found)?;
        serde_json::from_value(record.document).map_err(|_| not_found())
    }

    /// A page of the account's recordings, newest first, after the page token `before`; and
    /// the next page's token.
    pub fn recordings(
        &self,
        account: Uuid,
        before: Option<&str>,
        page_size: usize,
    ) -> Result<(Vec<Recording>, Option<Uuid>), ServiceError> {
        self.page_items(Collection::Recordings, account, None, before, page_size)
    }
}
