//! `lightwelld`: see `lightwell_server` for the pieces.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    lightwell_server::main()
}
