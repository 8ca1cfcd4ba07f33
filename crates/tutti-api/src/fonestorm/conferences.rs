//! `/v2/conferences[/{id}]`: scheduled conferences.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use tutti_conference::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

use super::auth::account;
use super::body::Fields;
use super::render::{self, document_fields};
use super::{answer, FoneError};
use crate::AppState;

/// `GET /v2/conferences`: `{"conferences":[…]}`, every conference of the account. With `page`
/// (from 1) or `page_size` (1 to 500, default 50) only that page, and `page`, `page_size` and
/// `total` beside the list.
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    answer(state, move |service| {
        let account = account(service, &headers)?;
        let paging = paging(&query)?;
        let conferences = service.all_conferences(account)?;
        let total = conferences.len();
        let rows = |list: &[tutti_conference::Conference]| -> Vec<Value> {
            list.iter()
                .map(|c| render::conference(service, c))
                .collect()
        };
        let body = match paging {
            None => json!({"conferences": rows(&conferences)}),
            Some((page, page_size)) => {
                let start = (page - 1).saturating_mul(page_size).min(total);
                let end = start.saturating_add(page_size).min(total);
                json!({
                    "conferences": rows(&conferences[start..end]),
                    "page": page,
                    "page_size": page_size,
                    "total": total,
                })
            }
        };
        Ok((StatusCode::OK, body))
    })
    .await
}

/// `page` and `page_size` when either is given.
fn paging(query: &HashMap<String, String>) -> Result<Option<(usize, usize)>, FoneError> {
    let number = |key: &str, max: usize| -> Result<Option<usize>, FoneError> {
        query
            .get(key)
            .map(|text| {
                text.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        FoneError::InvalidRequest(format!(
                            "{key} must be a whole number from 1 to {max}, not {text:?}"
                        ))
                    })
            })
            .transpose()
    };
    let page = number("page", usize::MAX)?;
    let page_size = number("page_size", MAX_PAGE_SIZE)?;
    Ok((page.is_some() || page_size.is_some())
        .then(|| (page.unwrap_or(1), page_size.unwrap_or(DEFAULT_PAGE_SIZE))))
}

/// `POST /v2/conferences`: 201 `{"conference":{"id","conference_pin"}}`.
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Fields(fields): Fields,
) -> Response {
    answer(state, move |service| {
        let account = account(service, &headers)?;
        let mut document = document_fields(&fields, false)?;
        // FoneStorm's attendees speak as they join (Kazoo's members join muted).
        document.insert("member".into(), json!({"join_muted": false}));
        let conference = service.create_conference(account, &Value::Object(document))?;
        Ok((
            StatusCode::CREATED,
            json!({"conference": {
                "id": render::id(&conference),
                "conference_pin": conference.state.pin,
            }}),
        ))
    })
    .await
}

/// `GET /v2/conferences/{id}`: `{"conference":{…}}` with who is connected now.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(state, move |service| {
        let account = account(service, &headers)?;
        let conference = service.conference(account, &id)?;
        Ok((
            StatusCode::OK,
            json!({"conference": render::conference(service, &conference)}),
        ))
    })
    .await
}

/// `PUT /v2/conferences/{id}`: changes the fields given (`null` or an empty form value clears
/// one), keeps the rest, and answers the conference.
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Fields(fields): Fields,
) -> Response {
    answer(state, move |service| {
        let account = account(service, &headers)?;
        let patch = document_fields(&fields, true)?;
        let conference = service.patch_conference(account, &id, &Value::Object(patch))?;
        Ok((
            StatusCode::OK,
            json!({"conference": render::conference(service, &conference)}),
        ))
    })
    .await
}

/// `DELETE /v2/conferences/{id}`: ends the conference (everyone is removed) and deletes it;
/// `{"conference":{"id"}}`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(state, move |service| {
        let account = account(service, &headers)?;
        let conference = service.delete_conference(account, &id)?;
        Ok((
            StatusCode::OK,
            json!({"conference": {"id": render::id(&conference)}}),
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn paging_is_optional_and_bounded() {
        assert_eq!(paging(&query(&[])).unwrap(), None);
        assert_eq!(paging(&query(&[("page", "2")])).unwrap(), Some((2, 50)));
        assert_eq!(
            paging(&query(&[("page_size", "10")])).unwrap(),
            Some((1, 10))
        );
        for bad in [("page", "0"), ("page_size", "501"), ("page_size", "x")] {
            assert!(paging(&query(&[bad])).is_err(), "{bad:?}");
        }
    }
}
