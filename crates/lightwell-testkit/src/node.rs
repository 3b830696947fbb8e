//! Joined hosts for end-to-end tests: `lightwell join` into a state dir, the
//! real `lightwell agent` process, and mutual-TLS checks between hosts using
//! only the files the agents wrote — with OpenSSL and with rustls.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{TestServer, bin};

/// A host's files: certificate, chain and key (agent state dir or hand-made).
#[derive(Debug, Clone)]
pub struct Identity {
    /// Leaf certificate, PEM.
    pub cert: PathBuf,
    /// Leaf followed by intermediates, PEM.
    pub chain: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// A host that joined (or tries to).
#[derive(Debug)]
pub struct Node {
    /// Its host name.
    pub hostname: String,
    /// Its state dir.
    pub state: PathBuf,
    agent: Option<Child>,
    env: Vec<(String, String)>,
}

impl Node {
    /// A host with a state dir under `dir` (nothing is created yet).
    pub fn new(dir: &Path, hostname: &str) -> Self {
        Self { hostname: hostname.into(), state: dir.join(hostname), agent: None, env: vec![] }
    }

    /// Sets an environment variable for the agent and join commands.
    pub fn env(&mut self, key: &str, value: &str) {
        self.env.push((key.into(), value.into()));
    }

    /// Runs `lightwell join` with a token.
    pub fn join(&self, server: &TestServer, tenant: &str, token: Option<&str>) -> Output {
        self.join_servers(&[server], tenant, token)
    }

    /// Runs `lightwell join` naming several replicas (`--server A,B`); the
    /// agent then fails over across them.
    pub fn join_servers(&self, servers: &[&TestServer], tenant: &str, token: Option<&str>) -> Output {
        let urls = servers.iter().map(|s| s.url()).collect::<Vec<_>>().join(",");
        let mut cmd = Command::new(bin("lightwell"));
        cmd.args(["join", "--server", &urls, "--tenant", tenant, "--hostname", &self.hostname])
            .args(["--ip", "127.0.0.1", "--ca-file"])
            .arg(servers[0].ca_file())
            .arg("--state-dir")
            .arg(&self.state)
            .env("LIGHTWELL_CONFIG_DIR", self.state.with_extension("cli"))
            .env_remove("LIGHTWELL_JOIN_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        cmd.output().unwrap()
    }

    /// Runs `lightwell agent --once`.
    pub fn agent_once(&self) -> Output {
        Command::new(bin("lightwell"))
            .args(["agent", "--once", "--state-dir"])
            .arg(&self.state)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap()
    }

    /// Starts `lightwell agent` in the background.
    pub fn start_agent(&mut self) {
        assert!(self.agent.is_none(), "agent already running");
        let child = Command::new(bin("lightwell"))
            .args(["agent", "--state-dir"])
            .arg(&self.state)
            .env("LIGHTWELL_LOG", "info")
            // Each test host serves its own Workload API socket.
            .env("LIGHTWELL_AGENT_WORKLOAD_SOCKET", self.workload_socket())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.agent_log()).unwrap())
            .spawn()
            .unwrap();
        self.agent = Some(child);
    }

    /// The agent's SPIFFE Workload API socket (`<state dir>.sock`), unless
    /// the node's environment names another.
    pub fn workload_socket(&self) -> PathBuf {
        match self.env.iter().rev().find(|(k, _)| k == "LIGHTWELL_AGENT_WORKLOAD_SOCKET") {
            Some((_, v)) => PathBuf::from(v),
            None => self.state.with_extension("sock"),
        }
    }

    /// Where the running agent's log goes (`<state dir>.agent.log`).
    pub fn agent_log(&self) -> PathBuf {
        self.state.with_extension("agent.log")
    }

