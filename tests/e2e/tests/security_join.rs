//! Attacks on domain join and machine credentials, against the real server
//! (security review, issue 13: items 1, 4, 6, 8 and 10). Each test performs
//! the attack and checks that it is refused and that nothing changed.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use lightwell_client::{Client, ClientError};
use lightwell_proto::{CreateJoinTokenRequest, JoinRequestBody, JoinResponse, ReenrollRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::node::Node;
use lightwell_testkit::pki::{self, Files};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

const T: &str = "corp.example";

fn code(e: ClientError) -> String {
    match e {
        ClientError::Api { code, message, .. } => format!("{code}: {message}"),
        other => panic!("not an API error: {other}"),
    }
}

async fn token(admin: &Client, req: CreateJoinTokenRequest) -> String {
    admin.create_join_token(T, &req).await.unwrap().token.unwrap()
}

fn body(token: &str, hostname: &str, ips: &[&str], csr: String) -> JoinRequestBody {
    JoinRequestBody {
        token: Some(token.into()),
        hostname: hostname.into(),
        ips: ips.iter().map(|s| s.to_string()).collect(),
        csr,
    }
}

/// Subject (as OpenSSL prints it, RFC 4514 order reversed) and IP SANs of a PEM certificate.
fn subject_and_ips(pem: &str) -> (String, Vec<String>) {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let (_, cert) = X509Certificate::from_der(&pem.contents).unwrap();
    let mut ips = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for n in &san.general_names {
                if let GeneralName::IPAddress(b) = n {
                    let ip: std::net::IpAddr = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).unwrap().into(),
                        _ => <[u8; 16]>::try_from(*b).unwrap().into(),
                    };
                    ips.push(ip.to_string());
                }
            }
        }
    }
    ips.sort();
    (cert.subject().to_string(), ips)
}

fn serial_of(pem: &str) -> String {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let (_, cert) = X509Certificate::from_der(&pem.contents).unwrap();
    cert.raw_serial().iter().map(|b| format!("{b:02x}")).collect()
}

/// Joins `host` over REST with a fresh key; returns the response and the key.
async fn join(server: &TestServer, files: &Files, token: &str, host: &str, ips: &[&str]) -> (JoinResponse, PathBuf) {
    let (key, csr) = files.csr(host, "ec:P-256", &format!("/CN={host}"), &[]);
    (server.client().join(T, &body(token, host, ips, csr)).await.unwrap(), key)
}

