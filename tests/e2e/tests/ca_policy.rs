//! The issuance policy matrix and bad input: each refusal has its error
//! code, and nothing is stored for it. Also authentication by TLS client
//! certificate, and its refusals.
#![allow(clippy::unwrap_used)]

use lightwell_client::Client;
use lightwell_proto::{IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, Files};

const DOMAIN: &str = "corp.example";

fn req(csr: String, ttl: Option<&str>, principal: Option<&str>) -> IssueCertificateRequest {
    IssueCertificateRequest {
        csr,
        profile: None,
        ttl: ttl.map(str::to_string),
        principal: principal.map(str::to_string),
        cluster: None,
    }
}

async fn refused(client: &Client, tenant: &str, r: &IssueCertificateRequest) -> String {
    client.issue_certificate(tenant, r).await.unwrap_err().code().expect("an API error").as_str().to_string()
}

#[tokio::test]
async fn the_policy_matrix_refuses_with_named_codes_and_stores_nothing() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, DOMAIN, None).await;
    let other = pki::tenant(&server, "other.example", None).await;
    pki::host(&admin, DOMAIN, "machines", "node1.corp.example", &[], &["10.0.0.1"]).await;
    let alice = pki::user(&server, &admin, DOMAIN, "alice").await;
    let node = Some("machine/node1.corp.example");
    let files = Files::new();
    let csr = |name: &str, subject: &str, ext: &[&str]| files.csr(name, "ec:P-256", subject, ext).1;
    let cases: Vec<(&str, &Client, IssueCertificateRequest, &str)> = vec![
        (
            "machine asks for a hostname it does not own",
            &admin,
            req(csr("m1", "/CN=node1.corp.example", &["subjectAltName=DNS:node2.corp.example"]), None, node),
            "policy_violation",
        ),
        (
            "machine asks for an IP it does not own",
            &admin,
            req(csr("m2", "/CN=node1.corp.example", &["subjectAltName=IP:10.9.9.9"]), None, node),
            "policy_violation",
        ),
        (
            "user asks for a DNS SAN",
            &alice,
            req(csr("u1", "/CN=alice", &["subjectAltName=DNS:alice.corp.example"]), None, None),
            "policy_violation",
        ),
        (
            "CA:true",
            &alice,
            req(csr("u2", "/CN=alice", &["basicConstraints=critical,CA:TRUE"]), None, None),
            "policy_violation",
        ),
        (
            "keyCertSign",
            &alice,
            req(csr("u3", "/CN=alice", &["keyUsage=critical,keyCertSign"]), None, None),
            "policy_violation",
        ),
        (
            "wildcard",
            &admin,
            req(csr("m3", "/CN=node1.corp.example", &["subjectAltName=DNS:*.corp.example"]), None, node),
            "policy_violation",
        ),
        ("another CN", &alice, req(csr("u4", "/CN=bob", &[]), None, None), "policy_violation"),
        (
            "TTL above the maximum (refused, not clipped)",
            &alice,
            req(csr("u5", "/CN=alice", &[]), Some("31d"), None),
            "policy_violation",
        ),
        (
            "a user on behalf of another",
            &alice,
            req(csr("u6", "/CN=administrator", &[]), None, Some("user/administrator")),
            "forbidden",
        ),
        ("a request into another tenant", &alice, req(csr("u7", "/CN=alice", &[]), None, None), "forbidden"),
    ];
    for (what, client, r, code) in &cases {
        let tenant = if what.contains("another tenant") { "other.example" } else { DOMAIN };
        assert_eq!(refused(client, tenant, r).await, *code, "{what}");
    }
    assert!(admin.list_certificates(DOMAIN, None).await.unwrap().is_empty(), "nothing stored");
    assert!(other.list_certificates("other.example", None).await.unwrap().is_empty(), "nothing stored");
    // Every refusal is audited.
    let audit = admin.audit(Some(DOMAIN), 0, 1000).await.unwrap();
    let refusals = audit.iter().filter(|a| a.action == "certificate.issue" && a.outcome == "failure").count();
    assert!(refusals >= 8, "{refusals} refusals audited");
    // A disabled principal gets nothing.
    admin.principal_action(DOMAIN, "machines", "node1.corp.example", "disable").await.unwrap();
    let r = req(csr("m4", "/CN=node1.corp.example", &[]), None, node);
    assert_eq!(refused(&admin, DOMAIN, &r).await, "account_disabled");
}

