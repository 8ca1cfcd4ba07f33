//! The behaviour every [`Store`] has, whatever keeps the records: each function takes a fresh,
//! empty store. `store_suite!(open)` makes one `#[test]` per behaviour, where
//! `open(test_name) -> Option<Box<dyn Store>>` gives the store (`None`: the backend is not
//! available here, the test is skipped).

#![allow(dead_code)]

use serde_json::json;
use tutti_store::{
    AccountRecord, Collection, ConferenceRecord, ItemRecord, OutboxRecord, SipCredentialRecord,
    SipNumberRecord, Store, StoreError,
};
use uuid::Uuid;

/// One `#[test]` per behaviour of this module, each with a store from `$open`.
macro_rules! store_suite {
    ($open:path) => {
        $crate::suite::store_suite!(@tests $open;
            accounts_tokens_and_conferences_round_trip_and_stay_apart,
            a_stale_update_changes_nothing,
            lists_page_in_creation_order,
            items_and_newest_first_lists_stay_in_their_account,
            items_where_matches_a_string_at_a_dotted_path,
            a_live_pin_is_unique_in_its_account_until_the_conference_ends_or_goes,
            the_outbox_keeps_deliveries_in_order_until_removed,
            sip_numbers_are_unique_across_accounts_and_replaced_as_a_list,
            sip_usernames_are_unique_across_accounts,
        );
    };
    (@tests $open:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(store) = $open(stringify!($name)) {
                    $crate::suite::$name(&*store);
                }
            }
        )*
    };
}
pub(crate) use store_suite;

/// A new account named `name` (its key hash is `hash-{name}`), stored.
pub fn account(store: &dyn Store, name: &str) -> AccountRecord {
    let account = AccountRecord {
        id: Uuid::now_v7(),
        name: name.into(),
        api_key_hash: format!("hash-{name}"),
        created: 1,
        webhook_url: None,
        webhook_secret: None,
    };
    store.create_account(&account).unwrap();
    account
}

/// A new conference of `account` (not stored).
pub fn conference(account: Uuid, name: &str) -> ConferenceRecord {
    ConferenceRecord {
        account_id: account,
        id: Uuid::now_v7(),
        document: json!({"name": name}),
        state: json!({}),
        revision: 1,
        created: 10,
        modified: 10,
    }
}

/// A webhook delivery, told apart by `n`.
pub fn delivery(n: u8) -> OutboxRecord {
    OutboxRecord {
        id: Uuid::now_v7(),
        url: format!("https://hooks.example/{n}"),
        body: vec![b'{', n, 0, 0xff, b'}'],
        secret: n.is_multiple_of(2).then(|| "secret".to_owned()),
        attempts: 0,
        created: 100 + i64::from(n),
    }
}

/// Writes with the store `open` gives, drops it, and finds everything again with a second one
/// (the same file or database).
pub fn data_survives_reopening(open: &dyn Fn() -> Box<dyn Store>) {
    let store = open();
    let a = account(&*store, "a");
    let b = account(&*store, "b");
    let c = ConferenceRecord {
        state: json!({"status": "progressing", "pin": "2468"}),
        ..conference(a.id, "kept")
    };
    store.insert_conference(&c, &["7".into()]).unwrap();
    store.insert_token("t", a.id, 100).unwrap();
    let call = ItemRecord {
        account_id: a.id,
        id: Uuid::now_v7(),
        conference_id: c.id,
        document: json!({"status": "joined"}),
        created: 5,
        modified: 5,
    };
    store.put_item(Collection::Calls, &call).unwrap();
    let (one, two, three) = (delivery(1), delivery(2), delivery(3));
    for d in [&one, &two, &three] {
        store.outbox_add(d).unwrap();
    }
    store.outbox_attempted(two.id, 3).unwrap();
    store.outbox_remove(one.id).unwrap();
    store
        .replace_sip_credentials(a.id, &[credential(a.id, "alice")])
        .unwrap();
    store
        .replace_sip_numbers(a.id, &[number(a.id, "1000", Some(c.id))])
        .unwrap();
    drop(store);

    let store = open();
    assert_eq!(store.account(a.id).unwrap(), Some(a.clone()));
    assert_eq!(store.account(b.id).unwrap(), Some(b.clone()));
    assert_eq!(store.conference(a.id, c.id).unwrap(), Some(c.clone()));
    assert_eq!(store.token_account("t", 50).unwrap(), Some((a.id, 100)));
    assert_eq!(
        store.item(Collection::Calls, a.id, call.id).unwrap(),
        Some(call)
    );
    assert_eq!(
        store.outbox_pending().unwrap(),
        [OutboxRecord { attempts: 3, ..two }, three]
    );
    assert_eq!(
        store.sip_credential("alice").unwrap(),
        Some(credential(a.id, "alice"))
    );
    assert_eq!(
        store.sip_numbers(a.id).unwrap(),
        [number(a.id, "1000", Some(c.id))]
    );
    // What the first store claimed is still claimed.
    assert!(matches!(
        store.insert_conference(&conference(a.id, "clash"), &["7".into()]),
        Err(StoreError::NumberTaken { .. })
    ));
    let same_pin = ConferenceRecord {
        state: c.state.clone(),
        ..conference(a.id, "same pin")
    };
    assert!(matches!(
        store.insert_conference(&same_pin, &[]),
        Err(StoreError::PinTaken)
    ));
    assert!(matches!(
        store.replace_sip_credentials(b.id, &[credential(b.id, "alice")]),
        Err(StoreError::SipTaken { .. })
    ));
}

