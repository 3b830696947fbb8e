//! The certificate authority of each tenant: hierarchies, issuance,
//! revocation, CRLs and trust bundles. `lightwell-ca` computes; this module
//! decides and persists, with an audit record in the same transaction as
//! every change.

mod binding;
mod hierarchy;
mod import;
mod issue;
mod mtls;
mod ocsp;
mod revoke;
mod rotate;
mod signer;
mod trust;

use crate::service::Tenant;
use lightwell_ca::crl::RevocationReason;
use lightwell_ca::{CaCertificate, KeyAlgorithm};
use lightwell_proto::ErrorCode;
use lightwell_store::{CaRecord, CaRole, CaStatus, CertificateFilter, CertificateRecord, CrlRecord, Tx};

pub use self::binding::CertificateUse;
pub use self::binding::parse_ttl;
pub(in crate::service) use self::binding::{Binding, checked_ttl, refuse, refuse_extras};
pub(in crate::service) use self::hierarchy::{CachedIssuer, ca_error, parse_name_constraints};
use self::hierarchy::{cert_url, crl_url};
pub use self::import::CaRequestView;
pub(in crate::service) use self::issue::default_issuing_ca;
pub use self::issue::{IssueRequest, Requester};
pub(in crate::service) use self::mtls::VerifiedChain;
pub use self::ocsp::OcspAnswer;
pub(in crate::service) use self::ocsp::OcspState;
pub(in crate::service) use self::revoke::CredentialChange;
pub use self::rotate::MaintenanceReport;
pub use self::signer::SignerPass;
pub(in crate::service) use self::trust::TrustChange;
pub use self::trust::{DEFAULT_TRUST_CHANGE_MAX_BYTES, DEFAULT_TRUST_CHANGE_WINDOW, TrustChanges, TrustUpdate};
use super::{Service, short};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, Permission};
use crate::names::PrincipalRef;
use crate::{CaId, Error, Result};

/// A CA as front ends show it (never its key).
#[derive(Debug, Clone)]
pub struct CaView {
    /// The CA, without its key.
    pub info: CaInfo,
    /// Its parsed certificate.
    pub certificate: CaCertificate,
    /// Name of the CA that signed it.
    pub parent_name: Option<String>,
    /// Plain-HTTP URL of its CRL.
    pub crl_url: String,
    /// Plain-HTTP URL of its certificate.
    pub cert_url: String,
}

/// A CA as front ends may see it: everything but its sealed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaInfo {
    /// Stable id; part of the CA's plain-HTTP URLs.
    pub id: CaId,
    /// Name, unique per tenant regardless of case.
    pub name: String,
    /// The CA that signed this one (`None` for a root).
    pub parent_id: Option<CaId>,
    /// Root or intermediate.
    pub role: CaRole,
    /// The CA certificate, DER.
    pub cert_der: Vec<u8>,
    /// Active, revoked, pending, superseded or retired.
    pub status: CaStatus,
    /// Whether this is the tenant's default issuing CA.
    pub is_default: bool,
    /// When the CA was revoked.
    pub revoked_at: Option<i64>,
    /// Why it was revoked.
    pub revocation_reason: Option<RevocationReason>,
    /// Creation time.
    pub created_at: i64,
}

impl From<CaRecord> for CaInfo {
    fn from(r: CaRecord) -> Self {
        Self {
            id: CaId::stored(r.id),
            name: r.name,
            parent_id: r.parent_id.map(CaId::stored),
            role: r.role,
            cert_der: r.cert_der,
            status: r.status,
            is_default: r.is_default,
            revoked_at: r.revoked_at,
            // The service writes only reason names it parses back.
            revocation_reason: r.revocation_reason.and_then(|why| why.parse().ok()),
            created_at: r.created_at,
        }
    }
}

/// An issued certificate with its chain.
#[derive(Debug, Clone)]
pub struct CertificateView {
    /// The stored certificate.
    pub record: CertificateRecord,
    /// Name of the issuing CA.
    pub ca_name: String,
    /// The certificates between the leaf and the root (issuing CA first, root excluded), DER.
    pub intermediates: Vec<Vec<u8>>,
}

/// Parses a revocation reason name (default `unspecified`).
pub fn parse_reason(reason: Option<&str>) -> Result<RevocationReason> {
    match reason {
        None | Some("") => Ok(RevocationReason::Unspecified),
        Some(r) => r.parse().map_err(|e: lightwell_ca::Error| Error::invalid(e.to_string())),
    }
}

