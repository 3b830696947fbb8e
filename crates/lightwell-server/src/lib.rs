//! `lightwelld`, Lightwell's server: configuration, initialization of the
//! data dir, the HTTPS API (axum over a rustls accept loop that hands the
//! client certificate to handlers), the plain-HTTP PKI listener, metrics and
//! graceful shutdown. Decisions live in `lightwell-core`; this crate wires.
#![forbid(unsafe_code)]

mod api;
mod checkpoint_file;
mod clock;
mod config;
mod datadir;
mod federation;
mod http_conn;
mod ldap;
mod metrics;
mod migrate;
mod pki;
mod serve;
mod tls;
mod watch;

use std::process::ExitCode;

use clap::Parser;

pub use config::{Cli, Command};

/// Entry point of the `lightwelld` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lightwelld: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Init(args)) => datadir::init_command(&args).await,
            Some(Command::Migrate(args)) => migrate::run(&args).await,
            // The settings come from the command line and environment again,
            // parsed as two layers (flags over environment) over the file.
            None => serve::run(config::load(std::env::args_os(), std::env::vars_os())?).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lightwelld: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_new(level.unwrap_or("info"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
