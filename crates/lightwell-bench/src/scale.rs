//! `lightwell-bench scale`: issuance throughput and server start-up time on
//! an almost empty database, then on the same database after adding N
//! certificates and M principals (seeded through the store's bulk inserts, see [`crate::seed`]), and
//! the bytes the database grew by per certificate. Same server, same
//! clients, same run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lightwell_testkit::TestServer;

use crate::issuance::{self, Identity};
use crate::procfs;
use crate::seed::{self, Seed};

/// Targets of issue 8.
const TARGET_RATIO: f64 = 0.8;
const TARGET_START_S: f64 = 1.0;
const TARGET_BYTES_PER_CERT: f64 = 1500.0;

/// Options of `lightwell-bench scale`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Certificates to add.
    #[arg(long, default_value_t = 1_000_000)]
    certificates: usize,
    /// Principals (users) to add.
    #[arg(long, default_value_t = 100_000)]
    principals: usize,
    /// Concurrent issuing clients (mutual TLS).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Length of each measured issuance window, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// Size of the SQLite database with its WAL.
fn db_bytes(data: &Path) -> u64 {
    ["lightwell.db", "lightwell.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Stops the server, runs `f` on its stopped data dir, starts it again; returns the start-up time.
async fn restart_with(
    server: TestServer,
    f: impl FnOnce(&Path) -> Result<()> + Send + 'static,
) -> Result<(TestServer, Duration)> {
    tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop();
        f(&server.data_dir())?;
        let started = Instant::now();
        server.start_again();
        Ok((server, started.elapsed()))
    })
    .await?
}

async fn issue(label: &str, server: &TestServer, ids: &[Identity], seconds: u64) -> Result<f64> {
    let pid = server.pid().context("lightwelld is not running")?;
    let requests = issuance::lightwell_requests(server, ids)?;
    let outcome = issuance::measure(label, pid, requests, Duration::from_secs(2), Duration::from_secs(seconds)).await;
    Ok(outcome.per_sec)
}

/// Runs the benchmark and prints its figures.
pub(crate) async fn run(opts: Options) -> Result<()> {
    println!("{}", procfs::machine_line("before"));
    let server = tokio::task::spawn_blocking(TestServer::start).await?;
    let (ids, _) = issuance::domain_with_clients(&server, opts.clients).await?;
    let template = ids.first().context("no clients")?.name.clone();

    let (server, empty_start) = restart_with(server, |_| Ok(())).await?;
    println!("scale db=empty start_s={:.3} db_bytes={}", empty_start.as_secs_f64(), db_bytes(&server.data_dir()));
    let empty_rate = issue("scale-empty", &server, &ids, opts.seconds).await?;

    // Sizes are taken with the server stopped (its WAL checkpointed) just before and after seeding.
    let started = Instant::now();
    let certs = Seed { certificates: opts.certificates, revoked: false, users: 0 };
    let users = Seed { certificates: 0, revoked: false, users: opts.principals };
    let sizes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = sizes.clone();
    let (server, _) = restart_with(server, move |d| {
        let db = d.join("lightwell.db");
        let mut sizes = recorded.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        sizes.push(db_bytes(d));
        seed::seed(&db, certs, &template)?;
        sizes.push(db_bytes(d));
        seed::seed(&db, users, &template)?;
        sizes.push(db_bytes(d));
        Ok(())
    })
    .await?;
    let sizes = sizes.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let [before, with_certs, total] = sizes[..] else { anyhow::bail!("seeding did not run") };
    let per_cert = (with_certs.saturating_sub(before)) as f64 / opts.certificates.max(1) as f64;
    println!(
        "scale seeded certificates={} principals={} seconds={:.1} db_bytes={total} bytes_per_certificate={per_cert:.0} \
         bytes_per_principal={:.0}",
        opts.certificates,
        opts.principals,
        started.elapsed().as_secs_f64(),
        (total.saturating_sub(with_certs)) as f64 / opts.principals.max(1) as f64
    );
    // Start-up on the big database, from a stopped server to the API listening (best of three, page cache warm).
    let mut server = server;
    let mut starts = Vec::new();
    for _ in 0..3 {
        let (s, took) = restart_with(server, |_| Ok(())).await?;
        server = s;
        starts.push(took.as_secs_f64());
    }
    let full_start = starts.iter().copied().fold(f64::INFINITY, f64::min);
    println!("scale db=full start_s={full_start:.3} starts_s={starts:.3?}");
    let full_rate = issue("scale-full", &server, &ids, opts.seconds).await?;

    let ratio = full_rate / empty_rate;
    let met = ratio >= TARGET_RATIO && full_start <= TARGET_START_S && per_cert <= TARGET_BYTES_PER_CERT;
    println!(
        "scale summary empty_per_s={empty_rate:.1} full_per_s={full_rate:.1} ratio={ratio:.2} (target {TARGET_RATIO}) \
         start_s={full_start:.3} (target {TARGET_START_S}) bytes_per_certificate={per_cert:.0} (target {TARGET_BYTES_PER_CERT:.0}) \
         target={}",
        if met { "met" } else { "missed" }
    );
    println!("{}", procfs::machine_line("after"));
    Ok(())
}
