//! Seeding a stopped server's SQLite database directly: going through the
//! API would take hours for a million certificates. The rows are copies of
//! real ones: each certificate row copies a certificate the server issued
//! (same DER size, same columns) with a fresh random serial written both into
//! the `serial` column and over the serial inside the DER, so every stored
//! DER is distinct and names its own serial (its signature no longer
//! verifies; nothing reads seeded certificates for their signature). Each
//! principal row copies a user the server created, password hash included,
//! under a new id and name.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use lightwell_ca::Serial;
use rusqlite::{Connection, params};

/// What to add.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seed {
    /// Certificates, copies of the newest certificate of the database.
    pub(crate) certificates: usize,
    /// Whether the certificates are revoked (key-compromise, now).
    pub(crate) revoked: bool,
    /// Users, copies of user `template_user`.
    pub(crate) users: usize,
}

/// Inserts `seed` into the database at `db` (the server must be stopped),
/// in one transaction; `template_user` names the user whose row is copied.
pub(crate) fn seed(db: &Path, seed: Seed, template_user: &str) -> Result<()> {
    let mut conn = Connection::open(db).with_context(|| format!("opening {}", db.display()))?;
    let tx = conn.transaction()?;
    if seed.certificates > 0 {
        certificates(&tx, seed.certificates, seed.revoked)?;
    }
    if seed.users > 0 {
        users(&tx, seed.users, template_user)?;
    }
    tx.commit()?;
    Ok(())
}

fn certificates(tx: &Connection, n: usize, revoked: bool) -> Result<()> {
    let (serial, der): (String, Vec<u8>) =
        tx.query_row("SELECT serial, der FROM certificates ORDER BY created_at DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let old = hex::decode(&serial)?;
    let at = der.windows(old.len()).position(|w| w == old.as_slice()).context("serial not found in the DER")?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (revoked_at, reason) = if revoked { (Some(now), Some("key-compromise")) } else { (None, None) };
    let mut insert = tx.prepare(
        "INSERT INTO certificates (serial, tenant_id, ca_id, principal_id, principal_kind, principal_name, profile, \
         der, not_before, not_after, requester, created_at, revoked_at, revocation_reason) \
         SELECT ?1, tenant_id, ca_id, principal_id, principal_kind, principal_name, profile, ?2, not_before, \
         not_after, requester, created_at, ?3, ?4 FROM certificates WHERE serial = ?5",
    )?;
    let mut copy = der.clone();
    for _ in 0..n {
        let new = Serial::random()?;
        ensure!(new.as_bytes().len() == old.len(), "serials differ in length");
        copy[at..at + old.len()].copy_from_slice(new.as_bytes());
        insert.execute(params![new.to_hex(), copy, revoked_at, reason, serial])?;
    }
    Ok(())
}

fn users(tx: &Connection, n: usize, template: &str) -> Result<()> {
    let id: String =
        tx.query_row("SELECT id FROM principals WHERE kind = 'user' AND name = ?1", [template], |r| r.get(0))?;
    let mut insert = tx.prepare(
        "INSERT INTO principals (id, tenant_id, kind, name, display_name, email, hostnames, ips, enabled, builtin, \
         password_hash, credential_epoch, failed_logins, failure_window_start, locked_until, created_at, updated_at) \
         SELECT ?1, tenant_id, kind, ?2, display_name, email, hostnames, ips, enabled, builtin, password_hash, \
         credential_epoch, failed_logins, failure_window_start, locked_until, created_at, updated_at \
         FROM principals WHERE id = ?3",
    )?;
    for i in 0..n {
        let h = hex::encode(lightwell_ca::random::bytes::<16>()?);
        let new_id = format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]);
        insert.execute(params![new_id, format!("seeded-user-{i:07}"), id])?;
    }
    Ok(())
}
