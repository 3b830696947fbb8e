//! Domain join: join tokens, the join itself (machine account + machine
//! certificate + trust state, all in one transaction), re-enrolment with the
//! machine secret, and the trust state agents keep in sync.

use std::net::IpAddr;

use crate::service::Tenant;
use base64::Engine as _;
use lightwell_ca::csr::CertificateRequest;
use lightwell_proto::ErrorCode;
use lightwell_store::{CaStatus, JoinTokenRecord, PrincipalKind, PrincipalRecord, StoreExt, TenantId, Tx};
use zeroize::Zeroizing;

use super::ca::{CertificateView, IssueRequest, bundle_roots};
use super::directory::{Principal, check_machine_name, ensure_names_free};
use super::tenants::new_principal;
use super::{Inner, Service, short, tenant_by_domain};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, DOMAIN_CLIENTS, Permission, PrincipalActor};
use crate::names::{Hostname, parse_ip};
use crate::password::HashGate;
use crate::throttle::{ThrottleLimit, address_key};
use crate::{Error, Result};

/// Refused joins and re-enrolments an address may have in any minute
/// before it is answered `too_many_requests` unexamined (per replica).
pub const DEFAULT_ENROLMENT_THROTTLE: ThrottleLimit =
    ThrottleLimit { max_failures: 10, window_secs: 60, max_keys: 65_536 };

/// The limit of the throttle that lets one audit record per address and
/// window through once `limit` throttles it.
pub(super) fn notice_limit(limit: ThrottleLimit) -> ThrottleLimit {
    ThrottleLimit { max_failures: 1, ..limit }
}

/// Longest join-token lifetime: 30 days.
pub const MAX_JOIN_TOKEN_TTL_SECS: i64 = 30 * 86_400;
/// Most joins one token allows.
pub const MAX_JOIN_TOKEN_USES: i64 = 10_000;

const JOIN_TOKEN_PREFIX: &str = "lwj_";
const MACHINE_SECRET_PREFIX: &str = "lwm_";

/// A join token to create.
#[derive(Debug, Clone)]
pub struct NewJoinToken {
    /// Lifetime in seconds (60 s to 30 days).
    pub ttl_secs: i64,
    /// Joins allowed (1 to 10,000).
    pub uses: i64,
    /// Restrict the token to this host name.
    pub hostname: Option<String>,
    /// The IP addresses a host joining with it may have in its certificate.
    pub ips: Vec<String>,
    /// Allow re-joining a host name that already has a machine account.
    pub allow_rejoin: bool,
}

/// A host asking to join. `Debug` leaves the token out.
#[derive(Default)]
pub struct JoinRequest {
    /// The join token (absent when an administrator joins with a bearer token).
    pub token: Option<Zeroizing<String>>,
    /// The machine's fully qualified host name.
    pub hostname: String,
    /// Its IP addresses.
    pub ips: Vec<String>,
    /// PKCS#10 CSR made with the key generated on the host.
    pub csr: Vec<u8>,
}

/// The roots and CRLs a tenant's peers should use, with the revision they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustState {
    /// Grows with every change of the bundle or a CRL.
    pub revision: i64,
    /// Root certificates (DER): the trust bundle.
    pub roots: Vec<Vec<u8>>,
    /// Every CA's latest CRL: (CA id, DER).
    pub crls: Vec<(String, Vec<u8>)>,
    /// Every issuing CA's latest delta CRL: (CA id, DER).
    pub delta_crls: Vec<(String, Vec<u8>)>,
}

/// What a successful join returns. `Debug` leaves the machine secret out.
pub struct Joined {
    /// The machine account.
    pub machine: Principal,
    /// IP addresses the host asked for that neither its join token nor an
    /// administrator approved: left out of its certificate (an administrator
    /// adds them with `lightwell machine update HOST --ip IP`).
    pub unapproved_ips: Vec<String>,
    /// Its certificate and chain.
    pub certificate: CertificateView,
    /// The machine secret (shown once; only its hash is stored).
    pub machine_secret: Zeroizing<String>,
    /// The trust state at the time of the join.
    pub trust: TrustState,
}

impl std::fmt::Debug for JoinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinRequest")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("hostname", &self.hostname)
            .field("ips", &self.ips)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joined")
            .field("machine", &self.machine)
            .field("unapproved_ips", &self.unapproved_ips)
            .field("certificate", &self.certificate)
            .field("trust_revision", &self.trust.revision)
            .finish_non_exhaustive()
    }
}

