//! `/v1.0/customer`: the account as VoIPbin's customer, and where its webhooks go.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{answer, json_body, render, Body, QueryParams, VoipbinError};
use crate::AppState;

fn customer(state: &AppState, account: Uuid) -> Result<Value, VoipbinError> {
    let error = |e| VoipbinError::from_service("CUSTOMER", e);
    let record = state.service.account(account).map_err(error)?;
    let webhook = state.service.webhook(account).map_err(error)?;
    let (uri, secret) = webhook.unwrap_or_default();
    Ok(json!({
        "id": record.id,
        "name": record.name,
        "webhook_method": if uri.is_empty() { "" } else { "POST" },
        "webhook_uri": uri,
        "webhook_secret": secret,
        "tm_create": render::timestamp(record.created),
        "tm_update": render::timestamp(record.created),
        "tm_delete": render::NOT_YET,
    }))
}

/// `GET /v1.0/customer`.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    answer(state, headers, params, |state, account, _| {
        customer(state, account)
    })
    .await
}

/// `PUT /v1.0/customer` with `{webhook_method: "POST", webhook_uri}`: where the account's
/// webhooks go (an empty URI stops them). The answer carries `webhook_secret`, which signs
/// every delivery (see the webhooks module).
pub(crate) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
    body: Body,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let body = json_body(&body)?;
        if let Some(method) = body.get("webhook_method").and_then(Value::as_str) {
            if !method.is_empty() && !method.eq_ignore_ascii_case("POST") {
                return Err(VoipbinError::InvalidArgument(format!(
                    "webhook_method: only POST is offered, not {method:?}"
                )));
            }
        }
        let uri = match body.get("webhook_uri") {
            None => None,
            Some(Value::String(uri)) if uri.is_empty() => Some(None),
            Some(Value::String(uri)) => {
                state
                    .service
                    .outbound()
                    .check_url(uri)
                    .map_err(|e| VoipbinError::InvalidArgument(format!("webhook_uri: {e}")))?;
                Some(Some(uri.clone()))
            }
            Some(_) => {
                return Err(VoipbinError::InvalidArgument(
                    "webhook_uri: a string".into(),
                ))
            }
        };
        if let Some(uri) = uri {
            state
                .service
                .set_webhook(account, uri.as_deref())
                .map_err(|e| VoipbinError::from_service("CUSTOMER", e))?;
        }
        customer(state, account)
    })
    .await
}
