//! Login with a password, bearer-token sessions, logout.
//!
//! A login passes three defences in this order:
//!
//! 1. the caller's address (`throttle::address_key`) may have at most
//!    [`DEFAULT_LOGIN_THROTTLE`] failures in the window, counted in this
//!    process before any database or argon2id work (`too_many_requests`);
//! 2. the password check needs a permit of the [`crate::password::HashGate`]
//!    (`overloaded` when none comes free in time);
//! 3. the account's lockout, stored with the principal (so shared by every
//!    replica): 5 failures within 180 s lock it for 300 s (tenant policy).
//!
//! The address limit is below the account's, so one address cannot lock an
//! account. A locked account, a wrong password and an unknown user get the
//! same `invalid_credentials` after the same argon2id work: nothing tells a
//! caller who exists or who is locked.

use std::net::IpAddr;

use crate::service::Tenant;
use base64::Engine as _;
use lightwell_proto::ErrorCode;
use lightwell_store::{PrincipalKind, PrincipalRecord, SessionRecord, StoreExt, TenantId, Tx};
use zeroize::Zeroizing;

use super::DirectoryVersion;
use super::graph::Graph;
use super::{Inner, Service, short, tenant_by_domain};
use crate::audit::AuditEvent;
use crate::authz::{Actor, OPERATOR, PrincipalActor};
use crate::password::HashPermit;
use crate::policy::TenantPolicy;
use crate::throttle::{ThrottleLimit, address_key};
use crate::{Error, PrincipalId, Result, lockout};

/// Failed logins per caller address: 3 within any 180 s, for at most 65,536
/// addresses. With the default lockout (5 within 180 s) one address can
/// never lock an account; two can.
pub const DEFAULT_LOGIN_THROTTLE: ThrottleLimit = ThrottleLimit { max_failures: 3, window_secs: 180, max_keys: 65_536 };

/// Failed logins one account (named by its tenant and user name, whether it
/// exists or not) may have in any 180 s, from all addresses together, before
/// further logins for it are answered `too_many_requests` without a
/// password check: the account locks at 5 (tenant policy), and guesses
/// spread over many addresses then stop costing the server 19 MiB each.
pub const DEFAULT_ACCOUNT_THROTTLE: ThrottleLimit =
    ThrottleLimit { max_failures: 10, window_secs: 180, max_keys: 65_536 };

/// Where a login happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginScope {
    /// The system scope: the operator.
    System,
    /// A tenant, by domain.
    Tenant(String),
}

/// A successful login. `Debug` leaves the token out.
pub struct LoginSuccess {
    /// The bearer token (shown to the client once; only its hash is stored).
    pub token: Zeroizing<String>,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Who logged in.
    pub actor: Actor,
}

impl std::fmt::Debug for LoginSuccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginSuccess")
            .field("expires_at", &self.expires_at)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

const TOKEN_PREFIX: &str = "lw_";

/// SHA-256 of a bearer token: the form stored and looked up.
fn token_hash(token: &str) -> Vec<u8> {
    lightwell_ca::fingerprint::sha256(token.as_bytes()).to_vec()
}

fn new_token() -> Result<Zeroizing<String>> {
    let raw = Zeroizing::new(lightwell_ca::random::bytes::<32>().map_err(Error::internal)?);
    Ok(Zeroizing::new(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_slice())
    )))
}

fn bad_credentials() -> Error {
    Error::new(ErrorCode::InvalidCredentials, "wrong user name or password")
}

/// The audit chain and policy a login is judged under.
struct Realm {
    tenant: Option<Tenant>,
    scope: TenantId,
    policy: TenantPolicy,
}

impl Realm {
    fn load(tx: &mut dyn Tx, scope: &LoginScope) -> Result<Self> {
        Ok(match scope {
            LoginScope::System => Self { tenant: None, scope: TenantId::system(), policy: TenantPolicy::default() },
            LoginScope::Tenant(domain) => {
                let t = tenant_by_domain(tx, domain)?;
                Self { scope: t.id.clone(), policy: t.policy.clone(), tenant: Some(t) }
            }
        })
    }

