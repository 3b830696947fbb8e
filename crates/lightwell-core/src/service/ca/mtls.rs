//! Authentication by TLS client certificate. The TLS handshake only proved
//! possession of the key; here the certificate must chain to one of its
//! tenant's CAs (rustls-webpki path building, clientAuth EKU, validity at the
//! service's clock), be on record, unrevoked, requested by the principal
//! itself (not on its behalf), and belong to an enabled principal. The
//! tenant is the trust domain of the certificate's SPIFFE ID.

use lightwell_ca::CaCertificate;
use lightwell_proto::ErrorCode;
use lightwell_store::{CaRole, CaStatus, CertificateRecord, PrincipalRecord, StoreExt, TenantId, Tx};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::extensions::GeneralName;

use super::{CertificateUse, Service};
use crate::authz::{Actor, principal_name};
use crate::service::auth::actor_for;
use crate::service::{Inner, Tenant, tenant_by_domain};
use crate::{Error, Result};

fn invalid(why: impl Into<String>) -> Error {
    Error::new(
        ErrorCode::InvalidClientCertificate,
        format!("the TLS client certificate is not accepted: {}", why.into()),
    )
}

/// What [`identify`] reads from a leaf: its SPIFFE trust domain, its
/// serial (hex) and its validity.
#[derive(Debug, Clone)]
struct Identified {
    domain: String,
    serial: String,
    not_before: i64,
    not_after: i64,
}

