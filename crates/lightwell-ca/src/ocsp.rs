//! OCSP (RFC 6960): reading requests, signing responses, and the delegated
//! responder certificate each issuing CA signs them with.
//!
//! Encoded by hand with the strict DER reader and writer in `der`, like the
//! CRL entry list: the RustCrypto `x509-ocsp` crate would bring `der`,
//! `spki`, `x509-cert` and `const-oid` (a second ASN.1 stack beside
//! x509-parser's) for a dozen fixed structures, and signing would still be
//! ours. Everything here is pure: time is passed in, nothing is stored.
//!
//! Requests are read strictly and bounded: at most [`MAX_REQUEST_BYTES`]
//! octets and [`MAX_CERT_IDS`] CertIDs, hash algorithms SHA-1 and SHA-256
//! only, a nonce of at most [`MAX_NONCE_OCTETS`]. Anything else is a
//! [`Error::MalformedOcspRequest`], answered with [`error_response`]
//! `malformedRequest`. A request signature is ignored (RFC 6960 4.1.2 makes
//! it optional, and Lightwell's responder answers anyone).
use aws_lc_rs::digest;
use rcgen::{
    CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, PublicKeyData as _,
    SigningKey as _,
};
use time::{Duration, OffsetDateTime};

use crate::crl::RevocationReason;
use crate::der::{self, BIT_STRING};
use crate::issuer::{CaCertificate, Issuer};
use crate::keys::{KeyAlgorithm, SigningKey};
use crate::lint::{self, Expected, Role};
use crate::name::Name;
use crate::serial::Serial;
use crate::signing::{Signer, ToBeSigned};
use crate::{Error, timestamp};

/// Largest request read; a request for [`MAX_CERT_IDS`] certificates with
/// SHA-256 CertIDs and a nonce is under 2 KiB.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Most CertIDs one request may ask about.
pub const MAX_CERT_IDS: usize = 16;
/// Longest nonce honoured (RFC 8954 section 2.1 asks for 1 to 32 octets).
pub const MAX_NONCE_OCTETS: usize = 32;
/// Default lifetime of a delegated responder certificate.
pub const RESPONDER_VALIDITY: Duration = Duration::days(7);
/// Default distance from a response's thisUpdate to its nextUpdate.
pub const RESPONSE_VALIDITY: Duration = Duration::hours(24);

