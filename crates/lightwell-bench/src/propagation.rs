//! `lightwell-bench propagation`: from the revoke call to the new CRL on disk
//! in every agent's state dir.
//!
//! N hosts join through the real join API (`lightwell_agent::join::join`,
//! each with its own key and state dir), N agents run in this process (see
//! [`crate::fleet`]), and then R certificates, issued before the agents
//! started, are revoked one after another. For each revocation the clock
//! starts just before the revoke call and stops, per agent, when that agent's
//! `apply_changes` (or a snapshot) has written a CRL listing the revoked serial.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use crate::domain::Domain;
use crate::fleet::Fleet;
use crate::procfs;
use crate::seed::{self, Seed};
use crate::stats::Summary;

/// The target of issues 4 and 8: p99 under 1 s at 1,000 agents.
const TARGET_P99_MS: f64 = 1000.0;

/// Options of `lightwell-bench propagation`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Hosts to join, each running an agent.
    #[arg(long, default_value_t = 10)]
    agents: usize,
    /// Certificates to revoke, one after another.
    #[arg(long, default_value_t = 5)]
    revocations: usize,
    /// Joins in flight at once.
    #[arg(long, default_value_t = 16)]
    join_concurrency: usize,
    /// How long to wait for every agent after a revocation, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// Put the hosts' state dirs under this directory (for example a tmpfs,
    /// to see what the agents' fsyncs on one shared disk cost) instead of
    /// beside the server's data dir.
    #[arg(long)]
    hosts_dir: Option<PathBuf>,
    /// Revoked certificates seeded into the store before the hosts join, so
    /// each revocation re-signs a CRL of that many entries (what the bytes
    /// per agent per revocation depend on).
    #[arg(long, default_value_t = 0)]
    seed_revoked: usize,
}

/// The pause after revocation `k`: a quiet moment, so one revocation's
/// stragglers do not load the next, plus an offset that steps through the
/// server's 100 ms watch poll by the golden ratio. Equal pauses would start
/// every revocation at the same phase of that poll and measure one point of
/// its 0–100 ms wait over and over.
pub(crate) fn pause(k: usize) -> Duration {
    let phase = (k as f64 * 0.618_034).fract();
    Duration::from_millis(500) + Duration::from_secs_f64(0.1 * phase)
}

