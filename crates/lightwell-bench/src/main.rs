//! `lightwell-bench`: measures Lightwell against the targets of its issues
//! and prints the figures; `BENCHMARKS.md` records the method and the
//! results. Nothing here asserts a time: a missed target is a figure to
//! report, not a failure.
//!
//! Every command starts a real `lightwelld` on a temporary data dir (through
//! `lightwell-testkit`) and drives it over its HTTPS API, as agents and
//! administrators do. The binaries are taken from the directory of this
//! executable, or from `LIGHTWELL_BIN_DIR`.
#![forbid(unsafe_code)]

mod crl;
mod domain;
mod fleet;
mod footprint;
mod issuance;
mod join;
mod ldap;
mod load;
mod localca;
mod ocsp;
mod procfs;
mod propagation;
mod scale;
mod seed;
mod stats;
mod workload;

use clap::{Parser, Subcommand};

/// Benchmarks of a real Lightwell server and its agents.
#[derive(Debug, Parser)]
#[command(name = "lightwell-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Time from a revoke call to the new CRL written in every agent's state dir.
    Propagation(propagation::Options),
    /// RSS and CPU time of the real `lightwell agent` process: idle, syncing and renewing.
    AgentFootprint(footprint::Options),
    /// Certificates per second and latency over mutual TLS, against cfssl and the crypto limit.
    Issuance(issuance::Options),
    /// CRL build-and-sign time and size; revocation latency with many already revoked.
    Crl(crl::Options),
    /// Latency of one join; many hosts joining at once.
    Join(join::Options),
    /// Issuance and start-up with a million stored certificates, against an empty database.
    Scale(scale::Options),
    /// LDAP search and bind throughput against OpenLDAP's slapd with the same directory.
    Ldap(ldap::Options),
    /// OCSP responses per second and latency against OpenSSL's own responder.
    Ocsp(ocsp::Options),
    /// The Workload API under 1,000 open streams: agent RSS, updates on every stream, a new process's first SVID.
    Workload(workload::Options),
    /// One new workload process for `workload`: connects, prints when its first SVID came.
    #[command(hide = true)]
    WorkloadProbe(workload::ProbeOptions),
}

fn main() -> anyhow::Result<()> {
    // Agent and client warnings (a failed sync, a retried call) go to stderr; figures to stdout.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIGHTWELL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Propagation(opts) => propagation::run(opts).await,
            Command::AgentFootprint(opts) => footprint::run(opts).await,
            Command::Issuance(opts) => issuance::run(opts).await,
            Command::Crl(opts) => crl::run(opts).await,
            Command::Join(opts) => join::run(opts).await,
            Command::Scale(opts) => scale::run(opts).await,
            Command::Ldap(opts) => ldap::run(opts).await,
            Command::Ocsp(opts) => ocsp::run(opts).await,
            Command::Workload(opts) => workload::run(opts).await,
            Command::WorkloadProbe(opts) => workload::probe(opts).await,
        }
    })
}
