//! SQLite queries of the certificate authority tables.

use super::Cached;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{
    CaRecord, CaRequestRecord, CaRole, CaStatus, CertificateFilter, CertificateRecord, CrlPending, CrlRecord,
    DeltaCrlRecord, OcspResponderRecord, PrincipalKind, RevokedEntry, StoreError, TenantId,
};

const CA_COLUMNS: &str = "id, tenant_id, name, parent_id, role, cert_der, sealed_key, status, is_default, \
     next_crl_number, revoked_at, revocation_reason, created_at";

const CERT_COLUMNS: &str = "serial, tenant_id, ca_id, principal_id, principal_kind, principal_name, profile, der, \
     not_before, not_after, requester, created_at, revoked_at, revocation_reason";

fn bad(col: usize, what: &'static str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, what.into())
}

fn ca_from_row(r: &Row<'_>) -> rusqlite::Result<CaRecord> {
    Ok(CaRecord {
        id: r.get(0)?,
        tenant_id: TenantId::new(r.get::<_, String>(1)?),
        name: r.get(2)?,
        parent_id: r.get(3)?,
        role: CaRole::parse(&r.get::<_, String>(4)?).ok_or_else(|| bad(4, "unknown CA role"))?,
        cert_der: r.get(5)?,
        sealed_key: r.get(6)?,
        status: CaStatus::parse(&r.get::<_, String>(7)?).ok_or_else(|| bad(7, "unknown CA status"))?,
        is_default: r.get(8)?,
        next_crl_number: r.get(9)?,
        revoked_at: r.get(10)?,
        revocation_reason: r.get(11)?,
        created_at: r.get(12)?,
    })
}

fn cert_from_row(r: &Row<'_>) -> rusqlite::Result<CertificateRecord> {
    Ok(CertificateRecord {
        serial: r.get(0)?,
        tenant_id: TenantId::new(r.get::<_, String>(1)?),
        ca_id: r.get(2)?,
        principal_id: r.get(3)?,
        principal_kind: PrincipalKind::parse(&r.get::<_, String>(4)?)
            .ok_or_else(|| bad(4, "unknown principal kind"))?,
        principal_name: r.get(5)?,
        profile: r.get(6)?,
        der: r.get(7)?,
        not_before: r.get(8)?,
        not_after: r.get(9)?,
        requester: r.get(10)?,
        created_at: r.get(11)?,
        revoked_at: r.get(12)?,
        revocation_reason: r.get(13)?,
    })
}

pub(super) fn insert_ca(tx: &Connection, ca: &CaRecord) -> Result<(), StoreError> {
    tx.exec(
        &format!("INSERT INTO cas ({CA_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
        params![
            ca.id,
            ca.tenant_id.as_str(),
            ca.name,
            ca.parent_id,
            ca.role.as_str(),
            ca.cert_der,
            ca.sealed_key,
            ca.status.as_str(),
            ca.is_default,
            ca.next_crl_number,
            ca.revoked_at,
            ca.revocation_reason,
            ca.created_at
        ],
    )?;
    Ok(())
}

pub(super) fn ca(tx: &Connection, tenant: &TenantId, id: &str) -> Result<Option<CaRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!("SELECT {CA_COLUMNS} FROM cas WHERE tenant_id = ?1 AND id = ?2"))?;
    Ok(stmt.query_row(params![tenant.as_str(), id], ca_from_row).optional()?)
}

pub(super) fn list_cas(tx: &Connection, tenant: &TenantId) -> Result<Vec<CaRecord>, StoreError> {
    // Sorted here rather than by ORDER BY: SQLite (built with STAT4) marks a
    // statement that sorts rows selected by a bound value for re-planning at
    // every execution, and this one runs twice per issuance (a tenant has a
    // handful of CAs).
    let mut stmt = tx.prepare_cached(&format!("SELECT {CA_COLUMNS} FROM cas WHERE tenant_id = ?1"))?;
    let rows = stmt.query_map(params![tenant.as_str()], ca_from_row)?;
    let mut cas: Vec<CaRecord> = rows.collect::<Result<_, _>>()?;
    cas.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
    Ok(cas)
}

