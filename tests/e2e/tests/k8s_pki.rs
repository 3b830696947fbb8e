//! Kubernetes clusters and kubeadm's PKI directory: every exported
//! certificate carries what kubeadm generates for the same file (checked
//! field by field against kubeadm's certificate list, v1.29 and later),
//! chains to the tenant bundle with `openssl verify`, and hostile or
//! unauthorized requests change nothing.
#![allow(clippy::unwrap_used)]

mod k8s_common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use k8s_common::{Fields, fields, fields_of_pem, kubeconfig_certificate, set};
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, run};

const T: &str = "corp.example";
const CP: &str = "cp1.corp.example";
const CP_IP: &str = "10.0.0.10";

/// What kubeadm puts into a certificate: CN, O, DNS and IP SANs, EKU, issuing CA file.
struct Kubeadm {
    file: &'static str,
    cn: &'static str,
    o: &'static [&'static str],
    dns: &'static [&'static str],
    ips: &'static [&'static str],
    server: bool,
    client: bool,
    ca: &'static str,
}

/// kubeadm's certificate list (cmd/kubeadm/app/phases/certs/certlist.go) for
/// node name `cp1.corp.example`, advertise address 10.0.0.10, control-plane
/// endpoint `k8s.corp.example`, service CIDR 10.96.0.0/12, DNS domain cluster.local.
const KUBEADM: &[Kubeadm] = &[
    Kubeadm {
        file: "apiserver.crt",
        cn: "kube-apiserver",
        o: &[],
        dns: &[
            CP,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "k8s.corp.example",
        ],
        ips: &["10.96.0.1", CP_IP],
        server: true,
        client: false,
        ca: "ca.crt",
    },
    Kubeadm {
        file: "apiserver-kubelet-client.crt",
        cn: "kube-apiserver-kubelet-client",
        o: &["kubeadm:cluster-admins"],
        dns: &[],
        ips: &[],
        server: false,
        client: true,
        ca: "ca.crt",
    },
    Kubeadm {
        file: "front-proxy-client.crt",
        cn: "front-proxy-client",
        o: &[],
        dns: &[],
        ips: &[],
        server: false,
        client: true,
        ca: "front-proxy-ca.crt",
    },
    Kubeadm {
        file: "etcd/server.crt",
        cn: CP,
        o: &[],
        dns: &[CP, "localhost"],
        ips: &[CP_IP, "127.0.0.1", "::1"],
        server: true,
        client: true,
        ca: "etcd/ca.crt",
    },
    Kubeadm {
        file: "etcd/peer.crt",
        cn: CP,
        o: &[],
        dns: &[CP, "localhost"],
        ips: &[CP_IP, "127.0.0.1", "::1"],
        server: true,
        client: true,
        ca: "etcd/ca.crt",
    },
    Kubeadm {
        file: "etcd/healthcheck-client.crt",
        cn: "kube-etcd-healthcheck-client",
        o: &[],
        dns: &[],
        ips: &[],
        server: false,
        client: true,
        ca: "etcd/ca.crt",
    },
    Kubeadm {
        file: "apiserver-etcd-client.crt",
        cn: "kube-apiserver-etcd-client",
        o: &[],
        dns: &[],
        ips: &[],
        server: false,
        client: true,
        ca: "etcd/ca.crt",
    },
];

// kubeadm cannot run here: the test machines have no network to fetch it and
// no kubeadm binary, so `KUBEADM` is a hand copy that `kubeadm init phase
// certs` never checks. It is cross-checked instead, file by file and usage by
// usage, against an independent list: the Kubernetes documentation's "PKI
// certificates and requirements"
// (https://kubernetes.io/docs/setup/best-practices/certificates/; source
// kubernetes/website, content/en/docs/setup/best-practices/certificates.md):
// its "All certificates" table (default CN, parent CA, O, kind, hosts)
// joined with its "Certificate paths" table (recommended cert path), and its
// "Required CAs" table for where each parent CA's certificate lives.

