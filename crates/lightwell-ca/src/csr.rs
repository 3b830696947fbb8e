//! PKCS#10 certificate signing requests: bounded parsing, self-signature
//! check, accepted key types, and a faithful account of what the request
//! asks for, so the issuance policy can refuse what it must (CA:true,
//! keyCertSign, names the requester does not own).
use std::net::IpAddr;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::error::X509Error;
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::oid_registry::{OID_X509_COMMON_NAME, OID_X509_ORGANIZATION_NAME};
use x509_parser::prelude::FromDer;

use crate::Error;
use crate::keys::SigningKey;
use crate::public_key::PublicKey;

/// Largest CSR accepted, PEM or DER. Real CSRs are a few kilobytes.
pub const MAX_CSR_BYTES: usize = 64 * 1024;

/// SHA-1 based signature algorithms, refused (sha1WithRSAEncryption, its OIW alias, ecdsa-with-SHA1).
const SHA1_SIGNATURES: [&str; 3] = ["1.2.840.113549.1.1.5", "1.3.14.3.2.29", "1.2.840.10045.4.1"];

/// One extension found in the CSR's extension request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedExtension {
    /// Dotted OID of the extension.
    pub oid: String,
    /// Whether the request marks it critical.
    pub critical: bool,
}

/// A parsed PKCS#10 request whose self-signature verified and whose key is
/// of an accepted type. Everything else is reported as asked, not judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    der: Vec<u8>,
    public_key: PublicKey,
    common_name: Option<String>,
    organizations: Vec<String>,
    other_subject_attributes: Vec<String>,
    dns_names: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    emails: Vec<String>,
    uris: Vec<String>,
    other_names: Vec<String>,
    requests_ca: bool,
    requests_key_cert_sign: bool,
    extensions: Vec<RequestedExtension>,
}

