//! The seed scenario of DESIGN.md section 1, end to end with real processes:
//! the server, two joined hosts each running the real agent, mutual TLS with
//! OpenSSL and rustls using only the files the agents wrote, a rogue host, a
//! user certificate revoked by a password reset and pushed to every host,
//! and an issuing CA revoked under everyone.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lightwell_client::Client;
use lightwell_proto::{CreateJoinTokenRequest, RevokeRequest, SetPasswordRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::node::{Identity, Node, openssl_mtls, rustls_mtls, wait_until};
use lightwell_testkit::pki::{self, USER_PASSWORD};

const T: &str = "corp.example";
const PUSH: Duration = Duration::from_secs(5);

async fn token(admin: &Client, hostname: Option<&str>) -> String {
    let req = CreateJoinTokenRequest { hostname: hostname.map(str::to_string), ..Default::default() };
    admin.create_join_token(T, &req).await.unwrap().token.unwrap()
}

fn joined(node: &Node, server: &TestServer, tok: &str) {
    let out = node.join(server, T, Some(tok));
    assert!(out.status.success(), "join of {} failed: {}", node.hostname, String::from_utf8_lossy(&out.stderr));
}

/// A user's certificate, requested with the CLI after a password login; the key is made locally.
fn user_certificate(server: &TestServer, dir: &Path, user: &str, password: &str) -> Identity {
    let cli = pki::login_cli(server, T, user, password);
    let (key, out) = (dir.join(format!("{user}.key")), dir.join(format!("{user}.pem")));
    let _ = std::fs::remove_file(&key);
    cli.ok(&["cert", "request", "--key-out", key.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    Identity { cert: out.clone(), chain: out, key }
}

/// A certificate for the rogue host from a third-party CA made with OpenSSL.
fn rogue_identity(dir: &Path) -> Identity {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Third Party CA",
        "-addext",
        "basicConstraints=critical,CA:true",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        "tp-ca.key",
        "-out",
        "tp-ca.pem",
    ]);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=node-r.corp.example",
        "-addext",
        "subjectAltName=DNS:node-r.corp.example,URI:spiffe://corp.example/machine/node-r.corp.example",
        "-addext",
        "extendedKeyUsage=clientAuth,serverAuth",
        // An end-entity certificate (`req -x509` would otherwise mark it a CA).
        "-addext",
        "basicConstraints=critical,CA:false",
        "-CA",
        "tp-ca.pem",
        "-CAkey",
        "tp-ca.key",
        "-keyout",
        "rogue.key",
        "-out",
        "rogue.pem",
    ]);
    let chain = p("rogue-chain.pem");
    std::fs::write(&chain, [std::fs::read(p("rogue.pem")).unwrap(), std::fs::read(p("tp-ca.pem")).unwrap()].concat())
        .unwrap();
    Identity { cert: p("rogue.pem"), chain, key: p("rogue.key") }
}

fn accepted(server: &Node, client: &Identity, what: &str) {
    let (ok, out) = openssl_mtls(server, client);
    assert!(ok, "OpenSSL: {} must accept {what}:\n{out}", server.hostname);
}

/// OpenSSL refuses `client` because it (or its issuing CA) is revoked, not
/// for any other reason (a missing file, a wrong host name).
fn revoked(server: &Node, client: &Identity, what: &str) {
    let (ok, out) = openssl_mtls(server, client);
    assert!(
        !ok && out.contains("certificate revoked"),
        "OpenSSL: {} must reject {what} as revoked:\n{out}",
        server.hostname
    );
}

/// OpenSSL refuses `client` because no trusted CA issued it.
fn untrusted(server: &Node, client: &Identity, what: &str) {
    let (ok, out) = openssl_mtls(server, client);
    assert!(
        !ok && out.contains("self-signed certificate in certificate chain"),
        "OpenSSL: {} must reject {what} as untrusted:\n{out}",
        server.hostname
    );
}

