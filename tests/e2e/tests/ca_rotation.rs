//! Root rotation end to end: during the overlap certificates of the old and
//! the new hierarchy both verify against the trust bundle; after activation
//! new certificates chain to the new root; the old root leaves the bundle
//! once its last certificate expired (the server's clock is shifted and the
//! CA job runs every second).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lightwell_client::Client;
use lightwell_proto::{CertificateInfo, IssueCertificateRequest};
use lightwell_testkit::pki::{self, Files};
use lightwell_testkit::{Cli, TestServer};

const DOMAIN: &str = "corp.example";
const WEB: &str = "web.corp.example";

fn server() -> TestServer {
    TestServer::start_with(&["--ca-maintenance-interval-secs", "1"])
}

/// Issues a certificate for the service `web`; returns it with its leaf and chain files.
async fn issue(admin: &Client, files: &Files, name: &str, ttl: Option<&str>) -> (CertificateInfo, PathBuf, PathBuf) {
    let (_, csr) = files.csr(name, "ec:P-256", "/CN=web", &[&format!("subjectAltName=DNS:{WEB}")]);
    let req = IssueCertificateRequest {
        csr,
        profile: None,
        ttl: ttl.map(str::to_string),
        principal: Some("service/web".into()),
        cluster: None,
    };
    let cert = admin.issue_certificate(DOMAIN, &req).await.unwrap();
    let leaf = files.write(&format!("{name}.pem"), &cert.pem);
    let chain = files.write(&format!("{name}-chain.pem"), &cert.chain_pem);
    (cert, leaf, chain)
}

async fn setup(server: &TestServer, key_type: Option<&str>) -> (Client, Cli) {
    let admin = pki::tenant(server, DOMAIN, key_type).await;
    pki::host(&admin, DOMAIN, "services", "web", &[WEB], &[]).await;
    (admin, pki::admin_cli(server, DOMAIN))
}

/// Name → status of every CA of the tenant.
fn statuses(cli: &Cli) -> Vec<(String, String)> {
    let cas = cli.json(&["ca", "list"]);
    cas.as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string()))
        .collect()
}

/// The status of the CA `name`, which must exist.
fn status_of(cli: &Cli, name: &str) -> String {
    let all = statuses(cli);
    let found = all.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone());
    found.unwrap_or_else(|| panic!("no CA named {name}: {all:?}"))
}

/// Names of the roots in the trust bundle (public: no login, which a shifted clock would expire).
async fn bundle_roots(server: &TestServer) -> Vec<String> {
    server.client().trust_bundle(DOMAIN).await.unwrap().roots.into_iter().map(|r| r.name).collect()
}

/// Logs in again after the clock moved past the session lifetime.
async fn relogin(server: &TestServer) -> (Client, Cli) {
    let admin = server.login(DOMAIN, "administrator", pki::ADMIN_PASSWORD).await;
    (admin, pki::admin_cli(server, DOMAIN))
}

