//! The store suite (`suite/mod.rs`) against PostgreSQL, a fresh database per test from the
//! throwaway server of `tutti-pg-harness` (skipped when PostgreSQL is not installed), and what
//! only a shared database does: several nodes on one database, reconnecting, migrating once,
//! outbox ownership.

mod suite;

use std::sync::{Arc, Barrier};

use serde_json::json;
use tutti_pg_harness::TempPostgres;
use tutti_store::{
    ConferenceRecord, PostgresOptions, PostgresStore, SipNumberRecord, Store, StoreError,
};
use uuid::Uuid;

/// Node `node`'s options, with a small pool.
fn node(node: &str) -> PostgresOptions {
    PostgresOptions {
        node: node.into(),
        pool_size: 4,
        ..PostgresOptions::default()
    }
}

fn connect(url: &str, name: &str) -> PostgresStore {
    PostgresStore::connect(url, node(name)).unwrap()
}

fn open(test: &str) -> Option<Box<dyn Store>> {
    Some(Box::new(connect(&TempPostgres::database_for(test)?, "n1")))
}

suite::store_suite!(open);

#[test]
fn data_survives_reconnecting() {
    let Some(url) = TempPostgres::database_for("data_survives_reconnecting") else {
        return;
    };
    suite::data_survives_reopening(&|| Box::new(connect(&url, "n1")));
}

#[test]
fn calls_and_failures_are_counted() {
    let Some(url) = TempPostgres::database_for("calls_and_failures_are_counted") else {
        return;
    };
    suite::calls_and_failures_are_counted(&connect(&url, "n1"), "postgres");
}

#[test]
fn two_nodes_on_one_database_see_each_others_writes() {
    let Some(url) = TempPostgres::database_for("two_nodes_on_one_database_see_each_others_writes")
    else {
        return;
    };
    let (one, two) = (connect(&url, "n1"), connect(&url, "n2"));
    let a = suite::account(&one, "a");
    assert_eq!(two.account_by_key_hash("hash-a").unwrap(), Some(a.clone()));
    let c = ConferenceRecord {
        state: json!({"status": "starting", "pin": "4242"}),
        ..suite::conference(a.id, "shared")
    };
    one.insert_conference(&c, &["100".into()]).unwrap();
    assert_eq!(two.conference(a.id, c.id).unwrap(), Some(c.clone()));
    assert!(matches!(
        two.insert_conference(&suite::conference(a.id, "clash"), &["100".into()]),
        Err(StoreError::NumberTaken { .. })
    ));
    let same_pin = ConferenceRecord {
        state: c.state.clone(),
        ..suite::conference(a.id, "same pin")
    };
    assert!(matches!(
        two.insert_conference(&same_pin, &[]),
        Err(StoreError::PinTaken)
    ));
    assert!(two.delete_conference(a.id, c.id).unwrap());
    assert_eq!(one.conference_by_id(c.id).unwrap(), None);
    two.insert_conference(&same_pin, &["100".into()]).unwrap();
}

#[test]
fn a_revision_conflict_between_two_nodes_keeps_one_write() {
    let Some(url) =
        TempPostgres::database_for("a_revision_conflict_between_two_nodes_keeps_one_write")
    else {
        return;
    };
    let (one, two) = (connect(&url, "n1"), connect(&url, "n2"));
    let a = suite::account(&one, "a");
    let c = suite::conference(a.id, "contested");
    one.insert_conference(&c, &[]).unwrap();
    // Both nodes read revision 1 and write revision 2 at the same moment: exactly one wins.
    let stores: [Arc<dyn Store>; 2] = [Arc::new(one), Arc::new(two)];
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(n, store)| {
            let (store, barrier) = (store.clone(), barrier.clone());
            let mut mine = c.clone();
            mine.revision = 2;
            mine.document = json!({"name": format!("node {n}")});
            std::thread::spawn(move || {
                barrier.wait();
                store.update_conference(&mine, &[]).map(|()| mine)
            })
        })
        .collect();
    let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let won: Vec<&ConferenceRecord> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .any(|r| matches!(r, Err(StoreError::Conflict(id)) if *id == c.id)));
    for store in &stores {
        assert_eq!(store.conference(a.id, c.id).unwrap().as_ref(), Some(won[0]));
    }
}

#[test]
fn nodes_connecting_at_once_migrate_once() {
    let Some(url) = TempPostgres::database_for("nodes_connecting_at_once_migrate_once") else {
        return;
    };
    let barrier = Arc::new(Barrier::new(4));
    let nodes: Vec<_> = (0..4)
        .map(|n| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PostgresStore::connect(&url, node(&format!("n{n}")))
            })
        })
        .collect();
    let stores: Vec<PostgresStore> = nodes
        .into_iter()
        .map(|node| node.join().unwrap().unwrap())
        .collect();
    let a = suite::account(&stores[0], "a");
    for store in &stores {
        assert_eq!(store.account(a.id).unwrap(), Some(a.clone()));
    }
    let versions = query(
        &url,
        "SELECT count(*)::text || ':' || max(version)::text FROM tutti_schema",
    );
    assert_eq!(versions, "1:1", "one version row, at the newest migration");
}

