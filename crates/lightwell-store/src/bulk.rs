//! What the bulk inserts ([`Tx::insert_certificates`],
//! [`Tx::insert_principals`]) check before they write and do after, the same
//! on every backend; the backends only write the rows, each its fastest way.
//!
//! A bulk insert keeps the invariants of the writes it stands for: every row
//! belongs to the tenant named (an existing tenant, never the system scope),
//! a certificate names a CA and a principal of that tenant, principals claim
//! their names as [`Tx::insert_principal`] does, and the revisions move as
//! the service layer moves them: the directory revision for new entries (a
//! user's certificates are directory attributes), and a CA whose revocations
//! changed is marked for its CRL to be re-signed, as a revocation of a large
//! CRL does (the CRL signer then stores the CRL and bumps the trust revision).

use std::collections::{BTreeMap, BTreeSet};

use crate::{CertificateRecord, PrincipalKind, PrincipalRecord, StoreError, TenantId, Tx};

fn refused(why: String) -> StoreError {
    StoreError::Refused(why)
}

/// The tenant exists and owns every row.
fn check_tenant<'a>(
    tx: &mut dyn Tx,
    tenant: &TenantId,
    mut rows: impl Iterator<Item = &'a TenantId>,
) -> Result<(), StoreError> {
    if tenant.is_system() || tx.tenant(tenant)?.is_none() {
        return Err(refused(format!("there is no tenant {tenant}")));
    }
    match rows.find(|t| *t != tenant) {
        Some(other) => Err(refused(format!("a row of tenant {other} in a bulk insert into tenant {tenant}"))),
        None => Ok(()),
    }
}

/// Checks a batch of certificates before any is written; returns the CAs
/// whose revocations the batch changes, each with its latest revocation time.
pub(crate) fn check_certificates(
    tx: &mut dyn Tx,
    tenant: &TenantId,
    certs: &[CertificateRecord],
) -> Result<BTreeMap<String, i64>, StoreError> {
    check_tenant(tx, tenant, certs.iter().map(|c| &c.tenant_id))?;
    let cas: BTreeSet<String> = tx.list_cas(tenant)?.into_iter().map(|c| c.id).collect();
    // A batch usually names few principals: each is looked up once.
    let mut kinds: BTreeMap<&str, PrincipalKind> = BTreeMap::new();
    let mut revised = BTreeMap::new();
    for c in certs {
        if !cas.contains(&c.ca_id) {
            return Err(refused(format!("certificate {}: tenant {tenant} has no CA {}", c.serial, c.ca_id)));
        }
        let kind = match kinds.get(c.principal_id.as_str()) {
            Some(kind) => *kind,
            None => {
                let p = tx.principal_by_id(tenant, &c.principal_id)?.ok_or_else(|| {
                    refused(format!("certificate {}: tenant {tenant} has no principal {}", c.serial, c.principal_id))
                })?;
                kinds.insert(&c.principal_id, p.kind);
                p.kind
            }
        };
        if kind != c.principal_kind {
            return Err(refused(format!(
                "certificate {}: principal {} is not a {}",
                c.serial,
                c.principal_id,
                c.principal_kind.as_str()
            )));
        }
        if let Some(at) = c.revoked_at {
            let latest = revised.entry(c.ca_id.clone()).or_insert(at);
            *latest = (*latest).max(at);
        }
    }
    Ok(revised)
}

/// After the certificates are written: the revisions a service write would move.
pub(crate) fn certificates_written(
    tx: &mut dyn Tx,
    tenant: &TenantId,
    revised: BTreeMap<String, i64>,
) -> Result<(), StoreError> {
    for (ca_id, at) in revised {
        tx.mark_crl_pending(tenant, &ca_id, at)?;
    }
    tx.bump_directory_revision(tenant).map(drop)
}

/// Checks a batch of principals before any is written (names are claimed,
/// and refused if taken, as the rows are written).
pub(crate) fn check_principals(
    tx: &mut dyn Tx,
    tenant: &TenantId,
    principals: &[PrincipalRecord],
) -> Result<(), StoreError> {
    check_tenant(tx, tenant, principals.iter().map(|p| &p.tenant_id))
}

/// After the principals are written: the directory changed.
pub(crate) fn principals_written(tx: &mut dyn Tx, tenant: &TenantId) -> Result<(), StoreError> {
    tx.bump_directory_revision(tenant).map(drop)
}