    fn user(&self, tx: &mut dyn Tx, name: &str) -> Result<Option<PrincipalRecord>> {
        let found = tx.principal(&self.scope, PrincipalKind::User, name)?;
        // In the system scope only the operator account exists.
        Ok(found.filter(|p| !self.scope.is_system() || p.name == OPERATOR))
    }
}

impl Service {
    /// Logs in with a user name and password from the caller's address
    /// `source`; returns a bearer token (see the module docs).
    ///
    /// Failures are audited and count toward the account's lockout and the
    /// address's limit. An unknown user, a wrong password and a locked
    /// account all get `invalid_credentials`; a disabled account is told
    /// so only with its right password. Refusals before any check —
    /// `too_many_requests`, `overloaded` — carry a retry delay and are not
    /// audited (they would let anyone fill the audit chain).
    pub async fn login(
        &self,
        scope: LoginScope,
        user: String,
        pw: Zeroizing<String>,
        source: IpAddr,
    ) -> Result<LoginSuccess> {
        let source = address_key(source);
        let sources = &self.inner.login_sources;
        if let Err(t) = sources.charge(&source, self.inner.now()) {
            self.inner.observer.login_throttled();
            let message = format!("too many failed logins from {source}; try again in {} s", t.retry_after_secs);
            return Err(Error::new(ErrorCode::TooManyRequests, message).with_retry_after(t.retry_after_secs));
        }
        // Per account too (known or not, so the answer tells nothing): many
        // addresses guessing one account stop costing password hashes.
        let account = match &scope {
            LoginScope::System => format!("system|{}", user.to_ascii_lowercase()),
            LoginScope::Tenant(t) => {
                format!("{}|{}", t.trim_end_matches('.').to_ascii_lowercase(), user.to_ascii_lowercase())
            }
        };
        let accounts = &self.inner.login_accounts;
        if let Err(t) = accounts.charge(&account, self.inner.now()) {
            sources.refund(&source);
            self.inner.observer.login_throttled();
            let message = format!("too many failed logins for this account; try again in {} s", t.retry_after_secs);
            return Err(Error::new(ErrorCode::TooManyRequests, message).with_retry_after(t.retry_after_secs));
        }
        let permit = match self.hash_permit().await {
            Ok(p) => p,
            Err(e) => {
                sources.refund(&source);
                accounts.refund(&account);
                return Err(e);
            }
        };
        let result = self.blocking(move |inner| inner.login(&scope, &user, &pw, permit)).await;
        // Only a decided failure counts; a cancelled login keeps its charge.
        if result.as_ref().is_ok() || result.as_ref().is_err_and(|e| !decided(e)) {
            sources.refund(&source);
            accounts.refund(&account);
        }
        result
    }

    /// Resolves a bearer token to the actor it authenticates.
    pub async fn authenticate(&self, token: Zeroizing<String>) -> Result<Actor> {
        self.blocking(move |inner| inner.check_session(&token).map(|c| c.actor)).await
    }

    /// Like [`Service::authenticate`], with what the answer depends on: the
    /// tenant's directory version, read in the same transaction, and the
    /// session's expiry. Every change that can end a tenant session before
    /// it expires (a password change or reset, disabling or deleting the
    /// principal, a change of its groups) bumps that version, so a front end
    /// may keep the answer while [`Service::directory_version`] is unchanged
    /// and the session has not expired.
    pub async fn check_session(&self, token: Zeroizing<String>) -> Result<SessionCheck> {
        self.blocking(move |inner| inner.check_session(&token)).await
    }

    /// Ends the session of a bearer token.
    pub async fn logout(&self, token: Zeroizing<String>) -> Result<()> {
        self.blocking(move |inner| {
            let hash = token_hash(&token);
            inner.store.write(|tx| {
                let Some(session) = tx.session(&hash)? else { return Ok(()) };
                tx.delete_session(&hash)?;
                let ev = AuditEvent::success(format!("principal:{}", session.principal_id), "logout", "session");
                inner.audit.append(tx, &session.tenant_id, inner.now(), ev).map_err(Error::from)
            })
        })
        .await
    }
}

