//! CRL Numbers under concurrent signers and across a move of the database.
//! Two replicas that both build the same pending CRL store one build and
//! throw the other away (`lightwell_crl_background_discarded`), so no CRL
//! Number is used twice or skipped; and `lightwelld migrate` from SQLite to
//! PostgreSQL carries every CA's next CRL Number, so CRLs signed after the
//! move only ever have larger numbers.
//!
//! The tests hold PostgreSQL locks from their own thread with the blocking
//! `postgres` client and talk to the replicas on a tokio runtime they start.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use lightwell_client::Client;
use lightwell_proto::{CreateIntermediateRequest, IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::ha::{self, crl_info, fetch_crl, serial_key};
use lightwell_testkit::pki::{self, Files};
use lightwell_testkit::{TestServer, bin};

const T: &str = "corp.example";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

/// Polls `cond` every 20 ms for up to 30 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn issue(admin: &Client, files: &Files) -> String {
    let (_, csr) = files.csr("c", "ec:P-256", "/CN=administrator", &[]);
    admin.issue_certificate(T, &IssueCertificateRequest { csr, ..Default::default() }).await.unwrap().serial
}

async fn revoke(admin: &Client, serial: &str) {
    let req = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    admin.revoke_certificate(T, serial, &req).await.unwrap();
}

/// The key of the advisory lock `lightwelld`'s writers take turns on, as a
/// backend of `server` holds it while it writes.
fn writer_lock(watcher: &mut postgres::Client, pid: i32) -> i64 {
    watcher
        .query_one(
            "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND pid = $1",
            &[&pid],
        )
        .unwrap()
        .get(0)
}

#[test]
fn two_replicas_signing_the_same_pending_crl_store_one_build_and_discard_the_other() {
    let rt = runtime();
    // Every CRL with an entry goes through the CRL signer.
    let url = ha::fresh_database(ha::cluster());
    let mut a = TestServer::start_on(&url, &["--crl-sync-limit", "0"]);
    let admin = rt.block_on(pki::tenant(&a, T, None));
    let ca = rt.block_on(admin.list_cas(T)).unwrap().into_iter().find(|c| c.is_default).unwrap().id;
    let files = Files::new();
    let serial = rt.block_on(issue(&admin, &files));
    let before = crl_info(&rt.block_on(fetch_crl(&a, T, &ca))).number;
    let (mut holder, mut watcher) = (connect(&url), connect(&url));

    // A crashed signer leaves the mark: hold the CRL's row (which a marking
    // revocation does not touch and a signer's store does), revoke, and kill
    // the replica while its signer waits for the row.
    let mut hold = holder.transaction().unwrap();
    hold.execute("SELECT 1 FROM crls WHERE ca_id = $1 FOR UPDATE", &[&ca]).unwrap();
    rt.block_on(revoke(&admin, &serial));
    let mut signer = Vec::new();
    wait_for("the signer to wait for the CRL's row", || {
        signer = watcher
            .query("SELECT pid FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'", &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, i32>(0))
            .collect();
        !signer.is_empty()
    });
    let key = writer_lock(&mut watcher, signer[0]);
    a.kill9();
    hold.rollback().unwrap();
    // The dead replica's transaction is rolled back when its backend notices; then
    // this test takes the writers' lock, so both signers below read before either stores.
    let mut gate = connect(&url);
    wait_for("the dead replica's writer lock to be released", || {
        gate.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).unwrap().get::<_, bool>(0)
    });
    let marks: i64 = gate.query_one("SELECT count(*) FROM crl_pending WHERE ca_id = $1", &[&ca]).unwrap().get(0);
    assert_eq!(marks, 1, "the mark outlived the crash");

    // Two replicas start; each signer finds the mark, reads and signs the same CRL Number, and waits to store.
    a.start_again();
    let b = a.replica();
    wait_for("both signers to wait for the writers' lock", || {
        let rows =
            watcher.query("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'advisory'", &[]).unwrap();
        rows[0].get::<_, i64>(0) >= 2
    });
    gate.execute("SELECT pg_advisory_unlock($1)", &[&key]).unwrap();

    let after = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = crl_info(&fetch_crl(&b, T, &ca).await);
            if info.serials.contains(&serial_key(&serial)) {
                return info;
            }
            assert!(Instant::now() < deadline, "the CRL never listed the revocation: {info:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let (mut signed, mut discarded) = (0.0, 0.0);
    for server in [&a, &b] {
        signed += rt.block_on(server.metric("lightwell_crl_background_signed_total"));
        discarded += rt.block_on(server.metric("lightwell_crl_background_discarded_total"));
    }
    assert_eq!((signed, discarded), (1.0, 1.0), "one build stored, the other thrown away");
    // One signing: the complete CRL and its delta CRL, which share the CA's numbers (RFC 5280 section 5.2.4).
    assert_eq!(after.number, before + 2, "one signing's CRL Numbers used: none twice, none skipped");
    assert_eq!(crl_info(&rt.block_on(fetch_crl(&a, T, &ca))), after, "both replicas serve it");
    let marks: i64 = gate.query_one("SELECT count(*) FROM crl_pending WHERE ca_id = $1", &[&ca]).unwrap().get(0);
    assert_eq!(marks, 0, "the mark was cleared");
    rt.block_on(ha::assert_audit_verifies(&b, &[T]));
}

