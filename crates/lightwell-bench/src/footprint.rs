//! `lightwell-bench agent-footprint`: resident memory and CPU time of the real
//! `lightwell agent` process on a joined host, read from `/proc` every 100 ms
//! in three phases of equal length:
//!
//! 1. idle: connected, long-polling the watch endpoint, nothing changing;
//! 2. syncing: a certificate is revoked every 500 ms, so the agent fetches and
//!    writes a new CRL (and its CApath entry) about twice a second;
//! 3. renewing: the agent is restarted with `LIGHTWELL_CLOCK_OFFSET_SECS` set
//!    20 hours ahead, past the renewal point of every 24-hour host
//!    certificate, so it renews over mutual TLS back to back — a new key, a
//!    CSR, a TLS handshake and three fsynced files per renewal. A worst case,
//!    far busier than a real host ever is.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lightwell_agent::state::StateDir;
use lightwell_agent::status::Status;
use lightwell_testkit::node::Node;

use crate::domain::{Domain, TENANT};
use crate::procfs::{self, mb, sample};

/// The target of issues 4 and 8: agent RSS under 10 MB.
const TARGET_RSS_MB: f64 = 10.0;
const REVOKE_EVERY: Duration = Duration::from_millis(500);
/// 20 h: past two thirds (plus jitter) of a 24 h certificate's life, so each
/// renewed certificate is due again at once.
const RENEWAL_DUE_OFFSET_SECS: &str = "72000";
const HOSTNAME: &str = "node-footprint.bench.example";

/// Options of `lightwell-bench agent-footprint`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Seconds to sample each phase (idle, syncing, renewing).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// Waits until the agent has synced once since it started (`status.json` says so).
async fn first_sync(state: &Path, since_unix: i64) -> Result<()> {
    let state = StateDir::new(state);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if Status::load(&state).last_sync.is_some_and(|t| t >= since_unix) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the agent did not sync within 30 s")
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

async fn machine_certificates(domain: &Domain) -> Result<usize> {
    Ok(domain.admin.list_certificates(TENANT, Some(&format!("machine/{HOSTNAME}"))).await?.len())
}

/// Runs the benchmark and prints its figures.
pub(crate) async fn run(opts: Options) -> Result<()> {
    let length = Duration::from_secs(opts.seconds.max(1));
    println!("{}", procfs::machine_line("before"));
    let domain = Domain::start(1, None).await?;
    let revocations = (length.as_millis() / REVOKE_EVERY.as_millis()) as usize;
    let serials = domain.user_certificates(revocations).await?;

    let mut node = Node::new(&domain.hosts(), HOSTNAME);
    let joined = tokio::task::block_in_place(|| node.join(&domain.server, TENANT, Some(&domain.token)));
    if !joined.status.success() {
        bail!("lightwell join failed: {}", String::from_utf8_lossy(&joined.stderr));
    }

    // Idle.
    let since = unix_now();
    node.start_agent();
    let pid = node.agent_pid().context("the agent did not start")?;
    first_sync(&node.state, since).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = sample(pid, length).await?;
    idle.print("footprint", "idle", "");

    // Syncing: revocations pushed to the agent while it is sampled.
    let revision = node.revision();
    let revoke_all = async {
        for serial in &serials {
            domain.revoke(serial).await?;
            tokio::time::sleep(REVOKE_EVERY).await;
        }
        anyhow::Ok(())
    };
    let (syncing, revoked) = tokio::join!(sample(pid, length), revoke_all);
    let (syncing, ()) = (syncing?, revoked?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    syncing.print(
        "footprint",
        "syncing",
        &format!("revocations={} revision_advanced={}", serials.len(), node.revision() - revision),
    );
    let first_hwm = procfs::read(pid)?.hwm_kib;

    // Renewing: the same agent restarted with renewal due all the time.
    let before = machine_certificates(&domain).await?;
    node.stop_agent();
    node.env("LIGHTWELL_CLOCK_OFFSET_SECS", RENEWAL_DUE_OFFSET_SECS);
    node.start_agent();
    let pid = node.agent_pid().context("the agent did not start")?;
    let renewing = sample(pid, length).await?;
    let second_hwm = procfs::read(pid)?.hwm_kib;
    node.stop_agent();
    let renewals = machine_certificates(&domain).await? - before;
    renewing.print("footprint", "renewing", &format!("renewals={renewals}"));

    let peak_kib = first_hwm.max(second_hwm) as f64;
    let peak = mb(peak_kib);
    let met = if peak < TARGET_RSS_MB { "met" } else { "missed" };
    println!(
        "footprint overall idle_rss_mb={:.2} peak_rss_mb={peak:.2} peak_rss_mib={:.2} \
         target_rss_mb={TARGET_RSS_MB:.0} target={met}",
        mb(idle.rss_mean_kib),
        peak_kib / 1024.0
    );
    println!("{}", procfs::machine_line("after"));
    Ok(())
}
