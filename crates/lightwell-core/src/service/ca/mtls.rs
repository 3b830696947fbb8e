//! Authentication by TLS client certificate. The TLS handshake only proved
//! possession of the key; here the certificate must chain to one of its
//! tenant's CAs (rustls-webpki path building, clientAuth EKU, validity at the
//! service's clock), be on record, unrevoked, and belong to an enabled
//! principal. The tenant is the trust domain of the certificate's SPIFFE ID.

use lightwell_proto::ErrorCode;
use lightwell_store::{CaRole, CaStatus, StoreExt};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::extensions::GeneralName;

use super::Service;
use crate::authz::Actor;
use crate::service::auth::actor_for;
use crate::service::{Inner, tenant_by_domain};
use crate::{Error, Result};

fn invalid(why: impl Into<String>) -> Error {
    Error::new(
        ErrorCode::InvalidClientCertificate,
        format!("the TLS client certificate is not accepted: {}", why.into()),
    )
}

/// The SPIFFE trust domain and the serial (hex) of a leaf.
fn identify(der: &[u8]) -> Result<(String, String)> {
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
    Ok((domain, serial))
}

impl Service {
    /// Resolves a TLS client certificate chain (leaf first) to the actor it authenticates.
    pub async fn authenticate_certificate(&self, chain: Vec<Vec<u8>>) -> Result<Actor> {
        self.blocking(move |inner| inner.authenticate_certificate(&chain)).await
    }
}

impl Inner {
    fn authenticate_certificate(&self, chain: &[Vec<u8>]) -> Result<Actor> {
        let leaf = chain.first().ok_or_else(|| invalid("no certificate was presented"))?;
        let (domain, serial) = identify(leaf)?;
        let now = self.now();
        self.store.read(|tx| {
            let t = tenant_by_domain(tx, &domain).map_err(|_| invalid("its tenant does not exist"))?;
            let record = tx
                .certificate(&t.id, &serial)?
                .filter(|c| &c.der == leaf)
                .ok_or_else(|| invalid("it was not issued by this tenant's CA"))?;
            if record.revoked_at.is_some() {
                return Err(invalid("it is revoked"));
            }
            // Kubernetes identities (kubeconfigs, kubelet and control-plane certificates) are for
            // the cluster only: a copied kubeconfig must not be a Lightwell credential.
            if record.profile.starts_with("k8s-") {
                return Err(invalid("it is a Kubernetes certificate, valid for its cluster only"));
            }
            let cas = tx.list_cas(&t.id)?;
            let usable = |s: CaStatus| s != CaStatus::Revoked;
            let anchors: Vec<_> = cas
                .iter()
                .filter(|c| c.role == CaRole::Root && usable(c.status))
                .filter_map(|c| {
                    let der = CertificateDer::from(c.cert_der.as_slice());
                    webpki::anchor_from_trusted_cert(&der).ok().map(|a| a.to_owned())
                })
                .collect();
            let intermediates: Vec<CertificateDer<'_>> = cas
                .iter()
                .filter(|c| c.role == CaRole::Intermediate && usable(c.status))
                .map(|c| CertificateDer::from(c.cert_der.clone()))
                .collect();
            let leaf_der = CertificateDer::from(leaf.as_slice());
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
            let p = tx
                .principal_by_id(&t.id, &record.principal_id)?
                .ok_or_else(|| invalid("its principal no longer exists"))?;
            if !p.enabled {
                return Err(Error::new(
                    ErrorCode::AccountDisabled,
                    format!("{} {} is disabled", p.kind.as_str(), p.name),
                ));
            }
            actor_for(tx, Some(&t), &p)
        })
    }
}
