//! A three-member etcd cluster (Debian's etcd-server) on loopback running on
//! the PKI `lightwell k8s pki export --external-ca` wrote, with client and
//! peer certificate authentication and the CRL a joined host's agent keeps
//! current: etcdctl with the API server's etcd client certificate reads and
//! writes; a third-party certificate and a tenant certificate from another
//! CA are refused; once a certificate is revoked in Lightwell and the agent
//! has synced the CRL, etcd refuses it — without a restart, because etcd
//! reads the CRL file on every new connection.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lightwell_proto::{CreateJoinTokenRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::node::{Node, free_port, wait_until};
use lightwell_testkit::pki::{self, run};

const T: &str = "corp.example";

/// Three etcd processes, killed on drop.
struct Etcd {
    members: Vec<Child>,
    endpoints: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.kill();
            let _ = m.wait();
        }
    }
}

impl Etcd {
    fn start(dir: &Path, pki: &Path, crl: &Path) -> Self {
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> =
            ports.iter().enumerate().map(|(i, (_, peer))| format!("m{i}=https://127.0.0.1:{peer}")).collect();
        let f = |name: &str| pki.join(name).display().to_string();
        let mut members = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let log = std::fs::File::create(dir.join(format!("etcd-m{i}.log"))).unwrap();
            let child = Command::new("etcd")
                .args(["--name", &format!("m{i}"), "--data-dir"])
                .arg(dir.join(format!("m{i}")))
                .args(["--listen-client-urls", &format!("https://127.0.0.1:{client}")])
                .args(["--advertise-client-urls", &format!("https://127.0.0.1:{client}")])
                .args(["--listen-peer-urls", &format!("https://127.0.0.1:{peer}")])
                .args(["--initial-advertise-peer-urls", &format!("https://127.0.0.1:{peer}")])
                .args(["--initial-cluster", &initial.join(","), "--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "lightwell-test"])
                .args(["--client-cert-auth", "--trusted-ca-file", &f("etcd/ca.crt")])
                .args(["--cert-file", &f("etcd/server.crt"), "--key-file", &f("etcd/server.key")])
                .args(["--peer-client-cert-auth", "--peer-trusted-ca-file", &f("etcd/ca.crt")])
                .args(["--peer-cert-file", &f("etcd/peer.crt"), "--peer-key-file", &f("etcd/peer.key")])
                .arg("--client-crl-file")
                .arg(crl)
                .arg("--peer-crl-file")
                .arg(crl)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("etcd (Debian etcd-server) must be installed: run scripts/test.sh as root");
            members.push(child);
        }
        let endpoints =
            ports.iter().map(|(client, _)| format!("https://127.0.0.1:{client}")).collect::<Vec<_>>().join(",");
        Self { members, endpoints }
    }

    /// Runs etcdctl (API v3) with a client certificate; returns (success, output).
    fn ctl(&self, pki: &Path, cert: &Path, key: &Path, args: &[&str]) -> (bool, String) {
        run(Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoints, "--dial-timeout", "3s", "--command-timeout", "5s", "--cacert"])
            .arg(pki.join("etcd/ca.crt"))
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .args(args))
    }

    /// Checks that each of the three members started at the beginning is
    /// still running (none exited, so none was restarted) and reports
    /// itself healthy on its own endpoint.
    fn assert_alive_and_healthy(&mut self, pki: &Path, cert: &Path, key: &Path) {
        for (i, m) in self.members.iter_mut().enumerate() {
            assert_eq!(m.try_wait().unwrap(), None, "etcd member m{i} (pid {}) exited", m.id());
        }
        let (ok, out) = self.ctl(pki, cert, key, &["endpoint", "health", "-w", "json"]);
        assert!(ok, "endpoint health: {out}");
        let json = out.lines().find(|l| l.starts_with('[')).unwrap_or_else(|| panic!("endpoint health: {out}"));
        let health: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
        let mut healthy: Vec<&str> =
            health.iter().filter(|h| h["health"] == true).map(|h| h["endpoint"].as_str().unwrap()).collect();
        healthy.sort_unstable();
        let mut endpoints: Vec<&str> = self.endpoints.split(',').collect();
        endpoints.sort_unstable();
        assert_eq!(healthy, endpoints, "every member is healthy: {out}");
    }
}

