//! Leaf certificates: identity bound by the service layer, key from the CSR,
//! usage from the profile, signed by an issuing CA after the lint passes.
use std::net::IpAddr;

use rcgen::{CertificateParams, CrlDistributionPoint, IsCa, SanType};
use time::OffsetDateTime;

use crate::issuer::Issuer;
use crate::lint::{self, Expected, Role};
use crate::name::{Attribute, Name};
use crate::profile::Profile;
use crate::public_key::PublicKey;
use crate::serial::Serial;
use crate::signing::{Signer, ToBeSigned};
use crate::spiffe::SpiffeId;
use crate::urls::{authority_info_access, freshest_crl, http_url};
use crate::{Error, timestamp};

/// Who a leaf certifies. The service layer fills this in from the directory
/// after its issuance policy has decided what the requester may have; this
/// crate only checks that each value can be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSubject {
    /// Subject CN (a hostname, user name, service name, `system:node:<host>`).
    pub common_name: Option<String>,
    /// Subject O values, in order (for example Kubernetes groups).
    pub organizations: Vec<String>,
    /// Subject OU: the kind of directory principal (`user`, `machine`,
    /// `service`), so that no two kinds can ever share a subject.
    pub organizational_unit: Option<String>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP address SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// E-mail (rfc822Name) SANs.
    pub emails: Vec<String>,
    /// The one URI SAN, which makes the leaf an X.509-SVID. Every leaf bound
    /// to a directory principal has one; `None` only for certificates whose
    /// contents another system fixes field by field (Kubernetes control-plane
    /// components as kubeadm lays them out), which then carry no URI at all.
    pub spiffe_id: Option<SpiffeId>,
}

/// Everything needed to issue one leaf.
#[derive(Debug, Clone, Copy)]
pub struct LeafRequest<'a> {
    /// Who the certificate is for.
    pub subject: &'a LeafSubject,
    /// The key to certify (from the CSR).
    pub public_key: &'a PublicKey,
    /// Key usage and extended key usage.
    pub profile: Profile,
    /// Start of validity (the caller backdates for clock skew); raised to the
    /// issuer's notBefore if earlier.
    pub not_before: OffsetDateTime,
    /// End of validity; must not be after the issuer's.
    pub not_after: OffsetDateTime,
    /// The serial number (its uniqueness is the store's concern).
    pub serial: &'a Serial,
    /// The plain-HTTP URL of the issuing CA's CRL (CRL Distribution Point).
    pub crl_url: &'a str,
    /// The plain-HTTP URL of the issuing CA's certificate (AIA caIssuers).
    pub ca_issuers_url: &'a str,
    /// The plain-HTTP URL of the OCSP responder that answers for this
    /// certificate (AIA OCSP), if it is to name one.
    pub ocsp_url: Option<&'a str>,
    /// The plain-HTTP URL of the issuing CA's delta CRL (Freshest CRL), if
    /// the CA publishes delta CRLs.
    pub delta_crl_url: Option<&'a str>,
}

/// Issues a leaf certificate and returns its DER.
pub fn issue(issuer: &Issuer, request: &LeafRequest<'_>) -> Result<Vec<u8>, Error> {
    let (params, subject) = layout(issuer, request)?;
    let key = request.public_key;
    let subject_key = rcgen::SubjectPublicKeyInfo::from_der(key.spki_der())?;
    let tbs = ToBeSigned::certificate(&params, &subject_key, &subject, &Signer::issuer(issuer))?;
    lint::certificate(
        &tbs.unsigned(),
        &Expected {
            role: Role::Leaf {
                profile: request.profile,
                key: key.algorithm(),
                svid: request.subject.spiffe_id.is_some(),
            },
            subject_public_key: key.spki_der(),
            issuer: Some(issuer.certificate()),
            delta_crl_url: request.delta_crl_url,
        },
    )?;
    tbs.sign(issuer.key())
}

/// The certificate parameters and subject name of a leaf, after checking
/// the request's times and names can be encoded.
pub(crate) fn layout(issuer: &Issuer, request: &LeafRequest<'_>) -> Result<(CertificateParams, Name), Error> {
    // Backdating for clock skew must not reach before the issuer existed.
    let not_before = timestamp::encodable(request.not_before.max(issuer.certificate().not_before()))?;
    let not_after = timestamp::encodable(request.not_after)?;
    if not_after <= not_before {
        return Err(Error::InvalidTimeWindow("notAfter must be after notBefore"));
    }
    let issuer_not_after = issuer.certificate().not_after();
    if not_after > issuer_not_after {
        return Err(Error::BeyondIssuer { not_after, issuer_not_after });
    }
    let mut params = CertificateParams::default();
    params.serial_number = Some(request.serial.to_rcgen());
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = request.profile.key_usages(request.public_key.algorithm());
    params.extended_key_usages = request.profile.extended_key_usages();
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = subject_alt_names(request.subject)?;
    params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![http_url("CRL URL", request.crl_url)?] }];
    let ocsp = request.ocsp_url.map(|url| http_url("OCSP URL", url)).transpose()?;
    params.custom_extensions =
        vec![authority_info_access(&http_url("CA issuers URL", request.ca_issuers_url)?, ocsp.as_deref())];
    if let Some(url) = request.delta_crl_url {
        params.custom_extensions.push(freshest_crl(&http_url("delta CRL URL", url)?));
    }
    let subject = subject_name(request.subject)?;
    params.distinguished_name = subject.to_rcgen();
    Ok((params, subject))
}

fn subject_name(subject: &LeafSubject) -> Result<Name, Error> {
    let mut name = Name::default();
    for organization in &subject.organizations {
        name.push(Attribute::Organization, organization)?;
    }
    if let Some(unit) = &subject.organizational_unit {
        name.push(Attribute::OrganizationalUnit, unit)?;
    }
    if let Some(cn) = &subject.common_name {
        name.push(Attribute::CommonName, cn)?;
    }
    Ok(name)
}

fn subject_alt_names(subject: &LeafSubject) -> Result<Vec<SanType>, Error> {
    let ia5 = |kind, value: &str| {
        rcgen::string::Ia5String::try_from(value).map_err(|_| Error::InvalidName {
            kind,
            value: value.to_owned(),
            reason: "not ASCII",
        })
    };
    let mut sans = Vec::new();
    for dns in &subject.dns_names {
        if dns.is_empty() {
            return Err(Error::InvalidName { kind: "DNS name", value: dns.clone(), reason: "empty" });
        }
        sans.push(SanType::DnsName(ia5("DNS name", dns)?));
    }
    sans.extend(subject.ip_addresses.iter().copied().map(SanType::IpAddress));
    for email in &subject.emails {
        if !email.contains('@') {
            return Err(Error::InvalidName { kind: "e-mail address", value: email.clone(), reason: "no '@'" });
        }
        sans.push(SanType::Rfc822Name(ia5("e-mail address", email)?));
    }
    if let Some(id) = &subject.spiffe_id {
        sans.push(SanType::URI(ia5("SPIFFE ID", id.as_str())?));
    }
    Ok(sans)
}
