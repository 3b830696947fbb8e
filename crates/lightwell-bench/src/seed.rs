//! Seeding a stopped server's SQLite database through `lightwell-store`
//! (the server's own store code, its bulk inserts): going through the API
//! would take hours for a million certificates. The rows are copies of real
//! ones: each certificate copies the newest certificate of the tenant (same
//! DER size, same fields) with a fresh random serial, written both into the
//! record and over the serial inside the DER, so every stored DER is
//! distinct and names its own serial (its signature no longer verifies;
//! nothing reads seeded certificates for their signature). Each principal
//! copies a user the server created, password hash included, under a new id
//! and name. The store keeps its invariants: the rows must be the tenant's,
//! names are claimed, the directory revision moves, and seeded revocations
//! mark the CA's CRL for the server's CRL signer to re-sign at start.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use lightwell_ca::Serial;
use lightwell_store::sqlite::SqliteStore;
use lightwell_store::{CertificateFilter, CertificateRecord, PrincipalKind, PrincipalRecord, StoreExt, TenantId, Tx};

use crate::domain::TENANT;

/// Rows per bulk insert: the whole seeding is one transaction, written a
/// batch at a time so a million DERs are never in memory at once.
const BATCH: usize = 10_000;

/// What to add.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seed {
    /// Certificates, copies of the newest certificate of the tenant.
    pub(crate) certificates: usize,
    /// Whether the certificates are revoked (key-compromise, now).
    pub(crate) revoked: bool,
    /// Users, copies of user `template_user`.
    pub(crate) users: usize,
}

/// Inserts `seed` into tenant `bench.example` of the database at `db` (the
/// server must be stopped), in one transaction; `template_user` names the
/// user whose row is copied. Returns the serial of a seeded certificate.
pub(crate) fn seed(db: &Path, seed: Seed, template_user: &str) -> Result<Option<String>> {
    let store = SqliteStore::open(db).with_context(|| format!("opening {}", db.display()))?;
    store.write(|tx| {
        let tenant = tx.tenant_by_domain(TENANT)?.with_context(|| format!("tenant {TENANT} does not exist"))?.id;
        let serial = if seed.certificates > 0 {
            Some(certificates(tx, &tenant, seed.certificates, seed.revoked)?)
        } else {
            None
        };
        if seed.users > 0 {
            users(tx, &tenant, seed.users, template_user)?;
        }
        Ok::<_, anyhow::Error>(serial)
    })
}

fn certificates(tx: &mut dyn Tx, tenant: &TenantId, n: usize, revoked: bool) -> Result<String> {
    let mut template = tx
        .list_certificates(tenant, &CertificateFilter::default())?
        .into_iter()
        .max_by_key(|c| c.created_at)
        .context("the tenant has no certificate to copy")?;
    let old = hex::decode(&template.serial)?;
    let at =
        template.der.windows(old.len()).position(|w| w == old.as_slice()).context("serial not found in the DER")?;
    if revoked {
        template.revoked_at = Some(time::OffsetDateTime::now_utc().unix_timestamp());
        template.revocation_reason = Some("key-compromise".into());
    }
    let copy = |_| -> Result<CertificateRecord> {
        let new = Serial::random()?;
        ensure!(new.as_bytes().len() == old.len(), "serials differ in length");
        let mut c = template.clone();
        c.der[at..at + old.len()].copy_from_slice(new.as_bytes());
        c.serial = new.to_hex();
        Ok(c)
    };
    let mut last = None;
    for start in (0..n).step_by(BATCH) {
        let batch = (start..(start + BATCH).min(n)).map(copy).collect::<Result<Vec<_>>>()?;
        tx.insert_certificates(tenant, &batch)?;
        last = batch.last().map(|c| c.serial.clone());
    }
    last.context("no certificate was seeded")
}

fn users(tx: &mut dyn Tx, tenant: &TenantId, n: usize, template: &str) -> Result<()> {
    let template: PrincipalRecord =
        tx.principal(tenant, PrincipalKind::User, template)?.with_context(|| format!("no user {template} to copy"))?;
    for start in (0..n).step_by(BATCH) {
        let batch: Vec<PrincipalRecord> = (start..(start + BATCH).min(n))
            .map(|i| PrincipalRecord {
                id: uuid::Uuid::new_v4().to_string(),
                name: format!("seeded-user-{i:07}"),
                ..template.clone()
            })
            .collect();
        tx.insert_principals(tenant, &batch)?;
    }
    Ok(())
}
