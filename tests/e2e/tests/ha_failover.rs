//! Failover: kill -9 of one replica while clients issue certificates and an
//! agent renews; the CLI with several server URLs; the same kill -9 on a
//! single SQLite node. No acknowledged issuance is ever lost.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lightwell_client::Client;
use lightwell_proto::{CreateJoinTokenRequest, IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::ha::{self, crl_info, fetch_crl, serial_key};
use lightwell_testkit::node::{Node, wait_until};
use lightwell_testkit::pki::{self, Files};

const T: &str = "corp.example";

/// What the load generator saw: acknowledged serials with when and the
/// index of the server the worker tries first, and the time of every failure.
#[derive(Debug, Default)]
struct Load {
    acked: Vec<(Instant, usize, String)>,
    failures: Vec<(Instant, String)>,
}

/// Issues certificates through `client` (which tries server `first` first)
/// until `stop`, recording every answer.
async fn issue_until(client: Client, first: usize, csr: String, stop: Arc<AtomicBool>, load: Arc<Mutex<Load>>) {
    let req = IssueCertificateRequest { csr, ..Default::default() };
    while !stop.load(Ordering::SeqCst) {
        match client.issue_certificate(T, &req).await {
            Ok(cert) => load.lock().unwrap().acked.push((Instant::now(), first, cert.serial)),
            Err(e) => {
                load.lock().unwrap().failures.push((Instant::now(), e.to_string()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Starts `workers` issuing loops, worker `i` trying the servers from the `i`-th on.
fn start_load(
    servers: &[&TestServer],
    token: &str,
    csr: &str,
    workers: usize,
) -> (Arc<AtomicBool>, Arc<Mutex<Load>>, Vec<tokio::task::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Mutex::new(Load::default()));
    let tasks = (0..workers)
        .map(|i| {
            let mut order: Vec<&TestServer> = servers.to_vec();
            order.rotate_left(i % servers.len());
            let client = ha::failover_client(&order).with_token(token.to_string());
            tokio::spawn(issue_until(client, i % servers.len(), csr.to_string(), stop.clone(), load.clone()))
        })
        .collect();
    (stop, load, tasks)
}

fn acked_count(load: &Mutex<Load>) -> usize {
    load.lock().unwrap().acked.len()
}

async fn wait_for_acks(load: &Mutex<Load>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked_count(load) < n {
        assert!(Instant::now() < deadline, "the load generator is stuck at {} issuances", acked_count(load));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The serial of a PEM certificate file, by OpenSSL.
fn pem_serial(pem: &[u8]) -> String {
    let files = Files::new();
    let path = files.write("c.pem", pem);
    let out =
        std::process::Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(&path).output().unwrap();
    serial_key(String::from_utf8(out.stdout).unwrap().trim().trim_start_matches("serial="))
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_one_replica_under_load_clients_and_agents_carry_on_through_the_other() {
    let mut r = ha::replicas(ha::cluster(), 2, &[]);
    let admin = pki::tenant(&r[0], T, None).await;
    let token = r[0].client().login(T, "administrator", pki::ADMIN_PASSWORD).await.unwrap().token;
    let ca = admin.list_cas(T).await.unwrap().into_iter().find(|c| c.is_default).unwrap().id;
    let files = Files::new();
    let (_, csr) = files.csr("c", "ec:P-256", "/CN=administrator", &[]);

    // An agent given both replicas, renewing over and over: its clock runs
    // 18 h ahead, so each new 24 h certificate is already due.
    let dir = r[0].scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut node = Node::new(&dir, "node-a.corp.example");
    let req = CreateJoinTokenRequest { hostname: Some(node.hostname.clone()), ..Default::default() };
    let tok = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
    let out = node.join_servers(&[&r[0], &r[1]], T, Some(&tok));
    assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
    node.env("LIGHTWELL_CLOCK_OFFSET_SECS", &(18 * 3600).to_string());
    node.start_agent();
    let agent_certs = Arc::new(Mutex::new(BTreeSet::<Vec<u8>>::new()));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (certs, on, path) = (agent_certs.clone(), sampling.clone(), node.identity().cert);
        std::thread::spawn(move || {
            while on.load(Ordering::SeqCst) {
                if let Ok(pem) = std::fs::read(&path) {
                    certs.lock().unwrap().insert(pem);
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };

    let servers: Vec<&TestServer> = r.iter().collect();
    let (stop, load, tasks) = start_load(&servers, &token, &csr, 4);
    wait_for_acks(&load, 40).await;
    assert!(wait_until(Duration::from_secs(30), || agent_certs.lock().unwrap().len() >= 3), "the agent renews");

    // Revocations keep flowing too; the survivor's CRL Number only grows.
    let revoker = ha::failover_client(&[&r[1], &r[0]]).with_token(token.clone());
    let mut crl_numbers = Vec::new();
    let mut revoked = Vec::new();
    let early: Vec<String> = load.lock().unwrap().acked.iter().take(3).map(|(_, _, s)| s.clone()).collect();
    for serial in early {
        let req = RevokeRequest { reason: Some("superseded".into()), principal: None };
        revoker.revoke_certificate(T, &serial, &req).await.unwrap();
        revoked.push(serial);
        crl_numbers.push(crl_info(&fetch_crl(&r[1], T, &ca).await).number);
    }

    let killed_at = Instant::now();
    r[0].kill9();
    let before = acked_count(&load);
    wait_for_acks(&load, before + 40).await;
    let late: Vec<String> = load.lock().unwrap().acked.iter().rev().take(3).map(|(_, _, s)| s.clone()).collect();
    for serial in late {
        let req = RevokeRequest { reason: Some("superseded".into()), principal: None };
        revoker.revoke_certificate(T, &serial, &req).await.unwrap();
        revoked.push(serial);
        crl_numbers.push(crl_info(&fetch_crl(&r[1], T, &ca).await).number);
    }
    let renewed_before = agent_certs.lock().unwrap().len();
    assert!(
        wait_until(Duration::from_secs(30), || agent_certs.lock().unwrap().len() >= renewed_before + 3),
        "the agent keeps renewing through the surviving replica; its log:\n{}",
        std::fs::read_to_string(node.agent_log()).unwrap_or_default()
    );
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    sampling.store(false, Ordering::SeqCst);
    sampler.join().unwrap();
    assert!(node.agent_running());

    // Clients carried on at once, not after a timeout: the first issuance
    // after the kill by a worker that tries the killed replica first (the
    // others never needed to fail over) came before the client's connect
    // timeout (10 s) could have fired, with room for a loaded two-core machine.
    let load = std::mem::take(&mut *load.lock().unwrap());
    let resumed = load.acked.iter().filter(|(t, first, _)| *first == 0 && *t > killed_at).map(|(t, _, _)| *t).min();
    let resumed = resumed.expect("the workers that tried the killed replica first carried on");
    let gap = resumed - killed_at;
    let failed: BTreeSet<&str> =
        load.failures.iter().filter(|(t, _)| *t > killed_at).map(|(_, e)| e.as_str()).collect();
    eprintln!(
        "after kill -9: first issuance through the killed replica's workers {gap:?} later; {} issued in all; {} failed calls before the kill, {} after: {failed:?}",
        load.acked.len(),
        load.failures.iter().filter(|(t, _)| *t <= killed_at).count(),
        load.failures.iter().filter(|(t, _)| *t > killed_at).count(),
    );
    assert!(gap < Duration::from_secs(5), "clients took {gap:?} to carry on");

    // Every certificate any client or the agent received is in the database, once.
    let survivor = r[1].login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let listed = survivor.list_certificates(T, None).await.unwrap();
    let in_db: BTreeSet<String> = listed.iter().map(|c| serial_key(&c.serial)).collect();
    assert_eq!(in_db.len(), listed.len(), "no serial appears twice");
    let received: Vec<String> = load.acked.iter().map(|(_, _, s)| serial_key(s)).collect();
    let unique: BTreeSet<&String> = received.iter().collect();
    assert_eq!(unique.len(), received.len(), "no serial was handed out twice");
    let agent_serials: Vec<String> = agent_certs.lock().unwrap().iter().map(|pem| pem_serial(pem)).collect();
    let lost: Vec<_> = received.iter().chain(&agent_serials).filter(|s| !in_db.contains(*s)).collect();
    assert!(lost.is_empty(), "certificates handed out but not in the database: {lost:?}");

    // The CRL Number only grew, and the survivor's CRL lists every revocation.
    assert!(crl_numbers.windows(2).all(|w| w[0] < w[1]), "CRL numbers {crl_numbers:?}");
    let last = crl_info(&fetch_crl(&r[1], T, &ca).await);
    for s in &revoked {
        assert!(last.serials.contains(&serial_key(s)), "{s} missing from the CRL");
    }
    // The audit chains the two replicas appended to under load, one of them
    // killed mid-write, still verify on the survivor.
    ha::assert_audit_verifies(&r[1], &[T]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_a_single_sqlite_node_under_load_loses_no_acknowledged_issuance() {
    let mut server = TestServer::start();
    pki::tenant(&server, T, None).await;
    let token = server.client().login(T, "administrator", pki::ADMIN_PASSWORD).await.unwrap().token;
    let files = Files::new();
    let (_, csr) = files.csr("c", "ec:P-256", "/CN=administrator", &[]);
    let (stop, load, tasks) = start_load(&[&server], &token, &csr, 4);
    wait_for_acks(&load, 60).await;
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    server.start_again();
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let in_db: BTreeSet<String> =
        admin.list_certificates(T, None).await.unwrap().iter().map(|c| serial_key(&c.serial)).collect();
    let load = std::mem::take(&mut *load.lock().unwrap());
    let lost: Vec<_> = load.acked.iter().map(|(_, _, s)| serial_key(s)).filter(|s| !in_db.contains(s)).collect();
    assert!(lost.is_empty(), "acknowledged issuances lost after kill -9: {lost:?}");
    assert!(admin.audit_verify(Some(T)).await.unwrap().valid, "the audit chain survived the crash");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_with_two_server_urls_keeps_working_when_one_replica_dies() {
    let mut r = ha::replicas(ha::cluster(), 2, &[]);
    pki::tenant(&r[0], T, None).await;
    let cli = r[0].cli();
    let pw = cli.secret_file("admin.pw", pki::ADMIN_PASSWORD);
    let servers = format!("{},{}/", r[0].url(), r[1].url());
    let ca = r[0].ca_file().display().to_string();
    cli.ok(&[
        "login",
        "--server",
        &servers,
        "--ca-file",
        &ca,
        "--tenant",
        T,
        "--user",
        "administrator",
        "--password-file",
        &pw,
    ]);
    cli.ok(&["user", "create", "alice", "--password-file", &cli.secret_file("alice.pw", "Wonderland-42!")]);

    r[0].kill9();
    let me = cli.json(&["whoami"]);
    assert_eq!(me["name"], "administrator");
    cli.ok(&["user", "create", "bob", "--password-file", &cli.secret_file("bob.pw", "Wonderland-43!")]);
    let users = cli.json(&["user", "list"]);
    let names: Vec<&str> = users.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"alice") && names.contains(&"bob"), "{names:?}");
    let key = cli.dir().join("svc.key");
    let out = cli.dir().join("svc.pem");
    cli.ok(&["cert", "request", "--key-out", key.to_str().unwrap(), "--out", out.to_str().unwrap()]);

    // The first replica returns: requests go back to it.
    r[0].start_again();
    r[1].kill9();
    cli.ok(&["whoami"]);
}
