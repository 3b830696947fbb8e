//! Bring-your-own CA: importing an existing root or intermediate with its
//! key, and the enterprise flow where Lightwell generates an intermediate's
//! key and CSR, an enterprise CA signs it, and the signed certificate is
//! installed. Keys are sealed under the KEK like generated ones; nothing here
//! returns or logs a key.

use crate::service::Tenant;
use lightwell_ca::ca::{self, CaSpec};
use lightwell_ca::{CaCertificate, Issuer, KeyAlgorithm, SigningKey, pem};
use lightwell_proto::ErrorCode;
use lightwell_store::{CaRecord, CaRequestRecord, CaRole, CaStatus, StoreError, Tx};
use zeroize::Zeroizing;

use super::hierarchy::ca_error;
use super::trust::TrustChange;
use super::{CaView, Service, parse_key_type};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, Permission};
use crate::names::AccountName;
use crate::service::Inner;
use crate::{Error, Result};

/// An intermediate waiting for an enterprise CA's signature.
#[derive(Debug, Clone)]
pub struct CaRequestView {
    /// Its id (the CA's id once installed).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The PKCS#10 request, PEM, to hand to the enterprise CA.
    pub csr_pem: String,
}

/// Maps what can be wrong with a CA certificate or key brought from outside
/// to `invalid_ca_certificate`; everything else as usual.
fn byo_error(e: lightwell_ca::Error) -> Error {
    use lightwell_ca::Error as E;
    match e {
        E::MalformedCertificate(_)
        | E::NotACa(_)
        | E::CaCannotSignCrls
        | E::KeyMismatch
        | E::CsrKeyMismatch
        | E::SelfSignatureInvalid
        | E::NotValidAt { .. }
        | E::Malformed(_) => Error::new(ErrorCode::InvalidCaCertificate, e.to_string()),
        other => ca_error(other),
    }
}

/// Checks a CA from outside can do what Lightwell will ask of it: sign CRLs.
fn check_usable(issuer: &Issuer) -> Result<()> {
    if !issuer.certificate().can_sign_crls() {
        return Err(byo_error(lightwell_ca::Error::CaCannotSignCrls));
    }
    Ok(())
}

fn check_name_free(tx: &mut dyn Tx, t: &Tenant, name: &str) -> Result<()> {
    let taken =
        tx.list_cas(&t.id)?.iter().any(|c| c.name.eq_ignore_ascii_case(name)) || tx.ca_request(&t.id, name)?.is_some();
    if taken {
        return Err(Error::new(ErrorCode::AlreadyExists, format!("a CA named {name:?} already exists")));
    }
    Ok(())
}

impl Inner {
    /// Makes `ca_id` the only default issuing CA of the tenant.
    pub(super) fn set_default_issuer(&self, tx: &mut dyn Tx, t: &Tenant, ca_id: &str) -> Result<()> {
        for mut ca in tx.list_cas(&t.id)? {
            let should = ca.id == ca_id;
            if ca.is_default != should {
                ca.is_default = should;
                self.apply_trust_change(tx, t, TrustChange::CaUpdated(&ca))?;
            }
        }
        Ok(())
    }

    /// Stores a CA brought from outside (imported or installed), optionally as
    /// the default issuing CA, with its first CRL and an audit record.
    fn store_external_ca(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        record: &CaRecord,
        make_default: bool,
        (actor, action): (&str, &'static str),
    ) -> Result<CaView> {
        check_name_free(tx, t, &record.name)?;
        let subject = x509_parser::parse_x509_certificate(&record.cert_der)
            .map(|(_, c)| c.subject().as_raw().to_vec())
            .map_err(|_| Error::new(ErrorCode::InvalidCaCertificate, "the CA certificate does not parse"))?;
        if lightwell_ca::ocsp::is_responder_name(&subject, &t.domain) {
            return Err(Error::new(
                ErrorCode::InvalidCaCertificate,
                "a CA may not be named like the tenant's OCSP responder (O=Lightwell, OU=<tenant>, CN=OCSP responder)",
            ));
        }
        if tx.list_cas(&t.id)?.iter().any(|c| c.cert_der == record.cert_der) {
            return Err(Error::new(ErrorCode::AlreadyExists, "this CA certificate is already in the tenant"));
        }
        self.store_cas(tx, t, std::slice::from_ref(record))?;
        if make_default {
            self.set_default_issuer(tx, t, &record.id)?;
        }
        let cert = CaCertificate::from_der(&record.cert_der).map_err(Error::internal)?;
        let detail = format!("id {}; role {}; fingerprint {}", record.id, record.role.as_str(), cert.fingerprint());
        self.audit(tx, t, AuditEvent::success(actor, action, record.name.clone()).with_detail(detail))?;
        let stored = tx.ca(&t.id, &record.id)?.ok_or_else(|| Error::internal("stored CA vanished"))?;
        self.ca_view(tx, t, stored)
    }

    /// A CA record for an issuer from outside: a root if self-issued, else an
    /// intermediate whose parent lives outside Lightwell.
    fn external_record(&self, t: &Tenant, id: String, name: &str, issuer: &Issuer) -> Result<CaRecord> {
        let mut record = self.record(t, id, name, issuer, None)?;
        record.role = if issuer.certificate().is_self_issued() { CaRole::Root } else { CaRole::Intermediate };
        record.status = CaStatus::Active;
        Ok(record)
    }
}

impl Service {
    /// Imports an existing CA (a root or an intermediate) with its PKCS#8
    /// private key. Refused unless the certificate is a CA that may sign
    /// CRLs, is valid now, and the key is its key. A root joins the trust
    /// bundle; an intermediate may become the default issuing CA. Needs
    /// Administrators: whoever brought the key keeps a copy.
    pub async fn import_ca(
        &self,
        actor: &Actor,
        tenant: &str,
        certificate_pem: &str,
        key_pem: Zeroizing<String>,
        name: Option<&str>,
        make_default: bool,
    ) -> Result<CaView> {
        authz::check(actor, Some(tenant), Permission::CaKeyHeldOutside)?;
        let name = name.map(|n| AccountName::parse(n).map(|n| n.as_str().to_string())).transpose()?;
        let certificate = CaCertificate::from_pem(certificate_pem).map_err(byo_error)?;
        let key = SigningKey::from_pem(&key_pem).map_err(byo_error)?;
        drop(key_pem);
        if make_default && certificate.is_self_issued() {
            return Err(Error::invalid(
                "a root does not issue leaves; import an intermediate with --default, or create one under this root",
            ));
        }
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        self.blocking(move |inner| {
            let issuer = ca::import(certificate, key, inner.now_time()).map_err(byo_error)?;
            check_usable(&issuer)?;
            let id = uuid::Uuid::new_v4().to_string();
            let name = name.unwrap_or_else(|| format!("imported-{}", &issuer.certificate().fingerprint()[7..15]));
            inner.tenant_write(&tenant, |tx, t| {
                let record = inner.external_record(t, id.clone(), &name, &issuer)?;
                inner.store_external_ca(tx, t, &record, make_default, (&actor_name, "ca.import"))
            })
        })
        .await
    }

