//! SQLite queries of the token service: token keys.

use super::Cached;
use rusqlite::{Connection, Row, params};

use crate::{StoreError, TenantId, TokenKeyRecord};

const COLUMNS: &str =
    "id, tenant_id, algorithm, public_jwk, sealed_key, created_at, activates_at, retires_at, expires_at";

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<TokenKeyRecord> {
    Ok(TokenKeyRecord {
        id: r.get(0)?,
        tenant_id: TenantId::new(r.get::<_, String>(1)?),
        algorithm: r.get(2)?,
        public_jwk: r.get(3)?,
        sealed_key: r.get(4)?,
        created_at: r.get(5)?,
        activates_at: r.get(6)?,
        retires_at: r.get(7)?,
        expires_at: r.get(8)?,
    })
}

pub(super) fn insert_key(tx: &Connection, k: &TokenKeyRecord) -> Result<(), StoreError> {
    tx.exec(
        &format!("INSERT INTO token_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            k.id,
            k.tenant_id.as_str(),
            k.algorithm,
            k.public_jwk,
            k.sealed_key,
            k.created_at,
            k.activates_at,
            k.retires_at,
            k.expires_at
        ],
    )?;
    Ok(())
}

pub(super) fn list_keys(tx: &Connection, tenant: &TenantId) -> Result<Vec<TokenKeyRecord>, StoreError> {
    let mut stmt =
        tx.prepare_cached(&format!("SELECT {COLUMNS} FROM token_keys WHERE tenant_id = ?1 ORDER BY activates_at, id"))?;
    let rows = stmt.query_map(params![tenant.as_str()], key_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn prune_keys(tx: &Connection, tenant: &TenantId, now: i64) -> Result<usize, StoreError> {
    Ok(tx.exec("DELETE FROM token_keys WHERE tenant_id = ?1 AND expires_at <= ?2", params![tenant.as_str(), now])?)
}

/// Removes a tenant's keys (part of deleting the tenant).
pub(super) fn delete_tenant_rows(tx: &Connection, tenant: &str) -> Result<(), StoreError> {
    tx.exec("DELETE FROM token_keys WHERE tenant_id = ?1", params![tenant])?;
    Ok(())
}
