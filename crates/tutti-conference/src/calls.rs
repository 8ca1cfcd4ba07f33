//! Participants' calls as records that outlive the room (VoIPbin's conferencecalls): their
//! forward-only status and the events each step announces.

use tutti_store::{Collection, ItemRecord};
use uuid::Uuid;

use crate::lifecycle::{Call, CallStatus};
use crate::live::ParticipantInfo;
use crate::service::{
    now, now_us, parse_page_token, Conference, ConferenceService, ServiceError, MAX_PAGE_SIZE,
};

impl ConferenceService {
    /// Records a new participant's call (`joining`) and announces it.
    pub(crate) fn open_call(
        &self,
        conference: &Conference,
        participant_id: u32,
        info: &ParticipantInfo,
    ) -> Result<Call, ServiceError> {
        let at = now_us();
        let call = Call {
            id: info.call_id,
            account_id: conference.account_id,
            conference_id: conference.id,
            participant_id,
            status: CallStatus::Joining,
            moderator: info.moderator,
            caller_id_name: info.caller_id_name.clone(),
            caller_id_number: info.caller_id_number.clone(),
            created_us: at,
            modified_us: at,
            left_us: None,
            failure: None,
            node: self.node(),
        };
        self.put_call(&call)?;
        self.publish(
            conference.account_id,
            conference.id,
            "call-joining",
            Some((participant_id, call.id)),
        );
        Ok(call)
    }

    pub(crate) fn put_call(&self, call: &Call) -> Result<(), ServiceError> {
        let document =
            serde_json::to_value(call).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        self.store().put_item(
            Collection::Calls,
            &ItemRecord {
                account_id: call.account_id,
                id: call.id,
                conference_id: call.conference_id,
                document,
                created: call.created_us / 1_000_000,
                modified: now(),
            },
        )?;
        Ok(())
    }

    /// Moves a call's status forward and announces the step: `add-member` when it joins,
    /// `call-leaving`, and `del-member` when it is gone. Backward moves are ignored.
    pub(crate) fn set_call_status(&self, account: Uuid, call_id: Uuid, status: CallStatus) {
        // Read, compare and write as one step: two departures racing (a kick and a timeout)
        // must not both store and announce the same status.
        let _step = self.call_steps.lock();
        let Ok(mut call) = self.call(account, &call_id.to_string()) else {
            return;
        };
        if status <= call.status {
            return;
        }
        call.status = status;
        call.modified_us = now_us();
        if status == CallStatus::Leaved {
            call.left_us = Some(call.modified_us);
        }
        if let Err(error) = self.put_call(&call) {
            tracing::warn!(%error, call = %call.id, "a call's status could not be stored");
        }
        let name = match status {
            CallStatus::Dialing => "call-dialing",
            CallStatus::Joining => "call-joining",
            CallStatus::Joined => "add-member",
            CallStatus::Leaving => "call-leaving",
            CallStatus::Leaved => "del-member",
        };
        self.publish(
            account,
            call.conference_id,
            name,
            Some((call.participant_id, call.id)),
        );
    }

    /// One call of the account.
    pub fn call(&self, account: Uuid, id: &str) -> Result<Call, ServiceError> {
        let not_found = || ServiceError::NotFound(id.to_owned());
        let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
        let record = self
            .store()
            .item(Collection::Calls, account, uuid)?
            .ok_or_else(not_found)?;
        serde_json::from_value(record.document).map_err(|_| not_found())
    }

    /// A page of the account's calls (of one conference when given), newest first, after the
    /// page token `before`; and the next page's token.
    pub fn calls(
        &self,
        account: Uuid,
        conference: Option<Uuid>,
        before: Option<&str>,
        page_size: usize,
    ) -> Result<(Vec<Call>, Option<Uuid>), ServiceError> {
        self.page_items(Collection::Calls, account, conference, before, page_size)
    }

    /// A page of records of `collection`, newest first, after the page token `before`; and
    /// the next page's token.
    pub(crate) fn page_items<T: serde::de::DeserializeOwned>(
        &self,
        collection: Collection,
        account: Uuid,
        conference: Option<Uuid>,
        before: Option<&str>,
        page_size: usize,
    ) -> Result<(Vec<T>, Option<Uuid>), ServiceError> {
        let before = parse_page_token(before)?;
        let size = page_size.clamp(1, MAX_PAGE_SIZE);
        let mut rows =
            self.store()
                .list_items(collection, account, conference, before, size + 1)?;
        let more = rows.len() > size;
        rows.truncate(size);
        let next = more.then(|| rows.last().map(|r| r.id)).flatten();
        let items = rows
            .into_iter()
            .filter_map(|r| serde_json::from_value(r.document).ok())
            .collect();
        Ok((items, next))
    }

    /// The calls in a conference now (joining, joined or leaving), oldest first.
    pub fn present_calls(&self, conference: Uuid) -> Vec<Uuid> {
        let mut calls: Vec<Uuid> = self
            .participants_known(conference)
            .values()
            .map(|info| info.call_id)
            .collect();
        calls.sort();
        calls
    }

    /// Removes a call from its conference (hearing the post-actions); a call already leaving
    /// or gone is left as it is. Returns the call as it is now.
    pub fn kick_call(&self, account: Uuid, id: &str) -> Result<Call, ServiceError> {
        let call = self.call(account, id)?;
        if call.status == CallStatus::Dialing {
            self.cancel_dial(account, call.id);
        } else if call.status.is_present() {
            let conference = self.conference(account, &call.conference_id.to_string())?;
            self.remove(
                &conference,
                &[call.participant_id],
                true,
                crate::events::Departure::Kicked,
            );
        }
        self.call(account, id)
    }

    /// After a restart no room runs here: calls that were in one are gone (unless another
    /// node of the cluster runs their room).
    pub(crate) fn close_orphaned_calls(&self) -> Result<(), ServiceError> {
        for status in [
            CallStatus::Dialing,
            CallStatus::Joining,
            CallStatus::Joined,
            CallStatus::Leaving,
        ] {
            for record in self
                .store()
                .items_where(Collection::Calls, "status", status.as_str())?
            {
                if let Ok(mut call) = serde_json::from_value::<Call>(record.document) {
                    if self.runs_elsewhere(call.conference_id) {
                        continue; // another node of the cluster runs its room
                    }
                    call.status = CallStatus::Leaved;
                    call.modified_us = now_us();
                    call.left_us = Some(call.modified_us);
                    self.put_call(&call)?;
                }
            }
        }
        Ok(())
    }
}
