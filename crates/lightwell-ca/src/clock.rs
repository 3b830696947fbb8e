//! Where "now" comes from. Everything in this crate takes the time as a
//! parameter; the callers that decide with it — the service layer (token
//! expiry, lockout windows, validity, the CA job, the CRL signer, the LDAP
//! cache) and the agent's scheduler (renewal, re-enrolment, secret
//! rotation) — read it from one injected [`Clock`]. It is defined here,
//! the lowest crate both the server and the agent build on, so there is one
//! trait for both.
//!
//! Implementations: [`SystemClock`] (the wall clock), [`OffsetClock`] (the
//! wall clock shifted by an offset that tests move; the agent's
//! `LIGHTWELL_CLOCK_OFFSET_SECS` makes one) and, in `lightwelld`, the clock
//! of `--clock-offset-file`, whose offset is read from a file at each
//! reading.
//!
//! A scheduler that waits for a time on this clock (the agent waiting for a
//! renewal) sleeps on a monotonic timer, which does not follow the clock
//! when it jumps: an NTP step, a host waking from suspend, a test moving an
//! [`OffsetClock`]. So it sleeps at most [`Clock::recheck_interval`] before
//! reading the clock again.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time (UTC).
    fn now(&self) -> OffsetDateTime;

    /// The current time as Unix seconds.
    fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// The longest a scheduler sleeps before reading this clock again, so a
    /// jump of the clock is acted on at most this late (default: a minute).
    fn recheck_interval(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The wall clock shifted by an adjustable offset: tests move time forward
/// (or back) without waiting. Clones share the offset, so a test keeps one
/// clone and hands another to the code under test.
#[derive(Debug, Default, Clone)]
pub struct OffsetClock {
    offset_secs: Arc<AtomicI64>,
}

impl OffsetClock {
    /// A clock at the wall-clock time.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock `secs` ahead of the wall clock (behind if negative).
    pub fn with_offset(secs: i64) -> Self {
        let clock = Self::new();
        clock.set_offset(secs);
        clock
    }

    /// Moves this clock (and every clone of it) forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst);
    }

    /// Sets the offset from the wall clock.
    pub fn set_offset(&self, secs: i64) {
        self.offset_secs.store(secs, Ordering::SeqCst);
    }

    /// The offset from the wall clock, in seconds.
    pub fn offset(&self) -> i64 {
        self.offset_secs.load(Ordering::SeqCst)
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> OffsetDateTime {
        SystemClock.now() + time::Duration::seconds(self.offset())
    }

    /// A test moves this clock whenever it likes and waits for what follows,
    /// so schedulers look at it often.
    fn recheck_interval(&self) -> Duration {
        Duration::from_millis(50)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_moves_with_its_clones_and_only_then() {
        let clock = OffsetClock::with_offset(3600);
        let handed_out: Arc<dyn Clock> = Arc::new(clock.clone());
        let wall = SystemClock.unix();
        assert!((handed_out.unix() - wall - 3600).abs() <= 1, "an hour ahead");
        clock.advance(86_400);
        assert!((handed_out.unix() - wall - 90_000).abs() <= 1, "the clone moved too");
        clock.set_offset(-60);
        assert!((handed_out.unix() - wall + 60).abs() <= 1, "and back, behind the wall clock");
        assert!((OffsetClock::new().unix() - SystemClock.unix()).abs() <= 1, "a new one is the wall clock");
    }
}