    /// Starts an intermediate for an enterprise CA to sign: generates its key
    /// (the tenant root's type unless `key_type` says otherwise) and seals
    /// it, and returns the CSR. Install the signed certificate with
    /// [`Service::install_intermediate`].
    pub async fn request_intermediate(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        path_len: Option<u8>,
        key_type: Option<&str>,
    ) -> Result<CaRequestView> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let name = AccountName::parse(name)?.as_str().to_string();
        let explicit = key_type.filter(|k| !k.is_empty()).map(|k| parse_key_type(Some(k))).transpose()?;
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        self.blocking(move |inner| {
            let (t, root_type) = inner.tenant_read(&tenant, |tx, t| {
                check_name_free(tx, t, &name)?;
                let root =
                    tx.list_cas(&t.id)?.into_iter().find(|c| c.role == CaRole::Root && c.status == CaStatus::Active);
                Ok((t.clone(), root.and_then(|r| super::rotate::key_type_of(&r.cert_der))))
            })?;
            let key_type: KeyAlgorithm = explicit.or(root_type).unwrap_or_default();
            let key = SigningKey::generate(key_type).map_err(ca_error)?;
            let mut spec = CaSpec::intermediate(&t.domain, &format!("{} {name} CA", t.domain));
            spec.path_len = path_len.or(Some(0));
            let csr_der = ca::intermediate_csr(&spec, &key).map_err(ca_error)?;
            let id = uuid::Uuid::new_v4().to_string();
            let sealed_key = inner.kek.seal(id.as_bytes(), &key.to_pkcs8_der()).map_err(Error::internal)?;
            let record = CaRequestRecord {
                id: id.clone(),
                tenant_id: t.id.clone(),
                name: name.clone(),
                csr_der: csr_der.clone(),
                sealed_key,
                created_at: inner.now(),
            };
            inner.tenant_write(&tenant, |tx, t| {
                check_name_free(tx, t, &name)?;
                tx.insert_ca_request(&record).map_err(|e| match e {
                    StoreError::Conflict(_) => {
                        Error::new(ErrorCode::AlreadyExists, format!("a CA named {name:?} already exists"))
                    }
                    other => other.into(),
                })?;
                let detail = format!("id {id}; key {key_type}; waiting for an external signature");
                inner.audit(
                    tx,
                    t,
                    AuditEvent::success(actor_name.clone(), "ca.request", name.clone()).with_detail(detail),
                )?;
                Ok(())
            })?;
            Ok(CaRequestView { id, name, csr_pem: pem::encode("CERTIFICATE REQUEST", &csr_der) })
        })
        .await
    }

    /// Installs the certificate an enterprise CA signed for a pending
    /// intermediate. Refused unless it is a CA certificate for the pending
    /// key, valid now, and able to sign CRLs; then the intermediate becomes
    /// an active CA (optionally the default issuing CA).
    pub async fn install_intermediate(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        certificate_pem: &str,
        make_default: bool,
    ) -> Result<CaView> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let certificate = CaCertificate::from_pem(certificate_pem).map_err(byo_error)?;
        let (actor_name, tenant, name) = (actor.audit_name(), tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let request = tx.ca_request(&t.id, &name)?.ok_or_else(|| {
                    Error::new(
                        ErrorCode::CaNotFound,
                        format!(
                            "no intermediate {:?} waiting for a certificate; start one with `lightwell ca create-intermediate NAME --external`",
                            crate::service::short(&name)
                        ),
                    )
                })?;
                let pkcs8 = inner.kek.open(request.id.as_bytes(), &request.sealed_key).map_err(Error::internal)?;
                let key = SigningKey::from_pkcs8_der(&pkcs8).map_err(Error::internal)?;
                let issuer = ca::install_signed(&request.csr_der, certificate.clone(), key, inner.now_time())
                    .map_err(byo_error)?;
                check_usable(&issuer)?;
                let record = inner.external_record(t, request.id.clone(), &request.name, &issuer)?;
                tx.delete_ca_request(&t.id, &request.id)?;
                inner.store_external_ca(tx, t, &record, make_default, (&actor_name, "ca.install"))
            })
        })
        .await
    }
}
