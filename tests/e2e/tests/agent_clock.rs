//! The agent's schedule driven by a moved clock, against the real
//! `lightwelld`: the agent library runs in this process with an
//! [`OffsetClock`] injected, the server runs with `--clock-offset-file`, and
//! each test moves both by the same amount. Renewal at two thirds of the
//! certificate's lifetime (and not before), re-enrolment with the machine
//! secret after the certificate expired, and machine-secret rotation when it
//! is due each happen within moments of the move: no real TTL is waited for.
//!
//! The running agent (`Agent::run_forever`) is what renews and rotates; a
//! second `Agent` over the same state dir and clock makes the "not yet"
//! decisions, one pass at a time, just before each due time.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightwell_agent::enroll::validity;
use lightwell_agent::run::Agent;
use lightwell_agent::status::Status;
use lightwell_ca::clock::{Clock, OffsetClock, SystemClock};
use lightwell_client::Client;
use lightwell_proto::{CreateJoinTokenRequest, ErrorCode, ReenrollRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::node::{Node, wait_until};
use lightwell_testkit::pki;

const T: &str = "corp.example";
/// How long a running agent may take to act on a moved clock. Its clock is
/// read again every 50 ms; the wall clock's interval (a minute) would miss this.
const ACT: Duration = Duration::from_secs(10);

/// A host joined with the real `lightwell join`, and the test clock its agents get.
struct Host {
    server: TestServer,
    node: Node,
    clock: OffsetClock,
}

impl Host {
    async fn joined() -> Self {
        let server = TestServer::start();
        let admin = pki::tenant(&server, T, None).await;
        let dir = server.scratch().join("hosts");
        std::fs::create_dir_all(&dir).unwrap();
        let node = Node::new(&dir, "node-a.corp.example");
        let req = CreateJoinTokenRequest { hostname: Some(node.hostname.clone()), ..Default::default() };
        let token = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
        let out = node.join(&server, T, Some(&token));
        assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
        Self { server, node, clock: OffsetClock::new() }
    }

    /// An agent over the host's state dir that reads the test clock.
    fn agent(&self) -> Agent {
        Agent::load(&self.node.state, Arc::new(self.clock.clone())).unwrap()
    }

    /// The real agent loop, in the background, after its first pass.
    async fn running_agent(&self) -> tokio::task::AbortHandle {
        let mut agent = self.agent();
        let task = tokio::spawn(async move { agent.run_forever().await });
        let state = lightwell_agent::state::StateDir::new(&self.node.state);
        let synced = || Status::load(&state).last_sync.is_some();
        assert!(wait_until(ACT, synced), "the agent's first pass");
        task.abort_handle()
    }

    /// Moves the server's clock and the agent's so both read Unix time `at`.
    fn move_clocks_to(&self, at: i64) {
        let offset = at - SystemClock.unix();
        self.server.set_clock_offset(offset);
        self.clock.set_offset(offset);
    }

    fn cert(&self) -> String {
        std::fs::read_to_string(self.node.state.join("cert.pem")).unwrap()
    }

    fn secret(&self) -> String {
        std::fs::read_to_string(self.node.state.join("machine.secret")).unwrap().trim().to_string()
    }

    fn status(&self) -> Status {
        Status::load(&lightwell_agent::state::StateDir::new(&self.node.state))
    }

    /// The tenant's audit trail, read by an administrator logged in at the moved time.
    async fn audit(&self) -> Vec<lightwell_proto::AuditEntry> {
        let admin: Client = self.server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
        admin.audit(Some(T), 0, 1000).await.unwrap()
    }
}

fn serial(cert_pem: &str) -> String {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).unwrap();
    lightwell_ca::serial::Serial::from_bytes(pem.parse_x509().unwrap().raw_serial()).unwrap().to_hex()
}

