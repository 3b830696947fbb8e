//! The privilege lattice against the real server (security review, issue
//! 13: items 2, 9 and 13): who may obtain a certificate naming whom, that a
//! certificate obtained on someone's behalf never authenticates as them
//! (REST mutual TLS and LDAP SASL EXTERNAL), that a CA key leaves the server
//! only to Administrators and cannot sign a SPIFFE ID, and that a machine
//! hosting a service gains none of its groups.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use lightwell_client::{Client, ClientError};
use lightwell_proto::{
    AddMemberRequest, CreateClusterRequest, CreateJoinTokenRequest, IssueCertificateRequest, JoinRequestBody,
};
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, Files};

const T: &str = "corp.example";
const HOST: &str = "node1.corp.example";

/// Who asks.
enum Asker<'a> {
    Bearer(&'a Client),
    /// A machine, by mutual TLS with its own certificate.
    Machine(&'a reqwest::Client),
}

/// Asks for a certificate for `target` (`kind/name`, with the CN it must
/// carry); returns the certificate chain, or the error code.
async fn ask(
    server: &TestServer,
    files: &Files,
    who: &Asker<'_>,
    target: (&str, &str),
) -> Result<(String, PathBuf), String> {
    let (principal, cn) = target;
    let (key, csr) = files.csr(&format!("k{}", rand_suffix()), "ec:P-256", &format!("/CN={cn}"), &[]);
    let req = IssueCertificateRequest { csr, principal: Some(principal.into()), ..Default::default() };
    match who {
        Asker::Bearer(c) => match c.issue_certificate(T, &req).await {
            Ok(cert) => Ok((cert.chain_pem, key)),
            Err(ClientError::Api { code, .. }) => Err(code.to_string()),
            Err(e) => panic!("{e}"),
        },
        Asker::Machine(c) => {
            let resp = c.post(format!("{}/v1/tenants/{T}/certificates", server.url())).json(&req).send().await.unwrap();
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.unwrap();
            if status.is_success() {
                Ok((body["chain_pem"].as_str().unwrap().to_string(), key))
            } else {
                Err(body["error"]["code"].as_str().unwrap().to_string())
            }
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `GET /v1/whoami` with a client certificate: the status and the body.
async fn whoami(server: &TestServer, key: &Path, chain: &str) -> (u16, serde_json::Value) {
    let resp = server.mtls_as(key, chain).get(format!("{}/v1/whoami", server.url())).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// `ldapwhoami -Y EXTERNAL` with a client certificate: exit code and output.
fn ldap_whoami(server: &TestServer, files: &Files, key: &Path, chain: &str) -> (i32, String) {
    let cert = files.write(&format!("ldap{}.pem", rand_suffix()), chain);
    let out = std::process::Command::new("ldapwhoami")
        .args(["-Y", "EXTERNAL", "-H", &server.ldaps_url()])
        .env("LDAPTLS_CACERT", server.ca_file())
        .env("LDAPTLS_CERT", cert)
        .env("LDAPTLS_KEY", key)
        .env("LDAPCONF", "/dev/null")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

async fn add_member(admin: &Client, group: &str, kind: &str, name: &str) {
    admin.add_member(T, group, &AddMemberRequest { kind: kind.into(), name: name.into() }).await.unwrap();
}

/// A joined machine: its mTLS client (its own certificate, from the join).
async fn joined_machine(server: &TestServer, admin: &Client, files: &Files) -> (reqwest::Client, String, PathBuf) {
    let req = CreateJoinTokenRequest { hostname: Some(HOST.into()), ..Default::default() };
    let token = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
    let (key, csr) = files.csr("machine", "ec:P-256", &format!("/CN={HOST}"), &[]);
    let body = JoinRequestBody { token: Some(token), hostname: HOST.into(), ips: vec![], csr };
    let joined = server.client().join(T, &body).await.unwrap();
    (server.mtls_as(&key, &joined.chain), joined.chain, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_obtains_a_credential_above_their_own_and_on_behalf_certificates_never_authenticate() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    pki::user(&server, &admin, T, "carol").await;
    add_member(&admin, "CAAdmins", "user", "carol").await;
    let carol = server.login(T, "carol", pki::USER_PASSWORD).await; // groups are read at login
    let bob = pki::user(&server, &admin, T, "bob").await;
    pki::host(&admin, T, "services", "svc", &["svc.corp.example"], &[]).await;
    pki::host(&admin, T, "services", "svc-admin", &["svc-admin.corp.example"], &[]).await;
    add_member(&admin, "Administrators", "service", "svc-admin").await;
    let (machine, _, _) = joined_machine(&server, &admin, &files).await;
    admin.add_service_host(T, "svc", HOST).await.unwrap();
    admin.add_service_host(T, "svc-admin", HOST).await.unwrap();
    let operator = server.operator().await;

    let targets = [
        ("user/administrator", "administrator"),
        ("user/carol", "carol"),
        ("user/bob", "bob"),
        (&*format!("machine/{HOST}"), HOST),
        ("service/svc", "svc"),
        ("service/svc-admin", "svc-admin"),
    ];
    // Rows: askers; columns: the targets above. `S` = allowed, for itself;
    // `B` = allowed, on behalf; `-` = refused (forbidden).
    let table: [(&str, Asker<'_>, [char; 6]); 5] = [
        ("operator", Asker::Bearer(&operator), ['-', '-', '-', '-', '-', '-']),
        ("Administrators", Asker::Bearer(&admin), ['S', 'B', 'B', 'B', 'B', 'B']),
        ("CAAdmins", Asker::Bearer(&carol), ['-', 'S', 'B', 'B', 'B', '-']),
        ("Users", Asker::Bearer(&bob), ['-', '-', 'S', '-', '-', '-']),
        ("machine", Asker::Machine(&machine), ['-', '-', '-', 'S', 'B', '-']),
    ];
    for (row, asker, expected) in &table {
        for (target, want) in targets.iter().zip(expected) {
            let got = ask(&server, &files, asker, *target).await;
            match (want, got) {
                ('-', Err(code)) => assert_eq!(code, "forbidden", "{row} for {}", target.0),
                ('-', Ok(_)) => panic!("{row} obtained a certificate for {}", target.0),
                (_, Err(code)) => panic!("{row} for {} refused: {code}", target.0),
                ('S', Ok((chain, key))) => {
                    let (status, body) = whoami(&server, &key, &chain).await;
                    assert_eq!((status, body["name"].as_str()), (200, Some(target.1)), "{row}: {body}");
                }
                (_, Ok((chain, key))) => {
                    // On behalf: a certificate naming the target, which never
                    // authenticates as it over REST or LDAP.
                    let (status, body) = whoami(&server, &key, &chain).await;
                    assert_eq!(status, 401, "{row} for {}: {body}", target.0);
                    assert_eq!(body["error"]["code"], "invalid_client_certificate");
                    assert!(body["error"]["message"].as_str().unwrap().contains("at the request of"), "{body}");
                    if target.0.starts_with("user/") {
                        let (code, out) = ldap_whoami(&server, &files, &key, &chain);
                        assert_eq!(code, 49, "{row} for {} over SASL EXTERNAL: {out}", target.0);
                    }
                }
            }
        }
    }

    // The reviewer's escalation, end to end: a CA administrator cannot make
    // herself a tenant administrator through a certificate.
    let carol_cli = pki::login_cli(&server, T, "carol", pki::USER_PASSWORD);
    let key = files.path("esc.key");
    let out = files.path("esc.pem");
    let err = carol_cli.fails_with(&[
        "cert",
        "request",
        "--principal",
        "user/administrator",
        "--key-out",
        key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(err, "forbidden");
    let members = admin.principal(T, "groups", "Administrators").await.unwrap().members.unwrap_or_default();
    assert_eq!(members.len(), 2, "administrator and svc-admin only: {members:?}");

    // Kubernetes user certificates follow the same lattice.
    let cluster = CreateClusterRequest { name: "c1".into(), ..Default::default() };
    admin.create_cluster(T, &cluster).await.unwrap();
    let k8s = |principal: &str, cn: &str| {
        let (_, csr) = files.csr(&format!("k8s{}", rand_suffix()), "ec:P-256", &format!("/CN={cn}"), &[]);
        IssueCertificateRequest {
            csr,
            principal: Some(principal.into()),
            profile: Some("k8s-user".into()),
            cluster: Some("c1".into()),
            ..Default::default()
        }
    };
    let err = carol.issue_certificate(T, &k8s("user/administrator", "administrator")).await.unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 403, .. }), "{err}");
    carol.issue_certificate(T, &k8s("user/bob", "bob")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_machine_hosting_a_service_gains_none_of_its_groups() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    pki::host(&admin, T, "services", "ops-agent", &[], &[]).await;
    add_member(&admin, "Administrators", "service", "ops-agent").await;
    let (machine, chain, key) = joined_machine(&server, &admin, &files).await;
    admin.add_service_host(T, "ops-agent", HOST).await.unwrap();
    let (status, me) = whoami(&server, &key, &chain).await;
    assert_eq!(status, 200, "{me}");
    let groups: Vec<&str> = me["groups"].as_array().unwrap().iter().map(|g| g.as_str().unwrap()).collect();
    assert_eq!(groups, ["DomainClients"]);
    // It cannot act as an administrator.
    let user = serde_json::json!({ "name": "mallory", "password": "Mallory-Passw0rd!" });
    let resp = machine.post(format!("{}/v1/tenants/{T}/users", server.url())).json(&user).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(admin.principal(T, "users", "mallory").await.is_err());
    // The directory shows the same: the machine is in DomainClients only.
    let shown = admin.principal(T, "machines", HOST).await.unwrap();
    assert_eq!(shown.member_of, ["DomainClients"]);
    // And LDAP: the service lists its host under seeAlso, not member, so a
    // client that walks member for nested groups cannot count the machine
    // in the service's groups; the machine's memberOf has DomainClients only.
    let search = |base: &str, attrs: &[&str]| {
        let mut args = vec!["-x", "-H", "", "-D", "uid=administrator,cn=Users,dc=corp,dc=example"];
        let url = server.ldaps_url();
        args[2] = &url;
        args.extend(["-w", pki::ADMIN_PASSWORD, "-LLL", "-b", base, "-s", "base", "(objectClass=*)"]);
        args.extend(attrs);
        let out = server.ldap_tool("ldapsearch", &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).replace("\n ", "")
    };
    let service = search("cn=ops-agent,cn=Services,dc=corp,dc=example", &["member", "seeAlso", "memberOf"]);
    assert!(!service.contains("member: "), "{service}");
    assert!(service.contains(&format!("seeAlso: cn={HOST},ou=Computers,dc=corp,dc=example")), "{service}");
    let machine = search(&format!("cn={HOST},ou=Computers,dc=corp,dc=example"), &["memberOf"]);
    assert!(machine.contains("memberOf: cn=DomainClients") && !machine.contains("Administrators"), "{machine}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exported_cluster_ca_key_leaves_only_to_administrators_and_signs_no_spiffe_id() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    pki::user(&server, &admin, T, "carol").await;
    add_member(&admin, "CAAdmins", "user", "carol").await;
    let carol = pki::login_cli(&server, T, "carol", pki::USER_PASSWORD);
    // A CA administrator may create the cluster, but not take its key.
    carol.ok(&[
        "k8s",
        "cluster",
        "create",
        "own",
        "--allow-ca-key-export",
        "--api-server",
        "https://cp1.corp.example:6443",
    ]);
    // Its constraints may not cover the tenant's own names.
    for wide in ["corp.example", ".corp.example", "example"] {
        let err =
            carol.fails_with(&["k8s", "cluster", "create", "wide", "--allow-ca-key-export", "--name-constraint", wide]);
        assert_eq!(err, "policy_violation", "{wide}");
    }
    let shown = carol.json(&["k8s", "cluster", "show", "own"]);
    let constraints: Vec<&str> =
        shown["name_constraints"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(constraints.contains(&"10.96.0.0/12") && constraints.contains(&"cp1.corp.example"), "{constraints:?}");
    let dir = files.path("carol-pki");
    let d = dir.to_str().unwrap();
    let export = ["k8s", "pki", "export", "--cluster", "own", "--dir", d, "--control-plane", "cp1.corp.example"];
    assert_eq!(carol.fails_with(&export), "forbidden");
    assert!(!dir.join("ca.key").exists());
    let audit = admin.audit(Some(T), 0, 500).await.unwrap();
    assert!(!audit.iter().any(|r| r.action == "k8s.ca-key.export"), "nothing was exported");

    // An administrator may; the key then signs nothing the tenant's
    // relying parties would take for a directory identity.
    let dir = files.path("admin-pki");
    let d = dir.to_str().unwrap();
    let export = ["k8s", "pki", "export", "--cluster", "own", "--dir", d, "--control-plane", "cp1.corp.example"];
    pki::admin_cli(&server, T).ok(&export);
    let audit = admin.audit(Some(T), 0, 500).await.unwrap();
    assert!(audit.iter().any(|r| r.action == "k8s.ca-key.export" && r.actor == "user:administrator"));
    let bundle = files.write("bundle.pem", admin.trust_bundle_pem(T).await.unwrap());
    let (ca_cert, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let forge = |name: &str, san: &str| {
        let key = files.openssl_key(name);
        let csr = files.openssl_csr_for(name, &key, "/CN=administrator");
        let ext = files.write(&format!("{name}.ext"), format!("subjectAltName={san}\n"));
        let leaf = files.path(&format!("{name}.pem"));
        let (ok, out) = pki::run(
            std::process::Command::new("openssl")
                .args(["x509", "-req", "-days", "1", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(&ca_cert)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&leaf),
        );
        assert!(ok, "openssl signs with the exported key: {out}");
        let mut verify = std::process::Command::new("openssl");
        verify.arg("verify").arg("-CAfile").arg(&bundle).arg("-untrusted").arg(&ca_cert).arg(&leaf);
        pki::run(&mut verify)
    };
    let (ok, out) = forge("bank", "DNS:www.bank.example,URI:spiffe://corp.example/user/administrator");
    assert!(!ok && out.contains("subtree violation"), "{out}");
    let (ok, out) = forge("svid", "URI:spiffe://corp.example/user/administrator");
    assert!(!ok && out.contains("subtree violation"), "a SPIFFE ID alone: {out}");
    let (ok, out) = forge("mail", "email:administrator@corp.example");
    assert!(!ok && out.contains("subtree violation"), "{out}");
    let (ok, out) = forge("in-cluster", "DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1");
    assert!(ok, "what the cluster needs still verifies: {out}");
}

/// A CA administrator can neither bring in a CA whose key she holds (it would
/// join the tenant bundle) nor have control-plane certificates name anyone:
/// control-plane hosts are the cluster's own machines or unclaimed names
/// inside the tenant.
#[tokio::test(flavor = "multi_thread")]
async fn a_ca_administrator_cannot_bring_a_key_or_name_others_in_control_plane_certificates() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    pki::user(&server, &admin, T, "carol").await;
    add_member(&admin, "CAAdmins", "user", "carol").await;
    let carol = server.login(T, "carol", pki::USER_PASSWORD).await;
    let carol_cli = pki::login_cli(&server, T, "carol", pki::USER_PASSWORD);

    // Importing a root with its key: Administrators only.
    let (cert, key) = files.openssl_self_signed("own-root", "/CN=Carol's root", true);
    let import = lightwell_proto::ImportCaRequest {
        certificate: std::fs::read_to_string(&cert).unwrap(),
        key: std::fs::read_to_string(&key).unwrap(),
        name: Some("carols".into()),
        make_default: false,
    };
    let err = carol.import_ca(T, &import).await.unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 403, .. }), "{err}");
    assert!(!admin.list_cas(T).await.unwrap().iter().any(|c| c.name == "carols"));
    let bundle = admin.trust_bundle_pem(T).await.unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1, "the bundle holds the tenant root only");

    // Control-plane certificates cannot carry a user's name, another
    // machine's name or address, or a name outside the tenant.
    let (_, _, _) = joined_machine(&server, &admin, &files).await; // node1, not a node of the cluster
    let patch = lightwell_proto::UpdatePrincipalRequest { ips: Some(vec!["10.0.0.77".into()]), ..Default::default() };
    admin.update_principal(T, "machines", HOST, &patch).await.unwrap();
    carol_cli.ok(&["k8s", "cluster", "create", "c2"]);
    let dir = files.path("carol-export");
    for host in ["administrator", "www.bank.example", HOST, "10.0.0.77"] {
        let args = ["k8s", "pki", "export", "--cluster", "c2", "--dir", dir.to_str().unwrap(), "--external-ca"];
        let mut args: Vec<&str> = args.to_vec();
        args.extend(["--control-plane", host]);
        assert_eq!(carol_cli.fails_with(&args), "policy_violation", "{host}");
    }
    let certs = admin.list_certificates(T, None).await.unwrap();
    assert!(certs.iter().all(|c| c.principal_name != "k8s-c2"), "no control-plane certificate was issued");
    // Its own, unclaimed control-plane names work.
    let args = ["k8s", "pki", "export", "--cluster", "c2", "--dir", dir.to_str().unwrap(), "--external-ca"];
    let mut args: Vec<&str> = args.to_vec();
    args.extend(["--control-plane", "cp1.corp.example", "--control-plane", "10.0.0.10"]);
    carol_cli.ok(&args);
}
