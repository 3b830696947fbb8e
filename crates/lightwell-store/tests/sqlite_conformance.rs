//! The conformance suite against SQLite files on disk.
#![allow(clippy::unwrap_used)]

use lightwell_store::sqlite::SqliteStore;

fn fresh() -> Box<SqliteStore> {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    Box::new(SqliteStore::open(&dir.join("lightwell.db")).expect("open"))
}

lightwell_store::conformance_tests!(fresh());

#[test]
fn schema_version_is_recorded_and_reopen_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lightwell.db");
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), lightwell_store::sqlite::SCHEMA_VERSION);
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), lightwell_store::sqlite::SCHEMA_VERSION);
}

#[test]
fn database_uses_wal_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lightwell.db");
    let _s = SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lightwell.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)", []).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn a_new_database_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lightwell.db");
    let _s = SqliteStore::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
