//! The conference document schema shared by every face (Kazoo's field names), its defaults,
//! and validation errors in Kazoo's shape: `{field: {rule: {message, target, value}}}`.

use serde_json::{json, Map, Value};

use crate::outbound::{media_reference, OutboundPolicy};
use crate::MediaPlane;

/// Validation failures keyed by field path, then by rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValidationErrors(pub Map<String, Value>);

impl ValidationErrors {
    /// Whether nothing failed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records a failure of `rule` at `path`.
    pub fn add(&mut self, path: &[&str], rule: &str, detail: Value) {
        let mut node = &mut self.0;
        for key in path {
            let entry = node
                .entry((*key).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Value::Object(next) = entry else { return };
            node = next;
        }
        node.insert(rule.to_owned(), detail);
    }
}

fn type_error(errors: &mut ValidationErrors, path: &[&str], types: &str, value: &Value) {
    errors.add(
        path,
        "type",
        json!({"message": format!("Value did not match type(s): {types}"), "target": types, "value": value}),
    );
}

fn check_string(
    errors: &mut ValidationErrors,
    path: &[&str],
    value: &Value,
    min: Option<usize>,
    max: Option<usize>,
) {
    let Some(text) = value.as_str() else {
        return type_error(errors, path, "string", value);
    };
    let length = text.chars().count();
    if let Some(min) = min.filter(|&m| length < m) {
        errors.add(path, "minLength", json!({"message": format!("String must be at least {min} characters"), "target": min, "cause": text, "value": text}));
    } else if let Some(max) = max.filter(|&m| length > m) {
        errors.add(path, "maxLength", json!({"message": format!("String must not be more than {max} characters"), "target": max, "cause": text, "value": text}));
    }
}

fn check_bool(errors: &mut ValidationErrors, path: &[&str], value: &Value) {
    if !value.is_boolean() {
        type_error(errors, path, "boolean", value);
    }
}

fn check_integer(
    errors: &mut ValidationErrors,
    path: &[&str],
    value: &Value,
    min: Option<i64>,
    max: Option<i64>,
) {
    let Some(number) = value.as_i64() else {
        return type_error(errors, path, "integer", value);
    };
    if let Some(min) = min.filter(|&m| number < m) {
        errors.add(path, "minimum", json!({"message": format!("Value must be at least {min}"), "target": min, "value": number}));
    } else if let Some(max) = max.filter(|&m| number > m) {
        errors.add(path, "maximum", json!({"message": format!("Value must be at most {max}"), "target": max, "value": number}));
    }
}

const DIGITS: &str = "^[0-9]+$";

fn check_digit_list(errors: &mut ValidationErrors, path: &[&str], value: &Value) {
    let Some(items) = value.as_array() else {
        return type_error(errors, path, "array", value);
    };
    let mut seen = std::collections::HashSet::new();
    for (index, item) in items.iter().enumerate() {
        let index = index.to_string();
        let mut item_path = path.to_vec();
        item_path.push(&index);
        match item.as_str() {
            Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                if !seen.insert(text) {
                    errors.add(path, "uniqueItems", json!({"message": "List of items is not unique", "value": value}));
                }
            }
            Some(text) => errors.add(&item_path, "pattern", json!({"message": format!("Failed to match pattern '{DIGITS}'"), "target": DIGITS, "value": text})),
            None => type_error(errors, &item_path, "string", item),
        }
    }
}

/// `true`, `false`, or a tone string / media reference; tone strings are checked by the media
/// plane so a broken one is refused now rather than silently at join time, and media
/// references (a URL the server may fetch, or a plain file name) by the outbound rule.
fn check_tone(
    errors: &mut ValidationErrors,
    path: &[&str],
    value: &Value,
    media: &dyn MediaPlane,
    outbound: &OutboundPolicy,
) {
    match value {
        Value::Bool(_) => {}
        Value::String(text) if text.is_empty() => errors.add(path, "minLength", json!({"message": "String must be at least 1 characters", "target": 1, "cause": text, "value": text})),
        Value::String(text) if text.starts_with("tone_stream://") => {
            if let Err(error) = media.check_tone(text) {
                errors.add(path, "tone_stream", json!({"message": error, "value": text}));
            }
        }
        Value::String(text) => check_media(errors, path, text, outbound),
        other => type_error(errors, path, "boolean, string", other),
    }
}