/// Whether a failed login was judged (rather than not examined).
fn decided(e: &Error) -> bool {
    !e.is_undecided()
}

impl Inner {
    fn login(&self, scope: &LoginScope, user: &str, pw: &str, permit: HashPermit) -> Result<LoginSuccess> {
        // Read first and verify the password outside any transaction: argon2id
        // is deliberately slow and must not hold the database's write lock.
        let (realm, found) = self.store.read(|tx| {
            let realm = Realm::load(tx, scope)?;
            let user = realm.user(tx, user)?;
            Ok::<_, Error>((realm, user))
        })?;
        // The same argon2id work whether the user exists, is locked or not.
        let verified = match found.as_ref().and_then(|p| p.password_hash.as_deref()) {
            Some(h) => permit.verify(pw, h),
            None => {
                permit.verify(pw, &self.dummy_hash);
                false
            }
        };
        drop(permit);
        let now = self.now();
        let target = short(user);
        let result = self.write_committing_refusal(|tx| {
            let fail = |tx: &mut dyn Tx, why: &str, err: Error| -> Result<Result<LoginSuccess>> {
                self.audit.append(
                    tx,
                    &realm.scope,
                    now,
                    AuditEvent::failure(target.clone(), "login", target.clone()).with_detail(why),
                )?;
                Ok(Err(err))
            };
            let Some(seen) = &found else { return fail(tx, "unknown user", bad_credentials()) };
            // Re-read inside the write transaction: the password may have changed meanwhile.
            let Some(mut p) = tx.principal_by_id(&realm.scope, &seen.id)? else {
                return fail(tx, "unknown user", bad_credentials());
            };
            // Locked looks like wrong: only administrators see the lock.
            if lockout::is_locked(&p, now) {
                return fail(tx, "account locked", bad_credentials());
            }
            if !verified || p.credential_epoch != seen.credential_epoch {
                // Lockout counters are state, not an attribute change: updated_at stays.
                let newly_locked = lockout::record_failure(&mut p, &realm.policy.lockout, now);
                tx.update_principal(&p)?;
                if newly_locked {
                    self.observer.locked_out();
                    return fail(tx, "wrong password; account locked", bad_credentials());
                }
                return fail(tx, "wrong password", bad_credentials());
            }
            if !p.enabled {
                return fail(tx, "account disabled", Error::new(ErrorCode::AccountDisabled, "the account is disabled"));
            }
            if p.failed_logins != 0 || p.locked_until.is_some() {
                lockout::clear(&mut p);
                tx.update_principal(&p)?;
            }
            let token = new_token()?;
            let expires_at = now + realm.policy.session_ttl_secs;
            tx.insert_session(&SessionRecord {
                token_hash: token_hash(&token),
                tenant_id: realm.scope.clone(),
                principal_id: p.id.clone(),
                credential_epoch: p.credential_epoch,
                created_at: now,
                expires_at,
            })?;
            let actor = actor_for(tx, realm.tenant.as_ref(), &p)?;
            self.audit.append(
                tx,
                &realm.scope,
                now,
                AuditEvent::success(actor.audit_name(), "login", target.clone()),
            )?;
            Ok(Ok(LoginSuccess { token, expires_at, actor }))
        });
        if result.as_ref().is_err_and(decided) {
            self.observer.login_failed();
        }
        result
    }