/// A new secret: `prefix` and 256 random bits, base64url.
pub(super) fn new_secret(prefix: &str) -> Result<Zeroizing<String>> {
    let raw = Zeroizing::new(lightwell_ca::random::bytes::<32>().map_err(Error::internal)?);
    Ok(Zeroizing::new(format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_slice()))))
}

fn hash(token: &str) -> Vec<u8> {
    lightwell_ca::fingerprint::sha256(token.as_bytes()).to_vec()
}

/// Marks a machine secret's stored form: SHA-256, hex.
const SECRET_SHA256: &str = "$lw-sha256$";

/// The stored form of a secret of 256 random bits ([`new_secret`]: machine
/// secrets, OpenID client secrets): SHA-256, hex, marked. Nothing to guess,
/// so a fast hash is as safe as a slow one, and keeps joins and
/// re-enrolments from queueing behind argon2id (1,000 concurrent joins did).
pub(super) fn hash_secret(secret: &str) -> String {
    format!("{SECRET_SHA256}{}", hex::encode(hash(secret)))
}

/// Whether `secret` is the one `stored` ([`hash_secret`]) was made from, in constant time.
pub(super) fn secret_matches(secret: &str, stored: &str) -> bool {
    stored
        .strip_prefix(SECRET_SHA256)
        .and_then(|h| hex::decode(h).ok())
        .is_some_and(|want| aws_lc_rs::constant_time::verify_slices_are_equal(&want, &hash(secret)).is_ok())
}

/// Checks a machine secret in constant time; secrets stored by earlier
/// versions (argon2id PHC strings) still verify, with a permit of `gate`
/// (`overloaded` if none is free: the agent retries).
fn verify_machine_secret(gate: &HashGate, secret: &str, stored: &str) -> Result<bool> {
    Ok(match stored.starts_with(SECRET_SHA256) {
        true => secret_matches(secret, stored),
        false => gate.try_enter()?.verify(secret, stored),
    })
}

/// The machine whose secret was verified outside the transaction, as it is
/// now, if its secret and identity are still the ones verified (a rotation,
/// a compromise or a re-join in between refuses); otherwise the answer to
/// a wrong secret.
fn still_the_same(tx: &mut dyn Tx, t: &Tenant, verified: Option<&PrincipalRecord>) -> Result<PrincipalRecord> {
    let denied = || Error::new(ErrorCode::InvalidCredentials, "wrong machine name or machine secret");
    let m = verified.ok_or_else(denied)?;
    let now = tx.principal_by_id(&t.id, &m.id)?.ok_or_else(denied)?;
    if now.password_hash != m.password_hash || now.credential_epoch != m.credential_epoch {
        return Err(denied());
    }
    Ok(now)
}

/// The calling machine of `tenant`, or `forbidden` for any other caller.
fn own_machine<'a>(actor: &'a Actor, tenant: &str) -> Result<&'a PrincipalActor> {
    authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
    match actor {
        Actor::Principal(me) if me.kind == PrincipalKind::Machine => Ok(me),
        _ => Err(Error::forbidden("only a machine, with its own certificate, may do this")),
    }
}

/// A machine secret a host proposes must be as strong as the server's own:
/// `lwm_` and at least 43 URL-safe characters (256 bits as base64url, or
/// 64 hex digits), at most 128.
fn check_secret_form(s: &str) -> Result<()> {
    let body = s.strip_prefix(MACHINE_SECRET_PREFIX).unwrap_or_default();
    let ok =
        (43..=128).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("a proposed machine secret is lwm_ followed by 43 to 128 of A-Z a-z 0-9 - _"))
    }
}

fn bad_token(why: &str) -> Error {
    Error::new(ErrorCode::InvalidJoinToken, format!("the join token is not valid: {why}"))
}

fn machine_actor(t: &Tenant, m: &PrincipalRecord) -> Actor {
    Actor::Principal(PrincipalActor {
        tenant_id: t.id.clone(),
        tenant: t.domain.clone(),
        id: crate::PrincipalId::stored(&m.id),
        kind: PrincipalKind::Machine,
        name: m.name.clone(),
        groups: Default::default(),
    })
}

/// Reads the trust state inside a transaction.
pub(super) fn trust_state_in(tx: &mut dyn Tx, t: &Tenant) -> Result<TrustState> {
    let roots = bundle_roots(tx, t)?.into_iter().map(|c| c.cert_der).collect();
    let (mut crls, mut delta_crls) = (Vec::new(), Vec::new());
    for ca in tx.list_cas(&t.id)? {
        if ca.status == CaStatus::Revoked && ca.role == lightwell_store::CaRole::Root {
            continue;
        }
        if let Some(delta) = tx.delta_crl(&t.id, &ca.id)? {
            delta_crls.push((ca.id.clone(), delta.crl.der));
        }
        if let Some(crl) = tx.crl(&t.id, &ca.id)? {
            crls.push((ca.id, crl.der));
        }
    }
    Ok(TrustState { revision: tx.trust_revision(&t.id)?, roots, crls, delta_crls })
}

