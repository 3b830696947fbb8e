//! `lightwell-bench issuance`: certificates per second and latency of the
//! issuance API under C concurrent clients authenticated by mutual TLS, on
//! SQLite and on PostgreSQL, with two baselines measured in the same run:
//! `cfssl serve` signing the same CSRs with a P-256 CA over the same mutual
//! TLS, and the crypto limit — this process parsing the CSR (which verifies
//! its signature) and issuing the leaf with `lightwell-ca` in a loop on
//! every CPU, nothing else.
//!
//! Each client is a user of the tenant holding a client certificate; it
//! sends its own P-256 CSR (CN = its name) over one keep-alive connection,
//! the next request as soon as the previous is answered.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use lightwell_client::{Client, ClientIdentity, Trust};
use lightwell_proto::{CreateUserRequest, IssueCertificateRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, USER_PASSWORD};
use lightwell_testkit::postgres::PgCluster;

use crate::domain::TENANT;
use crate::load::{self, Outcome, Request};
use crate::localca::LocalCa;
use crate::procfs;

/// Targets of issue 8: ≥ 2× cfssl, ≥ 50% of the crypto limit, p99 ≤ 20 ms.
const TARGET_VS_CFSSL: f64 = 2.0;
const TARGET_VS_CRYPTO: f64 = 0.5;
const TARGET_P99_MS: f64 = 20.0;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Run {
    /// The in-process crypto limit.
    Crypto,
    /// `cfssl serve`.
    Cfssl,
    /// `lightwelld` on SQLite.
    Sqlite,
    /// `lightwelld` on PostgreSQL (a throwaway cluster, fsync on).
    Postgres,
}

/// Options of `lightwell-bench issuance`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Concurrent clients, each with its own mutual-TLS identity and connection.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Length of each measured window, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up before each window (TLS handshakes, caches), in seconds.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// What to measure, in this order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "crypto,cfssl,sqlite,postgres")]
    runs: Vec<Run>,
}

/// A client of the benchmark: a user with a certificate and a CSR to send.
pub(crate) struct Identity {
    /// The user's name (its CSRs' CN).
    pub(crate) name: String,
    identity: ClientIdentity,
    csr: String,
}

/// A server with `n` users, each holding a client certificate.
pub(crate) async fn domain_with_clients(server: &TestServer, n: usize) -> Result<(Vec<Identity>, String)> {
    let admin = pki::tenant(server, TENANT, Some("p256")).await;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("client-{i:03}");
        let user = CreateUserRequest {
            name: name.clone(),
            password: Some(USER_PASSWORD.into()),
            email: None,
            display_name: None,
        };
        admin.create_principal(TENANT, "users", &user).await?;
        let (key_pem, csr) = lightwell_agent::enroll::key_and_csr("p256", &name)?;
        // Each user asks for its own certificate: one an administrator
        // obtained on its behalf would not authenticate it.
        let req = IssueCertificateRequest { csr: csr.clone(), profile: Some("client".into()), ..Default::default() };
        let user = server.login(TENANT, &name, USER_PASSWORD).await;
        let cert = user.issue_certificate(TENANT, &req).await?;
        ids.push(Identity { name, identity: ClientIdentity { chain_pem: cert.chain_pem, key_pem }, csr });
    }
    let bundle = admin.trust_bundle_pem(TENANT).await?;
    Ok((ids, bundle))
}

/// The issuance requests of every client against `server`.
pub(crate) fn lightwell_requests(server: &TestServer, ids: &[Identity]) -> Result<Vec<Request>> {
    let trust = Trust::CaPem(std::fs::read(server.ca_file())?);
    ids.iter()
        .map(|id| {
            let client = Arc::new(Client::with_identity(&server.url(), &trust, Some(&id.identity))?);
            let req = Arc::new(IssueCertificateRequest {
                csr: id.csr.clone(),
                profile: Some("client".into()),
                ..Default::default()
            });
            let request: Request = Arc::new(move || {
                let (client, req) = (client.clone(), req.clone());
                Box::pin(async move {
                    client.issue_certificate(TENANT, &req).await?;
                    Ok(())
                })
            });
            Ok(request)
        })
        .collect()
}

/// `cfssl serve` over HTTPS with lightwelld's server certificate, requiring
/// client certificates from the tenant's CA, signing with a P-256 CA.
struct Cfssl {
    child: Child,
    url: String,
}

