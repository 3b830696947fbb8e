//! SQLite queries of the OpenID provider: its clients.

use super::Cached;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{OidcClientRecord, StoreError, TenantId};

const COLUMNS: &str = "id, tenant_id, name, principal_id, secret_hash, spec, created_at, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<OidcClientRecord> {
    Ok(OidcClientRecord {
        id: r.get(0)?,
        tenant_id: TenantId::new(r.get::<_, String>(1)?),
        name: r.get(2)?,
        principal_id: r.get(3)?,
        secret_hash: r.get(4)?,
        spec: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

pub(super) fn insert(tx: &Connection, c: &OidcClientRecord) -> Result<(), StoreError> {
    tx.exec(
        &format!("INSERT INTO oidc_clients ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![c.id, c.tenant_id.as_str(), c.name, c.principal_id, c.secret_hash, c.spec, c.created_at, c.updated_at],
    )?;
    Ok(())
}

pub(super) fn update(tx: &Connection, c: &OidcClientRecord) -> Result<bool, StoreError> {
    Ok(tx.exec(
        "UPDATE oidc_clients SET secret_hash = ?3, spec = ?4, updated_at = ?5 WHERE tenant_id = ?1 AND id = ?2",
        params![c.tenant_id.as_str(), c.id, c.secret_hash, c.spec, c.updated_at],
    )? > 0)
}

pub(super) fn by_id(tx: &Connection, tenant: &TenantId, id: &str) -> Result<Option<OidcClientRecord>, StoreError> {
    let mut stmt =
        tx.prepare_cached(&format!("SELECT {COLUMNS} FROM oidc_clients WHERE tenant_id = ?1 AND id = ?2"))?;
    Ok(stmt.query_row(params![tenant.as_str(), id], from_row).optional()?)
}

pub(super) fn by_name(tx: &Connection, tenant: &TenantId, name: &str) -> Result<Option<OidcClientRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM oidc_clients WHERE tenant_id = ?1 AND lower(name) = lower(?2)"
    ))?;
    Ok(stmt.query_row(params![tenant.as_str(), name], from_row).optional()?)
}

pub(super) fn list(tx: &Connection, tenant: &TenantId) -> Result<Vec<OidcClientRecord>, StoreError> {
    let mut stmt =
        tx.prepare_cached(&format!("SELECT {COLUMNS} FROM oidc_clients WHERE tenant_id = ?1 ORDER BY lower(name)"))?;
    let rows = stmt.query_map(params![tenant.as_str()], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn delete(tx: &Connection, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
    Ok(tx.exec("DELETE FROM oidc_clients WHERE tenant_id = ?1 AND id = ?2", params![tenant.as_str(), id])? > 0)
}

pub(super) fn delete_of_principal(tx: &Connection, tenant: &TenantId, principal_id: &str) -> Result<usize, StoreError> {
    Ok(tx.exec(
        "DELETE FROM oidc_clients WHERE tenant_id = ?1 AND principal_id = ?2",
        params![tenant.as_str(), principal_id],
    )?)
}

/// Removes a tenant's clients (part of deleting the tenant).
pub(super) fn delete_tenant_rows(tx: &Connection, tenant: &str) -> Result<(), StoreError> {
    tx.exec("DELETE FROM oidc_clients WHERE tenant_id = ?1", params![tenant])?;
    tx.exec("DELETE FROM revoked_tokens WHERE tenant_id = ?1", params![tenant])?;
    Ok(())
}

pub(super) fn revoke_token(
    tx: &Connection,
    tenant: &TenantId,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(tx.exec(
        "INSERT INTO revoked_tokens (tenant_id, jti, expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (tenant_id, jti) DO NOTHING",
        params![tenant.as_str(), jti, expires_at, now],
    )? > 0)
}

pub(super) fn token_revoked(tx: &Connection, tenant: &TenantId, jti: &str) -> Result<bool, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT 1 FROM revoked_tokens WHERE tenant_id = ?1 AND jti = ?2")?;
    Ok(stmt.query_row(params![tenant.as_str(), jti], |_| Ok(())).optional()?.is_some())
}

pub(super) fn prune_revoked_tokens(tx: &Connection, now: i64) -> Result<usize, StoreError> {
    Ok(tx.exec("DELETE FROM revoked_tokens WHERE expires_at <= ?1", params![now])?)
}
