//! `/v2/accounts/{account_id}/conferences/{conference_id}/participants[/{participant_id}]` and
//! the conference actions: joining with an SDP offer (tutti's extension), realtime participant
//! objects, and Kazoo's actions.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use tutti_conference::{Conference, JoinRequest, Participant, ParticipantAction, Relationship};

use super::auth::{authorize, authorize_body, Authorized};
use super::conferences::{answer, token_extra};
use super::envelope::{Body, KazooError};
use crate::AppState;

/// Seconds from year 0 (Gregorian, as Erlang counts) to the Unix epoch.
const GREGORIAN_UNIX_OFFSET: i64 = 62_167_219_200;

/// A participant as Kazoo describes a conference member.
pub(crate) fn render(conference: &Conference, p: &Participant) -> Value {
    json!({
        "participant_id": p.state.participant_id,
        "call_id": p.call_id.simple().to_string(),
        "conference_name": conference.document.get("name").cloned().unwrap_or(Value::Null),
        "conference_uuid": conference.id.simple().to_string(),
        "floor": false,
        "hear": p.state.hear,
        "speak": p.state.speak,
        "talking": p.state.talking,
        "mute_detect": p.state.mute_detect,
        "energy_level": p.state.energy_level.round() as i64,
        "current_energy": p.state.current_energy.round() as i64,
        "video": false,
        "is_moderator": p.state.moderator,
        "join_time": p.joined + GREGORIAN_UNIX_OFFSET,
        "duration": p.duration,
        "caller_id_name": p.caller_id_name,
        "caller_id_number": p.caller_id_number,
    })
}

/// The action of a request: `action` at the envelope's top level, or `data.action`. (With
/// both, as Kazoo's `record` has, the top level names the action and `data.action` is its
/// argument.)
fn action_name(envelope: &Map<String, Value>, data: &Value) -> Result<String, KazooError> {
    envelope
        .get("action")
        .or_else(|| data.get("action"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| KazooError::InvalidRequest("the request needs an \"action\"".into()))
}

fn participant_action(name: &str, data: &Value) -> Result<ParticipantAction, KazooError> {
    Ok(match name {
        "mute" => ParticipantAction::Mute,
        "unmute" => ParticipantAction::Unmute,
        "deaf" => ParticipantAction::Deaf,
        "undeaf" => ParticipantAction::Undeaf,
        "kick" => ParticipantAction::Kick,
        "play" => ParticipantAction::Play(media_id(data)?),
        other => return Err(KazooError::FaultyRequest(other.to_owned())),
    })
}

fn media_id(data: &Value) -> Result<String, KazooError> {
    data.get("media_id")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            KazooError::InvalidRequest(
                "play needs a \"media_id\" (a tone string or a media file)".into(),
            )
        })
}

/// `relate`'s arguments: `participant_id`, `other_participant` (numbers or numeric strings)
/// and `relationship` (`deaf`, `mute`, `clear`).
fn relate_arguments(data: &Value) -> Result<(u32, u32, Relationship), KazooError> {
    let id = |key: &str| {
        data.get(key)
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                KazooError::InvalidRequest(format!("relate needs \"{key}\": a participant_id"))
            })
    };
    let relationship = match data.get("relationship").and_then(Value::as_str) {
        Some("deaf") => Relationship::Deaf,
        Some("mute") => Relationship::Mute,
        Some("clear") => Relationship::Clear,
        _ => {
            return Err(KazooError::InvalidRequest(
                "relate needs \"relationship\": \"deaf\", \"mute\" or \"clear\"".into(),
            ))
        }
    };
    Ok((
        id("participant_id")?,
        id("other_participant")?,
        relationship,
    ))
}

fn participant_id(text: &str) -> Result<u32, KazooError> {
    text.parse()
        .map_err(|_| KazooError::BadIdentifier(text.to_owned()))
}

