//! `lightwell-bench workload`: the SPIFFE Workload API of one host's agent
//! under 1,000 open `FetchX509SVID` streams (issue 19).
//!
//! One host joins and runs the real `lightwell agent` (its per-uid
//! connection limit raised above the stream count, see
//! [`CONNECTIONS_PER_UID`]). Three workload entries select this bench's uid,
//! so every stream matches all three and each message carries three SVIDs;
//! the agent holds one key per entry, three in all, whatever the number of
//! streams. Then:
//!
//! 1. Memory: the agent's RSS from `/proc`, idle (SVIDs issued, no stream)
//!    and with N streams open (one connection each, as N workload processes
//!    hold them), each having received its first SVID.
//! 2. Updates, with every stream open: (a) a certificate is revoked, so the
//!    CRL changes and every stream gets a message with the new CRL — from the
//!    start of the revoke call to each stream's message; (b) one entry is
//!    deleted — to each stream's message without its SVID; (c) the 60 s entry
//!    is rotated by the agent at half its life — from the moment the agent
//!    logged the new SVID (`X.509-SVID issued`, wall clock) to each stream's
//!    message carrying it.
//! 3. First SVID of a new workload process, the agent warm: this executable
//!    started again as `workload-probe`, which connects and reads its first
//!    message; timed from the spawn (by this process) and from the connect
//!    (by the probe). Attestation reads the caller's `/proc`, so only a new
//!    process is an honest sample.

mod client;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use lightwell_proto::CreateWorkloadRequest;
use lightwell_testkit::node::Node;
use tokio::io::AsyncBufReadExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use self::client::{Update, X509Stream, normal_serial};
use crate::domain::{Domain, TENANT};
use crate::procfs::{self, mb};
use crate::stats::Summary;

/// Issue 19's targets: agent RSS with 1,000 streams, keys included; every
/// stream updated after a rotation or revocation; a new process's first SVID.
const TARGET_RSS_MB: f64 = 40.0;
const TARGET_UPDATE_P99_MS: f64 = 1000.0;
const TARGET_FIRST_SVID_P99_MS: f64 = 50.0;

const HOSTNAME: &str = "node-workload.bench.example";
const SERVICE: &str = "bench-workload";
/// Never changes during the run.
const STEADY: &str = "bench-steady";
/// The shortest TTL an entry may have: the agent renews it every 30 s.
const ROTATING: &str = "bench-rotating";
/// Deleted once, after the revocations.
const DELETED: &str = "bench-deleted";
/// Entry name, SPIFFE ID path under the service, TTL.
const ENTRIES: [(&str, &str, &str); 3] =
    [(STEADY, "steady", "1h"), (ROTATING, "rotating", "60s"), (DELETED, "deleted", "1h")];
/// Room above the streams for the readiness check and the probes
/// (`LIGHTWELL_AGENT_WORKLOAD_CONNECTIONS_PER_UID`; the default is 256).
const CONNECTIONS_PER_UID: usize = 64;
/// A rotation is due 30 s after the last; wait a little longer.
const ROTATION_WAIT: Duration = Duration::from_secs(45);

/// Options of `lightwell-bench workload`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// `FetchX509SVID` streams held open, each on its own connection.
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// Certificates revoked one after another with every stream open.
    #[arg(long, default_value_t = 5)]
    revocations: usize,
    /// Rotations of the 60 s entry to wait for (one every 30 s); 0 skips them.
    #[arg(long, default_value_t = 2)]
    rotations: usize,
    /// New workload processes started one after another, each timed to its first SVID.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Streams being opened at once.
    #[arg(long, default_value_t = 64)]
    open_concurrency: usize,
    /// Seconds to sample the agent's memory, idle and with the streams open.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// How long to wait for every stream after a change, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// An environment variable for the agent, `KEY=VALUE` (repeatable): for
    /// example glibc's `GLIBC_TUNABLES`, to see what its allocator keeps.
    #[arg(long, value_name = "KEY=VALUE")]
    agent_env: Vec<String>,
}

/// Options of `lightwell-bench workload-probe`: one new workload process.
#[derive(Debug, clap::Args)]
pub(crate) struct ProbeOptions {
    /// The agent's Workload API socket.
    #[arg(long)]
    socket: PathBuf,
}

/// What one stream received.
#[derive(Debug, Default)]
struct Received {
    updates: Vec<Update>,
    /// Why the stream ended, if it did.
    ended: Option<String>,
}

