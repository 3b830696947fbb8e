//! Reading and verifying audit chains.

use lightwell_store::{AuditRecord, StoreExt, TenantId};

use super::{Service, tenant_by_domain};
use crate::audit::Verification;
use crate::authz::{self, Actor, Permission};
use crate::{Error, Result};

impl Service {
    /// Audit records of a tenant (`Some(domain)`) or of the system chain
    /// (`None`), with `seq > after`, at most `limit` (capped at 1000).
    pub async fn audit_records(
        &self,
        actor: &Actor,
        tenant: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>> {
        authz::check(actor, tenant, Permission::ReadAudit)?;
        let tenant = tenant.map(str::to_string);
        self.blocking(move |inner| {
            inner.store.read(|tx| {
                let scope = scope_of(tx, tenant.as_deref())?;
                Ok(tx.list_audit(&scope, after, limit.min(1000))?)
            })
        })
        .await
    }

    /// Verifies a whole audit chain.
    pub async fn verify_audit(&self, actor: &Actor, tenant: Option<&str>) -> Result<Verification> {
        authz::check(actor, tenant, Permission::ReadAudit)?;
        let tenant = tenant.map(str::to_string);
        self.blocking(move |inner| {
            inner.store.read(|tx| {
                let scope = scope_of(tx, tenant.as_deref())?;
                Ok(inner.audit.verify(tx, &scope)?)
            })
        })
        .await
    }
}

fn scope_of(tx: &mut dyn lightwell_store::Tx, tenant: Option<&str>) -> Result<TenantId, Error> {
    match tenant {
        None => Ok(TenantId::system()),
        Some(d) => Ok(tenant_by_domain(tx, d)?.id),
    }
}
