//! What a new user trips over (issue 14, papercuts), each fixed and pinned:
//! revocation reasons as RFC 5280 spells them, principals named without
//! their kind, and a server started on a database `init` never saw.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, Files};
use lightwell_testkit::postgres::PgCluster;

const T: &str = "corp.example";

#[tokio::test(flavor = "multi_thread")]
async fn revocation_reasons_are_taken_as_rfc_5280_and_openssl_spell_them() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::host(&admin, T, "services", "payments", &["payments.corp.example"], &[]).await;
    let cli = pki::admin_cli(&server, T);
    let files = Files::new();
    let mut serials = Vec::new();
    for i in 0..3 {
        let (key, out) = (files.path(&format!("p{i}.key")), files.path(&format!("p{i}.pem")));
        cli.ok(&[
            "cert",
            "request",
            "--principal",
            "service/payments",
            "--key-out",
            key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let out = Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(&out).output().unwrap();
        serials.push(String::from_utf8(out.stdout).unwrap().trim().trim_start_matches("serial=").to_lowercase());
    }
    for (serial, reason, stored) in [
        (&serials[0], "keyCompromise", "key-compromise"),
        (&serials[1], "CessationOfOperation", "cessation-of-operation"),
        (&serials[2], "4", "superseded"),
    ] {
        cli.ok(&["cert", "revoke", "--serial", serial, "--reason", reason]);
        let shown = cli.json(&["cert", "show", serial]);
        assert_eq!(shown["revocation_reason"], stored, "{reason}: {shown}");
    }
    // A reason that is none says which ones are.
    let out = cli.run(&["cert", "revoke", "--serial", &serials[0], "--reason", "stolen"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key-compromise") && err.contains("keyCompromise"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_principal_may_be_named_without_its_kind_when_the_name_is_unambiguous() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::host(&admin, T, "services", "payments", &["payments.corp.example"], &[]).await;
    let cli = pki::admin_cli(&server, T);
    let files = Files::new();
    let (key, out) = (files.path("p.key"), files.path("p.pem"));
    cli.ok(&[
        "cert",
        "request",
        "--principal",
        "payments",
        "--key-out",
        key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&out).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("URI:spiffe://corp.example/service/payments"));
    let listed = cli.json(&["cert", "list", "--principal", "payments"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // A group of the same name makes it ambiguous: the error lists both.
    cli.ok(&["group", "create", "payments"]);
    let out = cli.run(&["cert", "list", "--principal", "payments"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("group/payments") && err.contains("service/payments"), "{err}");
    // Nobody of that name: not found.
    assert_eq!(cli.fails_with(&["cert", "list", "--principal", "nobody"]), "principal_not_found");
}

#[test]
fn a_server_refuses_a_database_that_init_never_initialized() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("never_initialized");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // `init` without --database initializes the data dir's SQLite file...
    let out =
        Command::new(lightwell_testkit::bin("lightwelld")).args(["init", "--data-dir"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // ...so a start on PostgreSQL would have no operator: refused, saying what to run.
    let out = Command::new(lightwell_testkit::bin("lightwelld"))
        .args(["--data-dir"])
        .arg(&data)
        .args(["--database", &url, "--listen-api", "127.0.0.1:0", "--listen-pki", "127.0.0.1:0"])
        .args(["--listen-ldaps", "127.0.0.1:0", "--listen-ldap", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("never initialized") && err.contains("lightwelld init"), "{err}");
    assert!(!err.contains("lightwell@"), "the database URL's user is not printed: {err}");
}
