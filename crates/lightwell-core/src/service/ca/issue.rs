//! Issuance: a CSR in, a recorded certificate out.

use crate::service::Tenant;
use lightwell_ca::Serial;
use lightwell_ca::csr::CertificateRequest;
use lightwell_ca::leaf::{self, LeafRequest};
use lightwell_proto::ErrorCode;
use lightwell_store::{CaRecord, CaRole, CaStatus, CertificateRecord, PrincipalKind, PrincipalRecord, StoreExt, Tx};
use time::Duration;

use super::binding::{Binding, bind};
use super::hierarchy::{ca_error, cert_url, crl_url, delta_crl_url, ocsp_url};
use super::{CertificateView, Service};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, Permission, Rank};
use crate::names::PrincipalRef;
use crate::service::directory::resolve;
use crate::service::graph::Graph;
use crate::service::{Inner, short};
use crate::{Error, Result};

/// notBefore is backdated this much for clock skew.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// A certificate request.
#[derive(Debug, Clone, Default)]
pub struct IssueRequest {
    /// PKCS#10, PEM or DER.
    pub csr: Vec<u8>,
    /// Profile name; the default depends on the principal's kind.
    pub profile: Option<String>,
    /// Lifetime in seconds; the default comes from tenant policy.
    pub ttl_secs: Option<i64>,
    /// Issue for this principal instead of the requester (CA administrators,
    /// or a machine for a service it hosts).
    pub principal: Option<PrincipalRef>,
    /// Issue from this Kubernetes cluster's CA (profiles `k8s-node`, `k8s-node-serving`, `k8s-user`).
    pub cluster: Option<String>,
}

/// Who asks for a certificate.
#[derive(Debug, Clone)]
pub enum Requester {
    /// A caller authenticated already (by a bearer token).
    Actor(Actor),
    /// A TLS client certificate chain (leaf first), authenticated in the
    /// issuance's own read transaction: one store round trip and one hop to a
    /// blocking thread instead of two.
    ClientCertificate(Vec<Vec<u8>>),
}

/// Whether `actor` may ask for a certificate at all; for whom is decided
/// in the transaction ([`Inner::subject_principal`]).
fn may_request(actor: &Actor, tenant: &str) -> Result<()> {
    authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
    match actor {
        Actor::Principal(_) => Ok(()),
        Actor::Operator { .. } => Err(Error::forbidden("only principals hold certificates")),
    }
}

impl Service {
    /// Issues a certificate for the requester (or, for CA administrators, on
    /// behalf of `principal`). The certificate is recorded durably, with its
    /// audit record, before it is returned; every refusal is audited too
    /// (not a failed authentication or permission check: those name no one
    /// to audit against, and answer before anything is decided).
    pub async fn issue_certificate(
        &self,
        requester: Requester,
        tenant: &str,
        req: IssueRequest,
    ) -> Result<CertificateView> {
        if let Requester::Actor(actor) = &requester {
            may_request(actor, tenant)?;
        }
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            // Parse outside any transaction; a refusal is still audited below.
            let csr = CertificateRequest::parse(&req.csr).map_err(ca_error);
            // Decide in a read transaction and sign outside the writer, so
            // signing runs on every CPU instead of one at a time under the
            // write lock; the short write below re-checks what may have
            // changed meanwhile and audits the outcome.
            let (actor, decided) = inner.store.read(|tx| {
                let (actor, authenticated_by) = match &requester {
                    Requester::Actor(actor) => (actor.clone(), None),
                    Requester::ClientCertificate(chain) => {
                        let (actor, serial) = inner.authenticate_certificate_in(tx, chain)?;
                        may_request(&actor, &tenant)?;
                        (actor, Some(serial))
                    }
                };
                let decided = csr.clone().and_then(|csr| {
                    let t = super::super::tenant_by_domain(tx, &tenant)?;
                    let prepared = inner.prepare_issue(tx, &t, &actor, &csr, &req)?;
                    Ok((t, csr, prepared))
                });
                Ok::<_, Error>((actor, decided.map(|d| (d, authenticated_by))))
            })?;
            // The audit target is the principal the request resolved to (a
            // bare name names its kind here), else the request as written.
            let actor_name = actor.audit_name();
            let target = match (&decided, &req.principal) {
                (Ok(((_, _, p), _)), Some(_)) => {
                    let who = &p.decision.principal;
                    format!("{}:{}", who.kind.as_str(), short(&who.name))
                }
                (_, Some(r)) => match r.kind {
                    Some(kind) => format!("{}:{}", kind.as_str(), short(&r.name)),
                    None => short(&r.name),
                },
                (_, None) => actor_name.clone(),
            };
            let signed = decided.and_then(|((t, csr, prepared), authenticated_by)| {
                let signed = inner.sign_prepared(&t, &actor, &csr, prepared, authenticated_by)?;
                Ok((csr, signed))
            });
            inner.write_committing_refusal(|tx| {
                let t = super::super::tenant_by_domain(tx, &tenant)?;
                let outcome = signed.clone().and_then(|(csr, s)| inner.record_signed(tx, &t, &actor, &csr, &req, s));
                inner.audit_issuance(tx, &t, &actor_name, target.clone(), outcome)
            })
        })
        .await
    }
}