/// The store of `backend` counts its calls, and its failures but not its refusals, for
/// `/metrics`.
pub fn calls_and_failures_are_counted(store: &dyn Store, backend: &str) {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let a = account(store, "a");
        assert!(store.create_account(&a).is_err(), "the same id twice fails");
        store
            .insert_conference(&conference(a.id, "c"), &["1".into()])
            .unwrap();
        let taken = store.insert_conference(&conference(a.id, "d"), &["1".into()]);
        assert!(matches!(taken, Err(StoreError::NumberTaken { .. })));
    });
    let text = handle.render();
    for line in [
        format!("tutti_store_operations_total{{backend=\"{backend}\"}} 4"),
        format!("tutti_store_errors_total{{backend=\"{backend}\"}} 1"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
}

fn ids(conferences: &[ConferenceRecord]) -> Vec<Uuid> {
    conferences.iter().map(|c| c.id).collect()
}

pub fn accounts_tokens_and_conferences_round_trip_and_stay_apart(store: &dyn Store) {
    let a = account(store, "a");
    let b = account(store, "b");
    assert_eq!(
        store.account_by_key_hash("hash-a").unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.account(b.id).unwrap(), Some(b.clone()));
    assert_eq!(store.account(Uuid::now_v7()).unwrap(), None);
    assert_eq!(store.account_by_key_hash("hash-c").unwrap(), None);

    store.insert_token("t1", a.id, 100).unwrap();
    assert_eq!(store.token_account("t1", 50).unwrap(), Some((a.id, 100)));
    assert_eq!(store.token_account("t1", 100).unwrap(), None, "expired");
    assert_eq!(store.token_account("t2", 50).unwrap(), None);

    let mut c = conference(a.id, "standup");
    store.insert_conference(&c, &["100".into()]).unwrap();
    assert_eq!(store.conference(a.id, c.id).unwrap(), Some(c.clone()));
    assert_eq!(store.conference_by_id(c.id).unwrap(), Some(c.clone()));
    assert_eq!(store.conference_by_id(Uuid::now_v7()).unwrap(), None);
    assert_eq!(
        store.conference(b.id, c.id).unwrap(),
        None,
        "another account cannot see it"
    );
    assert!(
        !store.delete_conference(b.id, c.id).unwrap(),
        "nor delete it"
    );

    // Numbers are unique within an account, free across accounts.
    let clash = conference(a.id, "other");
    let taken = store.insert_conference(&clash, &["100".into()]);
    assert!(
        matches!(&taken, Err(StoreError::NumberTaken { number, conference }) if number == "100" && *conference == c.id),
        "{taken:?}"
    );
    assert_eq!(store.conference(a.id, clash.id).unwrap(), None);
    store
        .insert_conference(&conference(b.id, "theirs"), &["100".into()])
        .unwrap();

    c.revision = 2;
    c.document = json!({"name": "renamed", "size": 1.5, "tags": ["x", "ü"]});
    c.state = json!("not an object");
    store.update_conference(&c, &["101".into()]).unwrap();
    let stored = store.conference(a.id, c.id).unwrap().unwrap();
    assert_eq!(stored.document, c.document);
    assert_eq!(stored.state, json!({}), "a state is always an object");
    assert!(
        matches!(
            store.update_conference(&c, &[]),
            Err(StoreError::Conflict(id)) if id == c.id
        ),
        "stale revision"
    );
    store
        .insert_conference(&conference(a.id, "reuses 100"), &["100".into()])
        .unwrap();

    assert!(store.delete_conference(a.id, c.id).unwrap());
    assert_eq!(store.conference(a.id, c.id).unwrap(), None);
    assert!(!store.delete_conference(a.id, c.id).unwrap());
    store
        .insert_conference(&conference(a.id, "reuses 101"), &["101".into()])
        .unwrap();
}

pub fn a_stale_update_changes_nothing(store: &dyn Store) {
    let a = account(store, "a");
    let mut c = conference(a.id, "kept");
    store.insert_conference(&c, &["1".into()]).unwrap();
    let stale = ConferenceRecord {
        revision: 3,
        document: json!({"name": "lost"}),
        ..c.clone()
    };
    assert!(matches!(
        store.update_conference(&stale, &["2".into()]),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.conference(a.id, c.id).unwrap(), Some(c.clone()));
    // Neither the number it kept nor the one it would have claimed moved.
    let other = conference(a.id, "other");
    assert!(matches!(
        store.insert_conference(&other, &["1".into()]),
        Err(StoreError::NumberTaken { .. })
    ));
    store.insert_conference(&other, &["2".into()]).unwrap();
    // An update whose number is taken changes nothing either.
    c.revision = 2;
    assert!(matches!(
        store.update_conference(&c, &["2".into()]),
        Err(StoreError::NumberTaken { conference, .. }) if conference == other.id
    ));
    assert_eq!(store.conference(a.id, c.id).unwrap().unwrap().revision, 1);
    // A conference that was never stored has no revision to follow.
    assert!(matches!(
        store.update_conference(&conference(a.id, "ghost"), &[]),
        Err(StoreError::Conflict(_))
    ));
}

pub fn lists_page_in_creation_order(store: &dyn Store) {
    let a = account(store, "a");
    let b = account(store, "b");
    let made: Vec<Uuid> = (0..5)
        .map(|i| {
            let c = conference(a.id, &format!("c{i}"));
            store.insert_conference(&c, &[]).unwrap();
            c.id
        })
        .collect();
    store
        .insert_conference(&conference(b.id, "theirs"), &[])
        .unwrap();
    let first = store.list_conferences(a.id, None, 3).unwrap();
    assert_eq!(ids(&first), made[..3]);
    let rest = store.list_conferences(a.id, Some(made[3]), 3).unwrap();
    assert_eq!(ids(&rest), made[3..]);
    let all = store.list_conferences(a.id, None, usize::MAX).unwrap();
    assert_eq!(ids(&all), made);
    assert_eq!(store.every_conference().unwrap().len(), 6);
    assert_eq!(ids(&store.every_conference().unwrap())[..5], made);
}

pub fn items_and_newest_first_lists_stay_in_their_account(store: &dyn Store) {
    let a = account(store, "a");
    let b = account(store, "b");
    let first = conference(a.id, "first");
    let second = conference(a.id, "second");
    store.insert_conference(&first, &[]).unwrap();
    store.insert_conference(&second, &[]).unwrap();
    let newest = store.list_conferences_newest(a.id, None, 10).unwrap();
    assert_eq!(ids(&newest), [second.id, first.id]);
    let after = store
        .list_conferences_newest(a.id, Some(second.id), 10)
        .unwrap();
    assert_eq!(ids(&after), [first.id]);
    assert_eq!(
        ids(&store.list_conferences_newest(a.id, None, 1).unwrap()),
        [second.id]
    );
    assert!(store
        .list_conferences_newest(b.id, None, 10)
        .unwrap()
        .is_empty());

    let call = ItemRecord {
        account_id: a.id,
        id: Uuid::now_v7(),
        conference_id: first.id,
        document: json!({"status": "joined"}),
        created: 5,
        modified: 5,
    };
    store.put_item(Collection::Calls, &call).unwrap();
    let mut left = call.clone();
    left.document = json!({"status": "leaved"});
    left.modified = 6;
    store.put_item(Collection::Calls, &left).unwrap();
    assert_eq!(
        store.item(Collection::Calls, a.id, call.id).unwrap(),
        Some(left.clone())
    );
    assert_eq!(store.item(Collection::Calls, b.id, call.id).unwrap(), None);
    assert_eq!(
        store.item(Collection::Recordings, a.id, call.id).unwrap(),
        None
    );
    let later = ItemRecord {
        id: Uuid::now_v7(),
        conference_id: second.id,
        ..call.clone()
    };
    store.put_item(Collection::Calls, &later).unwrap();
    assert_eq!(
        store
            .list_items(Collection::Calls, a.id, Some(first.id), None, 10)
            .unwrap(),
        [left.clone()]
    );
    assert_eq!(
        store
            .list_items(Collection::Calls, a.id, None, None, 10)
            .unwrap(),
        [later.clone(), left.clone()],
        "newest first"
    );
    assert_eq!(
        store
            .list_items(Collection::Calls, a.id, None, Some(later.id), 10)
            .unwrap(),
        [left.clone()]
    );
    assert_eq!(
        store
            .list_items(Collection::Calls, a.id, None, None, 1)
            .unwrap(),
        [later]
    );
    assert!(store
        .list_items(Collection::Recordings, a.id, None, None, 10)
        .unwrap()
        .is_empty());
    assert!(store
        .list_items(Collection::Calls, b.id, None, None, 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .items_where(Collection::Calls, "status", "leaved")
            .unwrap(),
        [left]
    );

    assert!(store
        .set_webhook(a.id, Some("http://127.0.0.1:9/hook"), Some("s"))
        .unwrap());
    let stored = store.account(a.id).unwrap().unwrap();
    assert_eq!(
        stored.webhook_url.as_deref(),
        Some("http://127.0.0.1:9/hook")
    );
    assert_eq!(stored.webhook_secret.as_deref(), Some("s"));
    assert!(store.set_webhook(a.id, None, None).unwrap());
    assert_eq!(store.account(a.id).unwrap().unwrap(), a);
    assert!(!store.set_webhook(Uuid::now_v7(), None, None).unwrap());
}

pub fn items_where_matches_a_string_at_a_dotted_path(store: &dyn Store) {
    let a = account(store, "a");
    let b = account(store, "b");
    let item = |account: Uuid, document: serde_json::Value| ItemRecord {
        account_id: account,
        id: Uuid::now_v7(),
        conference_id: Uuid::now_v7(),
        document,
        created: 1,
        modified: 1,
    };
    let nested = item(a.id, json!({"status": "joined", "media": {"kind": "sip"}}));
    let theirs = item(b.id, json!({"status": "joined"}));
    let number = item(a.id, json!({"status": 5}));
    let recording = item(a.id, json!({"status": "joined"}));
    store.put_item(Collection::Calls, &nested).unwrap();
    store.put_item(Collection::Calls, &theirs).unwrap();
    store.put_item(Collection::Calls, &number).unwrap();
    store.put_item(Collection::Recordings, &recording).unwrap();
    assert_eq!(
        store
            .items_where(Collection::Calls, "status", "joined")
            .unwrap(),
        [nested.clone(), theirs],
        "across accounts, in creation order, one collection"
    );
    assert_eq!(
        store
            .items_where(Collection::Calls, "media.kind", "sip")
            .unwrap(),
        [nested]
    );
    assert!(
        store
            .items_where(Collection::Calls, "status", "5")
            .unwrap()
            .is_empty(),
        "a number is not the text of its digits"
    );
    assert!(store
        .items_where(Collection::Calls, "missing", "joined")
        .unwrap()
        .is_empty());
}

pub fn a_live_pin_is_unique_in_its_account_until_the_conference_ends_or_goes(store: &dyn Store) {
    let a = account(store, "a");
    let b = account(store, "b");
    let with_pin = |account: Uuid, pin: &str| ConferenceRecord {
        state: json!({"status": "starting", "pin": pin}),
        ..conference(account, pin)
    };
    let mut first = with_pin(a.id, "123456");
    store.insert_conference(&first, &[]).unwrap();
    assert!(matches!(
        store.insert_conference(&with_pin(a.id, "123456"), &[]),
        Err(StoreError::PinTaken)
    ));
    store
        .insert_conference(&with_pin(b.id, "123456"), &[])
        .unwrap();
    let mut other = with_pin(a.id, "654321");
    store.insert_conference(&other, &[]).unwrap();
    // Taking another live conference's PIN by an update is refused too, and changes nothing.
    other.revision = 2;
    other.state = json!({"status": "progressing", "pin": "123456"});
    assert!(matches!(
        store.update_conference(&other, &[]),
        Err(StoreError::PinTaken)
    ));
    assert_eq!(
        store.conference(a.id, other.id).unwrap().unwrap().state["pin"],
        "654321"
    );

    // Ending frees the PIN; the ended conference keeps it in its state.
    first.revision = 2;
    first.state = json!({"status": "terminating", "pin": "123456"});
    store.update_conference(&first, &[]).unwrap();
    let reused = with_pin(a.id, "123456");
    store.insert_conference(&reused, &[]).unwrap();
    assert_eq!(
        store.conference(a.id, first.id).unwrap().unwrap().state["pin"],
        "123456"
    );
    first.revision = 3;
    first.state = json!({"status": "terminated", "pin": "123456"});
    store.update_conference(&first, &[]).unwrap();

    // Deleting frees it too.
    assert!(store.delete_conference(a.id, reused.id).unwrap());
    store
        .insert_conference(&with_pin(a.id, "123456"), &[])
        .unwrap();
}

pub fn the_outbox_keeps_deliveries_in_order_until_removed(store: &dyn Store) {
    let (one, two, three) = (delivery(1), delivery(2), delivery(3));
    assert!(store.outbox_pending().unwrap().is_empty());
    for d in [&three, &one, &two] {
        store.outbox_add(d).unwrap();
    }
    store.outbox_attempted(two.id, 3).unwrap();
    store.outbox_remove(one.id).unwrap();
    store.outbox_remove(Uuid::now_v7()).unwrap();
    store.outbox_attempted(Uuid::now_v7(), 1).unwrap();
    assert!(store.outbox_add(&three).is_err(), "ids are unique");
    let pending = store.outbox_pending().unwrap();
    assert_eq!(
        pending,
        [three.clone(), OutboxRecord { attempts: 3, ..two }],
        "in the order they were added"
    );
    let four = OutboxRecord {
        attempts: u32::MAX,
        ..delivery(4)
    };
    store.outbox_add(&four).unwrap();
    assert_eq!(store.outbox_pending().unwrap().last(), Some(&four));
    assert!(
        store.adopt_outbox("another-node").unwrap().is_empty(),
        "no other node has left deliveries here"
    );
    assert_eq!(store.outbox_pending().unwrap().len(), 3);
}

fn number(account_id: Uuid, number: &str, conference_id: Option<Uuid>) -> SipNumberRecord {
    SipNumberRecord {
        account_id,
        number: number.into(),
        conference_id,
    }
}

/// A SIP credential of `username` in realm `tutti`.
pub fn credential(account_id: Uuid, username: &str) -> SipCredentialRecord {
    SipCredentialRecord {
        account_id,
        username: username.into(),
        realm: "tutti".into(),
        ha1_md5: format!("md5-{username}"),
        ha1_sha256: format!("sha-{username}"),
    }
}

pub fn sip_numbers_are_unique_across_accounts_and_replaced_as_a_list(store: &dyn Store) {
    let a = account(store, "a").id;
    let b = account(store, "b").id;
    let room = Uuid::now_v7();
    store
        .replace_sip_numbers(
            a,
            &[
                number(a, "1000", Some(room)),
                number(a, "+15551230000", None),
            ],
        )
        .unwrap();
    assert_eq!(
        store.sip_numbers(a).unwrap(),
        vec![
            number(a, "+15551230000", None),
            number(a, "1000", Some(room))
        ],
        "in number order"
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
    let taken = store.replace_sip_numbers(b, &[number(b, "3000", None), number(b, "1000", None)]);
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
    store.replace_sip_numbers(b, &[]).unwrap();
    assert!(store.sip_numbers(b).unwrap().is_empty());
}

pub fn sip_usernames_are_unique_across_accounts(store: &dyn Store) {
    let a = account(store, "a").id;
    let b = account(store, "b").id;
    store
        .replace_sip_credentials(a, &[credential(a, "bob"), credential(a, "Alice")])
        .unwrap();
    let taken = store.replace_sip_credentials(b, &[credential(b, "carol"), credential(b, "bob")]);
    assert!(
        matches!(&taken, Err(StoreError::SipTaken { kind: "username", value }) if value == "bob"),
        "{taken:?}"
    );
    assert!(store.sip_credentials(b).unwrap().is_empty());
    assert_eq!(store.sip_credential("carol").unwrap(), None);
    assert_eq!(
        store.sip_credential("bob").unwrap(),
        Some(credential(a, "bob"))
    );
    assert_eq!(
        store.sip_credentials(a).unwrap(),
        vec![credential(a, "Alice"), credential(a, "bob")],
        "in username order, capitals first"
    );
    store
        .replace_sip_credentials(a, &[credential(a, "Alice")])
        .unwrap();
    store
        .replace_sip_credentials(b, &[credential(b, "bob")])
        .unwrap();
    assert_eq!(store.sip_credential("bob").unwrap().unwrap().account_id, b);
}
