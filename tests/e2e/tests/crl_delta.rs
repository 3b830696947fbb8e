//! Delta CRLs (RFC 5280 section 5.2.4; issue 18 item 2): an issuing CA's
//! complete CRL and its leaves name the CA's delta CRL (Freshest CRL), and
//! every signing publishes a delta CRL listing what was revoked since its
//! base. A relying party holding an older complete CRL sees a revocation
//! from the small delta alone (`openssl verify -crl_check -use_deltas`); the
//! agent keeps the delta beside the complete CRL and in its CApath.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lightwell_client::Client;
use lightwell_proto::{CertificateInfo, CreateJoinTokenRequest, IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::node::{Node, wait_until};
use lightwell_testkit::pki::{self, Files};

const T: &str = "corp.example";

async fn issue(admin: &Client, files: &Files, name: &str) -> (CertificateInfo, PathBuf, PathBuf) {
    let (_, csr) = files.csr(name, "ec:P-256", "/CN=administrator", &[]);
    let cert = admin.issue_certificate(T, &IssueCertificateRequest { csr, ..Default::default() }).await.unwrap();
    let leaf = files.write(&format!("{name}.pem"), &cert.pem);
    let chain = files.write(&format!("{name}-chain.pem"), &cert.chain_pem);
    (cert, leaf, chain)
}

/// `openssl crl -text` of a PEM CRL.
fn crl_text(pem: &Path) -> String {
    let (ok, out) = pki::run(Command::new("openssl").args(["crl", "-noout", "-text", "-in"]).arg(pem));
    assert!(ok, "openssl crl: {out}");
    out
}

/// The number printed after `extension` in `openssl crl -text`.
fn number_after(text: &str, extension: &str) -> u64 {
    lightwell_testkit::ha::number_after(text, extension).unwrap_or_else(|| panic!("no {extension} in {text}"))
}

/// `openssl verify -crl_check` of `leaf` (its issuing CA's CRLs only)
/// against `-CRLfile`s or a CApath; with `deltas`, as RFC 5280 asks of a
/// relying party that uses delta CRLs (`-extended_crl -use_deltas`).
fn verify(
    bundle: &Path,
    chain: &Path,
    leaf: &Path,
    crls: &[&Path],
    capath: Option<&Path>,
    deltas: bool,
) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.arg("verify").arg("-crl_check").arg("-CAfile").arg(bundle).arg("-untrusted").arg(chain);
    if deltas {
        cmd.args(["-extended_crl", "-use_deltas"]);
    }
    for crl in crls {
        cmd.arg("-CRLfile").arg(crl);
    }
    if let Some(dir) = capath {
        cmd.arg("-CApath").arg(dir);
    }
    pki::run(cmd.arg(leaf))
}

fn refused(result: (bool, String), what: &str) {
    let (ok, out) = result;
    assert!(!ok && out.contains("certificate revoked"), "{what}: {out}");
}

