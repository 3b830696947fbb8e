//! Tenant CA hierarchies: self-signed roots, intermediates (issuing CAs)
//! signed by a root or another CA, CSRs for intermediates that an enterprise
//! CA signs, and the checks on CA certificates brought in from outside.
use rcgen::{BasicConstraints, CertificateParams, CrlDistributionPoint, IsCa, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};

use crate::constraints::NameConstraints;
use crate::csr::CertificateRequest;
use crate::issuer::{self, CaCertificate, Issuer};
use crate::keys::SigningKey;
use crate::lint::{self, Expected, Role};
use crate::name::Name;
use crate::serial::Serial;
use crate::signing::{Signer, ToBeSigned};
use crate::urls::{authority_info_access, http_url};
use crate::{Error, fingerprint, timestamp};

/// Default lifetime of a root CA.
pub const ROOT_VALIDITY: Duration = Duration::days(3650);
/// Default lifetime of an intermediate (issuing) CA.
pub const INTERMEDIATE_VALIDITY: Duration = Duration::days(1825);
/// CA certificates start this long before `now`, for clock skew.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// id-ce-nameConstraints (2.5.29.30).
const NAME_CONSTRAINTS_OID: &[u64] = &[2, 5, 29, 30];

/// What a new CA looks like. Its subject is `O=Lightwell, OU=<tenant>, CN=<common_name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSpec {
    /// The tenant's domain, for example `corp.example`.
    pub tenant: String,
    /// The CA's name, for example `corp.example root CA`.
    pub common_name: String,
    /// Requested lifetime; an intermediate's is clipped to its parent's notAfter.
    pub validity: Duration,
    /// basicConstraints pathLenConstraint; `None` leaves the path length unconstrained.
    pub path_len: Option<u8>,
    /// Name constraints (permitted subtrees); empty for none.
    pub name_constraints: NameConstraints,
}

impl CaSpec {
    /// A root with the default lifetime, no path length limit and no name constraints.
    pub fn root(tenant: &str, common_name: &str) -> Self {
        Self::new(tenant, common_name, ROOT_VALIDITY, None)
    }

    /// An issuing CA with the default lifetime that may sign only leaves (pathLen 0).
    pub fn intermediate(tenant: &str, common_name: &str) -> Self {
        Self::new(tenant, common_name, INTERMEDIATE_VALIDITY, Some(0))
    }

    fn new(tenant: &str, common_name: &str, validity: Duration, path_len: Option<u8>) -> Self {
        Self {
            tenant: tenant.to_owned(),
            common_name: common_name.to_owned(),
            validity,
            path_len,
            name_constraints: NameConstraints::default(),
        }
    }

    fn params(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<(CertificateParams, Name), Error> {
        let subject = Name::lightwell_ca(&self.tenant, &self.common_name)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = subject.to_rcgen();
        params.serial_number = Some(Serial::random()?.to_rcgen());
        params.not_before = not_before;
        params.not_after = not_after;
        params.is_ca = IsCa::Ca(self.path_len.map_or(BasicConstraints::Unconstrained, BasicConstraints::Constrained));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        if !self.name_constraints.is_empty() {
            let mut ext = rcgen::CustomExtension::from_oid_content(
                NAME_CONSTRAINTS_OID,
                self.name_constraints.extension_value()?,
            );
            ext.set_criticality(true);
            params.custom_extensions.push(ext);
        }
        Ok((params, subject))
    }
}

/// Where relying parties find the parent's CRL and certificate; an
/// intermediate carries them as CRL Distribution Point and AIA caIssuers.
/// The CDP is required: the parent's CRL names its own URL in its Issuing
/// Distribution Point, and OpenSSL only applies such a CRL to certificates
/// whose CDP matches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentLinks<'a> {
    /// Plain-HTTP URL of the parent's CRL.
    pub crl_url: &'a str,
    /// Plain-HTTP URL of the parent's certificate.
    pub ca_issuers_url: &'a str,
}

/// Creates a self-signed root CA valid from `now - CLOCK_SKEW` for `spec.validity`.
pub fn create_root(spec: &CaSpec, key: SigningKey, now: OffsetDateTime) -> Result<Issuer, Error> {
    let not_before = timestamp::encodable(timestamp::sub(now, CLOCK_SKEW)?)?;
    let not_after = timestamp::encodable(timestamp::add(now, spec.validity)?)?;
    if not_after <= not_before {
        return Err(Error::InvalidTimeWindow("CA validity must be positive"));
    }
    let (params, subject) = spec.params(not_before, not_after)?;
    let subject_der = subject.to_der();
    let key_id = fingerprint::sha256(&key.public_key_der())[..20].to_vec();
    let signer = Signer { name_der: &subject_der, key_id: &key_id, key: &key };
    let der = sign_ca(&params, &subject, &key, &signer, None)?;
    Issuer::new(CaCertificate::from_der(&der)?, key)
}

