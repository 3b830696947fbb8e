//! PostgreSQL queries of the OpenID provider: its clients.

use postgres::Row;

use super::PgTx;
use crate::{OidcClientRecord, StoreError, TenantId};

const COLUMNS: &str = "id, tenant_id, name, principal_id, secret_hash, spec, created_at, updated_at";

fn from_row(r: &Row) -> OidcClientRecord {
    OidcClientRecord {
        id: r.get(0),
        tenant_id: TenantId::new(r.get::<_, String>(1)),
        name: r.get(2),
        principal_id: r.get(3),
        secret_hash: r.get(4),
        spec: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
    }
}

impl PgTx<'_> {
    pub(super) fn pg_insert_oidc_client(&mut self, c: &OidcClientRecord) -> Result<(), StoreError> {
        let r = self.execute(
            &format!("INSERT INTO oidc_clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
            &[
                &c.id,
                &c.tenant_id.as_str(),
                &c.name,
                &c.principal_id,
                &c.secret_hash,
                &c.spec,
                &c.created_at,
                &c.updated_at,
            ],
        );
        self.track(r).map(drop)
    }

    pub(super) fn pg_update_oidc_client(&mut self, c: &OidcClientRecord) -> Result<bool, StoreError> {
        let r = self.execute(
            "UPDATE oidc_clients SET secret_hash = $3, spec = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2",
            &[&c.tenant_id.as_str(), &c.id, &c.secret_hash, &c.spec, &c.updated_at],
        );
        Ok(self.track(r)? > 0)
    }

    pub(super) fn pg_oidc_client(
        &mut self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<OidcClientRecord>, StoreError> {
        let r = self.query_opt(
            &format!("SELECT {COLUMNS} FROM oidc_clients WHERE tenant_id = $1 AND id = $2"),
            &[&tenant.as_str(), &id],
        );
        Ok(self.track(r)?.as_ref().map(from_row))
    }

    pub(super) fn pg_oidc_client_by_name(
        &mut self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<OidcClientRecord>, StoreError> {
        let r = self.query_opt(
            &format!("SELECT {COLUMNS} FROM oidc_clients WHERE tenant_id = $1 AND lower(name) = lower($2)"),
            &[&tenant.as_str(), &name],
        );
        Ok(self.track(r)?.as_ref().map(from_row))
    }

    pub(super) fn pg_list_oidc_clients(&mut self, tenant: &TenantId) -> Result<Vec<OidcClientRecord>, StoreError> {
        let r = self.query(
            &format!("SELECT {COLUMNS} FROM oidc_clients WHERE tenant_id = $1 ORDER BY lower(name)"),
            &[&tenant.as_str()],
        );
        Ok(self.track(r)?.iter().map(from_row).collect())
    }

    pub(super) fn pg_delete_oidc_client(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let r = self.execute("DELETE FROM oidc_clients WHERE tenant_id = $1 AND id = $2", &[&tenant.as_str(), &id]);
        Ok(self.track(r)? > 0)
    }

    pub(super) fn pg_delete_principal_oidc_clients(
        &mut self,
        tenant: &TenantId,
        principal_id: &str,
    ) -> Result<usize, StoreError> {
        let r = self.execute(
            "DELETE FROM oidc_clients WHERE tenant_id = $1 AND principal_id = $2",
            &[&tenant.as_str(), &principal_id],
        );
        Ok(usize::try_from(self.track(r)?).unwrap_or(usize::MAX))
    }

    pub(super) fn pg_revoke_token(
        &mut self,
        tenant: &TenantId,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = self.execute(
            "INSERT INTO revoked_tokens (tenant_id, jti, expires_at, revoked_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, jti) DO NOTHING",
            &[&tenant.as_str(), &jti, &expires_at, &now],
        );
        Ok(self.track(r)? > 0)
    }

    pub(super) fn pg_token_revoked(&mut self, tenant: &TenantId, jti: &str) -> Result<bool, StoreError> {
        let r =
            self.query_opt("SELECT 1 FROM revoked_tokens WHERE tenant_id = $1 AND jti = $2", &[&tenant.as_str(), &jti]);
        Ok(self.track(r)?.is_some())
    }

    pub(super) fn pg_prune_revoked_tokens(&mut self, now: i64) -> Result<usize, StoreError> {
        let r = self.execute("DELETE FROM revoked_tokens WHERE expires_at <= $1", &[&now]);
        Ok(usize::try_from(self.track(r)?).unwrap_or(usize::MAX))
    }
}
