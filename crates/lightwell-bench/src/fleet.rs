//! Many lightweight agents in this one process.
//!
//! Each joined host gets its own OS thread with a single-threaded tokio
//! runtime — what `lightwell agent` itself runs on — so one agent's blocking
//! file writes (every write is fsynced) never stall another, as with separate
//! processes. Each agent loads its state dir with the real
//! [`Agent::load`] and loops over the real long-poll [`Agent::changes`] and
//! [`Agent::apply_changes`] (a snapshot through [`Agent::sync_trust`] when told), which writes `bundle.pem`, `crl/` and the hashed
//! `capath/`. Renewal and hooks are left out: this fleet measures the trust
//! path only.
//!
//! An agent reports the instant its `sync_trust` returned — its files are on
//! disk then — together with the contents of its `crl/` dir whenever they
//! changed, so the bench can tell which revocation each write carries.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lightwell_agent::AgentError;
use lightwell_agent::run::Agent;
use lightwell_agent::state::StateDir;
use lightwell_ca::clock::SystemClock;
use tokio::sync::{mpsc, watch};

/// What an agent thread tells the bench.
#[derive(Debug)]
enum Event {
    /// Loaded, connected (a first sync done) and about to watch.
    Ready,
    /// Its `crl/` dir changed: `woke` is when the watch returned, `at` when
    /// `sync_trust` had fetched and written the files.
    CrlChanged { woke: Instant, at: Instant, crls: Vec<u8> },
    /// A step failed; the agent retries (`fatal`: it could not start).
    Failed { error: String, fatal: bool },
}

/// When an agent had a revocation on disk, from the start of the revoke call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reached {
    /// Its watch returned: the server told it the trust revision grew.
    pub(crate) woke: Duration,
    /// Its `sync_trust` returned: the new CRL had been fetched and written.
    pub(crate) written: Duration,
}

/// The running agents.
#[derive(Debug)]
pub(crate) struct Fleet {
    events: mpsc::UnboundedReceiver<(usize, Event)>,
    stop: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    errors: usize,
}

/// The contents of every `*.crl.pem` in `dir`, in name order.
fn read_crls(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".crl.pem"))
        .collect();
    names.sort();
    let mut all = Vec::new();
    for p in names {
        all.extend(std::fs::read(p)?);
    }
    Ok(all)
}

/// Whether one of the PEM CRLs in `crls` lists `serial` (lower-case hex).
pub(crate) fn lists_serial(crls: &[u8], serial: &str) -> bool {
    x509_parser::pem::Pem::iter_from_buffer(crls).filter_map(Result::ok).any(|pem| {
        x509_parser::parse_x509_crl(&pem.contents)
            .is_ok_and(|(_, crl)| crl.iter_revoked_certificates().any(|r| hex::encode(r.raw_serial()) == serial))
    })
}

/// One agent's life: load, first sync, then watch → sync until told to stop.
async fn agent_loop(
    dir: &Path,
    send: &dyn Fn(Event),
    mut stop: watch::Receiver<bool>,
) -> std::result::Result<(), AgentError> {
    let mut agent = Agent::load(dir, Arc::new(SystemClock))?;
    let crl_dir = StateDir::new(dir).crl_dir();
    // The first sync opens the agent's connection, so every measured watch starts connected.
    agent.sync_trust().await?;
    let mut crls = read_crls(&crl_dir)?;
    send(Event::Ready);
    loop {
        let step = tokio::select! {
            answer = agent.changes() => answer,
            _ = stop.changed() => return Ok(()),
        };
        let woke = Instant::now();
        let step = match step {
            Ok(answer) => agent.apply_changes(&answer).await,
            Err(e) => Err(e),
        };
        match step {
            Ok(()) => {
                let at = Instant::now();
                let now = read_crls(&crl_dir)?;
                if now != crls {
                    send(Event::CrlChanged { woke, at, crls: now.clone() });
                    crls = now;
                }
            }
            Err(e) => {
                send(Event::Failed { error: e.to_string(), fatal: false });
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

impl Fleet {
    /// Starts one agent thread per state dir.
    pub(crate) fn start(dirs: &[PathBuf]) -> Result<Self> {
        let (tx, events) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let mut threads = Vec::with_capacity(dirs.len());
        for (index, dir) in dirs.iter().enumerate() {
            let (tx, stop_rx, dir) = (tx.clone(), stop_rx.clone(), dir.clone());
            let thread = std::thread::Builder::new().name(format!("agent-{index}")).spawn(move || {
                let send = |e: Event| {
                    let _ = tx.send((index, e));
                };
                let outcome = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(AgentError::from)
                    .and_then(|rt| rt.block_on(agent_loop(&dir, &send, stop_rx)));
                if let Err(e) = outcome {
                    send(Event::Failed { error: e.to_string(), fatal: true });
                }
            });
            threads.push(thread.context("starting an agent thread")?);
        }
        Ok(Self { events, stop, threads, errors: 0 })
    }

    /// How many agents there are.
    pub(crate) fn len(&self) -> usize {
        self.threads.len()
    }

    async fn next(&mut self, deadline: tokio::time::Instant) -> Option<(usize, Event)> {
        tokio::time::timeout_at(deadline, self.events.recv()).await.ok().flatten()
    }

    /// Non-fatal errors reported so far (each followed by a retry).
    pub(crate) fn errors(&self) -> usize {
        self.errors
    }

    /// Waits until every agent is connected and watching.
    pub(crate) async fn ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ready = vec![false; self.len()];
        let mut count = 0;
        while count < ready.len() {
            match self.next(deadline).await {
                Some((i, Event::Ready)) if !ready[i] => {
                    ready[i] = true;
                    count += 1;
                }
                Some((i, Event::Failed { error, fatal: true })) => bail!("agent {i} could not start: {error}"),
                Some((_, Event::Failed { .. })) => self.errors += 1,
                Some(_) => {}
                None => bail!("only {count} of {} agents were ready after {timeout:?}", ready.len()),
            }
        }
        Ok(())
    }

    /// For each agent, when after `start` it had written a CRL that lists
    /// `serial` (`None`: not within `timeout`).
    pub(crate) async fn reached(&mut self, serial: &str, start: Instant, timeout: Duration) -> Vec<Option<Reached>> {
        let deadline = tokio::time::Instant::from_std(start) + timeout;
        let mut reached = vec![None; self.len()];
        let mut left = reached.len();
        while left > 0 {
            match self.next(deadline).await {
                Some((i, Event::CrlChanged { woke, at, crls })) => {
                    if reached[i].is_none() && at >= start && lists_serial(&crls, serial) {
                        let woke = woke.saturating_duration_since(start);
                        reached[i] = Some(Reached { woke, written: at - start });
                        left -= 1;
                    }
                }
                Some((i, Event::Failed { error, fatal })) => {
                    self.errors += 1;
                    if self.errors <= 5 || fatal {
                        eprintln!("agent {i}: {error}");
                    }
                }
                Some((_, Event::Ready)) => {}
                None => break,
            }
        }
        reached
    }

    /// Stops every agent and waits for its thread.
    pub(crate) fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }
}
