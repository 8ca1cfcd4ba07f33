//! FoneStorm's words for a conference document, both ways: request fields to document fields,
//! and a conference to the object FoneStorm answers with.

use serde_json::{json, Map, Value};
use tutti_conference::fields::format_time;
use tutti_conference::{Conference, ConferenceService};

use super::FoneError;

/// FoneStorm's conference fields and the document fields they are stored as.
const FIELDS: [(&str, &str); 9] = [
    ("label", "name"),
    ("start_time", "start_time"),
    ("end_time", "end_time"),
    ("organizer", "organizer"),
    ("attendees", "attendees"),
    ("caller_id", "caller_id"),
    ("callback_url", "callback_url"),
    ("conference_url", "callback_url"),
    ("max_members", "max_participants"),
];

/// The FoneStorm name of a document field (for error messages).
pub(crate) fn face_field(document_field: &str) -> &str {
    match document_field {
        "name" => "label",
        "max_participants" => "max_members",
        other => other,
    }
}

/// The document fields a request's FoneStorm fields stand for; other fields are ignored.
/// `null` stays `null` (a patch removes the field with it); `keep_nulls` false drops them (a
/// new conference has nothing to remove).
pub(crate) fn document_fields(
    fields: &Map<String, Value>,
    keep_nulls: bool,
) -> Result<Map<String, Value>, FoneError> {
    if let (Some(callback), Some(conference)) =
        (fields.get("callback_url"), fields.get("conference_url"))
    {
        if callback != conference {
            return Err(FoneError::InvalidRequest(
                "callback_url and conference_url name the same field: give one of them".into(),
            ));
        }
    }
    let mut document = Map::new();
    for (face, stored) in FIELDS {
        match fields.get(face) {
            Some(Value::Null) if !keep_nulls => {}
            Some(value) => {
                document.insert(stored.to_owned(), value.clone());
            }
            None => {}
        }
    }
    Ok(document)
}

/// A conference's id as this face shows it.
pub(crate) fn id(conference: &Conference) -> String {
    conference.id.hyphenated().to_string()
}

/// A conference as FoneStorm shows it, with who is connected now.
pub(crate) fn conference(service: &ConferenceService, conference: &Conference) -> Value {
    let attendance = service.attendance(conference);
    let field = |key: &str| conference.document.get(key).cloned().unwrap_or(Value::Null);
    json!({
        "id": id(conference),
        "label": field("name"),
        "start_time": field("start_time"),
        "end_time": field("end_time"),
        "organizer": field("organizer"),
        "attendees": conference.document.get("attendees").cloned().unwrap_or_else(|| json!([])),
        "caller_id": field("caller_id"),
        "callback_url": field("callback_url"),
        "max_members": conference.document.get("max_participants").cloned().unwrap_or_else(|| json!(0)),
        "conference_pin": conference.state.pin,
        "conference_status": attendance.status.as_str(),
        "organizer_status": if attendance.organizer_connected { "connected" } else { "not_connected" },
        "attendees_status": attendance.attendees_connected,
        "created_at": format_time(conference.created),
        "updated_at": format_time(conference.modified),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_map_to_the_document_and_back() {
        let fields = json!({
            "label": "Standup",
            "conference_url": "https://example.com/cb",
            "max_members": 5,
            "organizer": null,
            "conference_pin": "123456",
            "unknown": true,
        });
        let Value::Object(fields) = fields else {
            unreachable!()
        };
        assert_eq!(
            Value::Object(document_fields(&fields, false).unwrap()),
            json!({"name": "Standup", "callback_url": "https://example.com/cb", "max_participants": 5})
        );
        assert_eq!(
            document_fields(&fields, true).unwrap()["organizer"],
            Value::Null
        );
        let mut both = fields.clone();
        both.insert("callback_url".into(), json!("https://example.com/other"));
        assert!(matches!(
            document_fields(&both, false),
            Err(FoneError::InvalidRequest(_))
        ));
        both.insert("callback_url".into(), json!("https://example.com/cb"));
        assert!(document_fields(&both, false).is_ok());
        assert_eq!(face_field("name"), "label");
        assert_eq!(face_field("max_participants"), "max_members");
        assert_eq!(face_field("end_time"), "end_time");
    }
}
