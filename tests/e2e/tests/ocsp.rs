//! The OCSP responder (RFC 6960) of the real server, driven by `openssl
//! ocsp` and curl: good, then revoked with reason and time right after a
//! revocation, unknown for a serial never issued and for another tenant's
//! certificate; GET and POST; nonces; hostile requests get a
//! malformedRequest response or a 4xx and the server keeps serving; pkilint
//! accepts the responses.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use lightwell_client::Client;
use lightwell_proto::{IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, Files};

const DOMAIN: &str = "corp.example";
const OTHER: &str = "other.example";

/// Issues a leaf; returns its serial, the leaf file and the issuing CA file.
async fn issue(client: &Client, files: &Files, domain: &str, name: &str) -> (String, PathBuf, PathBuf) {
    let (_, csr) = files.csr(name, "ec:P-256", "/CN=administrator", &[]);
    let req = IssueCertificateRequest { csr, ..Default::default() };
    let cert = client.issue_certificate(domain, &req).await.unwrap();
    let leaf = files.write(&format!("{name}.pem"), &cert.pem);
    let text = cert.chain_pem.clone();
    let second = text.match_indices("-----BEGIN CERTIFICATE-----").nth(1).unwrap().0;
    let issuing = files.write(&format!("{name}-issuing.pem"), &text[second..]);
    (cert.serial, leaf, issuing)
}

fn url(server: &TestServer, domain: &str) -> String {
    format!("{}/pki/{domain}/ocsp", server.pki_url())
}

/// `openssl ocsp` against the server; returns success and stdout+stderr.
fn openssl_ocsp(url: &str, issuer: &Path, bundle: &Path, target: &[&str], extra: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["ocsp", "-url", url, "-issuer"]).arg(issuer).arg("-CAfile").arg(bundle).args(target).args(extra);
    pki::run(&mut cmd)
}

fn curl_post(url: &str, body: &Path) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
        ])
        .arg(format!("@{}", body.display()))
        .arg(url)
        .output()
        .unwrap();
    let mut body = out.stdout;
    let at = body.iter().rposition(|b| *b == b'\n').unwrap();
    let code = String::from_utf8_lossy(&body[at + 1..]).to_string();
    body.truncate(at);
    (code, body)
}

/// Response status byte of an OCSPResponse (`30 LL 0a 01 SS ...`).
fn response_status(der: &[u8]) -> Option<u8> {
    let at = der.windows(2).position(|w| w == [0x0a, 0x01])?;
    der.get(at + 2).copied()
}