/// The tenant's active default issuing CA, which signs directory principals' leaves.
pub(in crate::service) fn default_issuing_ca(tx: &mut dyn Tx, t: &Tenant) -> Result<CaRecord> {
    tx.list_cas(&t.id)?.into_iter().find(|c| c.is_default && c.status == CaStatus::Active).ok_or_else(|| {
        Error::new(
            ErrorCode::CaUnavailable,
            "the tenant has no active default issuing CA; create one with `lightwell ca create-intermediate NAME --default`",
        )
    })
}

/// What the policy decided for an issuance: for whom, how, by which CA.
pub(in crate::service) struct Decision {
    principal: PrincipalRecord,
    binding: Binding,
    ca: CaRecord,
}

/// A decision read in a transaction, with the chain to return.
pub(in crate::service) struct Prepared {
    decision: Decision,
    intermediates: Vec<Vec<u8>>,
}

/// A certificate signed outside the writer, to be recorded if nothing it
/// was decided from changed meanwhile.
#[derive(Debug, Clone)]
pub(in crate::service) struct Signed {
    view: CertificateView,
    /// The principal's credential epoch when the request was decided.
    credential_epoch: i64,
    /// What the policy bound when the request was decided.
    binding: Binding,
    /// Serial of the TLS client certificate that authenticated the request, if one did.
    authenticated_by: Option<String>,
}

impl Inner {
    /// Audits an issuance attempt in its transaction: a success with its
    /// serial, a refusal with its code (and the refusal still commits);
    /// internal failures abort the transaction instead.
    pub(in crate::service) fn audit_issuance(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        actor_name: &str,
        target: String,
        outcome: Result<CertificateView>,
    ) -> Result<Result<CertificateView>> {
        match outcome {
            Ok(view) => {
                let detail = format!(
                    "serial {}; profile {}; ca {}; not after {}",
                    view.record.serial,
                    view.record.profile,
                    view.ca_name,
                    crate::clock::rfc3339(view.record.not_after)
                );
                self.audit(tx, t, AuditEvent::success(actor_name, "certificate.issue", target).with_detail(detail))?;
                Ok(Ok(view))
            }
            Err(e) if e.is_undecided() => Err(e),
            Err(e) => {
                let ev = AuditEvent::failure(actor_name, "certificate.issue", target).with_detail(format!(
                    "{}: {}",
                    e.code,
                    short(&e.message)
                ));
                self.audit(tx, t, ev)?;
                Ok(Err(e))
            }
        }
    }

    /// Decides, signs and records a certificate in one write transaction
    /// (joins and re-enrolment, whose other changes share it).
    pub(in crate::service) fn issue_in_tx(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        actor: &Actor,
        csr: &CertificateRequest,
        req: &IssueRequest,
    ) -> Result<CertificateView> {
        let prepared = self.prepare_issue(tx, t, actor, csr, req)?;
        let signed = self.sign_prepared(t, actor, csr, prepared, None)?;
        self.record_certificate(tx, t, &signed.view.record)?;
        Ok(signed.view)
    }

    /// Decides an issuance and reads the chain to return with it.
    fn prepare_issue(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        actor: &Actor,
        csr: &CertificateRequest,
        req: &IssueRequest,
    ) -> Result<Prepared> {
        let decision = self.decide(tx, t, actor, csr, req)?;
        let intermediates = self.intermediates(tx, t, &decision.ca.id)?;
        Ok(Prepared { decision, intermediates })
    }