/// Refuses `text` at `path` unless it names media the server may play: a tone string, an
/// `http(s)` URL the outbound rule lets through, or the plain name of a media file.
pub(crate) fn check_media(
    errors: &mut ValidationErrors,
    path: &[&str],
    text: &str,
    outbound: &OutboundPolicy,
) {
    if let Err(error) = media_reference(text, outbound) {
        errors.add(
            path,
            "format",
            json!({"message": format!("Value must be a tone string, an http:// or https:// URL or a media file name: {error}"), "value": text}),
        );
    }
}

const RATES: [i64; 7] = [8000, 12000, 16000, 24000, 32000, 44100, 48000];

fn check_profile(errors: &mut ValidationErrors, value: &Value) {
    let Some(profile) = value.as_object() else {
        return type_error(errors, &["profile"], "object", value);
    };
    let limits: [(&str, Option<i64>, Option<i64>); 4] = [
        ("energy-level", Some(0), Some(1800)),
        ("comfort-noise", Some(0), Some(10_000)),
        ("interval", Some(10), Some(120)),
        ("max-members", Some(2), None),
    ];
    for (key, min, max) in limits {
        if let Some(v) = profile.get(key) {
            check_integer(errors, &["profile", key], v, min, max);
        }
    }
    if let Some(rate) = profile.get("rate") {
        if !rate.as_i64().is_some_and(|r| RATES.contains(&r)) {
            errors.add(&["profile", "rate"], "enum", json!({"message": "Value not found in enumerated list of values", "target": RATES, "value": rate}));
        }
    }
}

fn check_role(errors: &mut ValidationErrors, role: &str, value: &Value) {
    let Some(object) = value.as_object() else {
        return type_error(errors, &[role], "object", value);
    };
    for key in ["join_muted", "join_deaf", "play_entry_prompt"] {
        if let Some(v) = object.get(key) {
            check_bool(errors, &[role, key], v);
        }
    }
    for key in ["numbers", "pins"] {
        if let Some(v) = object.get(key) {
            check_digit_list(errors, &[role, key], v);
        }
    }
}

/// Validates a conference document and fills in Kazoo's defaults. Unknown fields are kept, as
/// Kazoo keeps them. Read-only fields (`id`, `_read_only`, `focus`) are dropped.
pub fn validate_conference(
    document: &Value,
    media: &dyn MediaPlane,
    outbound: &OutboundPolicy,
) -> Result<Value, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let Some(object) = document.as_object() else {
        type_error(&mut errors, &["data"], "object", document);
        return Err(errors);
    };
    let mut out = object.clone();
    for read_only in ["id", "_read_only", "focus"] {
        out.remove(read_only);
    }
    for (key, value) in object {
        match key.as_str() {
            "name" => check_string(&mut errors, &["name"], value, Some(1), Some(128)),
            "owner_id" => check_string(&mut errors, &["owner_id"], value, Some(32), Some(32)),
            "conference_numbers" => check_digit_list(&mut errors, &["conference_numbers"], value),
            "member" | "moderator" => check_role(&mut errors, key, value),
            "play_entry_tone" | "play_exit_tone" => {
                check_tone(&mut errors, &[key.as_str()], value, media, outbound)
            }
            "play_name" | "play_welcome" | "require_moderator" | "wait_for_moderator" => {
                check_bool(&mut errors, &[key.as_str()], value)
            }
            "max_participants" => {
                check_integer(&mut errors, &["max_participants"], value, Some(0), None)
            }
            "max_members_media" | "language" | "bridge_username" | "bridge_password" => {
                check_string(&mut errors, &[key.as_str()], value, None, None)
            }
            "profile" => check_profile(&mut errors, value),
            other => {
                crate::fields::check_field(&mut errors, other, value, media, outbound);
            }
        }
    }
    crate::fields::check_schedule(&mut errors, document);
    if !errors.is_empty() {
        return Err(errors);
    }
    crate::fields::normalize_times(&mut out);
    // Defaults (Kazoo's schema).
    out.entry("conference_numbers").or_insert_with(|| json!([]));
    out.entry("play_name").or_insert(json!(false));
    out.entry("play_welcome").or_insert(json!(true));
    out.entry("play_entry_tone").or_insert(json!(true));
    out.entry("play_exit_tone").or_insert(json!(true));
    out.entry("require_moderator").or_insert(json!(false));
    out.entry("wait_for_moderator").or_insert(json!(false));
    out.entry("max_participants").or_insert(json!(0));
    for (role, muted) in [("member", true), ("moderator", false)] {
        let entry = out.entry(role).or_insert_with(|| json!({}));
        if let Value::Object(role) = entry {
            role.entry("join_muted").or_insert(json!(muted));
            role.entry("join_deaf").or_insert(json!(false));
            role.entry("numbers").or_insert_with(|| json!([]));
            role.entry("pins").or_insert_with(|| json!([]));
        }
    }
    let profile = out.entry("profile").or_insert_with(|| json!({}));
    if let Value::Object(profile) = profile {
        profile.entry("energy-level").or_insert(json!(20));
    }
    Ok(Value::Object(out))
}

