//! `lightwell-bench join`: the latency of one join, hosts joining one after
//! another; then N hosts joining at once. Each join is the real agent join
//! (`lightwell_agent::join::join`): a P-256 key made on the host, the join
//! API (token check, machine account, certificate recorded durably), and the
//! host's state dir written with fsynced files.

use std::time::Instant;

use anyhow::{Result, ensure};

use crate::domain::Domain;
use crate::procfs;
use crate::stats::Summary;

/// Options of `lightwell-bench join`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Hosts joining one after another, for the latency of one join.
    #[arg(long, default_value_t = 50)]
    sequential: usize,
    /// Hosts joining at the same time.
    #[arg(long, default_value_t = 1000)]
    concurrent: usize,
}

/// Runs the benchmark and prints its figures.
pub(crate) async fn run(opts: Options) -> Result<()> {
    ensure!(opts.sequential + opts.concurrent >= 1, "nothing to join");
    println!("{}", procfs::machine_line("before"));
    let domain = Domain::start(opts.sequential + opts.concurrent, None).await?;
    let started = Instant::now();
    let (_, one) = domain.join_hosts(0..opts.sequential, 1).await?;
    if let Some(s) = Summary::of(&one) {
        println!("join sequential hosts={} wall_s={:.1} {s}", opts.sequential, started.elapsed().as_secs_f64());
    }
    if opts.concurrent > 0 {
        let n = opts.concurrent;
        let started = Instant::now();
        let outcomes = domain.try_join_hosts(opts.sequential..opts.sequential + n, n).await;
        let wall = started.elapsed().as_secs_f64();
        let joined: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok().map(|(_, d)| *d)).collect();
        let failed = outcomes.iter().filter_map(|o| o.as_ref().err()).collect::<Vec<_>>();
        let figures = Summary::of(&joined).map_or_else(|| "no_join_succeeded".into(), |s| s.to_string());
        println!(
            "join concurrent hosts={n} joined={} failed={} wall_s={wall:.1} joins_per_s={:.1} {figures}",
            joined.len(),
            failed.len(),
            joined.len() as f64 / wall
        );
        if let Some(e) = failed.first() {
            println!("join concurrent first_error={:?}", format!("{e:#}"));
        }
    }
    println!("{}", procfs::machine_line("after"));
    Ok(())
}