fn accepted(result: (bool, String), what: &str) {
    let (ok, out) = result;
    assert!(ok, "{what}: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_is_seen_from_the_delta_crl_alone_by_openssl_and_reaches_the_agent_beside_the_crl() {
    let server = TestServer::start();
    // The server's clock starts 5,000 s back, so that a revocation can be
    // older than a delta's base by more than the base's hour (and every
    // CRL is still in the past for OpenSSL, which reads the real clock).
    server.set_clock_offset(-5000);
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    let bundle = files.write("bundle.pem", admin.trust_bundle_pem(T).await.unwrap());
    let mut node = Node::new(server.scratch(), "node1.corp.example");
    let req = CreateJoinTokenRequest { hostname: Some(node.hostname.clone()), ..Default::default() };
    let token = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
    let out = node.join(&server, T, Some(&token));
    assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
    node.start_agent();

    let ca = admin.list_cas(T).await.unwrap().into_iter().find(|c| c.is_default).unwrap().id;
    let (old, old_leaf, old_chain) = issue(&admin, &files, "old").await;
    let (between, _, _) = issue(&admin, &files, "between").await;
    let (revoked, leaf, chain) = issue(&admin, &files, "revoked").await;
    let (_, kept, kept_chain) = issue(&admin, &files, "kept").await;
    // The leaf names the delta CRL beside its CRL.
    let delta_url = format!("{}/pki/{T}/ca/{ca}.delta.crl", server.pki_url());
    assert_eq!(pki::extension_uris(&leaf, "freshestCRL"), vec![delta_url.clone()]);
    let cdp = pki::extension_uris(&leaf, "crlDistributionPoints").pop().unwrap();
    assert_eq!(cdp, format!("{}/pki/{T}/ca/{ca}.crl", server.pki_url()));

    // One revocation long ago, one after the base's hour (which makes the
    // complete CRL signed with it the new base), then the one to see.
    let reason = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    admin.revoke_certificate(T, &old.serial, &reason).await.unwrap();
    server.set_clock_offset(-500);
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    admin.revoke_certificate(T, &between.serial, &reason).await.unwrap();

    // The complete CRL a relying party fetched before the last revocation: it names the delta CRL too.
    let (status, der) = pki::http_get(&cdp).await;
    assert_eq!(status, 200);
    let base = pki::der_crl_to_pem(&files, &der, "base");
    let base_text = crl_text(&base);
    assert!(base_text.contains("Freshest CRL") && base_text.contains(&delta_url), "{base_text}");
    assert!(!base_text.contains("Delta CRL Indicator"), "{base_text}");

    admin.revoke_certificate(T, &revoked.serial, &reason).await.unwrap();
    let (status, delta_der) = pki::http_get(&delta_url).await;
    assert_eq!(status, 200, "GET {delta_url}");
    let delta = pki::der_crl_to_pem(&files, &delta_der, "delta");
    let delta_text = crl_text(&delta);
    assert!(delta_text.contains("Delta CRL Indicator: critical"), "{delta_text}");
    let lists = |text: &str, serial: &str| text.contains(&serial.trim_start_matches('0').to_uppercase());
    assert!(lists(&delta_text, &revoked.serial), "{delta_text}");
    assert!(!lists(&delta_text, &old.serial), "the delta lists only what is newer than its base: {delta_text}");
    // It applies to the base held: numbered after it, for a base no newer (RFC 5280 section 5.2.4).
    let base_number = number_after(&base_text, "X509v3 CRL Number");
    assert_eq!(number_after(&delta_text, "X509v3 Delta CRL Indicator"), base_number, "{delta_text}");
    assert!(number_after(&delta_text, "X509v3 CRL Number") > base_number, "{delta_text}");

    // The base alone still accepts the certificate; with the delta, OpenSSL
    // refuses it, and still refuses the one only the base lists.
    accepted(verify(&bundle, &chain, &leaf, &[&base], None, true), "the base predates the revocation");
    refused(verify(&bundle, &chain, &leaf, &[&base, &delta], None, true), "listed in the delta");
    refused(verify(&bundle, &old_chain, &old_leaf, &[&base, &delta], None, true), "listed in the base only");
    accepted(verify(&bundle, &kept_chain, &kept, &[&base, &delta], None, true), "listed in neither");

    // The agent writes the served delta CRL beside the complete one and hashes both into its CApath.
    let held = node.state.join("crl").join(format!("{ca}.delta.crl.pem"));
    let served_pem = std::fs::read_to_string(&delta).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || std::fs::read_to_string(&held)
            .is_ok_and(|p| p.trim() == served_pem.trim())),
        "the agent never wrote the served delta CRL to {}",
        held.display()
    );
    let (ok, hash) = pki::run(Command::new("openssl").args(["crl", "-noout", "-hash", "-in"]).arg(&delta));
    assert!(ok, "{hash}");
    let capath = node.state.join("capath");
    for n in ["r0", "r1"] {
        assert!(capath.join(format!("{}.{n}", hash.trim())).exists(), "capath/{}.{n}", hash.trim());
    }
    let crl_pem = std::fs::read_to_string(node.state.join("crl.pem")).unwrap();
    assert!(!crl_pem.contains(served_pem.trim()), "crl.pem holds complete CRLs only");
    let capath = Some(capath.as_path());
    refused(verify(&bundle, &chain, &leaf, &[], capath, true), "CApath, with deltas");
    refused(verify(&bundle, &old_chain, &old_leaf, &[], capath, true), "CApath, with deltas, base only");
    accepted(verify(&bundle, &kept_chain, &kept, &[], capath, true), "CApath, with deltas");
    // A reader that knows nothing of deltas checks against the complete CRL,
    // not the delta beside it (the delta is dated a second earlier).
    refused(verify(&bundle, &old_chain, &old_leaf, &[], capath, false), "CApath, without deltas");
    refused(verify(&bundle, &chain, &leaf, &[], capath, false), "CApath, without deltas");
}

#[tokio::test]
async fn only_an_issuing_ca_has_a_delta_crl_and_malformed_names_are_not_found() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let cas = admin.list_cas(T).await.unwrap();
    let root = cas.iter().find(|c| c.role == "root").unwrap();
    let issuing = cas.iter().find(|c| c.is_default).unwrap();
    let url = |file: &str| format!("{}/pki/{T}/ca/{file}", server.pki_url());
    let (status, _) = pki::http_get(&url(&format!("{}.delta.crl", issuing.id))).await;
    assert_eq!(status, 200);
    // A root lists only its intermediates: no delta CRL, and its CRL names none.
    let (status, _) = pki::http_get(&url(&format!("{}.delta.crl", root.id))).await;
    assert_eq!(status, 404);
    for hostile in [
        format!("{}.delta.delta.crl", issuing.id),
        format!("{}.DELTA.crl", issuing.id),
        format!("{}.delta", issuing.id),
        format!("{}..crl", issuing.id),
        format!("{}.delta.crl.", issuing.id),
        ".delta.crl".to_string(),
        "..%2F..%2Fetc%2Fpasswd.delta.crl".to_string(),
        format!("{}%00.delta.crl", issuing.id),
    ] {
        let (status, body) = pki::http_get(&url(&hostile)).await;
        assert_eq!(status, 404, "{hostile}: {}", String::from_utf8_lossy(&body));
    }
    let (status, _) =
        pki::http_get(&format!("{}/pki/other.example/ca/{}.delta.crl", server.pki_url(), issuing.id)).await;
    assert_eq!(status, 404, "another tenant's name");
}