/// The directory revision of the tenant, read from the SQLite file the
/// server is running on (WAL lets a reader in beside it).
fn directory_revision(server: &TestServer) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        server.data_dir().join("lightwell.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row(
        "SELECT r.revision FROM directory_revisions r JOIN tenants t ON t.id = r.tenant_id WHERE t.domain = ?1",
        [T],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_join_token_cannot_name_a_machine_after_a_user_or_outside_the_tenant() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    let secret = token(&admin, CreateJoinTokenRequest { uses: Some(5), ..Default::default() }).await;
    let before = directory_revision(&server);
    for name in ["administrator", "node1", "corp.example", "node1.other.example", "example"] {
        let (_, csr) = files.csr(name, "ec:P-256", &format!("/CN={name}"), &[]);
        let err = code(server.client().join(T, &body(&secret, name, &[], csr)).await.unwrap_err());
        assert!(err.starts_with("invalid_name") && err.contains("inside corp.example"), "{name}: {err}");
    }
    // Nothing changed: the token kept its uses, no machine exists, the
    // directory revision did not move (LDAP rebuilds nothing).
    assert_eq!(admin.list_join_tokens(T).await.unwrap()[0].uses_left, 5);
    assert!(admin.list_principals(T, "machines").await.unwrap().is_empty());
    assert_eq!(directory_revision(&server), before, "refused joins bump no revision");
    // The refusals are audited.
    let audit = admin.audit(Some(T), 0, 500).await.unwrap();
    assert_eq!(audit.iter().filter(|r| r.action == "machine.join" && r.outcome == "failure").count(), 5);

    // An administrator cannot create such a machine either.
    let req = lightwell_proto::CreateHostPrincipalRequest { name: "administrator".into(), ..Default::default() };
    assert!(code(admin.create_principal(T, "machines", &req).await.unwrap_err()).starts_with("invalid_name"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_machine_certificate_carries_only_the_addresses_its_token_binds_and_its_kind() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    let host = "node1.corp.example";
    let bound =
        CreateJoinTokenRequest { hostname: Some(host.into()), ips: vec!["192.168.1.10".into()], ..Default::default() };
    let secret = token(&admin, bound).await;
    let (joined, key) = join(&server, &files, &secret, host, &["0.0.0.0", "10.96.0.1", "192.168.1.10"]).await;
    let (subject, ips) = subject_and_ips(&joined.certificate);
    assert_eq!(ips, ["192.168.1.10"], "addresses the token does not bind stay out");
    assert_eq!(joined.unapproved_ips, ["0.0.0.0", "10.96.0.1"]);
    assert_eq!(subject, "OU=machine, CN=node1.corp.example");
    let machine = admin.principal(T, "machines", host).await.unwrap();
    assert_eq!(machine.ips, ["192.168.1.10"]);

    // A user's certificate never has a machine's subject.
    let alice = pki::user(&server, &admin, T, "alice").await;
    let (_, csr) = files.csr("alice", "ec:P-256", "/CN=alice", &[]);
    let req = lightwell_proto::IssueCertificateRequest { csr, ..Default::default() };
    let cert = alice.issue_certificate(T, &req).await.unwrap();
    assert_eq!(subject_and_ips(&cert.pem).0, "OU=user, CN=alice");

    // An administrator approves another address; the next renewal carries it.
    pki::admin_cli(&server, T).ok(&["machine", "update", host, "--ip", "192.168.1.10", "--ip", "10.0.0.5"]);
    let (_, csr) = files.csr("renew", "ec:P-256", &format!("/CN={host}"), &[]);
    let resp = server
        .mtls_as(&key, &joined.chain)
        .post(format!("{}/v1/tenants/{T}/certificates", server.url()))
        .json(&serde_json::json!({ "csr": csr }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let renewed: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(subject_and_ips(renewed["pem"].as_str().unwrap()).1, ["10.0.0.5", "192.168.1.10"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_registered_to_one_principal_cannot_be_taken_by_another() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    pki::host(&admin, T, "services", "payments", &["payments.corp.example"], &[]).await;
    let secret = token(&admin, CreateJoinTokenRequest { uses: Some(3), ..Default::default() }).await;
    // An --allow-rejoin token must name its host: it takes over a machine.
    let open_rejoin = CreateJoinTokenRequest { allow_rejoin: true, ..Default::default() };
    assert!(code(admin.create_join_token(T, &open_rejoin).await.unwrap_err()).starts_with("invalid_request"));
    // A joining host cannot take the service's DNS name...
    let (_, csr) = files.csr("p", "ec:P-256", "/CN=payments.corp.example", &[]);
    let err = code(server.client().join(T, &body(&secret, "payments.corp.example", &[], csr)).await.unwrap_err());
    // (A token holder is not told by whom; an administrator is.)
    assert!(err.starts_with("already_exists") && err.contains("another principal"), "{err}");
    assert!(!err.contains("payments "), "{err}");
    let svc_dns =
        lightwell_proto::CreateHostPrincipalRequest { name: "payments.corp.example".into(), ..Default::default() };
    let err = code(admin.create_principal(T, "machines", &svc_dns).await.unwrap_err());
    assert!(err.contains("service payments"), "{err}");
    assert_eq!(admin.list_join_tokens(T).await.unwrap()[0].uses_left, 3, "the refusal used nothing");
    // ...and once a machine has joined, no user, service or DNS name can be it.
    join(&server, &files, &secret, "node1.corp.example", &[]).await;
    let user = lightwell_proto::CreateUserRequest {
        name: "node1.corp.example".into(),
        password: Some(pki::USER_PASSWORD.into()),
        email: None,
        display_name: None,
    };
    let err = code(admin.create_principal(T, "users", &user).await.unwrap_err());
    assert!(err.starts_with("already_exists") && err.contains("machine node1.corp.example"), "{err}");
    let svc = lightwell_proto::CreateHostPrincipalRequest {
        name: "web".into(),
        hostnames: vec!["NODE1.corp.example".into()],
        ..Default::default()
    };
    assert!(code(admin.create_principal(T, "services", &svc).await.unwrap_err()).starts_with("already_exists"));
    let patch = lightwell_proto::UpdatePrincipalRequest {
        hostnames: Some(vec!["node1.corp.example".into()]),
        ..Default::default()
    };
    assert!(
        code(admin.update_principal(T, "services", "payments", &patch).await.unwrap_err())
            .starts_with("already_exists")
    );
    assert_eq!(admin.principal(T, "services", "payments").await.unwrap().hostnames, ["payments.corp.example"]);
    // A user named like a service is refused too: their certificates would share a CN.
    let same = lightwell_proto::CreateUserRequest { name: "Payments".into(), ..user };
    assert!(code(admin.create_principal(T, "users", &same).await.unwrap_err()).starts_with("already_exists"));
}

#[tokio::test(flavor = "multi_thread")]
async fn machines_may_be_named_in_domains_the_tenant_lists() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    let secret = token(&admin, CreateJoinTokenRequest { uses: Some(3), ..Default::default() }).await;
    let (_, csr) = files.csr("n", "ec:P-256", "/CN=n1.hosts.internal", &[]);
    assert!(
        code(server.client().join(T, &body(&secret, "n1.hosts.internal", &[], csr.clone())).await.unwrap_err())
            .starts_with("invalid_name")
    );
    // Only Administrators change the list.
    let bob = pki::user(&server, &admin, T, "bob").await;
    let list = lightwell_proto::MachineDomains { domains: vec!["hosts.internal".into()] };
    assert!(code(bob.set_machine_domains(T, &list).await.unwrap_err()).starts_with("forbidden"));
    let shown = pki::admin_cli(&server, T).ok(&["machine", "domains", "hosts.internal"]);
    assert!(shown.contains("corp.example, hosts.internal"), "{shown}");
    server.client().join(T, &body(&secret, "n1.hosts.internal", &[], csr)).await.unwrap();
    assert!(
        code(
            admin
                .set_machine_domains(T, &lightwell_proto::MachineDomains { domains: vec!["*".into()] })
                .await
                .unwrap_err()
        )
        .starts_with("invalid_name")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_join_or_rejoin_changes_nothing() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    let host = "node1.corp.example";
    let once = token(&admin, CreateJoinTokenRequest { hostname: Some(host.into()), ..Default::default() }).await;
    // A CSR naming someone else: refused after the token and name checks.
    let (_, bad) = files.csr("bad", "ec:P-256", "/CN=administrator", &[]);
    let err = code(server.client().join(T, &body(&once, host, &[], bad)).await.unwrap_err());
    assert!(err.starts_with("policy_violation"), "{err}");
    assert_eq!(admin.list_join_tokens(T).await.unwrap()[0].uses_left, 1, "the single use is still there");
    assert!(admin.list_principals(T, "machines").await.unwrap().is_empty(), "no machine account was left");
    let domain_clients = admin.principal(T, "groups", "DomainClients").await.unwrap();
    assert!(domain_clients.members.unwrap_or_default().is_empty());
    // The same token still joins the host.
    let (joined, _) = join(&server, &files, &once, host, &[]).await;

    // A refused re-join leaves the joined host's certificate and secret as they were.
    let again = CreateJoinTokenRequest { hostname: Some(host.into()), allow_rejoin: true, ..Default::default() };
    let again = token(&admin, again).await;
    let (_, bad) = files.csr("bad2", "ec:P-256", "/CN=other.corp.example", &[]);
    assert!(
        code(server.client().join(T, &body(&again, host, &[], bad)).await.unwrap_err()).starts_with("policy_violation")
    );
    let certs = admin.list_certificates(T, None).await.unwrap();
    let first = certs.iter().find(|c| c.serial == serial_of(&joined.certificate)).unwrap();
    assert!(first.revoked_at.is_none(), "the existing certificate was not revoked");
    let (_, csr) = files.csr("re", "ec:P-256", &format!("/CN={host}"), &[]);
    let req = ReenrollRequest { hostname: host.into(), machine_secret: joined.machine_secret.clone(), csr };
    server.client().reenroll(T, &req).await.expect("the machine secret still works");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stolen_machine_certificate_cannot_take_over_the_machine_secret() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    let host = "node1.corp.example";
    let secret = token(&admin, CreateJoinTokenRequest { hostname: Some(host.into()), ..Default::default() }).await;
    let (joined, key) = join(&server, &files, &secret, host, &[]).await;
    let thief = server.mtls_as(&key, &joined.chain);
    let rotate = |client: reqwest::Client, body: serde_json::Value| {
        let url = format!("{}/v1/tenants/{T}/machine-secret", server.url());
        async move {
            let resp = client.post(url).json(&body).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<serde_json::Value>().await.unwrap())
        }
    };
    // The certificate alone, or with a guessed secret: refused, and audited.
    let (status, b) = rotate(thief.clone(), serde_json::json!({})).await;
    assert_eq!((status, b["error"]["code"].as_str()), (400, Some("invalid_request")), "{b}");
    let (status, b) = rotate(thief.clone(), serde_json::json!({ "machine_secret": "lwm_guess" })).await;
    assert_eq!((status, b["error"]["code"].as_str()), (401, Some("invalid_credentials")), "{b}");
    let audit = admin.audit(Some(T), 0, 500).await.unwrap();
    assert!(audit.iter().any(|r| r.action == "machine.rotate_secret" && r.outcome == "failure"));
    let reenroll = |secret: String, name: &'static str| {
        let (_, csr) = files.csr(name, "ec:P-256", &format!("/CN={host}"), &[]);
        let req = ReenrollRequest { hostname: host.into(), machine_secret: secret, csr };
        let client = server.client();
        async move { client.reenroll(T, &req).await }
    };
    reenroll(joined.machine_secret.clone(), "r1").await.expect("the real secret still works");
    // With both proofs the rotation works, and the old secret stops working.
    // A host proposes its new secret, so a retry after a lost answer is
    // answered the same way instead of locking it out.
    let next = format!("lwm_{}", "a1".repeat(32));
    let body = serde_json::json!({ "machine_secret": joined.machine_secret, "new_machine_secret": next });
    let (status, b) = rotate(thief.clone(), body.clone()).await;
    assert_eq!((status, b["machine_secret"].as_str()), (200, Some(next.as_str())), "{b}");
    let (status, b) = rotate(thief.clone(), body).await;
    assert_eq!((status, b["machine_secret"].as_str()), (200, Some(next.as_str())), "the retry: {b}");
    let weak = serde_json::json!({ "machine_secret": next, "new_machine_secret": "lwm_short" });
    assert_eq!(rotate(thief.clone(), weak).await.0, 400, "a weak proposed secret is refused");
    let fresh = next;
    assert!(reenroll(joined.machine_secret.clone(), "r2").await.is_err());

    // The thief renews with the stolen certificate and a key of its own.
    let (thief_key, csr) = files.csr("thief", "ec:P-256", &format!("/CN={host}"), &[]);
    let resp = thief
        .post(format!("{}/v1/tenants/{T}/certificates", server.url()))
        .json(&serde_json::json!({ "csr": csr }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let renewed: serde_json::Value = resp.json().await.unwrap();
    let thief2 = server.mtls_as(&thief_key, renewed["chain_pem"].as_str().unwrap());

    // The administrator revokes the stolen certificate for key compromise:
    // the machine's whole identity ends — the thief's renewal too, and the
    // secret (possibly stolen with it) is forgotten; only a re-join helps.
    let why = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    admin.revoke_certificate(T, &serial_of(&joined.certificate), &why).await.unwrap();
    let certs = admin.list_certificates(T, None).await.unwrap();
    let renewed_serial = renewed["serial"].as_str().unwrap();
    assert!(certs.iter().find(|c| c.serial == renewed_serial).unwrap().revoked_at.is_some(), "the renewal is revoked");
    let resp = thief2.get(format!("{}/v1/whoami", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 401, "the thief's renewed certificate no longer authenticates");
    assert!(code(reenroll(fresh, "r3").await.unwrap_err()).starts_with("invalid_credentials"));
    let audit = admin.audit(Some(T), 0, 500).await.unwrap();
    assert!(audit.iter().any(|r| r.action == "machine.forget_secret" && r.detail.contains(renewed_serial)));
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_revokes_the_machine_and_fails_loudly_when_it_cannot() {
    let mut server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let dir = tempfile::tempdir().unwrap();
    let host = "node1.corp.example";
    let secret = token(&admin, CreateJoinTokenRequest { hostname: Some(host.into()), ..Default::default() }).await;
    let node = Node::new(dir.path(), host);
    assert!(node.join(&server, T, Some(&secret)).status.success());
    let machine_secret = std::fs::read_to_string(node.state.join("machine.secret")).unwrap().trim().to_string();
    let serial = serial_of(&std::fs::read_to_string(node.identity().cert).unwrap());
    let leave = |force: bool| {
        let mut cmd = std::process::Command::new(lightwell_testkit::bin("lightwell"));
        cmd.args(["leave", "--state-dir"]).arg(&node.state);
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };

    // The server cannot be told: nothing is removed.
    server.stop();
    let out = leave(false);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was removed"));
    assert!(node.state.join("agent.toml").exists());
    server.start_again();

    // Someone without the machine secret (a stolen certificate is not enough)
    // cannot make the host leave.
    let bogus = serde_json::json!({ "hostname": host, "machine_secret": format!("lwm_{}", "0".repeat(43)) });
    let resp = server.raw().post(format!("{}/v1/tenants/{T}/leave", server.url())).json(&bogus).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    assert!(admin.principal(T, "machines", host).await.unwrap().enabled, "nothing changed");

    let out = leave(false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!node.state.exists());
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let cert = admin.list_certificates(T, None).await.unwrap().into_iter().find(|c| c.serial == serial).unwrap();
    assert!(cert.revoked_at.is_some(), "the machine certificate is revoked");
    assert!(!admin.principal(T, "machines", host).await.unwrap().enabled);
    let files = Files::new();
    let (_, csr) = files.csr("re", "ec:P-256", &format!("/CN={host}"), &[]);
    let req = ReenrollRequest { hostname: host.into(), machine_secret, csr };
    assert!(code(server.client().reenroll(T, &req).await.unwrap_err()).starts_with("invalid_credentials"));

    // --force removes the state even when the server cannot be told.
    let again = CreateJoinTokenRequest { hostname: Some(host.into()), allow_rejoin: true, ..Default::default() };
    let again = token(&admin, again).await;
    assert!(node.join(&server, T, Some(&again)).status.success());
    server.stop();
    let out = leave(true);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!node.state.exists());
}

/// Item 10: a flood of bogus joins from one address costs a handful of audit
/// records and no directory revision; the address is then answered
/// `too_many_requests` unexamined, while other addresses join as usual.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_bogus_joins_is_throttled_per_address_and_barely_audited() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    let (_, csr) = files.csr("flood", "ec:P-256", "/CN=flood.corp.example", &[]);
    let before = directory_revision(&server);
    let audit_before = admin.audit(Some(T), 0, 5000).await.unwrap().len();
    let flooder = server.raw_from("127.0.0.9".parse().unwrap());
    let url = format!("{}/v1/tenants/{T}/join", server.url());
    let body = serde_json::json!({ "token": "lwj_bogus", "hostname": "flood.corp.example", "csr": csr });
    let mut statuses = Vec::new();
    for _ in 0..200 {
        let resp = flooder.post(&url).json(&body).send().await.unwrap();
        let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        statuses.push((resp.status().as_u16(), retry));
    }
    let refused = statuses.iter().filter(|(s, _)| *s == 401).count();
    let throttled: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(refused, 10, "ten bogus joins are examined: {statuses:?}");
    assert_eq!(throttled.len(), 190);
    assert!(throttled.iter().all(|(_, r)| r.as_deref().is_some_and(|r| r.parse::<u64>().unwrap() >= 1)));
    // Ten refusals and one notice that the address is throttled; no revision.
    let audit = admin.audit(Some(T), 0, 5000).await.unwrap();
    let new: Vec<_> = audit[audit_before..].iter().collect();
    assert_eq!(new.iter().filter(|r| r.action == "machine.join" && r.outcome == "failure").count(), 11, "{new:?}");
    assert!(new.iter().any(|r| r.actor == "address:127.0.0.9" && r.detail.contains("not audited")));
    assert_eq!(directory_revision(&server), before, "refusals move no directory revision");
    // Spelling the tenant differently does not buy more audit records.
    for spelling in ["CORP.example", "corp.EXAMPLE.", "Corp.Example"] {
        let url = format!("{}/v1/tenants/{spelling}/join", server.url());
        assert_eq!(flooder.post(&url).json(&body).send().await.unwrap().status(), 429);
    }
    assert_eq!(admin.audit(Some(T), 0, 5000).await.unwrap().len(), audit.len());

    // Another address is not affected: a real host joins.
    let secret = token(&admin, CreateJoinTokenRequest::default()).await;
    let (_, csr) = files.csr("real", "ec:P-256", "/CN=real.corp.example", &[]);
    let resp = server
        .raw_from("127.0.0.10".parse().unwrap())
        .post(&url)
        .json(&serde_json::json!({ "token": secret, "hostname": "real.corp.example", "csr": csr }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let metrics = server.raw().get(format!("{}/metrics", server.url())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "lightwell_enrolments_throttled_total 193"), "{metrics}");
}

/// Names claimed before migration 0009 may collide (a user and a service of
/// one name): the later one claims nothing, and must still be manageable —
/// disabled, unlocked, its password changed — as long as it takes no name
/// that is taken. E-mail addresses are names too.
#[tokio::test(flavor = "multi_thread")]
async fn principals_that_share_a_name_from_before_the_upgrade_stay_manageable() {
    let mut server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::host(&admin, T, "services", "payments", &[], &[]).await;
    pki::user(&server, &admin, T, "alice").await;
    // Two users may not share an e-mail address.
    let bob = lightwell_proto::CreateUserRequest {
        name: "bob".into(),
        password: Some(pki::USER_PASSWORD.into()),
        email: Some("ALICE@corp.example".into()),
        display_name: None,
    };
    assert!(code(admin.create_principal(T, "users", &bob).await.unwrap_err()).starts_with("already_exists"));

    // A user "payments" as an older version could have made it: a row and no claim.
    server.stop();
    let db = rusqlite::Connection::open(server.data_dir().join("lightwell.db")).unwrap();
    db.execute(
        "INSERT INTO principals SELECT 'legacy-dup', tenant_id, 'user', 'payments', NULL, NULL, '[]', '[]', 1, 0, \
         password_hash, 1, 0, NULL, NULL, created_at + 1, created_at + 1 FROM principals WHERE name = 'alice'",
        [],
    )
    .unwrap();
    drop(db);
    server.start_again();
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let cli = pki::admin_cli(&server, T);
    cli.ok(&["user", "disable", "payments"]);
    cli.ok(&["user", "enable", "payments"]);
    cli.ok(&["user", "unlock", "payments"]);
    let patch = lightwell_proto::UpdatePrincipalRequest { display_name: Some("Legacy".into()), ..Default::default() };
    admin.update_principal(T, "users", "payments", &patch).await.expect("an update that takes no name works");
    // A wrong password still counts toward its lockout (the update is not refused).
    let err = server
        .raw_from("127.0.0.21".parse().unwrap())
        .post(format!("{}/v1/tenants/{T}/login", server.url()))
        .json(&serde_json::json!({ "user": "payments", "password": "Wrong-Passw0rd!" }))
        .send()
        .await
        .unwrap();
    assert_eq!(err.status(), 401);
    // Taking a name that is taken is still refused.
    let taken =
        lightwell_proto::UpdatePrincipalRequest { email: Some("alice@corp.example".into()), ..Default::default() };
    assert!(
        code(admin.update_principal(T, "users", "payments", &taken).await.unwrap_err()).starts_with("already_exists")
    );
}
