//! Time is injected: every decision that depends on "now" (token expiry,
//! lockout windows, certificate validity, the CA job, the CRL signer, the
//! LDAP cache's expiry) asks the service's [`Clock`]. The trait and its
//! implementations live in `lightwell_ca::clock`, shared with the agent.

use time::OffsetDateTime;

pub use lightwell_ca::clock::{Clock, OffsetClock, SystemClock};

/// Formats Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
