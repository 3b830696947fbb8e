//! The incremental trust push (issue 18 item 1): `GET .../trust/changes`
//! answers a long poll in one round trip with what changed — a revocation
//! among 100,000 is a CRL delta of a few hundred bytes — and the agent
//! rebuilds a CRL file byte-identical to the one the server serves, which
//! OpenSSL then checks against. An agent offline for longer than the
//! server's window of kept changes catches up with one snapshot.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use lightwell_client::Client;
use lightwell_proto::{CreateJoinTokenRequest, IssueCertificateRequest, RevokeRequest};
use lightwell_store::sqlite::SqliteStore;
use lightwell_store::{CertificateFilter, StoreExt};
use lightwell_testkit::TestServer;
use lightwell_testkit::ha::{fetch_crl, serial_key};
use lightwell_testkit::node::{Node, wait_until};
use lightwell_testkit::pki::{self, Files};

const T: &str = "corp.example";

async fn issuing_ca(admin: &Client) -> String {
    admin.list_cas(T).await.unwrap().into_iter().find(|c| c.is_default).unwrap().id
}

async fn issue(admin: &Client, files: &Files, n: usize) -> Vec<(String, String)> {
    let (_, csr) = files.csr("c", "ec:P-256", "/CN=administrator", &[]);
    let mut out = Vec::new();
    for _ in 0..n {
        let req = IssueCertificateRequest { csr: csr.clone(), ..Default::default() };
        let issued = admin.issue_certificate(T, &req).await.unwrap();
        out.push((issued.serial, issued.pem));
    }
    out
}

async fn revoke(admin: &Client, serial: &str) {
    let req = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    admin.revoke_certificate(T, serial, &req).await.unwrap();
}

