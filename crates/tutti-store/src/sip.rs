//! The SIP directory in SQLite: numbers and credentials, each unique across accounts.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use crate::sqlite::{id_text, parse_id};
use crate::{SipCredentialRecord, SipNumberRecord, StoreError};

/// Whether `value` in `table.column` belongs to an account other than `account`.
fn taken_elsewhere(
    transaction: &rusqlite::Transaction<'_>,
    table: &str,
    column: &str,
    value: &str,
    account: &str,
) -> Result<bool, StoreError> {
    let owner: Option<String> = transaction
        .query_row(
            &format!("SELECT account_id FROM {table} WHERE {column} = ?1"),
            params![value],
            |row| row.get(0),
        )
        .optional()?;
    Ok(owner.is_some_and(|owner| owner != account))
}

pub(crate) fn replace_numbers(
    connection: &mut Connection,
    account: Uuid,
    numbers: &[SipNumberRecord],
) -> Result<(), StoreError> {
    let account = id_text(account);
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for number in numbers {
        if taken_elsewhere(
            &transaction,
            "sip_numbers",
            "number",
            &number.number,
            &account,
        )? {
            return Err(StoreError::SipTaken {
                kind: "number",
                value: number.number.clone(),
            });
        }
    }
    transaction.execute(
        "DELETE FROM sip_numbers WHERE account_id = ?1",
        params![account],
    )?;
    for number in numbers {
        transaction.execute(
            "INSERT INTO sip_numbers (number, account_id, conference_id) VALUES (?1, ?2, ?3)",
            params![number.number, account, number.conference_id.map(id_text)],
        )?;
    }
    transaction.commit()?;
    Ok(())
}

fn number_from(row: &rusqlite::Row<'_>) -> Result<SipNumberRecord, rusqlite::Error> {
    Ok(SipNumberRecord {
        number: row.get(0)?,
        account_id: parse_id(&row.get::<_, String>(1)?)?,
        conference_id: row
            .get::<_, Option<String>>(2)?
            .map(|id| parse_id(&id))
            .transpose()?,
    })
}

pub(crate) fn numbers(
    connection: &mut Connection,
    account: Uuid,
) -> Result<Vec<SipNumberRecord>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT number, account_id, conference_id FROM sip_numbers WHERE account_id = ?1 ORDER BY number",
    )?;
    let rows = statement.query_map(params![id_text(account)], number_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn number(
    connection: &mut Connection,
    number: &str,
) -> Result<Option<SipNumberRecord>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT number, account_id, conference_id FROM sip_numbers WHERE number = ?1",
            params![number],
            number_from,
        )
        .optional()?)
}

pub(crate) fn replace_credentials(
    connection: &mut Connection,
    account: Uuid,
    credentials: &[SipCredentialRecord],
) -> Result<(), StoreError> {
    let account = id_text(account);
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for credential in credentials {
        let username = &credential.username;
        if taken_elsewhere(
            &transaction,
            "sip_credentials",
            "username",
            username,
            &account,
        )? {
            return Err(StoreError::SipTaken {
                kind: "username",
                value: username.clone(),
            });
        }
    }
    transaction.execute(
        "DELETE FROM sip_credentials WHERE account_id = ?1",
        params![account],
    )?;
    for c in credentials {
        transaction.execute(
            "INSERT INTO sip_credentials (username, account_id, realm, ha1_md5, ha1_sha256)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c.username, account, c.realm, c.ha1_md5, c.ha1_sha256],
        )?;
    }
    transaction.commit()?;
    Ok(())
}

const CREDENTIAL_COLUMNS: &str = "username, account_id, realm, ha1_md5, ha1_sha256";

fn credential_from(row: &rusqlite::Row<'_>) -> Result<SipCredentialRecord, rusqlite::Error> {
    Ok(SipCredentialRecord {
        username: row.get(0)?,
        account_id: parse_id(&row.get::<_, String>(1)?)?,
        realm: row.get(2)?,
        ha1_md5: row.get(3)?,
        ha1_sha256: row.get(4)?,
    })
}

