//! The PostgreSQL backend, for high availability: any number of `lightwelld`
//! replicas share one database. Write transactions run SERIALIZABLE and are
//! retried on serialization failures, so read-modify-write sequences (audit
//! chain heads, CRL numbers, lockout counters) stay correct when replicas
//! race; the closure handed to `transact_dyn` may therefore run more than once.

use std::collections::HashMap;
use std::time::Duration;

mod ca;
mod dump;
mod join;
mod k8s;
mod listen;
mod oidc;
mod token;
mod workload;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{IsolationLevel, NoTls, Row, Statement};
use r2d2_postgres::PostgresConnectionManager;

use crate::{
    AuditHead, AuditRecord, CaRecord, CaRequestRecord, CertificateFilter, CertificateRecord, CrlPending, CrlRecord,
    DeltaCrlRecord, FederationRecord, JoinTokenRecord, K8sClusterRecord, Membership, OcspResponderRecord,
    OidcClientRecord, PrincipalKind, PrincipalRecord, RevokedEntry, SessionRecord, Store, StoreError, TenantId,
    TenantRecord, TokenKeyRecord, Tx, TxMode, WorkloadEntryRecord,
};

/// Migrations, applied in order; the version is the position (from 1).
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_foundation.sql"),
    include_str!("../../migrations/postgres/0002_certificate_authority.sql"),
    include_str!("../../migrations/postgres/0003_join.sql"),
    include_str!("../../migrations/postgres/0004_ca_requests.sql"),
    include_str!("../../migrations/postgres/0005_directory_revisions.sql"),
    include_str!("../../migrations/postgres/0006_kubernetes.sql"),
    include_str!("../../migrations/postgres/0007_revoked_index.sql"),
    include_str!("../../migrations/postgres/0008_crl_pending.sql"),
    include_str!("../../migrations/postgres/0009_principal_names.sql"),
    include_str!("../../migrations/postgres/0010_audit_head_mac.sql"),
    include_str!("../../migrations/postgres/0011_ocsp_responders.sql"),
    include_str!("../../migrations/postgres/0012_trust_changes.sql"),
    include_str!("../../migrations/postgres/0013_workload_entries.sql"),
    include_str!("../../migrations/postgres/0014_token_keys.sql"),
    include_str!("../../migrations/postgres/0015_delta_crls.sql"),
    include_str!("../../migrations/postgres/0016_delta_crl_base_time.sql"),
    include_str!("../../migrations/postgres/0017_federations.sql"),
    include_str!("../../migrations/postgres/0018_oidc_clients.sql"),
    include_str!("../../migrations/postgres/0019_revoked_tokens.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Attempts of a transaction that keeps hitting serialization failures.
/// Every write of a tenant touches its audit head, so concurrent writers of
/// one tenant on several replicas conflict; with the backoff below thirty
/// attempts give a burst of a few dozen concurrent writers a few seconds.
/// Key of the advisory lock writers take turns on (migrations use another).
const WRITER_LOCK: i64 = 0x4c57_5752;

const MAX_ATTEMPTS: u32 = 30;

/// Rows per statement of a bulk insert: big enough that round trips do not
/// count, small enough that a statement's arrays stay a few megabytes.
const BULK_ROWS: usize = 2_000;

/// Backoff before retry `attempt`: doubling from 5 ms up to 100 ms, with
/// ±50% jitter so the writers that collided do not collide again in step.
fn retry_delay(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let base = Duration::from_millis(5u64.saturating_mul(1 << attempt.min(5)).min(100));
    // A fresh RandomState is randomly keyed: a cheap source of jitter.
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    base.mul_f64(0.5 + (random % 1000) as f64 / 1000.0)
}

/// A pooled connection and the statements prepared on it. Given SQL text,
/// the postgres crate prepares it again on every call: one more round trip
/// per statement, which writers pay while holding the writer lock.
/// Statements live as long as the connection (server-side prepared
/// statements outlast transactions, rolled back or not); the SQL is the
/// code's own, so the set is bounded.
pub(crate) struct Conn {
    client: postgres::Client,
    statements: HashMap<String, Statement>,
}

impl std::ops::Deref for Conn {
    type Target = postgres::Client;

    fn deref(&self) -> &postgres::Client {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

impl Conn {
    /// Runs a statement outside any transaction, prepared once per connection.
    fn execute_cached(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, postgres::Error> {
        let statement = match self.statements.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = self.client.prepare(sql)?;
                self.statements.insert(sql.to_owned(), s.clone());
                s
            }
        };
        self.client.execute(&statement, params)
    }
}

/// r2d2's PostgreSQL manager, with a statement cache per connection.
struct Manager(PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn { client: self.0.connect()?, statements: HashMap::new() })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

/// PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    /// Always `Some` until dropped (see the `Drop` impl).
    pool: Option<r2d2::Pool<Manager>>,
    /// For the change listener's own connection.
    config: postgres::Config,
    /// The schema version before this open applied migrations.
    migrated_from: i64,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the connection string: it may hold a password.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing a `postgres::Client` blocks on the client's own runtime,
        // which panics on a thread that drives an async runtime (the server
        // drops its store there at shutdown): close the pool on a plain thread.
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError::from(&e)
    }
}

