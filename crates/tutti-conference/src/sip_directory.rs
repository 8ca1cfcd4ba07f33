//! The SIP directory: each account's SIP numbers (DIDs, unique across accounts, each leading
//! to one of its conferences or to the prompt for a conference number) and its SIP
//! credentials (usernames unique across accounts, kept as digest HA1s, never as passwords).

use serde_json::{json, Value};
use sha2::Digest;
use tutti_store::{SipCredentialRecord, SipNumberRecord, StoreError};
use uuid::Uuid;

use crate::schema::ValidationErrors;
use crate::service::{ConferenceService, ServiceError};

/// The realm SIP credentials are for when the server names none.
pub const DEFAULT_SIP_REALM: &str = "tutti";

/// A SIP number of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipNumber {
    /// Digits with an optional leading `+`.
    pub number: String,
    /// The conference a call to it enters; `None`: the caller is asked for a conference
    /// number.
    pub conference_id: Option<Uuid>,
}

/// A SIP username of an account, as the API shows it (no secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUser {
    /// The username.
    pub username: String,
    /// The realm its secrets are for.
    pub realm: String,
}

/// An account's SIP numbers and usernames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SipDirectory {
    /// Numbers, in number order.
    pub numbers: Vec<SipNumber>,
    /// Usernames, in username order.
    pub credentials: Vec<SipUser>,
}

/// A SIP username's account and digest secrets, for the SIP layer's authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct SipCredential {
    /// The account the username belongs to.
    pub account: Uuid,
    /// The username.
    pub username: String,
    /// The realm the secrets are for.
    pub realm: String,
    /// Hex MD5 of `username:realm:password`.
    pub ha1_md5: String,
    /// Hex SHA-256 of `username:realm:password` (RFC 8760).
    pub ha1_sha256: String,
}

impl std::fmt::Debug for SipCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipCredential")
            .field("account", &self.account)
            .field("username", &self.username)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// The digest HA1s of a password: hex MD5 and hex SHA-256 of `username:realm:password`.
pub fn digest_ha1(username: &str, realm: &str, password: &str) -> (String, String) {
    let input = format!("{username}:{realm}:{password}");
    (
        hex::encode(<md5::Md5 as md5::Digest>::digest(input.as_bytes())),
        hex::encode(sha2::Sha256::digest(input.as_bytes())),
    )
}

