//! The README's CLI walk-through, run verbatim against `lightwelld --dev`.
#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::process::{Command, Stdio};

use lightwell_testkit::{bin, bin_dir};

fn walkthrough() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("<!-- walkthrough:start -->").expect("start marker");
    let end = readme.find("<!-- walkthrough:end -->").expect("end marker");
    let block = &readme[start..end];
    let body = block.split_once("```sh\n").unwrap().1;
    body.rsplit_once("```").unwrap().0.to_string()
}

/// Kills the server if the test fails before stopping it, so it never outlives the test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_readme_walkthrough_runs_verbatim() {
    let home = tempfile::tempdir().unwrap();
    // The README's server command, with HOME pointing at a scratch dir.
    let mut server = KillOnDrop(
        Command::new(bin("lightwelld"))
            .arg("--dev")
            .env("HOME", home.path())
            .env_remove("LIGHTWELL_DATA_DIR")
            .current_dir(home.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(server.0.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref().take(20) {
        let line = line.unwrap();
        let last = line.starts_with("operator password: ");
        printed.push(line);
        if last {
            break;
        }
    }
    assert!(printed.iter().any(|l| l == "api: https://127.0.0.1:8443"), "{printed:?}");
    assert!(printed.iter().any(|l| l.starts_with("operator password: ")), "--dev prints operator credentials");

    let script = walkthrough();
    let path = format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("HOME", home.path())
        .env("PATH", path)
        .env_remove("LIGHTWELL_CONFIG_DIR")
        .current_dir(home.path())
        .output()
        .unwrap();
    let _ = Command::new("kill").arg(server.0.id().to_string()).status();
    assert!(server.0.wait().unwrap().success(), "SIGTERM stops lightwelld cleanly");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "walk-through failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("member of: CAAdmins, Users, engineers"), "{stdout}");
    assert!(stdout.contains("audit chain intact"), "{stdout}");
    assert!(stdout.contains("user alice@corp.example"), "{stdout}");
    assert_eq!(stdout.matches("payments.pem: OK").count(), 2, "verifies before and after the rotation: {stdout}");
    assert!(stdout.contains("root-2  root  active"), "{stdout}");
}
