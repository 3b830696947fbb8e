//! Rows of workload identity: workload entries.

use crate::TenantId;

/// A workload entry of a tenant: which workloads (selectors) on which hosts
/// hold an identity of a service. `spec` is a JSON document owned by the
/// service layer (path, selectors, hosts, lifetime, DNS names); the store
/// scopes it, names it and ties it to its service, so deleting the service
/// deletes its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadEntryRecord {
    /// Stable id.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique in the tenant in any letter case.
    pub name: String,
    /// The service principal whose identity the entry grants.
    pub service_id: String,
    /// The entry's settings as JSON.
    pub spec: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// A foreign trust domain a tenant trusts (SPIFFE federation): where its
/// bundle comes from and the last one accepted. The bundle is a SPIFFE
/// bundle document, owned by the service layer like a workload entry's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationRecord {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The foreign trust domain's name, unique in the tenant.
    pub trust_domain: String,
    /// Its SPIFFE bundle endpoint (`https_web`); `None` for a static bundle.
    pub endpoint_url: Option<String>,
    /// CA certificates (PEM) the endpoint's TLS certificate must chain to,
    /// instead of the system's web roots.
    pub endpoint_ca_pem: Option<String>,
    /// The last bundle accepted.
    pub bundle: Option<String>,
    /// Its `spiffe_sequence`.
    pub sequence: Option<i64>,
    /// When a bundle was last fetched and accepted, Unix seconds.
    pub fetched_at: Option<i64>,
    /// When to fetch next.
    pub next_fetch_at: i64,
    /// Why the last fetch failed, if it did.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}