#[tokio::test]
async fn malformed_csrs_get_a_clear_4xx_and_store_nothing() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, DOMAIN, None).await;
    let files = Files::new();
    let (_, good) = files.csr("good", "ec:P-256", "/CN=administrator", &[]);
    let good_der = {
        let path = files.write("good.csr", &good);
        let (ok, _) = pki::run(
            std::process::Command::new("openssl")
                .args(["req", "-outform", "DER", "-out"])
                .arg(files.path("good.der"))
                .arg("-in")
                .arg(&path),
        );
        assert!(ok);
        std::fs::read(files.path("good.der")).unwrap()
    };
    use base64::Engine as _;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let mut bad_sig = good_der.clone();
    let last = bad_sig.len() - 3;
    bad_sig[last] ^= 0x55;
    let (_, rsa1024) = files.csr("weak", "rsa:1024", "/CN=administrator", &[]);
    let (_, p521) = files.csr("p521", "ec:P-521", "/CN=administrator", &[]);
    let pem_of = |n: usize| {
        format!("-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n", "A".repeat(n))
    };
    let big = pem_of(900 * 1024);
    let huge = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        "A".repeat(3 * 1024 * 1024)
    );
    let cases = [
        ("truncated DER", b64(&good_der[..good_der.len() / 2]), &["invalid_csr"][..]),
        ("bad signature", b64(&bad_sig), &["invalid_csr"]),
        (
            "garbage PEM",
            "-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all!\n-----END CERTIFICATE REQUEST-----\n".into(),
            &["invalid_csr"],
        ),
        ("not base64", "%%%".into(), &["invalid_csr"]),
        ("a CSR above the 64 KiB limit", big, &["invalid_csr"]),
        ("RSA-1024", rsa1024, &["unsupported_key"]),
        ("P-521", p521, &["unsupported_key"]),
    ];
    for (what, csr, codes) in cases {
        let err = admin.issue_certificate(DOMAIN, &req(csr, None, None)).await.unwrap_err();
        let lightwell_client::ClientError::Api { status, code, .. } = &err else { panic!("{what}: {err}") };
        assert!((400..500).contains(status), "{what}: HTTP {status}");
        assert!(codes.contains(&code.as_str()), "{what}: {code}");
    }
    // Several megabytes: the server's body limit refuses it (413, or the
    // connection is closed while the client is still sending).
    match admin.issue_certificate(DOMAIN, &req(huge, None, None)).await.unwrap_err() {
        lightwell_client::ClientError::Api { status, code, .. } => {
            assert_eq!((status, code.as_str()), (413, "body_too_large"))
        }
        lightwell_client::ClientError::Transport(msg) => {
            assert!(["Broken pipe", "reset", "closed"].iter().any(|m| msg.contains(m)), "{msg}")
        }
        other => panic!("{other}"),
    }
    // A fresh connection: the server closed the one the huge body was sent on.
    let admin = server.login(DOMAIN, "administrator", pki::ADMIN_PASSWORD).await;
    assert!(admin.list_certificates(DOMAIN, None).await.unwrap().is_empty(), "nothing stored");
    // DER in base64 is accepted as well as PEM.
    admin.issue_certificate(DOMAIN, &req(b64(&good_der), None, None)).await.unwrap();
}

/// An HTTPS client presenting a client certificate (and no bearer token).
fn mtls_client(server: &TestServer, cert_pem: &str, key: &std::path::Path) -> reqwest::Client {
    let mut identity = std::fs::read(key).unwrap();
    identity.extend_from_slice(cert_pem.as_bytes());
    server.mtls(Some(&identity))
}

async fn renew(
    server: &TestServer,
    client: &reqwest::Client,
    files: &Files,
    name: &str,
    cn: &str,
) -> (u16, serde_json::Value) {
    renew_for(server, client, files, name, cn, None).await
}

