//! Reload hooks: a shell command run after files changed, with the changed
//! paths in `LIGHTWELL_CHANGED_FILES` (newline-separated). TLS software loads
//! CRLs once (OpenSSL's CApath CRLs live as long as the process), so these
//! hooks are part of revocation, not a convenience.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a hook may run before it is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `command` with `sh -c`; returns whether it exited successfully.
pub fn run(command: &str, state_dir: &Path, changed: &[std::path::PathBuf]) -> bool {
    let files: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
    let child = Command::new("sh")
        .args(["-c", command])
        .env("LIGHTWELL_CHANGED_FILES", files.join("\n"))
        .env("LIGHTWELL_STATE_DIR", state_dir)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start hook");
            return false;
        }
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    tracing::warn!(%status, "hook failed");
                }
                return status.success();
            }
            Ok(None) if start.elapsed() > HOOK_TIMEOUT => {
                tracing::warn!("hook timed out; killing it");
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                tracing::warn!(error = %e, "waiting for hook");
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_see_the_changed_files_and_report_failure() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let cmd = format!("printf '%s' \"$LIGHTWELL_CHANGED_FILES\" > {}", out.display());
        assert!(run(&cmd, dir.path(), &["/a/crl.pem".into(), "/a/bundle.pem".into()]));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "/a/crl.pem\n/a/bundle.pem");
        assert!(!run("exit 3", dir.path(), &[]));
    }
}