/// Parses a key algorithm name (default `p256`).
pub fn parse_key_type(key_type: Option<&str>) -> Result<KeyAlgorithm> {
    match key_type {
        None | Some("") => Ok(KeyAlgorithm::default()),
        Some(k) => k.parse().map_err(|e: lightwell_ca::Error| Error::new(ErrorCode::UnsupportedKey, e.to_string())),
    }
}

/// The roots peers of a tenant should trust: the trust bundle.
pub(in crate::service) fn bundle_roots(tx: &mut dyn Tx, t: &Tenant) -> Result<Vec<CaRecord>> {
    Ok(tx
        .list_cas(&t.id)?
        .into_iter()
        .filter(|c| {
            c.role == CaRole::Root && matches!(c.status, CaStatus::Active | CaStatus::Pending | CaStatus::Superseded)
        })
        .collect())
}

/// Which of a CA's CRLs (RFC 5280 section 5.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlKind {
    /// The complete CRL (`<id>.crl`).
    Complete,
    /// The delta CRL over a recent complete CRL (`<id>.delta.crl`).
    Delta,
}

fn ca_not_found(name: &str) -> Error {
    Error::new(ErrorCode::CaNotFound, format!("no CA {:?}", short(name)))
}

/// Finds a CA of the tenant by name (any case) or id.
fn find_ca(tx: &mut dyn Tx, t: &Tenant, name_or_id: &str) -> Result<CaRecord> {
    tx.list_cas(&t.id)?
        .into_iter()
        .find(|c| c.id == name_or_id || c.name.eq_ignore_ascii_case(name_or_id))
        .ok_or_else(|| ca_not_found(name_or_id))
}

impl super::Inner {
    pub(in crate::service) fn ca_view(&self, tx: &mut dyn Tx, t: &Tenant, ca: CaRecord) -> Result<CaView> {
        let parent_name = match &ca.parent_id {
            Some(id) => tx.ca(&t.id, id)?.map(|p| p.name),
            None => None,
        };
        let base = self.pki_base();
        Ok(CaView {
            certificate: CaCertificate::from_der(&ca.cert_der).map_err(Error::internal)?,
            parent_name,
            crl_url: crl_url(&base, &t.domain, &ca.id),
            cert_url: cert_url(&base, &t.domain, &ca.id),
            info: CaInfo::from(ca),
        })
    }

    fn certificate_view(&self, tx: &mut dyn Tx, t: &Tenant, c: CertificateRecord) -> Result<CertificateView> {
        let ca_name = tx.ca(&t.id, &c.ca_id)?.map(|ca| ca.name).unwrap_or_default();
        let intermediates = self.intermediates(tx, t, &c.ca_id)?;
        Ok(CertificateView { record: c, ca_name, intermediates })
    }

    /// Certificates between a leaf issued by `ca` and its root (root excluded).
    pub(in crate::service) fn intermediates(&self, tx: &mut dyn Tx, t: &Tenant, ca_id: &str) -> Result<Vec<Vec<u8>>> {
        let mut chain = Vec::new();
        let mut next = Some(ca_id.to_string());
        while let Some(id) = next {
            let Some(ca) = tx.ca(&t.id, &id)? else { break };
            if ca.role == CaRole::Root || chain.len() > 8 {
                break;
            }
            chain.push(ca.cert_der);
            next = ca.parent_id;
        }
        Ok(chain)
    }
}

