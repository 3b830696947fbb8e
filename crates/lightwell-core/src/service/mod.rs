//! The [`Service`]: every operation a front end can ask for.

mod audit_ops;
mod auth;
mod ca;
mod cache;
mod directory;
mod directory_snapshot;
mod federation;
mod graph;
mod hosts;
mod join;
mod k8s;
mod oidc;
mod tenants;
mod token_review;
mod tokens;
mod workloads;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lightwell_ca::kek::Kek;
use lightwell_proto::ErrorCode;
use lightwell_store::{Store, StoreExt, Tx};

pub use self::audit_ops::SealReport;
pub use self::auth::{DEFAULT_ACCOUNT_THROTTLE, DEFAULT_LOGIN_THROTTLE, LoginScope, LoginSuccess, SessionCheck};
pub use self::ca::{
    CaInfo, CaRequestView, CaView, CertificateUse, CertificateView, CrlKind, DEFAULT_TRUST_CHANGE_MAX_BYTES,
    DEFAULT_TRUST_CHANGE_WINDOW, IssueRequest, MaintenanceReport, OcspAnswer, Requester, SignerPass, TrustChanges,
    TrustUpdate, parse_key_type, parse_reason, parse_ttl,
};
pub use self::directory::{Modification, NewHostPrincipal, NewUser, Principal, PrincipalPatch, PrincipalView};
pub use self::directory_snapshot::{CaObject, DirectorySnapshot, DirectoryVersion};
pub use self::federation::{FederationFetch, FederationView, NewFederation};
pub use self::join::{
    DEFAULT_ENROLMENT_THROTTLE, JoinRequest, JoinTokenInfo, Joined, MAX_JOIN_TOKEN_TTL_SECS, MAX_JOIN_TOKEN_USES,
    NewJoinToken, TrustState,
};
pub use self::k8s::{ClusterView, Component, ComponentRequest, NewCluster};
pub use self::oidc::{
    AccessToken, CLIENT_CREDENTIALS, ClientAuthMethod, ClientCredential, DEFAULT_ACCESS_TOKEN_TTL_SECS,
    DEFAULT_AUDIENCE, NewOidcClient, OidcClientSecret, OidcClientView, certificate_thumbprint, is_jwt,
};
pub use self::tenants::Tenant;
pub use self::token_review::{ReviewedUser, TokenReview};
pub use self::tokens::{DEFAULT_JWT_SVID_TTL_SECS, JwtSvid, MAX_JWT_SVID_TTL_SECS};
pub use self::workloads::{AssignedWorkload, DEFAULT_SVID_TTL_SECS, NewWorkload, WorkloadView};
use crate::audit::{AuditEvent, AuditLog};
pub use crate::audit::{ChainHead, CheckpointReport, CheckpointSink, Verification};
use crate::clock::Clock;
use crate::names::DomainName;
use crate::password::{HashGate, HashPermit};
use crate::throttle::{Throttle, ThrottleLimit};
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
    /// The only way to argon2id: a few permits (see `password`).
    hash_gate: HashGate,
    /// Failed logins by caller address (this replica's own count).
    login_sources: Throttle,
    /// Failed logins per account (tenant and user name), from all addresses.
    login_accounts: Throttle,
    /// Failed joins and re-enrolments per caller address.
    enrolment_sources: Throttle,
    /// One audit record per address and window once it is throttled.
    enrolment_notices: Throttle,
    /// Failed client authentications at the token endpoint, per client and address.
    client_failures: Throttle,
    /// Seals and unseals CA private keys (a private copy of the server's KEK).
    kek: Kek,
    /// Base of the plain-HTTP CRL and CA certificate URLs put into certificates.
    pki_base: String,
    /// Base of the HTTPS API's public URLs (the token issuer's).
    api_base: String,
    /// Unsealed CA keys, by CA id, with the sealed key and certificate they came from.
    issuers: cache::Cache<String, ca::CachedIssuer>,
    /// Client-certificate chains verified, by leaf DER (see `ca::mtls`).
    chains: cache::Cache<Vec<u8>, ca::VerifiedChain>,
    /// Unsealed OCSP responder keys and pre-signed OCSP responses.
    ocsp: ca::OcspState,
    /// Largest CRL (in entries) re-signed inside the revoking transaction.
    crl_sync_limit: u64,
    /// Trust revisions of changes kept per tenant (see `ca::trust`).
    trust_change_window: u64,
    /// Largest change answer, in recorded bytes (see `ca::trust`).
    trust_change_max_bytes: u64,
    /// Wakes the CRL signer after a transaction marked a CRL pending.
    crl_wake: tokio::sync::Notify,
    /// CRLs marked pending by this process (see `Service::blocking`).
    crl_marks: AtomicU64,
    /// Trust changes written by this process, and who waits for their commit.
    trust_changes_made: AtomicU64,
    trust_wake: tokio::sync::Notify,
    /// Wakes the server's federation job: an endpoint was registered or asked to be read now.
    federation_wake: tokio::sync::Notify,
    /// Receives each audit checkpoint run's heads, if configured.
    checkpoint_sink: Option<Arc<dyn CheckpointSink>>,
}