/// A join token as front ends show it: everything but its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTokenInfo {
    /// Stable id (shown in listings, used to revoke).
    pub id: String,
    /// The only host name this token may join, if bound.
    pub hostname: Option<String>,
    /// The IP addresses a joining host may have in its certificate.
    pub ips: Vec<String>,
    /// Joins left.
    pub uses_left: i64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Revoked tokens are refused.
    pub revoked: bool,
    /// Whether the token may re-join a host name that already has a machine account.
    pub allow_rejoin: bool,
    /// Who created it.
    pub created_by: String,
    /// Creation time.
    pub created_at: i64,
}

impl From<JoinTokenRecord> for JoinTokenInfo {
    fn from(r: JoinTokenRecord) -> Self {
        Self {
            id: r.id,
            hostname: r.hostname,
            ips: r.ips,
            uses_left: r.uses_left,
            expires_at: r.expires_at,
            revoked: r.revoked,
            allow_rejoin: r.allow_rejoin,
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

impl Service {
    /// Creates a join token (Administrators); returns it with its secret, shown once.
    pub async fn create_join_token(
        &self,
        actor: &Actor,
        tenant: &str,
        new: NewJoinToken,
    ) -> Result<(JoinTokenInfo, Zeroizing<String>)> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        if !(60..=MAX_JOIN_TOKEN_TTL_SECS).contains(&new.ttl_secs) {
            return Err(Error::invalid("a join token lives between 1 minute and 30 days"));
        }
        if !(1..=MAX_JOIN_TOKEN_USES).contains(&new.uses) {
            return Err(Error::invalid(format!("a join token allows 1 to {MAX_JOIN_TOKEN_USES} joins")));
        }
        let hostname = new.hostname.as_deref().map(Hostname::parse).transpose()?.map(Hostname::into_string);
        if new.allow_rejoin && hostname.is_none() {
            // Re-joining takes over an existing machine: its groups, hosted
            // services and addresses. Only for a machine named here.
            return Err(Error::invalid(
                "a token that may re-join a host must be bound to its host name (--hostname with --allow-rejoin)",
            ));
        }
        let ips = new.ips.iter().map(|ip| parse_ip(ip)).collect::<Result<Vec<_>>>()?;
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        self.blocking(move |inner| {
            let token = new_secret(JOIN_TOKEN_PREFIX)?;
            let now = inner.now();
            let record = inner.tenant_write(&tenant, |tx, t| {
                if let Some(h) = &hostname {
                    check_machine_name(t, &Hostname::parse(h)?)?;
                }
                let record = JoinTokenRecord {
                    id: uuid::Uuid::new_v4().to_string(),
                    tenant_id: t.id.clone(),
                    token_hash: hash(&token),
                    hostname: hostname.clone(),
                    ips: ips.clone(),
                    uses_left: new.uses,
                    expires_at: now + new.ttl_secs,
                    revoked: false,
                    allow_rejoin: new.allow_rejoin,
                    created_by: actor_name.clone(),
                    created_at: now,
                };
                tx.insert_join_token(&record)?;
                let detail = format!(
                    "uses {}; host {}; ips [{}]",
                    new.uses,
                    hostname.as_deref().unwrap_or("any"),
                    ips.join(" ")
                );
                inner.audit(
                    tx,
                    t,
                    AuditEvent::success(actor_name.clone(), "join_token.create", record.id.clone()).with_detail(detail),
                )?;
                Ok(record)
            })?;
            Ok((record.into(), token))
        })
        .await
    }

    /// Lists join tokens (Administrators); never their secrets.
    pub async fn list_join_tokens(&self, actor: &Actor, tenant: &str) -> Result<Vec<JoinTokenInfo>> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| Ok(tx.list_join_tokens(&t.id)?.into_iter().map(Into::into).collect()))
        })
        .await
    }

    /// Revokes a join token (Administrators).
    pub async fn revoke_join_token(&self, actor: &Actor, tenant: &str, id: &str) -> Result<()> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let (actor_name, tenant, id) = (actor.audit_name(), tenant.to_string(), id.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let mut record = tx
                    .join_token(&t.id, &id)?
                    .ok_or_else(|| Error::new(ErrorCode::NotFound, format!("no join token {:?}", short(&id))))?;
                record.revoked = true;
                tx.update_join_token(&record)?;
                inner.audit(tx, t, AuditEvent::success(actor_name.clone(), "join_token.revoke", id.clone()))
            })
        })
        .await
    }

    /// Joins a host: with a join token, or as an administrator (`actor`).
    /// Creates (or, when allowed, re-creates) the machine account in
    /// `DomainClients`, issues its certificate from the CSR, and returns it
    /// with the machine secret and the trust state — all in one transaction.
    /// A refused join changes nothing (the token keeps its uses, an existing
    /// machine its certificates) but its audit record, which moves no
    /// directory revision.
    pub async fn join(&self, actor: Option<&Actor>, tenant: &str, req: JoinRequest, source: IpAddr) -> Result<Joined> {
        self.throttled_enrolment(tenant, source, "machine.join", self.join_examined(actor, tenant, req)).await
    }

    async fn join_examined(&self, actor: Option<&Actor>, tenant: &str, req: JoinRequest) -> Result<Joined> {
        if let Some(a) = actor {
            authz::check(a, Some(tenant), Permission::ManageDirectory)?;
        }
        let hostname = Hostname::parse(&req.hostname)?;
        let mut ips = Vec::new();
        for ip in &req.ips {
            let ip = parse_ip(ip)?;
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        let csr = CertificateRequest::parse(&req.csr)
            .map_err(|e| Error::new(ErrorCode::InvalidCsr, format!("the CSR is not acceptable: {e}")))?;
        let admin = actor.map(Actor::audit_name);
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            let machine_secret = new_secret(MACHINE_SECRET_PREFIX)?;
            let secret_hash = hash_secret(&machine_secret);
            let host = Host { name: &hostname, ips: &ips, csr: &csr, secret_hash: &secret_hash };
            // Every refusal is an error of this closure, so the transaction
            // rolls back whatever the join had written before it.
            let joined = inner.store.write(|tx| -> Result<_> {
                let t = tenant_by_domain(tx, &tenant)?;
                let who = admin.clone().unwrap_or_else(|| format!("join-token:{}", hostname.as_str()));
                let (machine, certificate, unapproved) = inner.join_in_tx(tx, &t, admin.is_some(), &req, &host)?;
                let mut detail = format!("serial {}", certificate.record.serial);
                if !unapproved.is_empty() {
                    detail.push_str(&format!("; unapproved ips left out [{}]", unapproved.join(" ")));
                }
                inner.audit(
                    tx,
                    &t,
                    AuditEvent::success(who, "machine.join", machine.name.clone()).with_detail(detail),
                )?;
                let trust = trust_state_in(tx, &t)?;
                Ok((machine, certificate, trust, unapproved))
            });
            if let Err(e) = &joined
                && !e.is_undecided()
                && e.code != ErrorCode::TenantNotFound
            {
                let who = admin.clone().unwrap_or_else(|| "anonymous".into());
                let ev = AuditEvent::failure(who, "machine.join", hostname.as_str().to_string()).with_detail(format!(
                    "{}: {}",
                    e.code,
                    short(&e.message)
                ));
                let _ = inner.audit_refusal(&tenant, ev);
                inner.observer.login_failed();
            }
            let (machine, certificate, trust, unapproved_ips) = joined?;
            Ok(Joined { machine: Principal::from(&machine), unapproved_ips, certificate, machine_secret, trust })
        })
        .await
    }

    /// Issues a new certificate to a machine that authenticates with its
    /// machine secret (after its certificate expired or was revoked).
    pub async fn reenroll(
        &self,
        tenant: &str,
        hostname: &str,
        machine_secret: Zeroizing<String>,
        csr: Vec<u8>,
        source: IpAddr,
    ) -> Result<(CertificateView, TrustState)> {
        let work = self.reenroll_examined(tenant, hostname, machine_secret, csr);
        self.throttled_enrolment(tenant, source, "machine.reenroll", work).await
    }

    /// Runs a join or re-enrolment from `source` under the enrolment
    /// throttle: an address with [`DEFAULT_ENROLMENT_THROTTLE`] refused
    /// attempts in the window is answered `too_many_requests` before any
    /// work, and only the first such answer per window is audited, so a
    /// flood of bogus joins costs one audit record a minute, not one each.
    /// Successes, and failures the server could not decide (database down,
    /// overloaded), are not counted.
    async fn throttled_enrolment<T>(
        &self,
        tenant: &str,
        source: IpAddr,
        action: &'static str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let key = address_key(source);
        let now = self.inner.now();
        if let Err(t) = self.inner.enrolment_sources.charge(&key, now) {
            self.inner.observer.enrolment_throttled();
            // One notice per address and window, whichever spelling of the tenant it used.
            if self.inner.enrolment_notices.charge(&key, now).is_ok() {
                let window = self.inner.enrolment_sources.limit().window_secs;
                let ev = AuditEvent::failure(format!("address:{key}"), action, short(tenant)).with_detail(format!(
                    "too many refused joins and re-enrolments from {key}; further ones are refused unexamined and not audited for {window} s"
                ));
                let tenant = tenant.to_string();
                let _ = self.blocking(move |inner| inner.audit_refusal(&tenant, ev)).await;
            }
            let message = format!("too many refused joins from {key}; try again in {} s", t.retry_after_secs);
            return Err(Error::new(ErrorCode::TooManyRequests, message).with_retry_after(t.retry_after_secs));
        }
        let result = work.await;
        if result.as_ref().is_ok() || result.as_ref().is_err_and(Error::is_undecided) {
            self.inner.enrolment_sources.refund(&key);
        }
        result
    }

    async fn reenroll_examined(
        &self,
        tenant: &str,
        hostname: &str,
        machine_secret: Zeroizing<String>,
        csr: Vec<u8>,
    ) -> Result<(CertificateView, TrustState)> {
        let (tenant, hostname) = (tenant.to_string(), hostname.to_string());
        let parsed = CertificateRequest::parse(&csr)
            .map_err(|e| Error::new(ErrorCode::InvalidCsr, format!("the CSR is not acceptable: {e}")))?;
        self.blocking(move |inner| {
            let (machine, verified) = inner.check_machine_secret(&tenant, &hostname, &machine_secret)?;
            inner.write_committing_refusal(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let m = match still_the_same(tx, &t, machine.as_ref().filter(|_| verified)) {
                    Ok(m) => m,
                    Err(e) => {
                        let ev = AuditEvent::failure(
                            format!("machine:{}", short(&hostname)),
                            "machine.reenroll",
                            short(&hostname),
                        );
                        inner.audit(tx, &t, ev.with_detail("wrong machine secret"))?;
                        return Ok(Err(e));
                    }
                };
                let m = &m;
                let actor = machine_actor(&t, m);
                let req = IssueRequest { csr: csr.clone(), ..Default::default() };
                match inner.issue_in_tx(tx, &t, &actor, &parsed, &req) {
                    Ok(view) => {
                        let detail = format!("serial {}", view.record.serial);
                        inner.audit(
                            tx,
                            &t,
                            AuditEvent::success(actor.audit_name(), "machine.reenroll", m.name.clone())
                                .with_detail(detail),
                        )?;
                        Ok(Ok((view, trust_state_in(tx, &t)?)))
                    }
                    Err(e) if e.is_undecided() => Err(e),
                    Err(e) => Ok(Err(e)),
                }
            })
        })
        .await
    }

    /// Replaces the calling machine's secret; returns the new one (shown
    /// once). The caller proves both its certificate (mutual TLS, `actor`)
    /// and the current secret: a stolen certificate alone cannot take the
    /// machine's re-enrolment credential over. Audited either way.
    ///
    /// The machine may propose the new secret (`proposed`, made on the host
    /// and kept there before it asks): then a retry after a lost answer is
    /// idempotent — the proposed secret, already in place, is accepted in
    /// place of the current one — and the host never loses its credential.
    pub async fn rotate_machine_secret(
        &self,
        actor: &Actor,
        tenant: &str,
        current: Zeroizing<String>,
        proposed: Option<Zeroizing<String>>,
    ) -> Result<Zeroizing<String>> {
        let me = own_machine(actor, tenant)?;
        if let Some(p) = &proposed {
            check_secret_form(p)?;
        }
        let (tenant, id, name, actor_name) = (me.tenant.clone(), me.id.clone(), me.name.clone(), actor.audit_name());
        self.blocking(move |inner| {
            let new_secret = match proposed {
                Some(p) => p,
                None => new_secret(MACHINE_SECRET_PREFIX)?,
            };
            let hashed = hash_secret(&new_secret);
            let now = inner.now();
            let rotated = inner.store.write(|tx| -> Result<()> {
                let t = tenant_by_domain(tx, &tenant)?;
                let mut m =
                    tx.principal_by_id(&t.id, &id)?.ok_or_else(|| Error::forbidden("the machine no longer exists"))?;
                let Some(stored) = m.password_hash.clone() else {
                    return Err(Error::new(ErrorCode::InvalidCredentials, "the current machine secret is wrong"));
                };
                if verify_machine_secret(&inner.hash_gate, &new_secret, &stored)? {
                    // A retry of a rotation that went through.
                    return Ok(());
                }
                if !verify_machine_secret(&inner.hash_gate, &current, &stored)? {
                    return Err(Error::new(ErrorCode::InvalidCredentials, "the current machine secret is wrong"));
                }
                m.password_hash = Some(hashed.clone());
                m.updated_at = now;
                tx.update_principal(&m)?;
                inner.audit(tx, &t, AuditEvent::success(actor_name.clone(), "machine.rotate_secret", m.name.clone()))
            });
            if let Err(e) = &rotated
                && e.code == ErrorCode::InvalidCredentials
            {
                let ev = AuditEvent::failure(actor_name.clone(), "machine.rotate_secret", name.clone())
                    .with_detail("wrong current machine secret");
                let _ = inner.audit_refusal(&tenant, ev);
            }
            rotated.map(|()| new_secret)
        })
        .await
    }

    /// A machine leaves the domain, proving its machine secret (a stolen
    /// certificate alone cannot evict a host, and a host whose certificate
    /// expired can still leave): in one transaction every certificate it
    /// holds or obtained is revoked (cessationOfOperation), its secret
    /// forgotten and its account disabled. Joining again needs a token
    /// created for its host name with `--allow-rejoin`. Returns the serials
    /// revoked.
    pub async fn leave(
        &self,
        tenant: &str,
        hostname: &str,
        machine_secret: Zeroizing<String>,
        source: IpAddr,
    ) -> Result<Vec<String>> {
        let work = self.leave_examined(tenant, hostname, machine_secret);
        self.throttled_enrolment(tenant, source, "machine.leave", work).await
    }

    async fn leave_examined(
        &self,
        tenant: &str,
        hostname: &str,
        machine_secret: Zeroizing<String>,
    ) -> Result<Vec<String>> {
        let (tenant, hostname) = (tenant.to_string(), hostname.to_string());
        self.blocking(move |inner| {
            let (machine, verified) = inner.check_machine_secret(&tenant, &hostname, &machine_secret)?;
            let left = inner.store.write(|tx| -> Result<_> {
                let t = tenant_by_domain(tx, &tenant)?;
                let mut m = still_the_same(tx, &t, machine.as_ref().filter(|_| verified))?;
                let reason = lightwell_ca::crl::RevocationReason::CessationOfOperation;
                let revoked = inner.end_machine_identity(tx, &t, &mut m, reason, true)?;
                let who = format!("machine:{}", m.name);
                let detail = format!("revoked {}; machine secret forgotten; account disabled", revoked.join(" "));
                inner.audit(tx, &t, AuditEvent::success(who, "machine.leave", m.name.clone()).with_detail(detail))?;
                Ok(revoked)
            });
            if let Err(e) = &left
                && e.code == ErrorCode::InvalidCredentials
            {
                let ev =
                    AuditEvent::failure(format!("machine:{}", short(&hostname)), "machine.leave", short(&hostname))
                        .with_detail("wrong machine name or machine secret");
                let _ = inner.audit_refusal(&tenant, ev);
            }
            left
        })
        .await
    }

    /// The tenant's trust state. Public: roots and CRLs are published anyway.
    pub async fn trust_state(&self, tenant: &str) -> Result<TrustState> {
        let tenant = tenant.to_string();
        self.blocking(move |inner| inner.tenant_read(&tenant, trust_state_in)).await
    }

    /// The tenant's trust revision. Public.
    pub async fn trust_revision(&self, tenant: &str) -> Result<(TenantId, i64)> {
        let tenant = tenant.to_string();
        self.blocking(move |inner| inner.tenant_read(&tenant, |tx, t| Ok((t.id.clone(), tx.trust_revision(&t.id)?))))
            .await
    }

    /// Every tenant's trust revision (for the server's watch hub).
    pub async fn trust_revisions(&self) -> Result<Vec<(TenantId, i64)>> {
        self.blocking(|inner| inner.store.read(|tx| Ok(tx.trust_revisions()?))).await
    }

    /// Subscribes to trust changes committed by any replica sharing the
    /// database (LISTEN/NOTIFY on PostgreSQL); `None` where the store has no
    /// such channel (SQLite), and callers poll [`Service::trust_revisions`].
    pub fn subscribe_trust_changes(
        &self,
        on_change: lightwell_store::ChangeCallback,
    ) -> Option<lightwell_store::ChangeSubscription> {
        self.inner.store.subscribe_changes(on_change)
    }
}

