//! CA certificates as issuers: a parsed, checked CA certificate
//! ([`CaCertificate`]) and the pair of it with its private key ([`Issuer`]).
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::x509::X509Version;

use crate::constraints::NameConstraints;
use crate::keys::SigningKey;
use crate::serial::Serial;
use crate::{Error, fingerprint, timestamp};

/// A CA certificate that has been parsed and checked to be a CA: X.509 v3,
/// basicConstraints cA true, and keyCertSign in its key usage (if it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCertificate {
    der: Vec<u8>,
    subject_der: Vec<u8>,
    issuer_der: Vec<u8>,
    spki_der: Vec<u8>,
    public_key_bits: Vec<u8>,
    key_id: Vec<u8>,
    serial: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    can_sign_crls: bool,
    path_len: Option<u32>,
    name_constraints: Option<NameConstraints>,
}

impl CaCertificate {
    /// Parses and checks a DER CA certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let cert = parse(der)?;
        if cert.version() != X509Version::V3 {
            return Err(Error::NotACa("not an X.509 v3 certificate"));
        }
        let path_len = match cert.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => bc.value.path_len_constraint,
            Ok(_) => return Err(Error::NotACa("basicConstraints cA is not true")),
            Err(e) => return Err(Error::MalformedCertificate(format!("basicConstraints: {e}"))),
        };
        let key_usage = cert.key_usage().map_err(|e| Error::MalformedCertificate(format!("keyUsage: {e}")))?;
        if key_usage.as_ref().is_some_and(|ku| !ku.value.key_cert_sign()) {
            return Err(Error::NotACa("keyUsage lacks keyCertSign"));
        }
        let spki = cert.public_key();
        let key_id = cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski.0.to_vec()),
                _ => None,
            })
            // Without an SKI, derive one the way rcgen derives Lightwell's own (RFC 7093 method 1).
            .unwrap_or_else(|| fingerprint::sha256(spki.raw)[..20].to_vec());
        let name_constraints = match cert.name_constraints() {
            Ok(Some(nc)) => nc.value.permitted_subtrees.as_deref().map(NameConstraints::from_subtrees),
            Ok(None) => None,
            Err(e) => return Err(Error::MalformedCertificate(format!("nameConstraints: {e}"))),
        };
        Ok(Self {
            der: der.to_vec(),
            subject_der: cert.subject().as_raw().to_vec(),
            issuer_der: cert.issuer().as_raw().to_vec(),
            spki_der: spki.raw.to_vec(),
            public_key_bits: spki.subject_public_key.data.to_vec(),
            key_id,
            serial: cert.raw_serial().to_vec(),
            not_before: timestamp::from_asn1(cert.validity().not_before),
            not_after: timestamp::from_asn1(cert.validity().not_after),
            can_sign_crls: key_usage.is_none_or(|ku| ku.value.crl_sign()),
            path_len,
            name_constraints,
        })
    }

    /// Parses and checks a PEM `CERTIFICATE` block.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let der = crate::pem::decode(pem, &["CERTIFICATE"]).map_err(|e| Error::MalformedCertificate(e.into()))?;
        Self::from_der(&der)
    }

    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate, PEM.
    pub fn to_pem(&self) -> String {
        crate::pem::encode("CERTIFICATE", &self.der)
    }

    /// `sha256:HEX` fingerprint of the DER.
    pub fn fingerprint(&self) -> String {
        fingerprint::cert_fingerprint(&self.der)
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The serial number, if it is one RFC 5280 allows (imported certificates may not be).
    pub fn serial(&self) -> Result<Serial, Error> {
        Serial::from_bytes(&self.serial)
    }

    /// The subject key identifier (derived from the key if the certificate has none).
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// The DER of the subject name, byte for byte as in the certificate.
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The DER SubjectPublicKeyInfo of the CA's key.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Whether the subject and issuer names are the same (a root).
    pub fn is_self_issued(&self) -> bool {
        self.subject_der == self.issuer_der
    }

    /// Whether the key usage allows signing CRLs.
    pub fn can_sign_crls(&self) -> bool {
        self.can_sign_crls
    }

    /// basicConstraints pathLenConstraint: how many CAs may follow this one; `None` for no limit.
    pub fn path_len_constraint(&self) -> Option<u32> {
        self.path_len
    }

    /// DNS name constraints (permitted subtrees), if the CA has any.
    pub fn permitted_dns_domains(&self) -> Option<&[String]> {
        self.name_constraints.as_ref().map(|nc| nc.dns.as_slice()).filter(|d| !d.is_empty())
    }

    /// The permitted subtrees Lightwell reads (DNS, IP ranges, and whether
    /// URIs and e-mail names are shut out), if the CA has name constraints.
    pub fn name_constraints(&self) -> Option<&NameConstraints> {
        self.name_constraints.as_ref()
    }

    /// Whether the certificate is valid at `now`.
    pub fn check_valid_at(&self, now: OffsetDateTime) -> Result<(), Error> {
        if now < self.not_before || now > self.not_after {
            return Err(Error::NotValidAt { now, not_before: self.not_before, not_after: self.not_after });
        }
        Ok(())
    }

    pub(crate) fn public_key_bits(&self) -> &[u8] {
        &self.public_key_bits
    }
}

pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| Error::MalformedCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::MalformedCertificate("trailing data after the certificate".into()));
    }
    Ok(cert)
}

/// A CA certificate together with its private key: what signs leaves, CRLs
/// and subordinate CAs.
#[derive(Debug)]
pub struct Issuer {
    certificate: CaCertificate,
    key: SigningKey,
}

impl Issuer {
    /// Pairs a CA certificate with its key, refusing a key that is not the certificate's.
    pub fn new(certificate: CaCertificate, key: SigningKey) -> Result<Self, Error> {
        use rcgen::PublicKeyData as _;
        if key.pair().der_bytes() != certificate.public_key_bits() {
            return Err(Error::KeyMismatch);
        }
        Ok(Self { certificate, key })
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &CaCertificate {
        &self.certificate
    }

    /// The CA's private key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Splits into certificate and key, for example to seal the key for storage.
    pub fn into_parts(self) -> (CaCertificate, SigningKey) {
        (self.certificate, self.key)
    }
}