/// Stops the server, seeds `n` revoked certificates, starts it again and
/// waits until its CRL lists them (the signer re-signs it at start).
async fn seed_revoked(mut domain: Domain, n: usize) -> Result<Domain> {
    domain.server.stop();
    let db = domain.server.data_dir().join("lightwell.db");
    let add = Seed { certificates: n, revoked: true, users: 0 };
    tokio::task::spawn_blocking(move || seed::seed(&db, add, crate::domain::USER)).await??;
    let mut server = domain.server;
    domain.server = tokio::task::spawn_blocking(move || {
        server.start_again();
        server
    })
    .await?;
    let ca = domain.admin.list_cas(crate::domain::TENANT).await?.into_iter().find(|c| c.is_default);
    let ca = ca.context("no default issuing CA")?;
    let url = format!("{}/pki/{}/ca/{}.crl", domain.server.pki_url(), crate::domain::TENANT, ca.id);
    for _ in 0..1200 {
        let crl = reqwest::get(&url).await?.error_for_status()?.bytes().await?;
        // About 40 octets an entry.
        if crl.len() > n * 30 {
            println!("propagation seeded revoked={n} crl_bytes={}", crl.len());
            return Ok(domain);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the CRL never listed the {n} seeded revocations")
}

/// The tenant's trust revision and the size of an answer: the whole trust
/// state (`GET .../trust`), or with `since` the changes after it.
async fn trust_answer(domain: &Domain, since: Option<i64>) -> Result<(i64, usize)> {
    let base = format!("{}/v1/tenants/{}/trust", domain.server.url(), crate::domain::TENANT);
    let url = match since {
        None => base,
        Some(since) => format!("{base}/changes?since={since}&timeout_secs=1"),
    };
    let body = domain.server.raw().get(&url).send().await?.error_for_status()?.bytes().await?;
    let revision = serde_json::from_slice::<serde_json::Value>(&body)?["revision"].as_i64().context("no revision")?;
    Ok((revision, body.len()))
}

/// Runs the benchmark and prints its figures.
pub(crate) async fn run(opts: Options) -> Result<()> {
    ensure!(opts.agents >= 1 && opts.revocations >= 1, "need at least one agent and one revocation");
    let n = opts.agents;
    println!("{}", procfs::machine_line("before"));
    let mut domain = Domain::start(n, opts.hosts_dir.as_deref()).await?;
    let serials = domain.user_certificates(opts.revocations).await?;
    if opts.seed_revoked > 0 {
        domain = seed_revoked(domain, opts.seed_revoked).await?;
    }

    let started = Instant::now();
    let (dirs, join_latencies) = domain.join_hosts(0..n, opts.join_concurrency).await?;
    if let Some(s) = Summary::of(&join_latencies) {
        println!(
            "joins hosts={n} concurrency={} wall_s={:.1} {s}",
            opts.join_concurrency,
            started.elapsed().as_secs_f64()
        );
    }

    let started = Instant::now();
    let mut fleet = Fleet::start(&dirs)?;
    fleet.ready(Duration::from_secs(opts.timeout_secs.max(60))).await?;
    println!("agents connected={n} wall_s={:.1}", started.elapsed().as_secs_f64());
    // Let the last agents' watch requests reach the server before the clock starts.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let timeout = Duration::from_secs(opts.timeout_secs);
    let (mut all, mut woke, mut syncing) = (Vec::new(), Vec::new(), Vec::new());
    let mut missed = 0;
    let mut bytes = Vec::new();
    for (k, serial) in serials.iter().enumerate() {
        let (before, _) = trust_answer(&domain, None).await?;
        let start = Instant::now();
        domain.revoke(serial).await?;
        let ack = start.elapsed();
        let reached = fleet.reached(serial, start, timeout).await;
        let got: Vec<Duration> = reached.iter().flatten().map(|r| r.written).collect();
        woke.extend(reached.iter().flatten().map(|r| r.woke));
        syncing.extend(reached.iter().flatten().map(|r| r.written - r.woke));
        missed += n - got.len();
        let figures = Summary::of(&got).map_or_else(|| "no agent reached".to_string(), |s| s.to_string());
        println!(
            "propagation agents={n} revocation={} reached={}/{n} ack_ms={:.1} {figures}",
            k + 1,
            got.len(),
            ack.as_secs_f64() * 1000.0
        );
        all.extend(got);
        // What each agent received for this revocation: the changes since the
        // revision before it, against the whole trust state the previous
        // agent (watch, then GET /trust) fetched.
        let (_, full) = trust_answer(&domain, None).await?;
        let (_, change) = trust_answer(&domain, Some(before)).await?;
        println!("propagation revocation={} bytes_per_agent full_fetch={full} change={change}", k + 1);
        bytes.push((full, change));
        tokio::time::sleep(pause(k)).await;
    }
    if !bytes.is_empty() {
        let mean = |f: fn(&(usize, usize)) -> usize| bytes.iter().map(f).sum::<usize>() / bytes.len();
        println!(
            "propagation agents={n} bytes_per_agent_per_revocation full_fetch={} change={}",
            mean(|b| b.0),
            mean(|b| b.1)
        );
    }

    let errors = fleet.errors();
    tokio::task::spawn_blocking(move || fleet.stop()).await?;
    let overall = Summary::of(&all).context("no agent received any revocation")?;
    let met = if missed == 0 && overall.p99 < TARGET_P99_MS { "met" } else { "missed" };
    println!(
        "propagation agents={n} overall samples={} missed={missed} agent_errors={errors} {overall} \
         target_p99_ms={TARGET_P99_MS:.0} target={met}",
        overall.n
    );
    // Where the time goes: until the watch returns (the server's poll and
    // fan-out), then the agent's own fetch and fsynced writes.
    if let (Some(w), Some(s)) = (Summary::of(&woke), Summary::of(&syncing)) {
        println!("propagation agents={n} breakdown watch_returned: {w} | apply_changes: {s}");
    }
    println!("{}", procfs::machine_line("after"));
    Ok(())
}
