//! Issuance: a CSR in, a recorded certificate out.

use lightwell_ca::Serial;
use lightwell_ca::csr::CertificateRequest;
use lightwell_ca::leaf::{self, LeafRequest};
use lightwell_proto::ErrorCode;
use lightwell_store::{CaRecord, CaStatus, CertificateRecord, PrincipalKind, PrincipalRecord, TenantRecord, Tx};
use time::Duration;

use super::binding::{Binding, bind};
use super::hierarchy::{ca_error, cert_url, crl_url};
use super::{CertificateView, Service};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, Permission};
use crate::service::{Inner, policy_of, short};
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
    /// Issue for this principal instead of the requester (CA administrators only).
    pub principal: Option<(PrincipalKind, String)>,
    /// Issue from this Kubernetes cluster's CA (profiles `k8s-node`, `k8s-node-serving`, `k8s-user`).
    pub cluster: Option<String>,
}

impl Service {
    /// Issues a certificate for the requester (or, for CA administrators, on
    /// behalf of `principal`). The certificate is recorded durably, with its
    /// audit record, before it is returned; every refusal is audited too.
    pub async fn issue_certificate(&self, actor: &Actor, tenant: &str, req: IssueRequest) -> Result<CertificateView> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let Actor::Principal(me) = actor else { return Err(Error::forbidden("only principals hold certificates")) };
        let on_behalf = req.principal.as_ref().is_some_and(|(k, n)| *k != me.kind || !n.eq_ignore_ascii_case(&me.name));
        // A machine may ask for the identity of a service it hosts; that is checked in the transaction.
        let hosted_service = me.kind == PrincipalKind::Machine
            && req.principal.as_ref().is_some_and(|(k, _)| *k == PrincipalKind::Service);
        if on_behalf && !hosted_service {
            authz::check(actor, Some(tenant), Permission::ManageCa)?;
        }
        let (actor, tenant) = (actor.clone(), tenant.to_string());
        self.blocking(move |inner| {
            let actor_name = actor.audit_name();
            // Parse outside the transaction; a refusal is still audited below.
            let parsed = CertificateRequest::parse(&req.csr).map_err(ca_error);
            inner.write_committing_refusal(|tx| {
                let t = super::super::tenant_by_domain(tx, &tenant)?;
                let target = match &req.principal {
                    Some((k, n)) => format!("{}:{}", k.as_str(), short(n)),
                    None => actor_name.clone(),
                };
                let outcome = parsed.clone().and_then(|csr| inner.issue_in_tx(tx, &t, &actor, &csr, &req));
                inner.audit_issuance(tx, &t, &actor_name, target, outcome)
            })
        })
        .await
    }
}

