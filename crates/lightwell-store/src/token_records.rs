//! Rows of the token service: the tenant's JWT signing keys.

use crate::TenantId;

/// One of a tenant's token keys. Which key signs and which are published is
/// decided from the four times by the service layer; the store keeps them.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKeyRecord {
    /// The key id (`kid`), unique across tenants.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// JOSE algorithm name (`ES256`, `RS256`).
    pub algorithm: String,
    /// The public JWK, JSON.
    pub public_jwk: String,
    /// PKCS#8 private key sealed under the KEK.
    pub sealed_key: Vec<u8>,
    /// Published from (Unix seconds).
    pub created_at: i64,
    /// Signs from.
    pub activates_at: i64,
    /// Signs until.
    pub retires_at: i64,
    /// Published until.
    pub expires_at: i64,
}

impl std::fmt::Debug for TokenKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The sealed key is left out, as for `CaRecord`.
        f.debug_struct("TokenKeyRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("algorithm", &self.algorithm)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
