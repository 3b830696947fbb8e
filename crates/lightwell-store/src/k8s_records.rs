//! Rows of Kubernetes support: clusters.

use crate::TenantId;

/// A Kubernetes cluster of a tenant. `spec` is a JSON document owned by the
/// service layer (settings, CA ids, nodes); the store does not read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sClusterRecord {
    /// Stable id.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique in the tenant in any letter case.
    pub name: String,
    /// The cluster's settings as JSON.
    pub spec: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}