/// Waits (up to 30 s) for the CA job to make `done` true.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn old_and_new_certificates_verify_during_the_overlap_and_the_old_root_retires_after_its_last_leaf() {
    let server = server();
    let (admin, cli) = setup(&server, None).await;
    let files = Files::new();
    let (_, old_leaf, old_chain) = issue(&admin, &files, "old", Some("1h")).await;

    let rotated = cli.json(&["ca", "rotate"]);
    let names: Vec<_> = rotated.as_array().unwrap().iter().map(|c| (c["name"].clone(), c["status"].clone())).collect();
    assert_eq!(names, [("root-2".into(), "pending".into()), ("issuing-2".into(), "pending".into())]);
    assert_eq!(bundle_roots(&server).await, ["root", "root-2"], "both roots are trusted while pending");
    let (pending_cert, _, _) = issue(&admin, &files, "while-pending", Some("1h")).await;
    assert_eq!(pending_cert.ca, "issuing", "a pending rotation does not issue yet");
    assert_eq!(cli.fails_with(&["ca", "rotate"]), "ca_unavailable", "one rotation at a time");

    let activated = cli.json(&["ca", "rotate", "--activate"]);
    assert!(activated.as_array().unwrap().iter().all(|c| c["status"] == "active"), "{activated}");
    let (new_cert, new_leaf, new_chain) = issue(&admin, &files, "new", None).await;
    assert_eq!(new_cert.ca, "issuing-2");
    assert_eq!(status_of(&cli, "root"), "superseded");
    assert_eq!(status_of(&cli, "issuing"), "superseded");

    let bundle = files.path("bundle.pem");
    cli.ok(&["ca", "bundle", "--out", bundle.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&bundle).unwrap().matches("BEGIN CERTIFICATE").count(), 2);
    for (leaf, chain) in [(&old_leaf, &old_chain), (&new_leaf, &new_chain)] {
        let (ok, out) = pki::openssl_verify(&bundle, chain, leaf, &[]);
        assert!(ok, "{} against the two-root bundle: {out}", leaf.display());
    }
    let json = admin.trust_bundle(DOMAIN).await.unwrap();
    let old_root = files.write("old-root.pem", &json.roots.iter().find(|r| r.name == "root").unwrap().pem);
    let (ok, _) = pki::openssl_verify(&old_root, &new_chain, &new_leaf, &[]);
    assert!(!ok, "the new certificate chains to the new root, not the old one");

    // The old hierarchy's certificates (1 h) expire; the CA job retires its root.
    server.set_clock_offset(2 * 3600);
    eventually("the old root leaves the bundle", async || bundle_roots(&server).await == ["root-2"]).await;
    let (_admin, cli) = relogin(&server).await;
    assert_eq!(status_of(&cli, "root"), "retired");
    assert_eq!(status_of(&cli, "issuing"), "retired");
    cli.ok(&["ca", "bundle", "--out", bundle.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&bundle).unwrap().matches("BEGIN CERTIFICATE").count(), 1);
    let (ok, out) = pki::openssl_verify(&bundle, &new_chain, &new_leaf, &[]);
    assert!(ok, "the new certificate still verifies: {out}");
}

#[tokio::test]
async fn a_pending_rotation_activates_by_itself_after_the_overlap() {
    let server = server();
    let (admin, cli) = setup(&server, None).await;
    let files = Files::new();
    issue(&admin, &files, "old", Some("1h")).await;
    cli.json(&["ca", "rotate"]);

    // Six days in: still inside the default overlap of seven.
    server.set_clock_offset(6 * 24 * 3600);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, cli) = relogin(&server).await;
    assert_eq!(status_of(&cli, "root-2"), "pending");

    server.set_clock_offset(7 * 24 * 3600 + 60);
    let (admin, cli) = relogin(&server).await;
    eventually("the rotation activates", async || status_of(&cli, "root-2") == "active").await;
    let (cert, _, _) = issue(&admin, &files, "after", None).await;
    assert_eq!(cert.ca, "issuing-2");
    // Nothing under the old root is unexpired any more, so it is retired too.
    eventually("the old root leaves the bundle", async || bundle_roots(&server).await == ["root-2"]).await;
}

#[tokio::test]
async fn a_rotation_keeps_the_tenant_key_type_unless_told_otherwise() {
    let server = server();
    let (_admin, cli) = setup(&server, Some("ed25519")).await;
    let rotated = cli.json(&["ca", "rotate"]);
    assert!(rotated.as_array().unwrap().iter().all(|c| c["key_type"] == "Ed25519"), "{rotated}");
    assert_eq!(
        cli.fails_with(&["ca", "rotate", "--activate", "--key-type", "p384"]),
        "invalid_request",
        "the key type of a pending rotation is fixed"
    );
    cli.json(&["ca", "rotate", "--activate"]);
    let again = cli.json(&["ca", "rotate", "--activate", "--key-type", "p384"]);
    assert!(again.as_array().unwrap().iter().all(|c| c["key_type"] == "P-384" && c["status"] == "active"), "{again}");
    assert_eq!(status_of(&cli, "root-3"), "active");
    let root_2 = status_of(&cli, "root-2");
    assert!(
        root_2 == "superseded" || root_2 == "retired",
        "superseded, or already retired as nothing was issued under it: {root_2}"
    );
}