/// Creates an intermediate CA for `key`, signed by `parent`. Its validity is
/// clipped to the parent's; its path length must fit under the parent's.
pub fn create_intermediate(
    spec: &CaSpec,
    key: SigningKey,
    parent: &Issuer,
    links: ParentLinks<'_>,
    now: OffsetDateTime,
) -> Result<Issuer, Error> {
    let parent_cert = parent.certificate();
    parent_cert.check_valid_at(now)?;
    if let Some(parent_len) = parent_cert.path_len_constraint() {
        // The new CA uses one step of the parent's path length and must leave itself less.
        if spec.path_len.is_none_or(|n| u32::from(n) >= parent_len) {
            return Err(Error::PathLength { parent: parent_len });
        }
    }
    let not_before = timestamp::encodable(timestamp::sub(now, CLOCK_SKEW)?.max(parent_cert.not_before()))?;
    let not_after = timestamp::encodable(timestamp::add(now, spec.validity)?.min(parent_cert.not_after()))?;
    if not_after <= not_before {
        return Err(Error::InvalidTimeWindow("CA validity must be positive"));
    }
    let (mut params, subject) = spec.params(not_before, not_after)?;
    params.use_authority_key_identifier_extension = true;
    params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![http_url("CRL URL", links.crl_url)?] }];
    params.custom_extensions.push(authority_info_access(&http_url("CA issuers URL", links.ca_issuers_url)?, None));
    let der = sign_ca(&params, &subject, &key, &Signer::issuer(parent), Some(parent_cert))?;
    Issuer::new(CaCertificate::from_der(&der)?, key)
}

/// Lays out, lints and signs a CA certificate for `subject_key`.
fn sign_ca(
    params: &CertificateParams,
    subject: &Name,
    subject_key: &SigningKey,
    signer: &Signer<'_>,
    issuer: Option<&CaCertificate>,
) -> Result<Vec<u8>, Error> {
    let tbs = ToBeSigned::certificate(params, subject_key.pair(), subject, signer)?;
    let expected =
        Expected { delta_crl_url: None, role: Role::Ca, subject_public_key: &subject_key.public_key_der(), issuer };
    lint::certificate(&tbs.unsigned(), &expected)?;
    tbs.sign(signer.key)
}

/// A PKCS#10 request (DER) for an intermediate that an enterprise CA will
/// sign. It asks for the spec's subject, CA:true with its path length, and
/// keyCertSign + cRLSign; validity and name constraints are the signing CA's
/// to decide. Install the answer with [`install_signed`].
pub fn intermediate_csr(spec: &CaSpec, key: &SigningKey) -> Result<Vec<u8>, Error> {
    let subject = Name::lightwell_ca(&spec.tenant, &spec.common_name)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject.to_rcgen();
    params.is_ca = IsCa::Ca(spec.path_len.map_or(BasicConstraints::Unconstrained, BasicConstraints::Constrained));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params.serialize_request(key.pair())?.der().to_vec())
}

/// Accepts the certificate an enterprise CA returned for [`intermediate_csr`]:
/// it must be a CA, certify the CSR's key (which must be `key`), and be valid at `now`.
pub fn install_signed(
    csr_der: &[u8],
    certificate: CaCertificate,
    key: SigningKey,
    now: OffsetDateTime,
) -> Result<Issuer, Error> {
    let request = CertificateRequest::parse(csr_der)?;
    if request.public_key().spki_der() != key.public_key_der() {
        return Err(Error::KeyMismatch);
    }
    if certificate.public_key_der() != request.public_key().spki_der() {
        return Err(Error::CsrKeyMismatch);
    }
    import(certificate, key, now)
}

/// Accepts an existing CA (a root or an intermediate) with its key: it must
/// be a CA, the key must be its key, it must be valid at `now`, and a
/// self-signed certificate's signature must verify.
pub fn import(certificate: CaCertificate, key: SigningKey, now: OffsetDateTime) -> Result<Issuer, Error> {
    certificate.check_valid_at(now)?;
    if certificate.is_self_issued() {
        let parsed = issuer::parse(certificate.der())?;
        parsed.verify_signature(None).map_err(|_| Error::SelfSignatureInvalid)?;
    }
    Issuer::new(certificate, key)
}
