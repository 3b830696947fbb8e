//! What one search may cost, and where it runs.
//!
//! Matching a filter against a tenant's tree is CPU work proportional to
//! (filter terms) × (entries), and a bound principal chooses both factors
//! up to the limits. Three things keep it from stalling the server:
//!
//! - a [`Budget`] of work steps, charged inside evaluation (every term on
//!   every entry, every index candidate, every entry returned), which also
//!   reads the clock every [`CLOCK_EVERY`] steps, so a search is abandoned
//!   — `adminLimitExceeded` or `timeLimitExceeded` — when either runs out,
//!   however the work is shaped;
//! - work beyond [`INLINE_STEPS`] runs on tokio's blocking pool, never on
//!   the async runtime that also serves REST, and only on [`SearchGate`]'s
//!   few workers at once (one fewer than the CPUs), so LDAP search work
//!   can never occupy every CPU; waiting for a worker counts toward the
//!   search's time limit;
//! - each principal has a bounded number of searches in flight across all
//!   its connections and both listeners; beyond it a search gets `busy`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ldap3_proto::proto::LdapResultCode;
use tokio::sync::Semaphore;

use crate::result::{LdapError, OpResult};

/// Work a search may do on the connection's task before it moves to a
/// worker: about a tenth of a millisecond, enough for an indexed lookup
/// and the entries it returns.
pub(crate) const INLINE_STEPS: u64 = 10_000;

/// Steps between two readings of the clock: cheap enough to be invisible,
/// frequent enough that a deadline is overshot by microseconds.
pub(crate) const CLOCK_EVERY: u64 = 4096;

/// Why a search was abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exhausted {
    /// The work budget ran out.
    Work,
    /// The time limit passed.
    Time,
}

impl From<Exhausted> for LdapError {
    fn from(e: Exhausted) -> Self {
        match e {
            Exhausted::Work => LdapError::new(
                LdapResultCode::AdminLimitExceeded,
                "the search needs more work than one search may do; narrow the filter or the base, or look \
                 entries up by an indexed attribute (uid, cn, mail, member, memberOf, entryDN, entryUUID)",
            ),
            Exhausted::Time => LdapError::new(LdapResultCode::TimeLimitExceeded, "time limit exceeded"),
        }
    }
}

/// The work one search may still do, and when it must stop.
#[derive(Debug)]
pub(crate) struct Budget {
    left: u64,
    deadline: Instant,
    /// Steps charged since the clock was last read.
    unclocked: u64,
}

impl Budget {
    /// `steps` of work, to be done before `deadline`.
    pub(crate) fn new(steps: u64, deadline: Instant) -> Self {
        Self { left: steps, deadline, unclocked: 0 }
    }

    /// Charges `steps`; fails once the budget or the time is used up.
    #[inline]
    pub(crate) fn charge(&mut self, steps: u64) -> Result<(), Exhausted> {
        self.left = self.left.checked_sub(steps).ok_or(Exhausted::Work)?;
        self.unclocked += steps;
        if self.unclocked >= CLOCK_EVERY {
            self.unclocked = 0;
            if Instant::now() >= self.deadline {
                return Err(Exhausted::Time);
            }
        }
        Ok(())
    }
}

/// Shared by every connection of a server (it lives in the
/// [`DirectoryCache`](crate::DirectoryCache) both listeners share): the
/// workers that evaluate searches over tenant trees and the searches each
/// principal has in flight.
#[derive(Debug)]
pub(crate) struct SearchGate {
    workers: Arc<Semaphore>,
    in_flight: Mutex<HashMap<String, usize>>,
}

impl Default for SearchGate {
    fn default() -> Self {
        // Leave one CPU to the async runtime (REST, LDAP I/O, binds).
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cpus.saturating_sub(1).max(1))
    }
}

impl SearchGate {
    /// A gate with `workers` searches evaluated at once.
    pub(crate) fn new(workers: usize) -> Self {
        Self { workers: Arc::new(Semaphore::new(workers)), in_flight: Mutex::default() }
    }

    /// Counts one more search in flight for `principal`, or `None` when it
    /// already has `max`.
    pub(crate) fn enter(self: &Arc<Self>, principal: &str, max: usize) -> Option<InFlight> {
        let mut m = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(principal.to_string()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(InFlight { gate: self.clone(), principal: principal.to_string() })
    }

    /// Runs `work` for `principal` with a budget of `steps` before
    /// `deadline`: `busy` if the principal already has `max_in_flight`
    /// searches in flight. Work that fits [`INLINE_STEPS`] (a lookup by an
    /// indexed attribute) is done here, on the connection's task, since
    /// handing it to another thread would cost more than doing it; work
    /// that does not is started again from scratch on a worker, with the
    /// whole budget: `timeLimitExceeded` if no worker frees up before the
    /// deadline.
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        principal: &str,
        max_in_flight: usize,
        steps: u64,
        deadline: Instant,
        work: impl Fn(&mut Budget) -> Result<T, Exhausted> + Send + 'static,
    ) -> OpResult<T> {
        let _in_flight = self.enter(principal, max_in_flight).ok_or_else(|| {
            LdapError::new(
                LdapResultCode::Busy,
                format!("this identity already has {max_in_flight} searches in progress; retry when one has ended"),
            )
        })?;
        match work(&mut Budget::new(steps.min(INLINE_STEPS), deadline)) {
            Err(Exhausted::Work) if steps > INLINE_STEPS => {}
            done => return Ok(done?),
        }
        let worker = tokio::time::timeout_at(deadline.into(), self.workers.clone().acquire_owned())
            .await
            .map_err(|_| LdapError::from(Exhausted::Time))?
            .map_err(|_| LdapError::new(LdapResultCode::Unavailable, "the server is shutting down"))?;
        let done = tokio::task::spawn_blocking(move || {
            let _worker = worker;
            work(&mut Budget::new(steps, deadline))
        })
        .await
        .map_err(|_| LdapError::new(LdapResultCode::Other, "the search failed"))?;
        Ok(done?)
    }

