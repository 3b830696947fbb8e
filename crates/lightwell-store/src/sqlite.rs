//! The embedded SQLite backend: one file in the data dir, WAL journal,
//! `synchronous=FULL` so a committed transaction survives power loss.
//!
//! One writer connection serializes writes (SQLite allows one writer at a
//! time anyway), with group commit (see `group`); a few reader connections
//! serve read transactions concurrently under WAL.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

mod ca;
mod dump;
mod group;
mod join;
mod k8s;
mod oidc;
mod token;
mod workload;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use crate::{
    AuditHead, AuditRecord, CaRecord, CaRequestRecord, CertificateFilter, CertificateRecord, CrlPending, CrlRecord,
    DeltaCrlRecord, FederationRecord, JoinTokenRecord, K8sClusterRecord, Membership, OcspResponderRecord,
    OidcClientRecord, PrincipalKind, PrincipalRecord, RevokedEntry, SessionRecord, Store, StoreError, TenantId,
    TenantRecord, TokenKeyRecord, Tx, TxMode, WorkloadEntryRecord,
};

/// Migrations, applied in order; the version is the position (from 1).
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_foundation.sql"),
    include_str!("../migrations/sqlite/0002_certificate_authority.sql"),
    include_str!("../migrations/sqlite/0003_join.sql"),
    include_str!("../migrations/sqlite/0004_ca_requests.sql"),
    include_str!("../migrations/sqlite/0005_directory_revisions.sql"),
    include_str!("../migrations/sqlite/0006_kubernetes.sql"),
    include_str!("../migrations/sqlite/0007_revoked_index.sql"),
    include_str!("../migrations/sqlite/0008_crl_pending.sql"),
    include_str!("../migrations/sqlite/0009_principal_names.sql"),
    include_str!("../migrations/sqlite/0010_audit_head_mac.sql"),
    include_str!("../migrations/sqlite/0011_ocsp_responders.sql"),
    include_str!("../migrations/sqlite/0012_trust_changes.sql"),
    include_str!("../migrations/sqlite/0013_workload_entries.sql"),
    include_str!("../migrations/sqlite/0014_token_keys.sql"),
    include_str!("../migrations/sqlite/0015_delta_crls.sql"),
    include_str!("../migrations/sqlite/0016_delta_crl_base_time.sql"),
    include_str!("../migrations/sqlite/0017_federations.sql"),
    include_str!("../migrations/sqlite/0018_oidc_clients.sql"),
    include_str!("../migrations/sqlite/0019_revoked_tokens.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const READERS: usize = 4;

/// Prepared statements kept per connection. rusqlite's default (16) is fewer
/// than one issuance uses, so the LRU cache kept re-parsing and re-planning
/// the same SQL under load.
const STATEMENT_CACHE: usize = 256;

/// `execute` and `query_row` through the connection's statement cache
/// (rusqlite's plain ones parse and plan the SQL on every call).
trait Cached {
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize>;
    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// SQLite implementation of [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    writer: group::GroupWriter,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// The schema version before this open applied migrations.
    migrated_from: i64,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match &e {
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                ErrorCode::ConstraintViolation => StoreError::Conflict(e.to_string()),
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen => {
                    StoreError::Unavailable(e.to_string())
                }
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt(e.to_string()),
                _ => StoreError::Backend(e.to_string()),
            },
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

/// Creates the database file readable only by its owner before SQLite opens
/// it; SQLite gives the WAL and shared-memory files the same permissions.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Unavailable(format!("creating {}: {e}", path.display()))),
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        create_private(path)?;
        let mut writer = open_connection(path)?;
        let migrated_from = migrate(&mut writer)?;
        let readers = (0..READERS).map(|_| open_connection(path).map(Mutex::new)).collect::<Result<_, _>>()?;
        Ok(Self { writer: group::GroupWriter::new(writer), readers, next_reader: AtomicUsize::new(0), migrated_from })
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let w = self.writer.exclusive();
        Ok(w.conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?)
    }
}

fn lock(m: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    // A panic inside a transaction closure rolls the transaction back when it
    // unwinds (rusqlite's Transaction drop), so the connection stays usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Applies pending migrations; returns the version the database had before.
fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )?;
    let current: i64 = conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {current} is newer than this build's {SCHEMA_VERSION}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, strftime('%s','now'))",
            params![version],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied sqlite migration");
    }
    Ok(current)
}

