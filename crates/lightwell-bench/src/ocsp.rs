//! `lightwell-bench ocsp`: OCSP responses per second and latency of
//! Lightwell's responder (the PKI listener's `POST /pki/{tenant}/ocsp`)
//! against OpenSSL's own responder (`openssl ocsp -index ... -port`, with
//! `-multi` workers, one per CPU) answering for a CA of its own, in the same
//! run, driven by the same closed-loop load generator.
//!
//! Both answer the same shape of request, made by `openssl ocsp -reqout`:
//! one SHA-1 CertID, no nonce (what browsers, nginx and HAProxy send, and
//! what lets a responder answer from a pre-signed response), chosen at
//! random among N issued certificates of which one in ten is revoked. Each
//! answer must be HTTP 200 with an OCSPResponse whose status is
//! `successful`; anything else counts as an error.
//!
//! The load generator runs in this process, on the same CPUs as the
//! responder under test, so on a small machine throughput can be the
//! client's limit for both; the responder's own CPU time per response
//! (its process, and OpenSSL's `-multi` workers, read from `/proc` across
//! warm-up and window, divided by the responses of both at the window's
//! rate) is the figure that does not depend on the client.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use lightwell_proto::{IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, Files};

use crate::domain::TENANT;
use crate::load::{self, Outcome, Request};
use crate::procfs;

/// Targets of issue 18: at least 5× OpenSSL's responder, p99 at most 5 ms.
const TARGET_RATIO: f64 = 5.0;
const TARGET_P99_MS: f64 = 5.0;
const WARMUP: Duration = Duration::from_secs(2);

/// Options of `lightwell-bench ocsp`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Concurrent clients (one request in flight each).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Certificates to ask about (one in ten revoked).
    #[arg(long, default_value_t = 100)]
    certificates: usize,
    /// Measured seconds per responder (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// OCSPResponse status of a DER answer: 0 is successful.
fn response_status(der: &[u8]) -> Option<u8> {
    lightwell_ca::ocsp::ParsedResponse::parse(der).ok().map(|r| r.status)
}

fn openssl(args: &[&str], dir: &Path) -> Result<()> {
    let out = Command::new("openssl").args(args).current_dir(dir).output().context("running openssl")?;
    ensure!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// DER OCSP requests for `serials` (hex) of `issuer`, made by OpenSSL.
fn requests(dir: &Path, issuer: &Path, serials: &[String]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for (i, serial) in serials.iter().enumerate() {
        let file = dir.join(format!("req-{i}.der"));
        let (issuer, file_arg) = (issuer.to_str().unwrap_or_default(), file.to_str().unwrap_or_default());
        openssl(
            &["ocsp", "-issuer", issuer, "-serial", &format!("0x{serial}"), "-no_nonce", "-reqout", file_arg],
            dir,
        )?;
        out.push(std::fs::read(&file)?);
    }
    Ok(out)
}

/// 64 closed-loop clients POSTing random requests of `bodies` to `url`.
async fn drive(url: &str, bodies: Arc<Vec<Vec<u8>>>, clients: usize, window: Duration) -> Result<Outcome> {
    let mut loops: Vec<Request> = Vec::new();
    for _ in 0..clients {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let (url, bodies) = (url.to_string(), bodies.clone());
        loops.push(Arc::new(move || {
            let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
            Box::pin(async move {
                let pick = usize::from(u16::from_le_bytes(lightwell_ca::random::bytes::<2>()?)) % bodies.len();
                let answer = client
                    .post(&url)
                    .header("content-type", "application/ocsp-request")
                    .body(bodies[pick].clone())
                    .send()
                    .await?;
                ensure!(answer.status() == 200, "HTTP {}", answer.status());
                let der = answer.bytes().await?;
                ensure!(response_status(&der) == Some(0), "OCSP response status {:?}", response_status(&der));
                Ok(())
            })
        }));
    }
    Ok(load::closed_loop(loops, WARMUP, window).await)
}

/// CPU seconds of `pid` and its child processes (OpenSSL's `-multi` workers).
fn tree_cpu_secs(pid: u32) -> f64 {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let own = procfs::process_cpu_secs(pid).unwrap_or(0.0);
    own + children.split_whitespace().filter_map(|c| c.parse().ok()).filter_map(procfs::process_cpu_secs).sum::<f64>()
}

/// Drives `url` and reports the responder's CPU time per response (ms).
async fn measure(
    pid: u32,
    url: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    clients: usize,
    window: Duration,
) -> Result<(Outcome, f64)> {
    let before = tree_cpu_secs(pid);
    let outcome = drive(url, bodies, clients, window).await?;
    let spent = tree_cpu_secs(pid) - before;
    let responses = outcome.per_sec * (window + WARMUP).as_secs_f64();
    Ok((outcome, if responses > 0.0 { spent * 1000.0 / responses } else { f64::INFINITY }))
}

/// OpenSSL's responder for a CA of its own that issued `serials` (the
/// index lists them, one in ten revoked), signing with a delegated
/// responder certificate as Lightwell does.
struct OpensslResponder {
    child: Child,
    issuer: PathBuf,
}

impl OpensslResponder {
    fn start(dir: &Path, serials: &[String], port: u16) -> Result<Self> {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=Bench OCSP CA"];
        ca.extend(ec);
        ca.extend(["-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(&ca, dir)?;
        let mut csr = vec!["req", "-new", "-subj", "/CN=Bench OCSP responder"];
        csr.extend(ec);
        csr.extend(["-keyout", "rsp.key", "-out", "rsp.csr"]);
        openssl(&csr, dir)?;
        std::fs::write(dir.join("rsp.ext"), "extendedKeyUsage=OCSPSigning\nkeyUsage=critical,digitalSignature\n")?;
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "rsp.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "rsp.ext",
                "-out",
                "rsp.pem",
            ],
            dir,
        )?;
        let mut index = String::new();
        for (i, serial) in serials.iter().enumerate() {
            let serial = serial.to_uppercase();
            if i % 10 == 0 {
                index.push_str(&format!(
                    "R\t301231000000Z\t251201000000Z,keyCompromise\t{serial}\tunknown\t/CN=leaf{i}\n"
                ));
            } else {
                index.push_str(&format!("V\t301231000000Z\t\t{serial}\tunknown\t/CN=leaf{i}\n"));
            }
        }
        std::fs::write(dir.join("index.txt"), index)?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).to_string();
        let child = Command::new("openssl")
            .args([
                "ocsp",
                "-index",
                "index.txt",
                "-port",
                &port.to_string(),
                "-rsigner",
                "rsp.pem",
                "-rkey",
                "rsp.key",
            ])
            .args(["-CA", "ca.pem", "-ndays", "1", "-multi", &workers])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting openssl ocsp")?;
        Ok(Self { child, issuer: dir.join("ca.pem") })
    }
}