/// What a joining host presents, parsed.
struct Host<'a> {
    name: &'a Hostname,
    ips: &'a [String],
    csr: &'a CertificateRequest,
    secret_hash: &'a str,
}

impl Inner {
    /// Checks a machine's secret outside any transaction (an argon2id hash
    /// of an earlier version needs a hashing permit): the machine as read
    /// and whether the secret matched. An unknown machine costs the same.
    fn check_machine_secret(
        &self,
        tenant: &str,
        hostname: &str,
        secret: &str,
    ) -> Result<(Option<PrincipalRecord>, bool)> {
        let machine = self.tenant_read(tenant, |tx, t| Ok(tx.principal(&t.id, PrincipalKind::Machine, hostname)?))?;
        let verified = match machine.as_ref().and_then(|m| m.password_hash.as_deref()) {
            Some(h) => verify_machine_secret(&self.hash_gate, secret, h)?,
            None => {
                verify_machine_secret(&self.hash_gate, secret, &hash_secret("lw-unknown-machine"))?;
                false
            }
        };
        Ok((machine, verified))
    }

    /// Every certificate a machine holds or obtained (its own, and those it
    /// requested for services it hosts or hosted), revoked with `reason`;
    /// the serials revoked.
    fn revoke_machine_certificates(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        m: &PrincipalRecord,
        reason: lightwell_ca::crl::RevocationReason,
    ) -> Result<Vec<String>> {
        let mut revoked = self.revoke_principal(tx, t, &m.id, reason)?;
        let filter = lightwell_store::CertificateFilter {
            requester: Some(authz::principal_name(PrincipalKind::Machine, &m.name)),
            revoked: Some(false),
            ..Default::default()
        };
        let requested: Vec<_> =
            tx.list_certificates(&t.id, &filter)?.into_iter().map(|c| (c.serial, c.ca_id)).collect();
        revoked.extend(self.revoke_serials(tx, t, &requested, reason)?);
        Ok(revoked)
    }