    #[cfg(test)]
    fn in_flight(&self, principal: &str) -> usize {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).get(principal).copied().unwrap_or(0)
    }
}

/// One search counted in flight for a principal; uncounted on drop.
#[derive(Debug)]
pub(crate) struct InFlight {
    gate: Arc<SearchGate>,
    principal: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut m = self.gate.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.principal) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.principal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_budget_runs_out_of_steps() {
        let mut b = Budget::new(10, Instant::now() + Duration::from_secs(60));
        for _ in 0..10 {
            b.charge(1).unwrap();
        }
        assert_eq!(b.charge(1), Err(Exhausted::Work));
        assert_eq!(Budget::new(5, Instant::now() + Duration::from_secs(60)).charge(6), Err(Exhausted::Work));
    }

    #[test]
    fn a_budget_runs_out_of_time_within_a_few_thousand_steps() {
        let mut b = Budget::new(u64::MAX, Instant::now());
        let mut charged = 0;
        let err = loop {
            match b.charge(1) {
                Ok(()) => charged += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, Exhausted::Time);
        assert!(charged < CLOCK_EVERY, "{charged}");
    }

    #[test]
    fn a_principal_has_a_bounded_number_of_searches_in_flight() {
        let gate = Arc::new(SearchGate::new(1));
        let mut held: Vec<_> = (0..4).map(|_| gate.enter("t/alice", 4).unwrap()).collect();
        assert!(gate.enter("t/alice", 4).is_none(), "a fifth is refused");
        assert!(gate.enter("t/bob", 4).is_some(), "another principal is not affected");
        held.pop();
        let again = gate.enter("t/alice", 4);
        assert!(again.is_some(), "a slot frees when a search ends");
        drop(again);
        assert_eq!(gate.in_flight("t/alice"), 3);
        drop(held);
        assert_eq!(gate.in_flight("t/alice"), 0);
    }

    /// Work that does not fit the inline budget.
    fn costly(b: &mut Budget) -> Result<(), Exhausted> {
        b.charge(INLINE_STEPS + 1)
    }

    const STEPS: u64 = 1_000_000;

    #[tokio::test]
    async fn cheap_work_runs_on_the_callers_task_and_costly_work_on_a_worker() {
        let gate = Arc::new(SearchGate::new(1));
        let deadline = Instant::now() + Duration::from_secs(30);
        let here = std::thread::current().id();
        let cheap = gate.run("t/alice", 4, STEPS, deadline, |b| b.charge(10).map(|()| std::thread::current().id()));
        assert_eq!(cheap.await.unwrap(), here);
        let costly = gate.run("t/alice", 4, STEPS, deadline, |b| costly(b).map(|()| std::thread::current().id()));
        assert_ne!(costly.await.unwrap(), here);
        // The worker starts again with the whole budget, and stops where it ends.
        let over = gate.run("t/alice", 4, 2 * INLINE_STEPS, deadline, |b| b.charge(3 * INLINE_STEPS)).await;
        assert_eq!(over.unwrap_err().code, LdapResultCode::AdminLimitExceeded);
        let out_of_steps = gate.run("t/bob", 2, 1, deadline, |b| b.charge(2)).await.unwrap_err();
        assert_eq!(out_of_steps.code, LdapResultCode::AdminLimitExceeded);
        assert_eq!(gate.in_flight("t/alice"), 0);
    }

    #[tokio::test]
    async fn searches_beyond_the_bound_get_busy_and_the_rest_wait_for_a_worker() {
        let gate = Arc::new(SearchGate::new(1));
        let deadline = Instant::now() + Duration::from_secs(30);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(Mutex::new(wait));
        let mut running = Vec::new();
        for _ in 0..2 {
            let (gate, wait) = (gate.clone(), wait.clone());
            running.push(tokio::spawn(async move {
                gate.run("t/alice", 2, STEPS, deadline, move |b| {
                    costly(b)?;
                    let _ = wait.lock().unwrap().recv();
                    Ok(())
                })
                .await
            }));
        }
        while gate.in_flight("t/alice") < 2 {
            tokio::task::yield_now().await;
        }
        let third = gate.run("t/alice", 2, STEPS, deadline, |_| Ok(())).await.unwrap_err();
        assert_eq!(third.code, LdapResultCode::Busy);
        assert!(third.message.contains("2 searches in progress"), "{}", third.message);
        // The only worker is taken: another principal's costly search waits,
        // and gives up at its deadline; a cheap one does not wait.
        let soon = Instant::now() + Duration::from_millis(50);
        let bob = gate.run("t/bob", 2, STEPS, soon, costly).await.unwrap_err();
        assert_eq!(bob.code, LdapResultCode::TimeLimitExceeded);
        gate.run("t/bob", 2, STEPS, soon, |b| b.charge(1)).await.unwrap();
        release.send(()).unwrap();
        release.send(()).unwrap();
        for r in running {
            r.await.unwrap().unwrap();
        }
        assert_eq!(gate.in_flight("t/alice"), 0);
    }
}
