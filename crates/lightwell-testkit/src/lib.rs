//! Helpers for tests that run Lightwell for real: the `lightwelld` binary on
//! a temporary data dir with loopback listeners on free ports, and the
//! `lightwell` CLI with its own configuration dir.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod ha;
pub mod kubelet;
pub mod node;
pub mod pki;
pub mod postgres;

use lightwell_client::{Client, Trust};

pub mod ldap;

/// Directory holding the workspace's binaries (next to the test executable's
/// `deps/` dir), or `LIGHTWELL_BIN_DIR`.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LIGHTWELL_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap().to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of a workspace binary, checked to exist.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} not built; run `cargo build --workspace` (or nextest, which builds it)", p.display());
    p
}

/// The data dir files every replica of one installation shares.
pub const REPLICATED_FILES: &[&str] =
    &["kek.key", "server.pem", "server.key", "server-ca.pem", "server-ca.key.sealed", "operator.password"];

/// A running `lightwelld` on a temporary data dir.
#[derive(Debug)]
pub struct TestServer {
    root: tempfile::TempDir,
    child: Option<Child>,
    api_addr: String,
    /// LDAPS and LDAP (StartTLS) addresses, learned at start and kept across restarts.
    ldaps_addr: String,
    ldap_addr: String,
    /// `http://127.0.0.1:PORT` of the plain-HTTP PKI listener (a new port at each start).
    pki_url: String,
    /// Extra arguments given at every start.
    extra_args: Vec<String>,
    /// Environment variables set at every start (besides `LIGHTWELL_LOG`).
    env: Vec<(String, String)>,
    /// Captured stdout and stderr lines of the current process.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TestServer {
    /// Initializes a data dir and starts the server on free loopback ports.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`TestServer::start`], with extra `lightwelld` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::init_and_start(&[], extra)
    }

    /// A server on a PostgreSQL database (`postgres://...`): initialized
    /// there, then started with `--database URL` and `extra`.
    pub fn start_on(database: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--database", database];
        args.extend_from_slice(extra);
        Self::init_and_start(&["--database", database], &args)
    }

    /// Another replica of this server: a new data dir holding copies of this
    /// one's KEK, server TLS files and operator password, started with the
    /// same arguments (so the same `--database`) on its own ports.
    pub fn replica(&self) -> Self {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        for f in REPLICATED_FILES {
            std::fs::copy(self.data_dir().join(f), data.join(f)).unwrap();
        }
        let args: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        Self::start_in(root, &args)
    }

    /// Like [`TestServer::start_with`], with `LIGHTWELL_*` environment
    /// variables set for `lightwelld` as well (at every start).
    pub fn start_with_env(env: &[(&str, &str)], extra: &[&str]) -> Self {
        let root = Self::init(&[]);
        Self::start_in_with_env(root, env, extra)
    }

    fn init_and_start(init: &[&str], extra: &[&str]) -> Self {
        Self::start_in(Self::init(init), extra)
    }

    /// A temporary root whose `data` is an initialized data dir.
    fn init(init: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let out = Command::new(bin("lightwelld")).arg("init").arg("--data-dir").arg(&data).args(init).output().unwrap();
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        root
    }

    fn start_in(root: tempfile::TempDir, extra: &[&str]) -> Self {
        Self::start_in_with_env(root, &[], extra)
    }

    fn start_in_with_env(root: tempfile::TempDir, env: &[(&str, &str)], extra: &[&str]) -> Self {
        std::fs::write(root.path().join("clock-offset"), "0").unwrap();
        let mut server = Self {
            root,
            child: None,
            api_addr: "127.0.0.1:0".into(),
            ldaps_addr: "127.0.0.1:0".into(),
            ldap_addr: "127.0.0.1:0".into(),
            pki_url: String::new(),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            log: Default::default(),
        };
        server.spawn();
        server
    }

    /// The data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// A scratch directory that lives as long as the server.
    pub fn scratch(&self) -> &Path {
        self.root.path()
    }

    fn spawn(&mut self) {
        // A restart binds the ports the first start was given. Between the
        // two, any process on the machine may have been handed one of them as
        // the source port of a short-lived connection (ephemeral ports and
        // port-0 listeners share one range): wait for it to be let go.
        let restart = !self.api_addr.ends_with(":0");
        let pki_addr = self.pki_url.strip_prefix("http://").unwrap_or("127.0.0.1:0").to_string();
        let mut attempts = 0;
        loop {
            match self.try_spawn(&pki_addr) {
                Ok(()) => return,
                Err(log) if restart && attempts < 40 && log.contains("Address already in use") => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(log) => panic!("lightwelld did not start; output:\n{log}"),
            }
        }
    }

    /// Starts `lightwelld` once: `Err` with its output if it did not come up.
    /// A restart keeps every address, the PKI listener's (`pki_addr`) too:
    /// its URL is in every certificate's CDP and every CRL's Issuing
    /// Distribution Point.
    fn try_spawn(&mut self, pki_addr: &str) -> Result<(), String> {
        self.pki_url.clear();
        let mut child = Command::new(bin("lightwelld"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen-api", &self.api_addr, "--listen-pki", pki_addr])
            .args(["--listen-ldaps", &self.ldaps_addr, "--listen-ldap", &self.ldap_addr])
            .arg("--clock-offset-file")
            .arg(self.root.path().join("clock-offset"))
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("LIGHTWELL_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        // Only the readers hold senders now: a process that exits ends the wait at once.
        drop(tx);
        self.log = log;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        // lightwelld prints the API line, then (last) the LDAP lines.
        let (mut api, mut ldaps, mut ldap) = (false, false, false);
        while !(api && ldaps && ldap && !self.pki_url.is_empty()) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("ldaps: ldaps://") {
                        self.ldaps_addr = addr.trim().to_string();
                        ldaps = true;
                    } else if let Some(addr) = line.strip_prefix("ldap: ldap://") {
                        self.ldap_addr = addr.trim().to_string();
                        ldap = true;
                    } else if let Some(addr) = line.strip_prefix("api: https://") {
                        self.api_addr = addr.trim().to_string();
                        api = true;
                    } else if let Some(url) = line.strip_prefix("pki: ") {
                        self.pki_url = url.trim().to_string();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(self.log.lock().unwrap().join("\n"));
                }
            }
        }
        self.child = Some(child);
        Ok(())
    }

    /// Everything the current process printed so far.
    pub fn output(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.api_addr)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://{}", self.ldaps_addr)
    }

    /// `ldap://127.0.0.1:PORT` (StartTLS).
    pub fn ldap_url(&self) -> String {
        format!("ldap://{}", self.ldap_addr)
    }

    /// The LDAPS listener's address.
    pub fn ldaps_addr(&self) -> std::net::SocketAddr {
        self.ldaps_addr.parse().unwrap()
    }

    /// The LDAP (StartTLS) listener's address.
    pub fn ldap_addr(&self) -> std::net::SocketAddr {
        self.ldap_addr.parse().unwrap()
    }

    /// Runs an OpenLDAP client (`ldapsearch`, `ldapwhoami`, ...) trusting the
    /// server CA and ignoring the machine's ldap.conf defaults.
    pub fn ldap_tool(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("LDAPTLS_CACERT", self.ca_file())
            .env("LDAPTLS_REQCERT", "demand")
            .env("LDAPCONF", "/dev/null")
            .env("LDAPRC", "/dev/null")
            .env_remove("LDAPBASE")
            .env_remove("LDAPURI")
            .env_remove("LDAPBINDDN")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program} is not installed ({e}); ./scripts/test.sh installs ldap-utils"))
    }

    /// `http://127.0.0.1:PORT`, the plain-HTTP PKI listener (CRLs, CA certificates).
    pub fn pki_url(&self) -> &str {
        &self.pki_url
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server CA file clients trust.
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir().join("server-ca.pem")
    }

    /// The operator's first password.
    pub fn operator_password(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("operator.password")).unwrap().trim().to_string()
    }

    /// Shifts the server's clock by `secs` from the wall clock.
    pub fn set_clock_offset(&self, secs: i64) {
        std::fs::write(self.root.path().join("clock-offset"), secs.to_string()).unwrap();
    }

    /// Stops the server with SIGTERM and waits; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let status = child.wait().unwrap();
        status.success()
    }

    /// Kills the server with SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts the server again on the same data dir and API port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts the server again on the same data dir with other arguments
    /// (for example another `--database`), after [`TestServer::stop`].
    pub fn start_again_with(&mut self, extra: &[&str]) {
        self.extra_args = extra.iter().map(|s| s.to_string()).collect();
        self.start_again();
    }

    /// Starts the server again after [`TestServer::kill9`] or [`TestServer::stop`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }

    /// An unauthenticated API client trusting the server CA.
    pub fn client(&self) -> Client {
        Client::new(&self.url(), &Trust::CaPem(std::fs::read(self.ca_file()).unwrap())).unwrap()
    }

    /// An API client logged in as the operator.
    pub async fn operator(&self) -> Client {
        let c = self.client();
        let token = c.operator_login("operator", &self.operator_password()).await.unwrap().token;
        c.with_token(token)
    }

    /// An API client logged in to `tenant` as `user`.
    pub async fn login(&self, tenant: &str, user: &str, password: &str) -> Client {
        let c = self.client();
        let token = c.login(tenant, user, password).await.unwrap().token;
        c.with_token(token)
    }

    /// Creates a tenant as the operator, with `admin_password` for its
    /// `administrator`, and returns a client logged in as that administrator.
    pub async fn create_tenant(&self, domain: &str, admin_password: &str) -> Client {
        let req: lightwell_proto::CreateTenantRequest =
            serde_json::from_value(serde_json::json!({ "domain": domain, "admin_password": admin_password })).unwrap();
        self.operator().await.create_tenant(&req).await.unwrap();
        self.login(domain, "administrator", admin_password).await
    }

    /// A raw HTTPS client trusting the server CA, for hand-made requests.
    pub fn raw(&self) -> reqwest::Client {
        self.mtls(None)
    }

    /// An HTTPS client presenting the private key in `key` (PEM file) and the
    /// certificate chain `chain` (PEM): mutual TLS as that identity.
    pub fn mtls_as(&self, key: &Path, chain: &str) -> reqwest::Client {
        let mut identity = std::fs::read(key).unwrap();
        identity.extend_from_slice(chain.as_bytes());
        self.mtls(Some(&identity))
    }

    /// Like [`TestServer::raw`], with connections from the local address
    /// `source` (on Linux any address of 127/8 is the loopback interface),
    /// so the server sees a caller of its own: for per-address limits.
    pub fn raw_from(&self, source: std::net::IpAddr) -> reqwest::Client {
        let pem = std::fs::read(self.ca_file()).unwrap();
        let cert = reqwest::Certificate::from_pem(&pem).unwrap();
        reqwest::Client::builder().tls_certs_only([cert]).local_address(source).build().unwrap()
    }

    /// A password login to `tenant` from the local address `source`, as the
    /// server answered it.
    pub async fn login_from(&self, source: &str, tenant: &str, user: &str, password: &str) -> LoginAnswer {
        let source: std::net::IpAddr = source.parse().unwrap();
        let resp = self
            .raw_from(source)
            .post(format!("{}/v1/tenants/{tenant}/login", self.url()))
            .json(&serde_json::json!({ "user": user, "password": password }))
            .send()
            .await
            .unwrap();
        LoginAnswer::read(resp).await
    }

    /// A TCP connection to `addr` from the local address `source`.
    pub async fn tcp_from(source: std::net::IpAddr, addr: std::net::SocketAddr) -> tokio::net::TcpStream {
        let socket = if source.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() };
        let socket = socket.unwrap();
        socket.bind(std::net::SocketAddr::new(source, 0)).unwrap();
        socket.connect(addr).await.unwrap()
    }

    /// The API listener's address.
    pub fn api_addr(&self) -> std::net::SocketAddr {
        self.api_addr.parse().unwrap()
    }

    /// The PKI listener's address.
    pub fn pki_addr(&self) -> std::net::SocketAddr {
        self.pki_url.trim_start_matches("http://").parse().unwrap()
    }

    /// A TLS connection to the API from the local address `source`,
    /// trusting the server CA and offering HTTP/1.1 only: for hand-made
    /// (and half-made) requests.
    pub async fn api_tls_from(
        &self,
        source: std::net::IpAddr,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(self.ca_file()).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = Self::tcp_from(source, self.api_addr()).await;
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp).await.unwrap()
    }

    /// The server's resident memory in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid().expect("the server is running")).expect("the server is running")
    }

    /// A raw HTTPS client trusting the server CA and presenting `identity`
    /// (PEM: a private key and its certificate chain, in any order), or no
    /// client certificate at all.
    pub fn mtls(&self, identity: Option<&[u8]>) -> reqwest::Client {
        let pem = std::fs::read(self.ca_file()).unwrap();
        let cert = reqwest::Certificate::from_pem(&pem).unwrap();
        let mut builder = reqwest::Client::builder().tls_certs_only([cert]);
        if let Some(identity) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(identity).unwrap());
        }
        builder.build().unwrap()
    }

    /// The metric `name` of `/metrics`, summed over its label sets (counters
    /// carry the `_total` suffix: `lightwell_lockouts_total`; a labelled
    /// family nobody has used yet reads 0); panics if the server does not
    /// declare the metric at all, so a renamed metric cannot read as 0.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.raw().get(format!("{}/metrics", self.url())).send().await.unwrap().text().await.unwrap();
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            text.lines().any(|l| l.strip_prefix("# TYPE ").and_then(|t| t.split(' ').next()) == Some(family)),
            "no metric {name} in:\n{text}"
        );
        text.lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{')))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// A CLI runner with its own (empty) configuration dir.
    pub fn cli(&self) -> Cli {
        Cli::new(tempfile::tempdir().unwrap())
    }
}

