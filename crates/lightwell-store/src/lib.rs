//! Persistence for Lightwell.
//!
//! The service layer talks to a [`Store`] only through transactions: it hands
//! the store a closure that reads and writes through a [`Tx`], and the store
//! commits the closure's effects atomically or not at all. That is how every
//! mutating operation and its audit record land in the same transaction, on
//! every backend.
//!
//! Every method of [`Tx`] that touches tenant data takes the tenant id: there
//! is no query that can reach across tenants by accident.
#![forbid(unsafe_code)]
// Without a backend (the service layer builds the trait alone) the helpers the backends share are unused.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod bulk;
mod ca_records;
mod changes;
pub mod conformance;
mod dump;
mod join_records;
mod k8s_records;
#[cfg(feature = "postgres")]
pub mod postgres;
mod records;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod token_records;
mod workload_records;

pub use ca_records::*;
pub use changes::{ChangeCallback, ChangeSubscription};
pub use dump::{Dump, TableDump, Value, tables};
pub use join_records::*;
pub use k8s_records::*;
pub use records::*;
pub use token_records::*;
pub use workload_records::*;

/// The action of the system-chain record that checkpoints a tenant's audit
/// chain (its target is the tenant's id). Both backends index these records
/// with a partial index whose condition names this value.
pub const AUDIT_CHECKPOINT_ACTION: &str = "audit.checkpoint";

/// The schema version (migration 0010) that gave audit heads a MAC: heads
/// written before it are sealed once, by the process that applies it.
pub const AUDIT_HEAD_MAC_VERSION: i64 = 10;

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint refused the write (for example a duplicate name).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database cannot be reached or is not answering.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database holds data this version cannot read.
    #[error("corrupt or unreadable data: {0}")]
    Corrupt(String),
    /// Anything else the backend reported.
    #[error("database error: {0}")]
    Backend(String),
    /// The transaction closure failed; the transaction was rolled back.
    #[error("transaction aborted")]
    Aborted,
    /// The write would break an invariant the store keeps (a bulk insert
    /// with a row of another tenant, or naming another tenant's CA).
    #[error("refused: {0}")]
    Refused(String),
}

/// Whether a transaction only reads or may also write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// Reads only; backends may run these concurrently.
    Read,
    /// Reads and writes, serialized with other writers.
    Write,
}

/// What an update changes in a principal's claimed names: the names it
/// drops and the names it adds. Only added names are claimed, so a principal
/// whose name another claimed first (a duplicate from before migration
/// 0009) can still be updated as long as it takes no new name.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn claim_changes(
    before: Option<&PrincipalRecord>,
    after: &PrincipalRecord,
) -> (std::collections::BTreeSet<String>, std::collections::BTreeSet<String>) {
    let old = before.map(PrincipalRecord::claimed_names).unwrap_or_default();
    let new = after.claimed_names();
    (old.difference(&new).cloned().collect(), new.difference(&old).cloned().collect())
}

/// The `Conflict` of a name another principal claims.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("the name {name:?} is registered to another principal"))
}

/// A persistent store. Object safe so the server can hold `Arc<dyn Store>`.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Runs `f` inside one transaction. If `f` returns an error the transaction
    /// is rolled back; otherwise it is committed durably before this returns.
    fn transact_dyn(
        &self,
        mode: TxMode,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Checks the database answers (for `/readyz`).
    fn ping(&self) -> Result<(), StoreError>;

    /// The schema version the database had before this process opened it
    /// and applied its migrations (equal to the current version when there
    /// was nothing to apply). Lets one-time upgrade steps that need more
    /// than SQL (the KEK) run exactly once: in the process that applied the
    /// migration that calls for them.
    fn migrated_from(&self) -> i64 {
        i64::MAX
    }

    /// Short name of the backend (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    /// Reads every table in one read transaction, for moving an install to
    /// another backend (`lightwelld migrate`).
    fn export(&self) -> Result<Dump, StoreError>;

    /// Loads a dump in one write transaction: all of it or nothing. Refuses
    /// (`Conflict`) a store that already holds any row, and a dump of another
    /// schema version (`Corrupt`).
    fn import(&self, dump: &Dump) -> Result<(), StoreError>;

    /// Tells `on_change` as soon as any process sharing this database commits
    /// a trust change (a bumped trust revision), with the tenant's id, or
    /// `None` when changes may have been missed (the listener reconnected).
    /// Backends without a notification channel answer `None` and callers
    /// poll [`Tx::trust_revisions`] instead; the default is `None`.
    fn subscribe_changes(&self, on_change: ChangeCallback) -> Option<ChangeSubscription> {
        drop(on_change);
        None
    }
}

