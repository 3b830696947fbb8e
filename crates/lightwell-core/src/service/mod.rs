//! The [`Service`]: every operation a front end can ask for.

mod audit_ops;
mod auth;
mod ca;
mod cache;
mod directory;
mod directory_snapshot;
mod graph;
mod hosts;
mod join;
mod k8s;
mod tenants;

use std::sync::Arc;

use lightwell_ca::kek::Kek;
use lightwell_proto::ErrorCode;
use lightwell_store::{Store, StoreExt, TenantRecord, Tx};

pub use self::auth::{LoginScope, LoginSuccess, SessionCheck};
pub use self::ca::{
    CaRequestView, CaView, CertificateView, IssueRequest, MaintenanceReport, Requester, parse_key_type, parse_reason,
    parse_ttl,
};
pub use self::directory::{Modification, NewHostPrincipal, NewUser, PrincipalPatch, PrincipalView};
pub use self::directory_snapshot::{CaObject, DirectorySnapshot, DirectoryVersion};
pub use self::join::{JoinRequest, Joined, MAX_JOIN_TOKEN_TTL_SECS, MAX_JOIN_TOKEN_USES, NewJoinToken, TrustState};
pub use self::k8s::{ClusterView, Component, ComponentRequest, NewCluster};
pub use crate::audit::Verification;
use crate::audit::{AuditEvent, AuditLog};
use crate::clock::Clock;
use crate::names::DomainName;
use crate::policy::TenantPolicy;
use crate::{Error, Observer, Result};

/// The service layer. Cheap to clone; all clones share state.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
    observer: Arc<dyn Observer>,
    /// A hash of a random password, verified against when a login names an
    /// unknown user so the response takes as long as for a known one.
    dummy_hash: String,
    /// Seals and unseals CA private keys (a private copy of the server's KEK).
    kek: Kek,
    /// Base of the plain-HTTP CRL and CA certificate URLs put into certificates.
    pki_base: std::sync::RwLock<String>,
    /// Unsealed CA keys, by CA id, with the sealed key and certificate they came from.
    issuers: cache::Cache<String, ca::CachedIssuer>,
    /// Client-certificate chains verified, by leaf DER (see `ca::mtls`).
    chains: cache::Cache<Vec<u8>, ca::VerifiedChain>,
}

impl Service {
    /// Builds the service over a store. The KEK keys the audit chain MACs.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, kek: &Kek, observer: Arc<dyn Observer>) -> Result<Self> {
        let audit = AuditLog::new(&kek.derive("lightwell audit chain v1"));
        let dummy_hash = crate::password::hash(&crate::password::generate()?)?;
        // The service keeps its own copy: CA keys are sealed and unsealed for its whole life.
        let kek = Kek::from_file_contents(&kek.to_file_contents()).map_err(Error::internal)?;
        let pki_base = std::sync::RwLock::new("http://localhost:8080".to_string());
        let (issuers, chains) = (cache::Cache::new(1024), cache::Cache::new(16_384));
        Ok(Self {
            inner: Arc::new(Inner { store, clock, audit, observer, dummy_hash, kek, pki_base, issuers, chains }),
        })
    }

    /// The clock decisions are made with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Checks the store answers.
    pub async fn ready(&self) -> Result<()> {
        self.blocking(|inner| inner.store.ping().map_err(Error::from)).await
    }

    /// Name of the store backend.
    pub fn store_backend(&self) -> &'static str {
        self.inner.store.backend()
    }

    /// Runs blocking work (store transactions, password hashing) off the async runtime.
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Inner) -> Result<T> + Send + 'static) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(Error::internal)?
    }
}

impl Inner {
    fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// A write transaction whose closure may return a refusal that must still
    /// commit (for example a failed login's counter and audit record).
    fn write_committing_refusal<T>(&self, mut f: impl FnMut(&mut dyn Tx) -> Result<Result<T>>) -> Result<T> {
        self.store.write(|tx| f(tx))?
    }

    fn audit(&self, tx: &mut dyn Tx, tenant: &TenantRecord, ev: AuditEvent) -> Result<()> {
        self.audit.append(tx, &tenant.id, self.now(), ev).map_err(Error::from)
    }
}

/// Finds a tenant by its domain, or `tenant_not_found`.
fn tenant_by_domain(tx: &mut dyn Tx, domain: &str) -> Result<TenantRecord> {
    let domain = DomainName::parse(domain)
        .map_err(|_| Error::new(ErrorCode::TenantNotFound, format!("no tenant {:?}", short(domain))))?;
    tx.tenant_by_domain(domain.as_str())?
        .ok_or_else(|| Error::new(ErrorCode::TenantNotFound, format!("no tenant {:?}", domain.as_str())))
}

fn policy_of(tenant: &TenantRecord) -> TenantPolicy {
    TenantPolicy::from_json(&tenant.policy)
}

/// At most 64 characters of caller input, for error messages.
fn short(s: &str) -> String {
    s.chars().take(64).collect()
}