/// The conference numbers a document claims.
pub fn conference_numbers(document: &Value) -> Vec<String> {
    document
        .get("conference_numbers")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::FakeMedia;

    #[test]
    fn defaults_are_filled_in() {
        let doc = validate_conference(
            &json!({"name": "Standup"}),
            &FakeMedia,
            &OutboundPolicy::default(),
        )
        .unwrap();
        assert_eq!(doc["member"]["join_muted"], json!(true));
        assert_eq!(doc["moderator"]["join_muted"], json!(false));
        assert_eq!(doc["profile"]["energy-level"], json!(20));
        assert_eq!(doc["conference_numbers"], json!([]));
        assert_eq!(doc["play_entry_tone"], json!(true));
        assert_eq!(doc["max_participants"], json!(0));
    }

    #[test]
    fn errors_have_kazoos_shape() {
        let long = "x".repeat(129);
        let errors = validate_conference(
            &json!({
                "name": long,
                "max_participants": -1,
                "conference_numbers": ["100", "1a", "100"],
                "profile": {"energy-level": 5000, "rate": 11025},
                "play_entry_tone": "tone_stream://%(100,abc,440)",
                "member": {"join_muted": "yes"},
            }),
            &FakeMedia,
            &OutboundPolicy::default(),
        )
        .unwrap_err();
        let e = Value::Object(errors.0);
        assert_eq!(
            e["name"]["maxLength"],
            json!({"message": "String must not be more than 128 characters", "target": 128, "cause": long, "value": long})
        );
        assert_eq!(
            e["max_participants"]["minimum"]["message"],
            json!("Value must be at least 0")
        );
        assert_eq!(
            e["conference_numbers"]["1"]["pattern"]["message"],
            json!("Failed to match pattern '^[0-9]+$'")
        );
        assert_eq!(
            e["conference_numbers"]["uniqueItems"]["message"],
            json!("List of items is not unique")
        );
        assert_eq!(
            e["profile"]["energy-level"]["maximum"]["message"],
            json!("Value must be at most 1800")
        );
        assert_eq!(
            e["profile"]["rate"]["enum"]["message"],
            json!("Value not found in enumerated list of values")
        );
        assert_eq!(
            e["play_entry_tone"]["tone_stream"]["message"],
            json!("bad tone")
        );
        assert_eq!(
            e["member"]["join_muted"]["type"]["message"],
            json!("Value did not match type(s): boolean")
        );
        assert!(
            validate_conference(&json!([1, 2]), &FakeMedia, &OutboundPolicy::default()).is_err()
        );
    }
}
