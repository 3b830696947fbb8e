//! The lockout state machine over a principal's failure counters.

use lightwell_store::PrincipalRecord;

use crate::policy::LockoutPolicy;

/// Whether the account is locked at `now`.
pub fn is_locked(p: &PrincipalRecord, now: i64) -> bool {
    p.locked_until.is_some_and(|until| until > now)
}

/// Records a failed login; returns true if this failure locked the account.
pub fn record_failure(p: &mut PrincipalRecord, policy: &LockoutPolicy, now: i64) -> bool {
    let window_open = p.failure_window_start.is_some_and(|start| now - start < policy.window_secs);
    if !window_open {
        p.failure_window_start = Some(now);
        p.failed_logins = 0;
    }
    p.failed_logins += 1;
    if p.failed_logins >= policy.max_failures {
        p.locked_until = Some(now + policy.lockout_secs);
        p.failed_logins = 0;
        p.failure_window_start = None;
        return true;
    }
    false
}

/// Clears failures and any lock (after a successful login, or an unlock by an administrator).
pub fn clear(p: &mut PrincipalRecord) {
    p.failed_logins = 0;
    p.failure_window_start = None;
    p.locked_until = None;
}

#[cfg(test)]
mod tests {
    use lightwell_store::{PrincipalKind, TenantId};

    use super::*;

    fn user() -> PrincipalRecord {
        PrincipalRecord {
            id: "u".into(),
            tenant_id: TenantId::new("t"),
            kind: PrincipalKind::User,
            name: "alice".into(),
            display_name: None,
            email: None,
            hostnames: vec![],
            ips: vec![],
            enabled: true,
            builtin: false,
            password_hash: None,
            credential_epoch: 1,
            failed_logins: 0,
            failure_window_start: None,
            locked_until: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn five_failures_within_the_window_lock_for_five_minutes() {
        let policy = LockoutPolicy::default();
        let mut p = user();
        for i in 0..4 {
            assert!(!record_failure(&mut p, &policy, 1000 + i * 10));
        }
        assert!(record_failure(&mut p, &policy, 1040));
        assert!(is_locked(&p, 1040));
        assert!(is_locked(&p, 1339));
        assert!(!is_locked(&p, 1340), "lock ends after 300 s");
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let policy = LockoutPolicy::default();
        let mut p = user();
        for i in 0..10 {
            assert!(!record_failure(&mut p, &policy, 1000 + i * 60), "failure {i}");
        }
    }
}
