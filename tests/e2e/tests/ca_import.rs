//! Bring-your-own CA end to end: an enterprise root made by OpenSSL signs the
//! CSR of an intermediate whose key Lightwell generated and keeps; imported
//! roots and intermediates with their keys; and every unusable import
//! refused with a clear error and nothing stored.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use lightwell_client::Client;
use lightwell_proto::{CertificateInfo, IssueCertificateRequest};
use lightwell_testkit::pki::{self, Files};
use lightwell_testkit::{Cli, TestServer};

const DOMAIN: &str = "corp.example";
const WEB: &str = "web.corp.example";

async fn setup(server: &TestServer) -> (Client, Cli) {
    let admin = pki::tenant(server, DOMAIN, None).await;
    pki::host(&admin, DOMAIN, "services", "web", &[WEB], &[]).await;
    (admin, pki::admin_cli(server, DOMAIN))
}

async fn issue(admin: &Client, files: &Files, name: &str) -> (CertificateInfo, PathBuf, PathBuf) {
    let (_, csr) = files.csr(name, "ec:P-256", "/CN=web", &[&format!("subjectAltName=DNS:{WEB}")]);
    let req =
        IssueCertificateRequest { csr, profile: None, ttl: None, principal: Some("service/web".into()), cluster: None };
    let cert = admin.issue_certificate(DOMAIN, &req).await.unwrap();
    let leaf = files.write(&format!("{name}.pem"), &cert.pem);
    let chain = files.write(&format!("{name}-chain.pem"), &cert.chain_pem);
    (cert, leaf, chain)
}

fn ca_count(cli: &Cli) -> usize {
    cli.json(&["ca", "list"]).as_array().unwrap().len()
}

#[tokio::test]
async fn an_enterprise_root_signs_the_intermediate_csr_and_its_leaves_verify_against_that_root() {
    let server = TestServer::start();
    let (admin, cli) = setup(&server).await;
    let files = Files::new();
    let (ent_root, ent_key) = files.openssl_self_signed("enterprise-root", "/O=Enterprise/CN=Enterprise Root", true);

    let csr = files.path("lightwell.csr");
    let pending =
        cli.json(&["ca", "create-intermediate", "enterprise", "--external", "--csr-out", csr.to_str().unwrap()]);
    assert_eq!(pending["name"], "enterprise");
    let csr_text = std::fs::read_to_string(&csr).unwrap();
    assert!(csr_text.contains("BEGIN CERTIFICATE REQUEST") && !csr_text.contains("PRIVATE KEY"));
    assert_eq!(cli.fails_with(&["ca", "create-intermediate", "enterprise", "--external"]), "already_exists");

    // A CA certificate for some other key is not the answer to this CSR.
    let other_key = files.openssl_key("other");
    let other_csr = files.openssl_csr_for("other", &other_key, "/CN=other");
    let wrong = files.openssl_sign_ca("wrong", &other_csr, &ent_root, &ent_key);
    assert_eq!(
        cli.fails_with(&["ca", "install", "enterprise", "--cert", wrong.to_str().unwrap()]),
        "invalid_ca_certificate"
    );
    assert_eq!(ca_count(&cli), 2, "nothing stored");

    let signed = files.openssl_sign_ca("enterprise-intermediate", &csr, &ent_root, &ent_key);
    let installed = cli.json(&["ca", "install", "enterprise", "--cert", signed.to_str().unwrap(), "--default"]);
    assert_eq!((installed["role"].as_str(), installed["status"].as_str()), (Some("intermediate"), Some("active")));
    assert_eq!(installed["is_default"], true);
    assert!(!installed.to_string().contains("PRIVATE KEY"), "no key is ever returned");
    assert_eq!(cli.fails_with(&["ca", "install", "enterprise", "--cert", signed.to_str().unwrap()]), "ca_not_found");

    let (cert, leaf, chain) = issue(&admin, &files, "web").await;
    assert_eq!(cert.ca, "enterprise");
    let (ok, out) = pki::openssl_verify(&ent_root, &chain, &leaf, &[]);
    assert!(ok, "openssl verify -CAfile enterprise-root.pem -untrusted chain: {out}");
    // The CRL at the leaf's CDP is signed by the installed intermediate (the
    // enterprise root's own CRL is the enterprise's business, hence -crl_check, not _all).
    let crl = pki::fetch_crl(&files, &leaf, "enterprise-crl").await;
    let (ok, out) = pki::run(
        std::process::Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&ent_root)
            .arg("-untrusted")
            .arg(&chain)
            .arg("-crl_check")
            .arg("-CRLfile")
            .arg(&crl)
            .arg(&leaf),
    );
    assert!(ok, "with the intermediate's CRL: {out}");
}

