//! Reading, verifying, checkpointing and sealing audit chains.

use lightwell_store::{AuditRecord, StoreExt, TenantId};

use super::{Service, tenant_by_domain};
use crate::audit::{CheckpointReport, Verification};
use crate::authz::{self, Actor, Permission};
use crate::{Error, Result};

/// What sealing the heads written before heads carried a MAC did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Heads sealed.
    pub sealed: usize,
    /// Heads left without a MAC because their chain does not verify, with why.
    pub refused: Vec<(String, String)>,
}

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

    /// Checkpoints every tenant chain whose head moved into the system chain
    /// (one transaction), then hands the verified heads to the checkpoint
    /// sink. The periodic job; any replica may run it at any time.
    pub async fn checkpoint_audit(&self) -> Result<CheckpointReport> {
        let report =
            self.blocking(|inner| inner.store.write(|tx| Ok(inner.audit.checkpoint(tx, inner.now())?))).await?;
        if let Some(sink) = &self.inner.checkpoint_sink {
            let (sink, heads, at) = (sink.clone(), report.heads.clone(), self.inner.now());
            self.blocking(move |_| {
                sink.record(at, &heads).map_err(|e| Error::internal(format!("checkpoint sink: {e}")))
            })
            .await?;
        }
        Ok(report)
    }

    /// [`Self::checkpoint_audit`] on demand (the system operator).
    pub async fn checkpoint_audit_as(&self, actor: &Actor) -> Result<CheckpointReport> {
        authz::check(actor, None, Permission::ReadAudit)?;
        self.checkpoint_audit().await
    }

    /// Refuses to run with a key-encryption key other than the one the
    /// database was written under (checked on the system audit chain's
    /// first record, before anything is written). Run at start.
    pub async fn check_kek(&self) -> Result<()> {
        self.blocking(|inner| match inner.store.read(|tx| inner.audit.keys_system_chain(tx))? {
            Some(false) => Err(Error::new(
                lightwell_proto::ErrorCode::Internal,
                "the key-encryption key does not match this database: the system audit chain's first record \
                     does not verify under it (a KEK from another installation, or a replica given another KEK); \
                     every replica must use the KEK of `lightwelld init`",
            )),
            Some(true) | None => Ok(()),
        })
        .await
    }

    /// Seals the heads that carry no MAC (written before heads had one),
    /// each after verifying its chain; the system chain first, since each
    /// sealing of a tenant head is recorded there. Run at start.
    pub async fn seal_audit_heads(&self) -> Result<SealReport> {
        self.blocking(|inner| {
            // Only the process that applied the migration adding head MACs
            // seals: afterwards an empty MAC is a cleared one (someone with
            // the database but not the KEK hiding a cut), never a legacy head.
            if inner.store.migrated_from() >= lightwell_store::AUDIT_HEAD_MAC_VERSION {
                return Ok(SealReport::default());
            }
            let (heads, tenants) = inner.store.read(|tx| Ok::<_, Error>((tx.audit_heads()?, tx.list_tenants()?)))?;
            let label = |scope: &TenantId| match tenants.iter().find(|t| &t.id == scope) {
                _ if scope.is_system() => "system".to_string(),
                Some(t) => t.domain.clone(),
                None => scope.as_str().to_string(),
            };
            let mut unsealed: Vec<TenantId> =
                heads.into_iter().filter(|(_, h)| h.mac.is_empty()).map(|(scope, _)| scope).collect();
            unsealed.sort_by_key(|scope| !scope.is_system());
            let mut report = SealReport::default();
            for scope in unsealed {
                // A chain that fails (even to record its sealing) stays unsealed; the others go on.
                match inner.store.write(|tx| inner.audit.seal_head(tx, &scope, inner.now())) {
                    Ok(Ok(sealed)) => report.sealed += usize::from(sealed),
                    Ok(Err(why)) => report.refused.push((label(&scope), why)),
                    Err(e) => report.refused.push((label(&scope), e.to_string())),
                }
            }
            Ok(report)
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
