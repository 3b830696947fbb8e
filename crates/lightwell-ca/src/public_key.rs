//! Subject public keys Lightwell is willing to certify.
use std::fmt;

use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::RSAPublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::Error;

/// Smallest RSA modulus accepted in a CSR.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted (the verifiers Lightwell relies on stop at 8192).
pub const MAX_RSA_BITS: usize = 8192;

const ACCEPTED: &str = "P-256, P-384, Ed25519, RSA of 2048 to 8192 bits";

/// The type of a subject public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicKeyAlgorithm {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus length in bits.
        bits: usize,
    },
}

impl PublicKeyAlgorithm {
    /// Whether this is an RSA key (RSA server keys also get keyEncipherment).
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa { .. })
    }
}

impl fmt::Display for PublicKeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcdsaP256 => f.write_str("P-256"),
            Self::EcdsaP384 => f.write_str("P-384"),
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
        }
    }
}

/// An accepted subject public key: the SubjectPublicKeyInfo DER and its type.
///
/// A `PublicKey` exists only for key types in [`PublicKeyAlgorithm`] (and RSA
/// within [`MIN_RSA_BITS`]..=[`MAX_RSA_BITS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    algorithm: PublicKeyAlgorithm,
}

impl PublicKey {
    /// Reads a DER SubjectPublicKeyInfo, refusing key types Lightwell does not certify.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| Error::MalformedCertificate(format!("subject public key info: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::MalformedCertificate("trailing data after subject public key info".into()));
        }
        Self::from_parsed(&spki)
    }

    pub(crate) fn from_parsed(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, Error> {
        Ok(Self { spki_der: spki.raw.to_vec(), algorithm: classify(spki)? })
    }

    /// The key type.
    pub fn algorithm(&self) -> PublicKeyAlgorithm {
        self.algorithm
    }

    /// The DER SubjectPublicKeyInfo, as it will appear in the certificate.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}

fn unsupported(found: impl Into<String>) -> Error {
    Error::UnsupportedKey { found: found.into(), accepted: ACCEPTED }
}

fn classify(spki: &SubjectPublicKeyInfo<'_>) -> Result<PublicKeyAlgorithm, Error> {
    let oid = &spki.algorithm.algorithm;
    let key = spki.subject_public_key.data.as_ref();
    if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or_else(|| unsupported("EC key without a named curve"))?;
        let (algorithm, point_len) = if curve == OID_EC_P256 {
            (PublicKeyAlgorithm::EcdsaP256, 65)
        } else if curve == OID_NIST_EC_P384 {
            (PublicKeyAlgorithm::EcdsaP384, 97)
        } else if curve == OID_NIST_EC_P521 {
            return Err(unsupported("P-521"));
        } else {
            return Err(unsupported(format!("EC curve {curve}")));
        };
        // Only uncompressed points: webpki and many TLS stacks refuse others.
        if key.len() != point_len || key[0] != 0x04 {
            return Err(unsupported(format!("{algorithm} key that is not an uncompressed point")));
        }
        Ok(algorithm)
    } else if *oid == OID_SIG_ED25519 {
        if key.len() != 32 || spki.algorithm.parameters.is_some() {
            return Err(unsupported("malformed Ed25519 key"));
        }
        Ok(PublicKeyAlgorithm::Ed25519)
    } else if *oid == OID_PKCS1_RSAENCRYPTION {
        let (_, rsa) = RSAPublicKey::from_der(key).map_err(|_| unsupported("malformed RSA key"))?;
        let bits = modulus_bits(rsa.modulus);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(unsupported(format!("RSA-{bits}")));
        }
        Ok(PublicKeyAlgorithm::Rsa { bits })
    } else {
        Err(unsupported(format!("key algorithm {}", describe_oid(&oid.to_id_string()))))
    }
}

/// Bit length of an unsigned big-endian integer (leading zero octets ignored).
pub(crate) fn modulus_bits(modulus: &[u8]) -> usize {
    let significant: &[u8] = match modulus.iter().position(|b| *b != 0) {
        Some(i) => &modulus[i..],
        None => &[],
    };
    match significant.first() {
        Some(first) => significant.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

fn describe_oid(oid: &str) -> String {
    let name = match oid {
        "1.3.101.113" => "Ed448",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.2.840.10040.4.1" => "DSA",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        _ => return oid.to_owned(),
    };
    format!("{name} ({oid})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits_ignores_leading_zero_octets() {
        assert_eq!(modulus_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(modulus_bits(&[0x01, 0x00]), 9);
        assert_eq!(modulus_bits(&[0x00]), 0);
        assert_eq!(modulus_bits(&[]), 0);
    }

    #[test]
    fn garbage_is_not_a_public_key() {
        assert!(matches!(PublicKey::from_spki_der(b"garbage"), Err(Error::MalformedCertificate(_))));
    }
}
