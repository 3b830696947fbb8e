//! Revocations of a CA whose CRL is large are acknowledged at commit and
//! the CRL is re-signed right after by the CRL signer. `--crl-sync-limit 0`
//! makes every CRL "large", so these tests exercise that path with a few
//! certificates: the served CRL lists the revocation within seconds, its
//! number grows by the builds made, agents get it pushed, and bursts cost
//! fewer builds than revocations — on one server and on two replicas of
//! one PostgreSQL database.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use lightwell_client::Client;
use lightwell_proto::{CreateJoinTokenRequest, IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::ha::{self, CrlInfo, crl_info, fetch_crl, serial_key};
use lightwell_testkit::node::{Node, wait_until};
use lightwell_testkit::pki::{self, Files};

const T: &str = "corp.example";
/// Every CRL is re-signed by the signer, none in the revoking transaction.
const BACKGROUND: &[&str] = &["--crl-sync-limit", "0"];

async fn issuing_ca(admin: &Client) -> String {
    admin.list_cas(T).await.unwrap().into_iter().find(|c| c.is_default).unwrap().id
}

/// Issues `n` certificates to the administrator (one CSR, many certificates).
async fn issue(admin: &Client, files: &Files, n: usize) -> Vec<String> {
    let (_, csr) = files.csr("c", "ec:P-256", "/CN=administrator", &[]);
    let mut serials = Vec::new();
    for _ in 0..n {
        let req = IssueCertificateRequest { csr: csr.clone(), ..Default::default() };
        serials.push(admin.issue_certificate(T, &req).await.unwrap().serial);
    }
    serials
}

async fn revoke(admin: &Client, serial: &str) {
    let req = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    let resp = admin.revoke_certificate(T, serial, &req).await.unwrap();
    assert_eq!(resp.revoked, vec![serial.to_string()]);
}

/// Polls the CRL `server` serves until it lists every serial of `serials`.
async fn crl_listing(server: &TestServer, ca: &str, serials: &[String], within: Duration) -> CrlInfo {
    let wanted: BTreeSet<String> = serials.iter().map(|s| serial_key(s)).collect();
    let started = Instant::now();
    loop {
        let info = crl_info(&fetch_crl(server, T, ca).await);
        let listed: BTreeSet<String> = info.serials.iter().cloned().collect();
        if listed.is_superset(&wanted) {
            eprintln!("CRL {} listed {} revocations after {:?}", info.number, wanted.len(), started.elapsed());
            return info;
        }
        let missing: Vec<_> = wanted.difference(&listed).collect();
        assert!(started.elapsed() < within, "after {within:?} CRL {} still lacks {missing:?}", info.number);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The agent's CRL file of `ca`, parsed.
fn agent_crl(node: &Node, ca: &str) -> Option<CrlInfo> {
    let pem = std::fs::read_to_string(node.state.join("crl").join(format!("{ca}.crl.pem"))).ok()?;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some(crl_info(&der))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_is_acknowledged_then_the_re_signed_crl_is_served_and_pushed_to_agents() {
    let server = TestServer::start_with(BACKGROUND);
    let admin = pki::tenant(&server, T, None).await;
    let ca = issuing_ca(&admin).await;
    let dir = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut node = Node::new(&dir, "node1.corp.example");
    let req = CreateJoinTokenRequest { hostname: Some(node.hostname.clone()), ..Default::default() };
    let token = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
    let out = node.join(&server, T, Some(&token));
    assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
    node.start_agent();
    assert!(wait_until(Duration::from_secs(30), || node.revision() > 0), "the agent's first sync");

    let files = Files::new();
    let serial = issue(&admin, &files, 1).await.remove(0);
    let before = crl_info(&fetch_crl(&server, T, &ca).await);
    assert!(!before.serials.contains(&serial_key(&serial)));
    revoke(&admin, &serial).await;
    let after = crl_listing(&server, &ca, std::slice::from_ref(&serial), Duration::from_secs(10)).await;
    assert_eq!(after.number, before.number + 1, "one revocation, one background build");
    // The API serves the same CRL as the PKI listener.
    let api = admin.ca_crl_pem(T, &ca).await.unwrap();
    let b64: String = api.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(crl_info(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap()), after);

    // Pushed: the agent's file becomes the re-signed CRL without a restart or a poll interval.
    assert!(
        wait_until(Duration::from_secs(10), || agent_crl(&node, &ca).as_ref() == Some(&after)),
        "the agent never wrote CRL {}: {:?}",
        after.number,
        agent_crl(&node, &ca)
    );
    assert!(node.agent_running());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_revocations_is_listed_in_full_with_no_more_builds_than_revocations() {
    const N: usize = 30;
    let server = TestServer::start_with(BACKGROUND);
    let admin = pki::tenant(&server, T, None).await;
    let ca = issuing_ca(&admin).await;
    let files = Files::new();
    let serials = issue(&admin, &files, N).await;
    let before = crl_info(&fetch_crl(&server, T, &ca).await).number;

    let started = Instant::now();
    let tasks: Vec<_> = serials
        .iter()
        .map(|s| {
            let (admin, s) = (admin.clone(), s.clone());
            tokio::spawn(async move { revoke(&admin, &s).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("{N} concurrent revocations acknowledged after {:?}", started.elapsed());
    let info = crl_listing(&server, &ca, &serials, Duration::from_secs(15)).await;
    let builds = info.number - before;
    eprintln!("{N} revocations, {builds} background builds");
    assert!((1..=N as u64).contains(&builds), "{builds} builds for {N} revocations");
    // Settled: no build is left running or pending once everything is listed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(crl_info(&fetch_crl(&server, T, &ca).await).number, info.number, "no further build");
}

#[tokio::test(flavor = "multi_thread")]
async fn revocations_on_two_replicas_reach_both_crls_through_concurrent_signers() {
    const N: usize = 16;
    let r = ha::replicas(ha::cluster(), 2, BACKGROUND);
    let admin = [pki::tenant(&r[0], T, None).await, r[1].login(T, "administrator", pki::ADMIN_PASSWORD).await];
    let ca = issuing_ca(&admin[0]).await;
    let files = Files::new();
    let serials = issue(&admin[0], &files, N).await;
    let before = crl_info(&fetch_crl(&r[0], T, &ca).await).number;
    let tasks: Vec<_> = serials
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (admin, s) = (admin[i % 2].clone(), s.clone());
            tokio::spawn(async move { revoke(&admin, &s).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut finals = Vec::new();
    for server in &r {
        finals.push(crl_listing(server, &ca, &serials, Duration::from_secs(15)).await);
    }
    let builds = finals.iter().map(|i| i.number).max().unwrap() - before;
    eprintln!("{N} revocations on two replicas, {builds} background builds");
    assert!((1..=N as u64).contains(&builds), "{builds} builds for {N} revocations");
    // Once settled, both replicas serve the same, latest CRL.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = crl_info(&fetch_crl(&r[0], T, &ca).await);
    let b = crl_info(&fetch_crl(&r[1], T, &ca).await);
    assert_eq!(a, b);
}
