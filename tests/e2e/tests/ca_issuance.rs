//! Issuance end to end: every profile and key type yields a chain that
//! `openssl verify` accepts against the tenant's trust bundle, and the CLI
//! generates keys locally.
#![allow(clippy::unwrap_used)]

use lightwell_proto::IssueCertificateRequest;
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, Files};

fn req(csr: String, profile: Option<&str>, principal: Option<&str>) -> IssueCertificateRequest {
    IssueCertificateRequest {
        csr,
        profile: profile.map(str::to_string),
        ttl: None,
        principal: principal.map(str::to_string),
        cluster: None,
    }
}

#[tokio::test]
async fn every_profile_and_key_type_verifies_with_openssl() {
    let server = TestServer::start();
    for (domain, tenant_key) in
        [("p256.example", None), ("rsa.example", Some("rsa3072")), ("ed.example", Some("ed25519"))]
    {
        let admin = pki::tenant(&server, domain, tenant_key).await;
        let web = format!("web.{domain}");
        pki::host(&admin, domain, "services", "web", &[&web], &["10.1.2.3"]).await;
        let alice = pki::user(&server, &admin, domain, "alice").await;
        let files = Files::new();
        let bundle = files.write("bundle.pem", admin.trust_bundle_pem(domain).await.unwrap());
        let cases = [
            ("ec:P-256", "/CN=web", Some("server"), Some("service/web")),
            ("ec:P-384", "/CN=web", Some("server-client"), Some("service/web")),
            ("ed25519", "/CN=web", Some("client"), Some("service/web")),
            ("rsa:2048", "/CN=web", None, Some("service/web")),
        ];
        for (i, (key, subject, profile, principal)) in cases.into_iter().enumerate() {
            let (_, csr) = files.csr(&format!("svc{i}"), key, subject, &[&format!("subjectAltName=DNS:{web}")]);
            let cert = admin.issue_certificate(domain, &req(csr, profile, principal)).await.unwrap();
            let leaf = files.write(&format!("svc{i}.pem"), &cert.pem);
            let chain = files.write(&format!("svc{i}-chain.pem"), &cert.chain_pem);
            let (ok, out) = pki::openssl_verify(&bundle, &chain, &leaf, &[]);
            assert!(ok, "{domain} {key} {profile:?}: {out}");
            assert_eq!(cert.profile, profile.unwrap_or("server-client"));
        }
        let (_, csr) = files.csr("alice", "ec:P-256", "/CN=alice", &[]);
        let cert = alice.issue_certificate(domain, &req(csr, None, None)).await.unwrap();
        assert_eq!((cert.profile.as_str(), cert.principal_name.as_str()), ("client", "alice"));
        let leaf = files.write("alice.pem", &cert.pem);
        let chain = files.write("alice-chain.pem", &cert.chain_pem);
        let (ok, out) = pki::openssl_verify(&bundle, &chain, &leaf, &[]);
        assert!(ok, "{domain} user: {out}");
        let (_, text) =
            pki::run(std::process::Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&leaf));
        assert!(text.contains(&format!("URI:spiffe://{domain}/user/alice")), "{text}");
        assert!(text.contains(&format!("email:alice@{domain}")), "{text}");
    }
}

#[tokio::test]
async fn p384_and_rsa4096_tenants_issue_certificates_openssl_verifies() {
    let server = TestServer::start();
    for (domain, tenant_key, shown) in [("p384.example", "p384", "P-384"), ("rsa4096.example", "rsa4096", "RSA-4096")] {
        let admin = pki::tenant(&server, domain, Some(tenant_key)).await;
        let cas = admin.list_cas(domain).await.unwrap();
        assert!(cas.iter().all(|c| c.key_type == shown), "{domain}: {cas:?}");
        let web = format!("web.{domain}");
        pki::host(&admin, domain, "services", "web", &[&web], &[]).await;
        let files = Files::new();
        let bundle = files.write("bundle.pem", admin.trust_bundle_pem(domain).await.unwrap());
        for (i, key) in ["ec:P-256", "rsa:2048"].into_iter().enumerate() {
            let (_, csr) = files.csr(&format!("web{i}"), key, "/CN=web", &[&format!("subjectAltName=DNS:{web}")]);
            let cert = admin.issue_certificate(domain, &req(csr, None, Some("service/web"))).await.unwrap();
            let leaf = files.write(&format!("web{i}.pem"), &cert.pem);
            let chain = files.write(&format!("web{i}-chain.pem"), &cert.chain_pem);
            let (ok, out) = pki::openssl_verify(&bundle, &chain, &leaf, &[]);
            assert!(ok, "{domain} {key}: {out}");
            let crl = pki::fetch_crl(&files, &leaf, &format!("web{i}-crl")).await;
            let (ok, out) = pki::run(
                std::process::Command::new("openssl")
                    .args(["crl", "-noout", "-CAfile"])
                    .arg(&chain)
                    .arg("-in")
                    .arg(&crl),
            );
            assert!(ok && out.contains("verify OK"), "{domain}: the issuing CA's CRL verifies: {out}");
        }
    }
}

#[tokio::test]
async fn cli_cert_request_generates_the_key_locally_and_writes_the_chain() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start();
    let admin = pki::tenant(&server, "corp.example", None).await;
    pki::host(&admin, "corp.example", "machines", "node1.corp.example", &[], &["10.0.0.7"]).await;
    let cli = server.cli();
    let pw = cli.secret_file("admin.pw", pki::ADMIN_PASSWORD);
    let ca = server.ca_file().display().to_string();
    let url = server.url();
    cli.ok(&[
        "login",
        "--server",
        &url,
        "--ca-file",
        &ca,
        "--tenant",
        "corp.example",
        "--user",
        "administrator",
        "--password-file",
        &pw,
    ]);
    let files = Files::new();
    let key = files.path("node1.key");
    let out = files.path("node1.pem");
    let cert = cli.json(&[
        "cert",
        "request",
        "--key-out",
        key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--principal",
        "machine/node1.corp.example",
        "--ttl",
        "2h",
    ]);
    assert_eq!(cert["principal_name"], "node1.corp.example");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let chain = std::fs::read_to_string(&out).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "leaf followed by the issuing CA");
    let bundle = files.path("bundle.pem");
    cli.ok(&["ca", "bundle", "--out", bundle.to_str().unwrap()]);
    let (ok, text) = pki::openssl_verify(&bundle, &out, &out, &[]);
    assert!(ok, "{text}");
    let listed = cli.json(&["cert", "list", "--principal", "machine/node1.corp.example"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let cas = cli.json(&["ca", "list"]);
    assert_eq!(cas.as_array().unwrap().len(), 2, "root and default issuing CA: {cas}");
    let bundle_json = cli.json(&["ca", "bundle"]);
    assert!(bundle_json["roots"][0]["fingerprint"].as_str().unwrap().starts_with("sha256:"));
}