/// rustls refuses `client` as revoked.
async fn rustls_revoked(server: &Node, client: &Identity) {
    let err = rustls_mtls(server, client).await.expect_err("rustls must refuse a revoked certificate");
    assert!(err.contains("Revoked"), "rustls refused for another reason: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_joined_hosts_talk_mtls_and_revocation_reaches_both() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let dir: PathBuf = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut a = Node::new(&dir, "node-a.corp.example");
    let mut b = Node::new(&dir, "node-b.corp.example");
    joined(&a, &server, &token(&admin, Some(&a.hostname)).await);
    joined(&b, &server, &token(&admin, None).await);
    a.start_agent();
    b.start_agent();

    // The machine accounts exist and are domain clients.
    let m = admin.principal(T, "machines", &a.hostname).await.unwrap();
    assert_eq!(m.member_of, vec!["DomainClients".to_string()]);

    // Mutual TLS using only the agents' files, both ways, OpenSSL and rustls.
    accepted(&b, &a.identity(), "node A");
    accepted(&a, &b.identity(), "node B");
    rustls_mtls(&b, &a.identity()).await.unwrap();
    rustls_mtls(&a, &b.identity()).await.unwrap();

    // A rogue host with a third-party certificate is rejected.
    let rogue = rogue_identity(&dir);
    untrusted(&b, &rogue, "a third-party certificate");
    let err = rustls_mtls(&b, &rogue).await.expect_err("rustls must refuse a third-party certificate");
    assert!(err.contains("UnknownIssuer"), "{err}");

    // Alice logs in with her password and gets a client certificate B accepts.
    pki::user(&server, &admin, T, "alice").await;
    let alice = user_certificate(&server, &dir, "alice", USER_PASSWORD);
    accepted(&b, &alice, "alice");
    rustls_mtls(&b, &alice).await.unwrap();

    // The administrator resets alice's password: her certificate is revoked and
    // the new CRL reaches both hosts with no restart and no manual step.
    let (rev_a, rev_b, crls_b) = (a.revision(), b.revision(), b.crls());
    admin
        .set_password(T, "alice", &SetPasswordRequest { new_password: "Looking-Glass-43!".into(), old_password: None })
        .await
        .unwrap();
    assert!(
        wait_until(PUSH, || a.revision() > rev_a && b.revision() > rev_b && b.crls() != crls_b),
        "the CRL did not reach both agents within {PUSH:?}"
    );
    // A server (re)loading B's files now refuses alice's old certificate.
    revoked(&b, &alice, "alice's revoked certificate");
    rustls_revoked(&b, &alice).await;
    // With her new password alice gets a new certificate, accepted again.
    let alice2 = user_certificate(&server, &dir, "alice", "Looking-Glass-43!");
    accepted(&b, &alice2, "alice's new certificate");
    assert!(a.agent_running() && b.agent_running());

    // Revoking the issuing CA cuts off every identity under it once the agents sync.
    let rev_b = b.revision();
    let req = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    admin.revoke_ca(T, "issuing", &req).await.unwrap();
    assert!(
        wait_until(PUSH, || a.revision() > rev_b && b.revision() > rev_b),
        "the root's CRL did not reach the agents"
    );
    revoked(&b, &a.identity(), "node A under a revoked issuing CA");
    revoked(&a, &b.identity(), "node B under a revoked issuing CA");
    revoked(&b, &alice2, "alice under a revoked issuing CA");
    rustls_revoked(&b, &a.identity()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_without_a_valid_join_token_get_nothing() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let dir = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let bound = token(&admin, Some("node-x.corp.example")).await;
    let once = token(&admin, None).await;
    joined(&Node::new(&dir, "node-first.corp.example"), &server, &once);
    let revoked = token(&admin, None).await;
    let id = admin
        .list_join_tokens(T)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.uses_left == 1 && !t.revoked && t.hostname.is_none())
        .unwrap()
        .id;
    admin.revoke_join_token(T, &id).await.unwrap();
    let short = admin
        .create_join_token(T, &CreateJoinTokenRequest { ttl: Some("1m".into()), ..Default::default() })
        .await
        .unwrap()
        .token
        .unwrap();

    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "node-none.corp.example"),
        ("a wrong token", Some("lwj_not-a-real-token".into()), "node-wrong.corp.example"),
        ("a used-up token", Some(once.clone()), "node-second.corp.example"),
        ("a token bound to another host name", Some(bound.clone()), "node-y.corp.example"),
        ("a revoked token", Some(revoked.clone()), "node-rev.corp.example"),
    ];
    for (what, tok, host) in &cases {
        let node = Node::new(&dir, host);
        let out = node.join(&server, T, tok.as_deref());
        assert!(!out.status.success(), "joining with {what} must fail");
        assert!(!node.state.exists(), "{what}: no state dir is left behind");
    }
    // The API answers a token-less join the same way.
    let (_, csr) = pki::Files::new().csr("x", "ec:P-256", "/CN=node-api.corp.example", &[]);
    let body =
        lightwell_proto::JoinRequestBody { token: None, hostname: "node-api.corp.example".into(), ips: vec![], csr };
    let err = server.client().join(T, &body).await.unwrap_err();
    assert_eq!(err.code(), Some(lightwell_proto::ErrorCode::InvalidJoinToken));

    // An expired token.
    server.set_clock_offset(120);
    let node = Node::new(&dir, "node-late.corp.example");
    assert!(!node.join(&server, T, Some(&short)).status.success(), "an expired token must fail");
    server.set_clock_offset(0);

    // None of them created a machine account.
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let machines: Vec<String> =
        admin.list_principals(T, "machines").await.unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(machines, vec!["node-first.corp.example".to_string()]);
    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    // One record per refusal the server saw: four by the CLI (the CLI itself
    // refuses to join without a token), the token-less API join, the expired token.
    let refused = audit.iter().filter(|r| r.action == "machine.join" && r.outcome == "failure").count();
    assert_eq!(refused, 6, "every refused join is audited once");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_keeps_its_files_through_an_outage_and_catches_up() {
    let mut server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let dir = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut a = Node::new(&dir, "node-a.corp.example");
    joined(&a, &server, &token(&admin, None).await);
    a.start_agent();
    pki::user(&server, &admin, T, "bob").await;
    let bob = user_certificate(&server, &dir, "bob", USER_PASSWORD);

    // The server goes away: the agent keeps running and keeps its files.
    let before: Vec<_> =
        ["bundle.pem", "cert.pem", "key.pem"].iter().map(|f| std::fs::read(a.state.join(f)).unwrap()).collect();
    let crls = a.crls();
    let pid = a.agent_pid();
    assert!(server.stop());
    // Longer than several of the agent's retries (1 s, 2 s, 4 s, ... with jitter).
    std::thread::sleep(Duration::from_secs(8));
    assert!(a.agent_running(), "the agent rides out the outage");
    let during: Vec<_> =
        ["bundle.pem", "cert.pem", "key.pem"].iter().map(|f| std::fs::read(a.state.join(f)).unwrap()).collect();
    assert_eq!(before, during);
    assert_eq!(crls, a.crls());

    // The server returns and revokes bob's certificate at once: the same
    // agent process, still backing off from the outage, reconnects by itself
    // and its files list the serial.
    server.start_again();
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let serial = {
        let out = Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(&bob.cert).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().trim_start_matches("serial=").to_lowercase()
    };
    let rev = a.revision();
    admin
        .revoke_certificate(T, &serial, &RevokeRequest { reason: Some("key-compromise".into()), principal: None })
        .await
        .unwrap();
    let listed = || {
        std::fs::read_dir(a.state.join("crl")).unwrap().filter_map(Result::ok).any(|e| {
            let out = Command::new("openssl").args(["crl", "-noout", "-text", "-in"]).arg(e.path()).output().unwrap();
            String::from_utf8_lossy(&out.stdout).to_lowercase().contains(&format!("serial number: {serial}"))
        })
    };
    assert!(wait_until(Duration::from_secs(90), listed), "the running agent's CRL files list the serial");
    // The agent records the revision after it wrote the files it names.
    assert!(wait_until(Duration::from_secs(10), || a.revision() > rev), "the agent records the new revision");
    assert_eq!(a.agent_pid(), pid, "the same agent process, never restarted");
    assert!(a.agent_running());
    revoked(&a, &bob, "bob's certificate revoked after the outage");
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_renew_over_mtls_and_re_enrol_with_the_machine_secret_after_expiry() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let dir = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut a = Node::new(&dir, "node-a.corp.example");
    joined(&a, &server, &token(&admin, None).await);
    let serial = |n: &Node| {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(n.state.join("cert.pem"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let first = serial(&a);

    // 18 h into a 24 h certificate: due (two thirds, with jitter); renewed
    // over mutual TLS, not by falling back to re-enrolment.
    server.set_clock_offset(18 * 3600);
    a.env("LIGHTWELL_CLOCK_OFFSET_SECS", &(18 * 3600).to_string());
    let out = a.agent_once();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("re-enrol"), "renewal fell back to the machine secret: {log}");
    let second = serial(&a);
    assert_ne!(first, second, "renewed");
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await; // 18 h on: a new session
    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    assert!(!audit.iter().any(|r| r.action == "machine.reenroll"), "no re-enrolment happened");
    let renewal = audit.iter().rev().find(|r| r.action == "certificate.issue").unwrap();
    assert_eq!(renewal.actor, "machine:node-a.corp.example", "the machine asked itself, by its certificate");
    assert!(
        renewal.detail.contains(&second.trim().trim_start_matches("serial=").to_lowercase()),
        "{renewal:?} {second}"
    );

    // Two days later the certificate has expired: the agent re-enrols with its machine secret.
    let mut b = Node::new(&dir, "node-a.corp.example");
    b.env("LIGHTWELL_CLOCK_OFFSET_SECS", &(3 * 86_400).to_string());
    server.set_clock_offset(3 * 86_400);
    let out = b.agent_once();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("re-enrol"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(serial(&b), second, "re-enrolled");
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    assert!(audit.iter().any(|r| r.action == "machine.reenroll" && r.outcome == "success"));
    assert!(audit.iter().any(|r| r.action == "certificate.issue" && r.actor == "machine:node-a.corp.example"));

    // A wrong machine secret is refused and audited.
    std::fs::write(b.state.join("machine.secret"), "lwm_wrong\n").unwrap();
    b.env("LIGHTWELL_CLOCK_OFFSET_SECS", &(6 * 86_400).to_string());
    server.set_clock_offset(6 * 86_400);
    assert!(!b.agent_once().status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_keeps_a_service_certificate_for_a_service_its_host_runs() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::host(&admin, T, "services", "payments", &["payments.corp.example"], &[]).await;
    let dir = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let a = Node::new(&dir, "node-a.corp.example");
    joined(&a, &server, &token(&admin, None).await);
    let tls = dir.join("payments-tls");
    std::fs::create_dir_all(&tls).unwrap();
    let mut config = std::fs::read_to_string(a.state.join("agent.toml")).unwrap();
    config.push_str(&format!(
        "\n[[certificate]]\nname = \"payments\"\nservice = \"payments\"\ncert_path = \"{0}/cert.pem\"\nkey_path = \"{0}/key.pem\"\nhook = \"touch {0}/reloaded\"\n",
        tls.display()
    ));
    std::fs::write(a.state.join("agent.toml"), config).unwrap();

    // Not yet a host of the service: refused, and the machine's own files are untouched.
    let out = a.agent_once();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a host of service payments"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!tls.join("cert.pem").exists());

    admin.add_service_host(T, "payments", &a.hostname).await.unwrap();
    let out = a.agent_once();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(tls.join("reloaded").exists(), "the certificate's hook ran");
    assert_eq!(std::fs::metadata(tls.join("key.pem")).unwrap().permissions().mode() & 0o777, 0o600);
    let text =
        Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(tls.join("cert.pem")).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("URI:spiffe://corp.example/service/payments"), "{text}");
    assert!(text.contains("DNS:payments.corp.example"), "{text}");
    let (ok, out) = pki::openssl_verify(&a.state.join("bundle.pem"), &tls.join("cert.pem"), &tls.join("cert.pem"), &[]);
    assert!(ok, "{out}");
    // Hosting a service grants no group membership.
    let m = admin.principal(T, "machines", &a.hostname).await.unwrap();
    assert_eq!(m.member_of, vec!["DomainClients".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_machine_secret_rotates_and_the_new_one_re_enrols() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let dir = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut a = Node::new(&dir, "node-a.corp.example");
    joined(&a, &server, &token(&admin, None).await);
    let secret_file = a.state.join("machine.secret");
    let secret = || std::fs::read_to_string(&secret_file).unwrap();
    let original = secret();

    // Eight days on (past the 7-day rotation period) the agent re-enrols, then rotates its secret.
    a.env("LIGHTWELL_CLOCK_OFFSET_SECS", &(8 * 86_400).to_string());
    server.set_clock_offset(8 * 86_400);
    let out = a.agent_once();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rotated = secret();
    assert_ne!(original, rotated, "the machine secret was rotated");

    // The old secret no longer re-enrols; the rotated one does.
    let (_, csr) = pki::Files::new().csr("n", "ec:P-256", "/CN=node-a.corp.example", &[]);
    let reenroll = |s: &str| lightwell_proto::ReenrollRequest {
        hostname: a.hostname.clone(),
        machine_secret: s.trim().to_string(),
        csr: csr.clone(),
    };
    let err = server.client().reenroll(T, &reenroll(&original)).await.unwrap_err();
    assert_eq!(err.code(), Some(lightwell_proto::ErrorCode::InvalidCredentials));
    server.client().reenroll(T, &reenroll(&rotated)).await.unwrap();
}

#[test]
fn a_host_joins_with_an_administrators_credentials_and_not_with_a_users() {
    let server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = rt.block_on(pki::tenant(&server, T, None));
    rt.block_on(pki::user(&server, &admin, T, "carol"));
    let dir = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let join_as = |host: &str, user: &str, password: &str| {
        let node = Node::new(&dir, host);
        let pw = dir.join(format!("{user}.pw"));
        std::fs::write(&pw, password).unwrap();
        let out = Command::new(lightwell_testkit::bin("lightwell"))
            .args(["join", "--server", &server.url(), "--tenant", T, "--hostname", host, "--ca-file"])
            .arg(server.ca_file())
            .args(["--user", user, "--password-file"])
            .arg(&pw)
            .arg("--state-dir")
            .arg(&node.state)
            .env("LIGHTWELL_CONFIG_DIR", dir.join("cli"))
            .output()
            .unwrap();
        (out, node)
    };
    let (out, node) = join_as("node-u.corp.example", "carol", USER_PASSWORD);
    assert!(!out.status.success(), "a plain user cannot join hosts");
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!node.state.exists());
    let (out, node) = join_as("node-adm.corp.example", "administrator", pki::ADMIN_PASSWORD);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(node.state.join("cert.pem").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn re_joining_a_host_name_needs_a_token_that_allows_it_and_supersedes_the_old_identity() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let dir = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let first = Node::new(&dir, "node-a.corp.example");
    joined(&first, &server, &token(&admin, None).await);
    let status = Command::new(lightwell_testkit::bin("lightwell"))
        .args(["agent", "status", "--output", "json", "--state-dir"])
        .arg(&first.state)
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["machine"], "node-a.corp.example");
    assert!(status["trust_revision"].as_i64().unwrap() > 0, "{status}");

    // The same host name again, from another state dir (a reinstalled host).
    let mut again = Node::new(&dir, "node-a.corp.example");
    again.state = dir.join("reinstalled");
    let out = again.join(&server, T, Some(&token(&admin, None).await));
    assert!(!out.status.success(), "an ordinary token cannot take over a joined host name");
    assert!(String::from_utf8_lossy(&out.stderr).contains("allow-rejoin"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!again.state.exists());

    let req =
        CreateJoinTokenRequest { hostname: Some(again.hostname.clone()), allow_rejoin: true, ..Default::default() };
    let rejoin = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
    joined(&again, &server, &rejoin);
    // The old identity is revoked as superseded; the new one is accepted.
    revoked(&again, &first.identity(), "the superseded identity of the old install");
    accepted(&again, &again.identity(), "the new identity");
}