fn is_retryable(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`) and applies
    /// pending migrations. Blocking, like every method of this store: call it
    /// off an async runtime's threads (`spawn_blocking`).
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let config: postgres::Config = url.parse().map_err(|_| StoreError::Backend("invalid PostgreSQL URL".into()))?;
        let manager = Manager(PostgresConnectionManager::new(config.clone(), NoTls));
        let pool = r2d2::Pool::builder()
            .max_size(16)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .error_handler(Box::new(r2d2::LoggingErrorHandler))
            .build(manager)
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        let mut store = Self { pool: Some(pool), config, migrated_from: 0 };
        store.migrated_from = store.migrate()?;
        Ok(store)
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        let pool = self.pool.as_ref().ok_or_else(|| StoreError::Unavailable("the store is closed".into()))?;
        pool.get().map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
    }

    /// Applies pending migrations; returns the version the database had before.
    fn migrate(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // One migrator at a time across replicas.
        tx.execute("SELECT pg_advisory_xact_lock(7386143)", &[])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )?;
        let current: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.get(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "database schema version {current} is newer than this build's {SCHEMA_VERSION}"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let version = i as i64 + 1;
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)",
                &[&version],
            )?;
            tracing::info!(version, "applied postgres migration");
        }
        tx.commit()?;
        Ok(current)
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        Ok(conn.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.get(0))
    }
}

impl PostgresStore {
    /// One try of a transaction; the flag says whether a retry may succeed.
    fn attempt(
        &self,
        mode: TxMode,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), (StoreError, bool)> {
        let mut conn = self.conn().map_err(|e| (e, false))?;
        // Writers take turns, on every replica: a session-level advisory lock
        // taken *before* BEGIN, so each SERIALIZABLE snapshot starts after the
        // previous writer committed. Without it, concurrent writes of a tenant
        // (all of which bump its audit-chain head) conflicted, retried and, at
        // 64 concurrent issuances, gave up. Readers never wait for it.
        let writer = mode == TxMode::Write;
        if writer {
            conn.execute_cached("SELECT pg_advisory_lock($1)", &[&WRITER_LOCK])
                .map_err(|e| (StoreError::from(&e), false))?;
        }
        let result = Self::run(&mut conn, mode, f);
        if writer {
            // A session lock outlives its transaction: release it whatever happened.
            // If the connection broke, the server released it with the session.
            if let Err(e) = conn.execute_cached("SELECT pg_advisory_unlock($1)", &[&WRITER_LOCK]) {
                tracing::warn!(error = %e, "releasing the writer lock failed");
            }
        }
        result
    }

    fn run(
        conn: &mut Conn,
        mode: TxMode,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), (StoreError, bool)> {
        let client = &mut conn.client;
        let builder = match mode {
            TxMode::Write => client.build_transaction().isolation_level(IsolationLevel::Serializable),
            TxMode::Read => client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true),
        };
        let tx = builder.start().map_err(|e| (StoreError::from(&e), false))?;
        let mut pg = PgTx { tx, statements: &mut conn.statements, last_error: None, lost_race: false };
        if let Err(e) = f(&mut pg) {
            let retryable = pg.lost_race || pg.last_error.as_ref().is_some_and(is_retryable);
            return Err((e, retryable));
        }
        pg.tx.commit().map_err(|e| (StoreError::from(&e), is_retryable(&e)))
    }
}

impl Store for PostgresStore {
    fn migrated_from(&self) -> i64 {
        self.migrated_from
    }

    fn transact_dyn(
        &self,
        mode: TxMode,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(mode, f) {
                Ok(()) => return Ok(()),
                Err((e, true)) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "retrying a serialization failure");
                    std::thread::sleep(retry_delay(attempt));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.simple_query("SELECT 1")?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn export(&self) -> Result<crate::Dump, StoreError> {
        self.export_all()
    }

    fn import(&self, dump: &crate::Dump) -> Result<(), StoreError> {
        self.import_all(dump)
    }

    fn subscribe_changes(&self, on_change: crate::ChangeCallback) -> Option<crate::ChangeSubscription> {
        listen::subscribe(self.config.clone(), on_change)
    }
}

struct PgTx<'a> {
    tx: postgres::Transaction<'a>,
    /// The connection's prepared statements (see [`Conn`]).
    statements: &'a mut HashMap<String, Statement>,
    /// The last database error, to tell a retryable conflict from a real failure.
    last_error: Option<postgres::Error>,
    /// A retry may succeed where this attempt failed: a concurrent
    /// transaction took a key this one derived from what it read (the next
    /// audit sequence number; SERIALIZABLE reports that as a unique
    /// violation, not a serialization failure, but it is the same race and a
    /// retry reads the new value), or a cached statement had to be forgotten.
    lost_race: bool,
}

impl PgTx<'_> {
    /// `sql` prepared on this connection, once.
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.execute(&s, params)
    }

    fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query(&s, params)
    }

    fn query_opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query_opt(&s, params)
    }

    fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query_one(&s, params)
    }

    fn track<T>(&mut self, r: Result<T, postgres::Error>) -> Result<T, StoreError> {
        r.map_err(|e| {
            // A prepared statement the server no longer has (a pooler
            // swapped the session, DISCARD ALL) or whose plan a schema change
            // on another replica invalidated ("cached plan must not change
            // result type"): forget this connection's statements and retry.
            if e.code()
                .is_some_and(|c| *c == SqlState::INVALID_SQL_STATEMENT_NAME || *c == SqlState::FEATURE_NOT_SUPPORTED)
            {
                self.statements.clear();
                self.lost_race = true;
            }
            let mapped = StoreError::from(&e);
            self.last_error = Some(e);
            mapped
        })
    }
}

impl From<&postgres::Error> for StoreError {
    fn from(e: &postgres::Error) -> Self {
        match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(e.to_string()),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
                StoreError::Unavailable(format!("serialization failure: {e}"))
            }
            // The server is going away or not there yet: connection exceptions
            // (08), insufficient resources (53), operator intervention (57:
            // shutdown, crash, "the database system is starting up").
            Some(c) if ["08", "53", "57"].iter().any(|class| c.code().starts_with(class)) => {
                StoreError::Unavailable(e.to_string())
            }
            Some(_) => StoreError::Backend(e.to_string()),
            None => StoreError::Unavailable(e.to_string()),
        }
    }
}

const PRINCIPAL_COLUMNS: &str = "id, tenant_id, kind, name, display_name, email, hostnames, ips, enabled, builtin, \
     password_hash, credential_epoch, failed_logins, failure_window_start, locked_until, created_at, updated_at";

fn json_list(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad list column: {e}")))
}

fn to_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn principal_from_row(r: &Row) -> Result<PrincipalRecord, StoreError> {
    let kind: String = r.get(2);
    Ok(PrincipalRecord {
        id: r.get(0),
        tenant_id: TenantId::new(r.get::<_, String>(1)),
        kind: PrincipalKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("unknown kind {kind}")))?,
        name: r.get(3),
        display_name: r.get(4),
        email: r.get(5),
        hostnames: json_list(r.get(6))?,
        ips: json_list(r.get(7))?,
        enabled: r.get(8),
        builtin: r.get(9),
        password_hash: r.get(10),
        credential_epoch: r.get(11),
        failed_logins: r.get(12),
        failure_window_start: r.get(13),
        locked_until: r.get(14),
        created_at: r.get(15),
        updated_at: r.get(16),
    })
}

fn tenant_from_row(r: &Row) -> TenantRecord {
    TenantRecord { id: TenantId::new(r.get::<_, String>(0)), domain: r.get(1), policy: r.get(2), created_at: r.get(3) }
}

fn session_from_row(r: &Row) -> SessionRecord {
    SessionRecord {
        token_hash: r.get(0),
        tenant_id: TenantId::new(r.get::<_, String>(1)),
        principal_id: r.get(2),
        credential_epoch: r.get(3),
        created_at: r.get(4),
        expires_at: r.get(5),
    }
}

fn audit_from_row(r: &Row) -> AuditRecord {
    AuditRecord {
        scope: TenantId::new(r.get::<_, String>(0)),
        seq: r.get(1),
        at: r.get(2),
        actor: r.get(3),
        action: r.get(4),
        target: r.get(5),
        outcome: r.get(6),
        detail: r.get(7),
        prev_hash: r.get(8),
        hash: r.get(9),
    }
}

impl PgTx<'_> {
    /// Records the names `p` claims; `Conflict` naming the first one another
    /// principal holds (without aborting the transaction).
    fn pg_claim_names(&mut self, p: &PrincipalRecord) -> Result<(), StoreError> {
        self.pg_claim(p, p.claimed_names())
    }

    /// Records `names` as `p`'s; `Conflict` naming the first one another principal holds.
    fn pg_claim(&mut self, p: &PrincipalRecord, names: std::collections::BTreeSet<String>) -> Result<(), StoreError> {
        for name in names {
            let r = self.execute(
                "INSERT INTO principal_names (tenant_id, name, principal_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, name) DO NOTHING",
                &[&p.tenant_id.as_str(), &name, &p.id],
            );
            if self.track(r)? == 0 {
                return Err(crate::name_taken(&name));
            }
        }
        Ok(())
    }
}

impl PgTx<'_> {
    /// Runs `f` in a savepoint: if it fails, nothing it wrote stays and the
    /// transaction stays usable (a failed statement would otherwise abort it).
    fn all_or_nothing(&mut self, f: impl FnOnce(&mut Self) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let r = self.tx.batch_execute("SAVEPOINT bulk");
        self.track(r)?;
        let outcome = f(self);
        let end = if outcome.is_ok() {
            "RELEASE SAVEPOINT bulk"
        } else {
            "ROLLBACK TO SAVEPOINT bulk; RELEASE SAVEPOINT bulk"
        };
        let r = self.tx.batch_execute(end);
        self.track(r)?;
        outcome
    }

    /// Principals and their claimed names, a statement a chunk (see [`BULK_ROWS`]).
    fn pg_insert_principal_rows(&mut self, principals: &[PrincipalRecord]) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO principals ({PRINCIPAL_COLUMNS}) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], \
             $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::boolean[], $10::boolean[], $11::text[], \
             $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[])"
        );
        for chunk in principals.chunks(BULK_ROWS) {
            let text = |f: fn(&PrincipalRecord) -> &str| chunk.iter().map(f).collect::<Vec<_>>();
            let opt = |f: fn(&PrincipalRecord) -> Option<&str>| chunk.iter().map(f).collect::<Vec<_>>();
            let flag = |f: fn(&PrincipalRecord) -> bool| chunk.iter().map(f).collect::<Vec<_>>();
            let num = |f: fn(&PrincipalRecord) -> i64| chunk.iter().map(f).collect::<Vec<_>>();
            let maybe = |f: fn(&PrincipalRecord) -> Option<i64>| chunk.iter().map(f).collect::<Vec<_>>();
            let hostnames: Vec<String> = chunk.iter().map(|p| to_json(&p.hostnames)).collect();
            let ips: Vec<String> = chunk.iter().map(|p| to_json(&p.ips)).collect();
            let r = self.execute(
                &sql,
                &[
                    &text(|p| &p.id),
                    &text(|p| p.tenant_id.as_str()),
                    &text(|p| p.kind.as_str()),
                    &text(|p| &p.name),
                    &opt(|p| p.display_name.as_deref()),
                    &opt(|p| p.email.as_deref()),
                    &hostnames,
                    &ips,
                    &flag(|p| p.enabled),
                    &flag(|p| p.builtin),
                    &opt(|p| p.password_hash.as_deref()),
                    &num(|p| p.credential_epoch),
                    &num(|p| p.failed_logins),
                    &maybe(|p| p.failure_window_start),
                    &maybe(|p| p.locked_until),
                    &num(|p| p.created_at),
                    &num(|p| p.updated_at),
                ],
            );
            self.track(r)?;
            let (mut names, mut owners) = (Vec::new(), Vec::new());
            for p in chunk {
                for name in p.claimed_names() {
                    names.push(name);
                    owners.push(p.id.as_str());
                }
            }
            // A name taken before, or twice in the chunk, is not inserted: the first missing one is the conflict.
            let r = self.query(
                "INSERT INTO principal_names (tenant_id, name, principal_id) SELECT $1, * FROM UNNEST($2::text[], $3::text[]) \
                 ON CONFLICT (tenant_id, name) DO NOTHING RETURNING name",
                &[&chunk[0].tenant_id.as_str(), &names, &owners],
            );
            let claimed: std::collections::HashSet<String> = self.track(r)?.iter().map(|r| r.get(0)).collect();
            if claimed.len() < names.len() {
                let mut seen = std::collections::HashSet::new();
                let taken = names.iter().find(|n| !claimed.contains(*n) || !seen.insert(n.as_str()));
                return Err(crate::name_taken(taken.map_or("", String::as_str)));
            }
        }
        Ok(())
    }
}

impl Tx for PgTx<'_> {
    fn insert_tenant(&mut self, t: &TenantRecord) -> Result<(), StoreError> {
        let r = self.execute(
            "INSERT INTO tenants (id, domain, policy, created_at) VALUES ($1, $2, $3, $4)",
            &[&t.id.as_str(), &t.domain, &t.policy, &t.created_at],
        );
        self.track(r).map(drop)
    }

    fn update_tenant_policy(&mut self, id: &TenantId, policy: &str) -> Result<bool, StoreError> {
        let r = self.execute("UPDATE tenants SET policy = $2 WHERE id = $1", &[&id.as_str(), &policy]);
        Ok(self.track(r)? > 0)
    }

    fn tenant_by_domain(&mut self, domain: &str) -> Result<Option<TenantRecord>, StoreError> {
        let r = self.query_opt("SELECT id, domain, policy, created_at FROM tenants WHERE domain = $1", &[&domain]);
        Ok(self.track(r)?.as_ref().map(tenant_from_row))
    }

    fn tenant(&mut self, id: &TenantId) -> Result<Option<TenantRecord>, StoreError> {
        let r = self.query_opt("SELECT id, domain, policy, created_at FROM tenants WHERE id = $1", &[&id.as_str()]);
        Ok(self.track(r)?.as_ref().map(tenant_from_row))
    }

    fn list_tenants(&mut self) -> Result<Vec<TenantRecord>, StoreError> {
        let r = self.query("SELECT id, domain, policy, created_at FROM tenants ORDER BY domain", &[]);
        Ok(self.track(r)?.iter().map(tenant_from_row).collect())
    }

    fn delete_tenant(&mut self, id: &TenantId) -> Result<bool, StoreError> {
        if id.is_system() {
            return Ok(false);
        }
        let id = id.as_str();
        self.pg_delete_tenant_ca_rows(id)?;
        self.pg_delete_tenant_join_rows(id)?;
        self.pg_delete_tenant_k8s_rows(id)?;
        self.pg_delete_tenant_workload_rows(id)?;
        for sql in ["DELETE FROM oidc_clients WHERE tenant_id = $1", "DELETE FROM revoked_tokens WHERE tenant_id = $1"]
        {
            let r = self.execute(sql, &[&id]);
            self.track(r)?;
        }
        self.pg_delete_tenant_token_rows(id)?;
        for sql in [
            "DELETE FROM memberships WHERE tenant_id = $1",
            "DELETE FROM sessions WHERE tenant_id = $1",
            "DELETE FROM principals WHERE tenant_id = $1",
            "DELETE FROM principal_names WHERE tenant_id = $1",
            "DELETE FROM audit WHERE scope = $1",
            "DELETE FROM audit_heads WHERE scope = $1",
        ] {
            let r = self.execute(sql, &[&id]);
            self.track(r)?;
        }
        let r = self.execute("DELETE FROM tenants WHERE id = $1", &[&id]);
        Ok(self.track(r)? > 0)
    }

    fn insert_principal(&mut self, p: &PrincipalRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO principals ({PRINCIPAL_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        );
        let r = self.execute(
            &sql,
            &[
                &p.id,
                &p.tenant_id.as_str(),
                &p.kind.as_str(),
                &p.name,
                &p.display_name,
                &p.email,
                &to_json(&p.hostnames),
                &to_json(&p.ips),
                &p.enabled,
                &p.builtin,
                &p.password_hash,
                &p.credential_epoch,
                &p.failed_logins,
                &p.failure_window_start,
                &p.locked_until,
                &p.created_at,
                &p.updated_at,
            ],
        );
        self.track(r)?;
        self.pg_claim_names(p)
    }

    fn name_owner(&mut self, tenant: &TenantId, name: &str) -> Result<Option<String>, StoreError> {
        let r = self.query_opt(
            "SELECT principal_id FROM principal_names WHERE tenant_id = $1 AND name = $2",
            &[&tenant.as_str(), &name.to_ascii_lowercase()],
        );
        Ok(self.track(r)?.map(|row| row.get(0)))
    }

    fn insert_principals(&mut self, tenant: &TenantId, principals: &[PrincipalRecord]) -> Result<(), StoreError> {
        if principals.is_empty() {
            return Ok(());
        }
        crate::bulk::check_principals(self, tenant, principals)?;
        self.all_or_nothing(|tx| {
            tx.pg_insert_principal_rows(principals)?;
            crate::bulk::principals_written(tx, tenant)
        })
    }

    fn principal(
        &mut self,
        tenant: &TenantId,
        kind: PrincipalKind,
        name: &str,
    ) -> Result<Option<PrincipalRecord>, StoreError> {
        let sql = format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE tenant_id = $1 AND kind = $2 AND lower(name) = lower($3)"
        );
        let r = self.query_opt(&sql, &[&tenant.as_str(), &kind.as_str(), &name]);
        self.track(r)?.as_ref().map(principal_from_row).transpose()
    }

    fn principal_by_id(&mut self, tenant: &TenantId, id: &str) -> Result<Option<PrincipalRecord>, StoreError> {
        let sql = format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE tenant_id = $1 AND id = $2");
        let r = self.query_opt(&sql, &[&tenant.as_str(), &id]);
        self.track(r)?.as_ref().map(principal_from_row).transpose()
    }

    fn list_principals(
        &mut self,
        tenant: &TenantId,
        kind: Option<PrincipalKind>,
    ) -> Result<Vec<PrincipalRecord>, StoreError> {
        let sql = format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE tenant_id = $1 AND ($2::TEXT IS NULL OR kind = $2) \
             ORDER BY kind, name"
        );
        let r = self.query(&sql, &[&tenant.as_str(), &kind.map(PrincipalKind::as_str)]);
        self.track(r)?.iter().map(principal_from_row).collect()
    }

    fn update_principal(&mut self, p: &PrincipalRecord) -> Result<(), StoreError> {
        let before = self.principal_by_id(&p.tenant_id, &p.id)?;
        let r = self.execute(
            "UPDATE principals SET display_name = $3, email = $4, hostnames = $5, ips = $6, enabled = $7, \
             password_hash = $8, credential_epoch = $9, failed_logins = $10, failure_window_start = $11, \
             locked_until = $12, updated_at = $13 WHERE tenant_id = $1 AND id = $2",
            &[
                &p.tenant_id.as_str(),
                &p.id,
                &p.display_name,
                &p.email,
                &to_json(&p.hostnames),
                &to_json(&p.ips),
                &p.enabled,
                &p.password_hash,
                &p.credential_epoch,
                &p.failed_logins,
                &p.failure_window_start,
                &p.locked_until,
                &p.updated_at,
            ],
        );
        if self.track(r)? == 0 {
            return Err(StoreError::Backend(format!("principal {} not found for update", p.id)));
        }
        let (dropped, added) = crate::claim_changes(before.as_ref(), p);
        for name in dropped {
            let r = self.execute(
                "DELETE FROM principal_names WHERE tenant_id = $1 AND name = $2 AND principal_id = $3",
                &[&p.tenant_id.as_str(), &name, &p.id],
            );
            self.track(r)?;
        }
        self.pg_claim(p, added)
    }

    fn delete_principal(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let t = tenant.as_str();
        let r = self
            .execute("DELETE FROM memberships WHERE tenant_id = $1 AND (group_id = $2 OR member_id = $2)", &[&t, &id]);
        self.track(r)?;
        let r = self.execute("DELETE FROM sessions WHERE tenant_id = $1 AND principal_id = $2", &[&t, &id]);
        self.track(r)?;
        let r = self.execute("DELETE FROM principal_names WHERE tenant_id = $1 AND principal_id = $2", &[&t, &id]);
        self.track(r)?;
        let r = self.execute("DELETE FROM principals WHERE tenant_id = $1 AND id = $2", &[&t, &id]);
        Ok(self.track(r)? > 0)
    }

    fn add_member(&mut self, tenant: &TenantId, group_id: &str, member_id: &str) -> Result<(), StoreError> {
        let r = self.execute(
            "INSERT INTO memberships (tenant_id, group_id, member_id) VALUES ($1, $2, $3)",
            &[&tenant.as_str(), &group_id, &member_id],
        );
        self.track(r).map(drop)
    }

    fn remove_member(&mut self, tenant: &TenantId, group_id: &str, member_id: &str) -> Result<bool, StoreError> {
        let r = self.execute(
            "DELETE FROM memberships WHERE tenant_id = $1 AND group_id = $2 AND member_id = $3",
            &[&tenant.as_str(), &group_id, &member_id],
        );
        Ok(self.track(r)? > 0)
    }

    fn memberships(&mut self, tenant: &TenantId) -> Result<Vec<Membership>, StoreError> {
        let r = self.query(
            "SELECT group_id, member_id FROM memberships WHERE tenant_id = $1 ORDER BY group_id, member_id",
            &[&tenant.as_str()],
        );
        Ok(self.track(r)?.iter().map(|r| Membership { group_id: r.get(0), member_id: r.get(1) }).collect())
    }

    fn memberships_of(&mut self, tenant: &TenantId, member_id: &str) -> Result<Vec<Membership>, StoreError> {
        let r = self.query(
            "SELECT group_id, member_id FROM memberships WHERE tenant_id = $1 AND member_id = $2 ORDER BY group_id",
            &[&tenant.as_str(), &member_id],
        );
        Ok(self.track(r)?.iter().map(|r| Membership { group_id: r.get(0), member_id: r.get(1) }).collect())
    }

    fn insert_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
        let r = self.execute(
            "INSERT INTO sessions (token_hash, tenant_id, principal_id, credential_epoch, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&s.token_hash, &s.tenant_id.as_str(), &s.principal_id, &s.credential_epoch, &s.created_at, &s.expires_at],
        );
        self.track(r).map(drop)
    }

    fn session(&mut self, token_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        let r = self.query_opt(
            "SELECT token_hash, tenant_id, principal_id, credential_epoch, created_at, expires_at \
             FROM sessions WHERE token_hash = $1",
            &[&token_hash],
        );
        Ok(self.track(r)?.as_ref().map(session_from_row))
    }

    fn delete_session(&mut self, token_hash: &[u8]) -> Result<bool, StoreError> {
        let r = self.execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash]);
        Ok(self.track(r)? > 0)
    }

    fn delete_sessions_of(&mut self, tenant: &TenantId, principal_id: &str) -> Result<u64, StoreError> {
        let r = self.execute(
            "DELETE FROM sessions WHERE tenant_id = $1 AND principal_id = $2",
            &[&tenant.as_str(), &principal_id],
        );
        self.track(r)
    }

    fn purge_sessions(&mut self, now: i64) -> Result<u64, StoreError> {
        let r = self.execute("DELETE FROM sessions WHERE expires_at < $1", &[&now]);
        self.track(r)
    }

    fn audit_head(&mut self, scope: &TenantId) -> Result<Option<AuditHead>, StoreError> {
        let r = self.query_opt("SELECT seq, hash, mac FROM audit_heads WHERE scope = $1", &[&scope.as_str()]);
        Ok(self.track(r)?.map(|r| AuditHead { seq: r.get(0), hash: r.get(1), mac: r.get(2) }))
    }

    fn audit_heads(&mut self) -> Result<Vec<(TenantId, AuditHead)>, StoreError> {
        let r = self.query("SELECT scope, seq, hash, mac FROM audit_heads ORDER BY scope", &[]);
        Ok(self
            .track(r)?
            .iter()
            .map(|r| (TenantId::new(r.get::<_, String>(0)), AuditHead { seq: r.get(1), hash: r.get(2), mac: r.get(3) }))
            .collect())
    }

    fn seal_audit_head(&mut self, scope: &TenantId, seq: i64, mac: &str) -> Result<bool, StoreError> {
        let r = self
            .execute("UPDATE audit_heads SET mac = $3 WHERE scope = $1 AND seq = $2", &[&scope.as_str(), &seq, &mac]);
        Ok(self.track(r)? > 0)
    }

    fn last_audit_checkpoint(&mut self, tenant: &TenantId) -> Result<Option<AuditRecord>, StoreError> {
        // The literals match the partial index `audit_checkpoints` (migration 0010).
        let r = self.query_opt(
            "SELECT scope, seq, at, actor, action, target, outcome, detail, prev_hash, hash FROM audit \
             WHERE scope = '' AND action = 'audit.checkpoint' AND target = $1 ORDER BY seq DESC LIMIT 1",
            &[&tenant.as_str()],
        );
        Ok(self.track(r)?.as_ref().map(audit_from_row))
    }

    fn insert_audit(&mut self, a: &AuditRecord, head_mac: &str) -> Result<(), StoreError> {
        let r = self.execute(
            "INSERT INTO audit (scope, seq, at, actor, action, target, outcome, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &a.scope.as_str(),
                &a.seq,
                &a.at,
                &a.actor,
                &a.action,
                &a.target,
                &a.outcome,
                &a.detail,
                &a.prev_hash,
                &a.hash,
            ],
        );
        if let Err(e) = &r
            && e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        {
            // Another replica appended this sequence number since we read the
            // head: the store retries the transaction, which reads the new head.
            self.lost_race = true;
        }
        self.track(r)?;
        let r = self.execute(
            "INSERT INTO audit_heads (scope, seq, hash, mac) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac",
            &[&a.scope.as_str(), &a.seq, &a.hash, &head_mac],
        );
        self.track(r).map(drop)
    }

    fn list_audit(&mut self, scope: &TenantId, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let r = self.query(
            "SELECT scope, seq, at, actor, action, target, outcome, detail, prev_hash, hash FROM audit \
             WHERE scope = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&scope.as_str(), &after, &i64::from(limit)],
        );
        Ok(self.track(r)?.iter().map(audit_from_row).collect())
    }

    fn insert_ca(&mut self, c: &CaRecord) -> Result<(), StoreError> {
        self.pg_insert_ca(c)
    }

    fn ca(&mut self, tenant: &TenantId, id: &str) -> Result<Option<CaRecord>, StoreError> {
        self.pg_ca(tenant, id)
    }

    fn list_cas(&mut self, tenant: &TenantId) -> Result<Vec<CaRecord>, StoreError> {
        self.pg_list_cas(tenant)
    }

    fn update_ca(&mut self, c: &CaRecord) -> Result<(), StoreError> {
        self.pg_update_ca(c)
    }

    fn insert_certificate(&mut self, cert: &CertificateRecord) -> Result<(), StoreError> {
        self.pg_insert_certificate(cert)
    }

    fn insert_certificates(&mut self, tenant: &TenantId, certs: &[CertificateRecord]) -> Result<(), StoreError> {
        if certs.is_empty() {
            return Ok(());
        }
        let revised = crate::bulk::check_certificates(self, tenant, certs)?;
        self.all_or_nothing(|tx| {
            tx.pg_insert_certificate_rows(certs)?;
            crate::bulk::certificates_written(tx, tenant, revised)
        })
    }

    fn certificate(&mut self, tenant: &TenantId, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        self.pg_certificate(tenant, serial)
    }

    fn list_certificates(
        &mut self,
        tenant: &TenantId,
        filter: &CertificateFilter,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.pg_list_certificates(tenant, filter)
    }

    fn revoke_certificate(
        &mut self,
        tenant: &TenantId,
        serial: &str,
        at: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        self.pg_revoke_certificate(tenant, serial, at, reason)
    }

    fn revoked_entries(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        not_after_from: i64,
    ) -> Result<Vec<RevokedEntry>, StoreError> {
        self.pg_revoked_entries(tenant, ca_id, not_after_from)
    }

    fn put_crl(&mut self, crl: &CrlRecord) -> Result<(), StoreError> {
        self.pg_put_crl(crl)
    }

    fn put_ocsp_responder(&mut self, responder: &OcspResponderRecord) -> Result<(), StoreError> {
        self.pg_put_ocsp_responder(responder)
    }

    fn ocsp_responder(&mut self, tenant: &TenantId, ca_id: &str) -> Result<Option<OcspResponderRecord>, StoreError> {
        self.pg_ocsp_responder(tenant, ca_id)
    }

    fn revoked_entries_exceed(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        not_after_from: i64,
        limit: u64,
    ) -> Result<bool, StoreError> {
        self.pg_revoked_entries_exceed(tenant, ca_id, not_after_from, limit)
    }

    fn mark_crl_pending(&mut self, tenant: &TenantId, ca_id: &str, at: i64) -> Result<i64, StoreError> {
        self.pg_mark_crl_pending(tenant, ca_id, at)
    }

    fn pending_crls(&mut self, tenant: &TenantId) -> Result<Vec<CrlPending>, StoreError> {
        self.pg_pending_crls(tenant)
    }

    fn clear_crl_pending(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        generation: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.pg_clear_crl_pending(tenant, ca_id, generation)
    }

    fn tenants_with_pending_crls(&mut self) -> Result<Vec<TenantId>, StoreError> {
        self.pg_tenants_with_pending_crls()
    }

    fn put_delta_crl(&mut self, delta: &DeltaCrlRecord) -> Result<(), StoreError> {
        self.pg_put_delta_crl(delta)
    }

    fn delta_crl(&mut self, tenant: &TenantId, ca_id: &str) -> Result<Option<DeltaCrlRecord>, StoreError> {
        self.pg_delta_crl(tenant, ca_id)
    }

    fn crl(&mut self, tenant: &TenantId, ca_id: &str) -> Result<Option<CrlRecord>, StoreError> {
        self.pg_crl(tenant, ca_id)
    }

    fn insert_join_token(&mut self, token: &JoinTokenRecord) -> Result<(), StoreError> {
        self.pg_insert_join_token(token)
    }

    fn join_token_by_hash(&mut self, tenant: &TenantId, hash: &[u8]) -> Result<Option<JoinTokenRecord>, StoreError> {
        self.pg_join_token_by_hash(tenant, hash)
    }

    fn join_token(&mut self, tenant: &TenantId, id: &str) -> Result<Option<JoinTokenRecord>, StoreError> {
        self.pg_join_token(tenant, id)
    }

    fn list_join_tokens(&mut self, tenant: &TenantId) -> Result<Vec<JoinTokenRecord>, StoreError> {
        self.pg_list_join_tokens(tenant)
    }

    fn update_join_token(&mut self, token: &JoinTokenRecord) -> Result<(), StoreError> {
        self.pg_update_join_token(token)
    }

    fn trust_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError> {
        self.pg_revision(join::TRUST, tenant)
    }

    fn directory_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError> {
        self.pg_revision(join::DIRECTORY, tenant)
    }

    fn bump_directory_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError> {
        self.pg_bump_revision(join::DIRECTORY, tenant)
    }

    fn bump_trust_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError> {
        self.pg_bump_trust_revision(tenant)
    }

    fn trust_revisions(&mut self) -> Result<Vec<(TenantId, i64)>, StoreError> {
        self.pg_trust_revisions()
    }

    fn insert_trust_change(&mut self, tenant: &TenantId, revision: i64, body: &[u8]) -> Result<(), StoreError> {
        let r = self.execute(
            "INSERT INTO trust_changes (tenant_id, revision, body) VALUES ($1, $2, $3)",
            &[&tenant.as_str(), &revision, &body],
        );
        self.track(r)?;
        Ok(())
    }

    fn trust_changes_since(&mut self, tenant: &TenantId, since: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let r = self.query(
            "SELECT revision, body FROM trust_changes WHERE tenant_id = $1 AND revision > $2 ORDER BY revision",
            &[&tenant.as_str(), &since],
        );
        Ok(self.track(r)?.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn trust_changes_size(&mut self, tenant: &TenantId, since: i64) -> Result<(i64, i64), StoreError> {
        let r = self.query_one(
            "SELECT COUNT(*), COALESCE(SUM(octet_length(body)), 0)::BIGINT FROM trust_changes \
             WHERE tenant_id = $1 AND revision > $2",
            &[&tenant.as_str(), &since],
        );
        let row = self.track(r)?;
        Ok((row.get(0), row.get(1)))
    }

    fn prune_trust_changes(&mut self, tenant: &TenantId, revision: i64) -> Result<(), StoreError> {
        let r = self.execute(
            "DELETE FROM trust_changes WHERE tenant_id = $1 AND revision <= $2",
            &[&tenant.as_str(), &revision],
        );
        self.track(r)?;
        Ok(())
    }

    fn insert_ca_request(&mut self, req: &CaRequestRecord) -> Result<(), StoreError> {
        self.pg_insert_ca_request(req)
    }

    fn ca_request(&mut self, tenant: &TenantId, name: &str) -> Result<Option<CaRequestRecord>, StoreError> {
        self.pg_ca_request(tenant, name)
    }

    fn delete_ca_request(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        self.pg_delete_ca_request(tenant, id)
    }

    fn insert_k8s_cluster(&mut self, cluster: &K8sClusterRecord) -> Result<(), StoreError> {
        self.pg_insert_k8s_cluster(cluster)
    }

    fn k8s_cluster(&mut self, tenant: &TenantId, name: &str) -> Result<Option<K8sClusterRecord>, StoreError> {
        self.pg_k8s_cluster(tenant, name)
    }

    fn list_k8s_clusters(&mut self, tenant: &TenantId) -> Result<Vec<K8sClusterRecord>, StoreError> {
        self.pg_list_k8s_clusters(tenant)
    }

    fn update_k8s_cluster(&mut self, cluster: &K8sClusterRecord) -> Result<(), StoreError> {
        self.pg_update_k8s_cluster(cluster)
    }

    fn delete_k8s_cluster(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        self.pg_delete_k8s_cluster(tenant, id)
    }

    fn insert_workload_entry(&mut self, entry: &WorkloadEntryRecord) -> Result<(), StoreError> {
        self.pg_insert_workload_entry(entry)
    }

    fn workload_entry(&mut self, tenant: &TenantId, name: &str) -> Result<Option<WorkloadEntryRecord>, StoreError> {
        self.pg_workload_entry(tenant, name)
    }

    fn list_workload_entries(&mut self, tenant: &TenantId) -> Result<Vec<WorkloadEntryRecord>, StoreError> {
        self.pg_list_workload_entries(tenant)
    }

    fn delete_workload_entry(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        self.pg_delete_workload_entry(tenant, id)
    }

    fn delete_service_workload_entries(&mut self, tenant: &TenantId, service_id: &str) -> Result<usize, StoreError> {
        self.pg_delete_service_workload_entries(tenant, service_id)
    }

    fn insert_token_key(&mut self, key: &TokenKeyRecord) -> Result<(), StoreError> {
        self.pg_insert_token_key(key)
    }

    fn list_token_keys(&mut self, tenant: &TenantId) -> Result<Vec<TokenKeyRecord>, StoreError> {
        self.pg_list_token_keys(tenant)
    }

    fn prune_token_keys(&mut self, tenant: &TenantId, now: i64) -> Result<usize, StoreError> {
        self.pg_prune_token_keys(tenant, now)
    }

    fn insert_federation(&mut self, f: &FederationRecord) -> Result<(), StoreError> {
        self.pg_insert_federation(f)
    }

    fn update_federation(&mut self, f: &FederationRecord) -> Result<bool, StoreError> {
        self.pg_update_federation(f)
    }

    fn federation(&mut self, tenant: &TenantId, trust_domain: &str) -> Result<Option<FederationRecord>, StoreError> {
        self.pg_federation(tenant, trust_domain)
    }

    fn list_federations(&mut self, tenant: &TenantId) -> Result<Vec<FederationRecord>, StoreError> {
        self.pg_list_federations(tenant)
    }

    fn delete_federation(&mut self, tenant: &TenantId, trust_domain: &str) -> Result<bool, StoreError> {
        self.pg_delete_federation(tenant, trust_domain)
    }

    fn due_federations(&mut self, now: i64, limit: usize) -> Result<Vec<FederationRecord>, StoreError> {
        self.pg_due_federations(now, limit)
    }

    fn insert_oidc_client(&mut self, c: &OidcClientRecord) -> Result<(), StoreError> {
        self.pg_insert_oidc_client(c)
    }

    fn update_oidc_client(&mut self, c: &OidcClientRecord) -> Result<bool, StoreError> {
        self.pg_update_oidc_client(c)
    }

    fn oidc_client(&mut self, tenant: &TenantId, id: &str) -> Result<Option<OidcClientRecord>, StoreError> {
        self.pg_oidc_client(tenant, id)
    }

    fn oidc_client_by_name(&mut self, tenant: &TenantId, name: &str) -> Result<Option<OidcClientRecord>, StoreError> {
        self.pg_oidc_client_by_name(tenant, name)
    }

    fn list_oidc_clients(&mut self, tenant: &TenantId) -> Result<Vec<OidcClientRecord>, StoreError> {
        self.pg_list_oidc_clients(tenant)
    }

    fn delete_oidc_client(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        self.pg_delete_oidc_client(tenant, id)
    }

    fn delete_principal_oidc_clients(&mut self, tenant: &TenantId, principal_id: &str) -> Result<usize, StoreError> {
        self.pg_delete_principal_oidc_clients(tenant, principal_id)
    }

    fn revoke_token(&mut self, tenant: &TenantId, jti: &str, expires_at: i64, now: i64) -> Result<bool, StoreError> {
        self.pg_revoke_token(tenant, jti, expires_at, now)
    }

    fn token_revoked(&mut self, tenant: &TenantId, jti: &str) -> Result<bool, StoreError> {
        self.pg_token_revoked(tenant, jti)
    }

    fn prune_revoked_tokens(&mut self, now: i64) -> Result<usize, StoreError> {
        self.pg_prune_revoked_tokens(now)
    }
}
