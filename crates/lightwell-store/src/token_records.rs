//! Rows of the token service: the tenant's JWT signing keys and its OpenID clients.

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

/// A client of the tenant's OpenID provider. `spec` is owned by the
/// service layer (authentication method, grants, audience, lifetimes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClientRecord {
    /// `client_id`.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique in the tenant (any case).
    pub name: String,
    /// The principal (service or machine) it acts as.
    pub principal_id: String,
    /// SHA-256 of its secret (marked, hex); none for a certificate client.
    pub secret_hash: Option<String>,
    /// Settings, JSON.
    pub spec: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}