/// Waits for the file's contents to change from `before`; returns how long it took.
fn changes(path: &Path, before: &str) -> Duration {
    let started = Instant::now();
    let changed = wait_until(ACT, || std::fs::read_to_string(path).is_ok_and(|now| now.trim() != before.trim()));
    assert!(changed, "{} did not change within {ACT:?} of moving the clock", path.display());
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_renews_at_two_thirds_of_the_lifetime_and_not_before() {
    let host = Host::joined().await;
    let first = host.cert();
    let (not_before, not_after) = validity(&first).unwrap();
    let life = not_after - not_before;
    let deciding = host.agent();
    let due = deciding.renewal_due().unwrap();
    // Two thirds of the lifetime, spread by at most 5% of it either way.
    let two_thirds = not_before + life * 2 / 3;
    assert!((due - two_thirds).abs() <= life / 20 + 1, "due {due}, two thirds at {two_thirds}, life {life}");
    let running = host.running_agent().await;

    // Thirty seconds before it is due: a pass renews nothing.
    host.move_clocks_to(due - 30);
    let mut deciding = deciding;
    deciding.renew_due().await.unwrap();
    assert_eq!(host.cert(), first, "renewed before it was due");
    assert_eq!(host.status().last_renewal, None);

    // At the due time the running agent renews, over mutual TLS (no re-enrolment).
    host.move_clocks_to(due);
    let took = changes(&host.node.state.join("cert.pem"), &first);
    // status.json is written after the certificate.
    let recorded = || host.status().last_renewal.is_some_and(|t| t >= due);
    assert!(wait_until(ACT, recorded), "{:?}", host.status());
    running.abort();
    eprintln!("renewed {took:?} after the clock reached the due time");
    let renewed = host.cert();
    let (renewed_from, _) = validity(&renewed).unwrap();
    assert!(renewed_from > not_before + life / 2, "issued at the moved time: {renewed_from} vs {not_before}");
    let audit = host.audit().await;
    assert!(!audit.iter().any(|r| r.action == "machine.reenroll"), "renewal fell back to the machine secret");
    let issue = audit.iter().rev().find(|r| r.action == "certificate.issue").unwrap();
    assert_eq!(issue.actor, "machine:node-a.corp.example", "the machine asked itself, by its certificate");
    assert!(issue.detail.contains(&serial(&renewed)), "{issue:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_whose_certificate_expired_re_enrols_with_its_machine_secret() {
    let host = Host::joined().await;
    let first = host.cert();
    let (_, not_after) = validity(&first).unwrap();
    let secret = host.secret();
    let running = host.running_agent().await;

    // An hour past expiry (a host that was off for a day): the certificate no
    // longer authenticates, so the running agent re-enrols with its secret.
    host.move_clocks_to(not_after + 3600);
    let took = changes(&host.node.state.join("cert.pem"), &first);
    running.abort();
    eprintln!("re-enrolled {took:?} after the clock passed expiry");
    let reenrolled = host.cert();
    let (from, until) = validity(&reenrolled).unwrap();
    let now = host.clock.unix();
    assert!(from <= now && now < until, "valid at the moved time: {from}..{until}, now {now}");
    assert_ne!(serial(&reenrolled), serial(&first));
    let audit = host.audit().await;
    let reenroll = audit.iter().find(|r| r.action == "machine.reenroll").expect("a re-enrolment on record");
    assert_eq!(reenroll.outcome, "success", "{reenroll:?}");
    assert_eq!(host.secret(), secret, "re-enrolment keeps the machine secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_machine_secret_rotates_when_due_and_not_before() {
    let host = Host::joined().await;
    // An hourly rotation, so it falls due while the 24 h certificate is valid.
    let config = host.node.state.join("agent.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    assert!(toml.contains("secret_rotation_secs = 604800"), "{toml}");
    std::fs::write(&config, toml.replace("secret_rotation_secs = 604800", "secret_rotation_secs = 3600")).unwrap();
    let joined_at = host.status().last_secret_rotation.expect("the secret's age starts at the join");
    let original = host.secret();
    let mut deciding = host.agent();
    let running = host.running_agent().await;

    // Thirty seconds short of an hour old: not rotated.
    host.move_clocks_to(joined_at + 3600 - 30);
    deciding.rotate_secret_if_due().await.unwrap();
    assert_eq!(host.secret(), original, "rotated before it was due");
    assert_eq!(host.status().last_secret_rotation, Some(joined_at));

    // Past the hour the running agent rotates it.
    host.move_clocks_to(joined_at + 3600 + 30);
    let took = changes(&host.node.state.join("machine.secret"), &original);
    // Then the proposal is removed and status.json written.
    let recorded = || host.status().last_secret_rotation.is_some_and(|t| t >= joined_at + 3600);
    assert!(wait_until(ACT, recorded), "{:?}", host.status());
    running.abort();
    eprintln!("rotated {took:?} after the secret fell due");
    let rotated = host.secret();
    assert!(rotated.starts_with("lwm_"), "{rotated}");
    assert!(!host.node.state.join("machine.secret.next").exists(), "the proposed secret was adopted");

    // The old secret no longer re-enrols; the rotated one does.
    let (_, csr) = pki::Files::new().csr("n", "ec:P-256", "/CN=node-a.corp.example", &[]);
    let reenroll = |s: &str| ReenrollRequest {
        hostname: host.node.hostname.clone(),
        machine_secret: s.to_string(),
        csr: csr.clone(),
    };
    let err = host.server.client().reenroll(T, &reenroll(&original)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials));
    host.server.client().reenroll(T, &reenroll(&rotated)).await.unwrap();
}

/// Whether one of the host's CRL files lists `serial` (lower-case hex).
fn crl_lists(node: &Node, serial: &str) -> bool {
    let Ok(dir) = std::fs::read_dir(node.state.join("crl")) else { return false };
    dir.filter_map(Result::ok).any(|e| {
        let pem = std::fs::read(e.path()).unwrap_or_default();
        x509_parser::pem::Pem::iter_from_buffer(&pem).filter_map(Result::ok).any(|p| {
            x509_parser::parse_x509_crl(&p.contents).is_ok_and(|(_, crl)| {
                crl.iter_revoked_certificates().any(|r| {
                    lightwell_ca::serial::Serial::from_bytes(r.raw_serial()).is_ok_and(|s| s.to_hex() == serial)
                })
            })
        })
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_whose_renewal_keeps_failing_still_receives_revocations() {
    let host = Host::joined().await;
    let running = host.running_agent().await;
    // Expired, and the machine secret is wrong: every renewal and re-enrolment fails.
    std::fs::write(host.node.state.join("machine.secret"), "lwm_wrong\n").unwrap();
    let (_, not_after) = validity(&host.cert()).unwrap();
    host.move_clocks_to(not_after + 3600);
    let admin = host.server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let refused = || async {
        let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
        audit.iter().any(|r| r.action == "machine.reenroll" && r.outcome != "success")
    };
    let deadline = Instant::now() + ACT;
    while !refused().await {
        assert!(Instant::now() < deadline, "the agent never tried to re-enrol");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A revocation still reaches the host while its renewal backs off.
    let (_, csr) = pki::Files::new().csr("c", "ec:P-256", "/CN=administrator", &[]);
    let req = lightwell_proto::IssueCertificateRequest { csr, ..Default::default() };
    let cert = admin.issue_certificate(T, &req).await.unwrap();
    let revoke = lightwell_proto::RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    admin.revoke_certificate(T, &cert.serial, &revoke).await.unwrap();
    assert!(wait_until(ACT, || crl_lists(&host.node, &cert.serial)), "the host's CRL lists {}", cert.serial);
    running.abort();
}