/// Typed transactions over any [`Store`].
pub trait StoreExt: Store {
    /// Runs `f` in a transaction and returns its value; any error from `f`
    /// rolls the transaction back and is returned unchanged.
    fn transact<T, E>(&self, mode: TxMode, mut f: impl FnMut(&mut dyn Tx) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut output: Option<Result<T, E>> = None;
        let result = self.transact_dyn(mode, &mut |tx| match f(tx) {
            Ok(v) => {
                output = Some(Ok(v));
                Ok(())
            }
            Err(e) => {
                output = Some(Err(e));
                Err(StoreError::Aborted)
            }
        });
        match (result, output) {
            (Ok(()), Some(out)) => out,
            (Err(StoreError::Aborted), Some(Err(e))) => Err(e),
            // The commit itself failed after `f` succeeded: nothing was applied.
            (Err(e), _) => Err(E::from(e)),
            (Ok(()), None) => Err(E::from(StoreError::Backend("transaction produced no result".into()))),
        }
    }

    /// A read-only transaction.
    fn read<T, E>(&self, f: impl FnMut(&mut dyn Tx) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.transact(TxMode::Read, f)
    }

    /// A read-write transaction.
    fn write<T, E>(&self, f: impl FnMut(&mut dyn Tx) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.transact(TxMode::Write, f)
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// The operations available inside a transaction.
///
/// Tenant data is always addressed with its [`TenantId`]; the system scope
/// (the operator and the system audit chain) uses [`TenantId::system`].
pub trait Tx {
    // --- tenants ---
    /// Inserts a tenant; `Conflict` if the domain exists.
    fn insert_tenant(&mut self, tenant: &TenantRecord) -> Result<(), StoreError>;
    /// Replaces a tenant's policy JSON; false if there is no such tenant.
    fn update_tenant_policy(&mut self, id: &TenantId, policy: &str) -> Result<bool, StoreError>;
    /// Finds a tenant by its domain.
    fn tenant_by_domain(&mut self, domain: &str) -> Result<Option<TenantRecord>, StoreError>;
    /// Finds a tenant by id.
    fn tenant(&mut self, id: &TenantId) -> Result<Option<TenantRecord>, StoreError>;
    /// All tenants, ordered by domain.
    fn list_tenants(&mut self) -> Result<Vec<TenantRecord>, StoreError>;
    /// Deletes a tenant and every row that belongs to it.
    fn delete_tenant(&mut self, id: &TenantId) -> Result<bool, StoreError>;

    // --- principals ---
    /// Inserts a principal; `Conflict` if (tenant, kind, name) exists in any
    /// letter case, or another principal claims one of its
    /// [`PrincipalRecord::claimed_names`].
    fn insert_principal(&mut self, p: &PrincipalRecord) -> Result<(), StoreError>;
    /// Inserts many principals of `tenant` (seeding a big directory), all
    /// or nothing: `Refused` if the tenant does not exist or a row is
    /// another tenant's, `Conflict` as [`Tx::insert_principal`] (a taken
    /// name, claimed names included, also between rows of the batch).
    /// Bumps the directory revision once. Faster than one
    /// [`Tx::insert_principal`] a row on PostgreSQL (one statement a few
    /// thousand rows); call it with batches of thousands, not millions.
    fn insert_principals(&mut self, tenant: &TenantId, principals: &[PrincipalRecord]) -> Result<(), StoreError>;
    /// Finds a principal by kind and name (names compare case-insensitively).
    fn principal(
        &mut self,
        tenant: &TenantId,
        kind: PrincipalKind,
        name: &str,
    ) -> Result<Option<PrincipalRecord>, StoreError>;
    /// Finds a principal by id.
    fn principal_by_id(&mut self, tenant: &TenantId, id: &str) -> Result<Option<PrincipalRecord>, StoreError>;
    /// Principals of a tenant, optionally of one kind, ordered by kind and name.
    fn list_principals(
        &mut self,
        tenant: &TenantId,
        kind: Option<PrincipalKind>,
    ) -> Result<Vec<PrincipalRecord>, StoreError>;
    /// Replaces the mutable fields of a principal (matched by tenant and id)
    /// and its claimed names; `Conflict` if another principal claims one.
    fn update_principal(&mut self, p: &PrincipalRecord) -> Result<(), StoreError>;
    /// Deletes a principal, its memberships (both ways), its sessions and its claimed names.
    fn delete_principal(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError>;

    /// The id of the principal that claims `name` in the tenant (its own
    /// name, or a DNS name registered to it; any letter case), if one does.
    fn name_owner(&mut self, tenant: &TenantId, name: &str) -> Result<Option<String>, StoreError>;

    // --- group membership ---
    /// Adds `member` to `group`; `Conflict` if already a member.
    fn add_member(&mut self, tenant: &TenantId, group_id: &str, member_id: &str) -> Result<(), StoreError>;
    /// Removes `member` from `group`; false if it was not a member.
    fn remove_member(&mut self, tenant: &TenantId, group_id: &str, member_id: &str) -> Result<bool, StoreError>;
    /// Every (group id, member id) edge of a tenant.
    fn memberships(&mut self, tenant: &TenantId) -> Result<Vec<Membership>, StoreError>;
    /// The edges of a tenant whose member is `member_id` (its direct
    /// groups), ordered by group id: resolving one principal's groups costs
    /// its ancestry, not the size of the tenant.
    fn memberships_of(&mut self, tenant: &TenantId, member_id: &str) -> Result<Vec<Membership>, StoreError>;

    // --- sessions (bearer tokens) ---
    /// Stores a session (only the token's hash).
    fn insert_session(&mut self, s: &SessionRecord) -> Result<(), StoreError>;
    /// Finds a session by the hash of its token.
    fn session(&mut self, token_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError>;
    /// Deletes one session.
    fn delete_session(&mut self, token_hash: &[u8]) -> Result<bool, StoreError>;
    /// Deletes every session of a principal; returns how many.
    fn delete_sessions_of(&mut self, tenant: &TenantId, principal_id: &str) -> Result<u64, StoreError>;
    /// Deletes sessions that expired before `now`.
    fn purge_sessions(&mut self, now: i64) -> Result<u64, StoreError>;

    // --- audit ---
    /// The last record of an audit chain (`None` for an empty chain).
    fn audit_head(&mut self, scope: &TenantId) -> Result<Option<AuditHead>, StoreError>;
    /// The heads of every audit chain (the system chain's scope is empty), by scope.
    fn audit_heads(&mut self) -> Result<Vec<(TenantId, AuditHead)>, StoreError>;
    /// Appends a record and makes it its chain's head, sealed with
    /// `head_mac`; `Conflict` if its sequence number is taken.
    fn insert_audit(&mut self, rec: &AuditRecord, head_mac: &str) -> Result<(), StoreError>;
    /// Sets the MAC of a chain's head if the head is still at `seq`; whether it was.
    fn seal_audit_head(&mut self, scope: &TenantId, seq: i64, mac: &str) -> Result<bool, StoreError>;
    /// The newest record of the system chain whose action is
    /// [`AUDIT_CHECKPOINT_ACTION`] and whose target is `tenant`'s id.
    fn last_audit_checkpoint(&mut self, tenant: &TenantId) -> Result<Option<AuditRecord>, StoreError>;
    /// Records of a chain with `seq > after`, in order, at most `limit`.
    fn list_audit(&mut self, scope: &TenantId, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;

    // --- certificate authority ---
    /// Inserts a CA; `Conflict` if its name exists in the tenant (any letter case).
    fn insert_ca(&mut self, ca: &CaRecord) -> Result<(), StoreError>;
    /// Finds a CA by id.
    fn ca(&mut self, tenant: &TenantId, id: &str) -> Result<Option<CaRecord>, StoreError>;
    /// CAs of a tenant, oldest first.
    fn list_cas(&mut self, tenant: &TenantId) -> Result<Vec<CaRecord>, StoreError>;
    /// Replaces the mutable fields of a CA (status, default flag, CRL number, revocation).
    fn update_ca(&mut self, ca: &CaRecord) -> Result<(), StoreError>;
    /// Records an issued certificate; `Conflict` if its serial was ever used.
    fn insert_certificate(&mut self, cert: &CertificateRecord) -> Result<(), StoreError>;
    /// Records many certificates of `tenant` (seeding a big database), all
    /// or nothing: `Refused` if the tenant does not exist, a row is another
    /// tenant's, or names a CA or a principal (of that kind) the tenant does
    /// not have; `Conflict` if a serial was ever used (also twice in the
    /// batch). Bumps the directory revision once and marks the CRL of each
    /// CA with revoked rows pending (as a revocation of a large CRL does:
    /// the CRL signer re-signs it and bumps the trust revision).
    fn insert_certificates(&mut self, tenant: &TenantId, certs: &[CertificateRecord]) -> Result<(), StoreError>;
    /// Finds a certificate by serial (lower-case hex).
    fn certificate(&mut self, tenant: &TenantId, serial: &str) -> Result<Option<CertificateRecord>, StoreError>;
    /// Certificates of a tenant matching `filter`, oldest first.
    fn list_certificates(
        &mut self,
        tenant: &TenantId,
        filter: &CertificateFilter,
    ) -> Result<Vec<CertificateRecord>, StoreError>;
    /// Marks a certificate revoked unless it already is; returns whether it changed.
    fn revoke_certificate(
        &mut self,
        tenant: &TenantId,
        serial: &str,
        at: i64,
        reason: &str,
    ) -> Result<bool, StoreError>;
    /// The revoked certificates of a CA that expire at or after `not_after_from`
    /// (what its CRL lists), by serial; only the columns a CRL entry needs.
    fn revoked_entries(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        not_after_from: i64,
    ) -> Result<Vec<RevokedEntry>, StoreError>;
    /// Stores a CA's latest CRL, replacing the one before.
    fn put_crl(&mut self, crl: &CrlRecord) -> Result<(), StoreError>;
    /// The latest CRL of a CA.
    fn crl(&mut self, tenant: &TenantId, ca_id: &str) -> Result<Option<CrlRecord>, StoreError>;
    /// Stores a CA's latest delta CRL, replacing the one before.
    fn put_delta_crl(&mut self, delta: &DeltaCrlRecord) -> Result<(), StoreError>;
    /// The latest delta CRL of a CA.
    fn delta_crl(&mut self, tenant: &TenantId, ca_id: &str) -> Result<Option<DeltaCrlRecord>, StoreError>;
    /// Whether the CA's CRL would list more than `limit` entries (revoked
    /// certificates expiring at or after `not_after_from`); reads at most
    /// `limit + 1` entries of the index [`Tx::revoked_entries`] reads.
    fn revoked_entries_exceed(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        not_after_from: i64,
        limit: u64,
    ) -> Result<bool, StoreError>;

    // --- OCSP responders ---
    /// Stores a CA's delegated OCSP responder, replacing the one before
    /// (only within the same tenant).
    fn put_ocsp_responder(&mut self, responder: &OcspResponderRecord) -> Result<(), StoreError>;
    /// The current OCSP responder of a CA.
    fn ocsp_responder(&mut self, tenant: &TenantId, ca_id: &str) -> Result<Option<OcspResponderRecord>, StoreError>;

    // --- CRLs waiting to be re-signed ---
    /// Marks a CA's stored CRL as missing revocations: creates the mark
    /// (generation 1, marked at `at`) or increments the generation of the
    /// existing one. Returns the mark's generation.
    fn mark_crl_pending(&mut self, tenant: &TenantId, ca_id: &str, at: i64) -> Result<i64, StoreError>;
    /// The marks of a tenant, by CA id.
    fn pending_crls(&mut self, tenant: &TenantId) -> Result<Vec<CrlPending>, StoreError>;
    /// Removes a CA's mark if its generation is still `generation` (any
    /// generation with `None`); returns whether a mark was removed.
    fn clear_crl_pending(
        &mut self,
        tenant: &TenantId,
        ca_id: &str,
        generation: Option<i64>,
    ) -> Result<bool, StoreError>;
    /// Tenants with at least one mark, for the signer's scan.
    fn tenants_with_pending_crls(&mut self) -> Result<Vec<TenantId>, StoreError>;

    // --- domain join ---
    /// Stores a join token; `Conflict` if its hash exists.
    fn insert_join_token(&mut self, token: &JoinTokenRecord) -> Result<(), StoreError>;
    /// Finds a join token of a tenant by the hash of its secret.
    fn join_token_by_hash(&mut self, tenant: &TenantId, hash: &[u8]) -> Result<Option<JoinTokenRecord>, StoreError>;
    /// Finds a join token by id.
    fn join_token(&mut self, tenant: &TenantId, id: &str) -> Result<Option<JoinTokenRecord>, StoreError>;
    /// Join tokens of a tenant, newest first.
    fn list_join_tokens(&mut self, tenant: &TenantId) -> Result<Vec<JoinTokenRecord>, StoreError>;
    /// Updates the uses left and the revoked flag of a join token.
    fn update_join_token(&mut self, token: &JoinTokenRecord) -> Result<(), StoreError>;

    // --- trust revision ---
    /// The tenant's trust revision (0 before the first change).
    fn trust_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError>;
    /// Increments the tenant's trust revision and returns the new value.
    fn bump_trust_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError>;
    /// Every tenant's trust revision.
    fn trust_revisions(&mut self) -> Result<Vec<(TenantId, i64)>, StoreError>;
    /// Records what changed at a trust revision (an opaque body the service
    /// layer encodes); `Conflict` if that revision has a record.
    fn insert_trust_change(&mut self, tenant: &TenantId, revision: i64, body: &[u8]) -> Result<(), StoreError>;
    /// The recorded changes after `since`, oldest first, as (revision, body).
    fn trust_changes_since(&mut self, tenant: &TenantId, since: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError>;
    /// How many changes are recorded after `since` and their bodies' total
    /// size in bytes, without reading the bodies out.
    fn trust_changes_size(&mut self, tenant: &TenantId, since: i64) -> Result<(i64, i64), StoreError>;
    /// Forgets the tenant's changes at or before `revision`.
    fn prune_trust_changes(&mut self, tenant: &TenantId, revision: i64) -> Result<(), StoreError>;

    // --- directory revision ---
    /// The tenant's directory revision (0 before the first change): readers
    /// that cache a tenant's directory compare it to know they are current.
    fn directory_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError>;
    /// Increments the tenant's directory revision and returns the new value;
    /// the service layer calls it in every transaction that changes what the
    /// directory shows.
    fn bump_directory_revision(&mut self, tenant: &TenantId) -> Result<i64, StoreError>;
    /// Stores an intermediate waiting for its signed certificate; `Conflict` if its name is taken (any letter case).
    fn insert_ca_request(&mut self, req: &CaRequestRecord) -> Result<(), StoreError>;
    /// Finds a waiting intermediate by name (any letter case).
    fn ca_request(&mut self, tenant: &TenantId, name: &str) -> Result<Option<CaRequestRecord>, StoreError>;
    /// Removes a waiting intermediate (installed or abandoned); returns whether it existed.
    fn delete_ca_request(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError>;

    // --- Kubernetes ---
    /// Stores a cluster; `Conflict` if its name exists in the tenant (any letter case).
    fn insert_k8s_cluster(&mut self, cluster: &K8sClusterRecord) -> Result<(), StoreError>;
    /// Finds a cluster by name (any letter case).
    fn k8s_cluster(&mut self, tenant: &TenantId, name: &str) -> Result<Option<K8sClusterRecord>, StoreError>;
    /// Clusters of a tenant, by name.
    fn list_k8s_clusters(&mut self, tenant: &TenantId) -> Result<Vec<K8sClusterRecord>, StoreError>;
    /// Replaces a cluster's spec (matched by tenant and id).
    fn update_k8s_cluster(&mut self, cluster: &K8sClusterRecord) -> Result<(), StoreError>;
    /// Deletes a cluster; returns whether it existed.
    fn delete_k8s_cluster(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError>;

    // --- Workload identity ---
    /// Stores a workload entry; `Conflict` if its name exists in the tenant (any letter case).
    fn insert_workload_entry(&mut self, entry: &WorkloadEntryRecord) -> Result<(), StoreError>;
    /// Finds a workload entry by name (any letter case).
    fn workload_entry(&mut self, tenant: &TenantId, name: &str) -> Result<Option<WorkloadEntryRecord>, StoreError>;
    /// Workload entries of a tenant, by name.
    fn list_workload_entries(&mut self, tenant: &TenantId) -> Result<Vec<WorkloadEntryRecord>, StoreError>;
    /// Deletes a workload entry; returns whether it existed.
    fn delete_workload_entry(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError>;
    /// Deletes the workload entries of a service (part of deleting it); returns how many.
    fn delete_service_workload_entries(&mut self, tenant: &TenantId, service_id: &str) -> Result<usize, StoreError>;

    // --- Token service ---
    /// Stores a token key; `Conflict` if its id exists.
    fn insert_token_key(&mut self, key: &TokenKeyRecord) -> Result<(), StoreError>;
    /// A tenant's token keys, by activation time.
    fn list_token_keys(&mut self, tenant: &TenantId) -> Result<Vec<TokenKeyRecord>, StoreError>;
    /// Deletes a tenant's keys published no longer at `now`; returns how many.
    fn prune_token_keys(&mut self, tenant: &TenantId, now: i64) -> Result<usize, StoreError>;

    // --- Federation ---
    /// Stores a foreign trust domain; `Conflict` if the tenant has it.
    fn insert_federation(&mut self, f: &FederationRecord) -> Result<(), StoreError>;
    /// Replaces a stored foreign trust domain; returns whether it existed.
    fn update_federation(&mut self, f: &FederationRecord) -> Result<bool, StoreError>;
    /// One foreign trust domain of a tenant.
    fn federation(&mut self, tenant: &TenantId, trust_domain: &str) -> Result<Option<FederationRecord>, StoreError>;
    /// A tenant's foreign trust domains, by name.
    fn list_federations(&mut self, tenant: &TenantId) -> Result<Vec<FederationRecord>, StoreError>;
    /// Deletes a foreign trust domain; returns whether it existed.
    fn delete_federation(&mut self, tenant: &TenantId, trust_domain: &str) -> Result<bool, StoreError>;
    /// Foreign trust domains of every tenant read from an endpoint and due at
    /// `now`, soonest first, at most `limit`.
    fn due_federations(&mut self, now: i64, limit: usize) -> Result<Vec<FederationRecord>, StoreError>;

    // --- OpenID clients ---
    /// Stores a client; `Conflict` if the tenant has one of that name (any case).
    fn insert_oidc_client(&mut self, c: &OidcClientRecord) -> Result<(), StoreError>;
    /// Replaces a client's secret hash, spec and update time; returns whether it existed.
    fn update_oidc_client(&mut self, c: &OidcClientRecord) -> Result<bool, StoreError>;
    /// A client by `client_id`.
    fn oidc_client(&mut self, tenant: &TenantId, id: &str) -> Result<Option<OidcClientRecord>, StoreError>;
    /// A client by name (any case).
    fn oidc_client_by_name(&mut self, tenant: &TenantId, name: &str) -> Result<Option<OidcClientRecord>, StoreError>;
    /// A tenant's clients, by name.
    fn list_oidc_clients(&mut self, tenant: &TenantId) -> Result<Vec<OidcClientRecord>, StoreError>;
    /// Deletes a client; returns whether it existed.
    fn delete_oidc_client(&mut self, tenant: &TenantId, id: &str) -> Result<bool, StoreError>;
    /// Deletes the clients acting as a principal (the principal is being deleted); returns how many.
    fn delete_principal_oidc_clients(&mut self, tenant: &TenantId, principal_id: &str) -> Result<usize, StoreError>;
    /// Records an access token's `jti` as revoked until `expires_at`; returns whether it was new.
    fn revoke_token(&mut self, tenant: &TenantId, jti: &str, expires_at: i64, now: i64) -> Result<bool, StoreError>;
    /// Whether a `jti` is revoked.
    fn token_revoked(&mut self, tenant: &TenantId, jti: &str) -> Result<bool, StoreError>;
    /// Forgets revocations of tokens expired at `now` (every tenant); returns how many.
    fn prune_revoked_tokens(&mut self, now: i64) -> Result<usize, StoreError>;
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    /// Every row that holds a secret, or what stands in for one (a password
    /// hash, a sealed key, a token's hash), leaves it out of `Debug`, so no
    /// log line or panic message carries it.
    #[test]
    fn rows_holding_secrets_leave_them_out_of_debug() {
        let secret = "SECRET-6a1f";
        let bytes = secret.as_bytes().to_vec();
        let tenant = TenantId::new("t");
        let principal = PrincipalRecord {
            id: "p".into(),
            tenant_id: tenant.clone(),
            kind: PrincipalKind::User,
            name: "alice".into(),
            display_name: None,
            email: None,
            hostnames: vec![],
            ips: vec![],
            enabled: true,
            builtin: false,
            password_hash: Some(secret.into()),
            credential_epoch: 0,
            failed_logins: 0,
            failure_window_start: None,
            locked_until: None,
            created_at: 0,
            updated_at: 0,
        };
        let ca = CaRecord {
            id: "c".into(),
            tenant_id: tenant.clone(),
            name: "issuing".into(),
            parent_id: None,
            role: CaRole::Root,
            cert_der: vec![],
            sealed_key: bytes.clone(),
            status: CaStatus::Active,
            is_default: true,
            next_crl_number: 1,
            revoked_at: None,
            revocation_reason: None,
            created_at: 0,
        };
        let request = CaRequestRecord {
            id: "r".into(),
            tenant_id: tenant.clone(),
            name: "ext".into(),
            csr_der: vec![],
            sealed_key: bytes.clone(),
            created_at: 0,
        };
        let session = SessionRecord {
            token_hash: bytes.clone(),
            tenant_id: tenant.clone(),
            principal_id: "p".into(),
            credential_epoch: 0,
            created_at: 0,
            expires_at: 0,
        };
        let token = JoinTokenRecord {
            id: "j".into(),
            tenant_id: tenant,
            token_hash: bytes.clone(),
            hostname: None,
            ips: vec![],
            uses_left: 1,
            expires_at: 0,
            revoked: false,
            allow_rejoin: false,
            created_by: "user:admin".into(),
            created_at: 0,
        };
        let token_key = TokenKeyRecord {
            id: "k".into(),
            tenant_id: TenantId::new("t"),
            algorithm: "ES256".into(),
            public_jwk: "{}".into(),
            sealed_key: bytes.clone(),
            created_at: 0,
            activates_at: 0,
            retires_at: 0,
            expires_at: 0,
        };
        let as_bytes = format!("{bytes:?}");
        let inner = &as_bytes[1..as_bytes.len() - 1];
        for shown in [
            format!("{principal:?}"),
            format!("{ca:?}"),
            format!("{request:?}"),
            format!("{session:?}"),
            format!("{token:?}"),
            format!("{token_key:?}"),
        ] {
            assert!(!shown.contains(secret) && !shown.contains(inner), "a secret in {shown}");
            assert!(shown.ends_with(".. }"), "redacted rows say they leave fields out: {shown}");
        }
    }
}
