//! Keys and CSRs made on the host: the private key never leaves it.

use lightwell_ca::{KeyAlgorithm, SigningKey, csr};
use zeroize::Zeroizing;

/// A fresh key (PKCS#8 PEM) and a CSR (PEM) for `common_name`.
pub fn key_and_csr(key_type: &str, common_name: &str) -> Result<(Zeroizing<String>, String), lightwell_ca::Error> {
    let algorithm: KeyAlgorithm = key_type.parse()?;
    let key = SigningKey::generate(algorithm)?;
    let der = csr::create(&key, common_name)?;
    Ok((key.to_pkcs8_pem(), lightwell_ca::pem::encode("CERTIFICATE REQUEST", &der)))
}

/// notBefore and notAfter (Unix seconds) of the first certificate in a PEM.
pub fn validity(cert_pem: &str) -> Option<(i64, i64)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some((cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp()))
}