const OCTET_STRING: u8 = 0x04;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const NULL: u8 = 0x05;
const ENUMERATED: u8 = 0x0a;
const BOOLEAN: u8 = 0x01;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT`, `[1] EXPLICIT`, `[2] EXPLICIT`.
const EXPLICIT_0: u8 = 0xa0;
const EXPLICIT_1: u8 = 0xa1;
const EXPLICIT_2: u8 = 0xa2;

/// OID content octets.
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// id-pkix-ocsp-nonce (1.3.6.1.5.5.7.48.1.2).
const OID_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
/// id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1).
const OID_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// id-pkix-ocsp-nocheck (1.3.6.1.5.5.7.48.1.5), as rcgen wants it.
const OID_NOCHECK: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];
/// Its content octets, as x509-parser shows them.
pub(crate) const OID_NOCHECK_CONTENT: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05];

/// The hash algorithms a CertID may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1, what `openssl ocsp` and most clients send by default.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl HashAlgorithm {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            // CertID hashes identify, they do not authenticate: SHA-1 is what RFC 6960 clients send.
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
        };
        digest::digest(algorithm, data).as_ref().to_vec()
    }

    fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
}

/// One CertID of a request: which certificate of which issuer is asked about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    hash: HashAlgorithm,
    issuer_name_hash: Vec<u8>,
    issuer_key_hash: Vec<u8>,
    serial: Vec<u8>,
    /// The CertID as the client encoded it, echoed in the response.
    der: Vec<u8>,
}

impl CertId {
    /// The hash algorithm of the issuer hashes.
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        self.hash
    }

    /// The serial asked about, if it is one a certificate may have; a
    /// serial that is not (zero, negative, too long) was never issued.
    pub fn serial(&self) -> Option<Serial> {
        Serial::from_bytes(&self.serial).ok()
    }

    /// Whether this CertID names `issuer`: the hashes of its subject name
    /// and of its public key are the ones asked about.
    pub fn names_issuer(&self, issuer: &CaCertificate) -> bool {
        self.hash.digest(issuer.subject_der()) == self.issuer_name_hash
            && self.hash.digest(issuer.public_key_bits()) == self.issuer_key_hash
    }

    /// The CertID's DER, as received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// A CertID for `serial` of `issuer` (what a client would send).
    pub fn new(issuer: &CaCertificate, serial: &Serial, hash: HashAlgorithm) -> Self {
        let issuer_name_hash = hash.digest(issuer.subject_der());
        let issuer_key_hash = hash.digest(issuer.public_key_bits());
        let algorithm = match hash {
            HashAlgorithm::Sha1 => OID_SHA1,
            HashAlgorithm::Sha256 => OID_SHA256,
        };
        let der = der::sequence(&[
            &der::sequence(&[&der::tlv(OID, algorithm), &der::tlv(NULL, &[])]),
            &der::tlv(OCTET_STRING, &issuer_name_hash),
            &der::tlv(OCTET_STRING, &issuer_key_hash),
            &der::tlv(INTEGER, serial.as_bytes()),
        ]);
        Self { hash, issuer_name_hash, issuer_key_hash, serial: serial.as_bytes().to_vec(), der }
    }

    fn parse(der: &[u8]) -> Result<Self, Error> {
        let [algorithm, name_hash, key_hash, serial] = elements(der, "CertID is not four fields")?[..] else {
            return Err(malformed("CertID is not four fields"));
        };
        let hash = match elements(algorithm, "hashAlgorithm is not an AlgorithmIdentifier")?[..] {
            [oid] | [oid, [NULL, 0]] => match content(oid, OID, "hashAlgorithm is not an OID")? {
                OID_SHA1 => HashAlgorithm::Sha1,
                OID_SHA256 => HashAlgorithm::Sha256,
                _ => return Err(malformed("hash algorithm is neither SHA-1 nor SHA-256")),
            },
            _ => return Err(malformed("hashAlgorithm has unexpected parameters")),
        };
        let issuer_name_hash = content(name_hash, OCTET_STRING, "issuerNameHash is not an OCTET STRING")?;
        let issuer_key_hash = content(key_hash, OCTET_STRING, "issuerKeyHash is not an OCTET STRING")?;
        if issuer_name_hash.len() != hash.output_len() || issuer_key_hash.len() != hash.output_len() {
            return Err(malformed("issuer hash is not as long as its algorithm's output"));
        }
        let serial = content(serial, INTEGER, "serialNumber is not an INTEGER")?;
        if serial.is_empty() || serial.len() > 64 {
            return Err(malformed("serialNumber is empty or longer than 64 octets"));
        }
        Ok(Self {
            hash,
            issuer_name_hash: issuer_name_hash.to_vec(),
            issuer_key_hash: issuer_key_hash.to_vec(),
            serial: serial.to_vec(),
            der: der.to_vec(),
        })
    }
}

/// A parsed OCSPRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    cert_ids: Vec<CertId>,
    nonce: Option<Vec<u8>>,
}

impl OcspRequest {
    /// Reads a DER OCSPRequest, refusing anything larger than
    /// [`MAX_REQUEST_BYTES`], with more than [`MAX_CERT_IDS`] CertIDs, an
    /// unknown hash algorithm, a critical extension or trailing data.
    pub fn parse(input: &[u8]) -> Result<Self, Error> {
        if input.len() > MAX_REQUEST_BYTES {
            return Err(malformed("request is larger than 8 KiB"));
        }
        let [tbs, rest @ ..] = &elements(input, "OCSPRequest is not a SEQUENCE")?[..] else {
            return Err(malformed("OCSPRequest is empty"));
        };
        match rest {
            [] => {}
            [signature] if signature.first() == Some(&EXPLICIT_0) => {}
            _ => return Err(malformed("unexpected field after tbsRequest")),
        }
        let mut fields = &elements(tbs, "tbsRequest is not a SEQUENCE")?[..];
        if let [version, rest @ ..] = fields
            && version.first() == Some(&EXPLICIT_0)
        {
            if content(version, EXPLICIT_0, "version")? != [INTEGER, 1, 0] {
                return Err(malformed("version is not v1"));
            }
            fields = rest;
        }
        if let [name, rest @ ..] = fields
            && name.first() == Some(&EXPLICIT_1)
        {
            fields = rest;
        }
        let (list, extensions) = match fields {
            [list] => (list, None),
            [list, extensions] if extensions.first() == Some(&EXPLICIT_2) => (list, Some(*extensions)),
            _ => return Err(malformed("tbsRequest has no requestList or unexpected fields")),
        };
        let requests = elements(list, "requestList is not a SEQUENCE")?;
        if requests.is_empty() {
            return Err(malformed("requestList is empty"));
        }
        if requests.len() > MAX_CERT_IDS {
            return Err(malformed("more than 16 CertIDs"));
        }
        let mut cert_ids = Vec::with_capacity(requests.len());
        for request in requests {
            let fields = elements(request, "Request is not a SEQUENCE")?;
            let cert_id = match fields[..] {
                [cert_id] => cert_id,
                [cert_id, extensions] if extensions.first() == Some(&EXPLICIT_0) => {
                    // singleRequestExtensions (service locator, ...) are read only to refuse critical ones.
                    read_extensions(content(extensions, EXPLICIT_0, "singleRequestExtensions")?)?;
                    cert_id
                }
                _ => return Err(malformed("Request has unexpected fields")),
            };
            cert_ids.push(CertId::parse(cert_id)?);
        }
        let mut nonce = None;
        if let Some(extensions) = extensions {
            for (oid, value) in read_extensions(content(extensions, EXPLICIT_2, "requestExtensions")?)? {
                if oid == OID_NONCE {
                    if nonce.is_some() {
                        return Err(malformed("nonce appears twice"));
                    }
                    nonce = Some(parse_nonce(value)?);
                }
            }
        }
        Ok(Self { cert_ids, nonce })
    }

    /// The CertIDs asked about, in request order.
    pub fn cert_ids(&self) -> &[CertId] {
        &self.cert_ids
    }

    /// The nonce's extnValue (an OCTET STRING holding the nonce), if asked for.
    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_deref()
    }

    /// Encodes a request (what `openssl ocsp` sends): the CertIDs and, if
    /// given, a nonce.
    pub fn encode(cert_ids: &[CertId], nonce: Option<&[u8]>) -> Vec<u8> {
        let requests: Vec<Vec<u8>> = cert_ids.iter().map(|id| der::sequence(&[&id.der])).collect();
        let list = der::sequence(&requests.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let mut tbs_fields = vec![list];
        if let Some(nonce) = nonce {
            let value = der::tlv(OCTET_STRING, nonce);
            tbs_fields.push(der::tlv(EXPLICIT_2, &der::sequence(&[&extension(OID_NONCE, &value)])));
        }
        der::sequence(&[&der::sequence(&tbs_fields.iter().map(Vec::as_slice).collect::<Vec<_>>())])
    }
}

/// An extension as read: extnID content and extnValue content.
type Extension<'a> = (&'a [u8], &'a [u8]);

/// Reads an Extensions SEQUENCE into (OID content, extnValue content),
/// refusing a critical extension (Lightwell understands none in requests).
fn read_extensions(der: &[u8]) -> Result<Vec<Extension<'_>>, Error> {
    let mut out = Vec::new();
    for extension in elements(der, "Extensions is not a SEQUENCE")? {
        let (oid, critical, value) = match elements(extension, "Extension is not a SEQUENCE")?[..] {
            [oid, value] => (oid, false, value),
            [oid, critical, value] => (oid, content(critical, BOOLEAN, "critical is not a BOOLEAN")? == [0xff], value),
            _ => return Err(malformed("Extension has unexpected fields")),
        };
        if critical {
            return Err(malformed("critical request extension"));
        }
        out.push((content(oid, OID, "extnID is not an OID")?, content(value, OCTET_STRING, "extnValue")?));
    }
    Ok(out)
}

/// RFC 8954: the nonce extnValue holds an OCTET STRING of 1 to 32 octets.
/// The whole extnValue is kept and echoed.
fn parse_nonce(value: &[u8]) -> Result<Vec<u8>, Error> {
    let (tlv, rest) = der::read(value).map_err(|_| malformed("nonce is not DER"))?;
    if tlv.tag != OCTET_STRING || !rest.is_empty() {
        return Err(malformed("nonce is not an OCTET STRING"));
    }
    if tlv.content.is_empty() || tlv.content.len() > MAX_NONCE_OCTETS {
        return Err(malformed("nonce is not 1 to 32 octets"));
    }
    Ok(value.to_vec())
}

fn malformed(what: &'static str) -> Error {
    Error::MalformedOcspRequest(what)
}

/// The elements of a SEQUENCE that must be all of `der`.
fn elements<'a>(der: &'a [u8], what: &'static str) -> Result<Vec<&'a [u8]>, Error> {
    der::sequence_elements(der).map_err(|_| malformed(what))
}

/// The content of a TLV that must be all of `der` and carry `tag`.
fn content<'a>(der: &'a [u8], tag: u8, what: &'static str) -> Result<&'a [u8], Error> {
    match der::read(der) {
        Ok((tlv, [])) if tlv.tag == tag => Ok(tlv.content),
        _ => Err(malformed(what)),
    }
}

fn extension(oid: &[u8], value: &[u8]) -> Vec<u8> {
    der::sequence(&[&der::tlv(OID, oid), &der::tlv(OCTET_STRING, value)])
}

/// What a response says about one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued by this CA and not revoked.
    Good,
    /// Revoked at `at` for `reason`.
    Revoked {
        /// When the CA processed the revocation.
        at: OffsetDateTime,
        /// Why; `unspecified` is written without a reason, as on the CRL.
        reason: RevocationReason,
    },
    /// Not a certificate this responder knows.
    Unknown,
}

/// One SingleResponse.
#[derive(Debug, Clone, Copy)]
pub struct SingleResponse<'a> {
    /// The CertID asked about.
    pub cert_id: &'a CertId,
    /// Its status.
    pub status: CertStatus,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate; must be after `this_update`.
    pub next_update: OffsetDateTime,
}

/// OCSPResponseStatus values other than `successful`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStatus {
    /// 1: the request did not parse or broke a limit.
    MalformedRequest,
    /// 2: the responder failed.
    InternalError,
    /// 3: the responder cannot answer now.
    TryLater,
    /// 6: the responder does not answer for this issuer.
    Unauthorized,
}

/// An unsigned OCSPResponse carrying an error status (RFC 6960 4.2.1).
pub fn error_response(status: ErrorStatus) -> Vec<u8> {
    let code = match status {
        ErrorStatus::MalformedRequest => 1,
        ErrorStatus::InternalError => 2,
        ErrorStatus::TryLater => 3,
        ErrorStatus::Unauthorized => 6,
    };
    der::sequence(&[&der::tlv(ENUMERATED, &[code])])
}

/// A delegated responder: its certificate (issued by the CA it answers
/// for, EKU id-kp-OCSPSigning) and key.
#[derive(Debug)]
pub struct Responder {
    certificate: Vec<u8>,
    key: SigningKey,
    key_hash: Vec<u8>,
    not_after: OffsetDateTime,
}

impl Responder {
    /// Pairs a responder certificate (DER) with its key, refusing a key that is not the certificate's.
    pub fn new(certificate: Vec<u8>, key: SigningKey) -> Result<Self, Error> {
        let cert = crate::issuer::parse(&certificate)?;
        let bits = cert.public_key().subject_public_key.data.to_vec();
        if key.pair().der_bytes() != bits {
            return Err(Error::KeyMismatch);
        }
        let not_after = timestamp::from_asn1(cert.validity().not_after);
        Ok(Self { key_hash: HashAlgorithm::Sha1.digest(&bits), certificate, key, not_after })
    }

    /// The responder certificate, DER.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// End of the responder certificate's validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The responder's key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs a successful OCSPResponse with a BasicOCSPResponse: responderID
    /// by key hash, `produced_at`, the responses, the nonce extnValue echoed
    /// when given, the responder certificate in `certs`.
    pub fn sign(
        &self,
        produced_at: OffsetDateTime,
        responses: &[SingleResponse<'_>],
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, Error> {
        if responses.is_empty() {
            return Err(Error::Encoding("an OCSP response needs at least one SingleResponse"));
        }
        let mut singles = Vec::with_capacity(responses.len());
        for single in responses {
            if single.next_update <= single.this_update {
                return Err(Error::InvalidTimeWindow("nextUpdate must be after thisUpdate"));
            }
            let status = match single.status {
                CertStatus::Good => der::tlv(0x80, &[]),
                CertStatus::Revoked { at, reason } => {
                    let mut info = generalized_time(at)?;
                    if reason != RevocationReason::Unspecified {
                        info.extend(der::tlv(EXPLICIT_0, &der::tlv(ENUMERATED, &[reason.code()])));
                    }
                    der::tlv(EXPLICIT_1, &info)
                }
                CertStatus::Unknown => der::tlv(0x82, &[]),
            };
            singles.push(der::sequence(&[
                &single.cert_id.der,
                &status,
                &generalized_time(single.this_update)?,
                &der::tlv(EXPLICIT_0, &generalized_time(single.next_update)?),
            ]));
        }
        let mut data = vec![
            der::tlv(EXPLICIT_2, &der::tlv(OCTET_STRING, &self.key_hash)),
            generalized_time(produced_at)?,
            der::sequence(&singles.iter().map(Vec::as_slice).collect::<Vec<_>>()),
        ];
        if let Some(nonce) = nonce {
            data.push(der::tlv(EXPLICIT_1, &der::sequence(&[&extension(OID_NONCE, nonce)])));
        }
        let tbs = der::sequence(&data.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let signature = self.key.pair().sign(&tbs)?;
        let mut bits = vec![0];
        bits.extend_from_slice(&signature);
        let basic = der::sequence(&[
            &tbs,
            signature_algorithm(self.key.algorithm()),
            &der::tlv(BIT_STRING, &bits),
            &der::tlv(EXPLICIT_0, &der::sequence(&[&self.certificate])),
        ]);
        let response_bytes = der::sequence(&[&der::tlv(OID, OID_BASIC), &der::tlv(OCTET_STRING, &basic)]);
        Ok(der::sequence(&[&der::tlv(ENUMERATED, &[0]), &der::tlv(EXPLICIT_0, &response_bytes)]))
    }
}

/// AlgorithmIdentifier DER of the signature each key algorithm makes
/// (rcgen signs RSA with PKCS#1 v1.5 SHA-256, P-384 with SHA-384).
fn signature_algorithm(algorithm: KeyAlgorithm) -> &'static [u8] {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => &[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        KeyAlgorithm::EcdsaP384 => &[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        KeyAlgorithm::Ed25519 => &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70],
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00]
        }
    }
}

/// RFC 6960 times are GeneralizedTime `YYYYMMDDHHMMSSZ` whatever the year.
fn generalized_time(t: OffsetDateTime) -> Result<Vec<u8>, Error> {
    let t = timestamp::encodable(t)?;
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second) = t.to_hms();
    let text = format!("{year:04}{:02}{day:02}{hour:02}{minute:02}{second:02}Z", month as u8);
    Ok(der::tlv(GENERALIZED_TIME, text.as_bytes()))
}

/// The common name of a tenant's delegated OCSP responder certificates.
pub const RESPONDER_CN: &str = "OCSP responder";

/// Whether `subject_der` names a tenant's OCSP responder
/// (`O=Lightwell, OU=<tenant>, CN=OCSP responder`, compared without regard
/// to case or string type, as RFC 5280 name matching does): no CA of the
/// tenant may carry that name, or a certificate it issued could pass for
/// the responder's by name.
pub fn is_responder_name(subject_der: &[u8], tenant: &str) -> bool {
    use x509_parser::prelude::FromDer;
    let Ok((_, name)) = x509_parser::x509::X509Name::from_der(subject_der) else { return false };
    let has = |mut values: Box<dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>> + '_>,
               wanted: &str| {
        values.any(|v| v.as_str().is_ok_and(|s| s.trim().eq_ignore_ascii_case(wanted)))
    };
    has(Box::new(name.iter_organization()), "Lightwell")
        && has(Box::new(name.iter_organizational_unit()), tenant)
        && has(Box::new(name.iter_common_name()), RESPONDER_CN)
}

/// Issues the delegated responder certificate for `issuer`'s key `key`:
/// subject `O=Lightwell, OU=<tenant>, CN=<common_name>`, EKU
/// id-kp-OCSPSigning, keyUsage digitalSignature, id-pkix-ocsp-nocheck (RFC
/// 6960 4.2.2.2.1: clients do not check its revocation, so it lives only
/// `validity`), linted before the CA key signs it.
pub fn issue_responder(
    issuer: &Issuer,
    tenant: &str,
    common_name: &str,
    key: &SigningKey,
    validity: Duration,
    now: OffsetDateTime,
) -> Result<Vec<u8>, Error> {
    let ca = issuer.certificate();
    ca.check_valid_at(now)?;
    let not_before = timestamp::encodable(timestamp::sub(now, crate::ca::CLOCK_SKEW)?.max(ca.not_before()))?;
    let not_after = timestamp::encodable(timestamp::add(now, validity)?.min(ca.not_after()))?;
    if not_after <= not_before {
        return Err(Error::InvalidTimeWindow("responder validity must be positive"));
    }
    let subject = Name::lightwell_ca(tenant, common_name)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject.to_rcgen();
    params.serial_number = Some(Serial::random()?.to_rcgen());
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    params.use_authority_key_identifier_extension = true;
    params.custom_extensions = vec![CustomExtension::from_oid_content(OID_NOCHECK, vec![NULL, 0])];
    let tbs = ToBeSigned::certificate(&params, key.pair(), &subject, &Signer::issuer(issuer))?;
    let expected = Expected {
        delta_crl_url: None,
        role: Role::OcspResponder,
        subject_public_key: &key.public_key_der(),
        issuer: Some(ca),
    };
    lint::certificate(&tbs.unsigned(), &expected)?;
    tbs.sign(issuer.key())
}

/// A half-read response: what the tests and the service check in answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedResponse {
    /// OCSPResponseStatus (0 successful).
    pub status: u8,
    /// The SingleResponses' statuses in order: 0 good, 1 revoked, 2 unknown.
    pub cert_statuses: Vec<u8>,
    /// The echoed nonce extnValue.
    pub nonce: Option<Vec<u8>>,
    /// nextUpdate of the first SingleResponse.
    pub next_update: Option<OffsetDateTime>,
}

impl ParsedResponse {
    /// Reads an OCSPResponse this module wrote (no signature check).
    pub fn parse(der: &[u8]) -> Result<Self, Error> {
        let bad = |what| Error::MalformedOcspRequest(what);
        let fields = elements(der, "OCSPResponse")?;
        let status = match content(fields.first().ok_or(bad("empty"))?, ENUMERATED, "status")? {
            [status] => *status,
            _ => return Err(bad("status")),
        };
        let mut parsed = Self { status, cert_statuses: Vec::new(), nonce: None, next_update: None };
        let Some(bytes) = fields.get(1) else { return Ok(parsed) };
        let [_, basic] = elements(content(bytes, EXPLICIT_0, "responseBytes")?, "ResponseBytes")?[..] else {
            return Err(bad("ResponseBytes"));
        };
        let basic = elements(content(basic, OCTET_STRING, "response")?, "BasicOCSPResponse")?;
        let data = elements(basic.first().ok_or(bad("BasicOCSPResponse"))?, "ResponseData")?;
        for single in elements(data.get(2).ok_or(bad("responses"))?, "responses")? {
            let single = elements(single, "SingleResponse")?;
            parsed.cert_statuses.push(single.get(1).and_then(|s| s.first()).map_or(0xff, |tag| tag & 0x1f));
            if parsed.next_update.is_none()
                && let Some(next) = single.get(3)
            {
                let time = content(next, EXPLICIT_0, "nextUpdate")?;
                let time = content(time, GENERALIZED_TIME, "nextUpdate")?;
                parsed.next_update = parse_generalized(time);
            }
        }
        if let Some(extensions) = data.get(3) {
            for (oid, value) in read_extensions(content(extensions, EXPLICIT_1, "responseExtensions")?)? {
                if oid == OID_NONCE {
                    parsed.nonce = Some(value.to_vec());
                }
            }
        }
        Ok(parsed)
    }
}

/// Checks that a successful OCSPResponse is about `id` alone and is signed
/// by the CA whose certificate is `issuer_der`, or by a responder
/// certificate the response carries that this CA issued for
/// id-kp-OCSPSigning and that is valid at `now` (RFC 6960 section 4.2.2.2).
/// What a relying party checks; a host that staples the response checks it
/// before handing it on. Parsed with the module's own DER reader for the
/// response and x509-parser for certificates and signatures.
pub fn verify_response(der: &[u8], id: &CertId, issuer_der: &[u8], now: OffsetDateTime) -> Result<(), Error> {
    use x509_parser::asn1_rs::{BitString, FromDer as _};
    use x509_parser::prelude::X509Certificate;
    use x509_parser::x509::AlgorithmIdentifier;
    let refused = Error::OcspResponseRefused;
    let fields = elements(der, "OCSPResponse")?;
    let bytes = fields.get(1).ok_or(refused("not a successful response"))?;
    let [_, basic] = elements(content(bytes, EXPLICIT_0, "responseBytes")?, "ResponseBytes")?[..] else {
        return Err(malformed("ResponseBytes"));
    };
    let basic = elements(content(basic, OCTET_STRING, "response")?, "BasicOCSPResponse")?;
    let [tbs, algorithm, signature, certs @ ..] = &basic[..] else { return Err(malformed("BasicOCSPResponse")) };
    let mut data = elements(tbs, "ResponseData")?;
    if data.first().is_some_and(|d| d.first() == Some(&EXPLICIT_0)) {
        data.remove(0); // version, v1 (DEFAULT, so normally absent)
    }
    let singles = elements(data.get(2).ok_or(malformed("responses"))?, "responses")?;
    let [single] = &singles[..] else { return Err(refused("not about exactly one certificate")) };
    if elements(single, "SingleResponse")?.first().copied() != Some(id.der()) {
        return Err(refused("about another certificate than the one asked"));
    }
    let (_, algorithm) = AlgorithmIdentifier::from_der(algorithm).map_err(|_| malformed("signatureAlgorithm"))?;
    let (_, signature) = BitString::from_der(signature).map_err(|_| malformed("signature"))?;
    let (_, ca) = X509Certificate::from_der(issuer_der).map_err(|_| refused("the CA certificate is unreadable"))?;
    let signed_by = |key: &x509_parser::x509::SubjectPublicKeyInfo<'_>| {
        x509_parser::verify::verify_signature(key, &algorithm, &signature, tbs).is_ok()
    };
    if signed_by(ca.public_key()) {
        return Ok(());
    }
    // Else a delegated responder among the response's certificates ([0] EXPLICIT SEQUENCE OF Certificate).
    let Some(certs) = certs.first() else { return Err(refused("signed by no certificate it names")) };
    for cert in elements(content(certs, EXPLICIT_0, "certs")?, "certs")? {
        let Ok((_, responder)) = X509Certificate::from_der(cert) else { continue };
        let authorised = responder.issuer().as_raw() == ca.subject().as_raw()
            && responder.verify_signature(Some(ca.public_key())).is_ok()
            && responder.validity().is_valid_at(x509_parser::time::ASN1Time::from(now))
            && responder.extended_key_usage().ok().flatten().is_some_and(|eku| eku.value.ocsp_signing);
        if authorised && signed_by(responder.public_key()) {
            return Ok(());
        }
    }
    Err(refused("not signed by the CA nor by a responder it authorised"))
}

fn parse_generalized(text: &[u8]) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(text).ok()?;
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    time::PrimitiveDateTime::parse(text, &format).ok().map(time::PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{self, CaSpec};

    fn setup() -> (Issuer, Responder) {
        let now = OffsetDateTime::now_utc();
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let issuer = ca::create_root(&CaSpec::root("corp.example", "root"), key, now).unwrap();
        let responder_key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let cert =
            issue_responder(&issuer, "corp.example", "root OCSP", &responder_key, RESPONDER_VALIDITY, now).unwrap();
        (issuer, Responder::new(cert, responder_key).unwrap())
    }

    fn refused(input: &[u8]) -> bool {
        matches!(OcspRequest::parse(input), Err(Error::MalformedOcspRequest(_)))
    }

    #[test]
    fn requests_round_trip_with_both_hashes_and_a_nonce() {
        let (issuer, _) = setup();
        let serial = Serial::random().unwrap();
        let ids = [
            CertId::new(issuer.certificate(), &serial, HashAlgorithm::Sha1),
            CertId::new(issuer.certificate(), &serial, HashAlgorithm::Sha256),
        ];
        let nonce = der::tlv(OCTET_STRING, &[7; 16]);
        let request = OcspRequest::parse(&OcspRequest::encode(&ids, Some(&[7; 16]))).unwrap();
        assert_eq!(request.cert_ids(), &ids);
        assert_eq!(request.nonce(), Some(&nonce[..]));
        for id in request.cert_ids() {
            assert!(id.names_issuer(issuer.certificate()));
            assert_eq!(id.serial(), Some(serial.clone()));
        }
        let (other, _) = setup();
        assert!(!request.cert_ids()[0].names_issuer(other.certificate()));
        assert_eq!(OcspRequest::parse(&OcspRequest::encode(&ids[..1], None)).unwrap().nonce(), None);
    }

    #[test]
    fn hostile_requests_are_malformed() {
        let (issuer, _) = setup();
        let id = CertId::new(issuer.certificate(), &Serial::random().unwrap(), HashAlgorithm::Sha1);
        let good = OcspRequest::encode(std::slice::from_ref(&id), Some(&[1; 8]));
        for cut in 0..good.len() {
            assert!(refused(&good[..cut]), "truncated at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(refused(&trailing));
        assert!(refused(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(refused(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]));
        assert!(refused(&vec![0x30; MAX_REQUEST_BYTES + 1]));
        // 17 CertIDs are refused, 16 accepted.
        let many = vec![id.clone(); MAX_CERT_IDS + 1];
        assert!(refused(&OcspRequest::encode(&many, None)));
        assert!(OcspRequest::parse(&OcspRequest::encode(&many[..MAX_CERT_IDS], None)).is_ok());
        // A nonce longer than 32 octets, or empty.
        assert!(refused(&OcspRequest::encode(std::slice::from_ref(&id), Some(&[1; 33]))));
        assert!(refused(&OcspRequest::encode(std::slice::from_ref(&id), Some(&[]))));
        // An empty request list.
        assert!(refused(&OcspRequest::encode(&[], None)));
    }

    #[test]
    fn unknown_hash_algorithms_are_malformed() {
        let (issuer, _) = setup();
        let id = CertId::new(issuer.certificate(), &Serial::random().unwrap(), HashAlgorithm::Sha1);
        // SHA-1's OID content with its last arc changed (1.3.14.3.2.27 is not a hash we take).
        let mut der_id = id.der.clone();
        let at = der_id.windows(OID_SHA1.len()).position(|w| w == OID_SHA1).unwrap();
        der_id[at + OID_SHA1.len() - 1] = 0x1b;
        let spoiled = CertId { der: der_id, ..id.clone() };
        assert!(refused(&OcspRequest::encode(&[spoiled], None)));
        // SHA-1 named, but hashes as long as SHA-256's.
        let fake = der::sequence(&[
            &der::sequence(&[&der::tlv(OID, OID_SHA1)]),
            &der::tlv(OCTET_STRING, &[0; 32]),
            &der::tlv(OCTET_STRING, &[0; 32]),
            &der::tlv(INTEGER, &[1]),
        ]);
        let fake = CertId { der: fake, ..id };
        assert!(refused(&OcspRequest::encode(&[fake], None)));
    }

    #[test]
    fn critical_request_extensions_are_refused() {
        let (issuer, _) = setup();
        let id = CertId::new(issuer.certificate(), &Serial::random().unwrap(), HashAlgorithm::Sha1);
        let critical = der::sequence(&[
            &der::tlv(OID, &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x01]),
            &der::tlv(BOOLEAN, &[0xff]),
            &der::tlv(OCTET_STRING, &der::tlv(NULL, &[])),
        ]);
        let list = der::sequence(&[&der::sequence(&[&id.der])]);
        let tbs = der::sequence(&[&list, &der::tlv(EXPLICIT_2, &der::sequence(&[&critical]))]);
        assert!(refused(&der::sequence(&[&tbs])));
    }

    #[test]
    fn responses_carry_each_status_the_nonce_and_the_responder() {
        let (issuer, responder) = setup();
        let now = OffsetDateTime::now_utc();
        let ids: Vec<CertId> = (0..3)
            .map(|_| CertId::new(issuer.certificate(), &Serial::random().unwrap(), HashAlgorithm::Sha256))
            .collect();
        let statuses = [
            CertStatus::Good,
            CertStatus::Revoked { at: now, reason: RevocationReason::KeyCompromise },
            CertStatus::Unknown,
        ];
        let singles: Vec<SingleResponse<'_>> = ids
            .iter()
            .zip(statuses)
            .map(|(cert_id, status)| SingleResponse {
                cert_id,
                status,
                this_update: now,
                next_update: now + RESPONSE_VALIDITY,
            })
            .collect();
        let nonce = der::tlv(OCTET_STRING, &[9; 16]);
        let der = responder.sign(now, &singles, Some(&nonce)).unwrap();
        let parsed = ParsedResponse::parse(&der).unwrap();
        assert_eq!(parsed.status, 0);
        assert_eq!(parsed.cert_statuses, vec![0, 1, 2]);
        assert_eq!(parsed.nonce, Some(nonce));
        assert_eq!(parsed.next_update, Some(timestamp::encodable(now + RESPONSE_VALIDITY).unwrap()));
        assert!(der.windows(responder.certificate().len()).any(|w| w == responder.certificate()));
        assert_eq!(ParsedResponse::parse(&responder.sign(now, &singles[..1], None).unwrap()).unwrap().nonce, None);
        assert!(responder.sign(now, &[], None).is_err());
    }

    #[test]
    fn error_responses_have_only_a_status() {
        assert_eq!(error_response(ErrorStatus::MalformedRequest), [0x30, 0x03, 0x0a, 0x01, 0x01]);
        assert_eq!(error_response(ErrorStatus::Unauthorized), [0x30, 0x03, 0x0a, 0x01, 0x06]);
        assert_eq!(ParsedResponse::parse(&error_response(ErrorStatus::InternalError)).unwrap().status, 2);
    }

    #[test]
    fn a_response_verifies_only_for_the_certificate_asked_under_its_ca_or_an_authorised_responder() {
        let (issuer, responder) = setup();
        let now = OffsetDateTime::now_utc();
        let serial = Serial::random().unwrap();
        let id = CertId::new(issuer.certificate(), &serial, HashAlgorithm::Sha1);
        let single = |cert_id| SingleResponse {
            cert_id,
            status: CertStatus::Good,
            this_update: now,
            next_update: now + RESPONSE_VALIDITY,
        };
        let answer = responder.sign(now, &[single(&id)], None).unwrap();
        let ca = issuer.certificate().der();
        verify_response(&answer, &id, ca, now).unwrap();
        // Another certificate's CertID, or the same serial asked of another CA.
        let other = CertId::new(issuer.certificate(), &Serial::random().unwrap(), HashAlgorithm::Sha1);
        assert!(matches!(verify_response(&answer, &other, ca, now), Err(Error::OcspResponseRefused(_))));
        let (stranger, stranger_responder) = setup();
        assert!(verify_response(&answer, &id, stranger.certificate().der(), now).is_err(), "another CA");
        // A responder another CA authorised, answering for this CA's certificate.
        let forged = stranger_responder.sign(now, &[single(&id)], None).unwrap();
        assert!(verify_response(&forged, &id, ca, now).is_err(), "a responder this CA did not authorise");
        // Two answers, an error status, a flipped signature bit, after the responder's life.
        let two = responder.sign(now, &[single(&id), single(&other)], None).unwrap();
        assert!(verify_response(&two, &id, ca, now).is_err());
        assert!(verify_response(&error_response(ErrorStatus::TryLater), &id, ca, now).is_err());
        let mut tampered = answer.clone();
        let at = tampered.len() - 40;
        tampered[at] ^= 1;
        assert!(verify_response(&tampered, &id, ca, now).is_err(), "a changed byte");
        assert!(verify_response(&answer, &id, ca, now + RESPONDER_VALIDITY + Duration::days(1)).is_err(), "expired");
        for garbage in [&b""[..], b"\x30\x00", &answer[..answer.len() - 1]] {
            assert!(verify_response(garbage, &id, ca, now).is_err());
        }
    }

    #[test]
    fn the_responder_certificate_is_an_ocsp_signer_with_nocheck() {
        let (issuer, responder) = setup();
        let cert = crate::issuer::parse(responder.certificate()).unwrap();
        assert_eq!(cert.issuer().as_raw(), issuer.certificate().subject_der());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.ocsp_signing && !eku.server_auth && !eku.client_auth);
        assert!(cert.extensions().iter().any(|e| e.oid.as_bytes() == OID_NOCHECK_CONTENT && !e.critical));
        let lifetime = cert.validity().not_after.to_datetime() - cert.validity().not_before.to_datetime();
        assert!(lifetime <= RESPONDER_VALIDITY + ca::CLOCK_SKEW);
        let other = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(matches!(Responder::new(responder.certificate().to_vec(), other), Err(Error::KeyMismatch)));
    }
}
