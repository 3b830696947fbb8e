//! Moving a single-node install to PostgreSQL with `lightwelld migrate`:
//! everything is copied as it is — tenants, principals, CAs, certificates,
//! revocations, join tokens, the audit chains — and nothing is re-issued.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use lightwell_proto::{CreateJoinTokenRequest, IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::pki::{self, Files};
use lightwell_testkit::{TestServer, bin, ha};

const T: &str = "corp.example";

fn migrate(from: &str, to: &str) -> std::process::Output {
    Command::new(bin("lightwelld")).args(["migrate", "--from", from, "--to", to]).output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sqlite_install_moves_to_postgres_with_its_certificates_and_audit_chain() {
    let mut server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::user(&server, &admin, T, "alice").await;
    let files = Files::new();
    let issue = |cn: &str| {
        let (_, csr) = files.csr(cn, "ec:P-256", "/CN=administrator", &[]);
        IssueCertificateRequest { csr, ..Default::default() }
    };
    let kept = admin.issue_certificate(T, &issue("kept")).await.unwrap();
    let gone = admin.issue_certificate(T, &issue("gone")).await.unwrap();
    let req = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    admin.revoke_certificate(T, &gone.serial, &req).await.unwrap();
    admin.create_join_token(T, &CreateJoinTokenRequest::default()).await.unwrap();
    let bundle = admin.trust_bundle_pem(T).await.unwrap();
    let certs = admin.list_certificates(T, None).await.unwrap();
    let tokens = admin.list_join_tokens(T).await.unwrap();
    let cas = admin.list_cas(T).await.unwrap();
    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    assert!(server.stop());

    let url = ha::fresh_database(ha::cluster());
    let sqlite = format!("sqlite://{}", server.data_dir().join("lightwell.db").display());
    let out = migrate(&sqlite, &url);
    assert!(out.status.success(), "migrate: {}", String::from_utf8_lossy(&out.stderr));
    let again = migrate(&sqlite, &url);
    assert!(!again.status.success(), "a non-empty target is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds data"));

    // The same data dir (KEK, TLS) on PostgreSQL.
    server.start_again_with(&["--database", &url]);
    let health: serde_json::Value =
        server.raw().get(format!("{}/healthz", server.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["store"], "postgres");
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    assert_eq!(admin.list_certificates(T, None).await.unwrap(), certs, "nothing re-issued");
    assert_eq!(admin.list_join_tokens(T).await.unwrap(), tokens);
    // The same CAs; only the PKI URLs follow the restarted listener's port.
    let same = |c: &lightwell_proto::CaInfo| (c.id.clone(), c.status.clone(), c.is_default, c.pem.clone());
    let moved = admin.list_cas(T).await.unwrap();
    assert_eq!(moved.iter().map(same).collect::<Vec<_>>(), cas.iter().map(same).collect::<Vec<_>>());
    assert_eq!(admin.audit(Some(T), 0, 1000).await.unwrap()[..audit.len()], audit[..]);
    assert_eq!(admin.trust_bundle_pem(T).await.unwrap(), bundle, "the same bundle");

    // The audit chains verify with the CLI, tenant and system.
    let cli = pki::admin_cli(&server, T);
    cli.ok(&["audit", "verify"]);
    let op = server.cli();
    let pw = op.secret_file("op.pw", &server.operator_password());
    let ca = server.ca_file().display().to_string();
    op.ok(&["login", "--server", &server.url(), "--ca-file", &ca, "--operator", "--password-file", &pw]);
    op.ok(&["audit", "verify", "--system"]);

    // A certificate issued before the move still verifies against the same bundle; the revoked one is still revoked.
    let bundle_path = files.write("bundle.pem", &bundle);
    let leaf = files.write("kept.pem", &kept.pem);
    let chain = files.write("kept-chain.pem", &kept.chain_pem);
    let (ok, text) = pki::openssl_verify(&bundle_path, &chain, &leaf, &[]);
    assert!(ok, "{text}");
    let listed = admin.certificate(T, &gone.serial).await.unwrap();
    assert_eq!(listed.revocation_reason.as_deref(), Some("key-compromise"));

    // Logins and new issuance work.
    pki::user(&server, &admin, T, "bob").await;
    server.login(T, "alice", pki::USER_PASSWORD).await.whoami().await.unwrap();
    let fresh = admin.issue_certificate(T, &issue("fresh")).await.unwrap();
    let leaf = files.write("fresh.pem", &fresh.pem);
    let chain = files.write("fresh-chain.pem", &fresh.chain_pem);
    assert!(pki::openssl_verify(&bundle_path, &chain, &leaf, &[]).0);
}
