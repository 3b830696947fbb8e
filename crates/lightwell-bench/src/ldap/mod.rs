//! `lightwell-bench ldap`: search and bind throughput of Lightwell's LDAP
//! front end against OpenLDAP's `slapd` (mdb backend) holding the same
//! directory, driven by the same load generator in the same run.
//!
//! Workloads, each run for T seconds over C LDAPS connections with one
//! request in flight per connection, first against Lightwell, then slapd:
//!
//! - `uid-eq`: a subtree search from the base for `(uid=userK)`, K random;
//! - `member-of`: a subtree search from the base for
//!   `(memberOf=cn=gK,cn=Groups,...)`, K random: the members of one group.
//!   Lightwell computes memberOf (with nesting); slapd stores it (its
//!   memberof overlay's attribute, loaded by slapadd) and indexes it.
//!   Both answer the same filter from an equality index;
//! - `simple-bind`: a simple bind as a random user on an open connection;
//!   both servers verify the same argon2id hash;
//! - `sasl-external`: a SASL EXTERNAL bind with a client certificate
//!   (Lightwell only: the baseline would need slapd's authz-regexp set-up).
//!
//! Searches request `cn`, `uid` and `mail`, bound as `user0`.

mod client;
mod directory;
mod slapd;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ldap3_proto::proto::LdapFilter;
use lightwell_proto::IssueCertificateRequest;
use lightwell_testkit::TestServer;
use tokio::task::JoinSet;

use self::client::Connection;
use self::directory::{BASE_DN, Directory};
use self::slapd::Slapd;
use crate::domain::TENANT;
use crate::procfs;
use crate::stats::Summary;

/// The target of issue 6: searches at least as fast as slapd.
const TARGET_RATIO: f64 = 1.0;
const ATTRS: [&str; 3] = ["cn", "uid", "mail"];

/// Options of `lightwell-bench ldap`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Users in the directory.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Groups (each user is in one); default: one per 100 users.
    #[arg(long)]
    groups: Option<usize>,
    /// Concurrent LDAPS connections per workload.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds per workload and server.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    UidEq,
    MemberOf,
    SimpleBind,
    SaslExternal,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::UidEq => "uid-eq",
            Self::MemberOf => "member-of",
            Self::SimpleBind => "simple-bind",
            Self::SaslExternal => "sasl-external",
        }
    }
}