impl Store for SqliteStore {
    fn migrated_from(&self) -> i64 {
        self.migrated_from
    }

    fn transact_dyn(
        &self,
        mode: TxMode,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let TxMode::Read = mode else {
            return self.writer.write(&mut |conn| f(&mut SqliteTx { tx: conn }));
        };
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let idle = (0..READERS).find_map(|i| self.readers[(start + i) % READERS].try_lock().ok());
        let mut guard = idle.unwrap_or_else(|| lock(&self.readers[start % READERS]));
        let tx = guard.transaction_with_behavior(TransactionBehavior::Deferred)?;
        f(&mut SqliteTx { tx: &tx })?;
        tx.commit()?;
        Ok(())
    }

    fn ping(&self) -> Result<(), StoreError> {
        let w = self.writer.exclusive();
        w.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn export(&self) -> Result<crate::Dump, StoreError> {
        self.export_all()
    }

    fn import(&self, dump: &crate::Dump) -> Result<(), StoreError> {
        self.import_all(dump)
    }
}

struct SqliteTx<'a> {
    tx: &'a Connection,
}

const PRINCIPAL_COLUMNS: &str = "id, tenant_id, kind, name, display_name, email, hostnames, ips, enabled, builtin, \
     password_hash, credential_epoch, failed_logins, failure_window_start, locked_until, created_at, updated_at";

fn json_list(s: String) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(&s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn to_json(v: &[String]) -> String {
    // Serializing a list of strings cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn principal_from_row(r: &Row<'_>) -> rusqlite::Result<PrincipalRecord> {
    let kind: String = r.get(2)?;
    Ok(PrincipalRecord {
        id: r.get(0)?,
        tenant_id: TenantId::new(r.get::<_, String>(1)?),
        kind: PrincipalKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, "unknown principal kind".into())
        })?,
        name: r.get(3)?,
        display_name: r.get(4)?,
        email: r.get(5)?,
        hostnames: json_list(r.get(6)?)?,
        ips: json_list(r.get(7)?)?,
        enabled: r.get(8)?,
        builtin: r.get(9)?,
        password_hash: r.get(10)?,
        credential_epoch: r.get(11)?,
        failed_logins: r.get(12)?,
        failure_window_start: r.get(13)?,
        locked_until: r.get(14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
    })
}

fn tenant_from_row(r: &Row<'_>) -> rusqlite::Result<TenantRecord> {
    Ok(TenantRecord {
        id: TenantId::new(r.get::<_, String>(0)?),
        domain: r.get(1)?,
        policy: r.get(2)?,
        created_at: r.get(3)?,
    })
}

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        token_hash: r.get(0)?,
        tenant_id: TenantId::new(r.get::<_, String>(1)?),
        principal_id: r.get(2)?,
        credential_epoch: r.get(3)?,
        created_at: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

fn audit_from_row(r: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        scope: TenantId::new(r.get::<_, String>(0)?),
        seq: r.get(1)?,
        at: r.get(2)?,
        actor: r.get(3)?,
        action: r.get(4)?,
        target: r.get(5)?,
        outcome: r.get(6)?,
        detail: r.get(7)?,
        prev_hash: r.get(8)?,
        hash: r.get(9)?,
    })
}

impl SqliteTx<'_> {
    /// Records the names `p` claims; `Conflict` naming the first one another principal holds.
    fn claim_names(&mut self, p: &PrincipalRecord) -> Result<(), StoreError> {
        self.claim(p, p.claimed_names())
    }

    /// Records `names` as `p`'s; `Conflict` naming the first one another principal holds.
    fn claim(&mut self, p: &PrincipalRecord, names: std::collections::BTreeSet<String>) -> Result<(), StoreError> {
        for name in names {
            let inserted = self.tx.exec(
                "INSERT INTO principal_names (tenant_id, name, principal_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant_id, name) DO NOTHING",
                params![p.tenant_id.as_str(), name, p.id],
            )?;
            if inserted == 0 {
                return Err(crate::name_taken(&name));
            }
        }
        Ok(())
    }

    /// Runs `f` in a savepoint: if it fails, nothing it wrote stays, even
    /// when the caller goes on with the transaction.
    fn all_or_nothing(&mut self, f: impl FnOnce(&mut Self) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.tx.execute_batch("SAVEPOINT bulk")?;
        match f(self) {
            Ok(()) => Ok(self.tx.execute_batch("RELEASE bulk")?),
            Err(e) => {
                self.tx.execute_batch("ROLLBACK TO bulk; RELEASE bulk")?;
                Err(e)
            }
        }
    }
}