#[tokio::test]
async fn an_imported_root_joins_the_bundle_and_an_imported_intermediate_issues() {
    let server = TestServer::start();
    let (admin, cli) = setup(&server).await;
    let files = Files::new();
    let (root, root_key) = files.openssl_self_signed("byo-root", "/O=BYO/CN=BYO Root", true);
    let imported = cli.json(&[
        "ca",
        "import",
        "--cert",
        root.to_str().unwrap(),
        "--key",
        root_key.to_str().unwrap(),
        "--name",
        "byo-root",
    ]);
    assert_eq!((imported["role"].as_str(), imported["name"].as_str()), (Some("root"), Some("byo-root")));
    let bundle = admin.trust_bundle(DOMAIN).await.unwrap();
    let mut roots: Vec<_> = bundle.roots.iter().map(|r| r.name.as_str()).collect();
    roots.sort_unstable();
    assert_eq!(roots, ["byo-root", "root"]);
    assert_eq!(
        cli.fails_with(&["ca", "import", "--cert", root.to_str().unwrap(), "--key", root_key.to_str().unwrap()]),
        "already_exists"
    );

    let int_key = files.openssl_key("byo-int");
    let int_csr = files.openssl_csr_for("byo-int", &int_key, "/O=BYO/CN=BYO Issuing");
    let int = files.openssl_sign_ca("byo-int", &int_csr, &root, &root_key);
    let args = ["ca", "import", "--cert", int.to_str().unwrap(), "--key", int_key.to_str().unwrap(), "--default"];
    let imported = cli.json(&args);
    assert_eq!((imported["role"].as_str(), imported["is_default"].as_bool()), (Some("intermediate"), Some(true)));

    let (cert, leaf, chain) = issue(&admin, &files, "web").await;
    assert_eq!(cert.ca, imported["name"].as_str().unwrap());
    let bundle_file = files.path("bundle.pem");
    cli.ok(&["ca", "bundle", "--out", bundle_file.to_str().unwrap()]);
    let (ok, out) = pki::openssl_verify(&bundle_file, &chain, &leaf, &[]);
    assert!(ok, "a leaf of the imported intermediate verifies against the tenant bundle: {out}");
}

#[tokio::test]
async fn unusable_imports_are_refused_and_store_nothing() {
    let server = TestServer::start();
    let (_admin, cli) = setup(&server).await;
    let files = Files::new();
    let (root, _) = files.openssl_self_signed("root-a", "/CN=A", true);
    let other_key = files.openssl_key("key-b");
    let (leaf, leaf_key) = files.openssl_self_signed("not-a-ca", "/CN=not a CA", false);
    let garbage = files
        .write("garbage.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n");
    let text = files.write("text.pem", "hello");
    let (responder, responder_key) =
        files.openssl_self_signed("responder", "/O=Lightwell/OU=corp.example/CN=OCSP responder", true);
    let (shouted, shouted_key) =
        files.openssl_self_signed("shouted", "/O=LIGHTWELL/OU=Corp.Example/CN=ocsp RESPONDER", true);
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    for (what, cert, key) in [
        ("a key that is not the certificate's", path(&root), path(&other_key)),
        ("a certificate that is not a CA", path(&leaf), path(&leaf_key)),
        ("a PEM block of garbage", path(&garbage), path(&other_key)),
        ("no PEM at all", path(&text), path(&other_key)),
        ("a key file that is not a key", path(&root), path(&text)),
        ("a CA named like the tenant's OCSP responder", path(&responder), path(&responder_key)),
        ("the responder's name in other letter case", path(&shouted), path(&shouted_key)),
    ] {
        let code = cli.fails_with(&["ca", "import", "--cert", &cert, "--key", &key]);
        assert_eq!(code, "invalid_ca_certificate", "{what}");
    }
    assert_eq!(ca_count(&cli), 2, "nothing was stored");
    let (root_b, key_b) = files.openssl_self_signed("root-b", "/CN=B", true);
    let args = ["ca", "import", "--cert", &path(&root_b), "--key", &path(&key_b), "--default"];
    assert_eq!(cli.fails_with(&args), "invalid_request", "a root is not an issuing CA");
    assert_eq!(ca_count(&cli), 2);
    let audit = cli.ok(&["audit", "list"]);
    assert!(!audit.contains("PRIVATE KEY"), "no key material in the audit log");
}
