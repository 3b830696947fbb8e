//! Revocation end to end: CRLs fetched over plain HTTP from the URLs inside
//! the certificates make `openssl verify -crl_check_all` refuse revoked
//! certificates; CRL Numbers only grow, across restarts too.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use lightwell_client::Client;
use lightwell_proto::{CertificateInfo, IssueCertificateRequest, RevokeRequest, SetPasswordRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, Files};

const DOMAIN: &str = "corp.example";

/// Issues a certificate for `cn` (the requester, or `principal` on its behalf); files are named after `name`.
async fn issue(
    client: &Client,
    files: &Files,
    name: &str,
    cn: &str,
    principal: Option<&str>,
) -> (CertificateInfo, PathBuf, PathBuf) {
    let (_, csr) = files.csr(name, "ec:P-256", &format!("/CN={cn}"), &[]);
    let req = IssueCertificateRequest { csr, principal: principal.map(str::to_string), ..Default::default() };
    let cert = client.issue_certificate(DOMAIN, &req).await.unwrap();
    let leaf = files.write(&format!("{name}.pem"), &cert.pem);
    let chain = files.write(&format!("{name}-chain.pem"), &cert.chain_pem);
    (cert, leaf, chain)
}

/// The issuing CA's CRL (from the leaf's CDP) and the root's CRL (from the issuing CA's CDP), as PEM files.
async fn crls_from_cdps(files: &Files, leaf: &Path, chain: &Path, tag: &str) -> Vec<PathBuf> {
    let issuing_ca = files.write(&format!("{tag}-issuing-ca.pem"), {
        let text = std::fs::read_to_string(chain).unwrap();
        let second = text.match_indices("-----BEGIN CERTIFICATE-----").nth(1).unwrap().0;
        text[second..].to_string()
    });
    vec![
        pki::fetch_crl(files, leaf, &format!("{tag}-issuing")).await,
        pki::fetch_crl(files, &issuing_ca, &format!("{tag}-root")).await,
    ]
}

fn crl_number(pem: &Path) -> u64 {
    let (ok, out) =
        pki::run(std::process::Command::new("openssl").args(["crl", "-noout", "-crlnumber", "-in"]).arg(pem));
    assert!(ok, "{out}");
    u64::from_str_radix(out.trim().trim_start_matches("crlNumber=0x").trim_start_matches("crlNumber="), 16).unwrap()
}

#[tokio::test]
async fn a_revoked_certificate_fails_openssl_crl_check_with_the_crl_from_its_cdp() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, DOMAIN, None).await;
    let files = Files::new();
    let bundle = files.write("bundle.pem", admin.trust_bundle_pem(DOMAIN).await.unwrap());
    let (cert, leaf, chain) = issue(&admin, &files, "administrator", "administrator", None).await;
    let crls = crls_from_cdps(&files, &leaf, &chain, "before").await;
    let (ok, out) = pki::openssl_verify(&bundle, &chain, &leaf, &crls);
    assert!(ok, "valid before revocation: {out}");

    let resp = admin
        .revoke_certificate(
            DOMAIN,
            &cert.serial,
            &RevokeRequest { reason: Some("key-compromise".into()), principal: None },
        )
        .await
        .unwrap();
    assert_eq!(resp.revoked, vec![cert.serial.clone()]);
    let crls = crls_from_cdps(&files, &leaf, &chain, "after").await;
    let (ok, out) = pki::openssl_verify(&bundle, &chain, &leaf, &crls);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    assert!(crl_number(&crls[0]) > crl_number(&files.path("before-issuing.pem")));

    // The CRL served over plain HTTP is the one the API returns.
    let api_pem = admin.ca_crl_pem(DOMAIN, &cert.ca).await.unwrap();
    assert_eq!(api_pem.trim(), std::fs::read_to_string(&crls[0]).unwrap().trim());
    let shown = admin.certificate(DOMAIN, &cert.serial).await.unwrap();
    assert_eq!(shown.revocation_reason.as_deref(), Some("key-compromise"));
}