/// Whether `number` is a SIP number: 1–32 digits with an optional leading `+`.
pub fn is_sip_number(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    (1..=32).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_username(username: &str) -> bool {
    (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Shortest password a SIP credential may have.
pub const MIN_SIP_PASSWORD: usize = 8;

fn list<'a>(errors: &mut ValidationErrors, body: &'a Value, key: &str) -> Option<&'a Vec<Value>> {
    match body.get(key) {
        None => None,
        Some(Value::Array(items)) => Some(items),
        Some(other) => {
            errors.add(&[key], "type", json!({"message": "Value is not of type 'array'", "target": "array", "value": other}));
            None
        }
    }
}

impl ConferenceService {
    /// Tells the service the realm SIP credentials are for (the server's `[sip] realm`).
    pub fn set_sip_realm(&self, realm: &str) {
        if let Ok(mut current) = self.sip.realm.write() {
            realm.clone_into(&mut current);
        }
    }

    /// The realm SIP credentials are for.
    pub fn sip_realm(&self) -> String {
        self.sip
            .realm
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|_| DEFAULT_SIP_REALM.to_owned())
    }

    /// An account's SIP numbers and usernames.
    pub fn sip_directory(&self, account: Uuid) -> Result<SipDirectory, ServiceError> {
        let store = self.store();
        Ok(SipDirectory {
            numbers: store
                .sip_numbers(account)?
                .into_iter()
                .map(|n| SipNumber {
                    number: n.number,
                    conference_id: n.conference_id,
                })
                .collect(),
            credentials: store
                .sip_credentials(account)?
                .into_iter()
                .map(|c| SipUser {
                    username: c.username,
                    realm: c.realm,
                })
                .collect(),
        })
    }

    /// Replaces an account's SIP numbers and/or credentials from a body
    /// `{"numbers":[{"number","conference_id"}], "credentials":[{"username","password"}]}`:
    /// each list given replaces the stored one, a list left out stays. A credential without a
    /// password keeps the account's stored secrets for that username. Validation errors name
    /// the field (`numbers.0.number`); a number or username another account has is refused
    /// as `unique` without saying whose it is.
    pub fn replace_sip_directory(
        &self,
        account: Uuid,
        body: &Value,
    ) -> Result<SipDirectory, ServiceError> {
        let mut errors = ValidationErrors::default();
        if !body.is_object() {
            errors.add(
                &["data"],
                "type",
                json!({"message": "Value is not of type 'object'", "target": "object"}),
            );
            return Err(ServiceError::Validation(errors));
        }
        let numbers = list(&mut errors, body, "numbers")
            .map(|items| self.numbers_of(account, items, &mut errors));
        let credentials = list(&mut errors, body, "credentials")
            .map(|items| self.credentials_of(account, items, &mut errors));
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let store = self.store();
        if let Some(numbers) = numbers {
            store
                .replace_sip_numbers(account, &numbers)
                .map_err(taken)?;
        }
        if let Some(credentials) = credentials {
            store
                .replace_sip_credentials(account, &credentials)
                .map_err(taken)?;
        }
        self.sip_directory(account)
    }

    fn numbers_of(
        &self,
        account: Uuid,
        items: &[Value],
        errors: &mut ValidationErrors,
    ) -> Vec<SipNumberRecord> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let index = index.to_string();
            let number = item.get("number").and_then(Value::as_str).unwrap_or("");
            if !is_sip_number(number) {
                errors.add(&["numbers", &index, "number"], "pattern", json!({"message": "Failed to match pattern '^\\+?[0-9]{1,32}$'", "target": "^\\+?[0-9]{1,32}$", "value": item.get("number")}));
                continue;
            }
            if !seen.insert(number.to_owned()) {
                errors.add(
                    &["numbers", &index, "number"],
                    "uniqueItems",
                    json!({"message": "List of items is not unique", "value": number}),
                );
                continue;
            }
            if self.owned_elsewhere_number(account, number) {
                errors.add(&["numbers", &index, "number"], "unique", json!({"message": format!("Number {number} is already in use"), "cause": number}));
                continue;
            }
            let conference_id = match item.get("conference_id") {
                None | Some(Value::Null) => None,
                Some(id) => {
                    let found = id
                        .as_str()
                        .and_then(|id| self.conference(account, id).ok())
                        .map(|c| c.id);
                    if found.is_none() {
                        errors.add(&["numbers", &index, "conference_id"], "not_found", json!({"message": "No conference of the account has this id", "value": id}));
                        continue;
                    }
                    found
                }
            };
            out.push(SipNumberRecord {
                account_id: account,
                number: number.to_owned(),
                conference_id,
            });
        }
        out
    }

    fn owned_elsewhere_number(&self, account: Uuid, number: &str) -> bool {
        matches!(self.store().sip_number(number), Ok(Some(n)) if n.account_id != account)
    }

    fn credentials_of(
        &self,
        account: Uuid,
        items: &[Value],
        errors: &mut ValidationErrors,
    ) -> Vec<SipCredentialRecord> {
        let realm = self.sip_realm();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let index = index.to_string();
            let username = item.get("username").and_then(Value::as_str).unwrap_or("");
            if !is_username(username) {
                errors.add(&["credentials", &index, "username"], "pattern", json!({"message": "Failed to match pattern '^[A-Za-z0-9._-]{1,64}$'", "target": "^[A-Za-z0-9._-]{1,64}$", "value": item.get("username")}));
                continue;
            }
            if !seen.insert(username.to_owned()) {
                errors.add(
                    &["credentials", &index, "username"],
                    "uniqueItems",
                    json!({"message": "List of items is not unique", "value": username}),
                );
                continue;
            }
            let stored = self.store().sip_credential(username).ok().flatten();
            if stored.as_ref().is_some_and(|c| c.account_id != account) {
                errors.add(&["credentials", &index, "username"], "unique", json!({"message": format!("Username {username} is already in use"), "cause": username}));
                continue;
            }
            match item.get("password") {
                Some(Value::String(password)) if password.chars().count() >= MIN_SIP_PASSWORD => {
                    let (ha1_md5, ha1_sha256) = digest_ha1(username, &realm, password);
                    out.push(SipCredentialRecord {
                        account_id: account,
                        username: username.to_owned(),
                        realm: realm.clone(),
                        ha1_md5,
                        ha1_sha256,
                    });
                }
                None => match stored {
                    Some(stored) => out.push(stored),
                    None => errors.add(&["credentials", &index, "password"], "required", json!({"message": "Field is required but missing"})),
                },
                Some(_) => errors.add(&["credentials", &index, "password"], "minLength", json!({"message": format!("String must be at least {MIN_SIP_PASSWORD} characters"), "target": MIN_SIP_PASSWORD})),
            }
        }
        out
    }

    /// The account a SIP number belongs to, for trunks configured without an account.
    pub fn sip_number_account(&self, dialed: &str) -> Result<Option<Uuid>, ServiceError> {
        Ok(self.store().sip_number(dialed)?.map(|n| n.account_id))
    }

    /// A SIP username's account and digest secrets.
    pub fn sip_credential(&self, username: &str) -> Result<Option<SipCredential>, ServiceError> {
        Ok(self
            .store()
            .sip_credential(username)?
            .map(|c| SipCredential {
                account: c.account_id,
                username: c.username,
                realm: c.realm,
                ha1_md5: c.ha1_md5,
                ha1_sha256: c.ha1_sha256,
            }))
    }

    /// The SIP number `dialed` if the account has it.
    pub(crate) fn account_sip_number(
        &self,
        account: Uuid,
        dialed: &str,
    ) -> Result<Option<SipNumber>, ServiceError> {
        Ok(self
            .store()
            .sip_number(dialed)?
            .filter(|n| n.account_id == account)
            .map(|n| SipNumber {
                number: n.number,
                conference_id: n.conference_id,
            }))
    }
}