pub(super) fn update_ca(tx: &Connection, ca: &CaRecord) -> Result<(), StoreError> {
    let n = tx.exec(
        "UPDATE cas SET status = ?3, is_default = ?4, next_crl_number = ?5, revoked_at = ?6, \
         revocation_reason = ?7 WHERE tenant_id = ?1 AND id = ?2",
        params![
            ca.tenant_id.as_str(),
            ca.id,
            ca.status.as_str(),
            ca.is_default,
            ca.next_crl_number,
            ca.revoked_at,
            ca.revocation_reason
        ],
    )?;
    if n == 0 {
        return Err(StoreError::Backend(format!("CA {} not found for update", ca.id)));
    }
    Ok(())
}

pub(super) fn insert_certificate(tx: &Connection, c: &CertificateRecord) -> Result<(), StoreError> {
    tx.exec(
        &format!(
            "INSERT INTO certificates ({CERT_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ),
        params![
            c.serial,
            c.tenant_id.as_str(),
            c.ca_id,
            c.principal_id,
            c.principal_kind.as_str(),
            c.principal_name,
            c.profile,
            c.der,
            c.not_before,
            c.not_after,
            c.requester,
            c.created_at,
            c.revoked_at,
            c.revocation_reason
        ],
    )?;
    Ok(())
}

pub(super) fn certificate(
    tx: &Connection,
    tenant: &TenantId,
    serial: &str,
) -> Result<Option<CertificateRecord>, StoreError> {
    let mut stmt =
        tx.prepare_cached(&format!("SELECT {CERT_COLUMNS} FROM certificates WHERE tenant_id = ?1 AND serial = ?2"))?;
    Ok(stmt.query_row(params![tenant.as_str(), serial], cert_from_row).optional()?)
}

pub(super) fn list_certificates(
    tx: &Connection,
    tenant: &TenantId,
    f: &CertificateFilter,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {CERT_COLUMNS} FROM certificates WHERE tenant_id = ?1 \
         AND (?2 IS NULL OR ca_id = ?2) AND (?3 IS NULL OR principal_id = ?3) \
         AND (?4 IS NULL OR (?4 = 1 AND revoked_at IS NOT NULL) OR (?4 = 0 AND revoked_at IS NULL)) \
         AND (?5 IS NULL OR requester = ?5) \
         ORDER BY created_at, serial"
    ))?;
    let rows =
        stmt.query_map(params![tenant.as_str(), f.ca_id, f.principal_id, f.revoked, f.requester], cert_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn revoked_entries(
    tx: &Connection,
    tenant: &TenantId,
    ca_id: &str,
    not_after_from: i64,
) -> Result<Vec<RevokedEntry>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT serial, revoked_at, revocation_reason FROM certificates INDEXED BY certificates_revoked \
         WHERE tenant_id = ?1 AND ca_id = ?2 AND not_after >= ?3 AND revoked_at IS NOT NULL ORDER BY serial",
    )?;
    let rows = stmt.query_map(params![tenant.as_str(), ca_id, not_after_from], |r| {
        Ok(RevokedEntry { serial: r.get(0)?, revoked_at: r.get(1)?, reason: r.get(2)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn revoked_entries_exceed(
    tx: &Connection,
    tenant: &TenantId,
    ca_id: &str,
    not_after_from: i64,
    limit: u64,
) -> Result<bool, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT 1 FROM certificates INDEXED BY certificates_revoked \
         WHERE tenant_id = ?1 AND ca_id = ?2 AND not_after >= ?3 AND revoked_at IS NOT NULL LIMIT 1 OFFSET ?4",
    )?;
    let offset = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(stmt.exists(params![tenant.as_str(), ca_id, not_after_from, offset])?)
}

pub(super) fn mark_crl_pending(tx: &Connection, tenant: &TenantId, ca_id: &str, at: i64) -> Result<i64, StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO crl_pending (tenant_id, ca_id, generation, marked_at) VALUES (?1, ?2, 1, ?3) \
         ON CONFLICT (tenant_id, ca_id) DO UPDATE SET generation = crl_pending.generation + 1 RETURNING generation",
    )?;
    Ok(stmt.query_row(params![tenant.as_str(), ca_id, at], |r| r.get(0))?)
}