/// Inserts `n` revoked copies of the tenant's newest certificate (fresh
/// serials) into the stopped server's SQLite file, as the bench's seeding does.
fn seed_revoked(db: &Path, n: usize) {
    let store = SqliteStore::open(db).unwrap();
    store
        .write(|tx| {
            let tenant = tx.tenant_by_domain(T)?.unwrap().id;
            let mut template = tx
                .list_certificates(&tenant, &CertificateFilter::default())?
                .into_iter()
                .max_by_key(|c| c.created_at)
                .unwrap();
            template.revoked_at = Some(template.created_at);
            template.revocation_reason = Some("superseded".into());
            for start in (0..n).step_by(10_000) {
                let batch: Vec<_> = (start..(start + 10_000).min(n))
                    .map(|_| {
                        let mut c = template.clone();
                        c.serial = lightwell_ca::Serial::random().unwrap().to_hex();
                        c
                    })
                    .collect();
                tx.insert_certificates(&tenant, &batch)?;
            }
            Ok::<_, lightwell_store::StoreError>(())
        })
        .unwrap();
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

fn agent_crl(node: &Node, ca: &str) -> Option<Vec<u8>> {
    std::fs::read_to_string(node.state.join("crl").join(format!("{ca}.crl.pem"))).ok().map(|p| pem_to_der(&p))
}

async fn join(server: &TestServer, admin: &Client, name: &str) -> Node {
    let dir = server.scratch().join(format!("hosts-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let node = Node::new(&dir, &format!("{name}.corp.example"));
    let req = CreateJoinTokenRequest { hostname: Some(node.hostname.clone()), ..Default::default() };
    let token = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
    let out = node.join(server, T, Some(&token));
    assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
    node
}

async fn revision(server: &TestServer) -> i64 {
    // A `since` no revision reaches: answered after the shortest wait with the current one.
    server.client().watch_trust(T, i64::MAX, 1).await.unwrap().revision
}

/// Waits until the CRL `server` serves for `ca` lists `serial`; returns it.
async fn served_listing(server: &TestServer, ca: &str, serial: &str) -> Vec<u8> {
    let wanted = serial_key(serial);
    for _ in 0..600 {
        let der = fetch_crl(server, T, ca).await;
        let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
        let listed = crl.iter_revoked_certificates().any(|r| serial_key(&hex(r.raw_serial())) == wanted);
        if listed {
            return der;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the CRL of {ca} never listed {serial}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits until the agent's CRL file of `ca` is the CRL the server serves.
async fn agent_holds_served_crl(server: &TestServer, node: &Node, ca: &str) -> Vec<u8> {
    for _ in 0..600 {
        let served = fetch_crl(server, T, ca).await;
        if agent_crl(node, ca).as_deref() == Some(served.as_slice()) {
            return served;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the agent's CRL file of {ca} never became the served CRL");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_among_100_000_reaches_the_agent_as_a_few_hundred_bytes_and_a_byte_identical_crl() {
    let mut server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let ca = issuing_ca(&admin).await;
    let files = Files::new();
    let issued = issue(&admin, &files, 3).await;
    server.stop();
    seed_revoked(&server.data_dir().join("lightwell.db"), 100_000);
    server.start_again();
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;

    // The first revocation lists the 100,000 seeded ones too (signed in the background).
    revoke(&admin, &issued[0].0).await;
    let big = served_listing(&server, &ca, &issued[0].0).await;
    assert!(big.len() > 3_000_000, "a CRL of {} bytes", big.len());

    let mut node = join(&server, &admin, "node1").await;
    node.start_agent();
    agent_holds_served_crl(&server, &node, &ca).await;
    let at = revision(&server).await;
    assert!(wait_until(Duration::from_secs(60), || node.revision() >= at), "the agent's first sync");

    // One more revocation: the answer for its revision is a delta.
    revoke(&admin, &issued[1].0).await;
    let next = served_listing(&server, &ca, &issued[1].0).await;
    let now = revision(&server).await;
    let url = format!("{}/v1/tenants/{T}/trust/changes?since={}&timeout_secs=1", server.url(), at);
    let body = server.raw().get(&url).send().await.unwrap().bytes().await.unwrap();
    eprintln!("the change of one revocation among 100,002: {} bytes ({} for the whole CRL)", body.len(), next.len());
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    // At most the start of an answer in a failure message: a whole CRL in it is megabytes.
    let shown: String = answer.to_string().chars().take(400).collect();
    assert_eq!(answer["revision"], now);
    assert!(answer["snapshot_required"].is_null(), "{shown}");
    // The complete CRL as a patch, then the delta CRL signed with it (small: whole or a patch).
    let changes = answer["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{shown}");
    assert_eq!((changes[0]["kind"].as_str(), changes[1]["kind"].as_str()), (Some("crl"), Some("delta_crl")), "{shown}");
    assert!(changes[0]["delta"].is_string(), "a patch, not the whole CRL: {shown}");
    assert!(changes[0]["crl"].is_null(), "{shown}");
    assert!(body.len() < 1200, "the changes are {} bytes", body.len());

    // The agent's file is the served CRL, byte for byte, rebuilt from the delta.
    let held = agent_holds_served_crl(&server, &node, &ca).await;
    assert!(held == next, "the agent holds another CRL than the one listing the revocation");
    let log = std::fs::read_to_string(node.agent_log()).unwrap();
    assert!(log.contains("trust changes applied incrementally"), "{log}");

    // OpenSSL reads the rebuilt file: the revoked certificate fails, a good one passes.
    let chain = node.state.join("chain.pem");
    let crl_bundle = node.state.join("crl.pem");
    let verify = |cert: &str| {
        let path = server.scratch().join("leaf.pem");
        std::fs::write(&path, cert).unwrap();
        let out = Command::new("openssl")
            .args(["verify", "-crl_check", "-CAfile"])
            .arg(node.state.join("bundle.pem"))
            .arg("-untrusted")
            .arg(&chain)
            .arg("-CRLfile")
            .arg(&crl_bundle)
            .arg(&path)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let (ok, text) = verify(&issued[1].1);
    assert!(!ok && text.contains("revoked"), "{text}");
    let (ok, text) = verify(&issued[2].1);
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_offline_longer_than_the_window_catches_up_with_one_snapshot_not_every_change() {
    let server = TestServer::start_with(&["--trust-change-window", "20"]);
    let admin = pki::tenant(&server, T, None).await;
    let ca = issuing_ca(&admin).await;
    let files = Files::new();
    let issued = issue(&admin, &files, 40).await;
    let mut node = join(&server, &admin, "node1").await;
    node.start_agent();
    let at = revision(&server).await;
    assert!(wait_until(Duration::from_secs(30), || node.revision() >= at));

    // Within the window: the agent, offline, catches up from the changes.
    node.stop_agent();
    for (serial, _) in &issued[..5] {
        revoke(&admin, serial).await;
    }
    let at = revision(&server).await;
    node.start_agent();
    assert!(wait_until(Duration::from_secs(30), || node.revision() >= at));
    let log = std::fs::read_to_string(node.agent_log()).unwrap();
    assert!(log.contains("trust changes applied incrementally"), "{log}");
    assert!(!log.contains("fetching a trust snapshot"), "{log}");

    // Beyond it: one snapshot.
    node.stop_agent();
    for (serial, _) in &issued[5..] {
        revoke(&admin, serial).await;
    }
    let at = revision(&server).await;
    let url = format!("{}/v1/tenants/{T}/trust/changes?since={}&timeout_secs=1", server.url(), node.revision());
    let answer: serde_json::Value = server.raw().get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["snapshot_required"], true, "{answer}");
    node.start_agent();
    assert!(wait_until(Duration::from_secs(30), || node.revision() >= at));
    let log = std::fs::read_to_string(node.agent_log()).unwrap();
    assert_eq!(log.matches("fetching a trust snapshot").count(), 1, "{log}");
    assert!(agent_crl(&node, &ca).as_deref() == Some(fetch_crl(&server, T, &ca).await.as_slice()));
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_weighing_more_than_the_byte_budget_are_answered_with_a_snapshot_the_agent_takes() {
    const BUDGET: usize = 4000;
    let server = TestServer::start_with(&["--trust-change-max-bytes", &BUDGET.to_string()]);
    let admin = pki::tenant(&server, T, None).await;
    let ca = issuing_ca(&admin).await;
    let files = Files::new();
    let issued = issue(&admin, &files, 12).await;
    let mut node = join(&server, &admin, "node1").await;
    node.start_agent();
    let at = revision(&server).await;
    assert!(wait_until(Duration::from_secs(30), || node.revision() >= at));
    node.stop_agent();
    let changes = |since: i64| {
        let url = format!("{}/v1/tenants/{T}/trust/changes?since={since}&timeout_secs=1", server.url());
        let raw = server.raw().clone();
        async move { raw.get(&url).send().await.unwrap().bytes().await.unwrap() }
    };
    // One revocation: well inside the window and the budget.
    revoke(&admin, &issued[0].0).await;
    let one = changes(at).await;
    let answer: serde_json::Value = serde_json::from_slice(&one).unwrap();
    assert!(answer["snapshot_required"].is_null(), "{answer}");
    assert!(one.len() < BUDGET, "{} bytes", one.len());
    // Eleven more, still inside the window (1,000 revisions) but past the budget: a snapshot answer.
    for (serial, _) in &issued[1..] {
        revoke(&admin, serial).await;
    }
    let now = revision(&server).await;
    assert!(now - at < 1000);
    let answer: serde_json::Value = serde_json::from_slice(&changes(at).await).unwrap();
    assert_eq!((answer["snapshot_required"].as_bool(), answer["revision"].as_i64()), (Some(true), Some(now)));
    assert!(answer["changes"].is_null(), "{answer}");
    // The last revocation alone still fits.
    let answer: serde_json::Value = serde_json::from_slice(&changes(now - 2).await).unwrap();
    assert_eq!(answer["changes"].as_array().map(Vec::len), Some(2), "{answer}");
    // The agent behind by all twelve takes one snapshot and holds the served CRL.
    node.start_agent();
    assert!(wait_until(Duration::from_secs(30), || node.revision() >= now));
    let log = std::fs::read_to_string(node.agent_log()).unwrap();
    assert_eq!(log.matches("fetching a trust snapshot").count(), 1, "{log}");
    assert!(agent_crl(&node, &ca).as_deref() == Some(fetch_crl(&server, T, &ca).await.as_slice()));
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_since_values_get_a_snapshot_answer_or_a_refusal_and_change_nothing() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let at = revision(&server).await;
    let base = format!("{}/v1/tenants/{T}/trust/changes", server.url());
    for since in ["-1", "-9223372036854775808", &(at + 1).to_string(), "9223372036854775807"] {
        let url = format!("{base}?since={since}&timeout_secs=1");
        let resp = server.raw().get(&url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "since={since}");
        let answer: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(answer["snapshot_required"], true, "since={since}: {answer}");
        assert_eq!(answer["revision"], at);
    }
    for query in ["since=abc", "since=99999999999999999999", "since=1&since=2", "since=1&bogus=1", "since=1.5"] {
        let resp = server.raw().get(format!("{base}?{query}")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{query}");
    }
    let resp = server.raw().get(format!("{}/v1/tenants/nope.example/trust/changes?since=0", server.url())).send().await;
    assert_eq!(resp.unwrap().status().as_u16(), 404);
    assert_eq!(revision(&server).await, at, "nothing changed");
    drop(admin);
}