impl Drop for Cfssl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cfssl {
    fn start(dir: &Path, server: &TestServer, bundle: &str) -> Result<Self> {
        let ca = LocalCa::new("cfssl.example")?;
        let files = [
            ("ca.pem", ca.issuing.certificate().to_pem()),
            ("ca-key.pem", ca.issuing.key().to_pkcs8_pem().to_string()),
            ("clients-ca.pem", bundle.to_owned()),
        ];
        for (name, contents) in &files {
            std::fs::write(dir.join(name), contents)?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let data = server.data_dir();
        let child = Command::new("cfssl")
            .arg("serve")
            .args(["-address", "127.0.0.1", "-port", &port.to_string(), "-loglevel", "5"])
            .arg("-ca")
            .arg(dir.join("ca.pem"))
            .arg("-ca-key")
            .arg(dir.join("ca-key.pem"))
            .arg("-tls-cert")
            .arg(data.join("server.pem"))
            .arg("-tls-key")
            .arg(data.join("server.key"))
            .arg("-mutual-tls-ca")
            .arg(dir.join("clients-ca.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting cfssl (apt-get install -y golang-cfssl)")?;
        let cfssl = Self { child, url: format!("https://127.0.0.1:{port}/api/v1/cfssl/sign") };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("cfssl serve did not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(cfssl)
    }

    fn requests(&self, server: &TestServer, ids: &[Identity]) -> Result<Vec<Request>> {
        let root = reqwest::Certificate::from_pem(&std::fs::read(server.ca_file())?)?;
        ids.iter()
            .map(|id| {
                let pem = format!("{}{}", id.identity.chain_pem, id.identity.key_pem.as_str());
                let client = reqwest::Client::builder()
                    .add_root_certificate(root.clone())
                    .identity(reqwest::Identity::from_pem(pem.as_bytes())?)
                    .build()?;
                let body = Arc::new(serde_json::json!({ "certificate_request": id.csr }));
                let url = self.url.clone();
                let request: Request = Arc::new(move || {
                    let (client, body, url) = (client.clone(), body.clone(), url.clone());
                    Box::pin(async move {
                        let answer: serde_json::Value =
                            client.post(&url).json(&*body).send().await?.error_for_status()?.json().await?;
                        ensure!(answer["success"] == true, "cfssl refused: {answer}");
                        Ok(())
                    })
                });
                Ok(request)
            })
            .collect()
    }
}

/// Issues in a loop on every CPU for `window` after `warmup`; certificates per second.
fn crypto_limit(ids: &[(String, String)], warmup: Duration, window: Duration) -> Result<(usize, f64)> {
    let ca = Arc::new(LocalCa::new(TENANT)?);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (counted, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let counting = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (ca, counted, stop, counting) = (ca.clone(), counted.clone(), stop.clone(), counting.clone());
            let ids = ids.to_vec();
            std::thread::spawn(move || -> Result<()> {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let (name, csr) = &ids[i % ids.len()];
                    ca.issue(TENANT, name, csr.as_bytes())?;
                    if counting.load(Ordering::Relaxed) {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    i += threads;
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(warmup);
    counting.store(true, Ordering::Relaxed);
    std::thread::sleep(window);
    counting.store(false, Ordering::Relaxed);
    let n = counted.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().map_err(|_| anyhow::anyhow!("a crypto thread panicked"))??;
    }
    Ok((threads, n as f64 / window.as_secs_f64()))
}

/// CPU seconds used by the server and by this process during the measured
/// window (sampled at its start and end, beside the load).
fn sample_cpu(server: u32, warmup: Duration, window: Duration) -> tokio::task::JoinHandle<Option<(f64, f64)>> {
    tokio::spawn(async move {
        let both = || Some((procfs::process_cpu_secs(server)?, procfs::process_cpu_secs(std::process::id())?));
        tokio::time::sleep(warmup).await;
        let before = both()?;
        tokio::time::sleep(window).await;
        let after = both()?;
        Some((after.0 - before.0, after.1 - before.1))
    })
}

/// Runs the closed loop and prints its line, with where the CPU went per certificate.
pub(crate) async fn measure(
    run: &str,
    pid: u32,
    requests: Vec<Request>,
    warmup: Duration,
    window: Duration,
) -> Outcome {
    let clients = requests.len();
    let cpu = sample_cpu(pid, warmup, window);
    let outcome = load::closed_loop(requests, warmup, window).await;
    let certs = outcome.per_sec * window.as_secs_f64();
    let split = match cpu.await.ok().flatten() {
        Some((server, bench)) if certs > 0.0 => format!(
            " server_cpu_ms_per_cert={:.3} bench_cpu_ms_per_cert={:.3}",
            server * 1000.0 / certs,
            bench * 1000.0 / certs
        ),
        _ => String::new(),
    };
    println!("issuance run={run} clients={clients} {outcome}{split}");
    if let Some(e) = &outcome.first_error {
        println!("issuance run={run} first_error={e:?}");
    }
    outcome
}

/// Runs the benchmark and prints its figures.
pub(crate) async fn run(opts: Options) -> Result<()> {
    ensure!(opts.clients >= 1 && opts.seconds >= 1, "need at least one client and one second");
    println!("{}", procfs::machine_line("before"));
    let (warmup, window) = (Duration::from_secs(opts.warmup_secs), Duration::from_secs(opts.seconds));
    let (mut crypto, mut cfssl, mut lightwell) = (None, None, Vec::new());

    // The SQLite server also lends cfssl its TLS certificate and client identities.
    let sqlite = tokio::task::spawn_blocking(TestServer::start).await?;
    let (ids, bundle) = domain_with_clients(&sqlite, opts.clients).await?;
    for run in &opts.runs {
        match run {
            Run::Crypto => {
                let csrs: Vec<(String, String)> = ids.iter().map(|i| (i.name.clone(), i.csr.clone())).collect();
                let (threads, per_sec) =
                    tokio::task::spawn_blocking(move || crypto_limit(&csrs, warmup, window)).await??;
                println!("issuance run=crypto threads={threads} per_s={per_sec:.1}");
                crypto = Some(per_sec);
            }
            Run::Cfssl => {
                let dir = tempfile::tempdir()?;
                let server = Cfssl::start(dir.path(), &sqlite, &bundle)?;
                let outcome =
                    measure("cfssl", server.child.id(), server.requests(&sqlite, &ids)?, warmup, window).await;
                cfssl = Some(outcome.per_sec);
            }
            Run::Sqlite => {
                let pid = sqlite.pid().context("lightwelld is not running")?;
                let outcome = measure("sqlite", pid, lightwell_requests(&sqlite, &ids)?, warmup, window).await;
                lightwell.push(("sqlite", outcome));
            }
            Run::Postgres => {
                let (cluster, server) = tokio::task::spawn_blocking(|| {
                    let cluster = PgCluster::start_durable();
                    let url = cluster.create_database("bench");
                    let server = TestServer::start_on(&url, &[]);
                    (cluster, server)
                })
                .await?;
                let (pg_ids, _) = domain_with_clients(&server, opts.clients).await?;
                let pid = server.pid().context("lightwelld is not running")?;
                let outcome = measure("postgres", pid, lightwell_requests(&server, &pg_ids)?, warmup, window).await;
                lightwell.push(("postgres", outcome));
                tokio::task::spawn_blocking(move || drop((server, cluster))).await?;
            }
        }
    }
    for (db, outcome) in &lightwell {
        let p99 = outcome.latency.map_or(f64::INFINITY, |s| s.p99);
        let mut line = format!("issuance summary db={db} per_s={:.1} p99_ms={p99:.1}", outcome.per_sec);
        let mut met = p99 <= TARGET_P99_MS && outcome.errors == 0;
        if let Some(c) = cfssl {
            let r = outcome.per_sec / c;
            met &= r >= TARGET_VS_CFSSL;
            line += &format!(" vs_cfssl={r:.2} (target {TARGET_VS_CFSSL})");
        }
        if let Some(c) = crypto {
            let r = outcome.per_sec / c;
            met &= r >= TARGET_VS_CRYPTO;
            line += &format!(" vs_crypto={r:.2} (target {TARGET_VS_CRYPTO})");
        }
        line += &format!(" target_p99_ms={TARGET_P99_MS:.0} target={}", if met { "met" } else { "missed" });
        println!("{line}");
    }
    println!("{}", procfs::machine_line("after"));
    Ok(())
}
