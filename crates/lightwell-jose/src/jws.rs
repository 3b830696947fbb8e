//! Signing keys and compact JWS (RFC 7515 §7.1) with ES256 and RS256.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RsaKeyPair,
};
use zeroize::Zeroizing;

use crate::jwk::Jwk;
use crate::{Error, b64};

/// The JWS algorithms token keys sign with (RFC 7518 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256, the default.
    #[default]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048-bit keys), for verifiers that know no other.
    Rs256,
}

impl Algorithm {
    /// Both algorithms.
    pub const ALL: [Self; 2] = [Self::Es256, Self::Rs256];

    /// The JOSE name (`ES256`, `RS256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    pub(crate) fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Self::Es256 => &ECDSA_P256_SHA256_FIXED,
            Self::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| Error::Algorithm(s.chars().take(16).collect()))
    }
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A token signing key with its key id. `Debug` shows no key material.
pub struct TokenSigner {
    pair: Pair,
    algorithm: Algorithm,
    kid: String,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSigner({}, {})", self.algorithm, self.kid)
    }
}

impl TokenSigner {
    /// A fresh key; its key id is its RFC 7638 thumbprint.
    pub fn generate(algorithm: Algorithm) -> Result<Self, Error> {
        let pkcs8 = match algorithm {
            Algorithm::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| Error::Key("P-256 key generation failed"))?
                .as_ref()
                .to_vec(),
            Algorithm::Rs256 => RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map_err(|_| Error::Key("RSA key generation failed"))?
                .as_ref()
                .to_vec(),
        };
        let pkcs8 = Zeroizing::new(pkcs8);
        let mut signer = Self::from_pkcs8(algorithm, &pkcs8, "")?;
        signer.kid = signer.public_jwk().thumbprint();
        Ok(signer)
    }

    /// Loads a PKCS#8 key made by [`TokenSigner::generate`] under its stored key id.
    pub fn from_pkcs8(algorithm: Algorithm, der: &[u8], kid: &str) -> Result<Self, Error> {
        let pair = match algorithm {
            Algorithm::Es256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| Error::Key("not a P-256 PKCS#8 key"))?,
            ),
            Algorithm::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| Error::Key("not an RSA PKCS#8 key"))?;
                if pair.public_modulus_len() < 256 {
                    return Err(Error::Key("RSA keys are at least 2048 bits"));
                }
                Pair::Rsa(pair)
            }
        };
        Ok(Self { pair, algorithm, kid: kid.to_string() })
    }

    /// The key in PKCS#8 DER, to be sealed at rest.
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let der = match &self.pair {
            Pair::Ec(k) => k.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Pair::Rsa(k) => k.as_der().map(|d| d.as_ref().to_vec()),
        };
        der.map(Zeroizing::new).map_err(|_| Error::Key("key could not be encoded"))
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> Jwk {
        let mut jwk = match &self.pair {
            Pair::Ec(k) => {
                // An uncompressed point: 0x04, then X and Y of 32 bytes each.
                let point = k.public_key().as_ref();
                Jwk::ec_p256(&point[1..33], &point[33..65])
            }
            Pair::Rsa(k) => {
                let public = k.public_key();
                Jwk::rsa(
                    public.modulus().big_endian_without_leading_zero(),
                    public.exponent().big_endian_without_leading_zero(),
                )
            }
        };
        jwk.kid = Some(self.kid.clone()).filter(|k| !k.is_empty());
        jwk.alg = Some(self.algorithm.as_str().to_string());
        jwk.key_use = Some("sig".into());
        jwk
    }

    /// Signs `header.payload` and returns the compact JWS. The header holds
    /// `alg`, `kid` and `typ` (for example `JWT`).
    pub fn sign_compact(&self, typ: &str, payload: &[u8]) -> Result<String, Error> {
        let header = serde_json::json!({ "alg": self.algorithm.as_str(), "kid": self.kid, "typ": typ });
        let mut out = b64(header.to_string().as_bytes());
        out.push('.');
        out.push_str(&b64(payload));
        let signature = self.sign(out.as_bytes())?;
        out.push('.');
        out.push_str(&b64(&signature));
        Ok(out)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ec(k) => k.sign(&rng, message).map(|s| s.as_ref().to_vec()).map_err(|_| Error::Key("signing failed")),
            Pair::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| Error::Key("signing failed"))?;
                Ok(sig)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_its_pkcs8_form_with_the_same_public_jwk() {
        for alg in Algorithm::ALL {
            let key = TokenSigner::generate(alg).unwrap();
            let again = TokenSigner::from_pkcs8(alg, &key.to_pkcs8().unwrap(), key.kid()).unwrap();
            assert_eq!(key.public_jwk(), again.public_jwk());
            assert_eq!(key.kid(), key.public_jwk().thumbprint(), "the kid is the RFC 7638 thumbprint");
            assert!(!format!("{key:?}").contains("MII"), "Debug shows no key");
        }
    }

    #[test]
    fn a_key_of_the_other_algorithm_or_garbage_is_refused() {
        let ec = TokenSigner::generate(Algorithm::Es256).unwrap().to_pkcs8().unwrap();
        assert!(TokenSigner::from_pkcs8(Algorithm::Rs256, &ec, "k").is_err());
        assert!(TokenSigner::from_pkcs8(Algorithm::Es256, b"garbage", "k").is_err());
        assert_eq!("none".parse::<Algorithm>(), Err(Error::Algorithm("none".into())));
        assert!("es256".parse::<Algorithm>().is_err(), "names are case-sensitive (RFC 7515 §4.1.1)");
    }
}
