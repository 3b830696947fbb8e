//! PostgreSQL queries of the certificate authority tables.

use postgres::Row;
use postgres::types::ToSql;

use super::PgTx;
use crate::{
    CaRecord, CaRequestRecord, CaRole, CaStatus, CertificateFilter, CertificateRecord, CrlPending, CrlRecord,
    DeltaCrlRecord, OcspResponderRecord, PrincipalKind, RevokedEntry, StoreError, TenantId,
};

const CA_COLUMNS: &str = "id, tenant_id, name, parent_id, role, cert_der, sealed_key, status, is_default, \
     next_crl_number, revoked_at, revocation_reason, created_at";

const CERT_COLUMNS: &str = "serial, tenant_id, ca_id, principal_id, principal_kind, principal_name, profile, der, \
     not_before, not_after, requester, created_at, revoked_at, revocation_reason";

fn ca_from_row(r: &Row) -> Result<CaRecord, StoreError> {
    Ok(CaRecord {
        id: r.get(0),
        tenant_id: TenantId::new(r.get::<_, String>(1)),
        name: r.get(2),
        parent_id: r.get(3),
        role: CaRole::parse(r.get(4)).ok_or_else(|| StoreError::Corrupt("unknown CA role".into()))?,
        cert_der: r.get(5),
        sealed_key: r.get(6),
        status: CaStatus::parse(r.get(7)).ok_or_else(|| StoreError::Corrupt("unknown CA status".into()))?,
        is_default: r.get(8),
        next_crl_number: r.get(9),
        revoked_at: r.get(10),
        revocation_reason: r.get(11),
        created_at: r.get(12),
    })
}

fn cert_from_row(r: &Row) -> Result<CertificateRecord, StoreError> {
    Ok(CertificateRecord {
        serial: r.get(0),
        tenant_id: TenantId::new(r.get::<_, String>(1)),
        ca_id: r.get(2),
        principal_id: r.get(3),
        principal_kind: PrincipalKind::parse(r.get(4))
            .ok_or_else(|| StoreError::Corrupt("unknown principal kind".into()))?,
        principal_name: r.get(5),
        profile: r.get(6),
        der: r.get(7),
        not_before: r.get(8),
        not_after: r.get(9),
        requester: r.get(10),
        created_at: r.get(11),
        revoked_at: r.get(12),
        revocation_reason: r.get(13),
    })
}