    /// Decides an issuance: the subject principal, what the policy binds
    /// the CSR to, and the CA that signs it.
    fn decide(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        actor: &Actor,
        csr: &CertificateRequest,
        req: &IssueRequest,
    ) -> Result<Decision> {
        let principal = self.subject_principal(tx, t, actor, req)?;
        let policy = t.policy.clone().ca;
        let (binding, ca) = match &req.cluster {
            Some(cluster) => self.bind_k8s(tx, t, cluster, csr, &principal, req.profile.as_deref(), req.ttl_secs)?,
            None => {
                let binding = bind(csr, &principal, &t.domain, req.profile.as_deref(), req.ttl_secs, &policy)?;
                (binding, default_issuing_ca(tx, t)?)
            }
        };
        Ok(Decision { principal, binding, ca })
    }

    fn sign_prepared(
        &self,
        t: &Tenant,
        actor: &Actor,
        csr: &CertificateRequest,
        p: Prepared,
        authenticated_by: Option<String>,
    ) -> Result<Signed> {
        let Prepared { decision: d, intermediates } = p;
        let record = self.sign_leaf(t, actor, &d.principal, csr, &d.binding, &d.ca)?;
        let view = CertificateView { record, ca_name: d.ca.name, intermediates };
        Ok(Signed { view, credential_epoch: d.principal.credential_epoch, binding: d.binding, authenticated_by })
    }

    /// Records a certificate signed outside the writer if, in this
    /// transaction, the request would be decided exactly the same way: the
    /// client certificate that authenticated it is still unrevoked, and the
    /// principal (same id, enabled, same credential epoch), what the policy
    /// binds (subject, names, groups, lifetime; a Kubernetes node still a
    /// node) and the CA are unchanged. Whatever revoked or withdrew something
    /// in between (a password change, `node remove`, a revocation) must not
    /// be escaped by a certificate decided before it. Deciding again costs
    /// reads, not a signature.
    fn record_signed(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        actor: &Actor,
        csr: &CertificateRequest,
        req: &IssueRequest,
        signed: Signed,
    ) -> Result<CertificateView> {
        let record = &signed.view.record;
        let changed = || {
            Error::forbidden(format!(
                "{} {}, or what it may be issued, changed while its certificate was being issued; ask again",
                record.principal_kind.as_str(),
                record.principal_name
            ))
        };
        if record.tenant_id != t.id {
            return Err(changed());
        }
        if let Some(serial) = &signed.authenticated_by
            && tx.certificate(&t.id, serial)?.is_none_or(|c| c.revoked_at.is_some())
        {
            return Err(Error::new(
                ErrorCode::InvalidClientCertificate,
                "the TLS client certificate was revoked while the request was being served",
            ));
        }
        let again = self.decide(tx, t, actor, csr, req)?;
        if again.principal.id != record.principal_id
            || again.principal.credential_epoch != signed.credential_epoch
            || again.ca.id != record.ca_id
            || again.binding != signed.binding
        {
            return Err(changed());
        }
        self.record_certificate(tx, t, record)?;
        Ok(signed.view)
    }

