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
