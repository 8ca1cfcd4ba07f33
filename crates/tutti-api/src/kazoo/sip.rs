//! `/v2/accounts/{account_id}/sip` (tutti's extension): the account's SIP numbers and
//! credentials, in Kazoo's envelope. `PUT` replaces each list it is given.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::auth::{authorize, authorize_body, Authorized};
use super::conferences::{answer, token_extra};
use super::envelope::Body;
use crate::sip::{directory, simple};
use crate::AppState;

/// `GET …/sip`.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(state, headers, move |state, headers| {
        let (account, token) = authorize(state, headers, None, &account_id)?;
        let found = state.service.sip_directory(account)?;
        Ok((
            StatusCode::OK,
            directory(&found, simple),
            token_extra(token),
        ))
    })
    .await
}

/// `PUT …/sip` with `{"data":{"numbers":[…],"credentials":[…]}}`.
pub(crate) async fn replace(
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
        let replaced = state.service.replace_sip_directory(account, &data)?;
        Ok((
            StatusCode::OK,
            directory(&replaced, simple),
            token_extra(token),
        ))
    })
    .await
}

/// Kazoo's conference action `dial`: `data.endpoints` (SIP URIs, as strings or
/// `{"endpoint_type":"sip","route":"sip:…"}`), `caller_id_name`, `caller_id_number`,
/// `participant_flags` (`mute`, `deaf`, `is_moderator`; others are accepted and have no
/// effect) and `timeout` (seconds), at `data` or `data.data` as Kazoo nests them. Answers
/// Kazoo's `endpoint_responses`, one per endpoint with its call id.
pub(crate) fn dial(
    state: &AppState,
    conference: &tutti_conference::Conference,
    data: &serde_json::Value,
) -> Result<serde_json::Value, super::envelope::KazooError> {
    use serde_json::{json, Value};
    use tutti_conference::ValidationErrors;

    use super::envelope::KazooError;

    if !state.service.can_dial() {
        return Err(KazooError::NotImplemented(
            "dial-out needs SIP, which is not configured".into(),
        ));
    }
    let args = data.get("data").filter(|d| d.is_object()).unwrap_or(data);
    let mut errors = ValidationErrors::default();
    let mut invalid = |path: &[&str], message: String, value: &Value| {
        errors.add(path, "format", json!({"message": message, "value": value}));
    };
    let mut targets = Vec::new();
    match args.get("endpoints") {
        Some(Value::Array(endpoints)) if !endpoints.is_empty() => {
            for (index, endpoint) in endpoints.iter().enumerate() {
                let index = index.to_string();
                let route = match endpoint {
                    Value::String(uri) => Some(uri.as_str()),
                    Value::Object(object)
                        if object.get("endpoint_type").and_then(Value::as_str) == Some("sip") =>
                    {
                        object.get("route").and_then(Value::as_str)
                    }
                    _ => None,
                };
                match route.map(|r| (r, tutti_conference::check_sip_uri(r))) {
                    Some((uri, Ok(()))) => targets.push(uri.to_owned()),
                    Some((_, Err(reason))) => invalid(&["endpoints", &index], reason, endpoint),
                    None => invalid(
                        &["endpoints", &index],
                        "an endpoint is a sip: or sips: URI, or {\"endpoint_type\":\"sip\",\"route\":\"sip:…\"}".into(),
                        endpoint,
                    ),
                }
            }
        }
        other => invalid(
            &["endpoints"],
            "dial needs a list of endpoints (sip: or sips: URIs)".into(),
            other.unwrap_or(&Value::Null),
        ),
    }
    let mut flags = Vec::new();
    match args.get("participant_flags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            flags.extend(items.iter().filter_map(Value::as_str));
        }
        Some(other) => invalid(
            &["participant_flags"],
            "a list of flags (mute, deaf, is_moderator)".into(),
            other,
        ),
    }
    let timeout = match args.get("timeout") {
        None | Some(Value::Null) => Some(tutti_conference::DEFAULT_DIAL_TIMEOUT),
        Some(value) => value
            .as_u64()
            .filter(|s| (1..=600).contains(s))
            .map(std::time::Duration::from_secs),
    };
    let text = |key: &str| args.get(key).and_then(Value::as_str).map(str::to_owned);
    let Some(timeout) = timeout else {
        invalid(&["timeout"], "seconds, 1 to 600".into(), &args["timeout"]);
        return Err(KazooError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(KazooError::Validation(errors));
    }
    let mut responses = Vec::new();
    for target in targets {
        let out = tutti_conference::DialOut {
            target: target.clone(),
            caller_id_name: text("caller_id_name"),
            caller_id_number: text("caller_id_number"),
            timeout,
            moderator: flags.contains(&"is_moderator"),
            muted: flags.contains(&"mute"),
            deaf: flags.contains(&"deaf"),
        };
        let call = state.service.dial(conference, &out)?;
        let call_id = call.id.simple().to_string();
        responses.push(json!({
            "call_id": call_id,
            "endpoint_id": target,
            "message": format!("dial resulted in call id {call_id}"),
            "status": "success",
        }));
    }
    Ok(json!({"endpoint_responses": responses}))
}