#[test]
fn each_node_delivers_its_own_outbox_until_another_adopts_it() {
    let Some(url) =
        TempPostgres::database_for("each_node_delivers_its_own_outbox_until_another_adopts_it")
    else {
        return;
    };
    let (one, two) = (connect(&url, "n1"), connect(&url, "n2"));
    assert_eq!((one.node(), two.node()), ("n1", "n2"));
    let d: Vec<_> = (1..=5).map(suite::delivery).collect();
    one.outbox_add(&d[0]).unwrap();
    two.outbox_add(&d[1]).unwrap();
    one.outbox_add(&d[2]).unwrap();
    two.outbox_add(&d[3]).unwrap();
    assert_eq!(one.outbox_pending().unwrap(), [d[0].clone(), d[2].clone()]);
    assert_eq!(two.outbox_pending().unwrap(), [d[1].clone(), d[3].clone()]);
    // Node two dies; node one takes its deliveries, all in the order they were accepted.
    assert_eq!(
        one.adopt_outbox("n2").unwrap(),
        [d[1].clone(), d[3].clone()]
    );
    assert!(two.outbox_pending().unwrap().is_empty());
    one.outbox_add(&d[4]).unwrap();
    assert_eq!(one.outbox_pending().unwrap(), d);
    assert!(
        one.adopt_outbox("n2").unwrap().is_empty(),
        "nothing left to adopt"
    );
    assert!(one.adopt_outbox("n9").unwrap().is_empty());
    // Its records stay reachable by id from whichever node finishes them.
    two.outbox_remove(d[1].id).unwrap();
    two.outbox_attempted(d[3].id, 2).unwrap();
    let pending = one.outbox_pending().unwrap();
    assert_eq!(pending.len(), 4);
    assert_eq!(pending[2].attempts, 2);
}

#[test]
fn a_database_of_a_newer_version_is_refused() {
    let Some(url) = TempPostgres::database_for("a_database_of_a_newer_version_is_refused") else {
        return;
    };
    let store = connect(&url, "n1");
    let a = suite::account(&store, "a");
    drop(store);
    query(
        &url,
        "UPDATE tutti_schema SET version = version + 1 RETURNING ''",
    );
    let refused = PostgresStore::connect(&url, PostgresOptions::default());
    let error = refused.unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaTooNew { found: 2, known: 1 }),
        "{error:?}"
    );
    assert!(error.to_string().contains("upgrade tutti"), "{error}");
    // Nothing was changed: a version that knows it still finds its data.
    query(
        &url,
        "UPDATE tutti_schema SET version = version - 1 RETURNING ''",
    );
    assert_eq!(connect(&url, "n1").account(a.id).unwrap(), Some(a));
}

#[test]
fn an_unreachable_server_is_an_error_that_hides_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("postgres://tutti:s3cret-word@127.0.0.1:{port}/tutti");
    let error = PostgresStore::connect(
        &url,
        PostgresOptions {
            acquire_timeout: std::time::Duration::from_secs(2),
            ..PostgresOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(error, StoreError::Postgres(_)), "{error:?}");
    assert!(!error.to_string().contains("s3cret"), "{error}");
    assert!(!format!("{error:?}").contains("s3cret"), "{error:?}");
}

#[tokio::test]
async fn works_from_a_current_thread_runtime() {
    let Some(url) = TempPostgres::database_for("works_from_a_current_thread_runtime") else {
        return;
    };
    let store = connect(&url, "n1");
    let a = suite::account(&store, "a");
    assert_eq!(store.account(a.id).unwrap(), Some(a));
    // Dropping it here, inside the runtime, must not panic either.
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_a_multi_thread_runtime() {
    let Some(url) = TempPostgres::database_for("works_from_a_multi_thread_runtime") else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(connect(&url, "n1"));
    let a = suite::account(&*store, "a");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let c = suite::conference(a.id, &format!("c{i}"));
                store.insert_conference(&c, &[format!("{i}")]).unwrap();
                c.id
            })
        })
        .collect();
    for task in tasks {
        let id = task.await.unwrap();
        assert!(store.conference(a.id, id).unwrap().is_some());
    }
    assert_eq!(store.list_conferences(a.id, None, 100).unwrap().len(), 8);
}