/// A client certificate from a third-party CA made with OpenSSL, with the API server's name.
fn third_party(dir: &Path) -> (PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let openssl = |args: &[&str]| {
        let (ok, out) = run(Command::new("openssl").args(args).current_dir(dir));
        assert!(ok, "openssl {args:?}: {out}");
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"];
    openssl(
        &[&["req", "-x509"][..], &ec, &["-subj", "/CN=Rogue CA", "-keyout", "rogue-ca.key", "-out", "rogue-ca.pem"]]
            .concat(),
    );
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-subj", "/CN=kube-apiserver-etcd-client", "-addext", "extendedKeyUsage=clientAuth"],
            &["-CA", "rogue-ca.pem", "-CAkey", "rogue-ca.key", "-keyout", "rogue.key", "-out", "rogue.pem"],
        ]
        .concat(),
    );
    (p("rogue.pem"), p("rogue.key"))
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_runs_on_the_exported_pki_and_refuses_what_lightwell_revoked() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let cli = pki::admin_cli(&server, T);
    let cluster = cli.json(&["k8s", "cluster", "create", "prod"]);
    let dir = server.scratch().join("etcd");
    let pki_dir = dir.join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
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
        "etcd.corp.example",
        "--control-plane",
        "127.0.0.1",
    ]);

    // A joined host's agent keeps the etcd CA's CRL current.
    let token = admin.create_join_token(T, &CreateJoinTokenRequest::default()).await.unwrap().token.unwrap();
    let mut host = Node::new(&dir, "cp1.corp.example");
    assert!(host.join(&server, T, Some(&token)).status.success());
    host.start_agent();
    let crl = host.state.join("crl").join(format!("{}.crl.pem", cluster["etcd_ca_id"].as_str().unwrap()));
    assert!(crl.is_file(), "the agent wrote the etcd CA's CRL at {}", crl.display());

    let mut etcd = Etcd::start(&dir, &pki_dir, &crl);
    let client = (pki_dir.join("apiserver-etcd-client.crt"), pki_dir.join("apiserver-etcd-client.key"));
    let health = (pki_dir.join("etcd/healthcheck-client.crt"), pki_dir.join("etcd/healthcheck-client.key"));
    assert!(
        wait_until(Duration::from_secs(30), || etcd.ctl(&pki_dir, &health.0, &health.1, &["endpoint", "health"]).0),
        "the three members did not become healthy: {}",
        std::fs::read_to_string(dir.join("etcd-m0.log")).unwrap_or_default()
    );
    let (ok, out) = etcd.ctl(&pki_dir, &client.0, &client.1, &["member", "list"]);
    assert!(ok && out.lines().count() == 3, "three members over peer TLS: {out}");
    let (ok, out) = etcd.ctl(&pki_dir, &client.0, &client.1, &["put", "/registry/demo", "lightwell"]);
    assert!(ok, "put: {out}");
    let (ok, out) = etcd.ctl(&pki_dir, &client.0, &client.1, &["get", "/registry/demo", "--print-value-only"]);
    assert!(ok && out.trim() == "lightwell", "get: {out}");

    // A third-party CA's certificate and a tenant certificate from another CA are refused.
    let (rogue, rogue_key) = third_party(&dir);
    let (ok, out) = etcd.ctl(&pki_dir, &rogue, &rogue_key, &["get", "/registry/demo"]);
    assert!(!ok, "a third-party certificate must be refused: {out}");
    let machine = host.identity();
    let (ok, out) = etcd.ctl(&pki_dir, &machine.chain, &machine.key, &["get", "/registry/demo"]);
    assert!(!ok, "a tenant certificate from the default issuing CA must be refused: {out}");

    // Revoke the API server's etcd client certificate in Lightwell.
    let serial = k8s_serial(&client.0);
    admin
        .revoke_certificate(T, &serial, &RevokeRequest { reason: Some("key-compromise".into()), principal: None })
        .await
        .unwrap();
    let synced = wait_until(Duration::from_secs(10), || {
        let (_, text) = run(Command::new("openssl").args(["crl", "-noout", "-text", "-in"]).arg(&crl));
        text.to_ascii_uppercase().contains(&serial.to_ascii_uppercase())
    });
    assert!(synced, "the agent did not write the new CRL");
    let (ok, out) = etcd.ctl(&pki_dir, &client.0, &client.1, &["get", "/registry/demo"]);
    assert!(!ok, "the revoked certificate must be refused: {out}");
    // Not revoked: still accepted, by the same etcd processes (no restart was needed).
    let (ok, out) = etcd.ctl(&pki_dir, &health.0, &health.1, &["get", "/registry/demo", "--print-value-only"]);
    assert!(ok && out.trim() == "lightwell", "{out}");
    etcd.assert_alive_and_healthy(&pki_dir, &health.0, &health.1);
}

/// The serial of a PEM certificate, lower-case hex without separators (as the API names it).
fn k8s_serial(cert: &Path) -> String {
    let (ok, out) = run(Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(cert));
    assert!(ok, "{out}");
    out.trim().trim_start_matches("serial=").to_ascii_lowercase()
}