impl Drop for OpensslResponder {
    fn drop(&mut self) {
        // `-multi` forks workers into the responder's process group.
        let _ = Command::new("pkill").args(["-P", &self.child.id().to_string()]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn run(opts: Options) -> Result<()> {
    crate::domain::check_binaries()?;
    ensure!(opts.certificates >= 10 && opts.clients > 0, "at least 10 certificates and one client");
    let window = Duration::from_secs(opts.seconds);
    let server = TestServer::start();
    let admin = pki::tenant(&server, TENANT, None).await;
    let files = Files::new();
    let (_, csr) = files.csr("leaf", "ec:P-256", "/CN=administrator", &[]);
    let (mut serials, mut issuing) = (Vec::new(), None);
    for i in 0..opts.certificates {
        let request = IssueCertificateRequest { csr: csr.clone(), ..Default::default() };
        let cert = admin.issue_certificate(TENANT, &request).await?;
        if i % 10 == 0 {
            let why = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
            admin.revoke_certificate(TENANT, &cert.serial, &why).await?;
        }
        if issuing.is_none() {
            let second = cert.chain_pem.match_indices("-----BEGIN CERTIFICATE-----").nth(1).map(|(at, _)| at);
            let Some(second) = second else { bail!("the chain holds no issuing CA") };
            issuing = Some(files.write("issuing.pem", &cert.chain_pem[second..]));
        }
        serials.push(cert.serial);
    }
    let issuing = issuing.context("no certificate issued")?;
    let dir = files.path("openssl");
    std::fs::create_dir_all(&dir)?;
    let lightwell_bodies = Arc::new(requests(&dir, &issuing, &serials)?);
    let url = format!("{}/pki/{TENANT}/ocsp", server.pki_url());
    println!(
        "ocsp certificates={} revoked={} clients={} seconds={} cpus={} load1={:.2}",
        opts.certificates,
        opts.certificates.div_ceil(10),
        opts.clients,
        opts.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        procfs::load_average().unwrap_or(0.0)
    );

    let pid = server.pid().context("lightwelld is not running")?;
    let (lw, lw_cpu) = measure(pid, &url, lightwell_bodies, opts.clients, window).await?;
    println!("ocsp server=lightwell {lw} server_cpu_ms_per_response={lw_cpu:.3}");
    if let Some(e) = &lw.first_error {
        println!("ocsp server=lightwell first_error={e:?}");
    }
    drop(server);

    let port = lightwell_testkit::node::free_port();
    let responder = OpensslResponder::start(&dir, &serials, port)?;
    let baseline_bodies = Arc::new(requests(&dir, &responder.issuer, &serials)?);
    let baseline_url = format!("http://127.0.0.1:{port}/");
    // Wait for the responder to listen.
    let probe = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        let answer = probe
            .post(&baseline_url)
            .header("content-type", "application/ocsp-request")
            .body(baseline_bodies[1].clone());
        if answer.send().await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(up, "openssl ocsp did not answer on port {port}");
    let (ossl, ossl_cpu) = measure(responder.child.id(), &baseline_url, baseline_bodies, opts.clients, window).await?;
    println!("ocsp server=openssl {ossl} server_cpu_ms_per_response={ossl_cpu:.3}");
    if let Some(e) = &ossl.first_error {
        println!("ocsp server=openssl first_error={e:?}");
    }
    drop(responder);

    let ratio = if ossl.per_sec > 0.0 { lw.per_sec / ossl.per_sec } else { f64::INFINITY };
    let p99 = lw.latency.map_or(f64::INFINITY, |s| s.p99);
    let verdict = |met: bool| if met { "met" } else { "missed" };
    println!(
        "ocsp ratio_vs_openssl={ratio:.2} target={TARGET_RATIO} {} cpu_ratio_openssl_over_lightwell={:.2} \
         p99_ms={p99:.1} target_ms={TARGET_P99_MS} {}",
        verdict(ratio >= TARGET_RATIO),
        ossl_cpu / lw_cpu,
        verdict(p99 <= TARGET_P99_MS)
    );
    Ok(())
}