fn lock(r: &Mutex<Received>) -> MutexGuard<'_, Received> {
    r.lock().unwrap_or_else(|e| e.into_inner())
}

/// N open streams, each read by its own task.
#[derive(Debug)]
struct Streams {
    received: Vec<Arc<Mutex<Received>>>,
    _tasks: JoinSet<()>,
}

impl Streams {
    /// Opens `n` streams, `concurrency` at a time, and waits until each has its first message.
    async fn open(socket: &Path, n: usize, concurrency: usize, timeout: Duration) -> Result<Self> {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let received: Vec<_> = (0..n).map(|_| Arc::new(Mutex::new(Received::default()))).collect();
        let mut tasks = JoinSet::new();
        for slot in &received {
            let (slot, permits, socket) = (slot.clone(), permits.clone(), socket.to_path_buf());
            tasks.spawn(async move {
                let outcome = async {
                    let mut permit = Some(permits.acquire_owned().await?);
                    let mut stream = X509Stream::open(&socket).await?;
                    while let Some(update) = stream.next().await? {
                        let mut r = lock(&slot);
                        // Only the latest CRLs are looked at again.
                        if let Some(previous) = r.updates.last_mut() {
                            previous.crls = Vec::new();
                        }
                        r.updates.push(update);
                        permit.take();
                    }
                    anyhow::Ok("the agent ended the stream".to_string())
                };
                let why = outcome.await.unwrap_or_else(|e| format!("{e:#}"));
                lock(&slot).ended = Some(why);
            });
        }
        let streams = Self { received, _tasks: tasks };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(why) = streams.received.iter().find_map(|r| lock(r).ended.clone()) {
                bail!("a stream ended before the others were open: {why}");
            }
            if streams.counts().iter().all(|&c| c > 0) {
                return Ok(streams);
            }
            if Instant::now() > deadline {
                bail!("not every stream had its first SVID within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Messages received so far, per stream.
    fn counts(&self) -> Vec<usize> {
        self.received.iter().map(|r| lock(r).updates.len()).collect()
    }

    /// The last message of stream `i`.
    fn latest(&self, i: usize) -> Option<Update> {
        lock(&self.received[i]).updates.last().cloned()
    }

    /// Per stream, the first message after the `since[i]` it had whose
    /// `changed(message, last message before)` holds; waits until every
    /// stream has one or `timeout` passes (`None` for a stream that had none).
    async fn first_after(
        &self,
        since: &[usize],
        timeout: Duration,
        changed: impl Fn(&Update, &Update) -> bool,
    ) -> Vec<Option<Update>> {
        let mut found: Vec<Option<Update>> = vec![None; self.received.len()];
        let deadline = Instant::now() + timeout;
        loop {
            for (i, slot) in found.iter_mut().enumerate().filter(|(_, f)| f.is_none()) {
                let r = lock(&self.received[i]);
                let Some(before) = since[i].checked_sub(1).and_then(|b| r.updates.get(b)) else { continue };
                *slot = r.updates[since[i]..].iter().find(|u| changed(u, before)).cloned();
            }
            if found.iter().all(Option::is_some) || Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Streams that ended, with the first reason.
    fn ended(&self) -> (usize, Option<String>) {
        let reasons: Vec<String> = self.received.iter().filter_map(|r| lock(r).ended.clone()).collect();
        (reasons.len(), reasons.into_iter().next())
    }
}

/// Whether one of `crls` (DER) lists `serial` (hex).
fn lists(crls: &[Vec<u8>], serial: &str) -> bool {
    let want = normal_serial(serial);
    crls.iter()
        .filter_map(|der| x509_parser::parse_x509_crl(der).ok())
        .any(|(_, crl)| crl.iter_revoked_certificates().any(|r| normal_serial(&hex::encode(r.raw_serial())) == want))
}

/// `line` without ANSI colour sequences (the agent's log colours its fields unless told not to).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

/// The X.509-SVIDs of `entry` the agent logged as issued: (serial, when), oldest first.
fn issuances(log: &Path, entry: &str) -> Vec<(String, SystemTime)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let field = format!(" entry={entry} ");
    text.lines()
        .map(plain)
        .filter(|l| l.contains("X.509-SVID issued") && l.contains(&field))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let at = time::OffsetDateTime::parse(words.next()?, &time::format_description::well_known::Rfc3339).ok()?;
            let serial = words.find_map(|w| w.strip_prefix("serial="))?;
            Some((serial.to_string(), SystemTime::from(at)))
        })
        .collect()
}

/// Waits until the agent logs an SVID of `entry` after the `known` it had logged.
async fn next_issuance(log: &Path, entry: &str, known: usize) -> Result<(String, SystemTime)> {
    let deadline = Instant::now() + ROTATION_WAIT;
    while Instant::now() < deadline {
        if let Some(issued) = issuances(log, entry).into_iter().nth(known) {
            return Ok(issued);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the agent logged no new SVID of {entry} within {ROTATION_WAIT:?}")
}

/// Waits until the agent answers with every entry's SVID.
async fn ready(node: &Node) -> Result<()> {
    let socket = node.workload_socket();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::from("no socket");
    while Instant::now() < deadline {
        if socket.exists() {
            let first = async { X509Stream::open(&socket).await?.next().await };
            match tokio::time::timeout(Duration::from_secs(5), first).await {
                Ok(Ok(Some(u))) if u.svids.len() == ENTRIES.len() => return Ok(()),
                Ok(Ok(u)) => last = format!("{} SVIDs", u.map_or(0, |u| u.svids.len())),
                Ok(Err(e)) => last = format!("{e:#}"),
                Err(_) => last = "no answer within 5 s".into(),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the agent did not serve every entry's SVID within 60 s ({last}); its log: {}", node.agent_log().display())
}

/// Joins the host, creates the service and its entries, starts the agent.
async fn host(domain: &Domain, streams: usize, agent_env: &[String]) -> Result<Node> {
    let mut node = Node::new(&domain.hosts(), HOSTNAME);
    let joined = tokio::task::block_in_place(|| node.join(&domain.server, TENANT, Some(&domain.token)));
    if !joined.status.success() {
        bail!("lightwell join failed: {}", String::from_utf8_lossy(&joined.stderr));
    }
    lightwell_testkit::pki::host(&domain.admin, TENANT, "services", SERVICE, &[], &[]).await;
    let uid = std::fs::metadata("/proc/self")?.uid();
    for (name, path, ttl) in ENTRIES {
        let req = CreateWorkloadRequest {
            name: name.into(),
            service: SERVICE.into(),
            path: Some(path.into()),
            hosts: vec![HOSTNAME.into()],
            selectors: vec![format!("unix:uid:{uid}")],
            ttl: Some(ttl.into()),
            ..Default::default()
        };
        domain.admin.create_workload(TENANT, &req).await.with_context(|| format!("creating entry {name}"))?;
    }
    node.env("LIGHTWELL_AGENT_WORKLOAD_CONNECTIONS_PER_UID", &(streams + CONNECTIONS_PER_UID).to_string());
    // Plain log lines: the bench reads the agent's issuance times from them.
    node.env("NO_COLOR", "1");
    for pair in agent_env {
        let (key, value) = pair.split_once('=').with_context(|| format!("--agent-env {pair}: not KEY=VALUE"))?;
        node.env(key, value);
    }
    node.start_agent();
    ready(&node).await?;
    Ok(node)
}

/// One kind of change, over all its rounds.
#[derive(Debug, Default)]
struct Rounds {
    latencies: Vec<Duration>,
    /// Each stream's delay after the first stream of its round: the fan-out.
    spread: Vec<Duration>,
    missed: usize,
}

impl Rounds {
    /// Adds a round: how long each stream took to get the change (`None`:
    /// it did not); prints its line.
    fn add(&mut self, kind: &str, round: usize, got: &[Option<Duration>], extra: &str) {
        let latencies: Vec<Duration> = got.iter().flatten().copied().collect();
        let first = latencies.iter().min().copied().unwrap_or_default();
        self.spread.extend(latencies.iter().map(|l| l.saturating_sub(first)));
        self.missed += got.len() - latencies.len();
        let figures = Summary::of(&latencies).map_or_else(|| "no stream reached".to_string(), |s| s.to_string());
        println!(
            "workload update kind={kind} round={round} reached={}/{} first_ms={:.1} {figures} {extra}",
            latencies.len(),
            got.len(),
            first.as_secs_f64() * 1000.0
        );
        self.latencies.extend(latencies);
    }

    /// Prints the summary of every round; returns whether the target was met.
    fn print(&self, kind: &str) -> bool {
        let Some(all) = Summary::of(&self.latencies) else {
            println!("workload update kind={kind} samples=0 missed={} target=missed", self.missed);
            return false;
        };
        let met = self.missed == 0 && all.p99 <= TARGET_UPDATE_P99_MS;
        let spread = Summary::of(&self.spread).map_or_else(String::new, |s| s.to_string());
        println!(
            "workload update kind={kind} samples={} missed={} {all} target_p99_ms={TARGET_UPDATE_P99_MS:.0} target={}",
            all.n,
            self.missed,
            if met { "met" } else { "missed" }
        );
        println!("workload update kind={kind} after_first_stream {spread}");
        met
    }
}

/// How long after `start` each stream got its message.
fn since(got: &[Option<Update>], start: Instant) -> Vec<Option<Duration>> {
    got.iter().map(|u| u.as_ref().map(|u| u.at.saturating_duration_since(start))).collect()
}

/// (a) Certificates revoked: the CRL on every stream.
async fn revocations(domain: &Domain, streams: &Streams, serials: &[String], timeout: Duration) -> Result<Rounds> {
    let mut rounds = Rounds::default();
    for (k, serial) in serials.iter().enumerate() {
        let before = streams.counts();
        let start = Instant::now();
        domain.revoke(serial).await?;
        let ack = start.elapsed();
        let got = streams.first_after(&before, timeout, |u, b| u.crl_digest != b.crl_digest).await;
        let listed = streams.latest(0).is_some_and(|u| lists(&u.crls, serial));
        let extra = format!("ack_ms={:.1} crl_lists_serial={listed}", ack.as_secs_f64() * 1000.0);
        rounds.add("revocation", k + 1, &since(&got, start), &extra);
        tokio::time::sleep(crate::propagation::pause(k)).await;
    }
    Ok(rounds)
}

/// (b) An entry deleted: its SVID gone from every stream.
async fn deletion(domain: &Domain, streams: &Streams, timeout: Duration) -> Result<Rounds> {
    let mut rounds = Rounds::default();
    let before = streams.counts();
    let start = Instant::now();
    let revoked = domain.admin.delete_workload(TENANT, DELETED).await?;
    let ack = start.elapsed();
    let got = streams.first_after(&before, timeout, |u, _| u.serial(DELETED).is_none()).await;
    // The deletion revokes the entry's SVID: the new CRL comes first, in a message of its own.
    let crl = streams.first_after(&before, timeout, |u, b| u.crl_digest != b.crl_digest).await;
    let crl = Summary::of(&since(&crl, start).into_iter().flatten().collect::<Vec<_>>());
    let extra = format!(
        "ack_ms={:.1} revoked={} new_crl: {}",
        ack.as_secs_f64() * 1000.0,
        revoked.revoked.len(),
        crl.map_or_else(|| "none".to_string(), |s| s.to_string())
    );
    rounds.add("deletion", 1, &since(&got, start), &extra);
    Ok(rounds)
}

/// (c) The agent's rotations of the 60 s entry: the new SVID on every stream.
async fn rotations(node: &Node, streams: &Streams, count: usize, timeout: Duration) -> Result<Rounds> {
    let mut rounds = Rounds::default();
    let log = node.agent_log();
    for k in 0..count {
        // Counted before the log is read: a rotation logged in between is
        // taken as known, and the next one is measured.
        let before = streams.counts();
        let known = issuances(&log, ROTATING).len();
        let (serial, issued) = next_issuance(&log, ROTATING, known).await?;
        let got = streams.first_after(&before, timeout, |u, _| u.serial(ROTATING) == Some(serial.as_str())).await;
        // The agent's log and the streams' arrivals meet on the wall clock.
        let after_issue: Vec<_> =
            got.iter().map(|u| u.as_ref().map(|u| u.wall.duration_since(issued).unwrap_or_default())).collect();
        rounds.add("rotation", k + 1, &after_issue, &format!("serial={serial}"));
    }
    Ok(rounds)
}

/// (3) New processes, one after another: from spawn, and from connect, to the first SVID.
async fn first_svids(socket: &Path, samples: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let exe = std::env::current_exe()?;
    let (mut from_spawn, mut from_connect) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for _ in 0..samples {
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&exe)
            .arg("workload-probe")
            .arg("--socket")
            .arg(socket)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("the probe has no stdout")?;
        let mut line = String::new();
        let mut stdout = tokio::io::BufReader::new(stdout);
        let read = stdout.read_line(&mut line);
        tokio::time::timeout(Duration::from_secs(10), read).await.context("the probe did not answer in 10 s")??;
        from_spawn.push(started.elapsed());
        let status = child.wait().await?;
        ensure!(status.success(), "the probe failed ({status})");
        let micros = line.split_whitespace().find_map(|w| w.strip_prefix("connect_to_first_us="));
        let micros: u64 = micros.context("the probe printed no time")?.parse()?;
        from_connect.push(Duration::from_micros(micros));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok((from_spawn, from_connect))
}

/// `workload-probe`: connect, read the first X.509-SVID message, print how long it took.
pub(crate) async fn probe(opts: ProbeOptions) -> Result<()> {
    let started = Instant::now();
    let first = X509Stream::open(&opts.socket).await?.next().await?.context("the stream ended at once")?;
    let took = first.at.duration_since(started);
    println!("workload-probe connect_to_first_us={} svids={}", took.as_micros(), first.svids.len());
    Ok(())
}

/// Runs the benchmark and prints its figures.
pub(crate) async fn run(opts: Options) -> Result<()> {
    ensure!(opts.streams >= 1, "need at least one stream");
    let n = opts.streams;
    let timeout = Duration::from_secs(opts.timeout_secs);
    let sampling = Duration::from_secs(opts.seconds.max(1));
    println!("{}", procfs::machine_line("before"));
    let domain = Domain::start(1, None).await?;
    let serials = domain.user_certificates(opts.revocations).await?;
    let node = host(&domain, n, &opts.agent_env).await?;
    let pid = node.agent_pid().context("the agent did not start")?;
    let keys = ENTRIES.len();

    // 1. Memory, idle and with every stream open.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = procfs::sample(pid, sampling).await?;
    idle.print("workload", "idle", &format!("streams=0 keys={keys}"));
    let started = Instant::now();
    let streams = Streams::open(&node.workload_socket(), n, opts.open_concurrency, Duration::from_secs(300)).await?;
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let open = procfs::sample(pid, sampling).await?;
    let per_stream_kb = (open.rss_mean_kib - idle.rss_mean_kib) * 1.024 / n as f64;
    open.print(
        "workload",
        "streams",
        &format!(
            "streams={n} svids_per_stream={keys} keys={keys} opened_s={:.1} per_stream_kb={per_stream_kb:.1}",
            opened.as_secs_f64()
        ),
    );

    // 2. Updates on every stream.
    let revoked = revocations(&domain, &streams, &serials, timeout).await?;
    let deleted = deletion(&domain, &streams, timeout).await?;
    let rotated = rotations(&node, &streams, opts.rotations, timeout).await?;

    // 3. First SVID of new processes, the streams still open.
    let (from_spawn, from_connect) = first_svids(&node.workload_socket(), opts.samples).await?;

    // What the agent keeps once the changes have gone out, the streams still open.
    let after = procfs::sample(pid, sampling).await?;
    after.print("workload", "after-updates", &format!("streams={n}"));
    let peak_kib = procfs::read(pid)?.hwm_kib as f64;
    let (ended, why) = streams.ended();
    drop(streams);
    let peak = mb(peak_kib);
    println!(
        "workload rss streams={n} keys={keys} idle_rss_mb={:.2} streams_rss_mb={:.2} per_stream_kb={per_stream_kb:.1} \
         peak_rss_mb={peak:.2} target_rss_mb={TARGET_RSS_MB:.0} target={}",
        mb(idle.rss_mean_kib),
        mb(open.rss_mean_kib),
        if peak <= TARGET_RSS_MB { "met" } else { "missed" }
    );
    revoked.print("revocation");
    deleted.print("deletion");
    if opts.rotations > 0 {
        rotated.print("rotation");
    }
    for (from, samples) in [("spawn", &from_spawn), ("connect", &from_connect)] {
        if let Some(s) = Summary::of(samples) {
            let met = if s.p99 <= TARGET_FIRST_SVID_P99_MS { "met" } else { "missed" };
            println!(
                "workload first_svid from={from} samples={} {s} target_p99_ms={TARGET_FIRST_SVID_P99_MS:.0} target={met}",
                s.n
            );
        }
    }
    println!(
        "workload streams={n} ended_early={ended}{}",
        why.map_or_else(String::new, |w| format!(" first_reason={w:?}"))
    );
    println!("{}", procfs::machine_line("after"));
    Ok(())
}
