//! PostgreSQL queries of the token service: token keys.

use postgres::Row;

use super::PgTx;
use crate::{StoreError, TenantId, TokenKeyRecord};

const COLUMNS: &str =
    "id, tenant_id, algorithm, public_jwk, sealed_key, created_at, activates_at, retires_at, expires_at";

fn key_from_row(r: &Row) -> TokenKeyRecord {
    TokenKeyRecord {
        id: r.get(0),
        tenant_id: TenantId::new(r.get::<_, String>(1)),
        algorithm: r.get(2),
        public_jwk: r.get(3),
        sealed_key: r.get(4),
        created_at: r.get(5),
        activates_at: r.get(6),
        retires_at: r.get(7),
        expires_at: r.get(8),
    }
}

impl PgTx<'_> {
    pub(super) fn pg_insert_token_key(&mut self, k: &TokenKeyRecord) -> Result<(), StoreError> {
        let r = self.execute(
            &format!("INSERT INTO token_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
            &[
                &k.id,
                &k.tenant_id.as_str(),
                &k.algorithm,
                &k.public_jwk,
                &k.sealed_key,
                &k.created_at,
                &k.activates_at,
                &k.retires_at,
                &k.expires_at,
            ],
        );
        self.track(r).map(drop)
    }

    pub(super) fn pg_list_token_keys(&mut self, tenant: &TenantId) -> Result<Vec<TokenKeyRecord>, StoreError> {
        let r = self.query(
            &format!("SELECT {COLUMNS} FROM token_keys WHERE tenant_id = $1 ORDER BY activates_at, id"),
            &[&tenant.as_str()],
        );
        Ok(self.track(r)?.iter().map(key_from_row).collect())
    }

    pub(super) fn pg_prune_token_keys(&mut self, tenant: &TenantId, now: i64) -> Result<usize, StoreError> {
        let r =
            self.execute("DELETE FROM token_keys WHERE tenant_id = $1 AND expires_at <= $2", &[&tenant.as_str(), &now]);
        Ok(usize::try_from(self.track(r)?).unwrap_or(usize::MAX))
    }

    pub(super) fn pg_delete_tenant_token_rows(&mut self, tenant: &str) -> Result<(), StoreError> {
        let r = self.execute("DELETE FROM token_keys WHERE tenant_id = $1", &[&tenant]);
        self.track(r).map(drop)
    }
}
