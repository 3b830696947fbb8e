//! PostgreSQL queries of domain join: join tokens and trust revisions.

use postgres::Row;

use super::PgTx;
use crate::{JoinTokenRecord, StoreError, TenantId};

/// The table of the trust revisions.
pub(super) const TRUST: &str = "trust_revisions";
/// The table of the directory revisions.
pub(super) const DIRECTORY: &str = "directory_revisions";

const COLUMNS: &str =
    "id, tenant_id, token_hash, hostname, uses_left, expires_at, revoked, allow_rejoin, created_by, created_at, ips";

fn token_from_row(r: &Row) -> Result<JoinTokenRecord, StoreError> {
    Ok(JoinTokenRecord {
        id: r.get(0),
        tenant_id: TenantId::new(r.get::<_, String>(1)),
        token_hash: r.get(2),
        hostname: r.get(3),
        uses_left: r.get(4),
        expires_at: r.get(5),
        revoked: r.get(6),
        allow_rejoin: r.get(7),
        created_by: r.get(8),
        created_at: r.get(9),
        ips: super::json_list(r.get::<_, &str>(10))?,
    })
}

impl PgTx<'_> {
    pub(super) fn pg_insert_join_token(&mut self, t: &JoinTokenRecord) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO join_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
        let r = self.execute(
            &sql,
            &[
                &t.id,
                &t.tenant_id.as_str(),
                &t.token_hash,
                &t.hostname,
                &t.uses_left,
                &t.expires_at,
                &t.revoked,
                &t.allow_rejoin,
                &t.created_by,
                &t.created_at,
                &super::to_json(&t.ips),
            ],
        );
        self.track(r).map(drop)
    }

    pub(super) fn pg_join_token_by_hash(
        &mut self,
        tenant: &TenantId,
        hash: &[u8],
    ) -> Result<Option<JoinTokenRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM join_tokens WHERE tenant_id = $1 AND token_hash = $2");
        let r = self.query_opt(&sql, &[&tenant.as_str(), &hash]);
        self.track(r)?.as_ref().map(token_from_row).transpose()
    }

    pub(super) fn pg_join_token(&mut self, tenant: &TenantId, id: &str) -> Result<Option<JoinTokenRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM join_tokens WHERE tenant_id = $1 AND id = $2");
        let r = self.query_opt(&sql, &[&tenant.as_str(), &id]);
        self.track(r)?.as_ref().map(token_from_row).transpose()
    }

    pub(super) fn pg_list_join_tokens(&mut self, tenant: &TenantId) -> Result<Vec<JoinTokenRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM join_tokens WHERE tenant_id = $1 ORDER BY created_at DESC, id");
        let r = self.query(&sql, &[&tenant.as_str()]);
        self.track(r)?.iter().map(token_from_row).collect()
    }

    pub(super) fn pg_update_join_token(&mut self, t: &JoinTokenRecord) -> Result<(), StoreError> {
        let r = self.execute(
            "UPDATE join_tokens SET uses_left = $3, revoked = $4 WHERE tenant_id = $1 AND id = $2",
            &[&t.tenant_id.as_str(), &t.id, &t.uses_left, &t.revoked],
        );
        self.track(r).map(drop)
    }

    /// A tenant's revision in `table` (`TRUST` or `DIRECTORY`), 0 before the first bump.
    pub(super) fn pg_revision(&mut self, table: &str, tenant: &TenantId) -> Result<i64, StoreError> {
        let r = self.query_opt(&format!("SELECT revision FROM {table} WHERE tenant_id = $1"), &[&tenant.as_str()]);
        Ok(self.track(r)?.map(|r| r.get(0)).unwrap_or(0))
    }

    /// Increments a tenant's revision in `table` and returns the new value.
    pub(super) fn pg_bump_revision(&mut self, table: &str, tenant: &TenantId) -> Result<i64, StoreError> {
        let sql = format!(
            "INSERT INTO {table} (tenant_id, revision) VALUES ($1, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET revision = {table}.revision + 1 RETURNING revision"
        );
        let r = self.query_one(&sql, &[&tenant.as_str()]);
        Ok(self.track(r)?.get(0))
    }

    pub(super) fn pg_bump_trust_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError> {
        let revision = self.pg_bump_revision(TRUST, tenant)?;
        // Delivered to every LISTENing replica when (and only if) this transaction commits.
        let r = self.execute("SELECT pg_notify($1, $2)", &[&super::listen::TRUST_CHANNEL, &tenant.as_str()]);
        self.track(r)?;
        Ok(revision)
    }

    pub(super) fn pg_trust_revisions(&mut self) -> Result<Vec<(TenantId, i64)>, StoreError> {
        let r = self.query("SELECT tenant_id, revision FROM trust_revisions", &[]);
        Ok(self.track(r)?.iter().map(|r| (TenantId::new(r.get::<_, String>(0)), r.get(1))).collect())
    }

    /// Removes a tenant's join rows (part of deleting the tenant).
    pub(super) fn pg_delete_tenant_join_rows(&mut self, tenant: &str) -> Result<(), StoreError> {
        for table in ["join_tokens", "trust_changes", TRUST, DIRECTORY] {
            let r = self.execute(&format!("DELETE FROM {table} WHERE tenant_id = $1"), &[&tenant]);
            self.track(r)?;
        }
        Ok(())
    }
}
