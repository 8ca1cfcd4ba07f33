//! Validation of the fields the VoIPbin and FoneStorm faces add to a conference document:
//! `type`, `detail`, `timeout`, `data`, `pre_actions`, `post_actions` (VoIPbin) and
//! `start_time`, `end_time`, `organizer`, `attendees`, `caller_id`, `callback_url`
//! (FoneStorm). Errors use the same `{field: {rule: {message, …}}}` shape as the rest.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::outbound::OutboundPolicy;
use crate::schema::ValidationErrors;
use crate::MediaPlane;

/// Conference types: `conference` (everyone hears everyone) and `connect` (two parties: when
/// one leaves, the other is removed).
pub const CONFERENCE_TYPES: [&str; 2] = ["conference", "connect"];
/// Action types of `pre_actions` and `post_actions`.
pub const ACTION_TYPES: [&str; 4] = ["talk", "play", "sleep", "hangup"];
/// Longest `sleep` action, milliseconds.
pub const MAX_SLEEP_MS: i64 = 600_000;
/// Longest `talk` text, characters.
pub const MAX_TALK_CHARS: usize = 4096;
/// Longest `timeout`, seconds: ten years of 365 days. Beyond it a conference would outlive
/// any server it runs on; refusing it keeps every deadline far from overflowing.
pub const MAX_TIMEOUT_SECONDS: i64 = 10 * 365 * 86_400;
/// Earliest `start_time` or `end_time`: 2000-01-01T00:00:00Z.
pub const MIN_TIME: i64 = 946_684_800;
/// Latest `start_time` or `end_time`: 2100-12-31T23:59:59Z.
pub const MAX_TIME: i64 = 4_133_980_799;

fn fail(errors: &mut ValidationErrors, path: &[&str], rule: &str, message: String, value: &Value) {
    errors.add(path, rule, json!({"message": message, "value": value}));
}

/// Parses a time given as RFC 3339 text or Unix seconds.
pub fn parse_time(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(text) => match text.trim().parse::<i64>() {
            Ok(seconds) => Some(seconds),
            Err(_) => OffsetDateTime::parse(text.trim(), &Rfc3339)
                .ok()
                .map(OffsetDateTime::unix_timestamp),
        },
        _ => None,
    }
}

/// Unix seconds as RFC 3339 in UTC (`2026-11-23T16:00:00Z`).
pub fn format_time(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Checks one of the extra fields; returns false when `key` is not one of them.
pub(crate) fn check_field(
    errors: &mut ValidationErrors,
    key: &str,
    value: &Value,
    media: &dyn MediaPlane,
    outbound: &OutboundPolicy,
) -> bool {
    let path = [key];
    match key {
        "type" => {
            if !value
                .as_str()
                .is_some_and(|t| CONFERENCE_TYPES.contains(&t))
            {
                fail(
                    errors,
                    &path,
                    "enum",
                    format!(
                        "Value not found in enumerated list of values: {}",
                        CONFERENCE_TYPES.join(", ")
                    ),
                    value,
                );
            }
        }
        "detail" | "organizer" | "caller_id" => {
            if !value.is_string() {
                fail(
                    errors,
                    &path,
                    "type",
                    "Value did not match type(s): string".into(),
                    value,
                );
            }
        }
        "timeout" => {
            let message = format!(
                "Value must be a whole number of seconds from 0 to {MAX_TIMEOUT_SECONDS} (ten years)"
            );
            match value.as_i64() {
                Some(t) if t > MAX_TIMEOUT_SECONDS => {
                    fail(errors, &path, "maximum", message, value)
                }
                Some(t) if t >= 0 => {}
                _ => fail(errors, &path, "minimum", message, value),
            }
        }
        "data" => {
            if !value.is_object() {
                fail(
                    errors,
                    &path,
                    "type",
                    "Value did not match type(s): object".into(),
                    value,
                );
            }
        }
        "attendees" => {
            if !value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string))
            {
                fail(
                    errors,
                    &path,
                    "type",
                    "Value did not match type(s): array of strings".into(),
                    value,
                );
            }
        }
        "start_time" | "end_time" => match parse_time(value) {
            None => fail(
                errors,
                &path,
                "format",
                "Value must be an RFC 3339 date-time (2026-11-23T16:00:00Z) or Unix seconds".into(),
                value,
            ),
            Some(time) if !(MIN_TIME..=MAX_TIME).contains(&time) => fail(
                errors,
                &path,
                "range",
                format!(
                    "Value must be from {} to {}",
                    format_time(MIN_TIME),
                    format_time(MAX_TIME)
                ),
                value,
            ),
            Some(_) => {}
        },
        "callback_url" => {
            let refused = match value.as_str() {
                Some(url) => outbound.check_url(url).err().map(|e| e.to_string()),
                None => Some("not a string".into()),
            };
            if let Some(reason) = refused {
                fail(
                    errors,
                    &path,
                    "format",
                    format!(
                        "Value must be an http:// or https:// URL the server may call: {reason}"
                    ),
                    value,
                );
            }
        }
        "pre_actions" | "post_actions" => check_actions(errors, key, value, media, outbound),
        _ => return false,
    }
    true
}

