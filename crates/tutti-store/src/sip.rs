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