fn pkilint_errors(files: &Files, name: &str, der: &[u8]) -> Vec<String> {
    let path = files.write(name, der);
    let out = Command::new("lint_ocsp_response").args(["lint", "-s", "WARNING"]).arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .filter(|l| l.contains("(ERROR)") || l.contains("(FATAL)") || l.contains("(WARNING)"))
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn openssl_sees_good_then_revoked_and_unknown_and_pkilint_accepts_the_responses() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, DOMAIN, None).await;
    let files = Files::new();
    let bundle = files.write("bundle.pem", admin.trust_bundle_pem(DOMAIN).await.unwrap());
    let (serial, leaf, issuing) = issue(&admin, &files, DOMAIN, "leaf").await;
    let url = url(&server, DOMAIN);
    let leaf_arg = leaf.to_str().unwrap();

    let (ok, out) = openssl_ocsp(&url, &issuing, &bundle, &["-cert", leaf_arg], &[]);
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{leaf_arg}: good")), "{out}");
    assert!(!out.contains("WARNING: no nonce"), "the nonce openssl sent is echoed: {out}");
    let (ok, out) = openssl_ocsp(&url, &issuing, &bundle, &["-cert", leaf_arg], &["-no_nonce"]);
    assert!(ok && out.contains(": good") && out.contains("Response verify OK"), "{out}");

    // The response as DER, for pkilint, and the GET form of the same request.
    let req = files.path("good.req");
    let resp = files.path("good.resp");
    let (ok, out) = openssl_ocsp(
        &url,
        &issuing,
        &bundle,
        &["-cert", leaf_arg],
        &["-no_nonce", "-reqout", req.to_str().unwrap(), "-respout", resp.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    let good_der = std::fs::read(&resp).unwrap();
    assert_eq!(pkilint_errors(&files, "good.der", &good_der), Vec::<String>::new());
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req).unwrap());
    let encoded: String = b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let got = reqwest::get(format!("{url}/{encoded}")).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "application/ocsp-response");
    let cache = got.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cache.starts_with("max-age=") && !cache.starts_with("max-age=0"), "{cache}");
    let get_der = got.bytes().await.unwrap().to_vec();
    assert_eq!(get_der, good_der, "a GET is served the same pre-signed response");
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(std::fs::read(&req).unwrap());
    let (status, body) = pki::http_get(&format!("{url}/{url_safe}")).await;
    assert_eq!((status, response_status(&body)), (200, Some(0)));

    admin
        .revoke_certificate(DOMAIN, &serial, &RevokeRequest { reason: Some("key-compromise".into()), principal: None })
        .await
        .unwrap();
    let resp = files.path("revoked.resp");
    let (ok, out) =
        openssl_ocsp(&url, &issuing, &bundle, &["-cert", leaf_arg], &["-no_nonce", "-respout", resp.to_str().unwrap()]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{leaf_arg}: revoked")), "right after the revocation: {out}");
    assert!(out.contains("Reason: keyCompromise") && out.contains("Revocation Time:"), "{out}");
    assert_eq!(pkilint_errors(&files, "revoked.der", &std::fs::read(&resp).unwrap()), Vec::<String>::new());

    let (ok, out) = openssl_ocsp(&url, &issuing, &bundle, &["-serial", "0x4242424242424242"], &[]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert!(out.contains("0x4242424242424242: unknown"), "{out}");
}

#[tokio::test]
async fn hostile_requests_are_refused_and_other_tenants_certificates_are_unknown() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, DOMAIN, None).await;
    let other = pki::tenant(&server, OTHER, None).await;
    let files = Files::new();
    let bundle = files.write("bundle.pem", admin.trust_bundle_pem(DOMAIN).await.unwrap());
    let (_, leaf, issuing) = issue(&admin, &files, DOMAIN, "a").await;
    let (_, b_leaf, b_issuing) = issue(&other, &files, OTHER, "b").await;
    let url = url(&server, DOMAIN);

    // Tenant B's certificate asked at tenant A's URL: unknown, never B's status.
    let (_, out) = openssl_ocsp(&url, &b_issuing, &bundle, &["-cert", b_leaf.to_str().unwrap()], &[]);
    assert!(out.contains(": unknown"), "{out}");
    assert!(!out.contains(": good"), "{out}");

    // A valid request to learn its shape, then hostile variants of it.
    let req = files.path("a.req");
    let (ok, out) =
        openssl_ocsp(&url, &issuing, &bundle, &["-cert", leaf.to_str().unwrap()], &["-reqout", req.to_str().unwrap()]);
    assert!(ok, "{out}");
    let valid = std::fs::read(&req).unwrap();
    let garbage = files.write("garbage.req", b"this is not DER at all");
    let truncated = files.write("truncated.req", &valid[..valid.len() - 3]);
    // 17 CertIDs (one over the limit) fit in 8 KiB: malformedRequest. 1000
    // do not: the body limit refuses them before they are read.
    let request_for = |name: &str, n: usize| {
        let path = files.path(name);
        let mut cmd = Command::new("openssl");
        cmd.args(["ocsp", "-no_nonce", "-issuer"]).arg(&issuing).arg("-reqout").arg(&path);
        for i in 1..=n {
            cmd.args(["-serial", &format!("0x{i:x}")]);
        }
        let (ok, out) = pki::run(&mut cmd);
        assert!(ok, "{out}");
        path
    };
    let seventeen = request_for("seventeen.req", 17);
    let many = request_for("many.req", 1000);
    for body in [&garbage, &truncated, &seventeen] {
        let (code, der) = curl_post(&url, body);
        assert_eq!((code.as_str(), response_status(&der)), ("200", Some(1)), "{}: malformedRequest", body.display());
    }
    assert_eq!(curl_post(&url, &many).0, "413");
    // Oversized: the body limit refuses it before it is read.
    let big = files.write("big.req", vec![0x30u8; 64 * 1024]);
    let (code, _) = curl_post(&url, &big);
    assert_eq!(code, "413");
    // Bad base64 in a GET.
    let (status, der) = pki::http_get(&format!("{url}/!!!notbase64!!!")).await;
    assert_eq!((status, response_status(&der)), (200, Some(1)));
    // A tenant that does not exist: unauthorized.
    let (code, der) = curl_post(&format!("{}/pki/nowhere.example/ocsp", server.pki_url()), &req);
    assert_eq!((code.as_str(), response_status(&der)), ("200", Some(6)));

    // The server keeps serving.
    let (ok, out) = openssl_ocsp(&url, &issuing, &bundle, &["-cert", leaf.to_str().unwrap()], &[]);
    assert!(ok && out.contains(": good") && out.contains("Response verify OK"), "{out}");
}

