//! SQLite queries of domain join: join tokens and trust revisions.

use super::Cached;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{JoinTokenRecord, StoreError, TenantId};

const COLUMNS: &str =
    "id, tenant_id, token_hash, hostname, uses_left, expires_at, revoked, allow_rejoin, created_by, created_at, ips";

fn token_from_row(r: &Row<'_>) -> rusqlite::Result<JoinTokenRecord> {
    Ok(JoinTokenRecord {
        id: r.get(0)?,
        tenant_id: TenantId::new(r.get::<_, String>(1)?),
        token_hash: r.get(2)?,
        hostname: r.get(3)?,
        uses_left: r.get(4)?,
        expires_at: r.get(5)?,
        revoked: r.get(6)?,
        allow_rejoin: r.get(7)?,
        created_by: r.get(8)?,
        created_at: r.get(9)?,
        ips: super::json_list(r.get(10)?)?,
    })
}

pub(super) fn insert_join_token(tx: &Connection, t: &JoinTokenRecord) -> Result<(), StoreError> {
    tx.exec(
        &format!("INSERT INTO join_tokens ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
        params![
            t.id,
            t.tenant_id.as_str(),
            t.token_hash,
            t.hostname,
            t.uses_left,
            t.expires_at,
            t.revoked,
            t.allow_rejoin,
            t.created_by,
            t.created_at,
            super::to_json(&t.ips)
        ],
    )?;
    Ok(())
}

pub(super) fn join_token_by_hash(
    tx: &Connection,
    tenant: &TenantId,
    hash: &[u8],
) -> Result<Option<JoinTokenRecord>, StoreError> {
    let mut stmt =
        tx.prepare_cached(&format!("SELECT {COLUMNS} FROM join_tokens WHERE tenant_id = ?1 AND token_hash = ?2"))?;
    Ok(stmt.query_row(params![tenant.as_str(), hash], token_from_row).optional()?)
}

pub(super) fn join_token(tx: &Connection, tenant: &TenantId, id: &str) -> Result<Option<JoinTokenRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!("SELECT {COLUMNS} FROM join_tokens WHERE tenant_id = ?1 AND id = ?2"))?;
    Ok(stmt.query_row(params![tenant.as_str(), id], token_from_row).optional()?)
}

pub(super) fn list_join_tokens(tx: &Connection, tenant: &TenantId) -> Result<Vec<JoinTokenRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM join_tokens WHERE tenant_id = ?1 ORDER BY created_at DESC, id"
    ))?;
    let rows = stmt.query_map(params![tenant.as_str()], token_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn update_join_token(tx: &Connection, t: &JoinTokenRecord) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE join_tokens SET uses_left = ?3, revoked = ?4 WHERE tenant_id = ?1 AND id = ?2",
        params![t.tenant_id.as_str(), t.id, t.uses_left, t.revoked],
    )?;
    Ok(())
}

/// The table of the trust revisions.
pub(super) const TRUST: &str = "trust_revisions";
/// The table of the directory revisions.
pub(super) const DIRECTORY: &str = "directory_revisions";

/// A tenant's revision in `table` (`TRUST` or `DIRECTORY`), 0 before the first bump.
pub(super) fn revision(tx: &Connection, table: &str, tenant: &TenantId) -> Result<i64, StoreError> {
    let sql = format!("SELECT revision FROM {table} WHERE tenant_id = ?1");
    Ok(tx.prepare_cached(&sql)?.query_row(params![tenant.as_str()], |r| r.get(0)).optional()?.unwrap_or(0))
}

/// Increments a tenant's revision in `table` and returns the new value.
pub(super) fn bump_revision(tx: &Connection, table: &str, tenant: &TenantId) -> Result<i64, StoreError> {
    let sql = format!(
        "INSERT INTO {table} (tenant_id, revision) VALUES (?1, 1) \
         ON CONFLICT (tenant_id) DO UPDATE SET revision = {table}.revision + 1 RETURNING revision"
    );
    Ok(tx.prepare_cached(&sql)?.query_row(params![tenant.as_str()], |r| r.get(0))?)
}

pub(super) fn trust_revisions(tx: &Connection) -> Result<Vec<(TenantId, i64)>, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT tenant_id, revision FROM trust_revisions")?;
    let rows = stmt.query_map([], |r| Ok((TenantId::new(r.get::<_, String>(0)?), r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn insert_trust_change(
    tx: &Connection,
    tenant: &TenantId,
    revision: i64,
    body: &[u8],
) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO trust_changes (tenant_id, revision, body) VALUES (?1, ?2, ?3)",
        params![tenant.as_str(), revision, body],
    )?;
    Ok(())
}

pub(super) fn trust_changes_since(
    tx: &Connection,
    tenant: &TenantId,
    since: i64,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT revision, body FROM trust_changes WHERE tenant_id = ?1 AND revision > ?2 ORDER BY revision",
    )?;
    let rows = stmt.query_map(params![tenant.as_str(), since], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn trust_changes_size(tx: &Connection, tenant: &TenantId, since: i64) -> Result<(i64, i64), StoreError> {
    // length() of a BLOB reads its size from the record header, not its pages.
    let mut stmt = tx.prepare_cached(
        "SELECT COUNT(*), COALESCE(SUM(length(body)), 0) FROM trust_changes WHERE tenant_id = ?1 AND revision > ?2",
    )?;
    Ok(stmt.query_row(params![tenant.as_str(), since], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

pub(super) fn prune_trust_changes(tx: &Connection, tenant: &TenantId, revision: i64) -> Result<(), StoreError> {
    tx.exec("DELETE FROM trust_changes WHERE tenant_id = ?1 AND revision <= ?2", params![tenant.as_str(), revision])?;
    Ok(())
}

/// Removes a tenant's join rows (part of deleting the tenant).
pub(super) fn delete_tenant_rows(tx: &Connection, tenant: &str) -> Result<(), StoreError> {
    tx.exec("DELETE FROM join_tokens WHERE tenant_id = ?1", params![tenant])?;
    tx.exec("DELETE FROM trust_changes WHERE tenant_id = ?1", params![tenant])?;
    for table in [TRUST, DIRECTORY] {
        tx.exec(&format!("DELETE FROM {table} WHERE tenant_id = ?1"), params![tenant])?;
    }
    Ok(())
}
