//! CA signing keys: generation, loading from PKCS#8, and the algorithm names
//! tenants choose from.
use std::fmt;
use std::str::FromStr;

use rcgen::{
    KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256, PublicKeyData as _,
};
use rustls_pki_types::PrivateKeyDer;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::public_key::{PublicKey, PublicKeyAlgorithm};

/// Key algorithms Lightwell generates and signs with.
///
/// RSA keys sign with PKCS#1 v1.5 and SHA-256, P-384 with SHA-384.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 (the default).
    #[default]
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA, 3072-bit modulus.
    Rsa3072,
    /// RSA, 4096-bit modulus (slow to generate).
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order they are documented.
    pub const ALL: [Self; 5] = [Self::EcdsaP256, Self::EcdsaP384, Self::Ed25519, Self::Rsa3072, Self::Rsa4096];

    /// The stable name used in configuration, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "p256",
            Self::EcdsaP384 => "p384",
            Self::Ed25519 => "ed25519",
            Self::Rsa3072 => "rsa3072",
            Self::Rsa4096 => "rsa4096",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| Error::UnknownKeyAlgorithm(s.to_owned()))
    }
}

const ACCEPTED_SIGNING_KEYS: &str = "P-256, P-384, Ed25519, RSA-3072, RSA-4096 in PKCS#8";

/// A private key that signs certificates and CRLs. Its PKCS#8 copy is
/// zeroized on drop; `Debug` never shows key material.
pub struct SigningKey {
    pair: KeyPair,
    algorithm: KeyAlgorithm,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.algorithm)
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        self.pair.zeroize();
    }
}

impl SigningKey {
    /// Generates a fresh key.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, Error> {
        let pair = match algorithm {
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?,
            KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384)?,
            KeyAlgorithm::Ed25519 => KeyPair::generate_for(&PKCS_ED25519)?,
            KeyAlgorithm::Rsa3072 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)?,
            KeyAlgorithm::Rsa4096 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)?,
        };
        Ok(Self { pair, algorithm })
    }

    /// Loads a PKCS#8 DER private key (the form [`SigningKey::to_pkcs8_der`] writes).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        // Only PKCS#8: it is what Lightwell stores, and it names the algorithm.
        let Ok(PrivateKeyDer::Pkcs8(pkcs8)) = PrivateKeyDer::try_from(der) else {
            return Err(Error::Malformed(
                "private key is not PKCS#8 DER (convert with `openssl pkcs8 -topk8 -nocrypt`)",
            ));
        };
        let pair = KeyPair::try_from(&PrivateKeyDer::Pkcs8(pkcs8)).map_err(|_| Error::UnsupportedKey {
            found: "a private key aws-lc-rs cannot load".into(),
            accepted: ACCEPTED_SIGNING_KEYS,
        })?;
        let algorithm = algorithm_of(&pair)?;
        Ok(Self { pair, algorithm })
    }

    /// Loads a PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let der = crate::pem::decode(pem, &["PRIVATE KEY"])
            .map_err(|_| Error::Malformed("private key is not a PEM PRIVATE KEY (PKCS#8) block"))?;
        Self::from_pkcs8_der(&Zeroizing::new(der))
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// PKCS#8 DER of the private key.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.pair.serialize_der())
    }

    /// PKCS#8 PEM (`PRIVATE KEY`) of the private key.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::pem::encode("PRIVATE KEY", self.pair.serialized_der()))
    }

    /// The public half as a [`PublicKey`].
    pub fn public_key(&self) -> PublicKey {
        // Every KeyAlgorithm is an accepted PublicKeyAlgorithm.
        #[allow(clippy::unwrap_used)]
        PublicKey::from_spki_der(&self.public_key_der()).unwrap()
    }

    /// DER SubjectPublicKeyInfo of the public half.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.pair.subject_public_key_info()
    }

    pub(crate) fn pair(&self) -> &KeyPair {
        &self.pair
    }
}

fn algorithm_of(pair: &KeyPair) -> Result<KeyAlgorithm, Error> {
    let spki = pair.subject_public_key_info();
    let unsupported = |found: String| Error::UnsupportedKey { found, accepted: ACCEPTED_SIGNING_KEYS };
    let public = PublicKey::from_spki_der(&spki).map_err(|e| match e {
        Error::UnsupportedKey { found, .. } => unsupported(found),
        other => other,
    })?;
    match public.algorithm() {
        PublicKeyAlgorithm::EcdsaP256 => Ok(KeyAlgorithm::EcdsaP256),
        PublicKeyAlgorithm::EcdsaP384 => Ok(KeyAlgorithm::EcdsaP384),
        PublicKeyAlgorithm::Ed25519 => Ok(KeyAlgorithm::Ed25519),
        PublicKeyAlgorithm::Rsa { bits: 3072 } => Ok(KeyAlgorithm::Rsa3072),
        PublicKeyAlgorithm::Rsa { bits: 4096 } => Ok(KeyAlgorithm::Rsa4096),
        other => Err(unsupported(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for algorithm in KeyAlgorithm::ALL {
            assert_eq!(algorithm.as_str().parse::<KeyAlgorithm>().unwrap(), algorithm);
        }
        assert_eq!(KeyAlgorithm::default(), KeyAlgorithm::EcdsaP256);
        assert!(matches!("p521".parse::<KeyAlgorithm>(), Err(Error::UnknownKeyAlgorithm(n)) if n == "p521"));
    }

    #[test]
    fn generated_keys_reload_from_der_and_pem_with_their_algorithm() {
        // RSA-4096 is exercised once, in the integration tests.
        for algorithm in
            [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Ed25519, KeyAlgorithm::Rsa3072]
        {
            let key = SigningKey::generate(algorithm).unwrap();
            let from_der = SigningKey::from_pkcs8_der(&key.to_pkcs8_der()).unwrap();
            let from_pem = SigningKey::from_pem(&key.to_pkcs8_pem()).unwrap();
            assert_eq!(from_der.algorithm(), algorithm);
            assert_eq!(from_pem.algorithm(), algorithm);
            assert_eq!(from_pem.public_key_der(), key.public_key_der());
        }
    }

    #[test]
    fn debug_output_hides_key_material() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey(p256)");
    }

    #[test]
    fn garbage_and_non_pkcs8_keys_are_refused() {
        assert!(matches!(SigningKey::from_pkcs8_der(b"nope"), Err(Error::Malformed(_))));
        assert!(matches!(
            SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n"),
            Err(Error::Malformed(_))
        ));
    }
}