/// The OCSP URL a certificate names in its AIA (`openssl x509 -ocsp_uri`).
fn ocsp_uri(cert: &Path) -> String {
    let out = Command::new("openssl").args(["x509", "-noout", "-ocsp_uri", "-in"]).arg(cert).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn leaves_name_the_responder_unless_the_tenant_policy_turns_it_off() {
    let mut server = TestServer::start();
    let admin = pki::tenant(&server, DOMAIN, None).await;
    let files = Files::new();
    let bundle = files.write("bundle.pem", admin.trust_bundle_pem(DOMAIN).await.unwrap());
    let (_, leaf, issuing) = issue(&admin, &files, DOMAIN, "named").await;

    // On by default: the URL in the certificate is the one that answers.
    let named = ocsp_uri(&leaf);
    assert_eq!(named, url(&server, DOMAIN), "the leaf's AIA names the tenant's responder");
    let (ok, out) = openssl_ocsp(&named, &issuing, &bundle, &["-cert", leaf.to_str().unwrap()], &[]);
    assert!(ok && out.contains(": good") && out.contains("Response verify OK"), "{out}");

    // The tenant policy switch `ca.ocsp` (stored policy JSON) turned off:
    // new leaves name no responder; the responder still answers.
    assert!(server.stop());
    {
        let db = rusqlite::Connection::open(server.data_dir().join("lightwell.db")).unwrap();
        let policy: String =
            db.query_row("SELECT policy FROM tenants WHERE domain = ?1", [DOMAIN], |r| r.get(0)).unwrap();
        let mut policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
        policy["ca"] = serde_json::json!({ "ocsp": false });
        db.execute("UPDATE tenants SET policy = ?1 WHERE domain = ?2", [policy.to_string(), DOMAIN.to_string()])
            .unwrap();
    }
    server.start_again();
    let admin = server.login(DOMAIN, "administrator", pki::ADMIN_PASSWORD).await;
    let (_, unnamed, _) = issue(&admin, &files, DOMAIN, "unnamed").await;
    assert_eq!(ocsp_uri(&unnamed), "", "no OCSP URL once the policy turns it off");
    let (ok, out) = openssl_ocsp(&url(&server, DOMAIN), &issuing, &bundle, &["-cert", unnamed.to_str().unwrap()], &[]);
    assert!(ok && out.contains(": good"), "the responder answers either way: {out}");
}
