//! PostgreSQL makes a transaction fail that a retry would let through — a
//! serialization failure, a deadlock, a prepared statement a schema change
//! invalidated — and `lightwelld` retries it: the request succeeds, its
//! change and its audit record are written once, and the chains verify.
//! Each failure is made for real by a second connection (the PostgreSQL
//! log shows it happened), not simulated.
//!
//! The tests drive PostgreSQL from their own thread with the blocking
//! `postgres` client (which runs a runtime of its own) and the server over
//! HTTP on a tokio runtime they start.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lightwell_client::Client;
use lightwell_proto::CreateUserRequest;
use lightwell_testkit::{TestServer, ha, pki};

const T: &str = "corp.example";

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

/// How often the PostgreSQL log of this test process's cluster holds `needle`.
fn log_count(needle: &str) -> usize {
    let log = std::fs::read_to_string(ha::cluster().dir().join("postgres.log")).unwrap_or_default();
    log.matches(needle).count()
}

/// Polls `cond` (a query on its own connection) every 20 ms for up to 30 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A server on a fresh database with the tenant `T`.
fn setup(rt: &tokio::runtime::Runtime) -> (TestServer, String, Client, String) {
    let url = ha::fresh_database(ha::cluster());
    let server = TestServer::start_on(&url, &[]);
    let admin = rt.block_on(pki::tenant(&server, T, None));
    let tenant_id: String = connect(&url).query_one("SELECT id FROM tenants WHERE domain = $1", &[&T]).unwrap().get(0);
    (server, url, admin, tenant_id)
}

type Created = tokio::task::JoinHandle<Result<lightwell_proto::Principal, lightwell_client::ClientError>>;

/// Creates `name` on the runtime while the test's thread goes on (and blocks on PostgreSQL).
fn create_user(rt: &tokio::runtime::Runtime, admin: &Client, name: &str) -> Created {
    let (admin, req) = (admin.clone(), CreateUserRequest { name: name.into(), ..Default::default() });
    rt.spawn(async move { admin.create_principal(T, "users", &req).await })
}

/// The user was created once: one record of its creation, a chain that verifies.
async fn created_once(server: &TestServer, admin: &Client, name: &str) {
    admin.principal(T, "users", name).await.unwrap();
    let records = admin.audit(Some(T), 0, 1000).await.unwrap();
    let creations = records.iter().filter(|r| r.action == "user.create" && r.target == name).count();
    assert_eq!(creations, 1, "the retried transaction left one record: {records:#?}");
    ha::assert_audit_verifies(server, &[T]).await;
}

/// Backends of other sessions waiting for a lock of `kind` (`transactionid`, `advisory`).
fn waiting(watcher: &mut postgres::Client, kind: &str) -> Vec<i32> {
    let rows = watcher
        .query("SELECT pid FROM pg_locks WHERE NOT granted AND locktype = $1 AND pid <> pg_backend_pid()", &[&kind])
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[test]
fn a_write_that_loses_a_serialization_race_is_retried_and_succeeds_once() {
    let rt = runtime();
    let (server, url, admin, tenant_id) = setup(&rt);
    let failures = log_count("could not serialize access due to concurrent update");
    let (mut other, mut watcher) = (connect(&url), connect(&url));

    // Another transaction holds the tenant's audit head, which every audited change updates.
    let mut tx = other.transaction().unwrap();
    tx.execute("UPDATE audit_heads SET seq = seq WHERE scope = $1", &[&tenant_id]).unwrap();
    let request = create_user(&rt, &admin, "alice");
    // The server's SERIALIZABLE transaction took its snapshot and now waits for that row...
    wait_for("the server's write to wait for the audit head", || !waiting(&mut watcher, "transactionid").is_empty());
    // ...which changes under it at commit: "could not serialize access".
    tx.commit().unwrap();

    rt.block_on(request).unwrap().expect("the request succeeds after the retry");
    assert_eq!(
        log_count("could not serialize access due to concurrent update"),
        failures + 1,
        "PostgreSQL failed the server's first attempt"
    );
    rt.block_on(created_once(&server, &admin, "alice"));
}

#[test]
fn a_write_chosen_as_a_deadlock_victim_is_retried_and_succeeds_once() {
    let rt = runtime();
    let (server, url, admin, tenant_id) = setup(&rt);
    let deadlocks = log_count("deadlock detected");
    let (mut other, mut watcher) = (connect(&url), connect(&url));

    let mut tx = other.transaction().unwrap();
    // The server's backend, not this one, runs the deadlock check first (after its 1 s).
    tx.batch_execute("SET LOCAL deadlock_timeout = '20s'").unwrap();
    tx.execute("UPDATE audit_heads SET seq = seq WHERE scope = $1", &[&tenant_id]).unwrap();
    let request = create_user(&rt, &admin, "alice");
    let mut server_pid = Vec::new();
    wait_for("the server's write to wait for the audit head", || {
        server_pid = waiting(&mut watcher, "transactionid");
        !server_pid.is_empty()
    });
    // That backend holds the writers' advisory lock (taken before BEGIN); ask for it too: a cycle.
    let key: i64 = watcher
        .query_one(
            "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND pid = $1",
            &[&server_pid[0]],
        )
        .unwrap()
        .get(0);
    // Returns once PostgreSQL aborted the server's attempt and the server released the lock.
    tx.execute("SELECT pg_advisory_lock($1)", &[&key]).unwrap();
    tx.execute("SELECT pg_advisory_unlock($1)", &[&key]).unwrap();
    tx.commit().unwrap();

    rt.block_on(request).unwrap().expect("the request succeeds after the retry");
    assert_eq!(log_count("deadlock detected"), deadlocks + 1, "PostgreSQL broke the deadlock by failing the server");
    rt.block_on(created_once(&server, &admin, "alice"));
}

#[test]
fn statements_invalidated_by_a_schema_change_are_prepared_again() {
    let rt = runtime();
    let (server, url, admin, _) = setup(&rt);
    // Concurrent requests, so that several pooled connections prepare (and
    // later run) the tenant lookup: which connection serves a lone request
    // depends on the pool's order and timing.
    let burst = || {
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let admin = admin.clone();
                rt.spawn(async move { admin.whoami().await })
            })
            .collect();
        for call in calls {
            rt.block_on(call).unwrap().expect("every request succeeds");
        }
    };
    burst();
    rt.block_on(async { server.login(T, "administrator", pki::ADMIN_PASSWORD).await.whoami().await.unwrap() });
    let invalidated = log_count("cached plan must not change result type");
    let mut other = connect(&url);
    // A column the cached lookup returns changes type, as a migration on another replica may do.
    other.batch_execute("ALTER TABLE tenants ALTER COLUMN policy TYPE VARCHAR").unwrap();
    rt.block_on(create_user(&rt, &admin, "alice")).unwrap().expect("a write after the change");
    // Until a connection prepared before the change has served a request
    // (PostgreSQL logs the refusal), every request still succeeds.
    for _ in 0..50 {
        if log_count("cached plan must not change result type") > invalidated {
            break;
        }
        burst();
    }
    assert!(
        log_count("cached plan must not change result type") > invalidated,
        "PostgreSQL refused a statement prepared before the change"
    );
    other.batch_execute("ALTER TABLE tenants ALTER COLUMN policy TYPE TEXT").unwrap();
    burst();
    rt.block_on(created_once(&server, &admin, "alice"));
}
