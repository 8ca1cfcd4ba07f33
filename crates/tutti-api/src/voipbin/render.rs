//! Conferences, conferencecalls and recordings in VoIPbin's shapes.

use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;
use tutti_conference::{Call, Conference, ConferenceService, Recording};

/// VoIPbin's "not yet" timestamp.
pub(crate) const NOT_YET: &str = "9999-01-01 00:00:00.000000";

/// Unix microseconds as `YYYY-MM-DD HH:MM:SS.ffffff` (UTC).
pub(crate) fn timestamp_us(unix_us: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_us) * 1000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| NOT_YET.to_owned())
}

/// Unix seconds as a VoIPbin timestamp.
pub(crate) fn timestamp(unix: i64) -> String {
    timestamp_us(unix.saturating_mul(1_000_000))
}

fn field(conference: &Conference, key: &str, default: Value) -> Value {
    conference.document.get(key).cloned().unwrap_or(default)
}

/// A conference.
pub(crate) fn conference(service: &ConferenceService, c: &Conference) -> Value {
    let state = &c.state;
    json!({
        "id": c.id,
        "customer_id": c.account_id,
        "type": c.kind(),
        "status": state.status.as_str(),
        "name": field(c, "name", json!("")),
        "detail": field(c, "detail", json!("")),
        "data": field(c, "data", json!({})),
        "timeout": field(c, "timeout", json!(0)),
        "pre_actions": field(c, "pre_actions", json!([])),
        "post_actions": field(c, "post_actions", json!([])),
        "conference_numbers": field(c, "conference_numbers", json!([])),
        "pins": {
            "member": c.document.pointer("/member/pins").cloned().unwrap_or_else(|| json!([])),
            "moderator": c.document.pointer("/moderator/pins").cloned().unwrap_or_else(|| json!([])),
        },
        "conferencecall_ids": service.present_calls(c.id),
        "recording_id": state.recording_id.map_or_else(|| "00000000-0000-0000-0000-000000000000".to_owned(), |id| id.to_string()),
        "recording_ids": state.recording_ids,
        "tm_create": timestamp(c.created),
        "tm_update": timestamp(c.modified),
        "tm_delete": state.ending_since.map_or_else(|| NOT_YET.to_owned(), timestamp),
    })
}

/// A conferencecall.
pub(crate) fn call(call: &Call) -> Value {
    let mut rendered = json!({
        "id": call.id,
        "customer_id": call.account_id,
        "conference_id": call.conference_id,
        "reference_type": "call",
        "reference_id": call.id,
        "status": call.status.as_str(),
        "tm_create": timestamp_us(call.created_us),
        "tm_update": timestamp_us(call.modified_us),
        "tm_delete": call.left_us.map_or_else(|| NOT_YET.to_owned(), timestamp_us),
    });
    if let Some(failure) = &call.failure {
        // Why a dial-out call never joined: the SIP status.
        rendered["hangup_reason"] = json!(failure);
    }
    rendered
}

/// A recording.
pub(crate) fn recording(r: &Recording) -> Value {
    json!({
        "id": r.id,
        "customer_id": r.account_id,
        "reference_type": "conference",
        "reference_id": r.conference_id,
        "status": r.status.as_str(),
        "format": r.format,
        "filenames": [format!("{}.{}", r.id, r.format)],
        "duration": r.max_duration,
        "tm_start": timestamp_us(r.started_us),
        "tm_end": r.ended_us.map_or_else(|| NOT_YET.to_owned(), timestamp_us),
        "tm_create": timestamp_us(r.started_us),
        "tm_update": timestamp_us(r.ended_us.unwrap_or(r.started_us)),
        "tm_delete": NOT_YET,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_voipbins_shape() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00.000000");
        assert_eq!(
            timestamp_us(1_795_446_000_123_456),
            "2026-11-23 15:00:00.123456"
        );
    }
}
