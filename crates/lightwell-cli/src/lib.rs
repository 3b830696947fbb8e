//! The `lightwell` command line: a thin layer over `lightwell-client` that
//! keeps the CLI contract of DESIGN.md section 4.
#![forbid(unsafe_code)]

mod args;
mod commands;
mod context;
mod output;
mod secrets;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;

/// Entry point of the `lightwell` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.output == args::OutputFormat::Json;
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e, json);
            ExitCode::FAILURE
        }
    }
}
