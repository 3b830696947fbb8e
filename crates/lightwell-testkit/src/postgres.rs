//! A throwaway PostgreSQL cluster for tests: `initdb` and `pg_ctl` on a temp
//! dir, listening on a free loopback port, stopped when dropped. Runs the
//! server as the `postgres` user when the tests run as root (PostgreSQL
//! refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::node::free_port;

/// A running test cluster.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// fsync on: what a benchmark of durable writes needs. Tests run with it off.
    durable: bool,
}

/// Where `initdb` lives: PATH, or Debian's /usr/lib/postgresql/<version>/bin.
fn bin_dir() -> PathBuf {
    if let Ok(path) = std::env::var("LIGHTWELL_PG_BIN") {
        return PathBuf::from(path);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(Result::ok).map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .unwrap_or_else(|| panic!("PostgreSQL server binaries not found; run scripts/test.sh as root to install them"))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgCluster {
    /// Initializes and starts a cluster (trust authentication on loopback,
    /// user `lightwell`) with fsync off, which tests do not need.
    pub fn start() -> Self {
        Self::start_with_fsync(false)
    }

    /// Like [`PgCluster::start`] with fsync on (PostgreSQL's default), so
    /// commits are durable: for benchmarks.
    pub fn start_durable() -> Self {
        Self::start_with_fsync(true)
    }

    fn start_with_fsync(durable: bool) -> Self {
        let dir = tempfile::Builder::new().prefix("lightwell-pg-").tempdir().unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(ok.success(), "chown of the cluster dir to postgres failed");
        }
        let cluster = Self { bin: bin_dir(), port: free_port(), as_postgres, durable, dir };
        let data = cluster.data();
        cluster.run_ok(
            "initdb",
            &["-D", &data, "-U", "lightwell", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
        );
        cluster.pg_ctl_start();
        cluster.reap_with_this_process();
        cluster
    }

    /// A cluster kept in a `static` is never dropped, so a watcher stops it and
    /// removes its files once this test process exits, however it exits.
    fn reap_with_this_process(&self) {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let stop = if self.as_postgres { format!("runuser -u postgres -- {pg_ctl}") } else { pg_ctl };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} -D '{data}' -m immediate -w stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data(),
            dir = self.dir.path().display(),
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run_ok(&self, program: &str, args: &[&str]) -> Output {
        let out = self.command(program).args(args).current_dir(self.dir.path()).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn pg_ctl_start(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync={} -c max_connections=200",
            self.port,
            self.dir.path().display(),
            if self.durable { "on" } else { "off" }
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.run_ok("pg_ctl", &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "-t", "60", "start"]);
    }

    /// Stops the server (fast shutdown); data stays.
    pub fn stop(&self) {
        let _ = self.command("pg_ctl").args(["-D", &self.data(), "-m", "fast", "-w", "stop"]).output();
    }

    /// Starts the server again after [`PgCluster::stop`], on the same port.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a database and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        let port = self.port.to_string();
        let sql = format!("CREATE DATABASE \"{name}\"");
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "lightwell",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &sql,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "CREATE DATABASE failed: {}", String::from_utf8_lossy(&out.stderr));
        self.url(name)
    }

    /// The URL of a database.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://lightwell@127.0.0.1:{}/{database}", self.port)
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").args(["-D", &self.data(), "-m", "immediate", "-w", "stop"]).output();
    }
}