    /// Stops the agent.
    pub fn stop_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The agent's process id while it runs (for benchmarks reading `/proc`).
    pub fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().map(Child::id)
    }

    /// Whether the agent process is still running.
    pub fn agent_running(&mut self) -> bool {
        self.agent.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The machine identity in the state dir.
    pub fn identity(&self) -> Identity {
        Identity {
            cert: self.state.join("cert.pem"),
            chain: self.state.join("chain.pem"),
            key: self.state.join("key.pem"),
        }
    }

    /// The trust revision the agent last wrote.
    pub fn revision(&self) -> i64 {
        let status: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.state.join("status.json")).unwrap_or_default())
                .unwrap_or_default();
        status["revision"].as_i64().unwrap_or(0)
    }

    /// Concatenated contents of the CRL files.
    pub fn crls(&self) -> String {
        let mut names: Vec<_> = std::fs::read_dir(self.state.join("crl"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        names.sort();
        names.iter().map(|p| std::fs::read_to_string(p).unwrap_or_default()).collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_agent();
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// OpenSSL mutual TLS: `server` (a joined host) runs `openssl s_server`
/// requiring a client certificate verified against its bundle with CRL checks
/// (its hashed CApath), and `client` connects with `openssl s_client`.
/// Returns whether the handshake succeeded, with s_client's output.
pub fn openssl_mtls(server: &Node, client: &Identity) -> (bool, String) {
    let port = free_port();
    let s = server.identity();
    let mut srv = Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-naccept", "1", "-Verify", "1"])
        .args(["-verify_return_error", "-crl_check_all", "-cert"])
        .arg(&s.cert)
        .arg("-key")
        .arg(&s.key)
        .arg("-cert_chain")
        .arg(&s.chain)
        .arg("-CApath")
        .arg(server.state.join("capath"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(srv.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("ACCEPT"))), "s_server did not start");
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-verify_return_error", "-verify_hostname"])
        .arg(&server.hostname)
        .arg("-CAfile")
        .arg(server.state.join("bundle.pem"))
        .arg("-cert")
        .arg(&client.cert)
        .arg("-key")
        .arg(&client.key)
        .arg("-cert_chain")
        .arg(&client.chain)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = srv.kill();
    let server_err = {
        let _ = srv.wait();
        let mut s = String::new();
        if let Some(mut e) = srv.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    };
    let text =
        format!("{}\n{}\n{server_err}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The server aborts the handshake for a rejected client certificate.
    let ok = out.status.success() && text.contains("Verify return code: 0") && !server_err.contains("error");
    (ok, text)
}

fn pem_certs(path: &Path) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(path).unwrap().map(Result::unwrap).collect()
}

/// rustls mutual TLS between two hosts' files: a rustls server configured
/// from `server`'s state dir (bundle as roots, every CRL, its machine
/// identity) and a rustls client with `client`'s identity. The server's
/// verifier is built from the files at call time, as a rustls service that
/// reloads on the agent's hook would.
pub async fn rustls_mtls(server: &Node, client: &Identity) -> Result<(), String> {
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in pem_certs(&server.state.join("bundle.pem")) {
        roots.add(c).map_err(|e| e.to_string())?;
    }
    let roots = Arc::new(roots);
    // crl.pem: every complete CRL. webpki refuses delta CRLs (`UnsupportedDeltaCrl`), which crl/ also holds.
    let crls: Vec<_> = rustls_pki_types::CertificateRevocationListDer::pem_file_iter(server.state.join("crl.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .with_crls(crls)
        .build()
        .map_err(|e| e.to_string())?;
    let s = server.identity();
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(pem_certs(&s.chain), rustls_pki_types::PrivateKeyDer::from_pem_file(&s.key).unwrap())
        .map_err(|e| e.to_string())?;
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            pem_certs(&client.chain),
            rustls_pki_types::PrivateKeyDer::from_pem_file(&client.key).unwrap(),
        )
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor.accept(tcp).await.map_err(|e| format!("server: {e}"))?;
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await.map_err(|e| format!("server read: {e}"))?;
        tls.write_all(b"world").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.ok();
        Ok::<_, String>(())
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let name = rustls_pki_types::ServerName::try_from(server.hostname.clone()).map_err(|e| e.to_string())?;
    let client_result = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut tls = connector.connect(name, tcp).await.map_err(|e| format!("client: {e}"))?;
        tls.write_all(b"hello").await.map_err(|e| format!("client write: {e}"))?;
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await.map_err(|e| format!("client read: {e}"))?;
        Ok::<_, String>(())
    }
    .await;
    let server_result = server_task.await.map_err(|e| e.to_string())?;
    server_result.and(client_result)
}