/// Each CA's next CRL Number in the SQLite file.
fn sqlite_numbers(server: &TestServer) -> BTreeMap<String, i64> {
    let db = rusqlite::Connection::open(server.data_dir().join("lightwell.db")).unwrap();
    let mut stmt = db.prepare("SELECT id, next_crl_number FROM cas").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

/// Each CA's highest CRL Number served: its delta CRL's where it has one
/// (an issuing CA), else its complete CRL's.
async fn served_numbers(server: &TestServer, cas: &[String]) -> BTreeMap<String, u64> {
    let mut served = BTreeMap::new();
    for ca in cas {
        let mut number = crl_info(&fetch_crl(server, T, ca).await).number;
        let (status, delta) = pki::http_get(&format!("{}/pki/{T}/ca/{ca}.delta.crl", server.pki_url())).await;
        if status == 200 {
            number = number.max(crl_info(&delta).number);
        }
        served.insert(ca.clone(), number);
    }
    served
}

#[test]
fn crl_numbers_only_grow_across_a_move_from_sqlite_to_postgres() {
    let rt = runtime();
    let mut server = TestServer::start();
    let files = Files::new();
    let (cas, served) = rt.block_on(async {
        let admin = pki::tenant(&server, T, None).await;
        let req = CreateIntermediateRequest { name: "extra".into(), ..Default::default() };
        admin.create_intermediate(T, &req).await.unwrap();
        for _ in 0..3 {
            let serial = issue(&admin, &files).await;
            revoke(&admin, &serial).await;
        }
        let cas: Vec<String> = admin.list_cas(T).await.unwrap().into_iter().map(|c| c.id).collect();
        let served = served_numbers(&server, &cas).await;
        (cas, served)
    });
    assert!(server.stop());
    let next = sqlite_numbers(&server);
    assert!(cas.iter().all(|ca| next[ca] == served[ca] as i64 + 1), "{next:?} {served:?}");

    let url = ha::fresh_database(ha::cluster());
    let sqlite = format!("sqlite://{}", server.data_dir().join("lightwell.db").display());
    let out = Command::new(bin("lightwelld")).args(["migrate", "--from", &sqlite, "--to", &url]).output().unwrap();
    assert!(out.status.success(), "migrate: {}", String::from_utf8_lossy(&out.stderr));
    let moved: BTreeMap<String, i64> = connect(&url)
        .query("SELECT id, next_crl_number FROM cas", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(moved, next, "every CA's next CRL Number moved with it");

    // On PostgreSQL the CA job re-signs every CRL each second: each new number is above the old one.
    server.start_again_with(&["--database", &url, "--ca-maintenance-interval-secs", "1"]);
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = served_numbers(&server, &cas).await;
            for ca in &cas {
                assert!(now[ca] >= served[ca], "CA {ca}: CRL Number {} after the move, {} before", now[ca], served[ca]);
            }
            if cas.iter().all(|ca| now[ca] > served[ca]) {
                break;
            }
            assert!(Instant::now() < deadline, "not every CRL was signed after the move: {now:?} {served:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A revocation after the move is listed with a larger number too.
        let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
        let issuing = admin.list_cas(T).await.unwrap().into_iter().find(|c| c.is_default).unwrap().id;
        let before = crl_info(&fetch_crl(&server, T, &issuing).await).number;
        let serial = issue(&admin, &files).await;
        revoke(&admin, &serial).await;
        let after = crl_info(&fetch_crl(&server, T, &issuing).await);
        assert!(after.serials.contains(&serial_key(&serial)) && after.number > before, "{after:?}");
        ha::assert_audit_verifies(&server, &[T]).await;
    });
}
