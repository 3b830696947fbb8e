//! `lightwell`: see `lightwell_cli`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    lightwell_cli::main()
}
