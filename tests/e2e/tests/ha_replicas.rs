//! Two `lightwelld` replicas on one PostgreSQL database: sessions valid on
//! both, a revocation made on one pushed to an agent watching the other
//! within a second, and concurrent revocations on both replicas landing in
//! every CRL with CRL Numbers that only grow.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightwell_client::Client;
use lightwell_proto::{CreateJoinTokenRequest, IssueCertificateRequest, RevokeRequest};
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
    assert!(r[0].client().with_token(token).whoami().await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_watching_replica_a_hears_of_a_revocation_made_on_replica_b_within_a_second() {
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
    let serial = issue(&admin_b, &csr).await;
    // Let the agent settle on the revision after the issuance (issuing changes no CRL).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut took = Vec::new();
    for _ in 0..3 {
        let serial = if took.is_empty() { serial.clone() } else { issue(&admin_b, &csr).await };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = node.crls();
        let start = Instant::now();
        let revoke = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
        admin_b.revoke_certificate(T, &serial, &revoke).await.unwrap();
        assert!(wait_until(Duration::from_secs(10), || node.crls() != before), "the CRL never reached the agent");
        took.push(start.elapsed());
    }
    eprintln!("revocation on B reached the agent watching A after {took:?}");
    // The issue's bound is one second; allow for a loaded two-core machine
    // only in the worst of three, never in the best.
    let best = took.iter().min().unwrap();
    let worst = took.iter().max().unwrap();
    assert!(*best < Duration::from_secs(1), "best {best:?} of {took:?}");
    assert!(*worst < Duration::from_millis(1500), "worst {worst:?} of {took:?}");
    assert!(node.agent_running());
}

/// Samples a replica's CRL until `stop`; each fetch starts after the one before finished.
async fn sample_crls(
    server: &lightwell_testkit::TestServer,
    ca: &str,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(CrlInfo, Vec<u8>)> {
    let mut seen = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let der = fetch_crl(server, T, ca).await;
        seen.push((crl_info(&der), der));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
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

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let samplers: Vec<_> = (0..2)
        .map(|i| {
            let (r, ca, stop) = (r.clone(), ca.clone(), stop.clone());
            tokio::spawn(async move { sample_crls(&r[i], &ca, stop).await })
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
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
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
    let wanted: BTreeSet<String> = serials.iter().map(|s| serial_key(s)).collect();
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
}
