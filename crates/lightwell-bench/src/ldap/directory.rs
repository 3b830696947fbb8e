//! The synthetic directory both servers hold: N users `user0`..., each in
//! one of G groups `g0`... (round robin), one argon2id password hash shared
//! by every user, and how it gets into Lightwell.
//!
//! Seeding Lightwell: creating 100,000 users through the REST API would
//! hash 100,000 passwords with argon2id (about an hour on two CPUs), so the
//! bench writes the rows straight into the running server's SQLite file
//! through `lightwell-store`'s bulk inserts (the server's own code; SQLite
//! allows a second writer process) in a few large transactions, with a hash made once by
//! `lightwell_core::password::HashPermit::hash` — the server's parameters. The seeded
//! users get no audit records and are not in the built-in `Users` group;
//! the bulk inserts bump the directory revision so no cached tree survives. This path
//! is for the bench only.

use std::path::Path;

use anyhow::{Context, Result};
use lightwell_store::sqlite::SqliteStore;
use lightwell_store::{PrincipalKind, PrincipalRecord, StoreExt};

use crate::domain::TENANT;

/// The tenant's base DN.
pub(crate) const BASE_DN: &str = "dc=bench,dc=example";
/// Rows per seeding transaction.
const BATCH: usize = 10_000;

/// The users and groups of a run.
pub(crate) struct Directory {
    /// Number of users.
    pub(crate) users: usize,
    /// Number of groups.
    pub(crate) groups: usize,
    /// Every user's password.
    pub(crate) password: String,
    /// Its argon2id PHC string.
    pub(crate) password_hash: String,
}

impl Directory {
    /// `users` users in `groups` groups, with a fresh password and its hash.
    pub(crate) fn new(users: usize, groups: usize) -> Result<Self> {
        let password = "Bench-Passw0rd!".to_string();
        let gate = lightwell_core::password::HashGate::new(1, std::time::Duration::ZERO);
        let password_hash = gate.try_enter().and_then(|p| p.hash(&password)).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self { users, groups: groups.max(1), password, password_hash })
    }

    pub(crate) fn user_name(&self, u: usize) -> String {
        format!("user{u}")
    }

    pub(crate) fn email(&self, u: usize) -> String {
        format!("user{u}@{TENANT}")
    }

    pub(crate) fn user_dn(&self, u: usize) -> String {
        format!("uid=user{u},cn=Users,{BASE_DN}")
    }

    pub(crate) fn group_name(&self, g: usize) -> String {
        format!("g{g}")
    }

    pub(crate) fn group_dn(&self, g: usize) -> String {
        format!("cn=g{g},cn=Groups,{BASE_DN}")
    }

    /// The group of user `u`.
    pub(crate) fn group_of(&self, u: usize) -> usize {
        u % self.groups
    }

    /// The users of group `g`.
    pub(crate) fn members(&self, g: usize) -> impl Iterator<Item = usize> {
        (g..self.users).step_by(self.groups)
    }

    /// Writes the users, groups and memberships into the SQLite database of
    /// a running server whose tenant `bench.example` exists.
    pub(crate) fn seed_lightwell(&self, db: &Path) -> Result<()> {
        let store = SqliteStore::open(db).context("opening the server's database")?;
        let tenant =
            store.read(|tx| tx.tenant_by_domain(TENANT))?.with_context(|| format!("tenant {TENANT} does not exist"))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let now = i64::try_from(now)?;
        let record = |kind, name: String, email: Option<String>, hash: Option<String>| PrincipalRecord {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant.id.clone(),
            kind,
            name,
            display_name: None,
            email,
            hostnames: vec![],
            ips: vec![],
            enabled: true,
            builtin: false,
            password_hash: hash,
            credential_epoch: 1,
            failed_logins: 0,
            failure_window_start: None,
            locked_until: None,
            created_at: now,
            updated_at: now,
        };
        let groups: Vec<PrincipalRecord> =
            (0..self.groups).map(|g| record(PrincipalKind::Group, self.group_name(g), None, None)).collect();
        store.write(|tx| tx.insert_principals(&tenant.id, &groups))?;
        for start in (0..self.users).step_by(BATCH) {
            let batch: Vec<PrincipalRecord> = (start..(start + BATCH).min(self.users))
                .map(|u| {
                    let hash = Some(self.password_hash.clone());
                    record(PrincipalKind::User, self.user_name(u), Some(self.email(u)), hash)
                })
                .collect();
            store.write(|tx| {
                tx.insert_principals(&tenant.id, &batch)?;
                for (u, p) in (start..).zip(&batch) {
                    tx.add_member(&tenant.id, &groups[self.group_of(u)].id, &p.id)?;
                }
                Ok::<_, lightwell_store::StoreError>(())
            })?;
        }
        Ok(())
    }
}