async fn renew_for(
    server: &TestServer,
    client: &reqwest::Client,
    files: &Files,
    name: &str,
    cn: &str,
    ttl: Option<&str>,
) -> (u16, serde_json::Value) {
    let (_, csr) = files.csr(name, "ec:P-256", &format!("/CN={cn}"), &[]);
    let resp = client
        .post(format!("{}/v1/tenants/{DOMAIN}/certificates", server.url()))
        .json(&serde_json::json!({ "csr": csr, "ttl": ttl }))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// The serial (hex) of the first certificate of a PEM chain.
fn serial_of(chain: &str) -> String {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
    hex_of(pem.parse_x509().unwrap().raw_serial())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The machine's own certificate, from a join an administrator performs
/// with the machine's CSR (so the machine, not the administrator, is its requester).
async fn joined(admin: &Client, files: &Files, name: &str) -> (String, std::path::PathBuf) {
    let (key, csr) = files.csr(name, "ec:P-256", "/CN=node1.corp.example", &[]);
    let body =
        lightwell_proto::JoinRequestBody { token: None, hostname: "node1.corp.example".into(), ips: vec![], csr };
    let j = admin.join(DOMAIN, &body).await.unwrap();
    (j.chain, key)
}

#[tokio::test]
async fn a_client_certificate_authenticates_until_revoked_expired_or_disabled() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, DOMAIN, None).await;
    pki::host(&admin, DOMAIN, "machines", "node1.corp.example", &[], &[]).await;
    let files = Files::new();
    // A certificate an administrator obtained on the machine's behalf names
    // the machine, but never authenticates as it.
    let (key, csr) = files.csr("node1", "ec:P-256", "/CN=node1.corp.example", &[]);
    let on_behalf = admin.issue_certificate(DOMAIN, &req(csr, None, Some("machine/node1.corp.example"))).await.unwrap();
    assert_eq!(on_behalf.requester, "user:administrator");
    let (status, body) =
        renew(&server, &mtls_client(&server, &on_behalf.chain_pem, &key), &files, "r0", "node1.corp.example").await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_client_certificate")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("at the request of user:administrator"), "{body}");

    let (chain, key) = joined(&admin, &files, "node1-own").await;
    let client = mtls_client(&server, &chain, &key);
    // The machine renews with its certificate alone.
    let (status, body) = renew(&server, &client, &files, "renew1", "node1.corp.example").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["principal_name"], "node1.corp.example");
    assert_eq!(body["requester"], "machine:node1.corp.example");
    let first_serial = serial_of(&chain);

    // A certificate from another tenant is refused in this tenant.
    let other = pki::tenant(&server, "other.example", None).await;
    let (okey, ocsr) = files.csr("oadmin", "ec:P-256", "/CN=administrator", &[]);
    let foreign = other.issue_certificate("other.example", &req(ocsr, None, None)).await.unwrap();
    let (status, body) =
        renew(&server, &mtls_client(&server, &foreign.chain_pem, &okey), &files, "x", "administrator").await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");

    // Revoked: refused.
    admin.revoke_certificate(DOMAIN, &first_serial, &RevokeRequest::default()).await.unwrap();
    let (status, body) = renew(&server, &client, &files, "renew2", "node1.corp.example").await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_client_certificate")), "{body}");

    // Expired: refused. (A fresh join, then its own one-hour certificate.)
    let (chain, key) = joined(&admin, &files, "node1-again").await;
    let (status, second) =
        renew_for(&server, &mtls_client(&server, &chain, &key), &files, "node1b", "node1.corp.example", Some("1h"))
            .await;
    assert_eq!(status, 201, "{second}");
    let key2 = files.path("node1b.key");
    let client2 = mtls_client(&server, second["chain_pem"].as_str().unwrap(), &key2);
    server.set_clock_offset(2 * 3600);
    let (status, body) = renew(&server, &client2, &files, "renew3", "node1.corp.example").await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_client_certificate")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");
    server.set_clock_offset(0);

    // Disabled principal: refused (its certificates are revoked too, by tenant policy).
    let (status, _) = renew(&server, &client2, &files, "renew4", "node1.corp.example").await;
    assert_eq!(status, 201);
    let admin = server.login(DOMAIN, "administrator", pki::ADMIN_PASSWORD).await;
    admin.principal_action(DOMAIN, "machines", "node1.corp.example", "disable").await.unwrap();
    let (status, body) = renew(&server, &client2, &files, "renew5", "node1.corp.example").await;
    assert!(status == 401 || status == 403, "{status} {body}");
    let code = body["error"]["code"].as_str().unwrap();
    assert!(code == "invalid_client_certificate" || code == "account_disabled", "{body}");
}