/// The SPIFFE trust domain, serial and validity of a leaf.
fn identify(der: &[u8]) -> Result<Identified> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| invalid("it does not parse"))?;
    let serial = hex::encode(cert.raw_serial());
    let san = cert.subject_alternative_name().map_err(|_| invalid("its subjectAltName does not parse"))?;
    let domain = san
        .iter()
        .flat_map(|s| s.value.general_names.iter())
        .find_map(|n| match n {
            GeneralName::URI(u) => u.strip_prefix("spiffe://").and_then(|r| r.split('/').next()).map(str::to_string),
            _ => None,
        })
        .ok_or_else(|| invalid("it has no SPIFFE ID, so it was not issued by Lightwell"))?;
    let validity = cert.validity();
    Ok(Identified {
        domain,
        serial,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}

/// A client certificate whose chain verified: under which tenant and trust
/// revision, and the time window in which the leaf and every CA it could
/// chain through are all valid.
///
/// Every change of a tenant's CAs moves its trust revision (`ca::trust`), so
/// while the revision is the one recorded here the same chain would verify
/// again at any time inside the window; path validation (two ECDSA
/// verifications and parsing every CA) is then skipped. Whether the leaf is
/// on record, unrevoked and its principal enabled is still read on every
/// request, so revocation takes effect exactly as before.
#[derive(Debug, Clone)]
pub(in crate::service) struct VerifiedChain {
    tenant_id: String,
    trust_revision: i64,
    leaf: Identified,
    valid_from: i64,
    valid_until: i64,
}

impl Service {
    /// Resolves a TLS client certificate chain (leaf first) to the actor it authenticates.
    pub async fn authenticate_certificate(&self, chain: Vec<Vec<u8>>) -> Result<Actor> {
        self.blocking(move |inner| inner.authenticate_certificate(&chain)).await
    }
}

impl Inner {
    fn authenticate_certificate(&self, chain: &[Vec<u8>]) -> Result<Actor> {
        self.store.read(|tx| self.authenticate_certificate_in(tx, chain)).map(|(actor, _)| actor)
    }

    /// Authenticates a client certificate chain in the caller's read
    /// transaction: the actor, and the serial of the leaf that authenticated it.
    pub(in crate::service) fn authenticate_certificate_in(
        &self,
        tx: &mut dyn Tx,
        chain: &[Vec<u8>],
    ) -> Result<(Actor, String)> {
        let (t, record, p) = self.verified_certificate_in(tx, chain)?;
        // A certificate someone else obtained for this principal (an
        // administrator on its behalf, a machine for a service it hosts) was
        // never proof that the principal holds the key: it identifies the
        // principal to other software, never to Lightwell.
        if record.requester != principal_name(p.kind, &p.name) {
            return Err(invalid(format!(
                "it was issued to {} at the request of {}; only a certificate a principal requested itself authenticates it",
                principal_name(p.kind, &p.name),
                record.requester
            )));
        }
        if !p.enabled {
            return Err(Error::new(ErrorCode::AccountDisabled, format!("{} {} is disabled", p.kind.as_str(), p.name)));
        }
        Ok((actor_for(tx, Some(&t), &p)?, record.serial))
    }

    /// A client certificate chain checked in the caller's read transaction
    /// as [`Self::authenticate_certificate_in`] checks it, except for who
    /// requested it and whether its principal is enabled (the caller's to
    /// check): issued by the tenant's CA for a directory use, not revoked,
    /// valid now, its principal existing. For the
    /// OpenID provider's `tls_client_auth`, where an administrator's client
    /// registration says which principal's certificates may speak for it
    /// (the one the agent keeps for a service it hosts included).
    pub(in crate::service) fn verified_certificate_in(
        &self,
        tx: &mut dyn Tx,
        chain: &[Vec<u8>],
    ) -> Result<(Tenant, CertificateRecord, PrincipalRecord)> {
        let leaf = chain.first().ok_or_else(|| invalid("no certificate was presented"))?;
        let cached = self.chains.get(leaf.as_slice());
        let id = match &cached {
            Some(c) => c.leaf.clone(),
            None => identify(leaf)?,
        };
        let now = self.now();
        let t = tenant_by_domain(tx, &id.domain).map_err(|_| invalid("its tenant does not exist"))?;
        let record = tx
            .certificate(&t.id, &id.serial)?
            .filter(|c| &c.der == leaf)
            .ok_or_else(|| invalid("it was not issued by this tenant's CA"))?;
        if record.revoked_at.is_some() {
            return Err(invalid("it is revoked"));
        }
        match CertificateUse::parse(&record.profile) {
            Some(u) if u.authenticates() => {}
            Some(_) => return Err(invalid("it is a Kubernetes certificate, valid for its cluster only")),
            None => return Err(invalid("it was issued for a use this server does not know")),
        }
        let trust_revision = tx.trust_revision(&t.id)?;
        let verified = cached.as_ref().is_some_and(|c| {
            c.tenant_id == t.id.as_str()
                && c.trust_revision == trust_revision
                && (c.valid_from..=c.valid_until).contains(&now)
        });
        if !verified {
            let (valid_from, valid_until) = self.verify_chain(tx, &t.id, leaf, now, (id.not_before, id.not_after))?;
            let entry = VerifiedChain {
                tenant_id: t.id.as_str().to_string(),
                trust_revision,
                leaf: id.clone(),
                valid_from,
                valid_until,
            };
            self.chains.insert(leaf.clone(), entry);
        }
        let p = tx
            .principal_by_id(&t.id, &record.principal_id)?
            .ok_or_else(|| invalid("its principal no longer exists"))?;
        Ok((t, record, p))
    }

    /// Path validation of a leaf against the tenant's unrevoked CAs
    /// (rustls-webpki: chain, signatures, validity, clientAuth EKU). Given
    /// the leaf's validity, returns the window in which the leaf and every
    /// one of those CAs valid now are valid.
    fn verify_chain(
        &self,
        tx: &mut dyn Tx,
        tenant: &TenantId,
        leaf: &[u8],
        now: i64,
        (mut valid_from, mut valid_until): (i64, i64),
    ) -> Result<(i64, i64)> {
        let cas: Vec<_> = tx.list_cas(tenant)?.into_iter().filter(|c| c.status != CaStatus::Revoked).collect();
        // Every CA a path valid now can go through is valid now: the window
        // ends when the first of those expires. Expired CAs (a retired root)
        // and ones that do not parse cannot be on such a path.
        for ca in &cas {
            let Ok(cert) = CaCertificate::from_der(&ca.cert_der) else { continue };
            let (from, until) = (cert.not_before().unix_timestamp(), cert.not_after().unix_timestamp());
            if (from..=until).contains(&now) {
                valid_from = valid_from.max(from);
                valid_until = valid_until.min(until);
            }
        }
        let anchors: Vec<_> = cas
            .iter()
            .filter(|c| c.role == CaRole::Root)
            .filter_map(|c| {
                let der = CertificateDer::from(c.cert_der.as_slice());
                webpki::anchor_from_trusted_cert(&der).ok().map(|a| a.to_owned())
            })
            .collect();
        let intermediates: Vec<CertificateDer<'_>> = cas
            .iter()
            .filter(|c| c.role == CaRole::Intermediate)
            .map(|c| CertificateDer::from(c.cert_der.as_slice()))
            .collect();
        let leaf_der = CertificateDer::from(leaf);
        let ee = webpki::EndEntityCert::try_from(&leaf_der).map_err(|_| invalid("it does not parse"))?;
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(u64::try_from(now).unwrap_or(0)));
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            time,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::CertExpired { .. } => invalid("it has expired"),
            webpki::Error::CertNotValidYet { .. } => invalid("it is not valid yet"),
            other => invalid(format!("its chain does not verify ({other})")),
        })?;
        Ok((valid_from, valid_until))
    }
}
