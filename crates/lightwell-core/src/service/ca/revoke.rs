//! Revocation: one certificate, every certificate of a principal, an issuing
//! CA with everything under it; automatic revocation when a principal's
//! credentials change; CRL refresh. A revocation re-signs the affected CRLs
//! in the same transaction, so the next CRL served lists it — unless a CRL
//! is large (see [`Inner::crl_changed`]): then the revocation is
//! acknowledged at commit and the CRL signer (`signer.rs`) re-signs it
//! right after.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use crate::service::Tenant;
use lightwell_ca::crl::RevocationReason;
use lightwell_proto::ErrorCode;
use lightwell_store::{CaRecord, CaRole, CaStatus, CertificateFilter, PrincipalKind, PrincipalRecord, StoreExt, Tx};

use super::CertificateUse;
use super::trust::TrustChange;
use super::{Service, find_ca, parse_reason};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, Permission};
use crate::names::PrincipalRef;
use crate::service::{Inner, short};
use crate::{Error, Result};

impl Inner {
    /// Revokes the listed certificates (skipping revoked ones) and re-signs
    /// the CRLs of their CAs (or marks the large ones for the signer).
    /// Returns the serials revoked now.
    pub(in crate::service) fn revoke_serials(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        certs: &[(String, String)],
        reason: RevocationReason,
    ) -> Result<Vec<String>> {
        let now = self.now();
        let mut revoked = Vec::new();
        let mut cas = BTreeSet::new();
        for (serial, ca_id) in certs {
            if tx.revoke_certificate(&t.id, serial, now, reason.as_str())? {
                revoked.push(serial.clone());
                cas.insert(ca_id.clone());
            }
        }
        for ca_id in cas {
            self.crl_changed(tx, t, &ca_id)?;
        }
        Ok(revoked)
    }

    /// A CA's revocations changed in this transaction: re-signs its CRL here
    /// if it is small, so the next CRL served lists the change; if it is
    /// large, marks it for the CRL signer, which re-signs it outside any
    /// write transaction right after the commit. Signing a million entries
    /// takes seconds, and every writer of the store would wait for it.
    pub(in crate::service) fn crl_changed(&self, tx: &mut dyn Tx, t: &Tenant, ca_id: &str) -> Result<()> {
        let now = self.now();
        if tx.revoked_entries_exceed(&t.id, ca_id, now, self.crl_sync_limit())? {
            tx.mark_crl_pending(&t.id, ca_id, now)?;
            // The signer is woken once this work returns, after the commit (`Service::blocking`).
            self.crl_marks.fetch_add(1, Ordering::SeqCst);
            Ok(())
        } else {
            self.regenerate_crl(tx, t, ca_id).map(drop)
        }
    }

    /// Revokes an issuing CA and every certificate it issued, and re-signs
    /// its CRL and its parent's. The caller audits.
    pub(in crate::service) fn revoke_ca_in_tx(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        mut ca: CaRecord,
        reason: RevocationReason,
    ) -> Result<Vec<String>> {
        if ca.role == CaRole::Root {
            return Err(Error::invalid("a root CA cannot be revoked; rotate it with `lightwell ca rotate`"));
        }
        if ca.status == CaStatus::Revoked {
            return Err(Error::new(ErrorCode::CaUnavailable, format!("CA {} is already revoked", ca.name)));
        }
        let now = self.now();
        ca.status = CaStatus::Revoked;
        ca.is_default = false;
        ca.revoked_at = Some(now);
        ca.revocation_reason = Some(reason.as_str().to_string());
        self.apply_trust_change(tx, t, TrustChange::CaUpdated(&ca))?;
        let filter = CertificateFilter { ca_id: Some(ca.id.clone()), revoked: Some(false), ..Default::default() };
        let certs: Vec<_> = tx.list_certificates(&t.id, &filter)?.into_iter().map(|c| (c.serial, c.ca_id)).collect();
        let revoked = self.revoke_serials(tx, t, &certs, reason)?;
        // The CA's own CRL is re-signed even when it issued nothing, then the
        // parent's (a root's CRL lists only its intermediates: always small).
        self.crl_changed(tx, t, &ca.id)?;
        if let Some(parent) = &ca.parent_id {
            self.regenerate_crl(tx, t, parent)?;
        }
        Ok(revoked)
    }

