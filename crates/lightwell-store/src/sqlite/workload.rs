//! SQLite queries of workload identity: workload entries.

use super::Cached;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{FederationRecord, StoreError, TenantId, WorkloadEntryRecord};

const COLUMNS: &str = "id, tenant_id, name, service_id, spec, created_at";
const FEDERATION_COLUMNS: &str = "tenant_id, trust_domain, endpoint_url, endpoint_ca_pem, bundle, sequence, \
     fetched_at, next_fetch_at, last_error, created_at, updated_at";

fn federation_from_row(r: &Row<'_>) -> rusqlite::Result<FederationRecord> {
    Ok(FederationRecord {
        tenant_id: TenantId::new(r.get::<_, String>(0)?),
        trust_domain: r.get(1)?,
        endpoint_url: r.get(2)?,
        endpoint_ca_pem: r.get(3)?,
        bundle: r.get(4)?,
        sequence: r.get(5)?,
        fetched_at: r.get(6)?,
        next_fetch_at: r.get(7)?,
        last_error: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

pub(super) fn insert_federation(tx: &Connection, f: &FederationRecord) -> Result<(), StoreError> {
    tx.exec(
        &format!(
            "INSERT INTO federations ({FEDERATION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ),
        params![
            f.tenant_id.as_str(),
            f.trust_domain,
            f.endpoint_url,
            f.endpoint_ca_pem,
            f.bundle,
            f.sequence,
            f.fetched_at,
            f.next_fetch_at,
            f.last_error,
            f.created_at,
            f.updated_at
        ],
    )?;
    Ok(())
}

pub(super) fn update_federation(tx: &Connection, f: &FederationRecord) -> Result<bool, StoreError> {
    Ok(tx.exec(
        "UPDATE federations SET endpoint_url = ?3, endpoint_ca_pem = ?4, bundle = ?5, sequence = ?6, \
         fetched_at = ?7, next_fetch_at = ?8, last_error = ?9, updated_at = ?10 \
         WHERE tenant_id = ?1 AND trust_domain = ?2",
        params![
            f.tenant_id.as_str(),
            f.trust_domain,
            f.endpoint_url,
            f.endpoint_ca_pem,
            f.bundle,
            f.sequence,
            f.fetched_at,
            f.next_fetch_at,
            f.last_error,
            f.updated_at
        ],
    )? > 0)
}

pub(super) fn federation(
    tx: &Connection,
    tenant: &TenantId,
    trust_domain: &str,
) -> Result<Option<FederationRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {FEDERATION_COLUMNS} FROM federations WHERE tenant_id = ?1 AND trust_domain = ?2"
    ))?;
    Ok(stmt.query_row(params![tenant.as_str(), trust_domain], federation_from_row).optional()?)
}

pub(super) fn list_federations(tx: &Connection, tenant: &TenantId) -> Result<Vec<FederationRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {FEDERATION_COLUMNS} FROM federations WHERE tenant_id = ?1 ORDER BY trust_domain"
    ))?;
    let rows = stmt.query_map(params![tenant.as_str()], federation_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn due_federations(tx: &Connection, now: i64, limit: usize) -> Result<Vec<FederationRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {FEDERATION_COLUMNS} FROM federations WHERE endpoint_url IS NOT NULL AND next_fetch_at <= ?1 \
         ORDER BY next_fetch_at, tenant_id, trust_domain LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now, i64::try_from(limit).unwrap_or(i64::MAX)], federation_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn delete_federation(tx: &Connection, tenant: &TenantId, trust_domain: &str) -> Result<bool, StoreError> {
    Ok(tx.exec(
        "DELETE FROM federations WHERE tenant_id = ?1 AND trust_domain = ?2",
        params![tenant.as_str(), trust_domain],
    )? > 0)
}

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
    tx.exec("DELETE FROM federations WHERE tenant_id = ?1", params![tenant])?;
    Ok(())
}