pub(crate) fn credentials(
    connection: &mut Connection,
    account: Uuid,
) -> Result<Vec<SipCredentialRecord>, StoreError> {
    let mut statement = connection.prepare(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM sip_credentials WHERE account_id = ?1 ORDER BY username"
    ))?;
    let rows = statement.query_map(params![id_text(account)], credential_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn credential(
    connection: &mut Connection,
    username: &str,
) -> Result<Option<SipCredentialRecord>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {CREDENTIAL_COLUMNS} FROM sip_credentials WHERE username = ?1"),
            params![username],
            credential_from,
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use crate::{
        AccountRecord, SipCredentialRecord, SipNumberRecord, SqliteStore, Store, StoreError,
    };
    use uuid::Uuid;

    fn account(store: &SqliteStore, name: &str) -> Uuid {
        let id = Uuid::now_v7();
        store
            .create_account(&AccountRecord {
                id,
                name: name.into(),
                api_key_hash: format!("hash-{name}"),
                created: 1,
                webhook_url: None,
                webhook_secret: None,
            })
            .unwrap();
        id
    }

    fn number(account_id: Uuid, number: &str, conference_id: Option<Uuid>) -> SipNumberRecord {
        SipNumberRecord {
            account_id,
            number: number.into(),
            conference_id,
        }
    }

    fn credential(account_id: Uuid, username: &str) -> SipCredentialRecord {
        SipCredentialRecord {
            account_id,
            username: username.into(),
            realm: "tutti".into(),
            ha1_md5: format!("md5-{username}"),
            ha1_sha256: format!("sha-{username}"),
        }
    }

    #[test]
    fn sip_numbers_are_unique_across_accounts_and_replaced_as_a_list() {
        let store = SqliteStore::in_memory().unwrap();
        let a = account(&store, "a");
        let b = account(&store, "b");
        let room = Uuid::now_v7();
        store
            .replace_sip_numbers(
                a,
                &[
                    number(a, "+15551230000", None),
                    number(a, "1000", Some(room)),
                ],
            )
            .unwrap();
        assert_eq!(
            store.sip_numbers(a).unwrap(),
            vec![
                number(a, "+15551230000", None),
                number(a, "1000", Some(room))
            ]
        );
        assert_eq!(
            store.sip_number("1000").unwrap(),
            Some(number(a, "1000", Some(room)))
        );
        assert!(store.sip_numbers(b).unwrap().is_empty());
        // Another account cannot take it, and its own list stays as it was.
        store
            .replace_sip_numbers(b, &[number(b, "2000", None)])
            .unwrap();
        let taken =
            store.replace_sip_numbers(b, &[number(b, "3000", None), number(b, "1000", None)]);
        assert!(
            matches!(&taken, Err(StoreError::SipTaken { kind: "number", value }) if value == "1000"),
            "{taken:?}"
        );
        assert_eq!(store.sip_numbers(b).unwrap(), vec![number(b, "2000", None)]);
        // Replacing drops what the new list leaves out, freeing it for others.
        store
            .replace_sip_numbers(a, &[number(a, "+15551230000", None)])
            .unwrap();
        assert_eq!(store.sip_number("1000").unwrap(), None);
        store
            .replace_sip_numbers(b, &[number(b, "1000", None)])
            .unwrap();
        assert_eq!(store.sip_number("1000").unwrap().unwrap().account_id, b);
    }

    #[test]
    fn sip_usernames_are_unique_across_accounts_and_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("tutti-sip-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tutti.db");
        let (a, b);
        {
            let store = SqliteStore::open(&path).unwrap();
            a = account(&store, "a");
            b = account(&store, "b");
            store
                .replace_sip_credentials(a, &[credential(a, "alice"), credential(a, "bob")])
                .unwrap();
            let taken = store.replace_sip_credentials(b, &[credential(b, "alice")]);
            assert!(matches!(
                taken,
                Err(StoreError::SipTaken {
                    kind: "username",
                    ..
                })
            ));
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.sip_credential("alice").unwrap(),
            Some(credential(a, "alice"))
        );
        assert_eq!(
            store.sip_credentials(a).unwrap(),
            vec![credential(a, "alice"), credential(a, "bob")]
        );
        assert!(store.sip_credentials(b).unwrap().is_empty());
        assert_eq!(store.sip_credential("carol").unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