#[test]
fn claims_racing_another_nodes_uncommitted_claims_are_refused_once_it_commits() {
    let test = "claims_racing_another_nodes_uncommitted_claims_are_refused_once_it_commits";
    let Some(url) = TempPostgres::database_for(test) else {
        return;
    };
    let store = Arc::new(connect(&url, "n1"));
    let a = suite::account(&*store, "a");
    let b = suite::account(&*store, "b");
    let other = Uuid::now_v7();
    let (account, theirs) = (a.id.simple(), b.id.simple());
    // Another node is inserting, in a transaction not yet committed: a conference with number
    // 100 and PIN 4242 for account a, and SIP number 555 and username alice for account b.
    let held = [
        format!(
            "INSERT INTO conferences (account_id, id, document, revision, created, modified, state)
             VALUES ('{account}', '{other}', '{{}}', 1, 1, 1, '{{\"pin\": \"4242\"}}')"
        ),
        format!(
            "INSERT INTO conference_numbers (account_id, number, conference_id)
             VALUES ('{account}', '100', '{other}')"
        ),
        format!("INSERT INTO sip_numbers (number, account_id) VALUES ('555', '{theirs}')"),
        format!(
            "INSERT INTO sip_credentials (username, account_id, realm, ha1_md5, ha1_sha256)
             VALUES ('alice', '{theirs}', 'r', 'm', 's')"
        ),
    ];
    let writer = store.clone();
    let results = while_uncommitted(&url, &held, 4, move || {
        let mine = |name: &str, pin: Option<&str>| ConferenceRecord {
            state: pin.map_or_else(|| json!({}), |pin| json!({"pin": pin})),
            ..suite::conference(a.id, name)
        };
        std::thread::scope(|s| {
            let number = s.spawn(|| writer.insert_conference(&mine("n", None), &["100".into()]));
            let pin = s.spawn(|| writer.insert_conference(&mine("p", Some("4242")), &[]));
            let sip = s.spawn(|| {
                writer.replace_sip_numbers(
                    a.id,
                    &[SipNumberRecord {
                        account_id: a.id,
                        number: "555".into(),
                        conference_id: None,
                    }],
                )
            });
            let username = s.spawn(|| {
                writer.replace_sip_credentials(a.id, &[suite::credential(a.id, "alice")])
            });
            [number, pin, sip, username].map(|t| t.join().unwrap())
        })
    });
    let [number, pin, sip, username] = results;
    assert!(
        matches!(&number, Err(StoreError::NumberTaken { number, conference }) if number == "100" && *conference == other),
        "{number:?}"
    );
    assert!(matches!(pin, Err(StoreError::PinTaken)), "{pin:?}");
    assert!(
        matches!(&sip, Err(StoreError::SipTaken { kind: "number", value }) if value == "555"),
        "{sip:?}"
    );
    assert!(
        matches!(&username, Err(StoreError::SipTaken { kind: "username", value }) if value == "alice"),
        "{username:?}"
    );
    assert_eq!(store.list_conferences(a.id, None, 10).unwrap().len(), 1);
    assert!(store.sip_numbers(a.id).unwrap().is_empty());
}

#[test]
fn a_damaged_document_is_reported_as_corrupt() {
    let Some(url) = TempPostgres::database_for("a_damaged_document_is_reported_as_corrupt") else {
        return;
    };
    let store = connect(&url, "n1");
    let a = suite::account(&store, "a");
    let c = suite::conference(a.id, "damaged");
    store.insert_conference(&c, &[]).unwrap();
    query(
        &url,
        &format!(
            "UPDATE conferences SET document = '{{\"name\": ' WHERE id = '{}' RETURNING ''",
            c.id
        ),
    );
    let read = store.conference(a.id, c.id);
    assert!(
        matches!(read, Err(StoreError::Corrupt(id)) if id == c.id),
        "{read:?}"
    );
    assert!(matches!(
        store.every_conference(),
        Err(StoreError::Corrupt(_))
    ));
}

/// Runs `held` in a transaction on its own connection and, while it is uncommitted, `write`
/// in a thread; once `waiting` statements of other sessions wait for that transaction's
/// locks, commits it; what `write` returned.
fn while_uncommitted<T: Send + 'static>(
    url: &str,
    held: &[String],
    waiting: i64,
    write: impl FnOnce() -> T + Send + 'static,
) -> T {
    use sqlx::{Connection, Row};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut holder = sqlx::PgConnection::connect(url).await.unwrap();
        let mut watcher = sqlx::PgConnection::connect(url).await.unwrap();
        let mut transaction = holder.begin().await.unwrap();
        for sql in held {
            sqlx::query(sql).execute(&mut *transaction).await.unwrap();
        }
        let writer = std::thread::spawn(write);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let blocked: i64 = sqlx::query(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut watcher)
            .await
            .unwrap()
            .get(0);
            if blocked >= waiting {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{blocked} of {waiting} statements wait for the uncommitted claims"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        transaction.commit().await.unwrap();
        writer.join().unwrap()
    })
}

/// Runs `sql` on the database at `url` outside any store, returning the first column of the
/// first row as text.
fn query(url: &str, sql: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::{Connection, Row};
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
        let row = sqlx::query(sql).fetch_one(&mut connection).await.unwrap();
        row.get::<String, _>(0)
    })
}