    /// Signs what the policy bound with `ca` and records the certificate in
    /// the transaction; the caller audits.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::service) fn sign_and_record(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        actor: &Actor,
        principal: &PrincipalRecord,
        csr: &CertificateRequest,
        binding: &Binding,
        ca: CaRecord,
    ) -> Result<CertificateView> {
        let record = self.sign_leaf(t, actor, principal, csr, binding, &ca)?;
        self.record_certificate(tx, t, &record)?;
        let intermediates = self.intermediates(tx, t, &ca.id)?;
        Ok(CertificateView { record, ca_name: ca.name, intermediates })
    }

    /// Signs what the policy bound with `ca`: the certificate and the record to store.
    fn sign_leaf(
        &self,
        t: &Tenant,
        actor: &Actor,
        principal: &PrincipalRecord,
        csr: &CertificateRequest,
        binding: &Binding,
        ca: &CaRecord,
    ) -> Result<CertificateRecord> {
        if ca.status != CaStatus::Active {
            return Err(Error::new(ErrorCode::CaUnavailable, format!("CA {} is {}", ca.name, ca.status.as_str())));
        }
        let issuer = self.issuer(ca)?;
        let now = self.now_time();
        let not_after = (now + Duration::seconds(binding.ttl_secs)).min(issuer.certificate().not_after());
        let serial = Serial::random().map_err(Error::internal)?;
        let base = self.pki_base();
        let (crl, aia) = (crl_url(&base, &t.domain, &ca.id), cert_url(&base, &t.domain, &ca.id));
        let ocsp = t.policy.ca.ocsp.then(|| ocsp_url(&base, &t.domain));
        // Issuing CAs publish delta CRLs (see `sign_crl`); roots do not.
        let delta = (ca.role == CaRole::Intermediate).then(|| delta_crl_url(&base, &t.domain, &ca.id));
        let der = leaf::issue(
            &issuer,
            &LeafRequest {
                delta_crl_url: delta.as_deref(),
                subject: &binding.subject,
                public_key: csr.public_key(),
                profile: binding.profile,
                not_before: now - CLOCK_SKEW,
                not_after,
                serial: &serial,
                crl_url: &crl,
                ca_issuers_url: &aia,
                ocsp_url: ocsp.as_deref(),
            },
        )
        .map_err(ca_error)?;
        let not_before = (now - CLOCK_SKEW).max(issuer.certificate().not_before());
        Ok(CertificateRecord {
            serial: serial.to_hex(),
            tenant_id: t.id.clone(),
            ca_id: ca.id.clone(),
            principal_id: principal.id.clone(),
            principal_kind: principal.kind,
            principal_name: principal.name.clone(),
            profile: binding.usage.label().to_string(),
            der,
            not_before: not_before.unix_timestamp(),
            not_after: not_after.unix_timestamp(),
            requester: actor.audit_name(),
            created_at: now.unix_timestamp(),
            revoked_at: None,
            revocation_reason: None,
        })
    }

    /// Stores an issued certificate in the transaction.
    fn record_certificate(&self, tx: &mut dyn Tx, t: &Tenant, record: &CertificateRecord) -> Result<()> {
        // A serial collision (2^-120) surfaces as a conflict and nothing is issued.
        tx.insert_certificate(record)?;
        // Users' certificates are directory attributes (userCertificate); a
        // join's or re-enrolment's other changes share this transaction.
        tx.bump_directory_revision(&t.id)?;
        Ok(())
    }

    /// The principal a certificate is for: the requester, or the one named.
    pub(in crate::service) fn subject_principal(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        actor: &Actor,
        req: &IssueRequest,
    ) -> Result<PrincipalRecord> {
        let p = match (&req.principal, actor) {
            (Some(r), _) => resolve(tx, t, r)?,
            (None, Actor::Principal(me)) => tx
                .principal_by_id(&t.id, &me.id)?
                .ok_or_else(|| Error::new(ErrorCode::PrincipalNotFound, "the requesting principal no longer exists"))?,
            (None, Actor::Operator { .. }) => return Err(Error::forbidden("only principals hold certificates")),
        };
        // For someone else: a machine for a service it hosts, CA administrators for anyone.
        if let Actor::Principal(me) = actor
            && me.id != p.id
        {
            if me.kind == PrincipalKind::Machine && p.kind == PrincipalKind::Service {
                if !super::super::hosts::hosts_service(tx, t, &p.id, &me.id)? {
                    return Err(Error::forbidden(format!(
                        "machine {} is not a host of service {}; an administrator adds it with `lightwell service add-host {} {}`",
                        me.name, p.name, p.name, me.name
                    )));
                }
            } else {
                authz::check(actor, Some(&t.domain), Permission::ManageCa)?;
            }
        }
        // Nobody obtains a credential with more rights than their own.
        if let Actor::Principal(me) = actor
            && me.id != p.id
        {
            let theirs = Rank::of(&Graph::load_ancestry(tx, &t.id, &p.id)?.member_of(&p.id));
            if theirs > Rank::of(&me.groups) {
                return Err(Error::forbidden(format!(
                    "{} {} has more rights in the tenant than you ({theirs:?}); only someone with at least those rights may ask for its certificates",
                    p.kind.as_str(),
                    p.name
                )));
            }
        }
        if !p.enabled {
            return Err(Error::new(ErrorCode::AccountDisabled, format!("{} {} is disabled", p.kind.as_str(), p.name)));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lightwell_ca::{KeyAlgorithm, SigningKey, csr};
    use lightwell_store::sqlite::SqliteStore;
    use zeroize::Zeroizing;

    use super::*;
    use crate::service::{LoginScope, NewUser, ServiceConfig};
    use crate::{NoopObserver, clock::SystemClock};

    const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    const TENANT: &str = "corp.example";

    fn password(p: &str) -> Zeroizing<String> {
        Zeroizing::new(p.to_string())
    }

    /// A certificate decided and signed outside the writer is recorded only
    /// if its principal's credentials did not change meanwhile: a password
    /// change revokes the principal's certificates, and one signed in between
    /// must not escape that.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_credential_change_between_decision_and_record_refuses_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("lightwell.db")).unwrap());
        let kek = lightwell_ca::kek::Kek::generate().unwrap();
        let service =
            Service::new(store, Arc::new(SystemClock), &kek, Arc::new(NoopObserver), ServiceConfig::default()).unwrap();
        let operator = Actor::Operator { id: crate::PrincipalId::stored("operator") };
        service.create_tenant(&operator, TENANT, Some(password("Quiet-harbor-0001")), None).await.unwrap();
        let login = |user: &str, pw: &str| {
            service.login(LoginScope::Tenant(TENANT.into()), user.into(), password(pw), LOCALHOST)
        };
        let admin = login("administrator", "Quiet-harbor-0001").await.unwrap().actor;
        let user =
            NewUser { name: "alice".into(), password: Some(password("Sunny-meadow-0001")), ..Default::default() };
        service.create_user(&admin, TENANT, user).await.unwrap();
        let alice = login("alice", "Sunny-meadow-0001").await.unwrap().actor;

        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let req = IssueRequest { csr: csr::create(&key, "alice").unwrap(), ..Default::default() };
        let inner = service.inner.clone();
        let sign = || {
            let (t, prepared) = inner
                .tenant_read(TENANT, |tx, t| {
                    let csr = CertificateRequest::parse(&req.csr).map_err(ca_error)?;
                    Ok((t.clone(), inner.prepare_issue(tx, t, &alice, &csr, &req)?))
                })
                .unwrap();
            let csr = CertificateRequest::parse(&req.csr).unwrap();
            (t.clone(), inner.sign_prepared(&t, &alice, &csr, prepared, None).unwrap())
        };
        let csr = CertificateRequest::parse(&req.csr).unwrap();
        let stored = |t: &Tenant, serial: &str| {
            inner.store.read(|tx| Ok::<_, Error>(tx.certificate(&t.id, serial)?)).unwrap().is_some()
        };

        // Nothing changed in between: recorded.
        let (t, signed) = sign();
        let serial = signed.view.record.serial.clone();
        inner.store.write(|tx| inner.record_signed(tx, &t, &alice, &csr, &req, signed.clone())).unwrap();
        assert!(stored(&t, &serial));

        // The password changes after the decision: refused, nothing stored.
        let (t, signed) = sign();
        let serial = signed.view.record.serial.clone();
        service.set_password(&admin, TENANT, "alice", password("Sunny-meadow-0002"), None).await.unwrap();
        let err = inner.store.write(|tx| inner.record_signed(tx, &t, &alice, &csr, &req, signed.clone())).unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden, "{err}");
        assert!(err.message.contains("changed while its certificate was being issued"), "{err}");
        assert!(!stored(&t, &serial));

        // Another CA becomes the default after the decision: the request
        // would now be decided differently, so it is refused too.
        let alice = login("alice", "Sunny-meadow-0002").await.unwrap().actor;
        let sign_again = || {
            let (t, prepared) = inner
                .tenant_read(TENANT, |tx, t| Ok((t.clone(), inner.prepare_issue(tx, t, &alice, &csr, &req)?)))
                .unwrap();
            (t.clone(), inner.sign_prepared(&t, &alice, &csr, prepared, None).unwrap())
        };
        let (t, signed) = sign_again();
        service.create_intermediate(&admin, TENANT, "issuing-b", vec![], None, true).await.unwrap();
        let err = inner.store.write(|tx| inner.record_signed(tx, &t, &alice, &csr, &req, signed.clone())).unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden, "{err}");
        let (t, signed) = sign_again();
        inner.store.write(|tx| inner.record_signed(tx, &t, &alice, &csr, &req, signed.clone())).unwrap();
        assert_eq!(signed.view.ca_name, "issuing-b");
    }
}