impl Tx for SqliteTx<'_> {
    fn insert_tenant(&mut self, t: &TenantRecord) -> Result<(), StoreError> {
        self.tx.exec(
            "INSERT INTO tenants (id, domain, policy, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![t.id.as_str(), t.domain, t.policy, t.created_at],
        )?;
        Ok(())
    }

    fn update_tenant_policy(&mut self, id: &TenantId, policy: &str) -> Result<bool, StoreError> {
        Ok(self.tx.exec("UPDATE tenants SET policy = ?2 WHERE id = ?1", params![id.as_str(), policy])? > 0)
    }

    fn tenant_by_domain(&mut self, domain: &str) -> Result<Option<TenantRecord>, StoreError> {
        Ok(self
            .tx
            .row(
                "SELECT id, domain, policy, created_at FROM tenants WHERE domain = ?1",
                params![domain],
                tenant_from_row,
            )
            .optional()?)
    }

    fn tenant(&mut self, id: &TenantId) -> Result<Option<TenantRecord>, StoreError> {
        Ok(self
            .tx
            .row(
                "SELECT id, domain, policy, created_at FROM tenants WHERE id = ?1",
                params![id.as_str()],
                tenant_from_row,
            )
            .optional()?)
    }

    fn list_tenants(&mut self) -> Result<Vec<TenantRecord>, StoreError> {
        let mut stmt = self.tx.prepare_cached("SELECT id, domain, policy, created_at FROM tenants ORDER BY domain")?;
        let rows = stmt.query_map([], tenant_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_tenant(&mut self, id: &TenantId) -> Result<bool, StoreError> {
        if id.is_system() {
            return Ok(false);
        }
        let id = id.as_str();
        ca::delete_tenant_rows(self.tx, id)?;
        join::delete_tenant_rows(self.tx, id)?;
        k8s::delete_tenant_rows(self.tx, id)?;
        workload::delete_tenant_rows(self.tx, id)?;
        token::delete_tenant_rows(self.tx, id)?;
        oidc::delete_tenant_rows(self.tx, id)?;
        for sql in [
            "DELETE FROM memberships WHERE tenant_id = ?1",
            "DELETE FROM sessions WHERE tenant_id = ?1",
            "DELETE FROM principals WHERE tenant_id = ?1",
            "DELETE FROM principal_names WHERE tenant_id = ?1",
            "DELETE FROM audit WHERE scope = ?1",
            "DELETE FROM audit_heads WHERE scope = ?1",
        ] {
            self.tx.exec(sql, params![id])?;
        }
        Ok(self.tx.exec("DELETE FROM tenants WHERE id = ?1", params![id])? > 0)
    }

    fn insert_principal(&mut self, p: &PrincipalRecord) -> Result<(), StoreError> {
        self.tx.exec(
            &format!(
                "INSERT INTO principals ({PRINCIPAL_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ),
            params![
                p.id,
                p.tenant_id.as_str(),
                p.kind.as_str(),
                p.name,
                p.display_name,
                p.email,
                to_json(&p.hostnames),
                to_json(&p.ips),
                p.enabled,
                p.builtin,
                p.password_hash,
                p.credential_epoch,
                p.failed_logins,
                p.failure_window_start,
                p.locked_until,
                p.created_at,
                p.updated_at
            ],
        )?;
        self.claim_names(p)
    }

    fn insert_principals(&mut self, tenant: &TenantId, principals: &[PrincipalRecord]) -> Result<(), StoreError> {
        if principals.is_empty() {
            return Ok(());
        }
        crate::bulk::check_principals(self, tenant, principals)?;
        // One cached statement a row: SQLite runs in this process, so a
        // row costs no round trip and batching statements gains little.
        self.all_or_nothing(|tx| {
            principals.iter().try_for_each(|p| tx.insert_principal(p))?;
            crate::bulk::principals_written(tx, tenant)
        })
    }

    fn principal(
        &mut self,
        tenant: &TenantId,
        kind: PrincipalKind,
        name: &str,
    ) -> Result<Option<PrincipalRecord>, StoreError> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE tenant_id = ?1 AND kind = ?2 AND lower(name) = lower(?3)"
        ))?;
        Ok(stmt.query_row(params![tenant.as_str(), kind.as_str(), name], principal_from_row).optional()?)
    }

    fn principal_by_id(&mut self, tenant: &TenantId, id: &str) -> Result<Option<PrincipalRecord>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached(&format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE tenant_id = ?1 AND id = ?2"))?;
        Ok(stmt.query_row(params![tenant.as_str(), id], principal_from_row).optional()?)
    }

    fn list_principals(
        &mut self,
        tenant: &TenantId,
        kind: Option<PrincipalKind>,
    ) -> Result<Vec<PrincipalRecord>, StoreError> {
        // One statement per case: with `(?2 IS NULL OR kind = ?2)` SQLite
        // cannot plan for the kind, and listing a tenant's groups (on every
        // request authenticated by certificate) scanned all its principals.
        let (sql, kind) = match kind {
            Some(k) => (
                format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE tenant_id = ?1 AND kind = ?2 ORDER BY name"),
                Some(k.as_str()),
            ),
            None => {
                (format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE tenant_id = ?1 ORDER BY kind, name"), None)
            }
        };
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = match kind {
            Some(k) => stmt.query_map(params![tenant.as_str(), k], principal_from_row)?,
            None => stmt.query_map(params![tenant.as_str()], principal_from_row)?,
        };
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn update_principal(&mut self, p: &PrincipalRecord) -> Result<(), StoreError> {
        let before = self.principal_by_id(&p.tenant_id, &p.id)?;
        let n = self.tx.exec(
            "UPDATE principals SET display_name = ?3, email = ?4, hostnames = ?5, ips = ?6, enabled = ?7, \
             password_hash = ?8, credential_epoch = ?9, failed_logins = ?10, failure_window_start = ?11, \
             locked_until = ?12, updated_at = ?13 WHERE tenant_id = ?1 AND id = ?2",
            params![
                p.tenant_id.as_str(),
                p.id,
                p.display_name,
                p.email,
                to_json(&p.hostnames),
                to_json(&p.ips),
                p.enabled,
                p.password_hash,
                p.credential_epoch,
                p.failed_logins,
                p.failure_window_start,
                p.locked_until,
                p.updated_at
            ],
        )?;
        if n == 0 {
            return Err(StoreError::Backend(format!("principal {} not found for update", p.id)));
        }
        let (dropped, added) = crate::claim_changes(before.as_ref(), p);
        for name in dropped {
            self.tx.exec(
                "DELETE FROM principal_names WHERE tenant_id = ?1 AND name = ?2 AND principal_id = ?3",
                params![p.tenant_id.as_str(), name, p.id],
            )?;
        }
        self.claim(p, added)
    }

    fn name_owner(&mut self, tenant: &TenantId, name: &str) -> Result<Option<String>, StoreError> {
        let mut stmt =
            self.tx.prepare_cached("SELECT principal_id FROM principal_names WHERE tenant_id = ?1 AND name = ?2")?;
        Ok(stmt.query_row(params![tenant.as_str(), name.to_ascii_lowercase()], |r| r.get(0)).optional()?)
    }

    fn delete_principal(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let t = tenant.as_str();
        self.tx.exec(
            "DELETE FROM memberships WHERE tenant_id = ?1 AND (group_id = ?2 OR member_id = ?2)",
            params![t, id],
        )?;
        self.tx.exec("DELETE FROM sessions WHERE tenant_id = ?1 AND principal_id = ?2", params![t, id])?;
        self.tx.exec("DELETE FROM principal_names WHERE tenant_id = ?1 AND principal_id = ?2", params![t, id])?;
        Ok(self.tx.exec("DELETE FROM principals WHERE tenant_id = ?1 AND id = ?2", params![t, id])? > 0)
    }

    fn add_member(&mut self, tenant: &TenantId, group_id: &str, member_id: &str) -> Result<(), StoreError> {
        self.tx.exec(
            "INSERT INTO memberships (tenant_id, group_id, member_id) VALUES (?1, ?2, ?3)",
            params![tenant.as_str(), group_id, member_id],
        )?;
        Ok(())
    }

    fn remove_member(&mut self, tenant: &TenantId, group_id: &str, member_id: &str) -> Result<bool, StoreError> {
        Ok(self.tx.exec(
            "DELETE FROM memberships WHERE tenant_id = ?1 AND group_id = ?2 AND member_id = ?3",
            params![tenant.as_str(), group_id, member_id],
        )? > 0)
    }

    fn memberships(&mut self, tenant: &TenantId) -> Result<Vec<Membership>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT group_id, member_id FROM memberships WHERE tenant_id = ?1 ORDER BY group_id, member_id",
        )?;
        let rows =
            stmt.query_map(params![tenant.as_str()], |r| Ok(Membership { group_id: r.get(0)?, member_id: r.get(1)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn memberships_of(&mut self, tenant: &TenantId, member_id: &str) -> Result<Vec<Membership>, StoreError> {
        // Sorted here, not by ORDER BY: see `ca::list_cas`.
        let mut stmt = self
            .tx
            .prepare_cached("SELECT group_id, member_id FROM memberships WHERE tenant_id = ?1 AND member_id = ?2")?;
        let rows = stmt.query_map(params![tenant.as_str(), member_id], |r| {
            Ok(Membership { group_id: r.get(0)?, member_id: r.get(1)? })
        })?;
        let mut list: Vec<Membership> = rows.collect::<Result<_, _>>()?;
        list.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(list)
    }

    fn insert_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
        self.tx.exec(
            "INSERT INTO sessions (token_hash, tenant_id, principal_id, credential_epoch, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![s.token_hash, s.tenant_id.as_str(), s.principal_id, s.credential_epoch, s.created_at, s.expires_at],
        )?;
        Ok(())
    }

    fn session(&mut self, token_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT token_hash, tenant_id, principal_id, credential_epoch, created_at, expires_at \
             FROM sessions WHERE token_hash = ?1",
        )?;
        Ok(stmt.query_row(params![token_hash], session_from_row).optional()?)
    }

    fn delete_session(&mut self, token_hash: &[u8]) -> Result<bool, StoreError> {
        Ok(self.tx.exec("DELETE FROM sessions WHERE token_hash = ?1", params![token_hash])? > 0)
    }

    fn delete_sessions_of(&mut self, tenant: &TenantId, principal_id: &str) -> Result<u64, StoreError> {
        Ok(self.tx.exec(
            "DELETE FROM sessions WHERE tenant_id = ?1 AND principal_id = ?2",
            params![tenant.as_str(), principal_id],
        )? as u64)
    }

    fn purge_sessions(&mut self, now: i64) -> Result<u64, StoreError> {
        Ok(self.tx.exec("DELETE FROM sessions WHERE expires_at < ?1", params![now])? as u64)
    }

    fn audit_head(&mut self, scope: &TenantId) -> Result<Option<AuditHead>, StoreError> {
        Ok(self
            .tx
            .row("SELECT seq, hash, mac FROM audit_heads WHERE scope = ?1", params![scope.as_str()], |r| {
                Ok(AuditHead { seq: r.get(0)?, hash: r.get(1)?, mac: r.get(2)? })
            })
            .optional()?)
    }

    fn audit_heads(&mut self) -> Result<Vec<(TenantId, AuditHead)>, StoreError> {
        let mut stmt = self.tx.prepare_cached("SELECT scope, seq, hash, mac FROM audit_heads ORDER BY scope")?;
        let rows = stmt.query_map([], |r| {
            Ok((TenantId::new(r.get::<_, String>(0)?), AuditHead { seq: r.get(1)?, hash: r.get(2)?, mac: r.get(3)? }))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_audit(&mut self, a: &AuditRecord, head_mac: &str) -> Result<(), StoreError> {
        self.tx.exec(
            "INSERT INTO audit (scope, seq, at, actor, action, target, outcome, detail, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                a.scope.as_str(),
                a.seq,
                a.at,
                a.actor,
                a.action,
                a.target,
                a.outcome,
                a.detail,
                a.prev_hash,
                a.hash
            ],
        )?;
        self.tx.exec(
            "INSERT INTO audit_heads (scope, seq, hash, mac) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (scope) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac",
            params![a.scope.as_str(), a.seq, a.hash, head_mac],
        )?;
        Ok(())
    }

    fn seal_audit_head(&mut self, scope: &TenantId, seq: i64, mac: &str) -> Result<bool, StoreError> {
        let n = self
            .tx
            .exec("UPDATE audit_heads SET mac = ?3 WHERE scope = ?1 AND seq = ?2", params![scope.as_str(), seq, mac])?;
        Ok(n > 0)
    }

    fn last_audit_checkpoint(&mut self, tenant: &TenantId) -> Result<Option<AuditRecord>, StoreError> {
        // The literals match the partial index `audit_checkpoints` (migration 0010),
        // so this is one index probe however long the system chain is.
        Ok(self
            .tx
            .row(
                "SELECT scope, seq, at, actor, action, target, outcome, detail, prev_hash, hash FROM audit \
                 WHERE scope = '' AND action = 'audit.checkpoint' AND target = ?1 ORDER BY seq DESC LIMIT 1",
                params![tenant.as_str()],
                audit_from_row,
            )
            .optional()?)
    }

    fn list_audit(&mut self, scope: &TenantId, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT scope, seq, at, actor, action, target, outcome, detail, prev_hash, hash FROM audit \
             WHERE scope = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![scope.as_str(), after, limit], audit_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_ca(&mut self, c: &CaRecord) -> Result<(), StoreError> {
        ca::insert_ca(self.tx, c)
    }

    fn ca(&mut self, tenant: &TenantId, id: &str) -> Result<Option<CaRecord>, StoreError> {
        ca::ca(self.tx, tenant, id)
    }

    fn list_cas(&mut self, tenant: &TenantId) -> Result<Vec<CaRecord>, StoreError> {
        ca::list_cas(self.tx, tenant)
    }

    fn update_ca(&mut self, c: &CaRecord) -> Result<(), StoreError> {
        ca::update_ca(self.tx, c)
    }

    fn insert_certificate(&mut self, cert: &CertificateRecord) -> Result<(), StoreError> {
        ca::insert_certificate(self.tx, cert)
    }

    fn insert_certificates(&mut self, tenant: &TenantId, certs: &[CertificateRecord]) -> Result<(), StoreError> {
        if certs.is_empty() {
            return Ok(());
        }
        let revised = crate::bulk::check_certificates(self, tenant, certs)?;
        self.all_or_nothing(|tx| {
            certs.iter().try_for_each(|c| ca::insert_certificate(tx.tx, c))?;
            crate::bulk::certificates_written(tx, tenant, revised)
        })
    }

    fn certificate(&mut self, tenant: &TenantId, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        ca::certificate(self.tx, tenant, serial)
    }

    fn list_certificates(
        &mut self,
        tenant: &TenantId,
        filter: &CertificateFilter,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        ca::list_certificates(self.tx, tenant, filter)
    }

    fn revoke_certificate(
        &mut self,
        tenant: &TenantId,
        serial: &str,
        at: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        ca::revoke_certificate(self.tx, tenant, serial, at, reason)
    }

    fn revoked_entries(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        not_after_from: i64,
    ) -> Result<Vec<RevokedEntry>, StoreError> {
        ca::revoked_entries(self.tx, tenant, ca_id, not_after_from)
    }

    fn put_crl(&mut self, crl: &CrlRecord) -> Result<(), StoreError> {
        ca::put_crl(self.tx, crl)
    }

    fn put_ocsp_responder(&mut self, responder: &OcspResponderRecord) -> Result<(), StoreError> {
        ca::put_ocsp_responder(self.tx, responder)
    }

    fn ocsp_responder(&mut self, tenant: &TenantId, ca_id: &str) -> Result<Option<OcspResponderRecord>, StoreError> {
        ca::ocsp_responder(self.tx, tenant, ca_id)
    }

    fn revoked_entries_exceed(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        not_after_from: i64,
        limit: u64,
    ) -> Result<bool, StoreError> {
        ca::revoked_entries_exceed(self.tx, tenant, ca_id, not_after_from, limit)
    }

    fn mark_crl_pending(&mut self, tenant: &TenantId, ca_id: &str, at: i64) -> Result<i64, StoreError> {
        ca::mark_crl_pending(self.tx, tenant, ca_id, at)
    }

    fn pending_crls(&mut self, tenant: &TenantId) -> Result<Vec<CrlPending>, StoreError> {
        ca::pending_crls(self.tx, tenant)
    }

    fn clear_crl_pending(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        generation: Option<i64>,
    ) -> Result<bool, StoreError> {
        ca::clear_crl_pending(self.tx, tenant, ca_id, generation)
    }

    fn tenants_with_pending_crls(&mut self) -> Result<Vec<TenantId>, StoreError> {
        ca::tenants_with_pending_crls(self.tx)
    }

    fn put_delta_crl(&mut self, delta: &DeltaCrlRecord) -> Result<(), StoreError> {
        ca::put_delta_crl(self.tx, delta)
    }

    fn delta_crl(&mut self, tenant: &TenantId, ca_id: &str) -> Result<Option<DeltaCrlRecord>, StoreError> {
        ca::delta_crl(self.tx, tenant, ca_id)
    }

    fn crl(&mut self, tenant: &TenantId, ca_id: &str) -> Result<Option<CrlRecord>, StoreError> {
        ca::crl(self.tx, tenant, ca_id)
    }

    fn insert_join_token(&mut self, token: &JoinTokenRecord) -> Result<(), StoreError> {
        join::insert_join_token(self.tx, token)
    }

    fn join_token_by_hash(&mut self, tenant: &TenantId, hash: &[u8]) -> Result<Option<JoinTokenRecord>, StoreError> {
        join::join_token_by_hash(self.tx, tenant, hash)
    }

    fn join_token(&mut self, tenant: &TenantId, id: &str) -> Result<Option<JoinTokenRecord>, StoreError> {
        join::join_token(self.tx, tenant, id)
    }

    fn list_join_tokens(&mut self, tenant: &TenantId) -> Result<Vec<JoinTokenRecord>, StoreError> {
        join::list_join_tokens(self.tx, tenant)
    }

    fn update_join_token(&mut self, token: &JoinTokenRecord) -> Result<(), StoreError> {
        join::update_join_token(self.tx, token)
    }

    fn trust_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError> {
        join::revision(self.tx, join::TRUST, tenant)
    }

    fn bump_trust_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError> {
        join::bump_revision(self.tx, join::TRUST, tenant)
    }

    fn directory_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError> {
        join::revision(self.tx, join::DIRECTORY, tenant)
    }

    fn bump_directory_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError> {
        join::bump_revision(self.tx, join::DIRECTORY, tenant)
    }

    fn trust_revisions(&mut self) -> Result<Vec<(TenantId, i64)>, StoreError> {
        join::trust_revisions(self.tx)
    }

    fn insert_trust_change(&mut self, tenant: &TenantId, revision: i64, body: &[u8]) -> Result<(), StoreError> {
        join::insert_trust_change(self.tx, tenant, revision, body)
    }

    fn trust_changes_since(&mut self, tenant: &TenantId, since: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        join::trust_changes_since(self.tx, tenant, since)
    }

    fn trust_changes_size(&mut self, tenant: &TenantId, since: i64) -> Result<(i64, i64), StoreError> {
        join::trust_changes_size(self.tx, tenant, since)
    }

    fn prune_trust_changes(&mut self, tenant: &TenantId, revision: i64) -> Result<(), StoreError> {
        join::prune_trust_changes(self.tx, tenant, revision)
    }

    fn insert_ca_request(&mut self, req: &CaRequestRecord) -> Result<(), StoreError> {
        ca::insert_ca_request(self.tx, req)
    }

    fn ca_request(&mut self, tenant: &TenantId, name: &str) -> Result<Option<CaRequestRecord>, StoreError> {
        ca::ca_request(self.tx, tenant, name)
    }

    fn delete_ca_request(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        ca::delete_ca_request(self.tx, tenant, id)
    }

    fn insert_k8s_cluster(&mut self, cluster: &K8sClusterRecord) -> Result<(), StoreError> {
        k8s::insert_cluster(self.tx, cluster)
    }

    fn k8s_cluster(&mut self, tenant: &TenantId, name: &str) -> Result<Option<K8sClusterRecord>, StoreError> {
        k8s::cluster(self.tx, tenant, name)
    }

    fn list_k8s_clusters(&mut self, tenant: &TenantId) -> Result<Vec<K8sClusterRecord>, StoreError> {
        k8s::list_clusters(self.tx, tenant)
    }

    fn update_k8s_cluster(&mut self, cluster: &K8sClusterRecord) -> Result<(), StoreError> {
        k8s::update_cluster(self.tx, cluster)
    }

    fn delete_k8s_cluster(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        k8s::delete_cluster(self.tx, tenant, id)
    }

    fn insert_workload_entry(&mut self, entry: &WorkloadEntryRecord) -> Result<(), StoreError> {
        workload::insert_entry(self.tx, entry)
    }

    fn workload_entry(&mut self, tenant: &TenantId, name: &str) -> Result<Option<WorkloadEntryRecord>, StoreError> {
        workload::entry(self.tx, tenant, name)
    }

    fn list_workload_entries(&mut self, tenant: &TenantId) -> Result<Vec<WorkloadEntryRecord>, StoreError> {
        workload::list_entries(self.tx, tenant)
    }

    fn delete_workload_entry(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        workload::delete_entry(self.tx, tenant, id)
    }

    fn delete_service_workload_entries(&mut self, tenant: &TenantId, service_id: &str) -> Result<usize, StoreError> {
        workload::delete_service_entries(self.tx, tenant, service_id)
    }

    fn insert_token_key(&mut self, key: &TokenKeyRecord) -> Result<(), StoreError> {
        token::insert_key(self.tx, key)
    }

    fn list_token_keys(&mut self, tenant: &TenantId) -> Result<Vec<TokenKeyRecord>, StoreError> {
        token::list_keys(self.tx, tenant)
    }

    fn prune_token_keys(&mut self, tenant: &TenantId, now: i64) -> Result<usize, StoreError> {
        token::prune_keys(self.tx, tenant, now)
    }

    fn insert_federation(&mut self, f: &FederationRecord) -> Result<(), StoreError> {
        workload::insert_federation(self.tx, f)
    }

    fn update_federation(&mut self, f: &FederationRecord) -> Result<bool, StoreError> {
        workload::update_federation(self.tx, f)
    }

    fn federation(&mut self, tenant: &TenantId, trust_domain: &str) -> Result<Option<FederationRecord>, StoreError> {
        workload::federation(self.tx, tenant, trust_domain)
    }

    fn list_federations(&mut self, tenant: &TenantId) -> Result<Vec<FederationRecord>, StoreError> {
        workload::list_federations(self.tx, tenant)
    }

    fn delete_federation(&mut self, tenant: &TenantId, trust_domain: &str) -> Result<bool, StoreError> {
        workload::delete_federation(self.tx, tenant, trust_domain)
    }

    fn due_federations(&mut self, now: i64, limit: usize) -> Result<Vec<FederationRecord>, StoreError> {
        workload::due_federations(self.tx, now, limit)
    }

    fn insert_oidc_client(&mut self, c: &OidcClientRecord) -> Result<(), StoreError> {
        oidc::insert(self.tx, c)
    }

    fn update_oidc_client(&mut self, c: &OidcClientRecord) -> Result<bool, StoreError> {
        oidc::update(self.tx, c)
    }

    fn oidc_client(&mut self, tenant: &TenantId, id: &str) -> Result<Option<OidcClientRecord>, StoreError> {
        oidc::by_id(self.tx, tenant, id)
    }

    fn oidc_client_by_name(&mut self, tenant: &TenantId, name: &str) -> Result<Option<OidcClientRecord>, StoreError> {
        oidc::by_name(self.tx, tenant, name)
    }

    fn list_oidc_clients(&mut self, tenant: &TenantId) -> Result<Vec<OidcClientRecord>, StoreError> {
        oidc::list(self.tx, tenant)
    }

    fn delete_oidc_client(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        oidc::delete(self.tx, tenant, id)
    }

    fn delete_principal_oidc_clients(&mut self, tenant: &TenantId, principal_id: &str) -> Result<usize, StoreError> {
        oidc::delete_of_principal(self.tx, tenant, principal_id)
    }

    fn revoke_token(&mut self, tenant: &TenantId, jti: &str, expires_at: i64, now: i64) -> Result<bool, StoreError> {
        oidc::revoke_token(self.tx, tenant, jti, expires_at, now)
    }

    fn token_revoked(&mut self, tenant: &TenantId, jti: &str) -> Result<bool, StoreError> {
        oidc::token_revoked(self.tx, tenant, jti)
    }

    fn prune_revoked_tokens(&mut self, now: i64) -> Result<usize, StoreError> {
        oidc::prune_revoked_tokens(self.tx, now)
    }
}