    /// Ends a machine's identity: every certificate it holds or obtained is
    /// revoked, its machine secret forgotten and its credential epoch bumped
    /// (so nothing decided under the old identity is recorded), and, for a
    /// machine that leaves, its account disabled. The caller audits.
    fn end_machine_identity(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        m: &mut PrincipalRecord,
        reason: lightwell_ca::crl::RevocationReason,
        disable: bool,
    ) -> Result<Vec<String>> {
        let revoked = self.revoke_machine_certificates(tx, t, m, reason)?;
        m.password_hash = None;
        m.credential_epoch += 1;
        m.enabled &= !disable;
        m.updated_at = self.now();
        tx.update_principal(m)?;
        Ok(revoked)
    }

    /// A machine's certificate was revoked for key compromise: whoever has
    /// its key may have renewed with it, obtained service certificates, and
    /// taken its machine secret, so its whole identity ends — every
    /// certificate it holds or obtained is revoked and its secret forgotten;
    /// the host must join again (with a token created for it with
    /// `--allow-rejoin`). Audited. Other principals are left as they are.
    pub(in crate::service) fn compromised(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        principal_id: &str,
        actor_name: &str,
    ) -> Result<Vec<String>> {
        let Some(mut m) = tx.principal_by_id(&t.id, principal_id)? else { return Ok(vec![]) };
        if m.kind != PrincipalKind::Machine {
            return Ok(vec![]);
        }
        let reason = lightwell_ca::crl::RevocationReason::KeyCompromise;
        let revoked = self.end_machine_identity(tx, t, &mut m, reason, false)?;
        let detail = format!(
            "a certificate of the machine was revoked for key compromise: also revoked [{}], secret forgotten; it must join again",
            revoked.join(" ")
        );
        let ev = AuditEvent::success(actor_name, "machine.forget_secret", m.name.clone()).with_detail(detail);
        self.audit(tx, t, ev)?;
        Ok(revoked)
    }