pub(super) fn pending_crls(tx: &Connection, tenant: &TenantId) -> Result<Vec<CrlPending>, StoreError> {
    let mut stmt =
        tx.prepare_cached("SELECT ca_id, generation, marked_at FROM crl_pending WHERE tenant_id = ?1 ORDER BY ca_id")?;
    let rows = stmt.query_map(params![tenant.as_str()], |r| {
        Ok(CrlPending { ca_id: r.get(0)?, generation: r.get(1)?, marked_at: r.get(2)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn clear_crl_pending(
    tx: &Connection,
    tenant: &TenantId,
    ca_id: &str,
    generation: Option<i64>,
) -> Result<bool, StoreError> {
    Ok(tx.exec(
        "DELETE FROM crl_pending WHERE tenant_id = ?1 AND ca_id = ?2 AND (?3 IS NULL OR generation = ?3)",
        params![tenant.as_str(), ca_id, generation],
    )? > 0)
}

pub(super) fn tenants_with_pending_crls(tx: &Connection) -> Result<Vec<TenantId>, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT DISTINCT tenant_id FROM crl_pending ORDER BY tenant_id")?;
    let rows = stmt.query_map([], |r| Ok(TenantId::new(r.get::<_, String>(0)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn revoke_certificate(
    tx: &Connection,
    tenant: &TenantId,
    serial: &str,
    at: i64,
    reason: &str,
) -> Result<bool, StoreError> {
    Ok(tx.exec(
        "UPDATE certificates SET revoked_at = ?3, revocation_reason = ?4 \
         WHERE tenant_id = ?1 AND serial = ?2 AND revoked_at IS NULL",
        params![tenant.as_str(), serial, at, reason],
    )? > 0)
}

pub(super) fn put_crl(tx: &Connection, c: &CrlRecord) -> Result<(), StoreError> {
    put_crl_row(tx, c, None)
}

pub(super) fn put_delta_crl(tx: &Connection, d: &DeltaCrlRecord) -> Result<(), StoreError> {
    put_crl_row(tx, &d.crl, Some((d.base_number, d.base_this_update)))
}

/// Replaces a CA's complete CRL (`base_number` `None`, table `crls`) or
/// delta CRL (table `delta_crls`); one statement shape for both.
fn put_crl_row(tx: &Connection, c: &CrlRecord, base: Option<(i64, i64)>) -> Result<(), StoreError> {
    let (table, column, value, update) = match base {
        None => ("crls", "", "", ""),
        Some(_) => (
            "delta_crls",
            ", base_number, base_this_update",
            ", ?7, ?8",
            ", base_number = excluded.base_number, base_this_update = excluded.base_this_update",
        ),
    };
    let sql = format!(
        "INSERT INTO {table} (ca_id, tenant_id, number, der, this_update, next_update{column}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6{value}) \
         ON CONFLICT (ca_id) DO UPDATE SET number = excluded.number, der = excluded.der, \
         this_update = excluded.this_update, next_update = excluded.next_update{update} \
         WHERE {table}.tenant_id = excluded.tenant_id"
    );
    let tenant = c.tenant_id.as_str();
    let mut values: Vec<&dyn rusqlite::ToSql> =
        vec![&c.ca_id, &tenant, &c.number, &c.der, &c.this_update, &c.next_update];
    if let Some((number, this_update)) = &base {
        values.extend([number as &dyn rusqlite::ToSql, this_update]);
    }
    tx.exec(&sql, values.as_slice())?;
    Ok(())
}

pub(super) fn crl(tx: &Connection, tenant: &TenantId, ca_id: &str) -> Result<Option<CrlRecord>, StoreError> {
    Ok(crl_row(tx, tenant, ca_id, "crls", "0, 0")?.map(|d| d.crl))
}

pub(super) fn delta_crl(tx: &Connection, tenant: &TenantId, ca_id: &str) -> Result<Option<DeltaCrlRecord>, StoreError> {
    crl_row(tx, tenant, ca_id, "delta_crls", "base_number, base_this_update")
}

/// A CA's row of `table` with its two `base` columns, read as a delta
/// CRL's (`0, 0` for a complete CRL, whose caller keeps only `crl`).
fn crl_row(
    tx: &Connection,
    tenant: &TenantId,
    ca_id: &str,
    table: &str,
    base: &str,
) -> Result<Option<DeltaCrlRecord>, StoreError> {
    Ok(tx
        .row(
            &format!(
                "SELECT ca_id, tenant_id, number, der, this_update, next_update, {base} FROM {table} \
                 WHERE tenant_id = ?1 AND ca_id = ?2"
            ),
            params![tenant.as_str(), ca_id],
            |r| {
                let crl = CrlRecord {
                    ca_id: r.get(0)?,
                    tenant_id: TenantId::new(r.get::<_, String>(1)?),
                    number: r.get(2)?,
                    der: r.get(3)?,
                    this_update: r.get(4)?,
                    next_update: r.get(5)?,
                };
                Ok(DeltaCrlRecord { crl, base_number: r.get(6)?, base_this_update: r.get(7)? })
            },
        )
        .optional()?)
}

pub(super) fn put_ocsp_responder(tx: &Connection, r: &OcspResponderRecord) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO ocsp_responders (ca_id, tenant_id, cert_der, sealed_key, not_before, not_after, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (ca_id) DO UPDATE SET cert_der = excluded.cert_der, sealed_key = excluded.sealed_key, \
         not_before = excluded.not_before, not_after = excluded.not_after, created_at = excluded.created_at \
         WHERE ocsp_responders.tenant_id = excluded.tenant_id",
        params![r.ca_id, r.tenant_id.as_str(), r.cert_der, r.sealed_key, r.not_before, r.not_after, r.created_at],
    )?;
    Ok(())
}

pub(super) fn ocsp_responder(
    tx: &Connection,
    tenant: &TenantId,
    ca_id: &str,
) -> Result<Option<OcspResponderRecord>, StoreError> {
    Ok(tx
        .row(
            "SELECT ca_id, tenant_id, cert_der, sealed_key, not_before, not_after, created_at FROM ocsp_responders \
             WHERE tenant_id = ?1 AND ca_id = ?2",
            params![tenant.as_str(), ca_id],
            |r| {
                Ok(OcspResponderRecord {
                    ca_id: r.get(0)?,
                    tenant_id: TenantId::new(r.get::<_, String>(1)?),
                    cert_der: r.get(2)?,
                    sealed_key: r.get(3)?,
                    not_before: r.get(4)?,
                    not_after: r.get(5)?,
                    created_at: r.get(6)?,
                })
            },
        )
        .optional()?)
}

/// Removes every CA row of a tenant (part of deleting the tenant).
pub(super) fn delete_tenant_rows(tx: &Connection, tenant: &str) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM crls WHERE tenant_id = ?1",
        "DELETE FROM delta_crls WHERE tenant_id = ?1",
        "DELETE FROM ocsp_responders WHERE tenant_id = ?1",
        "DELETE FROM crl_pending WHERE tenant_id = ?1",
        "DELETE FROM certificates WHERE tenant_id = ?1",
        "DELETE FROM cas WHERE tenant_id = ?1",
        "DELETE FROM ca_requests WHERE tenant_id = ?1",
    ] {
        tx.exec(sql, params![tenant])?;
    }
    Ok(())
}

const REQUEST_COLUMNS: &str = "id, tenant_id, name, csr_der, sealed_key, created_at";

pub(super) fn insert_ca_request(tx: &Connection, r: &CaRequestRecord) -> Result<(), StoreError> {
    tx.exec(
        &format!("INSERT INTO ca_requests ({REQUEST_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![r.id, r.tenant_id.as_str(), r.name, r.csr_der, r.sealed_key, r.created_at],
    )?;
    Ok(())
}

pub(super) fn ca_request(
    tx: &Connection,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<CaRequestRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {REQUEST_COLUMNS} FROM ca_requests WHERE tenant_id = ?1 AND lower(name) = lower(?2)"
    ))?;
    let row = stmt.query_row(params![tenant.as_str(), name], |r| {
        Ok(CaRequestRecord {
            id: r.get(0)?,
            tenant_id: TenantId::new(r.get::<_, String>(1)?),
            name: r.get(2)?,
            csr_der: r.get(3)?,
            sealed_key: r.get(4)?,
            created_at: r.get(5)?,
        })
    });
    Ok(row.optional()?)
}

pub(super) fn delete_ca_request(tx: &Connection, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
    let n = tx.exec("DELETE FROM ca_requests WHERE tenant_id = ?1 AND id = ?2", params![tenant.as_str(), id])?;
    Ok(n > 0)
}