/// Everything a [`Service`] is configured with, complete before it is built
/// (it never changes afterwards). `ServiceConfig::default()` is what tests
/// and a server without settings get.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Base of the plain-HTTP CRL and CA certificate URLs put into
    /// certificates and CRLs (`--public-pki-url`; a trailing `/` is
    /// dropped). Certificates already issued keep their URLs.
    pub public_pki_url: String,
    /// Base of the public HTTPS URLs of the API (`--public-api-url`): the
    /// tenant's token issuer is `<base>/oidc/<tenant>`. A trailing `/` is dropped.
    pub public_api_url: String,
    /// Largest CRL (in entries) re-signed inside the revoking transaction
    /// (`--crl-sync-limit`); larger ones are re-signed by the CRL signer
    /// after the commit.
    pub crl_sync_limit: u64,
    /// Failed logins per caller address.
    pub login_throttle: ThrottleLimit,
    /// Failed logins per account, from all addresses together.
    pub account_throttle: ThrottleLimit,
    /// Failed joins and re-enrolments per caller address.
    pub enrolment_throttle: ThrottleLimit,
    /// Password hashes computed at once (at least 1); each holds 19 MiB while it runs.
    pub password_hashing_concurrency: usize,
    /// Receives each audit checkpoint run's heads (`--audit-checkpoint-file`).
    pub checkpoint_sink: Option<Arc<dyn CheckpointSink>>,
    /// Trust revisions of changes kept per tenant for agents to catch up
    /// from (`--trust-change-window`, at least 1); an agent further behind
    /// fetches the whole trust state.
    pub trust_change_window: u64,
    /// Largest answer of changes, in bytes of recorded changes
    /// (`--trust-change-max-bytes`): an agent whose changes since its
    /// revision weigh more fetches the whole trust state instead.
    pub trust_change_max_bytes: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            public_pki_url: "http://localhost:8080".into(),
            public_api_url: "https://localhost:8443".into(),
            crl_sync_limit: DEFAULT_CRL_SYNC_LIMIT,
            login_throttle: DEFAULT_LOGIN_THROTTLE,
            account_throttle: DEFAULT_ACCOUNT_THROTTLE,
            enrolment_throttle: DEFAULT_ENROLMENT_THROTTLE,
            password_hashing_concurrency: HashGate::default_concurrency(),
            checkpoint_sink: None,
            trust_change_window: DEFAULT_TRUST_CHANGE_WINDOW,
            trust_change_max_bytes: DEFAULT_TRUST_CHANGE_MAX_BYTES,
        }
    }
}

/// Default of `crl_sync_limit`. A CRL of a thousand entries signs in about
/// a millisecond (P-256), which a revocation may pay inside its transaction
/// to keep "the next CRL served lists it"; at a million it takes seconds,
/// which would hold every writer of the store, so larger CRLs are re-signed
/// by the signer after the commit.
pub const DEFAULT_CRL_SYNC_LIMIT: u64 = 1000;

