//! The store suite (`suite/mod.rs`) against SQLite: in memory, and in a file for reopening.

mod suite;

use tutti_store::{SqliteStore, Store};
use uuid::Uuid;

fn open(_test: &str) -> Option<Box<dyn Store>> {
    Some(Box::new(SqliteStore::in_memory().unwrap()))
}

suite::store_suite!(open);

#[test]
fn data_survives_reopening_the_file() {
    let dir = std::env::temp_dir().join(format!("tutti-store-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tutti.db");
    suite::data_survives_reopening(&|| Box::new(SqliteStore::open(&path).unwrap()));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn calls_and_failures_are_counted() {
    suite::calls_and_failures_are_counted(&SqliteStore::in_memory().unwrap(), "sqlite");
}