    /// Revokes every unrevoked certificate of a principal.
    pub(in crate::service) fn revoke_principal(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        principal_id: &str,
        reason: RevocationReason,
    ) -> Result<Vec<String>> {
        let filter = CertificateFilter {
            principal_id: Some(principal_id.to_string()),
            revoked: Some(false),
            ..Default::default()
        };
        let certs: Vec<_> = tx.list_certificates(&t.id, &filter)?.into_iter().map(|c| (c.serial, c.ca_id)).collect();
        self.revoke_serials(tx, t, &certs, reason)
    }

    /// The directory's hook: when a principal's password changes or it is
    /// disabled or deleted, its certificates are revoked in the same
    /// transaction (tenant policy `ca.revoke_on_credential_change`, on by default).
    pub(in crate::service) fn revoke_on_credential_change(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        p: &PrincipalRecord,
        actor: &str,
        cause: CredentialChange,
    ) -> Result<()> {
        let reason = cause.reason();
        let mut revoked = Vec::new();
        if cause != CredentialChange::Password {
            // Workload SVIDs go with their service and with the machine
            // holding them, whatever the tenant policy: a disabled or
            // deleted host or service must not keep workloads' identities.
            let svid = CertificateUse::WorkloadSvid.label();
            let filter = match p.kind {
                PrincipalKind::Machine => CertificateFilter {
                    requester: Some(authz::principal_name(p.kind, &p.name)),
                    revoked: Some(false),
                    ..Default::default()
                },
                _ => CertificateFilter { principal_id: Some(p.id.clone()), revoked: Some(false), ..Default::default() },
            };
            let svids: Vec<_> = tx
                .list_certificates(&t.id, &filter)?
                .into_iter()
                .filter(|c| c.profile == svid)
                .map(|c| (c.serial, c.ca_id))
                .collect();
            revoked = self.revoke_serials(tx, t, &svids, reason)?;
        }
        if t.policy.ca.revoke_on_credential_change {
            revoked.extend(self.revoke_principal(tx, t, &p.id, reason)?);
        }
        if !revoked.is_empty() {
            let target = format!("{}:{}", p.kind.as_str(), p.name);
            let detail = format!("{}; reason {reason}; serials {}", cause.as_str(), revoked.join(" "));
            self.audit(tx, t, AuditEvent::success(actor, "certificate.revoke", target).with_detail(detail))?;
        }
        Ok(())
    }
}

/// Why a principal's credentials changed, which revokes its certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::service) enum CredentialChange {
    /// Its password was changed or reset: the old certificates are superseded.
    Password,
    /// It was disabled.
    Disabled,
    /// It was deleted.
    Deleted,
}

impl CredentialChange {
    /// The RFC 5280 reason the revocation carries.
    fn reason(self) -> RevocationReason {
        match self {
            Self::Password => RevocationReason::Superseded,
            Self::Disabled | Self::Deleted => RevocationReason::PrivilegeWithdrawn,
        }
    }

    /// How the audit record says it.
    fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password changed",
            Self::Disabled => "principal disabled",
            Self::Deleted => "principal deleted",
        }
    }
}