/// `PUT …/conferences/{id}`: `lock`, `unlock`, `play`, `record`, `dial` (SIP dial-out).
pub(crate) async fn conference_action(
    State(state): State<AppState>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(state, headers, move |state, headers| {
        let Authorized {
            account,
            token,
            envelope,
            data,
        } = authorize_body(state, headers, &body, &account_id)?;
        let action = action_name(&envelope, &data)?;
        let conference = state.service.conference(account, &id)?;
        match action.as_str() {
            "lock" => state.service.set_locked(&conference, true)?,
            "unlock" => state.service.set_locked(&conference, false)?,
            "play" => state.service.play(&conference, &media_id(&data)?)?,
            "record" => {
                let start = match data.get("action").and_then(Value::as_str) {
                    Some("start") => true,
                    Some("stop") => false,
                    _ => {
                        return Err(KazooError::InvalidRequest(
                            "record takes data.action \"start\" or \"stop\"".into(),
                        ))
                    }
                };
                let recording = state.service.record(&conference, start)?;
                let mut answer =
                    json!({"action": "record", "record": if start { "start" } else { "stop" }});
                if let Some(recording) = recording {
                    // The recording by id and file name; where the server keeps it stays private.
                    answer["recording_id"] = json!(recording.id.simple().to_string());
                    answer["file"] =
                        json!(format!("{}.{}", recording.id.simple(), recording.format));
                }
                return Ok((StatusCode::ACCEPTED, answer, token_extra(token)));
            }
            "dial" => {
                let answer = super::sip::dial(state, &conference, &data)?;
                return Ok((StatusCode::ACCEPTED, answer, token_extra(token)));
            }
            other => return Err(KazooError::FaultyRequest(other.to_owned())),
        }
        Ok((
            StatusCode::ACCEPTED,
            json!({"action": action}),
            token_extra(token),
        ))
    })
    .await
}

/// `GET …/participants`: realtime participants.
pub(crate) async fn list(
    State(state): State<AppState>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    answer(state, headers, move |state, headers| {
        let (account, token) = authorize(state, headers, None, &account_id)?;
        let conference = state.service.conference(account, &id)?;
        let realtime = state.service.realtime(&conference);
        let list = realtime
            .participants
            .iter()
            .map(|p| render(&conference, p))
            .collect();
        Ok((StatusCode::OK, Value::Array(list), token_extra(token)))
    })
    .await
}

/// `PUT …/participants`: joins a plain-RTP caller when `data.sdp` is given (201 with the
/// answer), otherwise applies `data.action` to everyone.
pub(crate) async fn join_or_act(
    State(state): State<AppState>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(state, headers, move |state, headers| {
        let Authorized {
            account,
            token,
            envelope,
            data,
        } = authorize_body(state, headers, &body, &account_id)?;
        if let Some(offer) = data.get("sdp") {
            let offer = offer
                .as_str()
                .ok_or_else(|| KazooError::InvalidRequest("\"sdp\" must be a string".into()))?;
            let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
            let request = JoinRequest {
                offer: offer.to_owned(),
                moderator: data
                    .get("moderator")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                caller_id_name: text("caller_id_name"),
                caller_id_number: text("caller_id_number"),
                latching: data.get("latching").and_then(Value::as_bool),
                pin: text("pin"),
                ..JoinRequest::default()
            };
            let (participant, sdp) = state.service.join(account, &id, &request)?;
            let conference = state.service.conference(account, &id)?;
            let mut rendered = render(&conference, &participant);
            if let Value::Object(map) = &mut rendered {
                map.insert("sdp".into(), json!(sdp));
            }
            return Ok((StatusCode::CREATED, rendered, token_extra(token)));
        }
        let name = action_name(&envelope, &data)?;
        let conference = state.service.conference(account, &id)?;
        if name == "relate" {
            let (participant, other, relationship) = relate_arguments(&data)?;
            state
                .service
                .relate(&conference, participant, other, relationship)?;
        } else {
            let action = participant_action(&name, &data)?;
            state.service.act_on_all(&conference, &action)?;
        }
        Ok((
            StatusCode::ACCEPTED,
            json!({"action": data.get("action").or(envelope.get("action"))}),
            token_extra(token),
        ))
    })
    .await
}

/// `GET …/participants/{participant_id}`.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Path((account_id, id, pid)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    answer(state, headers, move |state, headers| {
        let (account, token) = authorize(state, headers, None, &account_id)?;
        let conference = state.service.conference(account, &id)?;
        let participant = state
            .service
            .participant(&conference, participant_id(&pid)?)?;
        Ok((
            StatusCode::OK,
            render(&conference, &participant),
            token_extra(token),
        ))
    })
    .await
}

/// `PUT …/participants/{participant_id}`: `mute`, `unmute`, `deaf`, `undeaf`, `kick`, `play`.
pub(crate) async fn act(
    State(state): State<AppState>,
    Path((account_id, id, pid)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(state, headers, move |state, headers| {
        let Authorized {
            account,
            token,
            envelope,
            data,
        } = authorize_body(state, headers, &body, &account_id)?;
        let name = action_name(&envelope, &data)?;
        let action = participant_action(&name, &data)?;
        let conference = state.service.conference(account, &id)?;
        state
            .service
            .act_on_participant(&conference, participant_id(&pid)?, &action)?;
        Ok((
            StatusCode::ACCEPTED,
            json!({"action": name, "participant_id": pid}),
            token_extra(token),
        ))
    })
    .await
}
