//! A keyed failure counter over a sliding window, bounded in memory: "at
//! most N failures per key in any W seconds".
//!
//! The service layer keys it by the caller's address to throttle failed
//! logins ([`address_key`]); any string works as a key (a host name, a join
//! token's id, an address and a tenant together).
//!
//! Use it as a gate in front of the work it protects:
//!
//! 1. [`Throttle::charge`] before the work: refused (with the seconds until
//!    the oldest failure leaves the window) when the key already has
//!    `max_failures` failures in the window; otherwise a failure is
//!    recorded *in advance*, so concurrent attempts of one key count
//!    against each other and a burst cannot slip past the limit.
//! 2. [`Throttle::refund`] when the attempt turned out not to be a failure
//!    (it succeeded, or the server could not decide it). An attempt that
//!    is abandoned half-way keeps its charge: a caller that disconnects
//!    early must not get a free try.
//!
//! Time is passed in (Unix seconds from the service clock), so windows are
//! testable and follow `--clock-offset-file` in end-to-end tests. The state
//! lives in this process only: each replica counts on its own.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// The limit a [`Throttle`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimit {
    /// Failures a key may have within any `window_secs`; the next attempt
    /// is refused until the oldest of them is `window_secs` old. 0 turns
    /// the throttle off.
    pub max_failures: u32,
    /// The sliding window, in seconds.
    pub window_secs: i64,
    /// Most keys remembered. When a new key would exceed it, keys without a
    /// failure in the window are forgotten first, then the quarter of the
    /// keys whose latest failure is oldest.
    pub max_keys: usize,
}

/// An attempt refused by a [`Throttle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until the key may try again (at least 1).
    pub retry_after_secs: u64,
}

/// A keyed failure counter over a sliding window (see the module docs).
#[derive(Debug)]
pub struct Throttle {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    limit: ThrottleLimit,
    /// Per key, the times of its failures in the window, oldest first
    /// (never more than `max_failures`).
    failures: HashMap<String, VecDeque<i64>>,
}

impl Throttle {
    /// A throttle enforcing `limit`, remembering nothing yet.
    pub fn new(limit: ThrottleLimit) -> Self {
        Self { state: Mutex::new(State { limit, failures: HashMap::new() }) }
    }

    /// The limit it enforces.
    pub fn limit(&self) -> ThrottleLimit {
        self.lock().limit
    }