/// A number or username another account took between validation and writing.
fn taken(error: StoreError) -> ServiceError {
    match error {
        StoreError::SipTaken { kind, value } => {
            let mut errors = ValidationErrors::default();
            let field = if kind == "number" {
                "numbers"
            } else {
                "credentials"
            };
            errors.add(
                &[field],
                "unique",
                json!({"message": format!("{value} is already in use"), "cause": value}),
            );
            ServiceError::Validation(errors)
        }
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {

    use serde_json::json;

    use super::*;

    use crate::tests::service;

    fn fields(error: ServiceError) -> Value {
        match error {
            ServiceError::Validation(errors) => Value::Object(errors.0),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn credentials_keep_only_digest_secrets_and_numbers_route_to_their_account() {
        let s = service();
        s.set_sip_realm("example.org");
        let a = s.create_account("a").unwrap().id;
        let room = s.create_conference(a, &json!({})).unwrap();
        let directory = s
            .replace_sip_directory(
                a,
                &json!({
                    "numbers": [{"number": "+15551230000"}, {"number": "1000", "conference_id": room.id.simple().to_string()}],
                    "credentials": [{"username": "alice", "password": "correct horse"}],
                }),
            )
            .unwrap();
        assert_eq!(
            directory.numbers,
            vec![
                SipNumber {
                    number: "+15551230000".into(),
                    conference_id: None
                },
                SipNumber {
                    number: "1000".into(),
                    conference_id: Some(room.id)
                },
            ]
        );
        assert_eq!(
            directory.credentials,
            vec![SipUser {
                username: "alice".into(),
                realm: "example.org".into()
            }]
        );
        let alice = s.sip_credential("alice").unwrap().unwrap();
        assert_eq!(alice.account, a);
        // RFC 2617's HA1 = MD5("alice:example.org:correct horse"), and its SHA-256 sibling.
        let (md5, sha) = digest_ha1("alice", "example.org", "correct horse");
        assert_eq!(
            (alice.ha1_md5.as_str(), alice.ha1_sha256.as_str()),
            (md5.as_str(), sha.as_str())
        );
        assert_eq!(
            digest_ha1("Mufasa", "testrealm@host.com", "Circle Of Life").0,
            "939e7578ed9e3c518a452acee763bce9"
        );
        assert!(
            !format!("{alice:?}").contains(&md5),
            "Debug never shows the secrets"
        );
        assert_eq!(s.sip_number_account("+15551230000").unwrap(), Some(a));
        assert_eq!(s.sip_number_account("999").unwrap(), None);
        // A credential given again without its password keeps its secrets.
        s.replace_sip_directory(a, &json!({"credentials": [{"username": "alice"}]}))
            .unwrap();
        assert_eq!(s.sip_credential("alice").unwrap().unwrap().ha1_md5, md5);
        assert_eq!(
            s.sip_directory(a).unwrap().numbers.len(),
            2,
            "a list left out stays"
        );
    }

    #[test]
    fn bad_and_foreign_entries_are_refused_naming_the_field() {
        let s = service();
        let a = s.create_account("a").unwrap().id;
        let b = s.create_account("b").unwrap().id;
        let other_room = s.create_conference(b, &json!({})).unwrap();
        s.replace_sip_directory(a, &json!({"numbers": [{"number": "1000"}], "credentials": [{"username": "alice", "password": "12345678"}]}))
            .unwrap();
        let errors = fields(
            s.replace_sip_directory(
                b,
                &json!({
                    "numbers": [{"number": "1000"}, {"number": "12a"}, {"number": "+"}, {"number": "2000", "conference_id": "nope"}, {"number": "3000", "conference_id": other_room.id.to_string()}, {"number": "3000"}],
                    "credentials": [{"username": "alice", "password": "12345678"}, {"username": "bad name", "password": "12345678"}, {"username": "bob", "password": "short"}, {"username": "carol"}],
                }),
            )
            .unwrap_err(),
        );
        assert_eq!(
            errors["numbers"]["0"]["number"]["unique"]["message"],
            json!("Number 1000 is already in use")
        );
        assert!(
            !errors.to_string().contains(&a.simple().to_string()),
            "the owner is not revealed"
        );
        assert!(errors["numbers"]["1"]["number"]["pattern"].is_object());
        assert!(errors["numbers"]["2"]["number"]["pattern"].is_object());
        assert!(errors["numbers"]["3"]["conference_id"]["not_found"].is_object());
        assert!(errors["numbers"]["5"]["number"]["uniqueItems"].is_object());
        assert_eq!(
            errors["credentials"]["0"]["username"]["unique"]["cause"],
            json!("alice")
        );
        assert!(errors["credentials"]["1"]["username"]["pattern"].is_object());
        assert!(errors["credentials"]["2"]["password"]["minLength"].is_object());
        assert!(errors["credentials"]["3"]["password"]["required"].is_object());
        // Nothing of b's changed, and b never sees a's entries.
        assert_eq!(s.sip_directory(b).unwrap(), SipDirectory::default());
        assert!(!is_sip_number(&"1".repeat(33)) && is_sip_number(&format!("+{}", "1".repeat(32))));
    }
}