#[tokio::test]
async fn a_password_reset_revokes_the_users_certificates_and_the_next_crl_lists_them() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, DOMAIN, None).await;
    let alice = pki::user(&server, &admin, DOMAIN, "alice").await;
    let files = Files::new();
    let (c1, leaf, chain) = issue(&alice, &files, "alice", "alice", None).await;
    let (c2, _, _) = issue(&alice, &files, "alice2", "alice", Some("user/alice")).await;
    admin
        .set_password(
            DOMAIN,
            "alice",
            &SetPasswordRequest { new_password: "Another-Passw0rd!".into(), old_password: None },
        )
        .await
        .unwrap();
    for serial in [&c1.serial, &c2.serial] {
        let c = admin.certificate(DOMAIN, serial).await.unwrap();
        assert_eq!(c.revocation_reason.as_deref(), Some("superseded"), "{serial}");
    }
    let crl = pki::fetch_crl(&files, &leaf, "issuing").await;
    let (_, text) = pki::run(std::process::Command::new("openssl").args(["crl", "-noout", "-text", "-in"]).arg(&crl));
    for serial in [&c1.serial, &c2.serial] {
        assert!(text.to_lowercase().contains(serial.as_str()), "CRL lists {serial}:\n{text}");
    }
    let bundle = files.write("bundle.pem", admin.trust_bundle_pem(DOMAIN).await.unwrap());
    let crls = crls_from_cdps(&files, &leaf, &chain, "reset").await;
    let (ok, out) = pki::openssl_verify(&bundle, &chain, &leaf, &crls);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    // The user requests a new certificate with the new password, nothing else to do.
    let alice = server.login(DOMAIN, "alice", "Another-Passw0rd!").await;
    let (fresh, leaf, chain) = issue(&alice, &files, "alice3", "alice", None).await;
    assert!(fresh.revoked_at.is_none());
    let crls = crls_from_cdps(&files, &leaf, &chain, "fresh").await;
    assert!(pki::openssl_verify(&bundle, &chain, &leaf, &crls).0);
}

#[tokio::test]
async fn revoking_an_issuing_ca_fails_every_certificate_under_it() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, DOMAIN, None).await;
    pki::host(&admin, DOMAIN, "machines", "node1.corp.example", &[], &[]).await;
    let cluster = admin
        .create_intermediate(
            DOMAIN,
            &lightwell_proto::CreateIntermediateRequest {
                name: "k8s-prod".into(),
                name_constraints: vec!["corp.example".into()],
                path_len: Some(0),
                make_default: true,
            },
        )
        .await
        .unwrap();
    assert!(cluster.is_default);
    let files = Files::new();
    let bundle = files.write("bundle.pem", admin.trust_bundle_pem(DOMAIN).await.unwrap());
    let mut issued = vec![];
    for (name, cn, principal) in
        [("a", "administrator", None), ("b", "node1.corp.example", Some("machine/node1.corp.example"))]
    {
        let (cert, leaf, chain) = issue(&admin, &files, name, cn, principal).await;
        assert_eq!(cert.ca, "k8s-prod");
        let crls = crls_from_cdps(&files, &leaf, &chain, &format!("{name}-before")).await;
        assert!(pki::openssl_verify(&bundle, &chain, &leaf, &crls).0);
        issued.push((name, leaf, chain));
    }
    let resp = admin
        .revoke_ca(DOMAIN, "k8s-prod", &RevokeRequest { reason: Some("ca-compromise".into()), principal: None })
        .await
        .unwrap();
    assert_eq!(resp.revoked.len(), 2);
    for (name, leaf, chain) in &issued {
        let crls = crls_from_cdps(&files, leaf, chain, &format!("{name}-after")).await;
        let (ok, out) = pki::openssl_verify(&bundle, chain, leaf, &crls);
        assert!(!ok && out.contains("certificate revoked"), "{name}: {out}");
    }
    let (_, text) = pki::run(
        std::process::Command::new("openssl")
            .args(["crl", "-noout", "-text", "-in"])
            .arg(files.path("a-after-root.pem")),
    );
    assert!(text.to_lowercase().contains(&cluster.serial), "root CRL lists the CA:\n{text}");
    // Issuance from a tenant without an active default issuing CA is refused, clearly.
    let (_, csr) = files.csr("c", "ec:P-256", "/CN=administrator", &[]);
    let err =
        admin.issue_certificate(DOMAIN, &IssueCertificateRequest { csr, ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code().unwrap().as_str(), "ca_unavailable");
}

#[tokio::test]
async fn the_crl_number_grows_across_a_restart() {
    let mut server = TestServer::start();
    let admin = pki::tenant(&server, DOMAIN, None).await;
    let files = Files::new();
    let (cert, _, _) = issue(&admin, &files, "administrator", "administrator", None).await;
    let before = pki::der_crl_to_pem(&files, &pem_to_der(&admin.ca_crl_pem(DOMAIN, &cert.ca).await.unwrap()), "before");
    server.restart();
    let admin = server.login(DOMAIN, "administrator", pki::ADMIN_PASSWORD).await;
    admin.revoke_certificate(DOMAIN, &cert.serial, &RevokeRequest::default()).await.unwrap();
    let after = pki::der_crl_to_pem(&files, &pem_to_der(&admin.ca_crl_pem(DOMAIN, &cert.ca).await.unwrap()), "after");
    assert!(crl_number(&after) > crl_number(&before), "{} then {}", crl_number(&before), crl_number(&after));
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(["crl", "-outform", "DER"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(pem.as_bytes()).unwrap();
    child.wait_with_output().unwrap().stdout
}