impl PgTx<'_> {
    pub(super) fn pg_insert_ca(&mut self, ca: &CaRecord) -> Result<(), StoreError> {
        let sql =
            format!("INSERT INTO cas ({CA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)");
        let r = self.execute(
            &sql,
            &[
                &ca.id,
                &ca.tenant_id.as_str(),
                &ca.name,
                &ca.parent_id,
                &ca.role.as_str(),
                &ca.cert_der,
                &ca.sealed_key,
                &ca.status.as_str(),
                &ca.is_default,
                &ca.next_crl_number,
                &ca.revoked_at,
                &ca.revocation_reason,
                &ca.created_at,
            ],
        );
        self.track(r).map(drop)
    }

    pub(super) fn pg_ca(&mut self, tenant: &TenantId, id: &str) -> Result<Option<CaRecord>, StoreError> {
        let sql = format!("SELECT {CA_COLUMNS} FROM cas WHERE tenant_id = $1 AND id = $2");
        let r = self.query_opt(&sql, &[&tenant.as_str(), &id]);
        self.track(r)?.as_ref().map(ca_from_row).transpose()
    }

    pub(super) fn pg_list_cas(&mut self, tenant: &TenantId) -> Result<Vec<CaRecord>, StoreError> {
        let sql = format!("SELECT {CA_COLUMNS} FROM cas WHERE tenant_id = $1 ORDER BY created_at, name");
        let r = self.query(&sql, &[&tenant.as_str()]);
        self.track(r)?.iter().map(ca_from_row).collect()
    }

    pub(super) fn pg_update_ca(&mut self, ca: &CaRecord) -> Result<(), StoreError> {
        let r = self.execute(
            "UPDATE cas SET status = $3, is_default = $4, next_crl_number = $5, revoked_at = $6, \
             revocation_reason = $7 WHERE tenant_id = $1 AND id = $2",
            &[
                &ca.tenant_id.as_str(),
                &ca.id,
                &ca.status.as_str(),
                &ca.is_default,
                &ca.next_crl_number,
                &ca.revoked_at,
                &ca.revocation_reason,
            ],
        );
        if self.track(r)? == 0 {
            return Err(StoreError::Backend(format!("CA {} not found for update", ca.id)));
        }
        Ok(())
    }

    pub(super) fn pg_insert_certificate(&mut self, c: &CertificateRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO certificates ({CERT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        let r = self.execute(
            &sql,
            &[
                &c.serial,
                &c.tenant_id.as_str(),
                &c.ca_id,
                &c.principal_id,
                &c.principal_kind.as_str(),
                &c.principal_name,
                &c.profile,
                &c.der,
                &c.not_before,
                &c.not_after,
                &c.requester,
                &c.created_at,
                &c.revoked_at,
                &c.revocation_reason,
            ],
        );
        self.track(r).map(drop)
    }

    /// Certificates a statement at a time, each statement a few thousand
    /// rows sent as one array a column: one round trip per chunk, not per row.
    pub(super) fn pg_insert_certificate_rows(&mut self, certs: &[CertificateRecord]) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO certificates ({CERT_COLUMNS}) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], \
             $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::bigint[], $10::bigint[], $11::text[], \
             $12::bigint[], $13::bigint[], $14::text[])"
        );
        for chunk in certs.chunks(super::BULK_ROWS) {
            let col = |f: fn(&CertificateRecord) -> &str| chunk.iter().map(f).collect::<Vec<_>>();
            let num = |f: fn(&CertificateRecord) -> i64| chunk.iter().map(f).collect::<Vec<_>>();
            let der: Vec<&[u8]> = chunk.iter().map(|c| c.der.as_slice()).collect();
            let revoked_at: Vec<Option<i64>> = chunk.iter().map(|c| c.revoked_at).collect();
            let reason: Vec<Option<&str>> = chunk.iter().map(|c| c.revocation_reason.as_deref()).collect();
            let r = self.execute(
                &sql,
                &[
                    &col(|c| &c.serial),
                    &col(|c| c.tenant_id.as_str()),
                    &col(|c| &c.ca_id),
                    &col(|c| &c.principal_id),
                    &col(|c| c.principal_kind.as_str()),
                    &col(|c| &c.principal_name),
                    &col(|c| &c.profile),
                    &der,
                    &num(|c| c.not_before),
                    &num(|c| c.not_after),
                    &col(|c| &c.requester),
                    &num(|c| c.created_at),
                    &revoked_at,
                    &reason,
                ],
            );
            self.track(r)?;
        }
        Ok(())
    }

    pub(super) fn pg_certificate(
        &mut self,
        tenant: &TenantId,
        serial: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE tenant_id = $1 AND serial = $2");
        let r = self.query_opt(&sql, &[&tenant.as_str(), &serial]);
        self.track(r)?.as_ref().map(cert_from_row).transpose()
    }

    pub(super) fn pg_list_certificates(
        &mut self,
        tenant: &TenantId,
        f: &CertificateFilter,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE tenant_id = $1 \
             AND ($2::TEXT IS NULL OR ca_id = $2) AND ($3::TEXT IS NULL OR principal_id = $3) \
             AND ($4::BOOLEAN IS NULL OR ($4 AND revoked_at IS NOT NULL) OR (NOT $4 AND revoked_at IS NULL)) \
             AND ($5::TEXT IS NULL OR requester = $5) \
             ORDER BY created_at, serial"
        );
        let r = self.query(&sql, &[&tenant.as_str(), &f.ca_id, &f.principal_id, &f.revoked, &f.requester]);
        self.track(r)?.iter().map(cert_from_row).collect()
    }

    pub(super) fn pg_revoked_entries(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        not_after_from: i64,
    ) -> Result<Vec<RevokedEntry>, StoreError> {
        let r = self.query(
            "SELECT serial, revoked_at, revocation_reason FROM certificates \
             WHERE tenant_id = $1 AND ca_id = $2 AND not_after >= $3 AND revoked_at IS NOT NULL ORDER BY serial",
            &[&tenant.as_str(), &ca_id, &not_after_from],
        );
        Ok(self
            .track(r)?
            .iter()
            .map(|r| RevokedEntry { serial: r.get(0), revoked_at: r.get(1), reason: r.get(2) })
            .collect())
    }

    pub(super) fn pg_revoked_entries_exceed(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        not_after_from: i64,
        limit: u64,
    ) -> Result<bool, StoreError> {
        let offset = i64::try_from(limit).unwrap_or(i64::MAX);
        let r = self.query_opt(
            "SELECT 1 FROM certificates \
             WHERE tenant_id = $1 AND ca_id = $2 AND not_after >= $3 AND revoked_at IS NOT NULL LIMIT 1 OFFSET $4",
            &[&tenant.as_str(), &ca_id, &not_after_from, &offset],
        );
        Ok(self.track(r)?.is_some())
    }

    pub(super) fn pg_mark_crl_pending(&mut self, tenant: &TenantId, ca_id: &str, at: i64) -> Result<i64, StoreError> {
        let r = self.query_one(
            "INSERT INTO crl_pending (tenant_id, ca_id, generation, marked_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (tenant_id, ca_id) DO UPDATE SET generation = crl_pending.generation + 1 \
             RETURNING generation",
            &[&tenant.as_str(), &ca_id, &at],
        );
        Ok(self.track(r)?.get(0))
    }

    pub(super) fn pg_pending_crls(&mut self, tenant: &TenantId) -> Result<Vec<CrlPending>, StoreError> {
        let r = self.query(
            "SELECT ca_id, generation, marked_at FROM crl_pending WHERE tenant_id = $1 ORDER BY ca_id",
            &[&tenant.as_str()],
        );
        Ok(self
            .track(r)?
            .iter()
            .map(|r| CrlPending { ca_id: r.get(0), generation: r.get(1), marked_at: r.get(2) })
            .collect())
    }

    pub(super) fn pg_clear_crl_pending(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        generation: Option<i64>,
    ) -> Result<bool, StoreError> {
        let r = self.execute(
            "DELETE FROM crl_pending WHERE tenant_id = $1 AND ca_id = $2 AND ($3::BIGINT IS NULL OR generation = $3)",
            &[&tenant.as_str(), &ca_id, &generation],
        );
        Ok(self.track(r)? > 0)
    }

    pub(super) fn pg_tenants_with_pending_crls(&mut self) -> Result<Vec<TenantId>, StoreError> {
        let r = self.query("SELECT DISTINCT tenant_id FROM crl_pending ORDER BY tenant_id", &[]);
        Ok(self.track(r)?.iter().map(|r| TenantId::new(r.get::<_, String>(0))).collect())
    }

    pub(super) fn pg_revoke_certificate(
        &mut self,
        tenant: &TenantId,
        serial: &str,
        at: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let r = self.execute(
            "UPDATE certificates SET revoked_at = $3, revocation_reason = $4 \
             WHERE tenant_id = $1 AND serial = $2 AND revoked_at IS NULL",
            &[&tenant.as_str(), &serial, &at, &reason],
        );
        Ok(self.track(r)? > 0)
    }

    pub(super) fn pg_put_crl(&mut self, c: &CrlRecord) -> Result<(), StoreError> {
        self.pg_put_crl_row(c, None)
    }

    pub(super) fn pg_put_delta_crl(&mut self, d: &DeltaCrlRecord) -> Result<(), StoreError> {
        self.pg_put_crl_row(&d.crl, Some((d.base_number, d.base_this_update)))
    }

    /// Replaces a CA's complete CRL (`base_number` `None`, table `crls`) or
    /// delta CRL (table `delta_crls`); one statement shape for both.
    fn pg_put_crl_row(&mut self, c: &CrlRecord, base: Option<(i64, i64)>) -> Result<(), StoreError> {
        let (table, column, value, update) = match base {
            None => ("crls", "", "", ""),
            Some(_) => (
                "delta_crls",
                ", base_number, base_this_update",
                ", $7, $8",
                ", base_number = excluded.base_number, base_this_update = excluded.base_this_update",
            ),
        };
        let sql = format!(
            "INSERT INTO {table} (ca_id, tenant_id, number, der, this_update, next_update{column}) \
             VALUES ($1, $2, $3, $4, $5, $6{value}) \
             ON CONFLICT (ca_id) DO UPDATE SET number = excluded.number, der = excluded.der, \
             this_update = excluded.this_update, next_update = excluded.next_update{update} \
             WHERE {table}.tenant_id = excluded.tenant_id"
        );
        let tenant = c.tenant_id.as_str();
        let mut values: Vec<&(dyn ToSql + Sync)> =
            vec![&c.ca_id, &tenant, &c.number, &c.der, &c.this_update, &c.next_update];
        if let Some((number, this_update)) = &base {
            values.extend([number as &(dyn ToSql + Sync), this_update]);
        }
        let r = self.execute(&sql, &values);
        self.track(r).map(drop)
    }

    pub(super) fn pg_crl(&mut self, tenant: &TenantId, ca_id: &str) -> Result<Option<CrlRecord>, StoreError> {
        Ok(self.pg_crl_row(tenant, ca_id, "crls", "0::BIGINT, 0::BIGINT")?.map(|d| d.crl))
    }

    pub(super) fn pg_delta_crl(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
    ) -> Result<Option<DeltaCrlRecord>, StoreError> {
        self.pg_crl_row(tenant, ca_id, "delta_crls", "base_number, base_this_update")
    }

    /// A CA's row of `table` with its two `base` columns, read as a delta
    /// CRL's (`0, 0` for a complete CRL, whose caller keeps only `crl`).
    fn pg_crl_row(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        table: &str,
        base: &str,
    ) -> Result<Option<DeltaCrlRecord>, StoreError> {
        let r = self.query_opt(
            &format!(
                "SELECT ca_id, tenant_id, number, der, this_update, next_update, {base} FROM {table} \
                 WHERE tenant_id = $1 AND ca_id = $2"
            ),
            &[&tenant.as_str(), &ca_id],
        );
        Ok(self.track(r)?.map(|r| {
            let crl = CrlRecord {
                ca_id: r.get(0),
                tenant_id: TenantId::new(r.get::<_, String>(1)),
                number: r.get(2),
                der: r.get(3),
                this_update: r.get(4),
                next_update: r.get(5),
            };
            DeltaCrlRecord { crl, base_number: r.get(6), base_this_update: r.get(7) }
        }))
    }

    pub(super) fn pg_put_ocsp_responder(&mut self, o: &OcspResponderRecord) -> Result<(), StoreError> {
        let r = self.execute(
            "INSERT INTO ocsp_responders (ca_id, tenant_id, cert_der, sealed_key, not_before, not_after, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (ca_id) DO UPDATE SET cert_der = excluded.cert_der, sealed_key = excluded.sealed_key, \
             not_before = excluded.not_before, not_after = excluded.not_after, created_at = excluded.created_at \
             WHERE ocsp_responders.tenant_id = excluded.tenant_id",
            &[&o.ca_id, &o.tenant_id.as_str(), &o.cert_der, &o.sealed_key, &o.not_before, &o.not_after, &o.created_at],
        );
        self.track(r).map(drop)
    }

    pub(super) fn pg_ocsp_responder(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
    ) -> Result<Option<OcspResponderRecord>, StoreError> {
        let r = self.query_opt(
            "SELECT ca_id, tenant_id, cert_der, sealed_key, not_before, not_after, created_at FROM ocsp_responders \
             WHERE tenant_id = $1 AND ca_id = $2",
            &[&tenant.as_str(), &ca_id],
        );
        Ok(self.track(r)?.map(|r| OcspResponderRecord {
            ca_id: r.get(0),
            tenant_id: TenantId::new(r.get::<_, String>(1)),
            cert_der: r.get(2),
            sealed_key: r.get(3),
            not_before: r.get(4),
            not_after: r.get(5),
            created_at: r.get(6),
        }))
    }

    /// Removes every CA row of a tenant (part of deleting the tenant).
    pub(super) fn pg_delete_tenant_ca_rows(&mut self, tenant: &str) -> Result<(), StoreError> {
        for sql in [
            "DELETE FROM crls WHERE tenant_id = $1",
            "DELETE FROM delta_crls WHERE tenant_id = $1",
            "DELETE FROM ocsp_responders WHERE tenant_id = $1",
            "DELETE FROM crl_pending WHERE tenant_id = $1",
            "DELETE FROM certificates WHERE tenant_id = $1",
            "DELETE FROM cas WHERE tenant_id = $1",
            "DELETE FROM ca_requests WHERE tenant_id = $1",
        ] {
            let r = self.execute(sql, &[&tenant]);
            self.track(r)?;
        }
        Ok(())
    }

    pub(super) fn pg_insert_ca_request(&mut self, q: &CaRequestRecord) -> Result<(), StoreError> {
        let r = self.execute(
            "INSERT INTO ca_requests (id, tenant_id, name, csr_der, sealed_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&q.id, &q.tenant_id.as_str(), &q.name, &q.csr_der, &q.sealed_key, &q.created_at],
        );
        self.track(r).map(drop)
    }

    pub(super) fn pg_ca_request(
        &mut self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<CaRequestRecord>, StoreError> {
        let r = self.query_opt(
            "SELECT id, tenant_id, name, csr_der, sealed_key, created_at FROM ca_requests \
             WHERE tenant_id = $1 AND lower(name) = lower($2)",
            &[&tenant.as_str(), &name],
        );
        Ok(self.track(r)?.map(|r| CaRequestRecord {
            id: r.get(0),
            tenant_id: TenantId::new(r.get::<_, String>(1)),
            name: r.get(2),
            csr_der: r.get(3),
            sealed_key: r.get(4),
            created_at: r.get(5),
        }))
    }

    pub(super) fn pg_delete_ca_request(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let r = self.execute("DELETE FROM ca_requests WHERE tenant_id = $1 AND id = $2", &[&tenant.as_str(), &id]);
        Ok(self.track(r)? > 0)
    }
}
