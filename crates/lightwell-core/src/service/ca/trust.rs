//! The single door through which a tenant's trust changes: its trust bundle
//! (a root joins, changes status, or leaves) and its CRLs. Agents learn of
//! trust changes from a per-tenant trust revision that must move in the same
//! transaction as the change; keeping every such write here means there is
//! exactly one place to bump it.

use crate::service::Tenant;
use lightwell_proto::ErrorCode;
use lightwell_store::{CaRecord, CrlRecord, StoreError, Tx};

use crate::service::Inner;
use crate::{Error, Result};

/// A change to what a tenant's peers trust.
#[derive(Debug, Clone, Copy)]
pub(super) enum TrustChange<'a> {
    /// A new CA is stored; a root joins the trust bundle.
    NewCa(&'a CaRecord),
    /// A CA's status, default flag or CRL Number changed; a root may join or leave the trust bundle.
    CaUpdated(&'a CaRecord),
    /// A CA's CRL was re-signed.
    Crl(&'a CrlRecord),
}

impl Inner {
    /// Writes a change of the tenant's trust bundle or CRLs. Every such write
    /// of the CA service goes through here, inside the caller's transaction.
    pub(super) fn apply_trust_change(&self, tx: &mut dyn Tx, tenant: &Tenant, change: TrustChange<'_>) -> Result<()> {
        // Agents watch this number: every change of a CA or a CRL is a trust change.
        tx.bump_trust_revision(&tenant.id)?;
        // CA certificates and CRLs are directory entries too (cn=Configuration).
        tx.bump_directory_revision(&tenant.id)?;
        match change {
            TrustChange::NewCa(ca) => {
                debug_assert_eq!(ca.tenant_id, tenant.id);
                tx.insert_ca(ca).map_err(|e| match e {
                    StoreError::Conflict(_) => {
                        Error::new(ErrorCode::AlreadyExists, format!("a CA named {:?} already exists", ca.name))
                    }
                    other => other.into(),
                })
            }
            TrustChange::CaUpdated(ca) => {
                debug_assert_eq!(ca.tenant_id, tenant.id);
                Ok(tx.update_ca(ca)?)
            }
            TrustChange::Crl(crl) => {
                debug_assert_eq!(crl.tenant_id, tenant.id);
                Ok(tx.put_crl(crl)?)
            }
        }
    }
}