impl Service {
    /// Revokes one certificate by serial: CA administrators any, a principal its own.
    pub async fn revoke_certificate(
        &self,
        actor: &Actor,
        tenant: &str,
        serial: &str,
        reason: Option<&str>,
    ) -> Result<Vec<String>> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let reason = parse_reason(reason)?;
        let is_admin = authz::check(actor, Some(tenant), Permission::ManageCa).is_ok();
        let serial = serial.trim().to_ascii_lowercase();
        let (actor, tenant) = (actor.clone(), tenant.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let not_found = || {
                    Error::new(
                        ErrorCode::CertificateNotFound,
                        format!("no certificate with serial {:?}", short(&serial)),
                    )
                };
                let cert = tx.certificate(&t.id, &serial)?.ok_or_else(not_found)?;
                let own = matches!(&actor, Actor::Principal(p) if p.id == cert.principal_id);
                if !is_admin && !own {
                    return Err(Error::forbidden("only CA administrators may revoke other principals' certificates"));
                }
                if cert.revoked_at.is_some() {
                    return Ok(vec![]);
                }
                let revoked = inner.revoke_serials(tx, t, &[(cert.serial.clone(), cert.ca_id.clone())], reason)?;
                let ev = AuditEvent::success(actor.audit_name(), "certificate.revoke", serial.clone())
                    .with_detail(format!("reason {reason}"));
                inner.audit(tx, t, ev)?;
                let mut revoked = revoked;
                if reason == RevocationReason::KeyCompromise {
                    revoked.extend(inner.compromised(tx, t, &cert.principal_id, &actor.audit_name())?);
                }
                Ok(revoked)
            })
        })
        .await
    }

    /// Revokes every certificate of a principal: CA administrators anyone's,
    /// a principal its own.
    pub async fn revoke_principal_certificates(
        &self,
        actor: &Actor,
        tenant: &str,
        principal: PrincipalRef,
        reason: Option<&str>,
    ) -> Result<Vec<String>> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let reason = parse_reason(reason)?;
        let (actor, actor_name, tenant) = (actor.clone(), actor.audit_name(), tenant.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let p = super::super::directory::resolve(tx, t, &principal)?;
                // Its own certificates anyone may revoke; others' only CA administrators.
                if !matches!(&actor, Actor::Principal(me) if me.id == p.id) {
                    authz::check(&actor, Some(&t.domain), Permission::ManageCa)?;
                }
                let revoked = inner.revoke_principal(tx, t, &p.id, reason)?;
                let detail = format!("reason {reason}; serials {}", revoked.join(" "));
                let target = format!("{}:{}", p.kind.as_str(), p.name);
                inner.audit(
                    tx,
                    t,
                    AuditEvent::success(actor_name.clone(), "certificate.revoke", target).with_detail(detail),
                )?;
                let mut revoked = revoked;
                if reason == RevocationReason::KeyCompromise {
                    revoked.extend(inner.compromised(tx, t, &p.id, &actor_name)?);
                }
                Ok(revoked)
            })
        })
        .await
    }

    /// Revokes an issuing CA and every certificate it issued; its parent's CRL
    /// lists the CA, its own CRL lists the certificates. Roots are replaced
    /// by rotation, not revoked.
    pub async fn revoke_ca(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        reason: Option<&str>,
    ) -> Result<Vec<String>> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let reason = parse_reason(reason)?;
        let (actor_name, tenant, name) = (actor.audit_name(), tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let ca = find_ca(tx, t, &name)?;
                let ca_name = ca.name.clone();
                let revoked = inner.revoke_ca_in_tx(tx, t, ca, reason)?;
                let detail = format!("reason {reason}; {} certificates revoked", revoked.len());
                inner.audit(
                    tx,
                    t,
                    AuditEvent::success(actor_name.clone(), "ca.revoke", ca_name.clone()).with_detail(detail),
                )?;
                Ok(revoked)
            })
        })
        .await
    }

    /// Re-signs the CRL of every CA not yet retired (part of the hourly job):
    /// small ones here, large ones by the CRL signer, outside the write
    /// transaction. Returns how many were signed or handed to the signer. A
    /// retired CA's CRL stays as last signed: nothing under it is valid any
    /// more and no peer trusts it.
    pub async fn refresh_crls(&self) -> Result<usize> {
        self.blocking(|inner| {
            let tenants = inner.store.read(|tx| tx.list_tenants().map_err(Error::from))?;
            let tenants: Vec<Tenant> = tenants.iter().map(Tenant::from).collect();
            let mut count = 0;
            for tenant in tenants {
                count += inner.store.write(|tx| {
                    let cas: Vec<_> =
                        tx.list_cas(&tenant.id)?.into_iter().filter(|c| c.status != CaStatus::Retired).collect();
                    for ca in &cas {
                        inner.crl_changed(tx, &tenant, &ca.id)?;
                    }
                    Ok::<_, Error>(cas.len())
                })?;
            }
            Ok(count)
        })
        .await
    }
}