impl Service {
    /// Builds the service over a store, configured once and for its whole
    /// life by `config`. The KEK keys the audit chain and head MACs.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        kek: &Kek,
        observer: Arc<dyn Observer>,
        config: ServiceConfig,
    ) -> Result<Self> {
        let ServiceConfig {
            public_pki_url,
            public_api_url,
            crl_sync_limit,
            login_throttle,
            account_throttle,
            enrolment_throttle,
            password_hashing_concurrency,
            checkpoint_sink,
            trust_change_window,
            trust_change_max_bytes,
        } = config;
        let audit = AuditLog::new(kek);
        let hash_gate = HashGate::new(password_hashing_concurrency, crate::password::DEFAULT_WAIT);
        let dummy_hash = hash_gate.try_enter()?.hash(&crate::password::generate()?)?;
        // The service keeps its own copy: CA keys are sealed and unsealed for its whole life.
        let kek = Kek::from_file_contents(&kek.to_file_contents()).map_err(Error::internal)?;
        let (issuers, chains) = (cache::Cache::new(1024), cache::Cache::new(16_384));
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                clock,
                audit,
                observer,
                dummy_hash,
                hash_gate,
                login_sources: Throttle::new(login_throttle),
                login_accounts: Throttle::new(account_throttle),
                enrolment_sources: Throttle::new(enrolment_throttle),
                enrolment_notices: Throttle::new(join::notice_limit(enrolment_throttle)),
                client_failures: Throttle::new(oidc::CLIENT_FAILURE_LIMIT),
                kek,
                pki_base: public_pki_url.trim_end_matches('/').to_string(),
                api_base: public_api_url.trim_end_matches('/').to_string(),
                issuers,
                chains,
                ocsp: ca::OcspState::default(),
                crl_sync_limit,
                trust_change_window: trust_change_window.max(1),
                trust_change_max_bytes,
                crl_wake: tokio::sync::Notify::new(),
                crl_marks: AtomicU64::new(0),
                trust_changes_made: AtomicU64::new(0),
                trust_wake: tokio::sync::Notify::new(),
                federation_wake: tokio::sync::Notify::new(),
                checkpoint_sink,
            }),
        })
    }

    /// The clock decisions are made with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Waits for a password-hashing permit (see [`HashGate::enter`]).
    async fn hash_permit(&self) -> Result<HashPermit> {
        let permit = self.inner.hash_gate.enter().await;
        if permit.is_err() {
            self.inner.observer.hashing_overloaded();
        }
        permit
    }

    /// Checks the store answers.
    pub async fn ready(&self) -> Result<()> {
        self.blocking(|inner| inner.store.ping().map_err(Error::from)).await
    }

    /// Name of the store backend.
    pub fn store_backend(&self) -> &'static str {
        self.inner.store.backend()
    }

    /// Runs blocking work (store transactions, password hashing) off the
    /// async runtime; wakes the CRL signer once that work has returned (its
    /// transactions committed) if it marked a CRL pending.
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Inner) -> Result<T> + Send + 'static) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // Work that marked a CRL pending wakes the signer once it has
            // returned, its transaction committed; woken earlier, the signer
            // could read before the commit and miss the mark. A mark made by
            // concurrent work may wake it early too: harmless, as its own
            // work wakes it again when it returns.
            let marks = inner.crl_marks.load(Ordering::SeqCst);
            let trust = inner.trust_changes_made.load(Ordering::SeqCst);
            let out = f(&inner);
            if inner.crl_marks.load(Ordering::SeqCst) != marks {
                inner.crl_wake.notify_one();
            }
            // The same for trust changes and the watch hub (`Service::trust_committed`).
            if inner.trust_changes_made.load(Ordering::SeqCst) != trust {
                inner.trust_wake.notify_one();
            }
            out
        })
        .await
        .map_err(Error::internal)?
    }
}

impl Inner {
    fn now(&self) -> i64 {
        self.clock.unix()
    }

    fn crl_sync_limit(&self) -> u64 {
        self.crl_sync_limit
    }

    fn trust_change_window(&self) -> u64 {
        self.trust_change_window
    }

    fn trust_change_max_bytes(&self) -> u64 {
        self.trust_change_max_bytes
    }

    /// A write transaction whose closure may return a refusal that must still
    /// commit (for example a failed login's counter and audit record).
    fn write_committing_refusal<T>(&self, mut f: impl FnMut(&mut dyn Tx) -> Result<Result<T>>) -> Result<T> {
        self.store.write(|tx| f(tx))?
    }

    fn audit(&self, tx: &mut dyn Tx, tenant: &Tenant, ev: AuditEvent) -> Result<()> {
        self.audit.append(tx, &tenant.id, self.now(), ev).map_err(Error::from)
    }

    /// Writes the audit record of a refused request in a transaction of its
    /// own that changes nothing else: no directory revision moves, so a
    /// stream of refusals costs LDAP no rebuild.
    fn audit_refusal(&self, domain: &str, ev: AuditEvent) -> Result<()> {
        self.store.write(|tx| {
            let t = tenant_by_domain(tx, domain)?;
            self.audit(tx, &t, ev.clone())
        })
    }
}

/// Finds a tenant by its domain, or `tenant_not_found`.
fn tenant_by_domain(tx: &mut dyn Tx, domain: &str) -> Result<Tenant> {
    let domain = DomainName::parse(domain)
        .map_err(|_| Error::new(ErrorCode::TenantNotFound, format!("no tenant {:?}", short(domain))))?;
    tx.tenant_by_domain(domain.as_str())?
        .map(|r| Tenant::from(&r))
        .ok_or_else(|| Error::new(ErrorCode::TenantNotFound, format!("no tenant {:?}", domain.as_str())))
}

/// At most 64 characters of caller input, for error messages.
fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod redaction_tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::authz::Actor;

    /// What the service hands out or takes in with a secret in it (a join
    /// token, a machine secret, a session token, an initial password) leaves
    /// the secret out of `Debug`.
    #[test]
    fn requests_and_results_holding_secrets_leave_them_out_of_debug() {
        let secret = || Zeroizing::new("SECRET-91c4".to_string());
        let join = JoinRequest { token: Some(secret()), hostname: "n1.corp.example".into(), ..Default::default() };
        let login = LoginSuccess {
            token: secret(),
            expires_at: 0,
            actor: Actor::Operator { id: crate::PrincipalId::stored("op") },
        };
        let user = NewUser { name: "alice".into(), password: Some(secret()), ..Default::default() };
        for shown in [format!("{join:?}"), format!("{login:?}"), format!("{user:?}")] {
            assert!(!shown.contains("SECRET-91c4"), "a secret in {shown}");
        }
        assert!(format!("{join:?}").contains("n1.corp.example"), "the rest is still shown");
    }
}
