//! PostgreSQL queries of workload identity: workload entries.

use postgres::Row;

use super::PgTx;
use crate::{FederationRecord, StoreError, TenantId, WorkloadEntryRecord};

const COLUMNS: &str = "id, tenant_id, name, service_id, spec, created_at";
const FEDERATION_COLUMNS: &str = "tenant_id, trust_domain, endpoint_url, endpoint_ca_pem, bundle, sequence, \
     fetched_at, next_fetch_at, last_error, created_at, updated_at";

fn federation_from_row(r: &Row) -> FederationRecord {
    FederationRecord {
        tenant_id: TenantId::new(r.get::<_, String>(0)),
        trust_domain: r.get(1),
        endpoint_url: r.get(2),
        endpoint_ca_pem: r.get(3),
        bundle: r.get(4),
        sequence: r.get(5),
        fetched_at: r.get(6),
        next_fetch_at: r.get(7),
        last_error: r.get(8),
        created_at: r.get(9),
        updated_at: r.get(10),
    }
}

fn entry_from_row(r: &Row) -> WorkloadEntryRecord {
    WorkloadEntryRecord {
        id: r.get(0),
        tenant_id: TenantId::new(r.get::<_, String>(1)),
        name: r.get(2),
        service_id: r.get(3),
        spec: r.get(4),
        created_at: r.get(5),
    }
}

impl PgTx<'_> {
    pub(super) fn pg_insert_workload_entry(&mut self, e: &WorkloadEntryRecord) -> Result<(), StoreError> {
        let r = self.execute(
            &format!("INSERT INTO workload_entries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            &[&e.id, &e.tenant_id.as_str(), &e.name, &e.service_id, &e.spec, &e.created_at],
        );
        self.track(r).map(drop)
    }

    pub(super) fn pg_workload_entry(
        &mut self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<WorkloadEntryRecord>, StoreError> {
        let r = self.query_opt(
            &format!("SELECT {COLUMNS} FROM workload_entries WHERE tenant_id = $1 AND lower(name) = lower($2)"),
            &[&tenant.as_str(), &name],
        );
        Ok(self.track(r)?.as_ref().map(entry_from_row))
    }

    pub(super) fn pg_list_workload_entries(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Vec<WorkloadEntryRecord>, StoreError> {
        let r = self.query(
            &format!("SELECT {COLUMNS} FROM workload_entries WHERE tenant_id = $1 ORDER BY lower(name)"),
            &[&tenant.as_str()],
        );
        Ok(self.track(r)?.iter().map(entry_from_row).collect())
    }

    pub(super) fn pg_delete_workload_entry(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let r = self.execute("DELETE FROM workload_entries WHERE tenant_id = $1 AND id = $2", &[&tenant.as_str(), &id]);
        Ok(self.track(r)? > 0)
    }

    pub(super) fn pg_delete_service_workload_entries(
        &mut self,
        tenant: &TenantId,
        service_id: &str,
    ) -> Result<usize, StoreError> {
        let r = self.execute(
            "DELETE FROM workload_entries WHERE tenant_id = $1 AND service_id = $2",
            &[&tenant.as_str(), &service_id],
        );
        Ok(usize::try_from(self.track(r)?).unwrap_or(usize::MAX))
    }

    pub(super) fn pg_delete_tenant_workload_rows(&mut self, tenant: &str) -> Result<(), StoreError> {
        let r = self.execute("DELETE FROM workload_entries WHERE tenant_id = $1", &[&tenant]);
        self.track(r)?;
        let r = self.execute("DELETE FROM federations WHERE tenant_id = $1", &[&tenant]);
        self.track(r).map(drop)
    }

    pub(super) fn pg_insert_federation(&mut self, f: &FederationRecord) -> Result<(), StoreError> {
        let r = self.execute(
            &format!(
                "INSERT INTO federations ({FEDERATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            &[
                &f.tenant_id.as_str(),
                &f.trust_domain,
                &f.endpoint_url,
                &f.endpoint_ca_pem,
                &f.bundle,
                &f.sequence,
                &f.fetched_at,
                &f.next_fetch_at,
                &f.last_error,
                &f.created_at,
                &f.updated_at,
            ],
        );
        self.track(r).map(drop)
    }

    pub(super) fn pg_update_federation(&mut self, f: &FederationRecord) -> Result<bool, StoreError> {
        let r = self.execute(
            "UPDATE federations SET endpoint_url = $3, endpoint_ca_pem = $4, bundle = $5, sequence = $6, \
             fetched_at = $7, next_fetch_at = $8, last_error = $9, updated_at = $10 \
             WHERE tenant_id = $1 AND trust_domain = $2",
            &[
                &f.tenant_id.as_str(),
                &f.trust_domain,
                &f.endpoint_url,
                &f.endpoint_ca_pem,
                &f.bundle,
                &f.sequence,
                &f.fetched_at,
                &f.next_fetch_at,
                &f.last_error,
                &f.updated_at,
            ],
        );
        Ok(self.track(r)? > 0)
    }

    pub(super) fn pg_federation(
        &mut self,
        tenant: &TenantId,
        trust_domain: &str,
    ) -> Result<Option<FederationRecord>, StoreError> {
        let r = self.query_opt(
            &format!("SELECT {FEDERATION_COLUMNS} FROM federations WHERE tenant_id = $1 AND trust_domain = $2"),
            &[&tenant.as_str(), &trust_domain],
        );
        Ok(self.track(r)?.as_ref().map(federation_from_row))
    }

    pub(super) fn pg_list_federations(&mut self, tenant: &TenantId) -> Result<Vec<FederationRecord>, StoreError> {
        let r = self.query(
            &format!("SELECT {FEDERATION_COLUMNS} FROM federations WHERE tenant_id = $1 ORDER BY trust_domain"),
            &[&tenant.as_str()],
        );
        Ok(self.track(r)?.iter().map(federation_from_row).collect())
    }

    pub(super) fn pg_due_federations(&mut self, now: i64, limit: usize) -> Result<Vec<FederationRecord>, StoreError> {
        let r = self.query(
            &format!(
                "SELECT {FEDERATION_COLUMNS} FROM federations WHERE endpoint_url IS NOT NULL AND next_fetch_at <= $1 \
                 ORDER BY next_fetch_at, tenant_id, trust_domain LIMIT $2"
            ),
            &[&now, &i64::try_from(limit).unwrap_or(i64::MAX)],
        );
        Ok(self.track(r)?.iter().map(federation_from_row).collect())
    }

    pub(super) fn pg_delete_federation(&mut self, tenant: &TenantId, trust_domain: &str) -> Result<bool, StoreError> {
        let r = self.execute(
            "DELETE FROM federations WHERE tenant_id = $1 AND trust_domain = $2",
            &[&tenant.as_str(), &trust_domain],
        );
        Ok(self.track(r)? > 0)
    }
}
