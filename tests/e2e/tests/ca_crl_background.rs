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
/// CRL Numbers one build of an issuing CA's CRLs takes: its complete CRL
/// and its delta CRL share one sequence (RFC 5280 section 5.2.4).
const PER_BUILD: u64 = 2;

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

/// The CRL signers' work on `servers`, summed: (CRLs marked pending after
/// each signer's last pass, CRLs signed and stored so far).
async fn signer_metrics(servers: &[&TestServer]) -> (f64, f64) {
    let (mut pending, mut signed) = (0.0, 0.0);
    for server in servers {
        pending += server.metric("lightwell_crl_pending").await;
        signed += server.metric("lightwell_crl_background_signed_total").await;
    }
    (pending, signed)
}

/// Pending marks in the store of a server on SQLite (`None` on PostgreSQL,
/// where the gauge stands in).
fn stored_marks(server: &TestServer) -> Option<i64> {
    let db = server.data_dir().join("lightwell.db");
    if !db.exists() {
        return None;
    }
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    Some(conn.query_row("SELECT COUNT(*) FROM crl_pending", [], |r| r.get(0)).unwrap())
}

/// Waits until the CRL signers of `servers` have settled — no CA is marked
/// pending (in the store, and after each signer's last pass) and the CRL
/// Number of `ca` has grown by exactly the builds the signers stored since
/// `signed_before` (so none is unaccounted for) — and returns that CRL.
async fn settled(servers: &[&TestServer], ca: &str, number_before: u64, signed_before: f64) -> CrlInfo {
    let started = Instant::now();
    loop {
        let (pending, signed) = signer_metrics(servers).await;
        let marks: i64 = servers.iter().filter_map(|s| stored_marks(s)).sum();
        let info = crl_info(&fetch_crl(servers[0], T, ca).await);
        let builds = ((info.number - number_before) / PER_BUILD) as f64;
        if pending == 0.0 && marks == 0 && signed - signed_before == builds {
            return info;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the CRL signers never settled: {pending} pending after the last pass, {marks} marks in the store, \
             {} builds stored by the signers, CRL {} ({builds} since the revocations)",
            signed - signed_before,
            info.number
        );
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
    let (_, signed_before) = signer_metrics(&[&server]).await;
    revoke(&admin, &serial).await;
    let after = crl_listing(&server, &ca, std::slice::from_ref(&serial), Duration::from_secs(10)).await;
    assert_eq!(after.number, before.number + PER_BUILD, "one revocation, one background build");
    assert_eq!(settled(&[&server], &ca, before.number, signed_before).await, after, "signed by the CRL signer");
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
async fn a_burst_of_revocations_is_listed_in_full_with_fewer_builds_than_revocations() {
    const N: usize = 30;
    let server = TestServer::start_with(BACKGROUND);
    let admin = pki::tenant(&server, T, None).await;
    let ca = issuing_ca(&admin).await;
    let files = Files::new();
    let serials = issue(&admin, &files, N).await;
    let before = crl_info(&fetch_crl(&server, T, &ca).await).number;
    let (_, signed_before) = signer_metrics(&[&server]).await;

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
    let builds = (info.number - before) / PER_BUILD;
    eprintln!("{N} revocations, {builds} background builds");
    assert!((1..N as u64).contains(&builds), "{builds} builds for {N} concurrent revocations");
    // Settled: no mark is left once everything is listed, every build was
    // the signer's, and the build that listed the last revocation was the last.
    let now = settled(&[&server], &ca, before, signed_before).await;
    assert_eq!(now, info, "no further build");
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
    let (_, signed_before) = signer_metrics(&[&r[0], &r[1]]).await;
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
    let builds = (finals.iter().map(|i| i.number).max().unwrap() - before) / PER_BUILD;
    eprintln!("{N} revocations on two replicas, {builds} background builds");
    assert!((1..N as u64).contains(&builds), "{builds} builds for {N} concurrent revocations");
    // Once settled, both replicas serve the same, latest CRL.
    let a = settled(&[&r[0], &r[1]], &ca, before, signed_before).await;
    let b = crl_info(&fetch_crl(&r[1], T, &ca).await);
    assert_eq!(a, b);
    assert_eq!(a.number, before + builds * PER_BUILD, "no further build once both listed every revocation");
    for replica in r.iter() {
        ha::assert_audit_verifies(replica, &[T]).await;
    }
}