/// One row of the documentation's certificate list.
struct Documented {
    path: &'static str,
    cn: &'static str,
    parent: &'static str,
    o: &'static [&'static str],
    /// `kind`: server and/or client (serverAuth, clientAuth).
    server: bool,
    client: bool,
    /// `hosts (SAN)`, with the documentation's placeholders filled in for this
    /// cluster: `<hostname>` is CP, `<Host_IP>` and `<advertise_IP>` are
    /// CP_IP, footnote [1] is the load balancer's name and the service names.
    hosts: &'static [&'static str],
}

/// The documentation's "All certificates" table, by "Certificate paths".
const DOCUMENTED: &[Documented] = &[
    Documented {
        path: "etcd/server.crt",
        cn: "kube-etcd",
        parent: "etcd-ca",
        o: &[],
        server: true,
        client: true,
        hosts: &["localhost", "127.0.0.1"],
    },
    Documented {
        path: "etcd/peer.crt",
        cn: "kube-etcd-peer",
        parent: "etcd-ca",
        o: &[],
        server: true,
        client: true,
        hosts: &[CP, CP_IP, "localhost", "127.0.0.1"],
    },
    Documented {
        path: "etcd/healthcheck-client.crt",
        cn: "kube-etcd-healthcheck-client",
        parent: "etcd-ca",
        o: &[],
        server: false,
        client: true,
        hosts: &[],
    },
    Documented {
        path: "apiserver-etcd-client.crt",
        cn: "kube-apiserver-etcd-client",
        parent: "etcd-ca",
        o: &["system:masters"],
        server: false,
        client: true,
        hosts: &[],
    },
    Documented {
        path: "apiserver.crt",
        cn: "kube-apiserver",
        parent: "kubernetes-ca",
        o: &[],
        server: true,
        client: false,
        hosts: &[
            CP,
            CP_IP,
            "k8s.corp.example",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster",
            "kubernetes.default.svc.cluster.local",
        ],
    },
    Documented {
        path: "apiserver-kubelet-client.crt",
        cn: "kube-apiserver-kubelet-client",
        parent: "kubernetes-ca",
        o: &["system:masters"],
        server: false,
        client: true,
        hosts: &[],
    },
    Documented {
        path: "front-proxy-client.crt",
        cn: "front-proxy-client",
        parent: "kubernetes-front-proxy-ca",
        o: &[],
        server: false,
        client: true,
        hosts: &[],
    },
];

/// The documentation's "Required CAs": where each parent CA's certificate is.
const DOCUMENTED_CAS: &[(&str, &str)] =
    &[("kubernetes-ca", "ca.crt"), ("etcd-ca", "etcd/ca.crt"), ("kubernetes-front-proxy-ca", "front-proxy-ca.crt")];

/// Where kubeadm (v1.29 and later, which `KUBEADM` follows) differs from the
/// documentation's table, field by field, and why. Anything else that differs fails.
const DEPARTURES: &[(&str, &str, &str)] = &[
    ("etcd/server.crt", "cn", "kubeadm names it after the node (setCommonNameToNodeName in certlist.go)"),
    ("etcd/peer.crt", "cn", "kubeadm names it after the node (setCommonNameToNodeName in certlist.go)"),
    (
        "apiserver-kubelet-client.crt",
        "o",
        "kubeadm 1.29 moved it from system:masters to the less privileged kubeadm:cluster-admins",
    ),
    (
        "apiserver-etcd-client.crt",
        "o",
        "kubeadm 1.29 dropped system:masters from the etcd client certificates (etcd authorizes by CN)",
    ),
];

/// Documented SANs kubeadm does not add, and why.
const NOT_ADDED: &[(&str, &str, &str)] = &[(
    "apiserver.crt",
    "kubernetes.default.svc.cluster",
    "footnote [1] lists it; kubeadm adds kubernetes.default.svc.<dnsDomain> only (GetAPIServerAltNames)",
)];

fn departs(path: &str, field: &str) -> bool {
    DEPARTURES.iter().any(|(p, f, _)| *p == path && *f == field)
}

