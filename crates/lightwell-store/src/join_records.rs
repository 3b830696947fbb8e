//! Rows of domain join: join tokens.

use crate::TenantId;

/// A join token. Only the SHA-256 of the secret is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinTokenRecord {
    /// Stable id (shown in listings, used to revoke).
    pub id: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// SHA-256 of the token secret.
    pub token_hash: Vec<u8>,
    /// The only host name this token may join, if bound.
    pub hostname: Option<String>,
    /// The IP addresses a host joining with this token may have in its
    /// certificate; others it asks for are left out.
    pub ips: Vec<String>,
    /// Joins left.
    pub uses_left: i64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Revoked tokens are refused.
    pub revoked: bool,
    /// Whether the token may re-join a host name that already has a machine account.
    pub allow_rejoin: bool,
    /// Who created it.
    pub created_by: String,
    /// Creation time.
    pub created_at: i64,
}

impl std::fmt::Debug for JoinTokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token's hash is its lookup key: left out of logs.
        f.debug_struct("JoinTokenRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("hostname", &self.hostname)
            .field("ips", &self.ips)
            .field("uses_left", &self.uses_left)
            .field("expires_at", &self.expires_at)
            .field("revoked", &self.revoked)
            .field("allow_rejoin", &self.allow_rejoin)
            .finish_non_exhaustive()
    }
}