/// Checks that the schedule's end comes after its start.
pub(crate) fn check_schedule(errors: &mut ValidationErrors, document: &Value) {
    let start = document.get("start_time").and_then(parse_time);
    let end = document.get("end_time").and_then(parse_time);
    if let (Some(start), Some(end)) = (start, end) {
        if end <= start {
            fail(
                errors,
                &["end_time"],
                "minimum",
                "end_time must be after start_time".into(),
                &json!(format_time(end)),
            );
        }
    }
}

/// Rewrites `start_time` and `end_time` as RFC 3339 in UTC.
pub(crate) fn normalize_times(document: &mut serde_json::Map<String, Value>) {
    for key in ["start_time", "end_time"] {
        if let Some(unix) = document.get(key).and_then(parse_time) {
            document.insert(key.to_owned(), json!(format_time(unix)));
        }
    }
}

fn check_actions(
    errors: &mut ValidationErrors,
    key: &str,
    value: &Value,
    media: &dyn MediaPlane,
    outbound: &OutboundPolicy,
) {
    let Some(actions) = value.as_array() else {
        return fail(
            errors,
            &[key],
            "type",
            "Value did not match type(s): array".into(),
            value,
        );
    };
    for (index, action) in actions.iter().enumerate() {
        let index = index.to_string();
        let path = [key, index.as_str()];
        let Some(kind) = action.get("type").and_then(Value::as_str) else {
            fail(
                errors,
                &path,
                "required",
                format!(
                    "Each action needs a type: one of {}",
                    ACTION_TYPES.join(", ")
                ),
                action,
            );
            continue;
        };
        let option = action.get("option").cloned().unwrap_or_else(|| json!({}));
        match kind {
            "talk" => {
                let text = option.get("text").and_then(Value::as_str).unwrap_or("");
                if text.trim().is_empty() || text.chars().count() > MAX_TALK_CHARS {
                    fail(
                        errors,
                        &path,
                        "option",
                        format!("talk needs option.text, 1 to {MAX_TALK_CHARS} characters"),
                        action,
                    );
                } else if !media.can_speak() {
                    fail(errors, &path, "unsupported", "talk needs a speech engine (espeak-ng), which is not installed on this server".into(), action);
                }
                let gender = option
                    .get("gender")
                    .and_then(Value::as_str)
                    .unwrap_or("female");
                if !["male", "female", "neutral"].contains(&gender) {
                    fail(
                        errors,
                        &path,
                        "option",
                        "talk option.gender must be male, female or neutral".into(),
                        action,
                    );
                }
            }
            "play" => {
                let urls = option.get("stream_urls").and_then(Value::as_array);
                let valid = urls.is_some_and(|urls| {
                    !urls.is_empty()
                        && urls
                            .iter()
                            .all(|u| u.as_str().is_some_and(|u| !u.trim().is_empty()))
                });
                if !valid {
                    fail(
                        errors,
                        &path,
                        "option",
                        "play needs option.stream_urls: a non-empty list of media files or URLs"
                            .into(),
                        action,
                    );
                }
                for (i, url) in urls.into_iter().flatten().enumerate() {
                    if let Some(url) = url.as_str() {
                        let i = i.to_string();
                        let at = [key, index.as_str(), "option", "stream_urls", i.as_str()];
                        crate::schema::check_media(errors, &at, url, outbound);
                    }
                }
            }
            "sleep" => {
                if !option
                    .get("duration")
                    .and_then(Value::as_i64)
                    .is_some_and(|d| (0..=MAX_SLEEP_MS).contains(&d))
                {
                    fail(
                        errors,
                        &path,
                        "option",
                        format!("sleep needs option.duration in milliseconds, 0 to {MAX_SLEEP_MS}"),
                        action,
                    );
                }
            }
            "hangup" => {}
            other => fail(
                errors,
                &path,
                "enum",
                format!(
                    "Unknown action type {other:?}: expected one of {}",
                    ACTION_TYPES.join(", ")
                ),
                action,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_from_text_and_seconds() {
        assert_eq!(parse_time(&json!("1970-01-01T00:01:00Z")), Some(60));
        assert_eq!(
            parse_time(&json!("2026-11-23T16:00:00+01:00")),
            Some(1_795_446_000)
        );
        assert_eq!(parse_time(&json!(90)), Some(90));
        assert_eq!(parse_time(&json!("90")), Some(90));
        assert_eq!(parse_time(&json!("tomorrow")), None);
        assert_eq!(format_time(1_795_446_000), "2026-11-23T15:00:00Z");
    }

    #[test]
    fn timeouts_and_times_stay_in_range() {
        let rules = |key: &str, value: Value| {
            let mut errors = ValidationErrors::default();
            assert!(check_field(
                &mut errors,
                key,
                &value,
                &crate::tests::FakeMedia,
                &OutboundPolicy::default(),
            ));
            errors
                .0
                .get(key)
                .and_then(Value::as_object)
                .map(|rules| rules.keys().cloned().collect::<Vec<_>>())
        };
        assert_eq!(rules("timeout", json!(0)), None);
        assert_eq!(rules("timeout", json!(MAX_TIMEOUT_SECONDS)), None);
        assert_eq!(
            rules("timeout", json!(MAX_TIMEOUT_SECONDS + 1)),
            Some(vec!["maximum".to_owned()])
        );
        assert_eq!(
            rules("timeout", json!(i64::MAX)),
            Some(vec!["maximum".to_owned()])
        );
        assert_eq!(
            rules("timeout", json!(u64::MAX)),
            Some(vec!["minimum".to_owned()])
        );
        assert_eq!(
            rules("timeout", json!(-1)),
            Some(vec!["minimum".to_owned()])
        );
        assert_eq!(
            rules("timeout", json!(1.5)),
            Some(vec!["minimum".to_owned()])
        );
        assert_eq!(rules("end_time", json!("2100-12-31T23:59:59Z")), None);
        assert_eq!(rules("end_time", json!(MIN_TIME)), None);
        for absurd in [
            json!("2101-01-01T00:00:00Z"),
            json!("1999-12-31T23:59:59Z"),
            json!(i64::MAX),
            json!("-5"),
            json!(99_999_999_999_i64),
        ] {
            assert_eq!(
                rules("start_time", absurd.clone()),
                Some(vec!["range".to_owned()]),
                "{absurd}"
            );
        }
        assert_eq!(format_time(MIN_TIME), "2000-01-01T00:00:00Z");
        assert_eq!(format_time(MAX_TIME), "2100-12-31T23:59:59Z");
    }

    #[test]
    fn callback_urls_and_stream_urls_follow_the_outbound_rule() {
        let check = |document: Value| {
            crate::schema::validate_conference(
                &document,
                &crate::tests::FakeMedia,
                &OutboundPolicy::default(),
            )
            .err()
            .map(|e| Value::Object(e.0))
        };
        assert_eq!(
            check(json!({"callback_url": "https://example.com/cb"})),
            None
        );
        for url in [
            "ftp://example.com",
            "http://127.0.0.1:9/x",
            "http://user:pass@example.com/",
            "http://[::1]/",
        ] {
            let errors = check(json!({"callback_url": url})).unwrap();
            assert!(
                errors["callback_url"]["format"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Value must be an http:// or https:// URL the server may call"),
                "{url}: {errors}"
            );
        }
        let play = |urls: Value| json!({"pre_actions": [{"type": "play", "option": {"stream_urls": urls}}]});
        assert_eq!(
            check(play(json!(["welcome.wav", "https://example.com/a.wav"]))),
            None
        );
        let errors = check(play(json!([
            "ok.wav",
            "/etc/passwd",
            "http://169.254.169.254/"
        ])))
        .unwrap();
        let urls = &errors["pre_actions"]["0"]["option"]["stream_urls"];
        assert!(urls.get("0").is_none(), "{errors}");
        assert!(urls["1"]["format"]["message"].is_string(), "{errors}");
        assert!(
            urls["2"]["format"]["message"]
                .as_str()
                .unwrap()
                .contains("link-local"),
            "{errors}"
        );
    }
}
