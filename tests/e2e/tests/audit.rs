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