    /// The join in its transaction: decides everything first (the token or
    /// administrator and what it binds, the host name, re-join), then writes
    /// the token's use, the machine account and its certificate. Returns the
    /// machine, its certificate and the IPs left out of it.
    fn join_in_tx(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        by_admin: bool,
        req: &JoinRequest,
        host: &Host<'_>,
    ) -> Result<(PrincipalRecord, CertificateView, Vec<String>)> {
        let now = self.now();
        let hostname = host.name.as_str();
        // The token (an administrator needs none): valid, and what it binds.
        let token = match by_admin {
            true => None,
            false => {
                let secret = req.token.as_ref().ok_or_else(|| bad_token("none was given"))?;
                let record = tx.join_token_by_hash(&t.id, &hash(secret))?.ok_or_else(|| bad_token("unknown token"))?;
                if record.revoked {
                    return Err(bad_token("it was revoked"));
                }
                if record.expires_at <= now {
                    return Err(bad_token("it expired"));
                }
                if record.uses_left <= 0 {
                    return Err(bad_token("it is used up"));
                }
                if record.hostname.as_deref().is_some_and(|h| h != hostname) {
                    return Err(bad_token("it is bound to another host name"));
                }
                Some(record)
            }
        };
        // The name: a fully qualified name inside the tenant's domains, not
        // registered to any other principal; an existing machine of that
        // name re-joins only where allowed.
        check_machine_name(t, host.name)?;
        let existing = tx.principal(&t.id, PrincipalKind::Machine, hostname)?;
        let allow_rejoin = token.as_ref().is_none_or(|r| r.allow_rejoin);
        if existing.is_some() && !allow_rejoin {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!("{hostname} has already joined; re-joining needs a token created with --allow-rejoin"),
            ));
        }
        // IPs: an administrator's join approves them; a token approves the
        // ones it binds, and a re-join keeps those already registered.
        let (approved, unapproved): (Vec<String>, Vec<String>) = host.ips.iter().cloned().partition(|ip| {
            token.as_ref().is_none_or(|r| r.ips.contains(ip)) || existing.as_ref().is_some_and(|m| m.ips.contains(ip))
        });
        let mut machine = match &existing {
            Some(m) => m.clone(),
            None => new_principal(&t.id, PrincipalKind::Machine, hostname, now),
        };
        machine.hostnames = vec![hostname.to_string()];
        machine.ips = approved;
        machine.enabled = true;
        machine.password_hash = Some(host.secret_hash.to_string());
        machine.updated_at = now;
        ensure_names_free(tx, t, existing.as_ref(), &machine).map_err(|e| match by_admin {
            // A token holder learns only that the name is taken, not by whom.
            false if e.code == ErrorCode::AlreadyExists => Error::new(
                ErrorCode::AlreadyExists,
                format!("the name {hostname:?} is already registered to another principal"),
            ),
            _ => e,
        })?;

        // Decided: write.
        if let Some(mut record) = token {
            record.uses_left -= 1;
            tx.update_join_token(&record)?;
        }
        match existing {
            Some(_) => {
                // The old identity is superseded: revoke what it holds and obtained.
                self.revoke_machine_certificates(tx, t, &machine, lightwell_ca::crl::RevocationReason::Superseded)?;
                machine.credential_epoch += 1;
                tx.update_principal(&machine)?;
            }
            None => {
                tx.insert_principal(&machine)?;
                let group = tx
                    .principal(&t.id, PrincipalKind::Group, DOMAIN_CLIENTS)?
                    .ok_or_else(|| Error::internal("DomainClients group missing"))?;
                tx.add_member(&t.id, &group.id, &machine.id)?;
            }
        }
        let issue = IssueRequest { csr: req.csr.clone(), profile: Some("server-client".into()), ..Default::default() };
        let certificate = self.issue_in_tx(tx, t, &machine_actor(t, &machine), host.csr, &issue)?;
        Ok((machine, certificate, unapproved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_secrets_verify_in_both_stored_forms() {
        let secret = new_secret(MACHINE_SECRET_PREFIX).unwrap();
        let stored = hash_secret(&secret);
        assert!(stored.starts_with(SECRET_SHA256) && !stored.contains(secret.as_str()));
        let gate = HashGate::new(1, std::time::Duration::ZERO);
        let check = |s: &str, stored: &str| verify_machine_secret(&gate, s, stored).unwrap();
        assert!(check(&secret, &stored));
        assert!(!check("lwm_wrong", &stored));
        assert!(!check(&secret, "$lw-sha256$zz"), "a malformed digest never verifies");
        // Secrets stored by earlier versions (argon2id) still verify.
        let old = gate.try_enter().unwrap().hash(&secret).unwrap();
        assert!(check(&secret, &old) && !check("lwm_wrong", &old));
        // ... and need a password-hashing permit; the SHA-256 form does not.
        let _busy = gate.try_enter().unwrap();
        assert_eq!(verify_machine_secret(&gate, &secret, &old).unwrap_err().code, ErrorCode::Overloaded);
        assert!(check(&secret, &stored));
    }
}
