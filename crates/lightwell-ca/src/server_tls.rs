//! The server's own TLS identity: an internal server CA made at
//! `lightwelld init`, and the HTTPS/LDAPS certificate it signs. Clients trust
//! the server by this CA (`server-ca.pem`) or by its SHA-256 fingerprint.
//!
//! This CA is separate from every tenant's CA hierarchy: it identifies the
//! server, not principals.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::{Error, Serial};

/// Lifetime of the server CA.
pub const SERVER_CA_VALIDITY: Duration = Duration::days(3650);
/// Lifetime of the server's TLS certificate.
pub const SERVER_CERT_VALIDITY: Duration = Duration::days(825);

/// A freshly generated server CA. The private key is PKCS#8 DER, zeroized on
/// drop and left out of `Debug`.
pub struct GeneratedCa {
    /// PEM of the CA certificate (`server-ca.pem`).
    pub cert_pem: String,
    /// DER of the CA certificate.
    pub cert_der: Vec<u8>,
    /// PKCS#8 DER of the CA key.
    pub key_pkcs8: Zeroizing<Vec<u8>>,
}

/// A server TLS certificate and its key, both PEM; the key is left out of `Debug`.
pub struct ServerCert {
    /// PEM of the leaf followed by the server CA.
    pub chain_pem: String,
    /// PKCS#8 PEM of the leaf key.
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for GeneratedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedCa").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert").field("chain_pem", &self.chain_pem).finish_non_exhaustive()
    }
}

/// Generates the server CA (ECDSA P-256), valid from `now`.
pub fn generate_server_ca(common_name: &str, now: OffsetDateTime) -> Result<GeneratedCa, Error> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let params = ca_params(common_name, now)?;
    let cert = params.self_signed(&key)?;
    Ok(GeneratedCa {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key_pkcs8: Zeroizing::new(key.serialize_der()),
    })
}

fn ca_params(common_name: &str, now: OffsetDateTime) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Lightwell");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + SERVER_CA_VALIDITY;
    params.serial_number = Some(Serial::random()?.to_rcgen());
    Ok(params)
}

/// Issues the server's TLS certificate under the server CA for the given DNS
/// names and IP addresses.
pub fn issue_server_cert(
    ca_cert_der: &[u8],
    ca_key_pkcs8: &[u8],
    dns_names: &[String],
    ips: &[IpAddr],
    now: OffsetDateTime,
) -> Result<ServerCert, Error> {
    let ca_key = KeyPair::try_from(ca_key_pkcs8)?;
    let ca_der = rustls_pki_types::CertificateDer::from(ca_cert_der.to_vec());
    let issuer = Issuer::from_ca_cert_der(&ca_der, ca_key)?;
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Lightwell");
    dn.push(DnType::CommonName, dns_names.first().map(String::as_str).unwrap_or("lightwelld"));
    params.distinguished_name = dn;
    for name in dns_names {
        params.subject_alt_names.push(SanType::DnsName(name.as_str().try_into()?));
    }
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + SERVER_CERT_VALIDITY;
    params.serial_number = Some(Serial::random()?.to_rcgen());
    let cert = params.signed_by(&leaf_key, &issuer)?;
    let ca_pem = crate::pem::encode("CERTIFICATE", ca_cert_der);
    Ok(ServerCert { chain_pem: format!("{}{}", cert.pem(), ca_pem), key_pem: Zeroizing::new(leaf_key.serialize_pem()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_cert_chains_to_server_ca_with_requested_names() {
        let now = OffsetDateTime::now_utc();
        let ca = generate_server_ca("Lightwell server CA test", now).unwrap();
        let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        let leaf = issue_server_cert(&ca.cert_der, &ca.key_pkcs8, &["localhost".into()], &ips, now).unwrap();
        assert!(leaf.chain_pem.matches("BEGIN CERTIFICATE").count() == 2);
        assert!(leaf.key_pem.contains("BEGIN PRIVATE KEY"));
        // Neither key reaches a log line through Debug.
        let shown = format!("{ca:?} {leaf:?}");
        assert!(!shown.contains("PRIVATE KEY") && !shown.contains(&format!("{:?}", &ca.key_pkcs8[..8])), "{shown}");
        let (_, pem) = x509_parser::pem::parse_x509_pem(leaf.chain_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(san.value.general_names.len(), 2);
    }
}
