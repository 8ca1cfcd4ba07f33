//! `/v1.0/conferences`: create, list, get, replace, delete (terminate) and recording control.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{answer, json_body, page, page_size, render, Body, QueryParams, VoipbinError};
use crate::AppState;

/// The fields a client may set on create (`type` only then) and replace.
const CREATE_FIELDS: [&str; 9] = [
    "type",
    "conference_numbers",
    "pins",
    "name",
    "detail",
    "timeout",
    "data",
    "pre_actions",
    "post_actions",
];
/// What `PUT` replaces.
const REPLACE_FIELDS: [&str; 8] = [
    "conference_numbers",
    "pins",
    "name",
    "detail",
    "timeout",
    "data",
    "pre_actions",
    "post_actions",
];

fn conference_error(error: tutti_conference::ServiceError) -> VoipbinError {
    VoipbinError::from_service("CONFERENCE", error)
}

/// A conference of the account as it is now, rendered.
fn current(state: &AppState, account: Uuid, id: &str) -> Result<Value, VoipbinError> {
    let conference = state
        .service
        .conference(account, id)
        .map_err(conference_error)?;
    Ok(render::conference(&state.service, &conference))
}

/// Gives every action an `id` and links each to the next with `next_id`, as VoIPbin does.
fn number_actions(body: &mut Map<String, Value>) {
    for key in ["pre_actions", "post_actions"] {
        let Some(Value::Array(actions)) = body.get_mut(key) else {
            continue;
        };
        for action in actions.iter_mut() {
            if let Value::Object(action) = action {
                action.entry("id").or_insert_with(|| json!(Uuid::new_v4()));
            }
        }
        let ids: Vec<Value> = actions.iter().map(|a| a["id"].clone()).collect();
        for (index, action) in actions.iter_mut().enumerate() {
            if let Value::Object(action) = action {
                let next = ids
                    .get(index + 1)
                    .cloned()
                    .unwrap_or_else(|| json!("00000000-0000-0000-0000-000000000000"));
                action.entry("next_id").or_insert(next);
                action.entry("option").or_insert_with(|| json!({}));
            }
        }
    }
}

/// tutti's extension `pins` (`{"member":[…],"moderator":[…]}`) as the document keeps them:
/// `member.pins` and `moderator.pins`, as the Kazoo face does. When `replacing`, a role left
/// out loses its PINs.
fn move_pins(document: &mut Map<String, Value>, replacing: bool) -> Result<(), VoipbinError> {
    let pins = match document.remove("pins") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(pins)) => pins,
        Some(_) => {
            return Err(VoipbinError::InvalidArgument(
                "pins: an object {\"member\":[…],\"moderator\":[…]}".into(),
            ))
        }
    };
    if let Some(other) = pins
        .keys()
        .find(|k| !["member", "moderator"].contains(&k.as_str()))
    {
        return Err(VoipbinError::InvalidArgument(format!(
            "pins: {other:?} is not a role (member, moderator)"
        )));
    }
    for role in ["member", "moderator"] {
        let given = pins.get(role).cloned();
        if given.is_some() || replacing {
            let entry = document.entry(role).or_insert_with(|| json!({}));
            entry["pins"] = given.unwrap_or(Value::Null);
        }
    }
    Ok(())
}

/// The document fields of a request body: `allowed` keys only; `name` defaults to empty.
fn document_of(mut body: Map<String, Value>, allowed: &[&str]) -> Map<String, Value> {
    body.retain(|key, _| allowed.contains(&key.as_str()));
    // An empty name is VoIPbin's default; the shared schema wants none rather than "".
    if body.get("name").and_then(Value::as_str) == Some("") {
        body.remove("name");
    }
    number_actions(&mut body);
    body
}

/// `POST /v1.0/conferences`.
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
    body: Body,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let document = document_of(json_body(&body)?, &CREATE_FIELDS);
        let mut document = Value::Object(document);
        if document.get("type").is_none() {
            document["type"] = json!("conference");
        }
        // VoIPbin's callers speak as they join (Kazoo's members join muted).
        document["member"] = json!({"join_muted": false});
        if let Value::Object(fields) = &mut document {
            move_pins(fields, false)?;
        }
        let created = state
            .service
            .create_conference(account, &document)
            .map_err(conference_error)?;
        Ok(render::conference(&state.service, &created))
    })
    .await
}

/// `GET /v1.0/conferences`: newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    answer(state, headers, params, move |state, account, params| {
        let (rows, next) = state
            .service
            .list_conferences_newest(account, params.page_token.as_deref(), page_size(params))
            .map_err(conference_error)?;
        let result = rows
            .iter()
            .map(|c| render::conference(&state.service, c))
            .collect();
        Ok(page(result, next))
    })
    .await
}

/// `GET /v1.0/conferences/{id}`.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        current(state, account, &id)
    })
    .await
}

/// `PUT /v1.0/conferences/{id}`: replaces name, detail, data, timeout and the actions.
pub(crate) async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryParams,
    body: Body,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let given = document_of(json_body(&body)?, &REPLACE_FIELDS);
        // Every replaceable field is replaced: the ones not given are removed.
        let mut patch = Map::new();
        for key in REPLACE_FIELDS {
            patch.insert(
                key.to_owned(),
                given.get(key).cloned().unwrap_or(Value::Null),
            );
        }
        move_pins(&mut patch, true)?;
        let updated = state
            .service
            .patch_conference(account, &id, &Value::Object(patch))
            .map_err(conference_error)?;
        Ok(render::conference(&state.service, &updated))
    })
    .await
}

/// `DELETE /v1.0/conferences/{id}`: the conference is terminating (everyone is removed) and
/// then terminated; it stays readable.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let ended = state
            .service
            .terminate(account, &id)
            .map_err(conference_error)?;
        Ok(render::conference(&state.service, &ended))
    })
    .await
}

/// `POST /v1.0/conferences/{id}/recording_start` with `{format: "wav", duration}`.
pub(crate) async fn recording_start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryParams,
    body: Body,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let body = json_body(&body)?;
        match body.get("format") {
            None => {}
            Some(Value::String(format)) if format == "wav" => {}
            Some(other) => {
                return Err(VoipbinError::InvalidArgument(format!(
                    "format: only \"wav\" is offered, not {other}"
                )))
            }
        }
        let duration = match body.get("duration") {
            None | Some(Value::Null) => 0,
            Some(value) => value.as_u64().ok_or_else(|| {
                VoipbinError::InvalidArgument(
                    "duration: a whole number of seconds (0 for no limit)".into(),
                )
            })?,
        };
        let conference = state
            .service
            .conference(account, &id)
            .map_err(conference_error)?;
        state
            .service
            .start_recording(&conference, duration)
            .map_err(conference_error)?;
        current(state, account, &id)
    })
    .await
}

/// `POST /v1.0/conferences/{id}/recording_stop`.
pub(crate) async fn recording_stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let conference = state
            .service
            .conference(account, &id)
            .map_err(conference_error)?;
        state
            .service
            .stop_recording(&conference)
            .map_err(conference_error)?;
        current(state, account, &id)
    })
    .await
}