#[test]
fn kubeadms_hand_copied_table_agrees_with_the_kubernetes_documentation_by_file_and_usage() {
    let documented: Vec<&str> = DOCUMENTED.iter().map(|d| d.path).collect();
    let copied: Vec<&str> = KUBEADM.iter().map(|k| k.file).collect();
    let (mut a, mut b) = (documented.clone(), copied.clone());
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "the same certificate files");
    for doc in DOCUMENTED {
        let k = KUBEADM.iter().find(|k| k.file == doc.path).unwrap();
        let what = doc.path;
        assert_eq!((k.server, k.client), (doc.server, doc.client), "{what}: the same usage (kind)");
        let ca = DOCUMENTED_CAS.iter().find(|(name, _)| *name == doc.parent).unwrap().1;
        assert_eq!(k.ca, ca, "{what}: the same parent CA ({})", doc.parent);
        assert_eq!(k.cn == doc.cn, !departs(what, "cn"), "{what}: CN {} here, {} documented", k.cn, doc.cn);
        assert_eq!(k.o == doc.o, !departs(what, "o"), "{what}: O {:?} here, {:?} documented", k.o, doc.o);
        // Extra SANs on server certificates are allowed by the documentation; missing ones are not.
        let sans: Vec<&str> = k.dns.iter().chain(k.ips).copied().collect();
        let missing: Vec<&str> = doc.hosts.iter().copied().filter(|h| !sans.contains(h)).collect();
        let known: Vec<&str> = NOT_ADDED.iter().filter(|(p, _, _)| *p == what).map(|(_, h, _)| *h).collect();
        assert_eq!(missing, known, "{what}: documented SANs missing");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn public_key(args: &[&str], path: &Path) -> String {
    let (ok, out) = run(Command::new("openssl").args(args).arg(path));
    assert!(ok, "openssl {args:?} {}: {out}", path.display());
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn exported_pki_matches_kubeadm_field_by_field_and_chains_to_the_bundle() {
    let server = TestServer::start();
    let _admin = pki::tenant(&server, T, None).await;
    let cli = pki::admin_cli(&server, T);
    let cluster = cli.json(&["k8s", "cluster", "create", "prod", "--api-server", "https://k8s.corp.example:6443"]);
    assert_eq!(cluster["service_ip"], "10.96.0.1");
    let dir = server.scratch().join("pki");
    let d = dir.to_str().unwrap();
    cli.ok(&[
        "k8s",
        "pki",
        "export",
        "--cluster",
        "prod",
        "--dir",
        d,
        "--external-ca",
        "--control-plane",
        CP,
        "--control-plane",
        CP_IP,
        "--super-admin",
    ]);

    // kubeadm's file names; external CA mode writes no CA key at all.
    for f in KUBEADM {
        assert_eq!(mode(&dir.join(f.file)), 0o644, "{}", f.file);
        assert_eq!(mode(&dir.join(f.file.replace(".crt", ".key"))), 0o600, "{}", f.file);
    }
    for ca in ["ca.crt", "front-proxy-ca.crt", "etcd/ca.crt", "sa.pub"] {
        assert!(dir.join(ca).is_file(), "{ca}");
    }
    assert_eq!(mode(&dir.join("sa.key")), 0o600);
    for key in ["ca.key", "front-proxy-ca.key", "etcd/ca.key"] {
        assert!(!dir.join(key).exists(), "{key} must not be written in external CA mode");
    }

    let bundle = server.scratch().join("bundle.pem");
    cli.ok(&["ca", "bundle", "--out", bundle.to_str().unwrap()]);
    let ca_cns: Vec<String> =
        ["ca.crt", "front-proxy-ca.crt", "etcd/ca.crt"].iter().map(|c| fields(&dir.join(c)).cn).collect();
    assert_eq!(ca_cns.iter().collect::<std::collections::BTreeSet<_>>().len(), 3, "three distinct CAs: {ca_cns:?}");
    for f in KUBEADM {
        let got = fields(&dir.join(f.file));
        let want = Fields {
            cn: f.cn.into(),
            o: f.o.iter().map(|s| s.to_string()).collect(),
            dns: set(f.dns),
            ips: set(f.ips),
            uris: vec![],
            server_auth: f.server,
            client_auth: f.client,
            digital_signature_only: true,
            is_ca: false,
            issuer_cn: fields(&dir.join(f.ca)).cn,
            serial: got.serial.clone(),
        };
        assert_eq!(got, want, "{} differs from kubeadm's", f.file);
        // The leaf and its key belong together.
        let cert_key = public_key(&["x509", "-noout", "-pubkey", "-in"], &dir.join(f.file));
        let key_key = public_key(&["pkey", "-pubout", "-in"], &dir.join(f.file.replace(".crt", ".key")));
        assert_eq!(cert_key, key_key, "{} and its key", f.file);
        // Chains to the tenant bundle through the cluster CA that issued it.
        let (ok, out) = pki::openssl_verify(&bundle, &dir.join(f.ca), &dir.join(f.file), &[]);
        assert!(ok, "openssl verify {}: {out}", f.file);
    }
    // kubeadm's kubeconfig files (its external CA mode needs them too), beside the PKI dir.
    for (file, cn, o) in [
        ("admin.conf", "kubernetes-admin", &["kubeadm:cluster-admins"][..]),
        ("super-admin.conf", "kubernetes-super-admin", &["system:masters"][..]),
        ("controller-manager.conf", "system:kube-controller-manager", &[][..]),
        ("scheduler.conf", "system:kube-scheduler", &[][..]),
        ("kubelet.conf", "system:node:cp1.corp.example", &["system:nodes"][..]),
    ] {
        let path = server.scratch().join(file);
        assert_eq!(mode(&path), 0o600, "{file}");
        let (api, pem) = kubeconfig_certificate(&path);
        assert_eq!(api, "https://k8s.corp.example:6443", "{file}");
        let got = fields_of_pem(&pem);
        assert_eq!((got.cn.as_str(), got.o.iter().map(String::as_str).collect::<Vec<_>>()), (cn, o.to_vec()), "{file}");
        assert!(got.client_auth && !got.server_auth && got.dns.is_empty() && got.uris.is_empty(), "{file}: {got:?}");
        assert_eq!(got.issuer_cn, fields(&dir.join("ca.crt")).cn, "{file}");
    }
    // The cluster's CAs are issuing CAs under the tenant root.
    for ca in ["ca.crt", "front-proxy-ca.crt", "etcd/ca.crt"] {
        let (ok, out) = run(Command::new("openssl").arg("verify").arg("-CAfile").arg(&bundle).arg(dir.join(ca)));
        assert!(ok, "{ca}: {out}");
        assert!(fields(&dir.join(ca)).is_ca);
    }
    // etcd only trusts its own CA: an API server certificate does not verify against it.
    let (ok, _) = run(Command::new("openssl")
        .args(["verify", "-partial_chain", "-CAfile"])
        .arg(dir.join("etcd/ca.crt"))
        .arg(dir.join("apiserver.crt")));
    assert!(!ok, "the etcd CA must not vouch for the API server certificate");

    // Re-exporting renews the leaves and keeps the service-account key (tokens stay valid).
    let sa_before = std::fs::read(dir.join("sa.key")).unwrap();
    let serial_before = fields(&dir.join("apiserver.crt")).serial;
    cli.ok(&["k8s", "pki", "export", "--cluster", "prod", "--dir", d, "--external-ca", "--control-plane", CP]);
    assert_eq!(std::fs::read(dir.join("sa.key")).unwrap(), sa_before);
    assert_ne!(fields(&dir.join("apiserver.crt")).serial, serial_before);

    // The CA key never leaves the server unless the cluster was created to allow it.
    let own = server.scratch().join("pki-own-ca");
    let o = own.to_str().unwrap();
    assert_eq!(
        cli.fails_with(&["k8s", "pki", "export", "--cluster", "prod", "--dir", o, "--control-plane", CP]),
        "policy_violation"
    );
    assert!(!own.join("ca.key").exists());
    // With --allow-ca-key-export, export without --external-ca writes ca.key (0600) matching ca.crt.
    // Such a cluster's CAs are always name-constrained: here to its control
    // plane's name and address, beside the defaults.
    cli.ok(&[
        "k8s",
        "cluster",
        "create",
        "own",
        "--allow-ca-key-export",
        "--api-server",
        "https://own.corp.example:6443",
        "--name-constraint",
        CP,
        "--name-constraint",
        "own.corp.example",
        "--name-constraint",
        &format!("{CP_IP}/32"),
    ]);
    let kube = server.scratch().join("own-kube");
    let k = kube.to_str().unwrap();
    cli.ok(&["k8s", "pki", "export", "--cluster", "own", "--dir", o, "--control-plane", CP, "--kubeconfig-dir", k]);
    assert_eq!(mode(&own.join("ca.key")), 0o600);
    assert_eq!(
        public_key(&["x509", "-noout", "-pubkey", "-in"], &own.join("ca.crt")),
        public_key(&["pkey", "-pubout", "-in"], &own.join("ca.key"))
    );
    // The break-glass system:masters kubeconfig is written only when asked for.
    assert!(kube.join("admin.conf").is_file() && !kube.join("super-admin.conf").exists());
    // Handing out the key is audited.
    let audit = cli.ok(&["audit", "list"]);
    assert!(audit.contains("k8s.ca-key.export"), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn name_constraints_bind_the_cluster_and_admit_its_own_names() {
    let server = TestServer::start();
    let _admin = pki::tenant(&server, T, None).await;
    let cli = pki::admin_cli(&server, T);
    cli.ok(&["k8s", "cluster", "create", "edge", "--name-constraint", "edge.corp.example"]);
    let shown = cli.json(&["k8s", "cluster", "show", "edge"]);
    let constraints: Vec<&str> =
        shown["name_constraints"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(
        constraints.contains(&"edge.corp.example") && constraints.contains(&"kubernetes.default.svc.cluster.local")
    );
    let dir = server.scratch().join("edge");
    let d = dir.to_str().unwrap();
    // A control-plane host inside the constraint: every certificate issues.
    cli.ok(&[
        "k8s",
        "pki",
        "export",
        "--cluster",
        "edge",
        "--dir",
        d,
        "--external-ca",
        "--control-plane",
        "cp.edge.corp.example",
    ]);
    // A host outside it: the API server certificate is refused before signing.
    let out = cli.run(&[
        "k8s",
        "pki",
        "export",
        "--cluster",
        "edge",
        "--dir",
        d,
        "--external-ca",
        "--control-plane",
        "cp.other.corp.example",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("name constraints"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A host outside the tenant is no control-plane host of it at all.
    let err = cli.fails_with(&[
        "k8s",
        "pki",
        "export",
        "--cluster",
        "edge",
        "--dir",
        d,
        "--external-ca",
        "--control-plane",
        "cp.evil.example",
    ]);
    assert_eq!(err, "policy_violation");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_and_unauthorized_requests_change_nothing() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let cli = pki::admin_cli(&server, T);
    for (args, code) in [
        (vec!["Prod"], "invalid_name"),
        (vec!["prod;rm"], "invalid_name"),
        (vec!["prod", "--api-server", "http://k8s:6443"], "invalid_request"),
        (vec!["prod", "--api-server", "https://user@k8s:6443"], "invalid_request"),
        (vec!["prod", "--service-cidr", "10.96.0.0/31"], "invalid_request"),
        (vec!["prod", "--service-cidr", "banana"], "invalid_request"),
        (vec!["prod", "--dns-domain=-bad-"], "invalid_name"),
        (vec!["prod", "--name-constraint", "*.corp.example"], "invalid_request"),
        (vec!["prod", "--group-mapping", "nosuchgroup=dev"], "principal_not_found"),
        (vec!["prod", "--group-mapping", "Users=bad group"], "invalid_request"),
    ] {
        let mut all = vec!["k8s", "cluster", "create"];
        all.extend(args.iter().copied());
        assert_eq!(cli.fails_with(&all), code, "{args:?}");
    }
    assert!(admin.list_clusters(T).await.unwrap().is_empty(), "nothing was created");
    let cas_before = admin.list_cas(T).await.unwrap().len();
    assert_eq!(cas_before, 2, "no CA was left behind by a refused cluster");

    cli.ok(&["k8s", "cluster", "create", "prod"]);
    assert_eq!(cli.fails_with(&["k8s", "cluster", "create", "prod"]), "already_exists");
    assert_eq!(cli.fails_with(&["k8s", "cluster", "show", "nope"]), "cluster_not_found");
    // The control plane's service principal goes only with its cluster.
    assert_eq!(cli.fails_with(&["service", "delete", "k8s-prod"]), "builtin_protected");

    // Hostile component requests over the raw API.
    let token = server.client().login(T, "administrator", pki::ADMIN_PASSWORD).await.unwrap().token;
    let files = pki::Files::new();
    let (_, evil_csr) = files.csr("evil", "ec:P-256", "/CN=kube-apiserver", &["subjectAltName=DNS:evil.example"]);
    let (_, ca_csr) = files.csr("ca", "ec:P-256", "/CN=kube-apiserver", &["basicConstraints=critical,CA:true"]);
    let (_, plain_csr) = files.csr("plain", "ec:P-256", "/CN=kube-apiserver-etcd-client", &[]);
    for (body, code) in [
        (serde_json::json!({"component": "apiserver", "csr": evil_csr, "control_plane": [CP]}), "policy_violation"),
        (serde_json::json!({"component": "apiserver", "csr": ca_csr, "control_plane": [CP]}), "policy_violation"),
        (serde_json::json!({"component": "apiserver", "csr": plain_csr, "control_plane": []}), "invalid_request"),
        (serde_json::json!({"component": "kubelet", "csr": plain_csr}), "invalid_request"),
        (serde_json::json!({"component": "apiserver-etcd-client", "csr": "not a csr"}), "invalid_csr"),
        (
            serde_json::json!({"component": "apiserver-etcd-client", "csr": plain_csr, "control_plane": ["bad host!"]}),
            "invalid_name",
        ),
        (
            serde_json::json!({"component": "apiserver-etcd-client", "csr": plain_csr, "ttl": "400d"}),
            "policy_violation",
        ),
        (serde_json::json!({"component": "apiserver-etcd-client", "csr": plain_csr, "extra": 1}), "invalid_request"),
    ] {
        let resp = server
            .raw()
            .post(format!("{}/v1/tenants/{T}/k8s/clusters/prod/components", server.url()))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], code, "{body}: {status} {err}");
    }
    let issued = admin.list_certificates(T, Some("service/k8s-prod")).await.unwrap();
    assert!(issued.is_empty(), "refused requests issued nothing: {issued:?}");

    // A user of the tenant sees clusters but may not create them, issue control-plane
    // certificates or take the CA key; another tenant sees nothing.
    let _alice = pki::user(&server, &admin, T, "alice").await;
    let alice = pki::login_cli(&server, T, "alice", pki::USER_PASSWORD);
    alice.ok(&["k8s", "cluster", "show", "prod"]);
    assert_eq!(alice.fails_with(&["k8s", "cluster", "create", "dev"]), "forbidden");
    assert_eq!(alice.fails_with(&["k8s", "cluster", "delete", "prod"]), "forbidden");
    let dir = server.scratch().join("alice-pki");
    assert_eq!(
        alice.fails_with(&[
            "k8s",
            "pki",
            "export",
            "--cluster",
            "prod",
            "--dir",
            dir.to_str().unwrap(),
            "--control-plane",
            CP
        ]),
        "forbidden"
    );
    let other = pki::tenant(&server, "other.example", None).await;
    assert_eq!(
        other.cluster("other.example", "prod").await.unwrap_err().code(),
        Some(lightwell_proto::ErrorCode::ClusterNotFound)
    );
    assert_eq!(other.cluster(T, "prod").await.unwrap_err().code(), Some(lightwell_proto::ErrorCode::Forbidden));
}