impl CertificateRequest {
    /// Parses a CSR given as PEM (`CERTIFICATE REQUEST`) or DER.
    ///
    /// Refuses input above [`MAX_CSR_BYTES`], malformed encodings, trailing
    /// data, unsupported key types ([`Error::UnsupportedKey`] names the key),
    /// SHA-1 signatures, and a self-signature that does not verify.
    pub fn parse(input: &[u8]) -> Result<Self, Error> {
        if input.len() > MAX_CSR_BYTES {
            return Err(Error::CsrTooLarge { size: input.len(), limit: MAX_CSR_BYTES });
        }
        let der = to_der(input)?;
        let (rest, request) = X509CertificationRequest::from_der(&der).map_err(|e| malformed(format!("{e}")))?;
        if !rest.is_empty() {
            return Err(malformed("trailing data after the request"));
        }
        let info = &request.certification_request_info;
        if info.version.0 != 0 {
            return Err(malformed("version is not v1"));
        }
        let public_key = PublicKey::from_parsed(&info.subject_pki)?;
        verify_signature(&request)?;
        let mut parsed = Self {
            der: Vec::new(),
            public_key,
            common_name: None,
            organizations: Vec::new(),
            other_subject_attributes: Vec::new(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            emails: Vec::new(),
            uris: Vec::new(),
            other_names: Vec::new(),
            requests_ca: false,
            requests_key_cert_sign: false,
            extensions: Vec::new(),
        };
        parsed.read_subject(&request)?;
        for attribute in info.iter_attributes() {
            if let ParsedCriAttribute::ExtensionRequest(requested) = attribute.parsed_attribute() {
                for extension in &requested.extensions {
                    parsed.read_extension(extension)?;
                }
            }
        }
        parsed.der = der;
        Ok(parsed)
    }

    fn read_subject(&mut self, request: &X509CertificationRequest<'_>) -> Result<(), Error> {
        for attribute in request.certification_request_info.subject.iter_attributes() {
            let oid = attribute.attr_type();
            let value =
                || attribute.as_str().map(str::to_owned).map_err(|_| malformed("subject value is not a string"));
            if *oid == OID_X509_COMMON_NAME {
                if self.common_name.is_some() {
                    return Err(malformed("subject has more than one CN"));
                }
                self.common_name = Some(value()?);
            } else if *oid == OID_X509_ORGANIZATION_NAME {
                self.organizations.push(value()?);
            } else {
                self.other_subject_attributes.push(oid.to_id_string());
            }
        }
        Ok(())
    }

    fn read_extension(&mut self, extension: &X509Extension<'_>) -> Result<(), Error> {
        self.extensions.push(RequestedExtension { oid: extension.oid.to_id_string(), critical: extension.critical });
        match extension.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    self.read_general_name(name)?;
                }
            }
            ParsedExtension::BasicConstraints(bc) => self.requests_ca |= bc.ca,
            ParsedExtension::KeyUsage(ku) => self.requests_key_cert_sign |= ku.key_cert_sign(),
            ParsedExtension::ParseError { error } => {
                return Err(malformed(format!("requested extension {} does not parse: {error}", extension.oid)));
            }
            _ => {}
        }
        Ok(())
    }

    fn read_general_name(&mut self, name: &GeneralName<'_>) -> Result<(), Error> {
        match name {
            GeneralName::DNSName(d) => self.dns_names.push((*d).to_owned()),
            GeneralName::RFC822Name(e) => self.emails.push((*e).to_owned()),
            GeneralName::URI(u) => self.uris.push((*u).to_owned()),
            GeneralName::IPAddress(bytes) => {
                let ip = match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).map(IpAddr::from).ok(),
                    16 => <[u8; 16]>::try_from(*bytes).map(IpAddr::from).ok(),
                    _ => None,
                };
                self.ip_addresses.push(ip.ok_or_else(|| malformed("IP address SAN is not 4 or 16 bytes"))?);
            }
            GeneralName::OtherName(oid, _) => self.other_names.push(format!("otherName {oid}")),
            GeneralName::DirectoryName(_) => self.other_names.push("directoryName".into()),
            GeneralName::RegisteredID(oid) => self.other_names.push(format!("registeredID {oid}")),
            GeneralName::X400Address(_) => self.other_names.push("x400Address".into()),
            GeneralName::EDIPartyName(_) => self.other_names.push("ediPartyName".into()),
            GeneralName::Invalid(..) => return Err(malformed("a subjectAltName entry is not valid")),
        }
        Ok(())
    }

    /// The request, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The key to certify.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The subject CN, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The subject O values, in order.
    pub fn organizations(&self) -> &[String] {
        &self.organizations
    }

    /// Dotted OIDs of subject attributes other than CN and O (for example OU, C).
    pub fn other_subject_attributes(&self) -> &[String] {
        &self.other_subject_attributes
    }

    /// Requested DNS SANs.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// Requested IP address SANs.
    pub fn ip_addresses(&self) -> &[IpAddr] {
        &self.ip_addresses
    }

    /// Requested e-mail SANs.
    pub fn emails(&self) -> &[String] {
        &self.emails
    }

    /// Requested URI SANs.
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// Requested SANs of other types (otherName, directoryName, ...), described.
    pub fn other_names(&self) -> &[String] {
        &self.other_names
    }

    /// Whether the request asks for basicConstraints cA true.
    pub fn requests_ca(&self) -> bool {
        self.requests_ca
    }

    /// Whether the request asks for keyUsage keyCertSign.
    pub fn requests_key_cert_sign(&self) -> bool {
        self.requests_key_cert_sign
    }

    /// Every extension in the request's extension request.
    pub fn requested_extensions(&self) -> &[RequestedExtension] {
        &self.extensions
    }
}

/// A minimal CSR for `key` with subject `CN=<common_name>` (an empty subject
/// when `common_name` is empty): what the CLI and the agent send. The server
/// decides every name in the certificate.
pub fn create(key: &SigningKey, common_name: &str) -> Result<Vec<u8>, Error> {
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    if !common_name.is_empty() {
        dn.push(rcgen::DnType::CommonName, common_name);
    }
    params.distinguished_name = dn;
    Ok(params.serialize_request(key.pair())?.der().to_vec())
}

fn malformed(detail: impl Into<String>) -> Error {
    Error::MalformedCsr(detail.into())
}

fn to_der(input: &[u8]) -> Result<Vec<u8>, Error> {
    let is_pem = input.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'-');
    if !is_pem {
        return Ok(input.to_vec());
    }
    let text = std::str::from_utf8(input).map_err(|_| malformed("PEM is not UTF-8"))?;
    crate::pem::decode(text, &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]).map_err(malformed)
}

fn verify_signature(request: &X509CertificationRequest<'_>) -> Result<(), Error> {
    let algorithm = request.signature_algorithm.algorithm.to_id_string();
    if SHA1_SIGNATURES.contains(&algorithm.as_str()) {
        return Err(Error::UnsupportedSignatureAlgorithm(format!("{algorithm} (SHA-1)")));
    }
    request.verify_signature().map_err(|e| match e {
        X509Error::SignatureUnsupportedAlgorithm => Error::UnsupportedSignatureAlgorithm(algorithm),
        _ => Error::CsrSignatureInvalid,
    })
}
