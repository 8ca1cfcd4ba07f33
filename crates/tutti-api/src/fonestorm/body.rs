//! Request bodies: a JSON object or a form, read into one JSON object of fields (the form
//! rules are in the module guide of [`super`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::FoneError;
use crate::request::BodyError;

/// Fields whose form values are lists.
const LIST_FIELDS: [&str; 1] = ["attendees"];
/// Fields whose form values are integers.
const INTEGER_FIELDS: [&str; 2] = ["max_members", "expires"];

/// A request's fields, whichever way they came.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Fields(pub(crate) Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = FoneError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let essence = content_type
            .as_deref()
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_ascii_lowercase());
        match essence.as_deref() {
            Some("application/x-www-form-urlencoded") => {
                from_form(form_pairs(&body(request, state).await?)?).map(Fields)
            }
            None | Some("") => from_json(&body(request, state).await?).map(Fields),
            Some(essence) if essence == "application/json" || essence.ends_with("+json") => {
                from_json(&body(request, state).await?).map(Fields)
            }
            Some(_) => Err(FoneError::UnsupportedMediaType(
                content_type.unwrap_or_default(),
            )),
        }
    }
}

async fn body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, FoneError> {
    let body = Bytes::from_request(request, state).await;
    // The error, when axum could not read the body.
    crate::request::bytes(&body)?;
    Ok(body.unwrap_or_default())
}

impl From<BodyError> for FoneError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => FoneError::TooLarge,
            BodyError::Invalid(reason) => FoneError::InvalidRequest(reason),
        }
    }
}

/// A form body's name/value pairs, `+` read as a space and percent-escapes decoded; refused
/// when the body or a decoded name or value is not UTF-8 (rather than read with
/// replacement characters).
pub(crate) fn form_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, FoneError> {
    let text = crate::request::utf8(bytes)?;
    let decode = |part: &str| -> Result<String, FoneError> {
        let spaced = part.replace('+', " ");
        percent_decode_str(&spaced)
            .decode_utf8()
            .map(|decoded| decoded.into_owned())
            .map_err(|_| {
                FoneError::InvalidRequest(format!(
                    "the form field {part:?} is not valid UTF-8 once decoded"
                ))
            })
    };
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// A JSON object body (an empty body is no fields). A comma-separated string of `attendees`
/// becomes a list.
pub(crate) fn from_json(bytes: &[u8]) -> Result<Map<String, Value>, FoneError> {
    let mut fields = crate::request::json_object(bytes)?;
    for key in LIST_FIELDS {
        if let Some(Value::String(text)) = fields.get(key) {
            let items = split_list(text);
            fields.insert(key.to_owned(), Value::Array(items));
        }
    }
    Ok(fields)
}

/// Form pairs as fields: list fields gather every `name`, `name[]` and `name[N]` value (each
/// comma-separated), integer fields become numbers when they read as one, an empty value is
/// `null`, and any other field given twice is refused.
pub(crate) fn from_form(pairs: Vec<(String, String)>) -> Result<Map<String, Value>, FoneError> {
    let mut fields = Map::new();
    for (key, value) in pairs {
        if let Some(list) = LIST_FIELDS.iter().find(|name| is_list_key(&key, name)) {
            let entry = fields
                .entry((*list).to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = entry {
                items.extend(split_list(&value));
            }
            continue;
        }
        if fields.contains_key(&key) {
            return Err(FoneError::InvalidRequest(format!(
                "the form gives {key} more than once"
            )));
        }
        let value = if value.is_empty() {
            Value::Null
        } else if INTEGER_FIELDS.contains(&key.as_str()) {
            value
                .trim()
                .parse::<i64>()
                .map_or(Value::String(value), Value::from)
        } else {
            Value::String(value)
        };
        fields.insert(key, value);
    }
    Ok(fields)
}

/// `name`, `name[]` or `name[N]`.
fn is_list_key(key: &str, name: &str) -> bool {
    let Some(rest) = key.strip_prefix(name) else {
        return false;
    };
    rest.is_empty()
        || rest
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|index| index.bytes().all(|b| b.is_ascii_digit()))
}

/// `a, b,,c` → `["a", "b", "c"]`.
fn split_list(text: &str) -> Vec<Value> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| Value::String(item.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn form_lists_gather_every_spelling() {
        let fields = from_form(pairs(&[
            ("attendees", "a"),
            ("attendees[]", "b, c"),
            ("attendees[2]", "d"),
            ("label", "Standup"),
            ("max_members", "10"),
            ("caller_id", ""),
        ]))
        .unwrap();
        assert_eq!(
            Value::Object(fields),
            json!({"attendees": ["a", "b", "c", "d"], "label": "Standup", "max_members": 10, "caller_id": null})
        );
        let empty = from_form(pairs(&[("attendees", "")])).unwrap();
        assert_eq!(empty["attendees"], json!([]));
        let kept = from_form(pairs(&[("max_members", "many")])).unwrap();
        assert_eq!(
            kept["max_members"],
            json!("many"),
            "the domain names the type error"
        );
        assert!(matches!(
            from_form(pairs(&[("label", "a"), ("label", "b")])),
            Err(FoneError::InvalidRequest(_))
        ));
        assert!(!is_list_key("attendees[x]", "attendees"));
        assert!(!is_list_key("attendeesx", "attendees"));
    }

    #[test]
    fn forms_decode_strictly() {
        assert_eq!(
            form_pairs(b"label=Board+meeting&attendees=ann%2Cbob&caller_id=&flag").unwrap(),
            pairs(&[
                ("label", "Board meeting"),
                ("attendees", "ann,bob"),
                ("caller_id", ""),
                ("flag", ""),
            ])
        );
        assert_eq!(
            form_pairs("label=%E2%82%AC+%C3%A9t%C3%A9".as_bytes()).unwrap(),
            pairs(&[("label", "€ été")])
        );
        for bad in [&b"label=%FF"[..], b"label=\xff", b"%C3=x"] {
            assert!(
                matches!(form_pairs(bad), Err(FoneError::InvalidRequest(m)) if m.contains("UTF-8")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn json_bodies_are_objects() {
        assert_eq!(from_json(b"  ").unwrap(), Map::new());
        assert_eq!(
            Value::Object(from_json(br#"{"attendees":"a, b"}"#).unwrap()),
            json!({"attendees": ["a", "b"]})
        );
        assert!(matches!(
            from_json(b"[1]"),
            Err(FoneError::InvalidRequest(_))
        ));
        assert!(matches!(from_json(b"{"), Err(FoneError::InvalidRequest(_))));
    }
}
