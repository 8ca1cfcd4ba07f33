//! In-call DTMF controls for every participant (Kazoo's defaults): `*1` mute toggle, `*2`
//! mute, `*3` unmute, `*4` deaf toggle, `*5` deaf, `*6` undeaf, `#` leave. They have the same
//! effects and events as the API's actions.

use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::events::Departure;
use crate::live::ParticipantAction;
use crate::service::ConferenceService;

/// How long after `*` the control key may come.
pub const CONTROL_WINDOW: Duration = Duration::from_secs(3);

impl ConferenceService {
    /// A key a participant of a running conference pressed.
    pub(crate) fn caller_control(
        &self,
        account: Uuid,
        conference: Uuid,
        participant: u32,
        key: char,
    ) {
        let starred = self
            .sip
            .star
            .lock()
            .ok()
            .and_then(|mut star| star.remove(&(conference, participant)))
            .is_some_and(|at| at.elapsed() <= CONTROL_WINDOW);
        if key == '*' {
            if let Ok(mut star) = self.sip.star.lock() {
                star.insert((conference, participant), Instant::now());
            }
            return;
        }
        if key != '#' && !starred {
            return;
        }
        let Ok(found) = self.conference(account, &conference.to_string()) else {
            return;
        };
        if key == '#' {
            return self.remove(&found, &[participant], true, Departure::Hangup);
        }
        let Ok(now) = self.participant(&found, participant) else {
            return;
        };
        let action = match key {
            '1' if now.state.speak => ParticipantAction::Mute,
            '1' | '3' => ParticipantAction::Unmute,
            '2' => ParticipantAction::Mute,
            '4' if now.state.hear => ParticipantAction::Deaf,
            '4' | '6' => ParticipantAction::Undeaf,
            '5' => ParticipantAction::Deaf,
            _ => return,
        };
        if let Err(error) = self.act_on_participant(&found, participant, &action) {
            tracing::info!(%error, %conference, participant, "a caller control failed");
        }
    }
}
