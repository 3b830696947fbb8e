//! SQLite queries of Kubernetes support: clusters.

use super::Cached;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{K8sClusterRecord, StoreError, TenantId};

const COLUMNS: &str = "id, tenant_id, name, spec, created_at";

fn cluster_from_row(r: &Row<'_>) -> rusqlite::Result<K8sClusterRecord> {
    Ok(K8sClusterRecord {
        id: r.get(0)?,
        tenant_id: TenantId::new(r.get::<_, String>(1)?),
        name: r.get(2)?,
        spec: r.get(3)?,
        created_at: r.get(4)?,
    })
}

pub(super) fn insert_cluster(tx: &Connection, c: &K8sClusterRecord) -> Result<(), StoreError> {
    tx.exec(
        &format!("INSERT INTO k8s_clusters ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
        params![c.id, c.tenant_id.as_str(), c.name, c.spec, c.created_at],
    )?;
    Ok(())
}

pub(super) fn cluster(tx: &Connection, tenant: &TenantId, name: &str) -> Result<Option<K8sClusterRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM k8s_clusters WHERE tenant_id = ?1 AND lower(name) = lower(?2)"
    ))?;
    Ok(stmt.query_row(params![tenant.as_str(), name], cluster_from_row).optional()?)
}

pub(super) fn list_clusters(tx: &Connection, tenant: &TenantId) -> Result<Vec<K8sClusterRecord>, StoreError> {
    let mut stmt =
        tx.prepare_cached(&format!("SELECT {COLUMNS} FROM k8s_clusters WHERE tenant_id = ?1 ORDER BY lower(name)"))?;
    let rows = stmt.query_map(params![tenant.as_str()], cluster_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn update_cluster(tx: &Connection, c: &K8sClusterRecord) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE k8s_clusters SET spec = ?3 WHERE tenant_id = ?1 AND id = ?2",
        params![c.tenant_id.as_str(), c.id, c.spec],
    )?;
    Ok(())
}

pub(super) fn delete_cluster(tx: &Connection, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
    Ok(tx.exec("DELETE FROM k8s_clusters WHERE tenant_id = ?1 AND id = ?2", params![tenant.as_str(), id])? > 0)
}

/// Removes a tenant's clusters (part of deleting the tenant).
pub(super) fn delete_tenant_rows(tx: &Connection, tenant: &str) -> Result<(), StoreError> {
    tx.exec("DELETE FROM k8s_clusters WHERE tenant_id = ?1", params![tenant])?;
    Ok(())
}
