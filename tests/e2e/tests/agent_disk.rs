//! The agent on a disk it cannot write: its state dir on a small tmpfs of
//! its own that fills up (ENOSPC) or is remounted read-only (EROFS). A CRL
//! pushed meanwhile cannot be written: the running agent keeps every last
//! good file byte for byte, leaves no temporary file, says in its log what
//! failed and why, and once the disk is writable again writes the new CRL —
//! the same process, no restart.
//!
//! Mounting needs root (these tests run as root in CI). Where mounting
//! fails, the state dir stays a plain directory made read-only instead
//! (EACCES for a non-root agent), and the test says which it used.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use lightwell_client::Client;
use lightwell_proto::{CreateJoinTokenRequest, IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::ha::{crl_info, serial_key};
use lightwell_testkit::node::{Node, wait_until};
use lightwell_testkit::pki::{self, Files};

const T: &str = "corp.example";
const HOST: &str = "node1.corp.example";

/// How the state dir is made unwritable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disk {
    /// A 512 KiB tmpfs mounted on the state dir.
    Tmpfs,
    /// The mount failed: a plain directory, made read-only.
    ReadOnlyDir,
}

/// The state dir's own disk; unmounted on drop, whatever the test did.
struct StateDisk {
    dir: PathBuf,
    disk: Disk,
}

fn sh(cmd: &mut Command) -> bool {
    cmd.status().is_ok_and(|s| s.success())
}

impl StateDisk {
    /// Moves the (joined) state dir onto a tmpfs of its own, or leaves it where it is if mounting fails.
    fn new(dir: &Path) -> Self {
        let copy = dir.with_extension("copy");
        assert!(sh(Command::new("cp").arg("-a").arg(dir).arg(&copy)));
        let mounted = sh(Command::new("mount").args(["-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs"]).arg(dir));
        let disk = if mounted {
            assert!(sh(Command::new("cp").arg("-a").arg(format!("{}/.", copy.display())).arg(dir)));
            Disk::Tmpfs
        } else {
            Disk::ReadOnlyDir
        };
        eprintln!("state dir on: {disk:?}");
        Self { dir: dir.to_path_buf(), disk }
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Leaves no free block on the tmpfs (or makes the directory read-only).
    fn fill(&self) {
        if self.disk == Disk::ReadOnlyDir {
            return self.read_only();
        }
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let block = [0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        let probe = std::fs::write(self.dir.join("probe"), b"x");
        let _ = std::fs::remove_file(self.dir.join("probe"));
        assert!(probe.is_err(), "the tmpfs still takes a write");
    }

    /// Makes writes fail with EROFS (tmpfs) or EACCES (directory).
    fn read_only(&self) {
        match self.disk {
            Disk::Tmpfs => assert!(sh(Command::new("mount").args(["-o", "remount,ro"]).arg(&self.dir))),
            Disk::ReadOnlyDir => {
                assert!(sh(Command::new("chmod").args(["-R", "a-w"]).arg(&self.dir)));
                let probe = std::fs::write(self.dir.join("probe"), b"x");
                let _ = std::fs::remove_file(self.dir.join("probe"));
                assert!(
                    probe.is_err(),
                    "cannot make {} unwritable without mounting (root without CAP_SYS_ADMIN?)",
                    self.dir.display()
                );
            }
        }
    }

    /// Makes the disk writable again.
    fn writable(&self) {
        match self.disk {
            Disk::Tmpfs => {
                assert!(sh(Command::new("mount").args(["-o", "remount,rw"]).arg(&self.dir)));
                let _ = std::fs::remove_file(self.filler());
            }
            Disk::ReadOnlyDir => assert!(sh(Command::new("chmod").args(["-R", "u+w"]).arg(&self.dir))),
        }
    }

    /// What the failure reads like in the agent's log.
    fn error(&self, full: bool) -> &'static str {
        match (self.disk, full) {
            (Disk::Tmpfs, true) => "No space left on device",
            (Disk::Tmpfs, false) => "Read-only file system",
            (Disk::ReadOnlyDir, _) => "Permission denied",
        }
    }
}

impl Drop for StateDisk {
    fn drop(&mut self) {
        if self.disk == Disk::Tmpfs {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        } else {
            let _ = Command::new("chmod").args(["-R", "u+w"]).arg(&self.dir).status();
        }
    }
}

/// Every file under `dir` (but the filler) with its contents.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                todo.push(path);
            } else if e.file_name() != "filler" {
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// The files that differ between two snapshots, by name (or that only one has).
fn differing(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<PathBuf> {
    let names: std::collections::BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    names.into_iter().filter(|n| before.get(*n) != after.get(*n)).cloned().collect()
}

/// The agent's status file.
fn status(node: &Node) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(node.state.join("status.json")).unwrap()).unwrap()
}