    /// Checks the current password of a user changing their own. A wrong
    /// one counts toward the account's lockout exactly like a failed login
    /// (a stolen session must not guess without limit) and is audited; a
    /// locked account is refused without looking at the password.
    pub(super) fn check_current_password(
        &self,
        actor: &Actor,
        tenant: &str,
        target: &PrincipalRecord,
        policy: &TenantPolicy,
        old: Option<&str>,
        permit: &HashPermit,
    ) -> Result<()> {
        let now = self.now();
        let wrong = || Error::new(ErrorCode::InvalidCredentials, "the current password is wrong");
        let (why, err, guess) = if lockout::is_locked(target, now) {
            ("account locked", locked(), false)
        } else {
            match (old, target.password_hash.as_deref()) {
                (Some(old), Some(hash)) if permit.verify(old, hash) => return Ok(()),
                (Some(_), _) => ("wrong current password", wrong(), true),
                (None, _) => (
                    "no current password given",
                    Error::new(
                        ErrorCode::InvalidRequest,
                        "changing your own password needs the current one (old_password; ldappasswd -a OLD or -A)",
                    ),
                    false,
                ),
            }
        };
        self.observer.login_failed();
        self.write_committing_refusal(|tx| {
            let t = tenant_by_domain(tx, tenant)?;
            let mut detail = why.to_string();
            if guess && let Some(mut p) = tx.principal_by_id(&t.id, &target.id)? {
                // Lockout counters are state, not an attribute change: updated_at stays.
                if lockout::record_failure(&mut p, &policy.lockout, now) {
                    self.observer.locked_out();
                    detail.push_str("; account locked");
                }
                tx.update_principal(&p)?;
            }
            let ev = AuditEvent::failure(actor.audit_name(), "user.password_change", target.name.clone());
            self.audit.append(tx, &t.id, now, ev.with_detail(detail))?;
            Ok(Err(err.clone()))
        })
    }

    fn check_session(&self, token: &str) -> Result<SessionCheck> {
        let invalid = || Error::new(ErrorCode::InvalidToken, "the token is invalid or expired; log in again");
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(invalid());
        }
        let hash = token_hash(token);
        let now = self.now();
        self.store.read(|tx| {
            let session = tx.session(&hash)?.ok_or_else(invalid)?;
            if session.expires_at <= now {
                return Err(invalid());
            }
            let p = tx.principal_by_id(&session.tenant_id, &session.principal_id)?.ok_or_else(invalid)?;
            if !p.enabled || p.credential_epoch != session.credential_epoch {
                return Err(invalid());
            }
            let (tenant, version) = if session.tenant_id.is_system() {
                (None, None)
            } else {
                let t = tx.tenant(&session.tenant_id)?.map(|r| Tenant::from(&r)).ok_or_else(invalid)?;
                let version = DirectoryVersion { revision: tx.directory_revision(&t.id)?, tenant_id: t.id.clone() };
                (Some(t), Some(version))
            };
            let actor = actor_for(tx, tenant.as_ref(), &p)?;
            Ok(SessionCheck { actor, version, expires_at: session.expires_at })
        })
    }
}

/// A session found valid, and what that depends on ([`Service::check_session`]).
#[derive(Debug, Clone)]
pub struct SessionCheck {
    /// The caller.
    pub actor: Actor,
    /// The tenant's directory version when it was checked (`None` for the operator).
    pub version: Option<DirectoryVersion>,
    /// When the session expires (Unix seconds).
    pub expires_at: i64,
}

/// What a signed-in user changing their own password is told about a lock.
pub(super) fn locked() -> Error {
    Error::new(ErrorCode::AccountLocked, "the account is locked after too many failed logins; try again later")
}

/// The actor a principal acts as, with its groups resolved.
pub(super) fn actor_for(tx: &mut dyn Tx, tenant: Option<&Tenant>, p: &PrincipalRecord) -> Result<Actor> {
    match tenant {
        None => Ok(Actor::Operator { id: PrincipalId::stored(&p.id) }),
        Some(t) => {
            let graph = Graph::load_ancestry(tx, &t.id, &p.id)?;
            Ok(Actor::Principal(PrincipalActor {
                tenant_id: t.id.clone(),
                tenant: t.domain.clone(),
                id: PrincipalId::stored(&p.id),
                kind: p.kind,
                name: p.name.clone(),
                groups: graph.member_of(&p.id),
            }))
        }
    }
}

impl Service {
    /// Deletes sessions that have expired.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        self.blocking(|inner| {
            let now = inner.now();
            inner.store.write(|tx| tx.purge_sessions(now).map_err(Error::from))
        })
        .await
    }
}