/// Runs `lightwelld` on `data_dir` with `extra` arguments (listeners on
/// free loopback ports) when it is expected to refuse to start: its output
/// once it exited, or `None` if it was still running after 30 s (it is then
/// killed).
pub fn lightwelld_refusal(data_dir: &Path, extra: &[&str]) -> Option<Output> {
    let logs = tempfile::tempdir().unwrap();
    let (out, err) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let mut child = Command::new(bin("lightwelld"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen-api", "127.0.0.1:0", "--listen-pki", "127.0.0.1:0"])
        .args(["--listen-ldaps", "127.0.0.1:0", "--listen-ldap", "127.0.0.1:0"])
        .args(extra)
        .env("LIGHTWELL_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Some(Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() })
}

/// The resident memory of process `pid` in KiB (`VmRSS`), while it runs.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// An HTTP answer to a login, as a test compares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAnswer {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
    /// The body, parsed.
    pub body: serde_json::Value,
}

impl LoginAnswer {
    /// Reads a login response.
    pub async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().parse().expect("Retry-After is in seconds"));
        let body = resp.json().await.unwrap();
        Self { status, retry_after, body }
    }

    /// The error code of a refusal (`None` for a success).
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs the `lightwell` CLI with an isolated configuration dir.
#[derive(Debug)]
pub struct Cli {
    config: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Cli {
    fn new(config: tempfile::TempDir) -> Self {
        Self { config, env: vec![] }
    }

    /// Sets an environment variable for later runs.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// A directory for files the test hands to the CLI (password files).
    pub fn dir(&self) -> &Path {
        self.config.path()
    }

    /// Writes a password file and returns its path.
    pub fn secret_file(&self, name: &str, secret: &str) -> String {
        let p = self.config.path().join(name);
        std::fs::write(&p, format!("{secret}\n")).unwrap();
        p.display().to_string()
    }

    /// Runs `lightwell ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(bin("lightwell"))
            .args(args)
            .env("LIGHTWELL_CONFIG_DIR", self.config.path())
            .env_remove("LIGHTWELL_SERVER")
            .env_remove("LIGHTWELL_TENANT")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lightwell {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with `--output json`, asserts success and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Runs with `--output json`, asserts failure and returns the error code.
    pub fn fails_with(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.run(&all);
        assert!(!out.status.success(), "lightwell {args:?} unexpectedly succeeded");
        let err: serde_json::Value = serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|_| panic!("stderr is not JSON: {}", String::from_utf8_lossy(&out.stderr)));
        err["error"]["code"].as_str().unwrap().to_string()
    }
}
