//! Per-tenant policy, stored as JSON with the tenant. Missing fields take the
//! defaults, so older tenants pick up new settings.

use serde::{Deserialize, Serialize};

/// A tenant's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantPolicy {
    /// Password rules.
    pub password: PasswordPolicy,
    /// Lockout after failed logins.
    pub lockout: LockoutPolicy,
    /// Lifetime of a login token, in seconds.
    pub session_ttl_secs: i64,
    /// Certificate issuance and revocation.
    pub ca: CaPolicy,
    /// DNS domains, besides the tenant's own, inside which machines' host
    /// names may lie (a machine is always named by a fully qualified name
    /// inside one of them).
    pub machine_domains: Vec<String>,
}

impl Default for TenantPolicy {
    fn default() -> Self {
        Self {
            password: PasswordPolicy::default(),
            lockout: LockoutPolicy::default(),
            session_ttl_secs: 3600,
            ca: CaPolicy::default(),
            machine_domains: Vec::new(),
        }
    }
}

/// Certificate issuance and revocation rules. Defaults: machines and services
/// 24 h, users 8 h, at most 30 days (longer requests are refused, not
/// clipped); CRLs valid 7 days; a pending root rotation activates after 7 days; a principal's certificates are revoked when
/// its password changes or it is disabled or deleted; no wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaPolicy {
    /// Default lifetime of machine and service certificates, in seconds.
    pub host_ttl_secs: i64,
    /// Default lifetime of user certificates, in seconds.
    pub user_ttl_secs: i64,
    /// Longest lifetime anyone may ask for, in seconds.
    pub max_ttl_secs: i64,
    /// thisUpdate to nextUpdate of every CRL, in seconds.
    pub crl_validity_secs: i64,
    /// Revoke a principal's certificates when its password changes or it is disabled or deleted.
    pub revoke_on_credential_change: bool,
    /// Allow wildcard DNS names registered to a machine or service.
    pub allow_wildcards: bool,
    /// How long a root rotation stays pending (both roots trusted, issuance
    /// on the old hierarchy) before the background job activates it, in seconds.
    pub rotation_overlap_secs: i64,
    /// Name the tenant's OCSP responder (`/pki/{tenant}/ocsp`) in the AIA of
    /// every leaf issued; the responder answers either way.
    pub ocsp: bool,
}

impl Default for CaPolicy {
    fn default() -> Self {
        Self {
            host_ttl_secs: 24 * 3600,
            user_ttl_secs: 8 * 3600,
            max_ttl_secs: 30 * 24 * 3600,
            crl_validity_secs: 7 * 24 * 3600,
            revoke_on_credential_change: true,
            allow_wildcards: false,
            rotation_overlap_secs: 7 * 24 * 3600,
            ocsp: true,
        }
    }
}

impl TenantPolicy {
    /// Reads the stored JSON; unreadable policy falls back to the defaults
    /// (which are the strictest settings) rather than failing logins.
    pub fn from_json(s: &str) -> Self {
        serde_json::from_str(s).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable tenant policy, using defaults");
            Self::default()
        })
    }

    /// The JSON form stored with the tenant.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Password rules. Defaults: at least 8 characters with an upper-case letter,
/// a lower-case letter, a digit and a special character; not containing the
/// user name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordPolicy {
    /// Minimum length in characters.
    pub min_length: usize,
    /// Maximum length in characters (bounds hashing cost).
    pub max_length: usize,
    /// Requires an upper-case letter.
    pub require_upper: bool,
    /// Requires a lower-case letter.
    pub require_lower: bool,
    /// Requires a digit.
    pub require_digit: bool,
    /// Requires a character that is not a letter or digit.
    pub require_special: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 256,
            require_upper: true,
            require_lower: true,
            require_digit: true,
            require_special: true,
        }
    }
}

/// Lockout: `max_failures` failed logins within `window_secs` lock the
/// account for `lockout_secs` (defaults 5, 180 s, 300 s, as Lightwave had).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LockoutPolicy {
    /// Failures that trigger a lockout.
    pub max_failures: i64,
    /// Window in which failures are counted.
    pub window_secs: i64,
    /// How long the account stays locked.
    pub lockout_secs: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self { max_failures: 5, window_secs: 180, lockout_secs: 300 }
    }
}