impl Inner {
    /// Audits an issuance attempt in its transaction: a success with its
    /// serial, a refusal with its code (and the refusal still commits);
    /// internal failures abort the transaction instead.
    pub(in crate::service) fn audit_issuance(
        &self,
        tx: &mut dyn Tx,
        t: &TenantRecord,
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
            Err(e) if matches!(e.code, ErrorCode::Internal | ErrorCode::Unavailable) => Err(e),
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

    pub(in crate::service) fn issue_in_tx(
        &self,
        tx: &mut dyn Tx,
        t: &TenantRecord,
        actor: &Actor,
        csr: &CertificateRequest,
        req: &IssueRequest,
    ) -> Result<CertificateView> {
        let principal = self.subject_principal(tx, t, actor, req)?;
        let policy = policy_of(t).ca;
        let (binding, ca) = match &req.cluster {
            Some(cluster) => self.bind_k8s(tx, t, cluster, csr, &principal, req.profile.as_deref(), req.ttl_secs)?,
            None => {
                let binding = bind(csr, &principal, &t.domain, req.profile.as_deref(), req.ttl_secs, &policy)?;
                let ca = tx
                    .list_cas(&t.id)?
                    .into_iter()
                    .find(|c| c.is_default && c.status == CaStatus::Active)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorCode::CaUnavailable,
                            "the tenant has no active default issuing CA; create one with `lightwell ca create-intermediate NAME --default`",
                        )
                    })?;
                (binding, ca)
            }
        };
        self.sign_and_record(tx, t, actor, &principal, csr, &binding, ca)
    }

    /// Signs what the policy bound with `ca` and records the certificate in
    /// the transaction; the caller audits.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::service) fn sign_and_record(
        &self,
        tx: &mut dyn Tx,
        t: &TenantRecord,
        actor: &Actor,
        principal: &PrincipalRecord,
        csr: &CertificateRequest,
        binding: &Binding,
        ca: CaRecord,
    ) -> Result<CertificateView> {
        if ca.status != CaStatus::Active {
            return Err(Error::new(ErrorCode::CaUnavailable, format!("CA {} is {}", ca.name, ca.status.as_str())));
        }
        let issuer = self.issuer(&ca)?;
        let now = self.now_time();
        let not_after = (now + Duration::seconds(binding.ttl_secs)).min(issuer.certificate().not_after());
        let serial = Serial::random().map_err(Error::internal)?;
        let base = self.pki_base();
        let (crl, aia) = (crl_url(&base, &t.domain, &ca.id), cert_url(&base, &t.domain, &ca.id));
        let der = leaf::issue(
            &issuer,
            &LeafRequest {
                subject: &binding.subject,
                public_key: csr.public_key(),
                profile: binding.profile,
                not_before: now - CLOCK_SKEW,
                not_after,
                serial: &serial,
                crl_url: &crl,
                ca_issuers_url: &aia,
            },
        )
        .map_err(ca_error)?;
        let not_before = (now - CLOCK_SKEW).max(issuer.certificate().not_before());
        let record = CertificateRecord {
            serial: serial.to_hex(),
            tenant_id: t.id.clone(),
            ca_id: ca.id.clone(),
            principal_id: principal.id.clone(),
            principal_kind: principal.kind,
            principal_name: principal.name.clone(),
            profile: binding.label.to_string(),
            der,
            not_before: not_before.unix_timestamp(),
            not_after: not_after.unix_timestamp(),
            requester: actor.audit_name(),
            created_at: now.unix_timestamp(),
            revoked_at: None,
            revocation_reason: None,
        };
        // A serial collision (2^-120) surfaces as a conflict and nothing is issued.
        tx.insert_certificate(&record)?;
        // Users' certificates are directory attributes (userCertificate); a
        // join's or re-enrolment's other changes share this transaction.
        tx.bump_directory_revision(&t.id)?;
        let intermediates = self.intermediates(tx, t, &ca.id)?;
        Ok(CertificateView { record, ca_name: ca.name, intermediates })
    }

    /// The principal a certificate is for: the requester, or the one named.
    pub(in crate::service) fn subject_principal(
        &self,
        tx: &mut dyn Tx,
        t: &TenantRecord,
        actor: &Actor,
        req: &IssueRequest,
    ) -> Result<PrincipalRecord> {
        let p = match (&req.principal, actor) {
            (Some((kind, name)), _) => tx.principal(&t.id, *kind, name)?.ok_or_else(|| {
                Error::new(ErrorCode::PrincipalNotFound, format!("no {} {:?}", kind.as_str(), short(name)))
            })?,
            (None, Actor::Principal(me)) => tx
                .principal_by_id(&t.id, &me.id)?
                .ok_or_else(|| Error::new(ErrorCode::PrincipalNotFound, "the requesting principal no longer exists"))?,
            (None, Actor::Operator { .. }) => return Err(Error::forbidden("only principals hold certificates")),
        };
        if !p.enabled {
            return Err(Error::new(ErrorCode::AccountDisabled, format!("{} {} is disabled", p.kind.as_str(), p.name)));
        }
        if let Actor::Principal(me) = actor
            && me.kind == PrincipalKind::Machine
            && p.kind == PrincipalKind::Service
            && !super::super::hosts::hosts_service(tx, t, &p.id, &me.id)?
        {
            return Err(Error::forbidden(format!(
                "machine {} is not a host of service {}; an administrator adds it with `lightwell service add-host {} {}`",
                me.name, p.name, p.name, me.name
            )));
        }
        Ok(p)
    }
}
