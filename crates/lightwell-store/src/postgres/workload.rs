//! PostgreSQL queries of workload identity: workload entries.

use postgres::Row;

use super::PgTx;
use crate::{StoreError, TenantId, WorkloadEntryRecord};

const COLUMNS: &str = "id, tenant_id, name, service_id, spec, created_at";

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
        self.track(r).map(drop)
    }
}
