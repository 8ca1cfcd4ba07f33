//! `/v2/accounts/{account_id}/conferences[/{conference_id}]`: the conference documents.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use tutti_conference::Conference;

use super::auth::{authorize, authorize_body, Authorized};
use super::envelope::{envelope, request_id, success, Body, Extra, KazooError};
use crate::AppState;

/// A conference as the Kazoo face shows it: the document, its id as 32 hex digits, `focus`
/// (the cluster node running its room, when it runs in a cluster), and the realtime
/// `_read_only` block.
fn render(state: &AppState, conference: &Conference) -> Value {
    let realtime = state.service.realtime(conference);
    let mut document = conference.document.clone();
    if let Value::Object(map) = &mut document {
        map.insert("id".into(), json!(conference.id.simple().to_string()));
        if let Some(focus) = state.service.focus(conference.id) {
            map.insert("focus".into(), json!(focus));
        }
        map.insert(
            "_read_only".into(),
            json!({
                "members": realtime.members,
                "admins": realtime.admins,
                "duration": realtime.duration,
                "is_locked": realtime.is_locked,
                "participants": realtime.participants.iter().map(|p| super::participants::render(conference, p)).collect::<Vec<_>>(),
            }),
        );
    }
    document
}

fn revision(conference: &Conference) -> Option<String> {
    Some(format!(
        "{}-{:08x}",
        conference.revision, conference.modified
    ))
}

/// Runs `f` on the blocking pool (the service talks to the store synchronously, so async
/// workers never wait on the disk) and renders its outcome.
pub(crate) async fn answer(
    state: AppState,
    headers: HeaderMap,
    f: impl FnOnce(&AppState, &HeaderMap) -> Result<(StatusCode, Value, Extra), KazooError>
        + Send
        + 'static,
) -> Response {
    let request_id = request_id(&headers);
    let for_blocking = state.clone();
    let outcome = tokio::task::spawn_blocking(move || f(&for_blocking, &headers))
        .await
        .unwrap_or(Err(KazooError::Internal));
    match outcome {
        Ok((status, data, extra)) => success(&state, status, &request_id, data, extra),
        Err(error) => error.into_response_with(&request_id),
    }
}

/// A conference document as the answer, with its revision and the caller's token.
fn document_answer(
    state: &AppState,
    conference: &Conference,
    token: String,
    status: StatusCode,
) -> (StatusCode, Value, Extra) {
    let extra = Extra {
        revision: revision(conference),
        ..token_extra(token)
    };
    (status, render(state, conference), extra)
}

pub(crate) fn token_extra(token: String) -> Extra {
    Extra {
        auth_token: Some(token),
        ..Extra::default()
    }
}

/// `GET …/conferences`: paged with `page_size` and `start_key`; `paginate=false` returns all.
pub(crate) async fn list(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    answer(state, headers, move |state, headers| {
        let (account, token) = authorize(state, headers, None, &account_id)?;
        let mut extra = token_extra(token);
        let conferences = if query.get("paginate").is_some_and(|p| p == "false") {
            state.service.all_conferences(account)?
        } else {
            let page_size = match query.get("page_size") {
                Some(size) => Some(size.parse::<usize>().map_err(|_| {
                    KazooError::InvalidRequest(format!(
                        "page_size {size:?} is not a positive integer"
                    ))
                })?),
                None => None,
            };
            let start = query.get("start_key").map(String::as_str);
            let (page, next) = state.service.list_conferences(account, start, page_size)?;
            extra.fields.insert("page_size".into(), json!(page.len()));
            if let Some(start) = start {
                extra.fields.insert("start_key".into(), json!(start));
            }
            if let Some(next) = next {
                extra
                    .fields
                    .insert("next_start_key".into(), json!(next.simple().to_string()));
            }
            page
        };
        Ok((
            StatusCode::OK,
            Value::Array(conferences.iter().map(|c| render(state, c)).collect()),
            extra,
        ))
    })
    .await
}

/// `PUT …/conferences`: creates a conference (201).
pub(crate) async fn create(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(state, headers, move |state, headers| {
        let Authorized {
            account,
            token,
            data,
            ..
        } = authorize_body(state, headers, &body, &account_id)?;
        let conference = state.service.create_conference(account, &data)?;
        Ok(document_answer(
            state,
            &conference,
            token,
            StatusCode::CREATED,
        ))
    })
    .await
}

/// `GET …/conferences/{id}`.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    answer(state, headers, move |state, headers| {
        let (account, token) = authorize(state, headers, None, &account_id)?;
        let conference = state.service.conference(account, &id)?;
        Ok(document_answer(state, &conference, token, StatusCode::OK))
    })
    .await
}

/// `POST …/conferences/{id}`: replaces the document, then validates.
pub(crate) async fn replace(
    State(state): State<AppState>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(state, headers, move |state, headers| {
        let Authorized {
            account,
            token,
            data,
            ..
        } = authorize_body(state, headers, &body, &account_id)?;
        let conference = state.service.replace_conference(account, &id, &data)?;
        Ok(document_answer(state, &conference, token, StatusCode::OK))
    })
    .await
}

/// `PATCH …/conferences/{id}`: merges into the document, then validates.
pub(crate) async fn patch(
    State(state): State<AppState>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(state, headers, move |state, headers| {
        let Authorized {
            account,
            token,
            data,
            ..
        } = authorize_body(state, headers, &body, &account_id)?;
        let conference = state.service.patch_conference(account, &id, &data)?;
        Ok(document_answer(state, &conference, token, StatusCode::OK))
    })
    .await
}

/// `DELETE …/conferences/{id}`: answers the deleted document.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(state, headers, move |state, headers| {
        let envelope = envelope(&body).unwrap_or_else(|_| Map::new());
        let (account, token) = authorize(state, headers, Some(&envelope), &account_id)?;
        let conference = state.service.delete_conference(account, &id)?;
        let mut data = render(state, &conference);
        if let Value::Object(map) = &mut data {
            map.insert("_read_only".into(), json!({"deleted": true}));
        }
        Ok((StatusCode::OK, data, token_extra(token)))
    })
    .await
}
