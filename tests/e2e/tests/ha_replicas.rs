//! Two `lightwelld` replicas on one PostgreSQL database: sessions valid on
//! both, a revocation made on one pushed to an agent watching the other
//! (in seconds, not at its next resync: the one-second target is for a
//! benchmark, `lightwell-bench propagation` measures it on one server), and
//! concurrent revocations on both replicas landing in every CRL with CRL
//! Numbers that only grow.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightwell_client::Client;
use lightwell_proto::{CreateJoinTokenRequest, ErrorCode, IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::ha::{self, CrlInfo, crl_info, fetch_crl, serial_key};
use lightwell_testkit::node::{Node, wait_until};
use lightwell_testkit::pki::{self, Files};

const T: &str = "corp.example";

async fn issue(admin: &Client, csr: &str) -> String {
    let req = IssueCertificateRequest { csr: csr.into(), ..Default::default() };
    admin.issue_certificate(T, &req).await.unwrap().serial
}

async fn issuing_ca(admin: &Client) -> String {
    admin.list_cas(T).await.unwrap().into_iter().find(|c| c.is_default).unwrap().id
}

/// Waits until the agent of `node` has written the trust revision `server`
/// serves now: its next request is the long poll from that revision.
async fn agent_is_current(node: &Node, server: &TestServer) {
    let revision = server.client().trust(T).await.unwrap().revision;
    assert!(
        wait_until(Duration::from_secs(30), || node.revision() >= revision),
        "the agent never reached revision {revision}: it has {}",
        node.revision()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_token_from_one_replica_works_on_the_other() {
    let r = ha::replicas(ha::cluster(), 2, &[]);
    pki::tenant(&r[0], T, None).await;
    let token = r[0].client().login(T, "administrator", pki::ADMIN_PASSWORD).await.unwrap().token;
    let on_second = r[1].client().with_token(token.clone());
    let me = on_second.whoami().await.unwrap();
    assert_eq!(me.name, "administrator");
    // Logging out on the second replica ends the session on the first.
    on_second.logout().await.unwrap();
    assert_eq!(r[0].client().with_token(token).whoami().await.unwrap_err().code(), Some(ErrorCode::InvalidToken));
    for replica in r.iter() {
        ha::assert_audit_verifies(replica, &[T]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_watching_replica_a_is_pushed_a_revocation_made_on_replica_b() {
    let r = ha::replicas(ha::cluster(), 2, &[]);
    let (a, b) = (&r[0], &r[1]);
    let admin_a = pki::tenant(a, T, None).await;
    let admin_b = b.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let dir = a.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut node = Node::new(&dir, "node-a.corp.example");
    let req = CreateJoinTokenRequest { hostname: Some(node.hostname.clone()), ..Default::default() };
    let tok = admin_a.create_join_token(T, &req).await.unwrap().token.unwrap();
    let out = node.join(a, T, Some(&tok));
    assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
    node.start_agent();
    assert!(wait_until(Duration::from_secs(30), || node.revision() > 0), "the agent's first sync");

    let files = Files::new();
    let (_, csr) = files.csr("c", "ec:P-256", "/CN=administrator", &[]);
    let mut took = Vec::new();
    for _ in 0..3 {
        let serial = issue(&admin_b, &csr).await;
        agent_is_current(&node, a).await;
        let before = node.crls();
        let start = Instant::now();
        let revoke = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
        admin_b.revoke_certificate(T, &serial, &revoke).await.unwrap();
        assert!(wait_until(Duration::from_secs(60), || node.crls() != before), "the CRL never reached the agent");
        took.push(start.elapsed());
    }
    eprintln!("revocation on B reached the agent watching A after {took:?}");
    // Pushed, not found at the next resync (300 s) nor after the long poll's
    // timeout (25 s): bounds with room for a loaded two-core machine, in the
    // best of three and in the worst. The one-second target is a benchmark's
    // (`lightwell-bench propagation` measures it on one server).
    let best = took.iter().min().unwrap();
    let worst = took.iter().max().unwrap();
    assert!(*best < Duration::from_secs(3), "best {best:?} of {took:?}");
    assert!(*worst < Duration::from_secs(10), "worst {worst:?} of {took:?}");
    assert!(node.agent_running());
    ha::assert_audit_verifies(a, &[T]).await;
    ha::assert_audit_verifies(b, &[T]).await;
}

/// Samples a replica's CRL until it lists every serial of `wanted`; each
/// fetch starts after the one before finished.
async fn sample_crls(server: &TestServer, ca: &str, wanted: BTreeSet<String>) -> Vec<(CrlInfo, Vec<u8>)> {
    let mut seen = Vec::new();
    let started = Instant::now();
    loop {
        let der = fetch_crl(server, T, ca).await;
        let info = crl_info(&der);
        let complete = info.serials.iter().cloned().collect::<BTreeSet<_>>().is_superset(&wanted);
        seen.push((info, der));
        if complete {
            return seen;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{} never listed every revocation", server.pki_url());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_revocations_on_both_replicas_reach_every_crl_and_crl_numbers_only_grow() {
    let r = Arc::new(ha::replicas(ha::cluster(), 2, &[]));
    let admin = [pki::tenant(&r[0], T, None).await, r[1].login(T, "administrator", pki::ADMIN_PASSWORD).await];
    let ca = issuing_ca(&admin[0]).await;
    let files = Files::new();
    let (_, csr) = files.csr("c", "ec:P-256", "/CN=administrator", &[]);
    let mut serials = Vec::new();
    for i in 0..20 {
        serials.push(issue(&admin[i % 2], &csr).await);
    }
    let first = crl_info(&fetch_crl(&r[0], T, &ca).await).number;

    // Each replica's CRL is sampled from before the first revocation until it lists them all.
    let wanted: BTreeSet<String> = serials.iter().map(|s| serial_key(s)).collect();
    let samplers: Vec<_> = (0..2)
        .map(|i| {
            let (r, ca, wanted) = (r.clone(), ca.clone(), wanted.clone());
            tokio::spawn(async move { sample_crls(&r[i], &ca, wanted).await })
        })
        .collect();
    // Every revocation at once, half through each replica.
    let revocations: Vec<_> = serials
        .iter()
        .enumerate()
        .map(|(i, serial)| {
            let (client, serial) = (admin[i % 2].clone(), serial.clone());
            tokio::spawn(async move {
                let req = RevokeRequest { reason: Some("superseded".into()), principal: None };
                client.revoke_certificate(T, &serial, &req).await
            })
        })
        .collect();
    for rev in revocations {
        rev.await.unwrap().expect("every concurrent revocation succeeds");
    }
    let mut observed = Vec::new();
    for s in samplers {
        let seen = s.await.unwrap();
        // Fetches from one replica are sequential: the numbers never go back.
        let numbers: Vec<u64> = seen.iter().map(|(c, _)| c.number).collect();
        assert!(
            numbers.windows(2).all(|w| w[0] <= w[1]),
            "a replica served an older CRL after a newer one: {numbers:?}"
        );
        observed.extend(seen);
    }

    // Every revoked serial is in the CRL served by each replica.
    let mut finals = Vec::new();
    for server in r.iter() {
        let der = fetch_crl(server, T, &ca).await;
        let info = crl_info(&der);
        let listed: BTreeSet<String> = info.serials.iter().cloned().collect();
        let missing: Vec<_> = wanted.difference(&listed).collect();
        assert!(missing.is_empty(), "CRL from {} lacks {missing:?}", server.pki_url());
        finals.push((info.clone(), der.clone()));
        observed.push((info, der));
    }
    assert_eq!(finals[0], finals[1], "both replicas serve the same latest CRL");

    // No two different CRLs share a number, and a higher number never lists fewer revocations.
    let mut by_number: BTreeMap<u64, (BTreeSet<String>, Vec<u8>)> = BTreeMap::new();
    for (info, der) in observed {
        let serials: BTreeSet<String> = info.serials.into_iter().collect();
        if let Some((_, known)) = by_number.get(&info.number) {
            assert_eq!(*known, der, "two different CRLs carry number {}", info.number);
        }
        by_number.insert(info.number, (serials, der));
    }
    let sets: Vec<_> = by_number.values().map(|(s, _)| s).collect();
    assert!(sets.windows(2).all(|w| w[0].is_subset(w[1])), "a later CRL dropped a revocation");
    let last = *by_number.keys().last().unwrap();
    assert!(last >= first + 20, "twenty revocations made twenty new CRLs: {first} -> {last}");
    eprintln!("CRL numbers observed: {:?}", by_number.keys().collect::<Vec<_>>());
    for replica in r.iter() {
        ha::assert_audit_verifies(replica, &[T]).await;
    }
}