/// A server under test.
#[derive(Clone)]
struct Target {
    name: &'static str,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

/// What one workload did on one server.
struct Outcome {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// A small xorshift generator: which user or group each request names.
struct Pick(u64);

impl Pick {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// One connection's loop until `deadline`; returns each request's latency.
async fn worker(
    target: Target,
    w: Workload,
    dir: Arc<Directory>,
    id: usize,
    deadline: Instant,
) -> Result<Vec<Duration>> {
    let mut conn = Connection::connect(target.addr, target.tls.clone()).await?;
    if w != Workload::SaslExternal {
        conn.simple_bind(&dir.user_dn(0), &dir.password).await?;
    }
    let mut pick = Pick(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let start = Instant::now();
        match w {
            Workload::UidEq => {
                let filter = LdapFilter::Equality("uid".into(), dir.user_name(pick.below(dir.users)));
                let n = conn.search(BASE_DN, filter, &ATTRS).await?;
                anyhow::ensure!(n == 1, "{}: uid search found {n} entries", target.name);
            }
            Workload::MemberOf => {
                let filter = LdapFilter::Equality("memberOf".into(), dir.group_dn(pick.below(dir.groups)));
                let n = conn.search(BASE_DN, filter, &ATTRS).await?;
                anyhow::ensure!(n > 0, "{}: memberOf search found nothing", target.name);
            }
            Workload::SimpleBind => conn.simple_bind(&dir.user_dn(pick.below(dir.users)), &dir.password).await?,
            Workload::SaslExternal => conn.external_bind().await?,
        }
        latencies.push(start.elapsed());
    }
    Ok(latencies)
}

/// Runs a workload on a server over `connections` connections.
async fn run_load(target: &Target, w: Workload, dir: &Arc<Directory>, opts: &Options) -> Result<Outcome> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(opts.seconds);
    let mut set = JoinSet::new();
    for id in 0..opts.connections {
        set.spawn(worker(target.clone(), w, dir.clone(), id, deadline));
    }
    let mut latencies = Vec::new();
    while let Some(done) = set.join_next().await {
        latencies.extend(done.context("a load task panicked")??);
    }
    Ok(Outcome { ops: latencies.len(), elapsed: start.elapsed(), latencies })
}

fn report(w: Workload, target: &Target, users: usize, out: &Outcome) {
    let summary = Summary::of(&out.latencies).map_or_else(|| "no samples".into(), |s| s.to_string());
    println!(
        "ldap workload={} server={} users={users} ops={} ops_per_s={:.0} {summary}",
        w.name(),
        target.name,
        out.ops,
        out.per_second()
    );
}

/// `s` without terminal colour codes (`ESC [ ... m`), as the server's log has them.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// Issues a client certificate to the tenant's administrator for SASL EXTERNAL.
async fn external_identity(server: &TestServer, admin: &lightwell_client::Client) -> Result<Arc<rustls::ClientConfig>> {
    let (key, csr) = lightwell_agent::enroll::key_and_csr("p256", "administrator")?;
    let req = IssueCertificateRequest { csr, profile: Some("client".into()), ..Default::default() };
    let cert = admin.issue_certificate(TENANT, &req).await?;
    client::tls_config(&std::fs::read(server.ca_file())?, Some((&cert.chain_pem, &key)))
}

/// Runs the benchmark and prints one line per workload and server.
pub(crate) async fn run(opts: Options) -> Result<()> {
    println!("{}", procfs::machine_line("before"));
    let groups = opts.groups.unwrap_or(opts.users / 100).max(1);
    println!(
        "ldap setup users={} groups={groups} connections={} seconds={} argon2id=m19456,t2,p1",
        opts.users, opts.connections, opts.seconds
    );
    crate::domain::check_binaries()?;
    let server = tokio::task::spawn_blocking(TestServer::start).await.context("starting lightwelld")?;
    let admin = lightwell_testkit::pki::tenant(&server, TENANT, None).await;
    let dir = Arc::new(Directory::new(opts.users, groups)?);

    let t = Instant::now();
    let (d, db) = (dir.clone(), server.data_dir().join("lightwell.db"));
    tokio::task::spawn_blocking(move || d.seed_lightwell(&db)).await??;
    println!("ldap seeded server=lightwell seconds={:.1}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let (d, data) = (dir.clone(), server.data_dir());
    let slapd =
        tokio::task::spawn_blocking(move || Slapd::start(&d, &data.join("server.pem"), &data.join("server.key")))
            .await??;
    println!("ldap seeded server=slapd pid={} seconds={:.1}", slapd.pid(), t.elapsed().as_secs_f64());

    let tls = client::tls_config(&std::fs::read(server.ca_file())?, None)?;
    let lightwell = Target { name: "lightwell", addr: server.ldaps_addr(), tls: tls.clone() };
    let baseline = Target { name: "slapd", addr: slapd.addr, tls };

    // The first search after a change builds the tenant's tree: its cost, once.
    let mut conn = Connection::connect(lightwell.addr, lightwell.tls.clone()).await?;
    conn.simple_bind(&dir.user_dn(0), &dir.password).await?;
    let t = Instant::now();
    conn.search(BASE_DN, LdapFilter::Equality("uid".into(), dir.user_name(1)), &ATTRS).await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let rss = |pid: Option<u32>| pid.and_then(|p| procfs::read(p).ok()).map_or(0.0, |r| r.rss_kib as f64 / 1024.0);
    println!(
        "ldap first-search server=lightwell users={} ms={ms:.1} rss_mb={:.0} slapd_rss_mb={:.0}",
        opts.users,
        rss(server.pid()),
        rss(Some(slapd.pid()))
    );
    // The server's own account of that rebuild: reading the snapshot, then in all.
    let mut output = server.output();
    for _ in 0..40 {
        if output.contains("LDAP tree rebuilt") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // the log is read by another thread
        output = server.output();
    }
    if let Some(line) = output.lines().rev().find(|l| l.contains("LDAP tree rebuilt")) {
        let field = |name: &str| {
            let plain = strip_ansi(line);
            let at = plain.find(&format!("{name}="))? + name.len() + 1;
            plain[at..].split_whitespace().next().map(str::to_string)
        };
        println!(
            "ldap tree-rebuild server=lightwell entries={} read_ms={} total_ms={}",
            field("entries").unwrap_or_default(),
            field("read_ms").unwrap_or_default(),
            field("total_ms").unwrap_or_default()
        );
    }
    drop(conn);

    for w in [Workload::UidEq, Workload::MemberOf, Workload::SimpleBind] {
        let ours = run_load(&lightwell, w, &dir, &opts).await?;
        report(w, &lightwell, opts.users, &ours);
        let theirs = run_load(&baseline, w, &dir, &opts).await?;
        report(w, &baseline, opts.users, &theirs);
        let ratio = ours.per_second() / theirs.per_second().max(f64::MIN_POSITIVE);
        let verdict = if w == Workload::SimpleBind {
            "target=none"
        } else if ratio >= TARGET_RATIO {
            "target=met"
        } else {
            "target=missed"
        };
        println!("ldap workload={} ratio_lightwell_to_slapd={ratio:.2} {verdict}", w.name());
    }
    let external = Target { tls: external_identity(&server, &admin).await?, ..lightwell.clone() };
    let out = run_load(&external, Workload::SaslExternal, &dir, &opts).await?;
    report(Workload::SaslExternal, &external, opts.users, &out);
    println!("{}", procfs::machine_line("after"));
    Ok(())
}