impl Service {
    /// The CAs of a tenant, oldest first.
    pub async fn list_cas(&self, actor: &Actor, tenant: &str) -> Result<Vec<CaView>> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let cas = tx.list_cas(&t.id)?;
                cas.into_iter().map(|c| inner.ca_view(tx, t, c)).collect()
            })
        })
        .await
    }

    /// One CA, by name or id.
    pub async fn ca(&self, actor: &Actor, tenant: &str, name: &str) -> Result<CaView> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let ca = find_ca(tx, t, &name)?;
                inner.ca_view(tx, t, ca)
            })
        })
        .await
    }

    /// The latest CRL of a CA, by name or id.
    pub async fn ca_crl(&self, actor: &Actor, tenant: &str, name: &str) -> Result<CrlRecord> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let ca = find_ca(tx, t, &name)?;
                tx.crl(&t.id, &ca.id)?.ok_or_else(|| Error::internal(format!("CA {} has no CRL", ca.id)))
            })
        })
        .await
    }

    /// Creates an issuing CA under the tenant's active root.
    pub async fn create_intermediate(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        name_constraints: Vec<String>,
        path_len: Option<u8>,
        make_default: bool,
    ) -> Result<CaView> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let name = crate::names::AccountName::parse(name)?.as_str().to_string();
        let constraints = parse_name_constraints(&name_constraints)?;
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        self.blocking(move |inner| {
            let (t, root, root_issuer) = inner.active_root(&tenant)?;
            let mut new = inner.build_intermediate(&t, &root, &root_issuer, &name, &constraints, path_len)?;
            new.record.is_default = make_default;
            inner.tenant_write(&tenant, |tx, t| {
                if make_default {
                    for mut other in tx.list_cas(&t.id)?.into_iter().filter(|c| c.is_default) {
                        other.is_default = false;
                        inner.apply_trust_change(tx, t, TrustChange::CaUpdated(&other))?;
                    }
                }
                inner.store_cas(tx, t, std::slice::from_ref(&new.record))?;
                let detail = format!("id {}; name constraints [{}]", new.record.id, name_constraints.join(", "));
                inner.audit(
                    tx,
                    t,
                    AuditEvent::success(actor_name.clone(), "ca.create", name.clone()).with_detail(detail),
                )?;
                inner.ca_view(tx, t, new.record.clone())
            })
        })
        .await
    }

    /// Certificates of the tenant: all for CA administrators (optionally of
    /// one principal), only their own for everyone else.
    pub async fn list_certificates(
        &self,
        actor: &Actor,
        tenant: &str,
        principal: Option<PrincipalRef>,
    ) -> Result<Vec<CertificateView>> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let is_admin = authz::check(actor, Some(tenant), Permission::ManageCa).is_ok();
        let (actor, tenant) = (actor.clone(), tenant.to_string());
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let mut filter = CertificateFilter::default();
                if let Some(r) = &principal {
                    filter.principal_id = Some(super::directory::resolve(tx, t, r)?.id);
                }
                if !is_admin {
                    let Actor::Principal(me) = &actor else { return Err(Error::forbidden("not a principal")) };
                    if filter.principal_id.as_ref().is_some_and(|id| id != &me.id) {
                        return Err(Error::forbidden("only CA administrators may list other principals' certificates"));
                    }
                    filter.principal_id = Some(me.id.to_string());
                }
                let certs = tx.list_certificates(&t.id, &filter)?;
                certs.into_iter().map(|c| inner.certificate_view(tx, t, c)).collect()
            })
        })
        .await
    }

    /// One certificate by serial (CA administrators, or its own principal).
    pub async fn certificate(&self, actor: &Actor, tenant: &str, serial: &str) -> Result<CertificateView> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let is_admin = authz::check(actor, Some(tenant), Permission::ManageCa).is_ok();
        let (actor, tenant, serial) = (actor.clone(), tenant.to_string(), serial.trim().to_ascii_lowercase());
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let not_found = || {
                    Error::new(
                        ErrorCode::CertificateNotFound,
                        format!("no certificate with serial {:?}", short(&serial)),
                    )
                };
                let c = tx.certificate(&t.id, &serial)?.ok_or_else(not_found)?;
                let own = matches!(&actor, Actor::Principal(p) if p.id == c.principal_id);
                if !is_admin && !own {
                    return Err(not_found());
                }
                inner.certificate_view(tx, t, c)
            })
        })
        .await
    }

    /// The tenant's trust bundle: its active roots, and during a rotation the
    /// pending or superseded one too (retired and revoked roots are left out). Public.
    pub async fn trust_bundle(&self, tenant: &str) -> Result<Vec<CaView>> {
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let roots = bundle_roots(tx, t)?;
                roots.into_iter().map(|c| inner.ca_view(tx, t, c)).collect()
            })
        })
        .await
    }

    /// The latest CRL (DER) of a CA of `kind`, by id, for the plain-HTTP
    /// PKI listener. Public. A root has no delta CRL.
    pub async fn public_crl(&self, tenant: &str, ca_id: &CaId, kind: CrlKind) -> Result<Vec<u8>> {
        let (tenant, ca_id) = (tenant.to_string(), ca_id.clone());
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                let der = match kind {
                    CrlKind::Complete => tx.crl(&t.id, &ca_id)?.map(|c| c.der),
                    CrlKind::Delta => tx.delta_crl(&t.id, &ca_id)?.map(|d| d.crl.der),
                };
                der.ok_or_else(|| ca_not_found(&ca_id))
            })
        })
        .await
    }

    /// A CA certificate (DER), by id, for the plain-HTTP PKI listener. Public.
    pub async fn public_ca_certificate(&self, tenant: &str, ca_id: &CaId) -> Result<Vec<u8>> {
        let (tenant, ca_id) = (tenant.to_string(), ca_id.clone());
        self.blocking(move |inner| {
            inner.tenant_read(&tenant, |tx, t| {
                tx.ca(&t.id, &ca_id)?.map(|c| c.cert_der).ok_or_else(|| ca_not_found(&ca_id))
            })
        })
        .await
    }
}