/// The serials the agent's CRL file of `ca` lists.
fn agent_crl_serials(node: &Node, ca: &str) -> Vec<String> {
    let Ok(pem) = std::fs::read_to_string(node.state.join("crl").join(format!("{ca}.crl.pem"))) else { return vec![] };
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).map(|der| crl_info(&der).serials).unwrap_or_default()
}

/// A joined host whose running agent has synced once, on its own disk.
async fn joined_agent(server: &TestServer, admin: &Client) -> (Node, StateDisk) {
    let dir = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut node = Node::new(&dir, HOST);
    let req = CreateJoinTokenRequest { hostname: Some(HOST.into()), ..Default::default() };
    let token = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
    let out = node.join(server, T, Some(&token));
    assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
    let disk = StateDisk::new(&node.state);
    node.start_agent();
    // The running agent's first sync is done when it recorded one (the join's status has none).
    assert!(wait_until(Duration::from_secs(30), || !status(&node)["last_sync"].is_null()), "the agent's first sync");
    // The first pass fetches the OCSP staple after it records the sync: the
    // files are settled once ocsp.der is there (written atomically).
    assert!(wait_until(Duration::from_secs(30), || node.state.join("ocsp.der").exists()), "the agent's first staple");
    (node, disk)
}

/// Revokes a fresh certificate: the issuing CA's CRL changes and is pushed to agents.
async fn revoke_one(admin: &Client, files: &Files) -> String {
    let (_, csr) = files.csr("c", "ec:P-256", "/CN=administrator", &[]);
    let cert = admin.issue_certificate(T, &IssueCertificateRequest { csr, ..Default::default() }).await.unwrap();
    let req = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    admin.revoke_certificate(T, &cert.serial, &req).await.unwrap();
    cert.serial
}

/// The scenario both disks go through; `full` picks ENOSPC over a read-only remount.
async fn keeps_its_files_and_recovers(full: bool) {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let (mut node, disk) = joined_agent(&server, &admin).await;
    let ca = admin.list_cas(T).await.unwrap().into_iter().find(|c| c.is_default).unwrap().id;
    let pid = node.agent_pid();
    let good = files_under(&node.state);
    let log_before = std::fs::read_to_string(node.agent_log()).unwrap().len();

    if full {
        disk.fill()
    } else {
        disk.read_only()
    }
    let files = Files::new();
    let serial = revoke_one(&admin, &files).await;
    let revision = server.client().trust(T).await.unwrap().revision;
    let error = disk.error(full);
    let crl_file = node.state.join("crl").join(format!("{ca}.crl.pem"));
    let reported = wait_until(Duration::from_secs(30), || {
        let log = std::fs::read_to_string(node.agent_log()).unwrap();
        log[log_before..].lines().any(|l| l.contains(error) && l.contains(&crl_file.display().to_string()))
    });
    let log = std::fs::read_to_string(node.agent_log()).unwrap();
    assert!(reported, "the agent's log names the file and \"{error}\":\n{}", &log[log_before..]);
    assert!(node.agent_running(), "the agent keeps running");
    let changed = differing(&good, &files_under(&node.state));
    assert!(changed.is_empty(), "every last good file is kept byte for byte, no temporary file is left: {changed:?}");

    disk.writable();
    let recovered = wait_until(Duration::from_secs(90), || {
        agent_crl_serials(&node, &ca).contains(&serial_key(&serial)) && node.revision() >= revision
    });
    assert!(
        recovered,
        "the agent wrote the new CRL once the disk was writable:\n{}",
        std::fs::read_to_string(node.agent_log()).unwrap()
    );
    assert_eq!(node.agent_pid(), pid, "the same agent process");
    assert!(node.agent_running());
    let leftovers: Vec<_> =
        files_under(&node.state).into_keys().filter(|p| p.to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    node.stop_agent();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_on_a_full_disk_keeps_its_last_good_files_reports_and_recovers() {
    keeps_its_files_and_recovers(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_on_a_read_only_disk_keeps_its_last_good_files_reports_and_recovers() {
    keeps_its_files_and_recovers(false).await;
}
