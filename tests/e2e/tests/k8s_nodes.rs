//! Kubernetes identities for machines and users: a node's agent obtains and
//! keeps its kubelet client and serving certificates for its own host name
//! only; users get kubeconfigs whose groups come from the directory (and
//! follow it); deleting the cluster revokes its CA, so every certificate it
//! issued fails `openssl verify -crl_check_all`.
#![allow(clippy::unwrap_used)]

mod k8s_common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_common::{fields, fields_of_pem, kubeconfig_certificate, set};
use lightwell_client::Client;
use lightwell_proto::{AddMemberRequest, CreateGroupRequest, CreateJoinTokenRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::node::Node;
use lightwell_testkit::pki::{self, Files, run};

const T: &str = "corp.example";

async fn joined(server: &TestServer, admin: &Client, dir: &Path, hostname: &str) -> Node {
    // The token approves the address the node joins with (testkit joins with
    // --ip 127.0.0.1), so it is in the node's certificates.
    let req =
        CreateJoinTokenRequest { hostname: Some(hostname.into()), ips: vec!["127.0.0.1".into()], ..Default::default() };
    let token = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
    let node = Node::new(dir, hostname);
    let out = node.join(server, T, Some(&token));
    assert!(out.status.success(), "join {hostname}: {}", String::from_utf8_lossy(&out.stderr));
    node
}

/// Adds a `[[kubernetes]]` section to the node's agent.toml with paths under `dir`.
fn kubelet_config(node: &Node, dir: &Path, cluster: &str) {
    let toml = node.state.join("agent.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(&format!(
        "\n[[kubernetes]]\ncluster = \"{cluster}\"\nclient_cert = \"{c}\"\nserving_cert = \"{s}\"\nserving_key = \"{k}\"\nca_file = \"{ca}\"\n",
        c = dir.join("kubelet-client-current.pem").display(),
        s = dir.join("kubelet.crt").display(),
        k = dir.join("kubelet.key").display(),
        ca = dir.join("ca.crt").display(),
    ));
    std::fs::write(&toml, text).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// An HTTPS client presenting a node's machine certificate.
fn mtls_client(server: &TestServer, node: &Node) -> reqwest::Client {
    let mut identity = std::fs::read(node.state.join("key.pem")).unwrap();
    identity.extend_from_slice(&std::fs::read(node.state.join("chain.pem")).unwrap());
    server.mtls(Some(&identity))
}

async fn kubelet_request(server: &TestServer, client: &reqwest::Client, body: serde_json::Value) -> (u16, String) {
    let resp = client.post(format!("{}/v1/tenants/{T}/certificates", server.url())).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.unwrap();
    (status, v["error"]["code"].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_gets_kubelet_identities_for_its_own_name_only() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let cli = pki::admin_cli(&server, T);
    let cluster = cli.json(&["k8s", "cluster", "create", "prod", "--api-server", "https://k8s.corp.example:6443"]);
    let hosts = server.scratch().join("hosts");
    std::fs::create_dir_all(&hosts).unwrap();
    let node1 = joined(&server, &admin, &hosts, "node1.corp.example").await;
    let node2 = joined(&server, &admin, &hosts, "node2.corp.example").await;

    assert_eq!(
        cli.fails_with(&["k8s", "node", "add", "--cluster", "prod", "--machine", "ghost.corp.example"]),
        "principal_not_found"
    );
    assert_eq!(
        cli.fails_with(&["k8s", "node", "add", "--cluster", "nope", "--machine", &node1.hostname]),
        "cluster_not_found"
    );
    let shown = cli.json(&["k8s", "node", "add", "--cluster", "prod", "--machine", &node1.hostname]);
    assert_eq!(shown["nodes"], serde_json::json!([node1.hostname]));
    assert_eq!(
        cli.fails_with(&["k8s", "node", "add", "--cluster", "prod", "--machine", &node1.hostname]),
        "already_exists"
    );

    // node1's agent obtains both kubelet certificates and the cluster CA at kubelet's paths.
    let k1 = hosts.join("kubelet1");
    kubelet_config(&node1, &k1, "prod");
    let out = node1.agent_once();
    assert!(out.status.success(), "agent: {}", String::from_utf8_lossy(&out.stderr));
    let client_pem = std::fs::read_to_string(k1.join("kubelet-client-current.pem")).unwrap();
    assert_eq!(mode(&k1.join("kubelet-client-current.pem")), 0o600, "the client file holds the key");
    assert!(client_pem.contains("BEGIN CERTIFICATE") && client_pem.contains("BEGIN PRIVATE KEY"));
    let client = fields_of_pem(client_pem.as_bytes());
    assert_eq!(client.cn, "system:node:node1.corp.example");
    assert_eq!(client.o, vec!["system:nodes".to_string()]);
    assert!(client.client_auth && !client.server_auth);
    assert_eq!(client.uris, vec!["spiffe://corp.example/machine/node1.corp.example".to_string()]);
    let serving = fields(&k1.join("kubelet.crt"));
    assert_eq!(serving.cn, "system:node:node1.corp.example");
    assert!(serving.server_auth && !serving.client_auth);
    assert_eq!(serving.dns, set(&["node1.corp.example"]));
    assert_eq!(serving.ips, set(&["127.0.0.1"]));
    assert_eq!(mode(&k1.join("kubelet.key")), 0o600);
    assert_eq!(std::fs::read_to_string(k1.join("ca.crt")).unwrap(), cluster["ca_pem"].as_str().unwrap());
    let bundle = server.scratch().join("bundle.pem");
    cli.ok(&["ca", "bundle", "--out", bundle.to_str().unwrap()]);
    for leaf in [k1.join("kubelet-client-current.pem"), k1.join("kubelet.crt")] {
        let (ok, out) = pki::openssl_verify(&bundle, &k1.join("ca.crt"), &leaf, &[]);
        assert!(ok, "{}: {out}", leaf.display());
    }

    // node2 is joined but not a node of the cluster: its agent gets nothing.
    let k2 = hosts.join("kubelet2");
    kubelet_config(&node2, &k2, "prod");
    let out = node2.agent_once();
    assert!(!k2.join("kubelet-client-current.pem").exists() && !k2.join("kubelet.crt").exists());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a node of cluster prod"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Over mutual TLS: node1 cannot ask for node2's identity, node2 not for its own.
    let files = Files::new();
    let (_, csr2) = files.csr("n2", "ec:P-256", "/CN=system:node:node2.corp.example", &[]);
    let (_, csr1) = files.csr("n1", "ec:P-256", "/CN=system:node:node1.corp.example", &[]);
    let as_node1 = mtls_client(&server, &node1);
    let as_node2 = mtls_client(&server, &node2);
    let other = serde_json::json!({"csr": csr2, "profile": "k8s-node", "cluster": "prod", "principal": "machine/node2.corp.example"});
    assert_eq!(kubelet_request(&server, &as_node1, other).await, (403, "forbidden".into()));
    let own2 = serde_json::json!({"csr": csr2, "profile": "k8s-node", "cluster": "prod"});
    assert_eq!(kubelet_request(&server, &as_node2, own2).await, (403, "forbidden".into()));
    // A CSR naming another host is refused even for a real node.
    let spoof = serde_json::json!({"csr": csr2, "profile": "k8s-node", "cluster": "prod"});
    assert_eq!(kubelet_request(&server, &as_node1, spoof).await, (403, "policy_violation".into()));
    let (_, evil_san) =
        files.csr("n1e", "ec:P-256", "/CN=system:node:node1.corp.example", &["subjectAltName=DNS:node2.corp.example"]);
    let serving_spoof = serde_json::json!({"csr": evil_san, "profile": "k8s-node-serving", "cluster": "prod"});
    assert_eq!(kubelet_request(&server, &as_node1, serving_spoof).await, (403, "policy_violation".into()));
    let (_, masters) = files.csr("n1m", "ec:P-256", "/O=system:masters/CN=system:node:node1.corp.example", &[]);
    let escalate = serde_json::json!({"csr": masters, "profile": "k8s-node", "cluster": "prod"});
    assert_eq!(kubelet_request(&server, &as_node1, escalate).await, (403, "policy_violation".into()));
    let wrong_profile = serde_json::json!({"csr": csr1, "profile": "server", "cluster": "prod"});
    assert_eq!(kubelet_request(&server, &as_node1, wrong_profile).await, (400, "invalid_request".into()));
    // An unjoined host has no identity at all.
    let anonymous = server.mtls(None);
    let own1 = serde_json::json!({"csr": csr1, "profile": "k8s-node", "cluster": "prod"});
    assert_eq!(kubelet_request(&server, &anonymous, own1.clone()).await.0, 401);
    // A user cannot take a kubelet identity.
    pki::user(&server, &admin, T, "mallory").await;
    let mallory = server.login(T, "mallory", pki::USER_PASSWORD).await;
    let (_, mcsr) = files.csr("m", "ec:P-256", "/CN=system:node:node1.corp.example", &[]);
    let req = lightwell_proto::IssueCertificateRequest {
        csr: mcsr,
        profile: Some("k8s-node".into()),
        cluster: Some("prod".into()),
        ..Default::default()
    };
    assert_eq!(
        mallory.issue_certificate(T, &req).await.unwrap_err().code(),
        Some(lightwell_proto::ErrorCode::PolicyViolation)
    );
    // node1 over mutual TLS gets its own.
    assert_eq!(kubelet_request(&server, &as_node1, own1).await.0, 201);

    // A kubelet certificate is for the cluster only: it is no Lightwell credential.
    let as_kubelet = server.mtls(Some(client_pem.as_bytes()));
    let resp = as_kubelet.get(format!("{}/v1/whoami", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_client_certificate", "{body}");

    // A serving certificate never names the API server: a machine registered with an
    // address in the service CIDR (or an in-cluster name) is refused one.
    let patch = lightwell_proto::UpdatePrincipalRequest {
        ips: Some(vec!["127.0.0.1".into(), "10.96.0.1".into()]),
        ..Default::default()
    };
    admin.update_principal(T, "machines", &node1.hostname, &patch).await.unwrap();
    let (_, csr_s) = files.csr("n1s", "ec:P-256", "/CN=system:node:node1.corp.example", &[]);
    let serving_req = serde_json::json!({"csr": csr_s, "profile": "k8s-node-serving", "cluster": "prod"});
    assert_eq!(kubelet_request(&server, &as_node1, serving_req).await, (403, "policy_violation".into()));
    let patch = lightwell_proto::UpdatePrincipalRequest {
        hostnames: Some(vec!["node1.corp.example".into(), "kubernetes.default.svc".into()]),
        ips: Some(vec!["127.0.0.1".into()]),
        ..Default::default()
    };
    admin.update_principal(T, "machines", &node1.hostname, &patch).await.unwrap();
    let (_, csr_s) = files.csr("n1t", "ec:P-256", "/CN=system:node:node1.corp.example", &[]);
    let serving_req = serde_json::json!({"csr": csr_s, "profile": "k8s-node-serving", "cluster": "prod"});
    assert_eq!(kubelet_request(&server, &as_node1, serving_req).await, (403, "policy_violation".into()));

    // Withdrawing node1 revokes its kubelet certificates.
    cli.ok(&["k8s", "node", "remove", "--cluster", "prod", "--machine", &node1.hostname]);
    let certs = admin.list_certificates(T, Some("machine/node1.corp.example")).await.unwrap();
    let kubelet: Vec<_> = certs.iter().filter(|c| c.profile.starts_with("k8s-node")).collect();
    assert!(kubelet.len() >= 3 && kubelet.iter().all(|c| c.revoked_at.is_some()), "{kubelet:?}");
    assert!(certs.iter().any(|c| c.profile == "server-client" && c.revoked_at.is_none()), "the machine identity stays");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubeconfigs_carry_the_users_directory_groups_and_follow_them() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let cli = pki::admin_cli(&server, T);
    pki::user(&server, &admin, T, "alice").await;
    for g in ["dev", "platform"] {
        admin
            .create_principal(T, "groups", &CreateGroupRequest { name: g.into(), ..Default::default() })
            .await
            .unwrap();
    }
    cli.ok(&["k8s", "cluster", "create", "prod", "--api-server", "https://k8s.corp.example:6443"]);
    cli.ok(&[
        "k8s",
        "cluster",
        "create",
        "mapped",
        "--api-server",
        "https://k8s2.corp.example:6443",
        "--group-mapping",
        "dev=developers",
    ]);
    cli.ok(&["k8s", "cluster", "create", "bare"]);
    // Nested: alice is in platform, platform is in dev.
    admin.add_member(T, "platform", &AddMemberRequest { kind: "user".into(), name: "alice".into() }).await.unwrap();
    admin.add_member(T, "dev", &AddMemberRequest { kind: "group".into(), name: "platform".into() }).await.unwrap();

    let alice = pki::login_cli(&server, T, "alice", pki::USER_PASSWORD);
    let dir: PathBuf = server.scratch().join("kube");
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("prod.yaml");
    alice.ok(&["k8s", "kubeconfig", "--cluster", "prod", "--ttl", "1h", "--out", kc.to_str().unwrap()]);
    assert_eq!(mode(&kc), 0o600);
    let (api, pem) = kubeconfig_certificate(&kc);
    assert_eq!(api, "https://k8s.corp.example:6443");
    let cert = fields_of_pem(&pem);
    assert_eq!(cert.cn, "alice");
    assert!(cert.o.contains(&"dev".into()) && cert.o.contains(&"platform".into()), "{:?}", cert.o);
    assert!(cert.client_auth && !cert.server_auth);
    // The certificate chains to the tenant bundle through the cluster CA.
    let bundle = dir.join("bundle.pem");
    cli.ok(&["ca", "bundle", "--out", bundle.to_str().unwrap()]);
    let leaf = dir.join("alice.pem");
    std::fs::write(&leaf, &pem).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, admin.cluster(T, "prod").await.unwrap().ca_pem).unwrap();
    let (ok, out) = pki::openssl_verify(&bundle, &ca, &leaf, &[]);
    assert!(ok, "{out}");

    // A mapping carries only the mapped groups, renamed.
    let mapped = dir.join("mapped.yaml");
    alice.ok(&["k8s", "kubeconfig", "--cluster", "mapped", "--out", mapped.to_str().unwrap()]);
    assert_eq!(fields_of_pem(&kubeconfig_certificate(&mapped).1).o, vec!["developers".to_string()]);

    // After alice leaves platform (and so dev), the next kubeconfig carries neither.
    admin.remove_member(T, "platform", "user", "alice").await.unwrap();
    alice.ok(&["k8s", "kubeconfig", "--cluster", "prod", "--out", kc.to_str().unwrap()]);
    let after = fields_of_pem(&kubeconfig_certificate(&kc).1);
    assert!(!after.o.contains(&"dev".into()) && !after.o.contains(&"platform".into()), "{:?}", after.o);
    alice.ok(&["k8s", "kubeconfig", "--cluster", "mapped", "--out", mapped.to_str().unwrap()]);
    assert!(fields_of_pem(&kubeconfig_certificate(&mapped).1).o.is_empty());

    // A cluster without an API server URL needs one on the command line; a TTL above policy is refused.
    let out = alice.run(&["k8s", "kubeconfig", "--cluster", "bare", "--out", dir.join("bare.yaml").to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--api-server"));
    alice.ok(&[
        "k8s",
        "kubeconfig",
        "--cluster",
        "bare",
        "--api-server",
        "https://10.0.0.1:6443",
        "--out",
        dir.join("bare.yaml").to_str().unwrap(),
    ]);
    assert_eq!(
        alice.fails_with(&["k8s", "kubeconfig", "--cluster", "prod", "--ttl", "90d", "--out", kc.to_str().unwrap()]),
        "policy_violation"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_cluster_revokes_its_ca_and_every_identity_it_issued() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let cli = pki::admin_cli(&server, T);
    let cluster = cli.json(&["k8s", "cluster", "create", "prod", "--api-server", "https://k8s.corp.example:6443"]);
    let hosts = server.scratch().join("hosts");
    std::fs::create_dir_all(&hosts).unwrap();
    let node1 = joined(&server, &admin, &hosts, "node1.corp.example").await;
    cli.ok(&["k8s", "node", "add", "--cluster", "prod", "--machine", &node1.hostname]);
    let k1 = hosts.join("kubelet1");
    kubelet_config(&node1, &k1, "prod");
    assert!(node1.agent_once().status.success());
    let pki_dir = server.scratch().join("pki");
    cli.ok(&[
        "k8s",
        "pki",
        "export",
        "--cluster",
        "prod",
        "--dir",
        pki_dir.to_str().unwrap(),
        "--external-ca",
        "--control-plane",
        "127.0.0.1",
    ]);
    pki::user(&server, &admin, T, "alice").await;
    let kc = server.scratch().join("alice.yaml");
    pki::login_cli(&server, T, "alice", pki::USER_PASSWORD).ok(&[
        "k8s",
        "kubeconfig",
        "--cluster",
        "prod",
        "--out",
        kc.to_str().unwrap(),
    ]);
    let alice_pem = server.scratch().join("alice.pem");
    std::fs::write(&alice_pem, kubeconfig_certificate(&kc).1).unwrap();

    let bundle = server.scratch().join("bundle.pem");
    cli.ok(&["ca", "bundle", "--out", bundle.to_str().unwrap()]);
    let ca = k1.join("ca.crt");
    let etcd_ca = pki_dir.join("etcd/ca.crt");
    let leaves: Vec<(PathBuf, &Path)> = vec![
        (k1.join("kubelet-client-current.pem"), &ca),
        (k1.join("kubelet.crt"), &ca),
        (alice_pem.clone(), &ca),
        (pki_dir.join("apiserver.crt"), &ca),
        (pki_dir.join("apiserver-etcd-client.crt"), &etcd_ca),
        (pki_dir.join("etcd/server.crt"), &etcd_ca),
    ];
    let files = Files::new();
    let crls = |tag: &'static str| {
        let files = &files;
        let (ca, etcd_ca) = (ca.clone(), etcd_ca.clone());
        async move {
            vec![
                pki::fetch_crl(files, &ca, &format!("root-{tag}")).await,
                pki::fetch_crl(files, &k1_leaf(&ca), &format!("cluster-{tag}")).await,
                pki::fetch_crl(files, &etcd_leaf(&etcd_ca), &format!("etcd-{tag}")).await,
            ]
        }
    };
    let before = crls("before").await;
    for (leaf, chain) in &leaves {
        let (ok, out) = pki::openssl_verify(&bundle, chain, leaf, &before);
        assert!(ok, "before deletion {}: {out}", leaf.display());
    }

    let deleted = cli.json(&["k8s", "cluster", "delete", "prod"]);
    assert!(deleted["revoked"].as_array().unwrap().len() >= 9, "{deleted}");
    let after = crls("after").await;
    for (leaf, chain) in &leaves {
        let (ok, out) = pki::openssl_verify(&bundle, chain, leaf, &after);
        assert!(!ok && out.contains("revoked"), "after deletion {} must fail: {out}", leaf.display());
    }
    // The cluster is gone; its CAs stay listed as revoked; the name can be used again.
    assert_eq!(cli.fails_with(&["k8s", "cluster", "show", "prod"]), "cluster_not_found");
    let cas = admin.list_cas(T).await.unwrap();
    let ca_name = cluster["ca"].as_str().unwrap();
    assert_eq!(cas.iter().find(|c| c.name == ca_name).unwrap().status, "revoked");
    cli.ok(&["k8s", "cluster", "create", "prod"]);
    // The node's agent picks the revocation up in its CRL files.
    assert!(node1.agent_once().status.success());
    let crl_file = node1.state.join("crl").join(format!("{}.crl.pem", cluster["ca_id"].as_str().unwrap()));
    let (ok, out) = run(Command::new("openssl").args(["crl", "-noout", "-text", "-in"]).arg(&crl_file));
    assert!(ok && out.contains("Serial Number"), "{out}");
}

/// The cluster CA's CRL is named in its leaves; use the kubelet certificate written next to `ca`.
fn k1_leaf(ca: &Path) -> PathBuf {
    ca.with_file_name("kubelet.crt")
}

/// The etcd CA's CRL is named in its leaves.
fn etcd_leaf(etcd_ca: &Path) -> PathBuf {
    etcd_ca.with_file_name("server.crt")
}
