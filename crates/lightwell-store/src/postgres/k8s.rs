//! PostgreSQL queries of Kubernetes support: clusters.

use postgres::Row;

use super::PgTx;
use crate::{K8sClusterRecord, StoreError, TenantId};

const COLUMNS: &str = "id, tenant_id, name, spec, created_at";

fn cluster_from_row(r: &Row) -> K8sClusterRecord {
    K8sClusterRecord {
        id: r.get(0),
        tenant_id: TenantId::new(r.get::<_, String>(1)),
        name: r.get(2),
        spec: r.get(3),
        created_at: r.get(4),
    }
}

impl PgTx<'_> {
    pub(super) fn pg_insert_k8s_cluster(&mut self, c: &K8sClusterRecord) -> Result<(), StoreError> {
        let r = self.execute(
            &format!("INSERT INTO k8s_clusters ({COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
            &[&c.id, &c.tenant_id.as_str(), &c.name, &c.spec, &c.created_at],
        );
        self.track(r).map(drop)
    }

    pub(super) fn pg_k8s_cluster(
        &mut self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<K8sClusterRecord>, StoreError> {
        let r = self.query_opt(
            &format!("SELECT {COLUMNS} FROM k8s_clusters WHERE tenant_id = $1 AND lower(name) = lower($2)"),
            &[&tenant.as_str(), &name],
        );
        Ok(self.track(r)?.as_ref().map(cluster_from_row))
    }

    pub(super) fn pg_list_k8s_clusters(&mut self, tenant: &TenantId) -> Result<Vec<K8sClusterRecord>, StoreError> {
        let r = self.query(
            &format!("SELECT {COLUMNS} FROM k8s_clusters WHERE tenant_id = $1 ORDER BY lower(name)"),
            &[&tenant.as_str()],
        );
        Ok(self.track(r)?.iter().map(cluster_from_row).collect())
    }

    pub(super) fn pg_update_k8s_cluster(&mut self, c: &K8sClusterRecord) -> Result<(), StoreError> {
        let r = self.execute(
            "UPDATE k8s_clusters SET spec = $3 WHERE tenant_id = $1 AND id = $2",
            &[&c.tenant_id.as_str(), &c.id, &c.spec],
        );
        self.track(r).map(drop)
    }

    pub(super) fn pg_delete_k8s_cluster(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let r = self.execute("DELETE FROM k8s_clusters WHERE tenant_id = $1 AND id = $2", &[&tenant.as_str(), &id]);
        Ok(self.track(r)? > 0)
    }

    pub(super) fn pg_delete_tenant_k8s_rows(&mut self, tenant: &str) -> Result<(), StoreError> {
        let r = self.execute("DELETE FROM k8s_clusters WHERE tenant_id = $1", &[&tenant]);
        self.track(r).map(drop)
    }
}