    /// Enforces `limit` from now on; failures already counted stay.
    pub fn set_limit(&self, limit: ThrottleLimit) {
        self.lock().limit = limit;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after every statement; a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `key` may make an attempt at `now`, without recording one.
    pub fn check(&self, key: &str, now: i64) -> Result<(), Throttled> {
        let mut state = self.lock();
        let limit = state.limit;
        match state.failures.get_mut(key) {
            Some(times) if limit.max_failures > 0 => judge(&limit, times, now),
            _ => Ok(()),
        }
    }

    /// Refuses `key` if it has `max_failures` failures in the window ending
    /// at `now`; otherwise records one failure for this attempt and allows
    /// it. Take the failure back with [`Throttle::refund`] if the attempt
    /// did not fail.
    pub fn charge(&self, key: &str, now: i64) -> Result<(), Throttled> {
        let mut state = self.lock();
        let limit = state.limit;
        if limit.max_failures == 0 {
            return Ok(());
        }
        if let Some(times) = state.failures.get_mut(key) {
            judge(&limit, times, now)?;
            times.push_back(now);
            return Ok(());
        }
        state.make_room(now);
        state.failures.insert(key.to_string(), VecDeque::from([now]));
        Ok(())
    }

    /// Takes back the latest charge of `key`.
    pub fn refund(&self, key: &str) {
        let mut state = self.lock();
        if let Some(times) = state.failures.get_mut(key) {
            times.pop_back();
            if times.is_empty() {
                state.failures.remove(key);
            }
        }
    }

    /// Records a failure of `key` at `now` that was not charged in advance.
    pub fn record_failure(&self, key: &str, now: i64) {
        let mut state = self.lock();
        let limit = state.limit;
        if limit.max_failures == 0 {
            return;
        }
        if !state.failures.contains_key(key) {
            state.make_room(now);
        }
        let times = state.failures.entry(key.to_string()).or_default();
        expire(&limit, times, now);
        times.push_back(now);
        while times.len() > limit.max_failures as usize {
            times.pop_front();
        }
    }

    /// Forgets every failure of `key`.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.lock().failures.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn in_window(limit: &ThrottleLimit, t: i64, now: i64) -> bool {
    now.saturating_sub(t) < limit.window_secs
}

fn expire(limit: &ThrottleLimit, times: &mut VecDeque<i64>, now: i64) {
    while times.front().is_some_and(|&t| !in_window(limit, t, now)) {
        times.pop_front();
    }
}

fn judge(limit: &ThrottleLimit, times: &mut VecDeque<i64>, now: i64) -> Result<(), Throttled> {
    expire(limit, times, now);
    if times.len() < limit.max_failures as usize {
        return Ok(());
    }
    // The oldest failure in the window leaves it at `oldest + window`.
    let oldest = times.front().copied().unwrap_or(now);
    let wait = oldest.saturating_add(limit.window_secs).saturating_sub(now);
    Err(Throttled { retry_after_secs: wait.clamp(1, limit.window_secs.max(1)).unsigned_abs() })
}

impl State {
    /// Makes room for one more key.
    fn make_room(&mut self, now: i64) {
        let (limit, max) = (self.limit, self.limit.max_keys.max(1));
        if self.failures.len() < max {
            return;
        }
        self.failures.retain(|_, times| times.back().is_some_and(|&t| in_window(&limit, t, now)));
        if self.failures.len() < max {
            return;
        }
        // Still full of active keys (many sources at once): forget the
        // quarter whose latest failure is oldest. Linear, but only once per
        // quarter of the capacity of new keys.
        let latest_of = |times: &VecDeque<i64>| times.back().copied().unwrap_or(i64::MIN);
        let mut latest: Vec<i64> = self.failures.values().map(latest_of).collect();
        let cut = latest.len() / 4;
        let cutoff = *latest.select_nth_unstable(cut).1;
        let mut dropped = 0;
        self.failures.retain(|_, times| {
            let keep = dropped > cut || latest_of(times) > cutoff;
            if !keep {
                dropped += 1;
            }
            keep
        });
    }
}

/// The key of a caller's address: the IPv4 address itself, or the /64 an
/// IPv6 address belongs to (a single host usually owns a whole /64, so
/// counting single IPv6 addresses would count nothing). IPv4-mapped IPv6
/// addresses count as their IPv4 address.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max_failures: u32, window_secs: i64) -> ThrottleLimit {
        ThrottleLimit { max_failures, window_secs, max_keys: 1000 }
    }

    #[test]
    fn a_key_is_refused_after_max_failures_until_the_oldest_leaves_the_window() {
        let t = Throttle::new(limit(3, 180));
        for now in [1000, 1010, 1020] {
            t.charge("a", now).unwrap();
        }
        assert_eq!(t.charge("a", 1030), Err(Throttled { retry_after_secs: 150 }));
        assert_eq!(t.check("a", 1179), Err(Throttled { retry_after_secs: 1 }));
        t.charge("a", 1180).unwrap();
        assert!(t.charge("a", 1185).is_err(), "1010, 1020 and 1180 are in the window");
        t.charge("b", 1030).unwrap();
    }

    #[test]
    fn a_window_never_holds_more_than_max_failures() {
        // Whatever the spacing, no 180 s span holds more than 3 charged attempts.
        let t = Throttle::new(limit(3, 180));
        let mut allowed = vec![];
        for now in (0..2000).step_by(7) {
            if t.charge("k", now).is_ok() {
                allowed.push(now);
            }
        }
        for (i, start) in allowed.iter().enumerate() {
            let in_span = allowed[i..].iter().take_while(|&&x| x - start < 180).count();
            assert!(in_span <= 3, "{in_span} attempts within 180 s from {start}");
        }
        assert!(allowed.len() >= 3 * (2000 / 180), "{} allowed", allowed.len());
    }

    #[test]
    fn concurrent_attempts_count_before_they_finish() {
        // Three attempts in flight, none finished: the fourth is refused.
        let t = Throttle::new(limit(3, 60));
        for _ in 0..3 {
            t.charge("a", 5).unwrap();
        }
        assert!(t.charge("a", 5).is_err());
    }

    #[test]
    fn refunds_give_back_only_their_own_attempt() {
        let t = Throttle::new(limit(3, 60));
        t.charge("a", 0).unwrap();
        t.charge("a", 1).unwrap();
        t.charge("a", 2).unwrap();
        t.refund("a");
        t.charge("a", 3).unwrap();
        assert!(t.charge("a", 4).is_err(), "a success does not wipe the earlier failures");
        t.refund("nobody");
        t.forget("a");
        assert!(t.is_empty());
    }

    #[test]
    fn failures_recorded_afterwards_count_too() {
        let t = Throttle::new(limit(2, 60));
        t.record_failure("a", 0);
        t.record_failure("a", 1);
        t.record_failure("a", 2);
        assert_eq!(t.check("a", 3), Err(Throttled { retry_after_secs: 58 }));
        assert!(t.check("a", 62).is_ok());
    }

    #[test]
    fn zero_failures_turns_it_off() {
        let t = Throttle::new(limit(0, 60));
        for _ in 0..100 {
            t.charge("a", 0).unwrap();
        }
        assert!(t.is_empty());
    }

    #[test]
    fn memory_stays_bounded_under_many_keys_and_recent_keys_stay_throttled() {
        let t = Throttle::new(ThrottleLimit { max_failures: 1, window_secs: 60, max_keys: 100 });
        for i in 0..99 {
            t.charge(&format!("old{i}"), 0).unwrap();
        }
        for i in 0..10_000 {
            t.charge(&format!("new{i}"), 1000 + i / 1000).unwrap();
            assert!(t.len() <= 100, "{} keys", t.len());
        }
        assert!(t.check("new9999", 1010).is_err(), "the latest keys are still counted");
    }

    #[test]
    fn expired_keys_are_forgotten_before_active_ones() {
        let t = Throttle::new(ThrottleLimit { max_failures: 1, window_secs: 60, max_keys: 3 });
        t.charge("active", 100).unwrap();
        t.charge("old1", 0).unwrap();
        t.charge("old2", 0).unwrap();
        t.charge("fresh", 101).unwrap();
        assert!(t.check("active", 102).is_err(), "the active key is still throttled");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        assert_eq!(address_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(address_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_ne!(address_key("127.0.0.1".parse().unwrap()), address_key("127.0.0.2".parse().unwrap()));
    }
}
