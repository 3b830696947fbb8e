//! Start-up without the right key-encryption key: a missing KEK, another
//! installation's KEK, and a PostgreSQL replica given a KEK of its own are
//! each refused with a message that says so, before anything is written —
//! the database (every table, and the SQLite file byte for byte) and the
//! data dir are as they were, and following the advice of the message
//! (`lightwelld init`) does not overwrite the data dir either.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use lightwell_testkit::{REPLICATED_FILES, TestServer, bin, ha, lightwelld_refusal, pki};
use rusqlite::types::Value;

const T: &str = "corp.example";

/// Every table of a SQLite file, every row, in a fixed order.
fn sqlite_dump(db: &Path) -> BTreeMap<String, Vec<Vec<Value>>> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut names = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
    let tables: Vec<String> = names.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    tables
        .into_iter()
        .map(|table| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
            let n = stmt.column_count();
            let mut rows: Vec<Vec<Value>> = stmt
                .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.sort_by_key(|r| format!("{r:?}"));
            (table, rows)
        })
        .collect()
}

/// Every file of the data dir with its contents, but SQLite's shared-memory
/// index (`-shm`, rebuilt by whoever opens the file) and an empty write-ahead
/// log (`-wal`, which opening creates): no data is in either.
fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .filter(|(name, bytes)| !(name.ends_with("-shm") || (name.ends_with("-wal") && bytes.is_empty())))
        .collect()
}

/// The files that differ between two snapshots (names only: contents are keys).
fn changed(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names.into_iter().filter(|n| before.get(*n) != after.get(*n)).cloned().collect()
}

/// A KEK of another installation (a valid key, just not this one).
fn foreign_kek() -> Vec<u8> {
    let other = tempfile::tempdir().unwrap();
    let data = other.path().join("data");
    let out = Command::new(bin("lightwelld")).arg("init").arg("--data-dir").arg(&data).output().unwrap();
    assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(data.join("kek.key")).unwrap()
}

/// A server with a tenant and some history, stopped cleanly.
async fn stopped_install() -> TestServer {
    let mut server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::user(&server, &admin, T, "alice").await;
    assert!(server.stop());
    server
}

fn refused(out: Option<Output>, what: &str) -> String {
    let out = out.unwrap_or_else(|| panic!("lightwelld started with {what}"));
    assert!(!out.status.success(), "lightwelld exited cleanly with {what}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("api: https://"), "it opened its listeners: {stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_kek_is_refused_with_a_clear_message_and_nothing_is_written() {
    let mut server = stopped_install().await;
    let data = server.data_dir();
    let own = std::fs::read(data.join("kek.key")).unwrap();
    std::fs::remove_file(data.join("kek.key")).unwrap();
    let (db, files) = (sqlite_dump(&data.join("lightwell.db")), files_of(&data));

    let stderr = refused(lightwelld_refusal(&data, &[]), "no KEK");
    assert!(stderr.contains("key-encryption key") && stderr.contains("missing"), "{stderr}");
    assert!(stderr.contains("restore it"), "it says what to do: {stderr}");
    assert_eq!(
        changed(&files, &files_of(&data)),
        Vec::<String>::new(),
        "the data dir is untouched, the SQLite file byte for byte"
    );
    assert_eq!(sqlite_dump(&data.join("lightwell.db")), db);

    // `lightwelld init` on it refuses too, instead of writing a new KEK and server CA over the old files.
    let out = Command::new(bin("lightwelld")).arg("init").arg("--data-dir").arg(&data).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already initialized"), "{out:?}");
    assert_eq!(changed(&files, &files_of(&data)), Vec::<String>::new(), "init wrote nothing");

    // With the key restored, the same data dir serves as before.
    std::fs::write(data.join("kek.key"), own).unwrap();
    server.start_again();
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    assert!(admin.audit_verify(Some(T)).await.unwrap().valid);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_installations_kek_is_refused_before_anything_is_written() {
    let mut server = stopped_install().await;
    let data = server.data_dir();
    let own = std::fs::read(data.join("kek.key")).unwrap();
    std::fs::write(data.join("kek.key"), foreign_kek()).unwrap();
    let (db, files) = (sqlite_dump(&data.join("lightwell.db")), files_of(&data));

    let stderr = refused(lightwelld_refusal(&data, &[]), "another installation's KEK");
    assert!(stderr.contains("does not match this database"), "{stderr}");
    assert_eq!(
        changed(&files, &files_of(&data)),
        Vec::<String>::new(),
        "the data dir is untouched, the SQLite file byte for byte"
    );
    assert_eq!(sqlite_dump(&data.join("lightwell.db")), db);

    // The right key opens it again, with everything in place.
    std::fs::write(data.join("kek.key"), own).unwrap();
    server.start_again();
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    assert!(admin.audit_verify(Some(T)).await.unwrap().valid);
    server.login(T, "alice", pki::USER_PASSWORD).await.whoami().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_with_a_kek_of_its_own_is_refused_and_writes_nothing_to_the_shared_database() {
    let url = ha::fresh_database(ha::cluster());
    let mut first = TestServer::start_on(&url, &[]);
    let admin = pki::tenant(&first, T, None).await;
    pki::user(&first, &admin, T, "alice").await;
    assert!(first.stop());
    let dump = || {
        let out = Command::new("pg_dump").arg(&url).output().unwrap();
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        // Recent pg_dump versions fence the script with a random key; the rest is the database.
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let before = dump();

    // A replica's data dir: the first one's TLS files and operator password, but a KEK of its own.
    let replica = tempfile::tempdir().unwrap();
    for f in REPLICATED_FILES {
        std::fs::copy(first.data_dir().join(f), replica.path().join(f)).unwrap();
    }
    std::fs::write(replica.path().join("kek.key"), foreign_kek()).unwrap();
    let stderr = refused(lightwelld_refusal(replica.path(), &["--database", &url]), "a KEK of its own");
    assert!(stderr.contains("does not match this database"), "{stderr}");
    assert!(dump() == before, "the shared database is unchanged (pg_dump, every table and row)");

    // The installation itself is fine.
    first.start_again();
    ha::assert_audit_verifies(&first, &[T]).await;
}
