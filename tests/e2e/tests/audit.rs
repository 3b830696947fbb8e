//! The audit log: every change is recorded, `lightwell audit verify` passes on
//! a clean database and fails once a record is edited or deleted behind the
//! server's back, directly in the SQLite file.
#![allow(clippy::unwrap_used)]

use lightwell_testkit::TestServer;

const ADMIN_PW: &str = "Tenant-Admin-1!";

fn tampered(server: &TestServer, sql: &str) {
    let conn = rusqlite::Connection::open(server.data_dir().join("lightwell.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let changed = conn.execute(sql, []).unwrap();
    assert_eq!(changed, 1, "{sql}");
}

fn setup(server: &TestServer) -> lightwell_testkit::Cli {
    let cli = server.cli();
    let ca = server.ca_file().display().to_string();
    let op_pw = cli.secret_file("op.pw", &server.operator_password());
    cli.ok(&["login", "--server", &server.url(), "--ca-file", &ca, "--operator", "--password-file", &op_pw]);
    let admin_pw = cli.secret_file("admin.pw", ADMIN_PW);
    cli.ok(&["tenant", "create", "corp.example", "--admin-password-file", &admin_pw]);
    cli.ok(&["login", "--tenant", "corp.example", "--user", "administrator", "--password-file", &admin_pw]);
    for name in ["alice", "bob", "carol"] {
        cli.ok(&["user", "create", name]);
    }
    cli.ok(&["group", "create", "ops"]);
    cli.ok(&["group", "add-member", "ops", "bob"]);
    cli
}

#[test]
fn every_change_is_recorded_and_the_clean_chain_verifies() {
    let server = TestServer::start();
    let cli = setup(&server);
    let records = cli.json(&["audit", "list"]);
    let actions: Vec<&str> = records.as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["tenant.create", "login", "user.create", "user.create", "user.create", "group.create", "group.add_member"]
    );
    let v = cli.json(&["audit", "verify"]);
    assert_eq!(v["valid"], true);
    assert_eq!(v["records"], 7);
    let system = cli.json(&["audit", "verify", "--system"]);
    assert_eq!(system["valid"], true, "{system}");
}

#[test]
fn verify_fails_after_a_record_is_edited() {
    let server = TestServer::start();
    let cli = setup(&server);
    tampered(&server, "UPDATE audit SET actor = 'user:mallory' WHERE seq = 3 AND scope <> ''");
    let out = cli.run(&["audit", "verify"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("record 3") && stdout.contains("modified"), "{stdout}");
}

#[test]
fn verify_fails_after_a_record_is_deleted_from_the_middle_or_the_end() {
    let server = TestServer::start();
    let cli = setup(&server);
    tampered(&server, "DELETE FROM audit WHERE seq = 4 AND scope <> ''");
    assert_eq!(cli.fails_with(&["audit", "verify"]), "client_error");
    let v = cli.run(&["audit", "verify", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["broken_at"], 4);

    let server = TestServer::start();
    let cli = setup(&server);
    tampered(&server, "DELETE FROM audit WHERE seq = 7 AND scope <> ''");
    let v = cli.run(&["audit", "verify", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["valid"], false, "truncating the newest record is noticed: {v}");
}

#[test]
fn a_forged_record_with_a_recomputed_plain_hash_is_detected() {
    // The chain is keyed with a MAC derived from the KEK, so an attacker with
    // only the database cannot make an inserted record verify.
    let server = TestServer::start();
    let cli = setup(&server);
    tampered(
        &server,
        "INSERT INTO audit (scope, seq, at, actor, action, target, outcome, detail, prev_hash, hash) \
         SELECT scope, 8, 1800000000, 'user:mallory', 'user.create', 'backdoor', 'success', '', hash, hash FROM audit_heads WHERE scope <> ''",
    );
    tampered(&server, "UPDATE audit_heads SET seq = 8 WHERE scope <> ''");
    let v = cli.run(&["audit", "verify", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["broken_at"], 8);
}

// --- truncation: deleting the newest records and moving the chain head back ---

/// Three more records on top of [`setup`]'s seven: the tenant chain has ten.
fn ten_records(cli: &lightwell_testkit::Cli) {
    for name in ["dave", "erin", "frank"] {
        cli.ok(&["user", "create", name]);
    }
}

/// The tenant's id (the scope of its audit chain) in the SQLite file.
fn tenant_scope(db: &rusqlite::Connection) -> String {
    db.query_row("SELECT id FROM tenants WHERE domain = 'corp.example'", [], |r| r.get(0)).unwrap()
}

fn open_db(server: &TestServer) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(server.data_dir().join("lightwell.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db
}

/// Deletes `scope`'s records after `seq` and points its head at record `seq`
/// with `mac`; returns that record's MAC.
fn cut_chain(db: &rusqlite::Connection, scope: &str, seq: i64, mac: Option<&str>) -> String {
    let hash: String = db
        .query_row("SELECT hash FROM audit WHERE scope = ?1 AND seq = ?2", rusqlite::params![scope, seq], |r| r.get(0))
        .unwrap();
    db.execute("DELETE FROM audit WHERE scope = ?1 AND seq > ?2", rusqlite::params![scope, seq]).unwrap();
    // Without a MAC to put in, the attacker leaves the head's old one.
    let sql = match mac {
        Some(_) => "UPDATE audit_heads SET seq = ?2, hash = ?3, mac = ?4 WHERE scope = ?1",
        None => "UPDATE audit_heads SET seq = ?2, hash = ?3 WHERE scope = ?1",
    };
    let n = match mac {
        Some(m) => db.execute(sql, rusqlite::params![scope, seq, hash, m]),
        None => db.execute(sql, rusqlite::params![scope, seq, hash]),
    };
    assert_eq!(n.unwrap(), 1);
    hash
}

fn verify_json(cli: &lightwell_testkit::Cli, args: &[&str]) -> (bool, serde_json::Value) {
    let mut all = vec!["audit", "verify"];
    all.extend_from_slice(args);
    all.extend(["--output", "json"]);
    let out = cli.run(&all);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("not JSON: {} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    (out.status.success(), v)
}

#[test]
fn cutting_the_newest_records_and_moving_the_head_back_is_detected() {
    let mut server = TestServer::start();
    let cli = setup(&server);
    ten_records(&cli);
    assert_eq!(cli.json(&["audit", "verify"])["records"], 10);
    server.stop();

    // With the database but not the KEK: delete records 8-10 and point the
    // head at record 7, whose MAC is right there in the table.
    let db = open_db(&server);
    let scope = tenant_scope(&db);
    cut_chain(&db, &scope, 7, None);
    drop(db);
    server.start_again();

    let (ok, v) = verify_json(&cli, &[]);
    assert!(!ok, "the CLI exits non-zero");
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["records"], 7);
    assert_eq!(v["broken_at"], 8);
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("head's MAC does not verify"), "{reason}");

    // The server refuses to extend the cut chain, so the next record cannot
    // paper over the cut: the change is refused and the chain is as it was.
    assert_eq!(cli.fails_with(&["user", "create", "mallory"]), "internal");
    let users = cli.json(&["user", "list"]);
    assert!(users.as_array().unwrap().iter().all(|u| u["name"] != "mallory"), "{users}");
    let (_, again) = verify_json(&cli, &[]);
    assert_eq!((again["records"].as_i64(), again["broken_at"].as_i64()), (Some(7), Some(8)));
}

#[test]
fn an_old_head_put_back_is_caught_by_the_system_chains_checkpoint() {
    let mut server = TestServer::start();
    let cli = setup(&server);
    let op = operator(&server);
    // The attacker keeps a copy of the head row while the chain has 7 records...
    let db = open_db(&server);
    let scope = tenant_scope(&db);
    let old_head: (i64, String, String) = db
        .query_row("SELECT seq, hash, mac FROM audit_heads WHERE scope = ?1", [&scope], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    drop(db);
    ten_records(&cli);
    let report = op.json(&["audit", "checkpoint"]);
    assert_eq!(report["checkpointed"], 1, "{report}");
    server.stop();

    // ...and later puts it back after deleting records 8-10: a genuine head.
    let db = open_db(&server);
    cut_chain(&db, &scope, 7, Some(&old_head.2));
    drop(db);
    server.start_again();

    let (ok, v) = verify_json(&cli, &[]);
    assert!(!ok);
    assert_eq!((v["records"].as_i64(), v["broken_at"].as_i64()), (Some(7), Some(8)), "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("checkpoint in system record") && reason.contains("names record 10"), "{reason}");
}

#[test]
fn a_head_stripped_of_its_mac_is_not_resealed_at_start_behind_its_checkpoint() {
    // Heads written before heads had a MAC are sealed at start; an attacker
    // who clears the MAC to get a cut chain sealed meets the checkpoint.
    let mut server = TestServer::start();
    let cli = setup(&server);
    let op = operator(&server);
    ten_records(&cli);
    op.ok(&["audit", "checkpoint"]);
    server.stop();
    let db = open_db(&server);
    let scope = tenant_scope(&db);
    cut_chain(&db, &scope, 7, Some(""));
    drop(db);
    server.start_again();

    let (ok, v) = verify_json(&cli, &[]);
    assert!(!ok);
    assert!(v["reason"].as_str().unwrap().contains("names record 10"), "{v}");
    let mac: String =
        open_db(&server).query_row("SELECT mac FROM audit_heads WHERE scope = ?1", [&scope], |r| r.get(0)).unwrap();
    assert_eq!(mac, "", "left unsealed");
    let system = op.json(&["audit", "list", "--system"]);
    assert!(system.as_array().unwrap().iter().all(|r| r["action"] != "audit.head_sealed"), "{system}");
}

#[test]
fn an_attacker_with_the_kek_is_caught_by_the_checkpoint_file() {
    let sink = tempfile::tempdir().unwrap();
    let file = sink.path().join("audit-checkpoints.jsonl");
    let file_arg = file.display().to_string();
    let mut server = TestServer::start_with(&["--audit-checkpoint-file", &file_arg]);
    let cli = setup(&server);
    let op = operator(&server);
    ten_records(&cli);
    op.ok(&["audit", "checkpoint"]);
    let lines = std::fs::read_to_string(&file).unwrap();
    assert!(lines.contains("\"domain\":\"corp.example\"") && lines.contains("\"seq\":10"), "{lines}");
    let ok = cli.ok(&["audit", "verify", "--checkpoints", &file_arg]);
    assert!(ok.contains("intact: 10 records") && ok.contains("matches its 1 checkpoint lines"), "{ok}");
    server.stop();

    // With the database and the KEK: cut the tenant chain to 7 records and
    // the system chain before its checkpoint, each head with a recomputed MAC.
    let kek = lightwell_ca::kek::Kek::from_file_contents(
        &std::fs::read_to_string(server.data_dir().join("kek.key")).unwrap(),
    )
    .unwrap();
    let log = lightwell_core::audit::AuditLog::new(&kek);
    let db = open_db(&server);
    let scope = tenant_scope(&db);
    let hash7: String =
        db.query_row("SELECT hash FROM audit WHERE scope = ?1 AND seq = 7", [&scope], |r| r.get(0)).unwrap();
    cut_chain(&db, &scope, 7, Some(&log.head_mac(&lightwell_core::TenantId::new(scope.clone()), 7, &hash7)));
    let before_checkpoint: i64 = db
        .query_row("SELECT MIN(seq) - 1 FROM audit WHERE scope = '' AND action = 'audit.checkpoint'", [], |r| r.get(0))
        .unwrap();
    let sys_hash: String = db
        .query_row("SELECT hash FROM audit WHERE scope = '' AND seq = ?1", [before_checkpoint], |r| r.get(0))
        .unwrap();
    let sys_mac = log.head_mac(&lightwell_core::TenantId::system(), before_checkpoint, &sys_hash);
    cut_chain(&db, "", before_checkpoint, Some(&sys_mac));
    drop(db);
    server.start_again();

    // The database alone no longer shows it...
    assert_eq!(cli.json(&["audit", "verify"])["records"], 7);
    assert_eq!(op.json(&["audit", "verify", "--system"])["valid"], true);
    // ...the checkpoint file does, for both chains.
    let (ok, v) = verify_json(&cli, &["--checkpoints", &file_arg]);
    assert!(!ok);
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["broken_at"], 10);
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("chain ends at record 7") && reason.contains("records deleted"), "{reason}");
    let (ok, v) = verify_json(&op, &["--system", "--checkpoints", &file_arg]);
    assert!(!ok && v["valid"] == false, "{v}");

    // Regrowing the chain to its old length does not hide it either.
    for name in ["gina", "hank", "ivan"] {
        cli.ok(&["user", "create", name]);
    }
    assert_eq!(cli.json(&["audit", "verify"])["records"], 10);
    let (ok, v) = verify_json(&cli, &["--checkpoints", &file_arg]);
    assert!(!ok);
    assert_eq!(v["broken_at"], 10, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("(rewritten)"), "{v}");
}

fn operator(server: &TestServer) -> lightwell_testkit::Cli {
    let op = server.cli();
    let ca = server.ca_file().display().to_string();
    let pw = op.secret_file("op.pw", &server.operator_password());
    op.ok(&["login", "--server", &server.url(), "--ca-file", &ca, "--operator", "--password-file", &pw]);
    op
}

#[test]
fn heads_written_before_head_macs_are_sealed_by_the_start_that_migrates() {
    // Migration 0010 adds the head MAC column empty; the start that applies
    // it seals every chain that verifies. Undo 0010 (and every later
    // migration: the store applies those above the highest recorded) to get
    // such a database.
    let mut server = TestServer::start();
    let cli = setup(&server);
    let op = operator(&server);
    server.stop();
    let db = open_db(&server);
    db.execute_batch(&format!(
        // The start re-applies every migration from 0010 on: drop what later ones made.
        "DROP INDEX audit_checkpoints; ALTER TABLE audit_heads DROP COLUMN mac; \
         DROP TABLE ocsp_responders; DROP TABLE trust_changes; DROP TABLE workload_entries; \
         DROP TABLE token_keys; DROP TABLE delta_crls; DROP TABLE federations; DROP TABLE oidc_clients; DROP TABLE revoked_tokens; \
         DELETE FROM schema_migrations WHERE version >= {};",
        10 // lightwell_store::AUDIT_HEAD_MAC_VERSION
    ))
    .unwrap();
    drop(db);
    server.start_again();

    assert_eq!(cli.json(&["audit", "verify"])["valid"], true);
    assert_eq!(op.json(&["audit", "verify", "--system"])["valid"], true);
    let system = op.json(&["audit", "list", "--system"]);
    let sealed: Vec<&serde_json::Value> =
        system.as_array().unwrap().iter().filter(|r| r["action"] == "audit.head_sealed").collect();
    assert_eq!(sealed.len(), 1, "the tenant chain's sealing is on record: {system}");
    cli.ok(&["user", "create", "dave"]);
    assert_eq!(cli.json(&["audit", "verify"])["records"], 8);
}

#[test]
fn a_cut_chain_with_its_head_mac_cleared_is_never_resealed() {
    // Without the KEK an attacker cannot write a head MAC; clearing it, as if
    // the head predated head MACs, must not get the server to seal a cut chain
    // (the system chain included, whose sealing would leave no record).
    let mut server = TestServer::start();
    let cli = setup(&server);
    let op = operator(&server);
    ten_records(&cli);
    server.stop();
    let db = open_db(&server);
    let scope = tenant_scope(&db);
    cut_chain(&db, &scope, 7, Some(""));
    let system_seq: i64 = db.query_row("SELECT seq FROM audit_heads WHERE scope = ''", [], |r| r.get(0)).unwrap();
    cut_chain(&db, "", system_seq - 1, Some(""));
    drop(db);
    server.start_again();
    server.restart();

    let (ok, v) = verify_json(&cli, &[]);
    assert!(!ok, "{v}");
    let (ok, v) = verify_json(&op, &["--system"]);
    assert!(!ok, "{v}");
    let db = open_db(&server);
    let empty: i64 = db.query_row("SELECT COUNT(*) FROM audit_heads WHERE mac = ''", [], |r| r.get(0)).unwrap();
    assert_eq!(empty, 2, "neither head was sealed");
}
