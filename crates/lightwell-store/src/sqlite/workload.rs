//! SQLite queries of workload identity: workload entries.

use super::Cached;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{StoreError, TenantId, WorkloadEntryRecord};

const COLUMNS: &str = "id, tenant_id, name, service_id, spec, created_at";

fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<WorkloadEntryRecord> {
    Ok(WorkloadEntryRecord {
        id: r.get(0)?,
        tenant_id: TenantId::new(r.get::<_, String>(1)?),
        name: r.get(2)?,
        service_id: r.get(3)?,
        spec: r.get(4)?,
        created_at: r.get(5)?,
    })
}

pub(super) fn insert_entry(tx: &Connection, e: &WorkloadEntryRecord) -> Result<(), StoreError> {
    tx.exec(
        &format!("INSERT INTO workload_entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![e.id, e.tenant_id.as_str(), e.name, e.service_id, e.spec, e.created_at],
    )?;
    Ok(())
}

pub(super) fn entry(tx: &Connection, tenant: &TenantId, name: &str) -> Result<Option<WorkloadEntryRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM workload_entries WHERE tenant_id = ?1 AND lower(name) = lower(?2)"
    ))?;
    Ok(stmt.query_row(params![tenant.as_str(), name], entry_from_row).optional()?)
}

pub(super) fn list_entries(tx: &Connection, tenant: &TenantId) -> Result<Vec<WorkloadEntryRecord>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!("SELECT {COLUMNS} FROM workload_entries WHERE tenant_id = ?1 ORDER BY lower(name)"))?;
    let rows = stmt.query_map(params![tenant.as_str()], entry_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn delete_entry(tx: &Connection, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
    Ok(tx.exec("DELETE FROM workload_entries WHERE tenant_id = ?1 AND id = ?2", params![tenant.as_str(), id])? > 0)
}

pub(super) fn delete_service_entries(
    tx: &Connection,
    tenant: &TenantId,
    service_id: &str,
) -> Result<usize, StoreError> {
    Ok(tx.exec(
        "DELETE FROM workload_entries WHERE tenant_id = ?1 AND service_id = ?2",
        params![tenant.as_str(), service_id],
    )?)
}

/// Removes a tenant's entries (part of deleting the tenant).
pub(super) fn delete_tenant_rows(tx: &Connection, tenant: &str) -> Result<(), StoreError> {
    tx.exec("DELETE FROM workload_entries WHERE tenant_id = ?1", params![tenant])?;
    Ok(())
}
